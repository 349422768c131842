"""A disk filled by another program mid-run: `daq run` stops with exit 3, the reason recorded, every event real.

The disk is simulated per process (tests/daq/full_disk.py): RLIMIT_FSIZE makes HDF5's writes really fail
when the simulated disk is full, and shutil.disk_usage reports its free space.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from analysis.run_file_open import UnreadableRunFile
from daq.run_info import EVENT_DATASETS, describe_run, events_in, open_run_file

ROOT = Path(__file__).resolve().parents[2]


def _run_on_a_filling_disk(
    tmp_path: Path, free_mb: float, fill_mb: float, lie: bool
) -> subprocess.CompletedProcess:
    cfg = tmp_path / "run.yaml"
    text = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    cfg.write_text(
        text.replace("min_free_disk_mb: 500", "min_free_disk_mb: 20")
        .replace("seed: 1", "seed: 7")
        # flushed 20 times a second: after a lost race the file keeps what the last flush wrote
        .replace("flush_interval_s: 1.0", "flush_interval_s: 0.05")
    )
    argv = [
        "run",
        "--config",
        str(cfg),
        "--output",
        str(tmp_path / "runs"),
        "--events",
        "5000",
        "--sim-rate",
        "max",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.daq.full_disk",
            str(free_mb),
            str(fill_mb),
            "1" if lie else "0",
            "--",
            *argv,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, proc.stderr  # before the fix: 139 (segfault) after a traceback
    return proc


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def _check_every_claimed_event_is_real(path: Path, stdout: str) -> int:
    """The counters, every per-event dataset, the data and the printed summary agree: no event is claimed
    that was not written."""
    with open_run_file(path) as f:
        n = events_in(f)
        ev = f["events"]
        assert {ev[name].shape[0] for name in EVENT_DATASETS} == {n}
        assert int(f["counters"].attrs["events_written"]) == n
        c = f["counters"].attrs
        assert c["triggers"] == c["events_written"] + c["events_lost"]
        waveforms = ev["waveform"][:].reshape(n, -1)
        assert np.all(waveforms.any(axis=1)), "events of zeros: claimed but never written"
        assert np.all(np.diff(ev["trigger_id"][:].astype(np.int64)) == 1)
        assert np.all(np.diff(ev["timestamp_ns"][:].astype(np.int64)) > 0)
        last = ev["peak_offset"][-1, 0] + ev["n_peaks"][-1, 0] if n else 0
        assert f["peaks/q"].shape[0] == last
        assert not f.attrs["complete"]
        printed = next(line for line in stdout.splitlines() if line.startswith("events "))
        assert f" {n} written" in printed and f", {int(c['events_lost'])} lost" in printed
        return n


def test_the_run_stops_while_the_disk_still_has_its_reserve(tmp_path: Path) -> None:
    proc = _run_on_a_filling_disk(tmp_path, free_mb=60, fill_mb=2, lie=False)
    path = tmp_path / "runs" / "run_000001.h5"
    errors = _errors(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert f"MB free on the disk of {path} (limit writer.min_free_disk_mb = 20" in errors[0]
    n = _check_every_claimed_event_is_real(path, proc.stdout)
    assert n > 0
    summary = describe_run(path)
    assert "stop reason: fault: run file writer: only" in summary and f"its {n} events safe" in summary
    assert not list((tmp_path / "runs").glob(".*reserve"))  # the writer's reserve is gone with the run


def test_a_disk_filled_between_check_and_write_is_finished_in_the_freed_reserve(tmp_path: Path) -> None:
    """The free-space check sees room, yet HDF5's write fails: the reserve gives room to finish the file."""
    proc = _run_on_a_filling_disk(tmp_path, free_mb=60, fill_mb=2, lie=True)
    path = tmp_path / "runs" / "run_000001.h5"
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and f"writing {path} failed (File too large; " in errors[0], proc.stderr
    assert "disk reserve was freed" in proc.stderr
    assert _check_every_claimed_event_is_real(path, proc.stdout) > 0
    assert "stop reason: fault: run file writer: writing" in describe_run(path)


def test_a_disk_that_stays_full_leaves_no_event_claimed_that_is_not_there(tmp_path: Path) -> None:
    """The other program takes the freed reserve too: the file cannot be finished, and says nothing false."""
    proc = _run_on_a_filling_disk(tmp_path, free_mb=60, fill_mb=20, lie=True)
    path = tmp_path / "runs" / "run_000001.h5"
    assert f"{path} could not be finished after the write failure" in proc.stderr
    try:
        with open_run_file(path) as f:
            n = events_in(f)
            waveforms = f["events/waveform"][:].reshape(n, -1)
    except UnreadableRunFile as exc:  # readers then say so in one line
        assert str(path) in str(exc)
    else:
        assert np.all(waveforms.any(axis=1))
