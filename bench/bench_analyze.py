"""Benchmark: `daq analyze` of a 10^5-event run file, all fits included (target: under 15 s).

Records a simulated run with `daq run` (as fast as the simulator goes, no slow control) unless a run
file is given, then times `daq analyze` in a fresh process, end to end (start-up, reading, SPE,
spectrum and decay fits, JSON and plots). The references measured in the same run are plain reads of
the same file: the per-event and per-peak datasets, and every waveform (which the threshold-free SPE
calibration reads once); analyze / read shows what the analysis costs on top.

    python bench/bench_analyze.py [--events 100000] [--run RUN.h5] [--keep DIR]
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
TARGET_S = 15.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--run", default=None, help="an existing run file instead of a new simulated run")
    ap.add_argument(
        "--keep", default=None, help="directory for the run file and outputs (default: a temp dir)"
    )
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_analyze_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.run:
        run_file = Path(args.run)
    else:
        cfg = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
        (work / "run.yaml").write_text(cfg)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(work / "run.yaml"), "--events",
                        str(args.events), "--sim-rate", "max", "--output", str(work / "runs")],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
        run_file = sorted((work / "runs").glob("run_*.h5"))[-1]
        print(
            f"recorded {run_file} in {time.perf_counter() - t0:.1f} s ({run_file.stat().st_size / 1e6:.0f} MB)"
        )
    t0 = time.perf_counter()
    with h5py.File(run_file, "r") as f:
        n = f["events/total_q"].shape[0]
        for name in ("total_q", "baseline", "baseline_rms", "n_peaks", "peak_offset"):
            f[f"events/{name}"][:]
        for name in ("q", "t_start_ns", "t_end_ns"):
            f[f"peaks/{name}"][:]
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with h5py.File(run_file, "r") as f:
        wf = f["events/waveform"]
        for a in range(0, wf.shape[0], 2048):
            wf[a : a + 2048]
    waveforms_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "daq.cli", "analyze", str(run_file), "--json",
                           str(work / "report.json"), "--plots", str(work / "plots")],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    analyze_s = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"daq analyze failed:\n{done.stderr}")
    print(done.stdout.strip().splitlines()[-1])
    print(f"events                  : {n}")
    print(f"daq analyze, end to end : {analyze_s:.1f} s ({n / analyze_s:,.0f} events/s)")
    print(f"reference: plain read   : {read_s:.2f} s of the per-event and per-peak datasets")
    print(f"reference: waveforms    : {waveforms_s:.2f} s for a plain read of every waveform")
    print(f"ratio analyze / reads   : {analyze_s / (read_s + waveforms_s):.1f}")
    print(
        f"ratio to the {TARGET_S:.0f} s target: {analyze_s / TARGET_S:.2f} "
        f"({'met' if analyze_s < TARGET_S else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
