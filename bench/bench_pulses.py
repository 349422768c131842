"""Benchmark: pulse reconstruction waveforms/s on one core, numba kernel against its vectorised NumPy twin.

Both run the same algorithm (analysis.pulses, analysis.pulses_numpy) on the same simulated DT5751
records (8001 samples, the default physics) in the same run; the ratio is numba / NumPy.

    python bench/bench_pulses.py [--events 2048] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
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
    print(
        f"targets: >= 100000 waveforms/s {'met' if numba_rate >= 1e5 else 'NOT met'}; "
        f">= 10x NumPy {'met' if numba_rate >= 10 * numpy_rate else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
