"""Sequences on the slow-control loops: cool down and hold, switch the HV on (ramp, verify) and off."""

from __future__ import annotations

import time
from collections.abc import Callable

from daq.config import CryostatSection, HvSection
from daq.slowcontrol import HvReading, InstrumentLoop, TemperatureReading
from drivers.lakeshore325 import LakeShore325
from drivers.ndt1470 import ChannelStatus, Ndt1470

COMMAND_TIMEOUT_S = 30.0


class SequenceError(RuntimeError):
    """A sequence could not complete (timeout, trip, silent instrument, or asked to stop)."""


def _ignore(_: str) -> None:
    pass


def start_cooldown(
    cryostat: InstrumentLoop[LakeShore325, TemperatureReading], cfg: CryostatSection, to_k: float
) -> None:
    """Program loop 1 of the Lake Shore: control input A in K, PID, ramp limit, setpoint, heater range."""

    def program(ls: LakeShore325) -> None:
        ls.set_control_setup(1, "A", 1, False, 2)
        ls.set_control_mode(1, 1)
        ls.set_pid(1, *cfg.pid)
        ls.set_ramp(1, cfg.ramp_k_per_min > 0, cfg.ramp_k_per_min)
        ls.set_setpoint_k(1, to_k)
        ls.set_heater_range(1, cfg.heater_range)

    cryostat.submit(program).result(COMMAND_TIMEOUT_S)


def wait_until_stable(
    cryostat: InstrumentLoop[LakeShore325, TemperatureReading],
    cfg: CryostatSection,
    to_k: float,
    progress: Callable[[str], None] = _ignore,
    should_stop: Callable[[], bool] = lambda: False,
) -> TemperatureReading:
    """Wait until the stage stays within stable_band_k of to_k, and the crystal within crystal_band_k, for
    stable_hold_s (instrument time)."""
    scale = cfg.time_scale if cfg.simulate else 1.0
    deadline = time.monotonic() + cfg.cooldown_timeout_s / scale
    stable_since: float | None = None
    last_report = 0.0
    while True:
        reading = cryostat.wait_for_reading(max(1.0, 2 * cryostat.period_s))
        now = time.monotonic()
        if cryostat.faulted:
            raise SequenceError(f"cooldown stopped: {cryostat.error}")
        if should_stop():
            raise SequenceError("cooldown abandoned on request")
        if reading is None:
            continue
        inside = (
            abs(reading.stage_k - to_k) <= cfg.stable_band_k
            and abs(reading.crystal_k - to_k) <= cfg.crystal_band_k
        )
        stable_since = (stable_since or now) if inside else None
        if now - last_report >= 2.0:
            held = 0.0 if stable_since is None else (now - stable_since) * scale
            progress(
                f"stage {reading.stage_k:8.3f} K  crystal {reading.crystal_k:8.3f} K  setpoint {reading.setpoint_k:7.2f} K "
                f"heater {reading.heater_pct:5.1f} %  stable for {held:6.0f} of {cfg.stable_hold_s:.0f} s"
            )
            last_report = now
        if stable_since is not None and (now - stable_since) * scale >= cfg.stable_hold_s:
            return reading
        if now > deadline:
            raise SequenceError(
                f"the stage did not settle within {cfg.stable_band_k:g} K of {to_k:g} K in "
                f"{cfg.cooldown_timeout_s:g} s (now {reading.stage_k:.3f} K). Check the cold head and the heater."
            )


def cooldown(
    cryostat: InstrumentLoop[LakeShore325, TemperatureReading],
    cfg: CryostatSection,
    to_k: float | None = None,
    progress: Callable[[str], None] = _ignore,
    should_stop: Callable[[], bool] = lambda: False,
) -> TemperatureReading:
    """Cool (or warm) the stage to `to_k` (default the configured setpoint) and hold it there, stable."""
    target = cfg.setpoint_k if to_k is None else to_k
    start_cooldown(cryostat, cfg, target)
    return wait_until_stable(cryostat, cfg, target, progress, should_stop)


def _wait_hv(
    hv: InstrumentLoop[Ndt1470, HvReading],
    cfg: HvSection,
    target_v: float,
    progress: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> HvReading:
    scale = cfg.time_scale if cfg.simulate else 1.0
    deadline = time.monotonic() + cfg.ramp_timeout_s / scale
    while True:
        reading = hv.wait_for_reading(max(1.0, 2 * hv.period_s))
        if hv.faulted:
            raise SequenceError(f"HV ramp stopped: {hv.error}")
        if reading is None:
            continue
        stopped = ChannelStatus.TRIP | ChannelStatus.KILL | ChannelStatus.ILK | ChannelStatus.DIS
        if target_v > 0 and reading.status & stopped:  # going down to 0 V, a trip changes nothing
            raise SequenceError(
                f"NDT1470 channel {cfg.channel} stopped during the ramp: {reading.flags} (VMON {reading.vmon_v:g} V, "
                f"IMON {reading.imon_ua:g} uA). Check the PMT base and cable before switching on again."
            )
        progress(
            f"HV channel {cfg.channel}: VMON {reading.vmon_v:7.1f} V  IMON {reading.imon_ua:7.2f} uA  {reading.flags}"
        )
        ramping = reading.status & (ChannelStatus.RUP | ChannelStatus.RDW)
        if not ramping and abs(reading.vmon_v - target_v) <= 5.0:
            return reading
        if should_stop():
            raise SequenceError("HV ramp abandoned on request")
        if time.monotonic() > deadline:
            raise SequenceError(
                f"NDT1470 channel {cfg.channel} did not reach {target_v:g} V within {cfg.ramp_timeout_s:g} s "
                f"(VMON {reading.vmon_v:g} V)"
            )


def hv_limits(hv: InstrumentLoop[Ndt1470, HvReading], cfg: HvSection) -> None:
    """Program the configured current limit, ramp rates and trip time on the channel, without ramping it."""

    def program(d: Ndt1470) -> None:
        _program_limits(d, cfg)

    hv.submit(program).result(COMMAND_TIMEOUT_S)


def _program_limits(d: Ndt1470, cfg: HvSection) -> None:
    ch = cfg.channel
    d.set(ch, "ISET", cfg.current_limit_ua)
    d.set(ch, "RUP", cfg.ramp_up_v_per_s)
    d.set(ch, "RDW", cfg.ramp_down_v_per_s)
    d.set(ch, "TRIP", cfg.trip_s)


def hv_on(
    hv: InstrumentLoop[Ndt1470, HvReading],
    cfg: HvSection,
    voltage_v: float | None = None,
    progress: Callable[[str], None] = _ignore,
    should_stop: Callable[[], bool] = lambda: False,
) -> HvReading:
    """Set the limits, ramp the channel to the (signed) voltage and verify VMON; raise SequenceError on a trip."""
    target = cfg.voltage_v if voltage_v is None else voltage_v

    def program(d: Ndt1470) -> None:
        ch = cfg.channel
        _program_limits(d, cfg)
        d.set_voltage_v(ch, target)
        if ChannelStatus.TRIP in d.status(ch):
            d.clear_alarm()
        d.on(ch)

    hv.submit(program).result(COMMAND_TIMEOUT_S)
    return _wait_hv(hv, cfg, abs(target), progress, should_stop)


def hv_off(
    hv: InstrumentLoop[Ndt1470, HvReading],
    cfg: HvSection,
    progress: Callable[[str], None] = _ignore,
) -> HvReading:
    """Switch the channel off and wait until it has ramped down."""
    hv.submit(lambda d: d.off(cfg.channel)).result(COMMAND_TIMEOUT_S)
    return _wait_hv(hv, cfg, 0.0, progress, lambda: False)
