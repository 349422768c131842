"""Interlocks on a run context: each source holds its own pause, messages say what happened."""

from __future__ import annotations

from pathlib import Path

from daq.config import RunConfig, load_config
from daq.interlocks import Interlocks
from daq.run_context import RunContext, RunState
from daq.slowcontrol import HvReading, TemperatureReading
from drivers.ndt1470 import ChannelStatus

ROOT = Path(__file__).resolve().parents[2]


def _setup(action: str = "pause") -> tuple[RunContext, Interlocks]:
    data = load_config(ROOT / "config/run.yaml").model_dump()
    data["cryostat"]["interlock_action"] = action
    data["hv"]["interlock_action"] = action
    ctx = RunContext()
    ctx.set_state(RunState.CONFIGURING)
    ctx.set_state(RunState.RUNNING)
    return ctx, Interlocks(ctx, RunConfig.model_validate(data))


def _temp(stage_k: float, setpoint_k: float = 77.0) -> TemperatureReading:
    return TemperatureReading(0.0, stage_k, stage_k + 0.5, setpoint_k, 80.0, 2, False)


def _hv(vmon_v: float, status: ChannelStatus = ChannelStatus.ON) -> HvReading:
    return HvReading(0.0, 0, 1500.0, vmon_v, 100.0, status)


def _messages(ctx: RunContext) -> list[str]:
    return [m for _, m in ctx.drain_notes()]


def test_hv_recovery_does_not_resume_a_run_the_cryostat_still_holds() -> None:
    ctx, locks = _setup()
    locks.on_hv(_hv(300.0, ChannelStatus.TRIP), "")
    assert ctx.paused.is_set()
    locks.on_temperature(_temp(79.5), "")
    assert set(locks.paused_by) == {"hv", "cryostat"}
    locks.on_hv(_hv(1500.0), "")
    assert ctx.paused.is_set() and set(locks.paused_by) == {"cryostat"}
    locks.on_temperature(_temp(77.02), "")
    assert not ctx.paused.is_set() and locks.paused_by == {}
    messages = _messages(ctx)
    assert messages[0].startswith("run paused: interlock (hv): HV channel 0 TRIP")
    assert "stage at 79.500 K, outside 77 +- 1 K; the run stays paused" in messages[1]
    assert "still paused by cryostat: stage at 79.500 K" in messages[2]
    assert messages[3] == "run resumed: stage back at 77.020 K"


def test_a_changed_setpoint_is_named_as_such() -> None:
    ctx, locks = _setup("stop")
    locks.on_temperature(_temp(77.0, setpoint_k=90.0), "")
    assert ctx.stop_reason == "interlock: controller setpoint changed to 90 K, the run needs 77 K"


def test_a_silent_instrument_stops_the_run_and_nothing_acts_outside_running() -> None:
    ctx, locks = _setup("stop")
    ctx.request_stop("operator")
    locks.on_hv(None, "NDT1470: no reply to $BD:00,CMD:MON,CH:0,PAR:VSET within 1 s")
    assert ctx.stop_reason == "operator"  # the run was already stopping: not overwritten
    ctx2, locks2 = _setup("stop")
    locks2.on_hv(None, "NDT1470: no reply within 1 s")
    assert ctx2.stop_reason == "interlock: HV supply silent: NDT1470: no reply within 1 s"


def test_ignore_does_nothing() -> None:
    ctx, locks = _setup("ignore")
    locks.on_hv(_hv(0.0, ChannelStatus.TRIP), "")
    locks.on_temperature(_temp(150.0), "")
    assert not ctx.paused.is_set() and not ctx.stopping


def test_an_hv_channel_switched_off_without_a_fault_bit_acts_too() -> None:
    ctx, locks = _setup("stop")
    locks.on_hv(_hv(1400.0, ChannelStatus.RDW), "")  # off from the front panel in LOCAL: no DIS, no TRIP
    assert ctx.stop_reason.startswith("interlock: HV channel 0 is off")


def test_the_stage_is_held_to_the_runs_setpoint_not_the_controllers() -> None:
    ctx, locks = _setup("stop")
    locks.on_temperature(_temp(77.8, setpoint_k=77.9), "")  # setpoint moved by less than the band
    assert not ctx.stopping
    locks.on_temperature(_temp(78.3, setpoint_k=77.9), "")  # in the controller's band, not in the run's
    assert ctx.stop_reason == "interlock: stage at 78.300 K, outside 77 +- 1 K"


def test_no_resume_once_the_run_is_stopping() -> None:
    ctx, locks = _setup("pause")
    locks.on_hv(_hv(0.0, ChannelStatus.TRIP), "")
    ctx.request_stop("operator")
    locks.on_hv(_hv(1500.0), "")
    assert ctx.paused.is_set() and not any("resumed" in m for m in _messages(ctx))
