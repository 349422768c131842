"""Benchmark: replay at max speed from a compressed run file through the online analysis, no new file.

Records a simulated run (bitshuffle-LZ4, 8001-sample records) with `daq run` unless a run file is
given, then runs the replay pipeline in this process: the run file source, the simulated DT5751 playing
it, the driver, the readout thread and the analysis thread with its numba kernel and live histograms
(`daq replay RUN --speed max` without --output). Issue 6 target: >= 20,000 waveforms/s.
The reference measured in the same run is a plain read of the same waveforms with h5py (decompression
only): replay / read shows what the simulated board, driver and analysis cost on top.

    python bench/bench_replay.py [--events 60000] [--run RUN.h5] [--keep DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_WF_PER_S = 20_000.0

from daq.replay_command import prepare_replay  # noqa: E402
from simulators.replay_source import open_replay_source  # noqa: E402


def record(work: Path, events: int) -> Path:
    cfg = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    (work / "run.yaml").write_text(cfg)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(work / "run.yaml"), "--events",
                    str(events), "--sim-rate", "max", "--output", str(work / "runs")],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    run_file = sorted((work / "runs").glob("run_*.h5"))[-1]
    print(f"recorded {run_file} in {time.perf_counter() - t0:.1f} s ({run_file.stat().st_size / 1e6:.0f} MB)")
    return run_file


def plain_read(run_file: Path) -> tuple[int, int, float]:
    """Read every waveform in 1024-event slices; return (events, raw bytes, seconds)."""
    t0 = time.perf_counter()
    with h5py.File(run_file, "r") as f:
        ds = f["events/waveform"]
        n, raw = ds.shape[0], 0
        for start in range(0, n, 1024):
            raw += ds[start : start + 1024].nbytes
    return n, raw, time.perf_counter() - t0


def replay_once(run_file: Path) -> tuple[int, int, float, float]:
    """Replay at max speed without a file; return (events, raw bytes, seconds end to end, seconds acquiring)."""
    source = open_replay_source(run_file, follow=False)
    session = prepare_replay(source)  # as `daq replay RUN --speed max`, without --output
    engine = session.engine
    try:
        t0 = time.perf_counter()
        engine.start()
        engine.wait()
        total_s = time.perf_counter() - t0
    finally:
        session.close()
    c = engine.status().counters
    if c.analysed != c.read or c.lost_total:
        sys.exit(f"replay lost events: {c}")
    return c.analysed, c.bytes_read, total_s, engine.readout.acquired_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--run", default=None, help="an existing run file instead of a new simulated run")
    ap.add_argument("--keep", default=None, help="directory for the run file (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=3, help="replays to time (the best is reported)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_replay_"))
    work.mkdir(parents=True, exist_ok=True)
    run_file = Path(args.run) if args.run else record(work, args.events)
    n, raw, read_s = plain_read(run_file)  # also warms the page cache for the replays
    n, raw, read_s = plain_read(run_file)
    best = min((replay_once(run_file) for _ in range(args.repeat)), key=lambda r: r[2])
    events, nbytes, total_s, acquired_s = best
    rate = events / total_s
    print(f"events                       : {events} of {n} in the file ({raw / n / 1e3:.1f} kB raw each)")
    print(f"replay, max speed, analysis  : {total_s:.2f} s end to end -> {rate:,.0f} waveforms/s, "
          f"{nbytes / 1e6 / total_s:,.0f} MB/s of raw samples (readout alone {events / acquired_s:,.0f}/s)")  # fmt: skip
    print(
        f"reference: plain h5py read   : {read_s:.2f} s -> {n / read_s:,.0f} waveforms/s, {raw / 1e6 / read_s:,.0f} MB/s"
    )
    print(f"ratio replay / plain read    : {rate / (n / read_s):.2f}")
    print(f"ratio to the 20,000/s target : {rate / TARGET_WF_PER_S:.2f} "
          f"({'met' if rate >= TARGET_WF_PER_S else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
