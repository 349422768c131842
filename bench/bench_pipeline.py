"""Benchmark: the whole run pipeline (queue, numba analysis, compressed HDF5 writing) at a sustained rate.

Source `memory`: simulated DT5751 records generated beforehand, handed out as fresh batches at
--rate waveforms/s (paced, like a board); `simulator`: the physics simulator at its own max pace.
Prints the sustained rate, MB/s, losses, the largest queue fill, the file's compression ratio,
and the ratio against the target rate and against the source alone (measured in the same run).

    python bench/bench_pipeline.py [--source memory|simulator] [--rate 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from daq.config import RunConfig, load_config
from daq.engine import RunEngine
from drivers import EffectiveSettings, EventBatch
from simulators.records import simulated_records

ROOT = Path(__file__).resolve().parents[1]


class MemorySource:
    """A board stand-in that hands out pre-generated records at a fixed rate (the Board protocol of daq.stages)."""

    def __init__(self, records: np.ndarray, effective: EffectiveSettings, rate_hz: float) -> None:
        self._records, self._effective, self._rate = records, effective, rate_hz
        self._next = 0
        self._t0 = 0.0
        self._armed = False

    def configure(self, settings: object) -> EffectiveSettings:
        return self._effective

    def arm(self) -> None:
        self._t0 = time.monotonic()
        self._armed = True

    def disarm(self) -> None:
        self._armed = False

    def close(self) -> None:
        pass

    def read_batch(self, max_events: int = 256, max_wait_s: float = 0.1) -> EventBatch:
        if not self._armed:
            return self._batch(0, end=True)
        due = self._t0 + (self._next + max_events) / self._rate if self._rate > 0 else 0.0
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, max_wait_s))
        if self._rate > 0:
            available = int((time.monotonic() - self._t0) * self._rate) - self._next
            n = max(0, min(max_events, available))
        else:
            n = max_events
        return self._batch(n)

    def _batch(self, n: int, end: bool = False) -> EventBatch:
        idx = (self._next + np.arange(n)) % len(self._records)
        ids = self._next + np.arange(n)
        self._next += n
        return EventBatch(
            waveforms=self._records[idx],  # a fresh copy, as the driver makes one out of FELib's buffers
            timestamp_ns=(ids * 1e9 / max(self._rate, 1.0)).astype(np.uint64),
            trigger_id=(ids % (1 << 24)).astype(np.uint32),
            channels=(0,),
            end_of_run=end,
        )


def source_alone(records: np.ndarray, effective: EffectiveSettings, seconds: float) -> float:
    src = MemorySource(records, effective, rate_hz=0)
    src.arm()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += len(src.read_batch(256))
    return n / (time.perf_counter() - t0)


def run_pipeline(cfg: RunConfig, opener, seconds: float) -> tuple[RunEngine, int, int]:
    engine = RunEngine(cfg, opener)
    max_fill = [0, 0]

    def watch() -> None:
        while engine.ctx.state.value in ("idle", "configuring", "running"):
            s = engine.status()
            max_fill[0] = max(max_fill[0], s.analysis_queue_fill)
            max_fill[1] = max(max_fill[1], s.writer_queue_fill)
            time.sleep(0.05)

    engine.start()
    threading.Thread(target=watch, daemon=True).start()
    if not engine.wait(timeout_s=seconds + 120):
        engine.request_stop("benchmark timeout")
        engine.wait()
    return engine, max_fill[0], max_fill[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("memory", "simulator"), default="memory")
    parser.add_argument(
        "--rate", type=float, default=10_000.0, help="memory source: waveforms/s (0: unpaced)"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--compression", choices=("bitshuffle-lz4", "gzip", "none"), default="bitshuffle-lz4")
    parser.add_argument("--keep", action="store_true", help="keep the run file")
    args = parser.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    data = load_config(ROOT / "config/run.yaml").model_dump()
    data["run"].update({"events": None, "duration_s": args.seconds, "output_dir": str(out_dir)})
    data["writer"]["compression"] = args.compression
    data["simulation"]["pace"] = "max"
    cfg = RunConfig.model_validate(data)
    reference = None
    if args.source == "memory":
        records, effective = simulated_records(1024)
        reference = source_alone(records, effective, 3.0)
        engine, fill_a, fill_w = run_pipeline(
            cfg, lambda: MemorySource(records, effective, args.rate), args.seconds
        )
    else:
        engine, fill_a, fill_w = run_pipeline(cfg, None, args.seconds)
    status = engine.status()
    c = status.counters
    size_mb = status.path.stat().st_size / 1e6 if status.path else float("nan")
    raw_mb = c.bytes_read / 1e6
    acquisition_s = engine.readout.acquired_s or status.elapsed_s
    rate = c.written / acquisition_s
    print(f"source {args.source}, {args.seconds:g} s, compression {args.compression}, 2 cores")
    print(
        f"sustained      : {rate:9.0f} waveforms/s written  {raw_mb / acquisition_s:7.1f} MB/s of raw samples "
        f"over {acquisition_s:.1f} s of acquisition (run closed {status.elapsed_s - acquisition_s:.1f} s later)"
    )
    print(
        f"events         : {c.read} read, {c.written} written, lost {c.lost_total} {c.lost if c.lost_total else ''}"
    )
    print(
        f"queue fill max : analysis {fill_a}/{cfg.pipeline.analysis_queue_batches}, "
        f"writer {fill_w}/{cfg.pipeline.writer_queue_batches} batches"
    )
    print(
        f"run file       : {size_mb:.0f} MB for {raw_mb:.0f} MB raw, compression ratio {raw_mb / size_mb:.2f}"
    )
    if args.source == "memory":
        print(
            f"ratio to target {args.rate:g}/s: {rate / args.rate:.3f}; "
            f"source alone {reference:.0f}/s, pipeline / source alone {rate / reference:.3f}"
        )
    print(
        f"zero loss: {'yes' if c.lost_total == 0 else 'NO'}; state {status.state.value} ({status.stop_reason})"
    )
    if not args.keep:
        shutil.rmtree(out_dir)


if __name__ == "__main__":
    main()
