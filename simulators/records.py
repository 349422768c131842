"""Simulated DT5751 records taken through the driver, for benchmarks, replays and examples."""

from __future__ import annotations

import numpy as np

from drivers import DigitizerSettings, Dt5751, EffectiveSettings, FelibError
from simulators.dt5751 import connect


def simulated_records(n_events: int, options: str = "seed=1") -> tuple[np.ndarray, EffectiveSettings]:
    """Return `n_events` records (n, channels, samples) int16 of the default simulated board, as fast as made.

    options: extra URL query of the simulator, e.g. "seed=3&light_yield_pe_per_kev=28".
    """
    url = f"sim://dt5751?pace=max&{options}"
    with Dt5751(connect(url), url, (FelibError,)) as board:  # the simulator's own node: no URL registry
        effective = board.configure(DigitizerSettings())
        board.arm()
        parts, got = [], 0
        while got < n_events:
            batch = board.read_batch(min(512, n_events - got))
            parts.append(batch.waveforms)
            got += len(batch)
        board.disarm()
    return np.concatenate(parts), effective
