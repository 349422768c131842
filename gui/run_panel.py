"""Run control: stop criteria and comment, start / stop / pause, the run state and its counters."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from daq.stand import StandSnapshot, TestStand, run_state_text
from gui.widgets import ALARM, GOOD, WARN, ValueGrid, button


class RunPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        form = QFormLayout()
        self.config_label = QLineEdit(stand.config_path or "(defaults)")
        self.config_label.setReadOnly(True)
        form.addRow("configuration", self.config_label)
        self.comment = QLineEdit(stand.config.run.comment)
        form.addRow("comment", self.comment)
        self.events = QSpinBox()
        self.events.setRange(0, 2_000_000_000)
        self.events.setSpecialValueText("no limit")
        self.events.setValue(stand.config.run.events or 0)
        form.addRow("stop after events", self.events)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0, 1e7)
        self.duration.setSuffix(" s")
        self.duration.setSpecialValueText("no limit")
        self.duration.setValue(stand.config.run.duration_s or 0)
        form.addRow("stop after", self.duration)
        buttons = QHBoxLayout()
        self.start_button = button("Start run", self.start, "start a run of the configuration")
        self.stop_button = button("Stop", self.stop, "stop cleanly: drain, write, close the file complete")
        self.pause_button = button(
            "Pause", self.toggle_pause, "disarm and keep the file open; again to resume"
        )
        for b in (self.start_button, self.stop_button, self.pause_button):
            buttons.addWidget(b)
        self.status = ValueGrid(
            "run",
            ["state", "run file", "elapsed", "triggers", "written", "lost", "trigger rate", "data rate", "queues",
             "disk free"],
        )  # fmt: skip
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def start(self) -> None:
        try:
            self.stand.start_run(
                self.events.value() or None, self.duration.value() or None, self.comment.text()
            )
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("Start run", exc)

    def stop(self) -> None:
        self.stand.stop_run()

    def toggle_pause(self) -> None:
        snap = self.stand.snapshot()
        if snap.paused:
            self.stand.resume_run()
        else:
            self.stand.pause_run()

    def refresh(self, snap: StandSnapshot) -> None:
        run = snap.run
        busy = run is not None and run.state.value in ("configuring", "running", "stopping")
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.pause_button.setEnabled(busy)
        self.pause_button.setText("Resume" if snap.paused else "Pause")
        s = self.status
        state = "paused" if snap.paused else run_state_text(run)
        if run is not None and run.stop_reason and not busy:
            state += f" ({run.stop_reason})"
        s.set(
            "state",
            f"{snap.run_kind} {state}".strip(),
            ALARM if "fault" in state else (WARN if snap.paused else GOOD),
        )
        free = snap.disk_free_mb
        s.set(
            "disk free",
            f"{free / 1000:.1f} GB",
            ALARM if free < self.stand.config.writer.min_free_disk_mb else "",
        )
        if run is None:
            return
        c = run.counters
        s.set("run file", str(run.path or "(none yet)"))
        s.set("elapsed", f"{run.elapsed_s:.1f} s")
        s.set("triggers", f"{c.triggers}")
        s.set("written", f"{c.written} (read {c.read}, analysed {c.analysed})")
        reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.lost.items() if v)
        s.set("lost", f"{c.lost_total}" + (f": {reasons}" if reasons else ""), ALARM if c.lost_total else "")
        s.set("trigger rate", f"{run.trigger_rate_hz:.1f} Hz")
        s.set("data rate", f"{run.mb_per_s:.1f} MB/s")
        s.set("queues", f"analysis {run.analysis_queue_fill}, writer {run.writer_queue_fill} batches")
