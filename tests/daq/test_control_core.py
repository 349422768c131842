"""The headless control core: no Qt, the pre-run sequences on the simulated stand, the HV's safe state recorded,
and counters that add up when a run faults in its first batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import pytest

from analysis.run_schema import counters
from daq.config import RunConfig, load_config
from daq.control_core import ControlCore
from daq.engine import RunEngine
from daq.run_context import RunState
from daq.run_overrides import apply_overrides

ROOT = Path(__file__).resolve().parents[2]


def test_the_core_and_its_front_ends_import_no_qt() -> None:
    code = (
        "import sys, daq.control_core, daq.preflight, daq.stand, daq.run_command, daq.replay_command; "
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'PyQt5', 'PySide6', 'pyqtgraph')); "
        "print(qt); sys.exit(1 if qt else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _fast_stand(tmp_path: Path, events: int) -> RunConfig:
    config = apply_overrides(
        load_config(ROOT / "config/run.yaml"), events=events, output_dir=str(tmp_path), sim_rate="2000"
    )
    data = config.model_dump()
    data["cryostat"].update(
        time_scale=2000, poll_period_s=0.2, stable_hold_s=30, setpoint_k=80.0, cooldown_timeout_s=86400
    )
    data["hv"].update(time_scale=200, poll_period_s=0.2)
    return RunConfig.model_validate(data)


def test_the_core_runs_the_pre_run_sequences_then_the_run_and_records_the_hv_left_safe(
    tmp_path: Path,
) -> None:
    config = _fast_stand(tmp_path, events=300)
    core = ControlCore.open(config)
    try:
        assert core.pending_sequences(config) == ["cooldown", "hv_on"]  # a warm stand with the HV off
        said: list[tuple[str, str]] = []
        core.prepare_run(config, lambda kind, text: said.append((kind, text)))
        assert said[0] == ("cryostat", "cooling the stage to 80 K ...")
        assert ("hv", "ramping the PMT to -1500 V ...") in said
        assert core.pending_sequences(config) == []  # done: a second run starts at once
        assert core.cooled_to_k == 80.0 and core.voltage_v == -1500.0
        engine = core.new_run(core.run_config(config))
        engine.start()
        assert engine.wait(60.0)
        status = engine.status()
    finally:
        state = core.close()
    assert state == "confirmed: channel 0 ramped down to 0 V"
    assert status.state is RunState.DONE and status.path is not None
    with h5py.File(status.path, "r") as f:
        assert f.attrs["complete"] and f.attrs["hv_safe_state"] == state
        assert abs(f["slow/temperature"]["stage_k"][-1] - 80.0) < 1.0  # taken cold
        assert abs(f["slow/hv"]["vmon_v"][-1]) > 1495  # and biased


def test_a_run_is_taken_at_the_temperature_the_session_chose(tmp_path: Path) -> None:
    config = _fast_stand(tmp_path, events=10)
    core = ControlCore(config, slow=None)
    assert core.run_config(config) is config
    core.setpoint_k, core.voltage_v = 40.0, -1400.0  # what core.cool / core.bias were last asked for
    run = core.run_config(config)
    assert run.cryostat.setpoint_k == 40.0 and run.hv.voltage_v == -1400.0  # interlocks and the file say so
    assert core.close() == ""  # no instruments, no HV state


def test_counters_add_up_when_the_first_batch_faults(tmp_path: Path) -> None:
    """A region past the record (pre-flight bypassed): the first batch's analysis fails, the run faults."""
    config = apply_overrides(load_config(ROOT / "config/run.yaml"), events=2000, output_dir=str(tmp_path),
                             sim_rate="max")  # fmt: skip
    data = config.model_dump()
    data["run"]["slow_control"] = False
    data["analysis"]["signal_samples"] = (1400, 9000)
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    assert engine.wait(60.0)
    status = engine.status()
    c = status.counters
    assert status.state is RunState.FAULT and "online analysis" in status.stop_reason
    assert c.read > 0 and c.written == 0 and c.analysed == 0
    assert c.triggers == c.read + c.lost["board_memory_full"]  # every trigger read or lost by the board
    assert (
        c.read == c.written + c.lost_total - c.lost["board_memory_full"]
    )  # every read event written or lost
    assert status.path is not None
    with h5py.File(status.path, "r") as f:
        assert not f.attrs["complete"] and "online analysis" in f.attrs["stop_reason"]
        attrs = counters(f)  # the end record is written for a faulty run too
    assert attrs is not None and attrs["events_read"] == c.read and attrs["events_written"] == 0
    assert (
        attrs["events_read"]
        == attrs["events_written"] + attrs["events_lost"] - attrs["lost_board_memory_full"]
    )
    assert attrs["triggers"] == attrs["events_read"] + attrs["lost_board_memory_full"]


@pytest.mark.parametrize("missing", ["cryostat", "hv"])
def test_a_sequence_without_its_instrument_says_so(tmp_path: Path, missing: str) -> None:
    core = ControlCore(_fast_stand(tmp_path, events=10), slow=None)
    with pytest.raises(RuntimeError, match="no cryostat" if missing == "cryostat" else "no HV supply"):
        core.cool(77.0) if missing == "cryostat" else core.bias(-1000.0)


class _ScriptedCore(ControlCore):
    """A core whose instruments' state is scripted: pending_sequences answers from a list, one per call."""

    def __init__(self, config: RunConfig, answers: list[list[str]]) -> None:
        super().__init__(config, None)
        self.answers, self.calls = answers, []

    def pending_sequences(self, config: RunConfig) -> list[str]:
        return self.answers.pop(0) if self.answers else []

    def cool(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.calls.append("cooldown")

    def bias(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.calls.append("hv_on")


def test_a_condition_lost_during_a_long_cooldown_is_restored_or_refused(tmp_path: Path) -> None:
    """The HV was at voltage when the run was asked for, and tripped while the stage cooled for hours."""
    from daq.sequences import SequenceError

    config = _fast_stand(tmp_path, events=10)
    core = _ScriptedCore(config, [["cooldown"], ["hv_on"], []])
    core.prepare_run(config)
    assert core.calls == ["cooldown", "hv_on"]  # the caller owns both instruments: the HV is ramped again
    core = _ScriptedCore(config, [["cooldown"], ["hv_on"]])
    with pytest.raises(SequenceError, match=r"hv_on needed again before the run \(after cooldown\)"):
        core.prepare_run(config, allowed=["cooldown"])  # the GUI took over only the cryostat: refused
    assert core.calls == ["cooldown"]


def test_the_configured_hv_limits_are_programmed_when_the_hv_is_already_at_voltage(tmp_path: Path) -> None:
    config = _fast_stand(tmp_path, events=10)
    core = ControlCore.open(config)
    try:
        core.prepare_run(config)
        assert core.pending_sequences(config) == []
        limited = config.model_copy(update={"hv": config.hv.model_copy(update={"current_limit_ua": 123.0})})
        core.prepare_run(limited)  # nothing to ramp, the limit is set anyway
        assert core.slow is not None and core.slow.hv is not None
        iset = core.slow.hv.submit(lambda d: d.get(config.hv.channel, "ISET")).result(10.0)
        assert float(iset) == pytest.approx(123.0)
    finally:
        core.close()
