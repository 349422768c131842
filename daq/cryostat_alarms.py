"""Alarms of the cryostat beyond a silent controller: a held temperature lost, a saturated heater.

Fed with every Lake Shore reading (the slow-control thread); `text` is what a front end shows, "" when fine.
"""

from __future__ import annotations

from daq.config import CryostatSection
from daq.slowcontrol import TemperatureReading

HEATER_FULL_PCT = 99.5
HEATER_FULL_ALARM_S = 60.0  # wall-clock seconds of a saturated heater before it is an alarm


class CryostatAlarms:
    KINDS = ("hold", "heater")

    def __init__(self, cfg: CryostatSection) -> None:
        self._cfg = cfg
        self._held_k: float | None = None  # the setpoint the stage has been stable at
        self._full_since_s: float | None = None
        self.active: dict[str, str] = {}  # kind -> its text now
        self.text = ""

    def update(self, r: TemperatureReading) -> str:
        cfg, alarms = self._cfg, {}
        off_k = r.stage_k - r.setpoint_k
        if r.ramping or (self._held_k is not None and abs(r.setpoint_k - self._held_k) > 1e-6):
            self._held_k = None  # a new setpoint: settling is expected, not an alarm
        if not r.ramping and abs(off_k) <= cfg.stable_band_k:
            self._held_k = r.setpoint_k
        elif self._held_k is not None and abs(off_k) > cfg.interlock_band_k:
            alarms["hold"] = (
                f"stage at {r.stage_k:.3f} K, {off_k:+.3f} K off the setpoint {r.setpoint_k:g} K it held: "
                "check the cold head, the heater and its range"
            )
        if r.heater_range > 0 and r.heater_pct >= HEATER_FULL_PCT:
            self._full_since_s = self._full_since_s if self._full_since_s is not None else r.time_s
            full_s = r.time_s - self._full_since_s
            if full_s >= HEATER_FULL_ALARM_S:
                alarms["heater"] = (
                    f"heater at {r.heater_pct:.0f} % for {full_s:.0f} s: the setpoint cannot be reached at this "
                    "heater range (raise the range, or check the heater and its wiring)"
                )
        else:
            self._full_since_s = None
        self.active = alarms
        self.text = "; ".join(alarms.values())
        return self.text
