"""Benchmark: `daq export --root` of a 10^5-event run file, events/s against plain reads of the same run.

Records a simulated run with `daq run` (as fast as the simulator goes, no slow control) unless a run
file is given, then, in this process: the reference, a plain h5py read of the run's per-event and
per-peak datasets (what the export must read at least); the export of the same run to ROOT (without
waveforms; with `--waveforms` also an export with them, against a plain read of every waveform).
Prints events/s, the ratio export / read, the ROOT file's size and the peak resident memory.

    python bench/bench_export.py [--events 100000] [--run RUN.h5] [--waveforms] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.root_export import export_root  # noqa: E402


def _record(work: Path, events: int) -> Path:
    cfg = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    (work / "run.yaml").write_text(cfg)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(work / "run.yaml"), "--events",
                    str(events), "--sim-rate", "max", "--output", str(work / "runs")],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    run_file = sorted((work / "runs").glob("run_*.h5"))[-1]
    print(f"recorded {run_file} in {time.perf_counter() - t0:.1f} s ({run_file.stat().st_size / 1e6:.0f} MB)")
    return run_file


def _read_per_event(run_file: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    with h5py.File(run_file, "r") as f:
        n = f["events/total_q"].shape[0]
        for name in ("timestamp_ns", "trigger_id", "total_q", "integral_q", "baseline", "baseline_rms",
                     "n_peaks", "peak_offset"):  # fmt: skip
            f[f"events/{name}"][:]
        for name in ("q", "t_start_ns", "t_end_ns"):
            f[f"peaks/{name}"][:]
    return n, time.perf_counter() - t0


def _read_waveforms(run_file: Path) -> float:
    t0 = time.perf_counter()
    with h5py.File(run_file, "r") as f:
        wf = f["events/waveform"]
        for a in range(0, wf.shape[0], 512):
            wf[a : a + 512]
    return time.perf_counter() - t0


def _export(run_file: Path, out: Path, waveforms: bool) -> float:
    t0 = time.perf_counter()
    export_root([run_file], out, waveforms=waveforms)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--run", default=None, help="an existing run file instead of a new simulated run")
    ap.add_argument("--waveforms", action="store_true", help="also time an export with the waveforms")
    ap.add_argument("--keep", default=None, help="directory for the run and ROOT files (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_export_"))
    work.mkdir(parents=True, exist_ok=True)
    run_file = Path(args.run) if args.run else _record(work, args.events)
    n, read_s = _read_per_event(run_file)
    out = work / "export.root"
    export_s = _export(run_file, out, waveforms=False)
    print(f"events                       : {n}")
    print(
        f"reference: plain read        : {read_s:.2f} s ({n / read_s:,.0f} events/s) of the per-event and per-peak datasets"
    )
    print(
        f"daq export --root            : {export_s:.2f} s ({n / export_s:,.0f} events/s), {out.stat().st_size / 1e6:.1f} MB"
    )
    print(f"ratio export / read          : {export_s / read_s:.1f}")
    if args.waveforms:
        wave_read_s = _read_waveforms(run_file)
        wave_export_s = _export(run_file, out, waveforms=True)
        print(f"reference: waveform read     : {wave_read_s:.2f} s ({n / wave_read_s:,.0f} events/s)")
        print(f"daq export --waveforms       : {wave_export_s:.2f} s ({n / wave_export_s:,.0f} events/s), "
              f"{out.stat().st_size / 1e6:.0f} MB")  # fmt: skip
        print(f"ratio export / reads         : {wave_export_s / (read_s + wave_read_s):.1f}")
    print(
        f"peak resident memory         : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
