"""Replay: open a run file or WaveDump data and play it through the same views."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from daq.config import parse_speed
from daq.stand import StandSnapshot, TestStand
from gui.widgets import button


class ReplayPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        self.source = QLineEdit()
        self.source.setPlaceholderText("runs/run_000001.h5 or a WaveDump folder")
        self.speed = QComboBox()
        self.speed.setEditable(True)
        self.speed.addItems(["realtime", "max", "4", "0.5"])
        self.write = QCheckBox("write a new run file to")
        self.output = QLineEdit("replays")
        pick = QHBoxLayout()
        pick.addWidget(self.source, 1)
        pick.addWidget(button("Run file ...", self.pick_file))
        pick.addWidget(button("WaveDump folder ...", self.pick_folder))
        form = QFormLayout()
        form.addRow("source", pick)
        form.addRow("speed", self.speed)
        out = QHBoxLayout()
        out.addWidget(self.write)
        out.addWidget(self.output, 1)
        form.addRow("output", out)
        self.headerless = QCheckBox("WaveDump files without headers, records of")
        self.record_length = QSpinBox()
        self.record_length.setRange(1, 1_000_000)
        self.record_length.setValue(8001)
        self.record_length.setSuffix(" samples")
        raw = QHBoxLayout()
        raw.addWidget(self.headerless)
        raw.addWidget(self.record_length, 1)
        form.addRow("headers", raw)
        self.start_button = button("Start replay", self.start, "play the source through the views")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.start_button)
        layout.addStretch(1)

    def pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Replay a run file", "runs", "Run files (*.h5);;All files (*)"
        )
        if path:
            self.source.setText(path)

    def pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Replay WaveDump data")
        if path:
            self.source.setText(path)

    def start(self) -> None:
        try:
            speed = parse_speed(self.speed.currentText())
            output = self.output.text() if self.write.isChecked() else None
            if self.headerless.isChecked():  # else WaveDumpConfig.txt or the headers say
                self.stand.start_replay(self.source.text(), speed, output, self.record_length.value(), False)
            else:
                self.stand.start_replay(self.source.text(), speed, output)
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("Replay", exc)

    def refresh(self, snap: StandSnapshot) -> None:
        run = snap.run
        busy = run is not None and run.state.value in ("configuring", "running", "stopping")
        self.start_button.setEnabled(not busy)
