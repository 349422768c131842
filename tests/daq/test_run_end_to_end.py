"""Simulated runs end to end: run, then open the HDF5 file and check it; faults, losses, signals, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis.pulses import PulseSettings, analyse_batch
from daq.cli import main
from daq.config import RunConfig, load_config
from daq.engine import RunEngine, open_configured_board
from daq.run_command import apply_overrides
from daq.run_context import RunState
from daq.run_info import describe_run, events_in, open_run_file
from drivers import DigitizerLinkError, EventBatch

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, events: int = 600, **sim: object) -> RunConfig:
    cfg = apply_overrides(load_config(ROOT / "config/run.yaml"), events=events, output_dir=str(tmp_path))
    data = cfg.model_dump()
    data["run"]["slow_control"] = False  # the DAQ alone; slow control has its own tests
    data["simulation"].update({"pace": "max", "seed": 42, **sim})
    return RunConfig.model_validate(data)


def _run(cfg: RunConfig, open_board=None) -> RunEngine:
    engine = RunEngine(cfg, open_board)
    engine.start()
    assert engine.wait(timeout_s=60)
    return engine


def _check_results_match_recomputation(f, n: int) -> None:
    wf = f["events/waveform"][:n, 0, :]
    res = analyse_batch(wf, PulseSettings(count_boundaries=False))  # the config's peak_boundaries: excluded
    np.testing.assert_allclose(f["events/baseline"][:n, 0], res.baseline, rtol=1e-6)
    np.testing.assert_allclose(f["events/baseline_rms"][:n, 0], res.baseline_rms, rtol=1e-5)
    np.testing.assert_allclose(f["events/total_q"][:n, 0], res.total_q, rtol=1e-5)
    np.testing.assert_array_equal(f["events/n_peaks"][:n, 0], res.n_peaks)
    np.testing.assert_array_equal(f["events/peak_offset"][:n, 0], res.peak_offset)
    used = int(res.n_peaks.sum())
    np.testing.assert_allclose(f["peaks/q"][:used], res.q, rtol=1e-5)
    np.testing.assert_array_equal(f["peaks/t_start_ns"][:used], res.t_start)
    np.testing.assert_array_equal(f["peaks/t_end_ns"][:used], res.t_end)


def test_simulated_run_writes_a_complete_checked_file(tmp_path: Path) -> None:
    engine = _run(_config(tmp_path))
    status = engine.status()
    assert status.state is RunState.DONE and status.path == tmp_path / "run_000001.h5"
    c = status.counters
    assert (
        c.read >= 600 and c.written == c.read and c.lost_total == 0 and c.triggers == c.written + c.lost_total
    )
    with open_run_file(status.path) as f:
        assert f.attrs["complete"] and f.attrs["stop_reason"] == "event count reached (600)"
        n = events_in(f)
        assert n == c.written
        assert f["events/waveform"].shape == (n, 1, 8001) and f["events/waveform"].dtype == np.int16
        assert f["events/waveform"].compression is not None or "32008" in str(f["events/waveform"]._filters)
        ids = f["events/trigger_id"][:].astype(np.int64)
        assert np.all(np.diff(ids) == 1) and np.all(np.diff(f["events/timestamp_ns"][:].astype(np.int64)) > 0)
        counters = dict(f["counters"].attrs)
        assert counters["triggers"] == counters["events_written"] + counters["events_lost"] == n
        assert f["digitizer"].attrs["record_length_samples"] == 8001
        assert "simulation:" in f.attrs["config_yaml"] and f.attrs["run_number"] == 1
        _check_results_match_recomputation(f, n)
        npe = f["histograms/npe"]
        assert npe["counts"][()].sum() + npe.attrs["underflow"] + npe.attrs["overflow"] == n
        t_start = f["peaks/t_start_ns"][:]
        assert f["histograms/spe/counts"][()].sum() + f["histograms/spe"].attrs["overflow"] == np.sum(
            (t_start >= 7000) & (t_start < 8000)
        )
    summary = describe_run(status.path)
    assert f"events     : {n}" in summary and "complete   : True" in summary


def test_run_files_are_numbered_and_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "run_000005.h5").write_bytes(b"an older run")
    engine = _run(_config(tmp_path, events=50))
    assert engine.status().path == tmp_path / "run_000006.h5"
    assert (tmp_path / "run_000005.h5").read_bytes() == b"an older run"


def test_a_chosen_run_number_is_used_once_and_never_overwrites(tmp_path: Path) -> None:
    engine = _run(apply_overrides(_config(tmp_path, events=50), run_number=42))
    assert engine.status().path == tmp_path / "run_000042.h5" and engine.status().run_number == 42
    with h5py.File(tmp_path / "run_000042.h5", "r") as f:
        assert int(f.attrs["run_number"]) == 42 and bool(f.attrs["complete"])
    before = (tmp_path / "run_000042.h5").read_bytes()
    again = _run(apply_overrides(_config(tmp_path, events=50), run_number=42))  # the writer refuses it
    assert again.status().state is RunState.FAULT and "run 42 exists already" in again.status().stop_reason
    assert (tmp_path / "run_000042.h5").read_bytes() == before
    assert _run(_config(tmp_path, events=50)).status().path == tmp_path / "run_000043.h5"  # next free: above


def test_cli_refuses_a_taken_run_number_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run_000007.h5").write_bytes(b"an older run")
    cfg = tmp_path / "run.yaml"
    cfg.write_text((ROOT / "config/run.yaml").read_text())  # with its cooldown and HV: none of it may start
    rc = main(["run", "--config", str(cfg), "--output", str(tmp_path), "--run-number", "7"])
    err = capsys.readouterr().err
    assert (
        rc == 2
        and "run number 7 (run.run_number, --run-number) exists already" in err
        and "next free one (8)" in err
    )
    assert (tmp_path / "run_000007.h5").read_bytes() == b"an older run"


class _FailingBoard:
    """The simulated board whose link breaks after a few batches."""

    def __init__(self, cfg: RunConfig, fail_after: int) -> None:
        self._board = open_configured_board(cfg)
        self._left = fail_after

    def __getattr__(self, name: str):
        return getattr(self._board, name)

    def read_batch(self, max_events: int = 256, max_wait_s: float = 0.1) -> EventBatch:
        if self._left == 0:
            raise DigitizerLinkError("DT5751 sim: COMMUNICATION_ERROR (injected): check the cable")
        self._left -= 1
        return self._board.read_batch(max_events, max_wait_s)


def test_a_fault_mid_run_closes_and_marks_the_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=0)
    engine = _run(cfg, lambda: _FailingBoard(cfg, fail_after=3))
    status = engine.status()
    assert status.state is RunState.FAULT
    with open_run_file(status.path) as f:
        assert not f.attrs["complete"]
        assert f.attrs["stop_reason"].startswith("fault: digitizer readout: DT5751 sim: COMMUNICATION_ERROR")
        n = events_in(f)
        assert n == status.counters.written > 0
        _check_results_match_recomputation(f, n)


def test_a_full_disk_stops_the_run_with_the_file_marked(tmp_path: Path) -> None:
    data = _config(tmp_path, events=300).model_dump()
    data["writer"]["min_free_disk_mb"] = 1e12
    engine = _run(RunConfig.model_validate(data))
    status = engine.status()
    assert status.state is RunState.FAULT
    c = status.counters
    assert c.triggers == c.written + c.lost_total and c.lost["writer_failed"] == c.read - c.written
    with open_run_file(status.path) as f:
        assert not f.attrs["complete"] and "writer.min_free_disk_mb" in f.attrs["stop_reason"]
        assert f.attrs["stop_reason"].startswith("fault: run file writer")


def test_a_slow_writer_fills_its_queue_and_every_drop_is_counted(tmp_path: Path, monkeypatch) -> None:
    from daq import writer as writer_module

    original = writer_module.RunFileWriter.append

    def slow_append(self, batch, results):
        time.sleep(0.05)
        original(self, batch, results)

    monkeypatch.setattr(writer_module.RunFileWriter, "append", slow_append)
    data = _config(tmp_path, events=1500).model_dump()
    data["pipeline"].update({"writer_queue_batches": 1, "put_timeout_s": 0.001})
    data["digitizer"]["batch_events"] = 16
    engine = _run(RunConfig.model_validate(data))
    c = engine.status().counters
    assert c.lost["writer_queue_full"] > 0
    assert c.triggers == c.written + c.lost_total
    with open_run_file(engine.status().path) as f:
        assert events_in(f) == c.written and f.attrs["complete"]
        assert f["counters"].attrs["lost_writer_queue_full"] == c.lost["writer_queue_full"]


def _start_cli_run(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cfg = tmp_path / "run.yaml"
    text = (ROOT / "config/run.yaml").read_text().replace("rate_hz: 500", "rate_hz: 2000")
    text = text.replace("slow_control: true", "slow_control: false")
    cfg.write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "daq.cli",
        "run",
        "--config",
        str(cfg),
        "--output",
        str(tmp_path / "runs"),
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _wait_for_events(path: Path, n: int, proc: subprocess.Popen[str], timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with open_run_file(path) as f:
                    got = events_in(f)
                if got >= n:
                    return got
            except (OSError, KeyError):
                pass  # the file is still being created
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {n} events")


def test_sigterm_stops_cleanly_with_a_complete_file(tmp_path: Path) -> None:
    proc = _start_cli_run(tmp_path, "--events", "0")
    path = tmp_path / "runs" / "run_000001.h5"
    _wait_for_events(path, 200, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM received" in out
    with open_run_file(path) as f:
        assert f.attrs["complete"] and f.attrs["stop_reason"] == "SIGTERM received"
        c = f["counters"].attrs
        assert c["events_written"] == events_in(f) and c["triggers"] == c["events_written"] + c["events_lost"]


def test_sigkill_leaves_a_readable_file_with_the_flushed_events_intact(tmp_path: Path) -> None:
    proc = _start_cli_run(tmp_path, "--events", "0")
    path = tmp_path / "runs" / "run_000001.h5"
    seen = _wait_for_events(path, 300, proc)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open_run_file(path) as f:
        assert not f.attrs["complete"] and f.attrs["stop_reason"] == ""
        n = events_in(f)
        assert n >= seen  # every event a reader saw flushed before the kill is still there
        ids = f["events/trigger_id"][:n].astype(np.int64)
        assert np.all(np.diff(ids) >= 1)
        _check_results_match_recomputation(f, n)
    assert "complete   : False" in describe_run(path)


def test_cli_run_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    )
    rc = main(
        ["run", "--config", str(cfg), "--events", "100", "--sim-rate", "max", "--output", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert (
        f"run file       : {tmp_path / 'run_000001.h5'}" in out and "SPE peak" in out and "NPE peaks" in out
    )
    assert main(["info", str(tmp_path / "run_000001.h5")]) == 0
    assert "complete   : True" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    assert "no such run file" in capsys.readouterr().err


def test_a_signal_handler_can_stop_a_run_while_the_main_thread_reads_its_status() -> None:
    from daq.run_context import RunContext

    ctx = RunContext()
    with ctx._lock:  # as inside engine.status(), when SIGINT arrives on the same thread
        ctx.request_stop("SIGINT received")
    assert ctx.stopping and ctx.stop_reason == "SIGINT received"
