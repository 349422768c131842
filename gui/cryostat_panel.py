"""Cryostat: stage, crystal and setpoint against time (hours, downsampled), heater, cooldown or warm-up, alarms."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyqtgraph as pg
from PyQt6.QtWidgets import QDoubleSpinBox, QFormLayout, QHBoxLayout, QVBoxLayout, QWidget

from daq.stand import StandSnapshot, TestStand
from gui.widgets import ALARM, GOOD, WARN, ValueGrid, button

HEATER_RANGES = {0: "off", 1: "low (2.5 W)", 2: "high (25 W)"}


class CryostatPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        self.plot = pg.PlotWidget(title="temperatures")
        self.plot.setLabel("left", "temperature (K)")
        self.plot.setLabel("bottom", "minutes before now (wall clock)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # minutes stay minutes (no "x0.001")
        self.plot.addLegend()
        self.curves = {
            "stage_k": self.plot.plot(pen=pg.mkPen("#2471a3", width=2), name="stage (A)"),
            "crystal_k": self.plot.plot(pen=pg.mkPen("#c0392b", width=2), name="crystal (B)"),
            "setpoint_k": self.plot.plot(pen=pg.mkPen("#7f8c8d", style=pg.QtCore.Qt.PenStyle.DashLine), name="setpoint"),
        }  # fmt: skip
        self.values = ValueGrid(
            "Lake Shore 325",
            ["stage", "crystal", "setpoint", "heater", "stability", "sequence", "alarm", "replayed"],
        )
        cfg = stand.config.cryostat
        self.target = QDoubleSpinBox()
        self.target.setRange(1.5, 350.0)
        self.target.setDecimals(2)
        self.target.setSuffix(" K")
        self.target.setValue(cfg.setpoint_k)
        self.ramp = QDoubleSpinBox()
        self.ramp.setRange(0.0, 100.0)
        self.ramp.setSuffix(" K/min")
        self.ramp.setValue(cfg.ramp_k_per_min)
        form = QFormLayout()
        form.addRow("setpoint", self.target)
        form.addRow("ramp", self.ramp)
        row = QHBoxLayout()
        row.addWidget(button("Go to setpoint", self.go, "cool down or warm up to the setpoint and hold it"))
        row.addWidget(
            button(
                "Abort",
                lambda: stand.abort_sequence("cryostat"),  # clicked(bool) must not reach abort_sequence
                "stop waiting for the sequence (the setpoint stays)",
            )
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        side = QHBoxLayout()
        side.addWidget(self.values)
        controls = QVBoxLayout()
        controls.addLayout(form)
        controls.addLayout(row)
        side.addLayout(controls)
        layout.addLayout(side)
        self._drawn: tuple[int, float] = (-1, 0.0)  # (history version, when) of the strip chart drawn

    def go(self) -> None:
        try:
            self.stand.start_cooldown(self.target.value(), self.ramp.value())
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("Cooldown", exc)

    def refresh(self, snap: StandSnapshot) -> None:
        history = self.stand.temperatures
        now = time.monotonic()
        if history.version != self._drawn[0] or now - self._drawn[1] > 10.0:  # news, or the time axis moved
            self._drawn = (history.version, now)
            series = history.arrays()
            if series["time_s"].size:
                minutes = (series["time_s"] - time.time()) / 60.0
                for name, curve in self.curves.items():
                    curve.setData(minutes, series[name])
        r = snap.temperature
        v = self.values
        p = snap.replayed_temperature
        v.set("replayed", f"stage {p.stage_k:.3f} K, crystal {p.crystal_k:.3f} K, setpoint {p.setpoint_k:g} K"
              if p else "-")  # fmt: skip
        if snap.cryostat_sequence:
            v.set("sequence", snap.cryostat_sequence[:90])
        if snap.cryostat_error:
            v.set("alarm", snap.cryostat_error, ALARM)
        elif snap.cryostat_alarm:
            v.set("alarm", snap.cryostat_alarm[:90], ALARM)
            v.values["alarm"].setToolTip(snap.cryostat_alarm)
        else:
            v.set("alarm", "none")
        if r is None:
            return
        v.set("stage", f"{r.stage_k:.3f} K")
        v.set("crystal", f"{r.crystal_k:.3f} K")
        v.set("setpoint", f"{r.setpoint_k:.2f} K" + (" (ramping)" if r.ramping else ""))
        v.set("heater", f"{r.heater_pct:.1f} % of {HEATER_RANGES.get(r.heater_range, r.heater_range)}")
        band = self.stand.config.cryostat.stable_band_k
        v.set("stability", f"stable within {band:g} K" if snap.stable else f"settling (> {band:g} K off)",
              GOOD if snap.stable else WARN)  # fmt: skip
