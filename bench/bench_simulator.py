"""Benchmark: simulated DT5751 waveforms per second on one core, against a same-run noise-only reference.

Prints the physics simulator's rate (records with pulses, pile-up, trigger search, digitisation),
the rate through the FELib node interface and the driver (what a run sees), and the rate of a
reference that only fills the same number of samples with Gaussian noise (numpy, SFC64), with the
simulator's own noise kernel (xoshiro256+ ziggurat) beside it.

    python bench/bench_simulator.py [--seconds 10] [--channels 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def bench_signal(seconds: float) -> tuple[float, int]:
    from simulators.pcsi_signal import BoardSetup, PcsiSignal
    from simulators.physics_settings import PhysicsSettings

    signal = PcsiSignal(PhysicsSettings(seed=1, pace="max"))
    setup = BoardSetup(
        8001, 1601, (True, False, False, False), (902.5, 0, 0, 0), (873, None, None, None), True, True
    )
    for _ in range(200):  # warm-up (numba compile, caches)
        signal.next_triggered(setup, float("inf"))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            signal.next_triggered(setup, float("inf"))
        n += 100
    return n / (time.perf_counter() - t0), 8001


def bench_driver(seconds: float, channels: int) -> float:
    from daq.digitizer_urls import register_simulated_dt5751
    from drivers import ChannelSettings, DigitizerSettings, Dt5751

    register_simulated_dt5751()  # sim:// is the program's choice, not the driver's (daq/digitizer_urls.py)
    chans = {ch: ChannelSettings(self_trigger=(ch == 0)) for ch in range(channels)}
    with Dt5751.open("sim://dt5751?seed=1&pace=max") as board:
        board.configure(DigitizerSettings(channels=chans))
        board.arm()
        board.read_batch(256)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += len(board.read_batch(256))
        rate = n / (time.perf_counter() - t0)
        board.disarm()
    return rate


def bench_noise_reference(seconds: float, samples: int, kernel: bool = False) -> float:
    from simulators.normal_kernels import FN, KN, WN, fill_normal, new_state

    rng = np.random.Generator(np.random.SFC64(1))
    state = new_state(rng)
    out = np.empty(samples, dtype=np.float32)
    fill_normal(out, state, KN, WN, FN)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            if kernel:
                fill_normal(out, state, KN, WN, FN)
            else:
                rng.standard_normal(out=out, dtype=np.float32)
        n += 100
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 2, 3, 4))
    args = parser.parse_args()
    _pin_one_core()
    sim_rate, samples = bench_signal(args.seconds)
    drv_rate = bench_driver(args.seconds, args.channels)
    ref_rate = bench_noise_reference(args.seconds / 2, samples)
    kernel_rate = bench_noise_reference(args.seconds / 2, samples, kernel=True)
    mb = samples * 2 / 1e6
    print(f"record: {samples} samples x {args.channels} channel(s), 2 bytes/sample; one core pinned")
    print(f"physics simulator      : {sim_rate:9.0f} waveforms/s  {sim_rate * mb:7.1f} MB/s")
    print(f"through FELib + driver : {drv_rate:9.0f} events/s     {drv_rate * mb * args.channels:7.1f} MB/s")
    print(
        f"reference (noise only) : {ref_rate:9.0f} waveforms/s  {ref_rate * mb:7.1f} MB/s  (numpy SFC64 normals)"
    )
    print(
        f"noise kernel alone     : {kernel_rate:9.0f} waveforms/s  {kernel_rate * mb:7.1f} MB/s  (the simulator's)"
    )
    print(
        f"ratio simulator / reference: {sim_rate / ref_rate:.2f}; driver / simulator: {drv_rate / sim_rate:.2f}"
    )
    print(f"target >= 5000 waveforms/s: {'met' if sim_rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
