"""Benchmark: pulse reconstruction waveforms/s on one core, numba kernel against its vectorised NumPy twin.

Both run the same algorithm (analysis.pulses, analysis.pulses_numpy) on the same simulated DT5751
records (8001 samples, the default physics) in the same run; the ratio is numba / NumPy.

    python bench/bench_pulses.py [--events 2048] [--seconds 5] [--against REV]

--against REV also times analysis/pulses.py as it was at git revision REV (loaded from `git show`), in the
same process and on the same records: the ratio says what a change of the kernel cost.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.pulses import analyse_batch
from analysis.pulses_numpy import analyse_batch_numpy
from simulators.records import simulated_records


def rate(func, waveforms: np.ndarray, batch: int, seconds: float) -> float:
    func(waveforms[:batch])  # warm-up (compilation)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for start in range(0, len(waveforms), batch):
            func(waveforms[start : start + batch])
        n += len(waveforms)
    return n / (time.perf_counter() - t0)


def kernel_at(revision: str):  # noqa: ANN201 - the analyse_batch of that revision
    """analysis.pulses.analyse_batch as it was at a git revision, imported from a temporary copy."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{revision}:analysis/pulses.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "pulses_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("pulses_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.analyse_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--against", default=None, metavar="REV", help="also time the kernel of this git revision"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    wfs = simulated_records(args.events)[0][:, 0, :]
    numba_rate = rate(analyse_batch, wfs, args.batch, args.seconds)
    numpy_rate = rate(analyse_batch_numpy, wfs, args.batch, args.seconds)
    mb = wfs.shape[1] * 2 / 1e6
    print(f"{len(wfs)} simulated records of {wfs.shape[1]} samples, batches of {args.batch}, one core pinned")
    print(f"numba kernel     : {numba_rate:9.0f} waveforms/s  {numba_rate * mb:7.0f} MB/s")
    print(f"NumPy vectorised : {numpy_rate:9.0f} waveforms/s  {numpy_rate * mb:7.0f} MB/s")
    print(f"ratio numba / NumPy: {numba_rate / numpy_rate:.1f}")
    if args.against:
        old_rate = rate(kernel_at(args.against), wfs, args.batch, args.seconds)
        again = rate(analyse_batch, wfs, args.batch, args.seconds)  # interleaved: the machine's load drifts
        print(f"kernel at {args.against}: {old_rate:9.0f} waveforms/s")
        print(f"ratio this / {args.against}: {0.5 * (numba_rate + again) / old_rate:.3f}")
    print(
        f"targets: >= 100000 waveforms/s {'met' if numba_rate >= 1e5 else 'NOT met'}; "
        f">= 10x NumPy {'met' if numba_rate >= 10 * numpy_rate else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
