"""Run control: stop criteria and comment, start / stop / pause, the run state and its counters."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from daq.rates import RecentRates
from daq.stand import StandSnapshot, TestStand, run_state_text
from gui.widgets import ALARM, GOOD, WARN, ValueGrid, button


class RunPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        form = QFormLayout()
        self.config_label = QLineEdit(stand.config_path or "(defaults)")
        self.config_label.setReadOnly(True)
        self.config_button = button(
            "Load...",
            self.pick_config,
            "take the run settings of another configuration file for the next runs",
        )
        row = QHBoxLayout()
        row.addWidget(self.config_label, 1)
        row.addWidget(self.config_button)
        form.addRow("configuration", row)
        self.run_number = QSpinBox()
        self.run_number.setRange(0, 999_999)
        self.run_number.setSpecialValueText("next free")
        self.run_number.setValue(stand.config.run.run_number or 0)
        self.run_number.setToolTip("0: the next free number; a number whose file exists is refused")
        self.next_number = QLabel("")
        numbers = QHBoxLayout()
        numbers.addWidget(self.run_number, 1)
        numbers.addWidget(self.next_number)
        form.addRow("run number", numbers)
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
        self._config_shown = stand.config_generation  # the configuration whose values the fields hold
        self._rates = RecentRates()

    def start(self) -> None:
        try:
            self.stand.start_run(
                self.events.value() or None,
                self.duration.value() or None,
                self.comment.text(),
                run_number=self.run_number.value() or None,
            )
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("Start run", exc)
            return
        self.run_number.setValue(0)  # a chosen number is used once; the next run takes the next free one

    def pick_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Run configuration", "config", "YAML (*.yaml *.yml)")
        if path:
            self.use_config(path)

    def use_config(self, path: str) -> None:
        """Take the run settings of `path` (loaded on a thread; a bad file is reported in the banner)."""
        try:
            self.stand.use_config(path)
        except Exception as exc:  # noqa: BLE001 - e.g. a run in progress
            self._report("Load configuration", exc)

    def _show_config(self, generation: int, path: str) -> None:
        """A configuration was taken: its file name, and its stop criteria and comment as the next run's."""
        self._config_shown = generation
        run = self.stand.config.run
        self.config_label.setText(path or "(defaults)")
        self.events.setValue(run.events or 0)
        self.duration.setValue(run.duration_s or 0)
        self.comment.setText(run.comment)
        self.run_number.setValue(run.run_number or 0)

    def stop(self) -> None:
        self.stand.stop_run()

    def toggle_pause(self) -> None:
        snap = self.stand.snapshot()
        if snap.paused:
            self.stand.resume_run()
        else:
            self.stand.pause_run()

    def refresh(self, snap: StandSnapshot) -> None:
        if snap.config_generation != self._config_shown:
            self._show_config(snap.config_generation, snap.config_path)
        run = snap.run
        busy = run is not None and run.state.value in ("configuring", "running", "stopping")
        self.config_button.setEnabled(not busy)
        text = f"next free: {snap.next_run_number}" if snap.next_run_number else ""
        if self.next_number.text() != text:
            self.next_number.setText(text)
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
            f"{free / 1000:.1f} GB" if free == free else "(looking)",
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
        recent = self._rates.update(run) if busy else None
        now = f"{recent[0]:.1f} Hz now, " if recent else ""
        s.set("trigger rate", f"{now}{run.trigger_rate_hz:.1f} Hz run average")
        now = f"{recent[1]:.1f} MB/s now, " if recent else ""
        s.set("data rate", f"{now}{run.mb_per_s:.1f} MB/s run average")
        s.set("queues", f"analysis {run.analysis_queue_fill}, writer {run.writer_queue_fill} batches")
