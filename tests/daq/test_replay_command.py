"""`daq replay` end to end: replay, then open the new run file and compare it with the source."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest
import yaml

from daq.cli import main
from daq.config import RunConfig
from daq.engine import RunEngine
from daq.replay_command import prepare_replay
from daq.run_context import RunState
from simulators.replay_runfile import RunFileSource
from simulators.replay_source import ReplayError, open_replay_source
from tests.shared_data import WAVEDUMP_SIPM, needs_wavedump_sample

ROOT = Path(__file__).resolve().parents[2]
REAL = WAVEDUMP_SIPM
PER_EVENT = (
    "waveform",
    "timestamp_ns",
    "trigger_id",
    "baseline",
    "baseline_rms",
    "total_q",
    "n_peaks",
    "peak_offset",
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated run of the default configuration (8001-sample records), as fast as the simulator goes."""
    data = RunConfig().model_dump()
    data["run"].update(output_dir=str(tmp_path_factory.mktemp("recorded")), events=1500, slow_control=False)
    data["simulation"].update(pace="max", seed=11, rate_hz=800)
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    assert engine.wait(timeout_s=60)
    assert engine.status().path is not None
    return engine.status().path


def test_a_replayed_run_reproduces_every_result_and_histogram_exactly(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(recorded), "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "state          : done (end of the replayed data)" in out
    new = tmp_path / "run_000001.h5"
    with h5py.File(recorded, "r") as a, h5py.File(new, "r") as b:
        n = a["events/waveform"].shape[0]
        assert f"replayed       : {n} recorded events" in out
        for name in PER_EVENT:
            assert np.array_equal(a[f"events/{name}"][()], b[f"events/{name}"][()]), name
        for name in ("q", "t_start_ns", "t_end_ns"):
            assert np.array_equal(a[f"peaks/{name}"][()], b[f"peaks/{name}"][()]), name
        for name in ("spe", "npe", "baseline_rms"):
            assert np.array_equal(a[f"histograms/{name}/counts"][()], b[f"histograms/{name}/counts"][()]), (
                name
            )
            assert np.array_equal(a[f"histograms/{name}/edges"][()], b[f"histograms/{name}/edges"][()]), name
        assert b.attrs["complete"] and b.attrs["stop_reason"] == "end of the replayed data"
        assert b["counters"].attrs["events_written"] == n and b["counters"].attrs["events_lost"] == 0
        # the link to the source: its path, and the source's root through an HDF5 external link
        assert b.attrs["replay_source"] == str(recorded.resolve())
        assert b["replay_source"].attrs["run_number"] == a.attrs["run_number"]
        assert b.attrs["comment"].startswith("replay of run 1")
        stored, replayed = yaml.safe_load(a.attrs["config_yaml"]), yaml.safe_load(b.attrs["config_yaml"])
        assert replayed["analysis"] == stored["analysis"]
        assert b["digitizer"].attrs["serial"] == "REPLAY"


def test_a_replay_with_another_configuration_reanalyses_without_writing(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["analysis"]["threshold_sigma"] = 8.0  # a tuned threshold: fewer, larger peaks
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(config))
    assert main(["replay", str(recorded), "--config", "tuned.yaml", "--speed", "max"]) == 0
    out = capsys.readouterr().out
    assert "run file       : (none)" in out and not (tmp_path / "runs").exists()
    spe = int(re.search(r"\((\d+) peaks in the 7000-8000 ns window\)", out).group(1))
    with h5py.File(recorded, "r") as f:
        assert spe < int(f["histograms/spe/counts"][()].sum())


@needs_wavedump_sample
def test_the_real_wavedump_file_replays_into_a_run_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(REAL), "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "events         : 293 read, 293 written, 293 triggers, 0 lost" in out
    assert re.search(r"note .*cut short \(812 of 836 bytes\)", out)
    raw = (REAL / "wave0.dat").read_bytes()
    whole = np.frombuffer(raw[: 293 * 836], np.uint8).reshape(293, 836)
    headers, samples = whole[:, :24].copy().view("<u4"), whole[:, 24:].copy().view("<u2")
    with h5py.File(tmp_path / "run_000001.h5", "r") as f:
        assert f["events/waveform"].shape == (293, 1, 406) and list(f["events"].attrs["channels"]) == [2]
        assert np.array_equal(f["events/waveform"][:, 0, :], samples)
        assert np.array_equal((f["events/timestamp_ns"][()] // 8) % 2**31, headers[:, 5] & 0x7FFFFFFF)
        log = [m.decode() for m in f["log"]["message"]]
        assert any("cut short (812 of 836 bytes)" in m for m in log)
        assert f.attrs["replay_source"] == str(REAL.resolve()) and "replay_source" not in f  # no HDF5 to link
        assert f["digitizer"].attrs["self_trigger_edge"] == "RISE"  # positive pulses, from the data


def test_slow_control_series_replay_with_the_run_in_real_time(tmp_path: Path) -> None:
    """Record a run with the simulated HV and cryostat, replay it in real time: same readings, same rate."""
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["simulation"]["rate_hz"] = 1000
    config["cryostat"].update(cooldown_before_run=False, interlock_action="ignore", poll_period_s=0.2)
    config["hv"].update(poll_period_s=0.2, interlock_action="ignore")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    common = dict(cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(tmp_path / "run.yaml"),
                           "--events", "2500", "--output", str(tmp_path / "a")], **common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = tmp_path / "a" / "run_000001.h5"
    done = subprocess.run([sys.executable, "-m", "daq.cli", "replay", str(source), "--speed", "realtime",
                           "--output", str(tmp_path / "b")], **common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rates = re.search(r"recorded ([\d.]+) Hz .* replayed ([\d.]+) Hz", done.stdout)
    assert rates is not None, done.stdout
    assert float(rates.group(2)) == pytest.approx(float(rates.group(1)), rel=0.02)
    _replay_with_a_pause(source, tmp_path / "c")
    with h5py.File(source, "r") as a, h5py.File(tmp_path / "c" / "run_000001.h5", "r") as c:
        # the readings are stamped on the new file's timeline, also across the pause: the reading stamped
        # at time t holds the recorded values in force when the event the new file puts at t was taken
        assert np.array_equal(a["events/trigger_id"][()], c["events/trigger_id"][()])
        new_ts, old_ts = c["events/timestamp_ns"][()] * 1e-9, a["events/timestamp_ns"][()] * 1e-9
        recorded_t = a["slow/temperature"]["time_s"] - _unix(a.attrs["started_at"])
        rows = c["slow/temperature"]
        assert len(rows) >= 3  # a reading every 0.2-0.3 s over about 2 s
        for stamp, stage_k in zip(
            rows["time_s"] - _unix(c.attrs["started_at"]), rows["stage_k"], strict=True
        ):
            k = int(np.searchsorted(new_ts, stamp + 1e-6, side="right")) - 1  # the event played last
            t_recorded = old_ts[k] if k >= 0 else 0.0
            in_force = max(int(np.searchsorted(recorded_t, t_recorded, side="right")) - 1, 0)
            # the reading is taken just after its time stamp: the row in force then, or a later one
            assert stage_k in a["slow/temperature"]["stage_k"][in_force : in_force + 3]
    with h5py.File(source, "r") as a, h5py.File(tmp_path / "b" / "run_000001.h5", "r") as b:
        t0, t1 = a["slow/temperature"][()], b["slow/temperature"][()]
        assert len(t1) >= 5 and len(np.unique(t0["stage_k"])) >= 3  # the stage was cooling while recorded
        recorded_rows = {(r["stage_k"], r["crystal_k"], r["setpoint_k"]) for r in t0}
        assert all((r["stage_k"], r["crystal_k"], r["setpoint_k"]) in recorded_rows for r in t1)
        assert len(np.unique(t1["stage_k"])) >= 3  # the replay follows the series, not one reading
        h0, h1 = a["slow/hv"][()], b["slow/hv"][()]
        assert len(h1) >= 5
        assert set(zip(h1["vmon_v"], h1["imon_ua"], h1["status"], strict=True)) <= set(
            zip(h0["vmon_v"], h0["imon_ua"], h0["status"], strict=True)
        )
        assert abs(h1["vmon_v"]).max() > 1400  # biased, as recorded


def _replay_with_a_pause(source: Path, output: Path) -> None:
    session = prepare_replay(open_replay_source(source), speed=2.0, output_dir=str(output))
    engine = session.engine
    try:
        engine.start()
        deadline = time.monotonic() + 30
        while engine.status().counters.read < 800:
            assert time.monotonic() < deadline and engine.status().state is not RunState.FAULT
            time.sleep(0.01)
        engine.ctx.pause("operator pause")
        time.sleep(0.8)
        engine.ctx.resume("operator resume")
        assert engine.wait(timeout_s=60)
    finally:
        session.close()
    assert engine.status().state is RunState.DONE and engine.status().counters.lost_total == 0


def _unix(iso: str) -> float:
    return datetime.fromisoformat(str(iso)).timestamp()


def test_events_stops_a_replay_at_exactly_n(recorded: Path, tmp_path: Path) -> None:
    assert main(["replay", str(recorded), "--events", "100", "--output", str(tmp_path)]) == 0
    with h5py.File(tmp_path / "run_000001.h5", "r") as f:
        assert f["events/waveform"].shape[0] == 100 and f.attrs["stop_reason"] == "event count reached (100)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speed", "fast"], "--speed must be max, realtime or a factor"),
        (["--speed", "-2"], "--speed factor must be above 0"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(
    recorded: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(recorded), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_source_and_misfit_regions_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nothing.h5")]) == 2
    assert "no such file or folder to replay" in capsys.readouterr().err


@needs_wavedump_sample
def test_analysis_regions_that_do_not_fit_the_records_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(REAL), "--config", str(ROOT / "config/run.yaml")]) == 2
    err = capsys.readouterr().err
    assert "analysis regions do not fit the replayed records of 406 samples" in err


def test_a_pause_during_a_replay_keeps_every_event_and_the_recorded_trigger_ids(
    recorded: Path, tmp_path: Path
) -> None:
    session = prepare_replay(open_replay_source(recorded), speed=2.0, output_dir=str(tmp_path))
    engine = session.engine
    try:
        engine.start()
        deadline = time.monotonic() + 30
        while engine.status().counters.read < 300:
            assert time.monotonic() < deadline and engine.status().state is not RunState.FAULT
            time.sleep(0.01)
        engine.ctx.pause("operator pause")
        time.sleep(0.3)
        engine.ctx.resume("operator resume")
        assert engine.wait(timeout_s=60)
    finally:
        session.close()
    c = engine.status().counters
    assert engine.status().state is RunState.DONE and c.lost_total == 0
    with h5py.File(recorded, "r") as a, h5py.File(tmp_path / "run_000001.h5", "r") as b:
        assert np.array_equal(a["events/waveform"][()], b["events/waveform"][()])
        assert np.array_equal(a["events/trigger_id"][()], b["events/trigger_id"][()])
        ts = b["events/timestamp_ns"][()].astype(np.int64)
        assert np.all(np.diff(ts) > 0)  # the pause is inserted, the order kept
        log = [m.decode() for m in b["log"]["message"]]
        assert any("run paused: operator pause" in m for m in log)


def test_a_run_still_being_recorded_is_followed_and_replayed_into_a_new_file(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["simulation"]["rate_hz"] = 1500
    config["cryostat"].update(cooldown_before_run=False, interlock_action="ignore", poll_period_s=0.2)
    config["hv"].update(on_before_run=False, poll_period_s=0.2, interlock_action="ignore")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "daq.cli", "run", "--config", str(cfg), "--events", "3000",
           "--output", str(tmp_path / "runs")]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "runs" / "run_000001.h5"
    try:
        deadline = time.monotonic() + 60
        source = None
        while source is None:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            try:
                source = open_replay_source(path)
            except ReplayError:
                time.sleep(0.1)  # not created yet, or its datasets not yet made
        assert isinstance(source, RunFileSource) and source.following
        assert source.slow is not None and source.slow.live
        session = prepare_replay(source, output_dir=str(tmp_path / "replayed"))
        read_while_recording = 0
        try:
            session.engine.start()
            while not session.engine.wait(timeout_s=0.05):
                if proc.poll() is None:
                    read_while_recording = session.engine.status().counters.read
        finally:
            session.close()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert read_while_recording > 100  # the replay followed the recording
    assert session.engine.status().state is RunState.DONE
    with h5py.File(path, "r") as a, h5py.File(tmp_path / "replayed" / "run_000001.h5", "r") as b:
        assert bool(a.attrs["complete"])  # the writer added its summary although the replay held the file
        for name in ("waveform", "timestamp_ns", "trigger_id", "n_peaks"):
            assert np.array_equal(a[f"events/{name}"][()], b[f"events/{name}"][()]), name
        # the slow-control series (empty, or nearly, when the replay began) were followed and played too
        assert len(b["slow/temperature"]) >= 1
        assert set(b["slow/temperature"]["stage_k"]) <= set(a["slow/temperature"]["stage_k"])
