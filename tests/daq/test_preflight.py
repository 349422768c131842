"""Pre-flight: a run whose configuration, output folder or run number cannot work is refused in one line,
before any instrument is cooled, biased or armed; `daq run` exits 2 without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.config import RunConfig, load_config
from daq.preflight import (
    PreflightError,
    check_analysis,
    check_instruments,
    check_output,
    check_run_number,
    check_start,
    pending_sequences,
)
from daq.slowcontrol import HvReading, TemperatureReading
from drivers.ndt1470 import ChannelStatus

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **sections: dict[str, Any]) -> RunConfig:
    data = RunConfig().model_dump()
    data["run"]["output_dir"] = str(tmp_path / "runs")
    data["writer"]["min_free_disk_mb"] = 0
    for name, values in sections.items():
        data[name].update(values)
    return RunConfig.model_validate(data)


def test_the_shipped_configurations_pass(tmp_path: Path) -> None:
    for name in ("run.yaml", "lab.yaml"):
        check_analysis(load_config(ROOT / "config" / name))
    check_start(_config(tmp_path))


@pytest.mark.parametrize(
    ("analysis", "words"),
    [
        (
            {"signal_samples": (1400, 9000)},
            "analysis.signal_samples [1400, 9000) does not fit the record of 8000",
        ),
        ({"baseline_samples": (0, 1700)}, "reaches past the trigger at sample 1600"),
        ({"spe_window_ns": (7000, 8500)}, "analysis.spe_window_ns [7000, 8500) is not inside"),
        ({"spe_window_ns": (100, 900)}, "is not inside analysis.signal_samples [1400, 8000)"),
    ],
)
def test_analysis_regions_outside_the_record_or_the_signal_are_refused(
    tmp_path: Path, analysis: dict[str, Any], words: str
) -> None:
    with pytest.raises(PreflightError) as refused:
        check_start(_config(tmp_path, analysis=analysis))
    text = str(refused.value)
    assert words in text and "\n" not in text and "fix the analysis section" in text


def test_an_output_folder_under_a_file_or_without_room_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PreflightError, match=r"a_file is not a folder; choose another run.output_dir"):
        check_output(_config(tmp_path, run={"output_dir": str(blocker / "runs")}))
    with pytest.raises(PreflightError, match=r"MB free, the run needs writer.min_free_disk_mb = 1e\+12 MB"):
        check_output(_config(tmp_path, writer={"min_free_disk_mb": 1e12}))
    check_output(
        _config(tmp_path, run={"output_dir": str(tmp_path / "new" / "deeper")})
    )  # made by the writer
    assert not (tmp_path / "new").exists()  # pre-flight creates nothing


def test_a_taken_run_number_is_refused_with_the_next_free_one(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run_000007.h5").write_bytes(b"")
    with pytest.raises(PreflightError, match=r"run number 7 .* exists already .* next free one \(8\)"):
        check_run_number(_config(tmp_path, run={"run_number": 7}))
    check_run_number(_config(tmp_path, run={"run_number": 9}))


class _Loop:
    def __init__(self, latest: object, error: str = "", faulted: bool | None = None) -> None:
        self.latest, self.error = latest, error
        self.faulted = bool(error) if faulted is None else faulted  # InstrumentLoop: 3 failed polls in a row


class _Slow:
    def __init__(self, cryostat: _Loop | None, hv: _Loop | None) -> None:
        self.cryostat, self.hv = cryostat, hv


def _t(stage_k: float, crystal_k: float, setpoint_k: float) -> TemperatureReading:
    return TemperatureReading(0.0, stage_k, crystal_k, setpoint_k, 50.0, 2, False)


def _hv(vmon_v: float, status: ChannelStatus) -> HvReading:
    return HvReading(0.0, 0, 1500.0, vmon_v, 10.0, status)


def test_the_pre_run_sequences_pending_follow_the_readings(tmp_path: Path) -> None:
    both = _config(tmp_path, cryostat={"cooldown_before_run": True}, hv={"on_before_run": True})
    cold, on = _t(77.02, 77.3, 77.0), _hv(1499.0, ChannelStatus.ON)
    assert pending_sequences(both, _Slow(_Loop(cold), _Loop(on))) == []
    assert pending_sequences(both, _Slow(_Loop(_t(293.0, 293.0, 77.0)), _Loop(on))) == ["cooldown"]
    assert pending_sequences(both, _Slow(_Loop(_t(77.0, 77.0, 20.0)), _Loop(on))) == [
        "cooldown"
    ]  # set elsewhere
    assert pending_sequences(both, _Slow(_Loop(cold), _Loop(None))) == ["hv_on"]
    ramping = _hv(1200.0, ChannelStatus.ON | ChannelStatus.RUP)
    assert pending_sequences(both, _Slow(_Loop(None), _Loop(ramping))) == ["cooldown", "hv_on"]
    tripped = _hv(1499.0, ChannelStatus.ON | ChannelStatus.TRIP)
    assert pending_sequences(both, _Slow(_Loop(cold), _Loop(tripped))) == ["hv_on"]
    neither = _config(tmp_path, cryostat={"cooldown_before_run": False}, hv={"on_before_run": False})
    assert pending_sequences(neither, _Slow(_Loop(None), _Loop(None))) == []
    assert pending_sequences(both, None) == []  # a run without slow control


def test_a_silent_instrument_the_run_needs_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, hv={"on_before_run": True}, cryostat={"interlock_action": "ignore"})
    silent = _Slow(
        _Loop(None, "no reply within 1 s"), _Loop(None, "NDT1470 (port /dev/pts/3) did not answer.")
    )
    with pytest.raises(
        PreflightError, match=r"^NDT1470 \(port /dev/pts/3\) did not answer; the run needs it"
    ):
        check_instruments(config, silent)
    quiet = _config(tmp_path, hv={"on_before_run": False, "interlock_action": "ignore"},
                    cryostat={"interlock_action": "ignore"})  # fmt: skip
    check_instruments(quiet, silent)  # neither sequence nor interlock needs them
    # one failed poll (a serial timeout on a real Lake Shore) is a warning, not a refusal
    once = _Slow(_Loop(None, "no reply within 1 s", faulted=False), _Loop(None, "timeout", faulted=False))
    check_instruments(config, once)


def test_a_baseline_no_longer_than_ddof_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, analysis={"baseline_samples": [0, 1], "baseline_ddof": 1})
    with pytest.raises(PreflightError, match=r"analysis.baseline_samples \[0, 1\) holds no more samples"):
        check_analysis(config)


def _daq_run(
    tmp_path: Path, changes: dict[str, dict[str, Any]], *args: str
) -> subprocess.CompletedProcess[str]:
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["run"]["output_dir"] = str(tmp_path / "runs")
    for section, values in changes.items():
        config[section].update(values)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "daq.cli", "run", "--config", str(path), *args],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "args", "words"),
    [
        (
            {"analysis": {"baseline_samples": [0, 1400], "signal_samples": [1400, 8800]}},
            (),
            "does not fit the record",
        ),
        ({}, ("--output", "{blocker}/runs"), "is not a folder"),
        ({}, ("--run-number", "3"), "run number 3 (run.run_number, --run-number) exists already"),
    ],
)
def test_daq_run_refuses_before_any_sequence_in_one_line(
    tmp_path: Path, changes: dict[str, dict[str, Any]], args: tuple[str, ...], words: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run_000003.h5").write_bytes(b"")
    done = _daq_run(tmp_path, changes, *(a.format(blocker=blocker) for a in args))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daq run: ") and words in lines[0], done.stderr
    assert "cooling" not in done.stdout and "ramping" not in done.stdout  # nothing cooled or biased
    assert "simulated" not in done.stderr  # not even a simulator started
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run_000003.h5"]


def test_a_cooldown_of_the_session_that_held_is_trusted_within_the_interlock_band(tmp_path: Path) -> None:
    config = _config(tmp_path, cryostat={"cooldown_before_run": True, "setpoint_k": 20.0})
    settling = _Slow(_Loop(_t(20.4, 21.0, 20.0)), None)  # outside the stable bands, inside the interlock band
    assert pending_sequences(config, settling) == ["cooldown"]
    assert pending_sequences(config, settling, cooled_to_k=20.0) == []
    assert pending_sequences(config, settling, cooled_to_k=77.0) == ["cooldown"]  # held elsewhere
    assert pending_sequences(config, _Slow(_Loop(_t(21.5, 21.0, 20.0)), None), cooled_to_k=20.0) == [
        "cooldown"
    ]
