"""Benchmark: `daq runs` on a folder of 1000 run files, against opening and closing the same files with h5py.

Records one short simulated run with `daq run` (10 events, so every group, dataset and attribute of a
real run file is there), copies it into FILES files with their own run numbers, and marks KILLED of them
as killed runs (reopened for SWMR writing by a process that exits without closing them, as a SIGKILL
leaves them). Then, in the same run: the listing (daq.run_list.list_runs, attributes only) and the
reference, h5py.File open + close of the same files (SWMR for the killed ones, as they must be opened);
files/s of each, their ratio, and the wall time of the whole `daq runs DIR` command (a fresh process).

    python bench/bench_runs.py [--files 1000] [--killed 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daq.run_list import list_runs  # noqa: E402

# Reopen each file for SWMR writing, then exit without closing: HDF5's "open for writing" flags stay set.
_KILL = (
    "import h5py, os, sys\n"
    "files = [h5py.File(p, 'r+', libver=('v110', 'v110')) for p in sys.argv[1:]]\n"
    "for f in files:\n    f.swmr_mode = True\n    f.flush()\n"
    "os._exit(0)\n"
)


def make_folder(work: Path, n_files: int, n_killed: int) -> Path:
    """FILES copies of a real 10-event run file, numbered 1..FILES, the last KILLED of them killed."""
    cfg = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    (work / "run.yaml").write_text(cfg)
    subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(work / "run.yaml"), "--events", "10",
                    "--sim-rate", "max", "--output", str(work / "seed")],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    seed = work / "seed" / "run_000001.h5"
    folder = work / "runs"
    folder.mkdir()
    paths = []
    for number in range(1, n_files + 1):
        path = folder / f"run_{number:06d}.h5"
        shutil.copyfile(seed, path)
        with h5py.File(path, "r+") as f:
            f.attrs["run_number"] = number
            if number > n_files - n_killed:  # a killed run has no end record
                f.attrs.update(complete=False, stopped_at="", stop_reason="")
                del f["counters"], f["histograms"]
        paths.append(path)
    if n_killed:
        killed = [str(p) for p in paths[-n_killed:]]
        subprocess.run([sys.executable, "-c", _KILL, *killed], check=True)
        old_s = time.time() - 3600  # last written an hour ago: killed, not running
        for path in killed:
            os.utime(path, (old_s, old_s))
    print(
        f"{n_files} copies of a 10-event run file ({seed.stat().st_size / 1e3:.0f} kB each), {n_killed} killed"
    )
    return folder


def open_close(paths: list[Path], killed: set[Path]) -> None:
    for path in paths:
        with h5py.File(path, "r", swmr=path in killed):
            pass


def best_of(repeat: int, call: object) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--killed", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.files, args.killed)
        paths = sorted(folder.glob("*.h5"))
        killed = set(paths[len(paths) - args.killed :])
        rows = list_runs(folder)
        statuses = {s: sum(r.status == s for r in rows) for s in {r.status for r in rows}}
        print(f"daq runs sees: {statuses}")
        ref_s = best_of(args.repeat, lambda: open_close(paths, killed))
        list_s = best_of(args.repeat, lambda: list_runs(folder))
        print(
            f"h5py.File open + close : {len(paths) / ref_s:8.0f} files/s ({ref_s:.3f} s for {len(paths)} files)"
        )
        print(
            f"daq runs (list_runs)   : {len(paths) / list_s:8.0f} files/s ({list_s:.3f} s for {len(paths)} files)"
        )
        print(f"daq runs / open+close speed: {ref_s / list_s:.2f}")
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "daq.cli", "runs", str(folder)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            walls.append(time.perf_counter() - t0)
        print(
            f"`daq runs DIR` command, {len(paths)} files, fresh process: {statistics.median(walls):.2f} s (median)"
        )


if __name__ == "__main__":
    main()
