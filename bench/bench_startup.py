"""Benchmark: start-up wall time of the `daq` command, against `python -c pass` measured in the same run.

Each command runs REPEAT times in a fresh process (warm: after one unmeasured run, so the OS file cache
and Python's bytecode cache are filled); the median wall time is printed with its ratio to
`python -c pass`. Commands: `daq --help`, `daq --version`, `daq info RUN.h5` and `daq runs DIR` on a short
simulated run recorded first (10 events). Issue 15 target: `daq --help` < 0.5 s warm.

    python bench/bench_startup.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_HELP_S = 0.5


def wall_s(argv: list[str], repeat: int) -> float:
    """Median wall time of `argv` in a fresh process (one warm-up run first)."""
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def record(work: Path) -> Path:
    cfg = (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    (work / "run.yaml").write_text(cfg)
    subprocess.run([sys.executable, "-m", "daq.cli", "run", "--config", str(work / "run.yaml"), "--events", "10",
                    "--sim-rate", "max", "--output", str(work / "runs")],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return work / "runs" / "run_000001.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    daq = [sys.executable, "-m", "daq.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        run_file = record(Path(tmp))
        ref_s = wall_s([sys.executable, "-c", "pass"], args.repeat)
        print(f"python -c pass         : {ref_s:6.3f} s (median of {args.repeat})")
        results = {}
        for name, extra in (
            ("daq --help", ["--help"]),
            ("daq --version", ["--version"]),
            ("daq info RUN.h5", ["info", str(run_file)]),
            ("daq runs DIR", ["runs", str(run_file.parent)]),
        ):
            results[name] = wall_s(daq + extra, args.repeat)
            print(f"{name:23s}: {results[name]:6.3f} s, {results[name] / ref_s:5.1f} x python -c pass")
    help_s = results["daq --help"]
    print(
        f"target daq --help < {TARGET_HELP_S} s warm: {'met' if help_s < TARGET_HELP_S else 'NOT met'} ({help_s:.3f} s)"
    )


if __name__ == "__main__":
    main()
