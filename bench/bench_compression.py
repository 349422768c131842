"""Benchmark: compression ratio and write speed of simulated DT5751 waveforms in HDF5, per filter.

Writes the same simulated records (default physics, 8001 samples) as chunked datasets of 16 events,
once per filter, in batches of 256; the reference is the uncompressed write measured in the same run.

    python bench/bench_compression.py [--events 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from daq.writer import compression_options
from simulators.records import simulated_records


def write(path: Path, records: np.ndarray, kind: str) -> tuple[float, float]:
    """Return (seconds, bytes on disk) to write `records` with filter `kind`."""
    t0 = time.perf_counter()
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset(
            "waveform", shape=(0, *records.shape[1:]), maxshape=(None, *records.shape[1:]), dtype="i2",
            chunks=(16, *records.shape[1:]), **compression_options(kind),
        )  # fmt: skip
        for start in range(0, len(records), 256):
            part = records[start : start + 256]
            ds.resize(start + len(part), axis=0)
            ds[start:] = part
    return time.perf_counter() - t0, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4096)
    args = parser.parse_args()
    records, _ = simulated_records(args.events)
    raw_mb = records.nbytes / 1e6
    print(f"{len(records)} simulated records x {records.shape[2]} samples = {raw_mb:.0f} MB raw")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("none", "bitshuffle-lz4", "gzip"):
            seconds, size = write(Path(tmp) / f"{kind}.h5", records, kind)
            results[kind] = (seconds, size)
            print(
                f"{kind:15s}: ratio {records.nbytes / size:5.2f}  write {raw_mb / seconds:7.0f} MB/s of raw samples"
            )
    ref = results["none"][0]
    for kind in ("bitshuffle-lz4", "gzip"):
        print(f"{kind} write speed / uncompressed write speed: {ref / results[kind][0]:.2f}")
    ratio = records.nbytes / results["bitshuffle-lz4"][1]
    print(
        f"target ratio >= 3 with bitshuffle-lz4 (the default): {'met' if ratio >= 3 else 'NOT met'} ({ratio:.2f})"
    )


if __name__ == "__main__":
    main()
