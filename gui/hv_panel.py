"""HV: the PMT channel's VSET, VMON, IMON and status in words; on (confirmed), off, set, within the limit."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import QDoubleSpinBox, QFormLayout, QHBoxLayout, QMessageBox, QVBoxLayout, QWidget

from daq.stand import StandSnapshot, TestStand
from gui.widgets import ALARM, GOOD, ValueGrid, button


class HvPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        cfg = stand.config.hv
        self.values = ValueGrid(
            f"NDT1470 channel {cfg.channel}", ["VSET", "VMON", "IMON", "status", "sequence", "replayed"]
        )
        self.voltage = QDoubleSpinBox()
        self.voltage.setRange(
            -cfg.max_voltage_v, cfg.max_voltage_v
        )  # the limit, enforced here and in the stand
        self.voltage.setDecimals(1)
        self.voltage.setSuffix(" V")
        self.voltage.setValue(cfg.voltage_v)
        form = QFormLayout()
        form.addRow(f"voltage (|V| <= {cfg.max_voltage_v:g})", self.voltage)
        row = QHBoxLayout()
        self.on_button = button("On / set", self.switch_on, "ramp the channel to the voltage (asks first)")
        row.addWidget(self.on_button)
        row.addWidget(button("Off", self.switch_off, "ramp the channel down to 0 V"))
        layout = QVBoxLayout(self)
        layout.addWidget(self.values)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addStretch(1)

    def confirm(self, text: str) -> bool:
        """Ask before biasing the PMT (tests replace this)."""
        answer = QMessageBox.question(self, "Switch the HV on", text)
        return answer == QMessageBox.StandardButton.Yes

    def switch_on(self) -> None:
        v = self.voltage.value()
        channel = self.stand.config.hv.channel
        if not self.confirm(f"Ramp NDT1470 channel {channel} (the PMT) to {v:g} V?"):
            return
        try:
            self.stand.hv_on(v)
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("HV on", exc)

    def switch_off(self) -> None:
        try:
            self.stand.hv_off()
        except Exception as exc:  # noqa: BLE001 - shown to the operator with its message
            self._report("HV off", exc)

    def refresh(self, snap: StandSnapshot) -> None:
        v = self.values
        p = snap.replayed_hv
        v.set("replayed", f"VMON {p.vmon_v:.1f} V, IMON {p.imon_ua:.2f} uA, {p.flags}" if p else "-")
        if snap.hv_sequence:
            v.set("sequence", snap.hv_sequence[:90])
        r = snap.hv
        if snap.hv_error:
            v.set("status", snap.hv_error, ALARM)
        if r is None:
            return
        v.set("VSET", f"{r.vset_v:.1f} V")
        v.set("VMON", f"{r.vmon_v:.1f} V")
        v.set("IMON", f"{r.imon_ua:.2f} uA")
        if not snap.hv_error:
            v.set("status", r.flags, ALARM if r.faulted else (GOOD if "ON" in r.flags else ""))
