"""Simulated runs in memory for the closed-loop tests: the DT5751 simulator, the pulse kernel, EventData."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from analysis.pulses import PulseSettings, analyse_batch
from analysis.run_data import EventData, concat_results, event_data_from_results
from drivers import DigitizerSettings, Dt5751

KEEP_WAVEFORMS = 8000  # events whose waveforms stay in memory for the decay average


def simulated_event_data(n_events: int, options: str, temperature_k: float = 77.0) -> EventData:
    """n_events of the simulator with URL options (e.g. "seed=3&light_yield_pe_per_kev=28"), analysed."""
    settings = PulseSettings(count_boundaries=False)
    parts, kept = [], []
    with Dt5751.open(f"sim://dt5751?pace=max&temperature_k={temperature_k}&{options}") as board:
        board.configure(DigitizerSettings())
        board.arm()
        got = 0
        while got < n_events:
            batch = board.read_batch(min(1024, n_events - got))
            wf = batch.waveforms[:, 0, :8000]
            parts.append(analyse_batch(wf, settings))
            if got < KEEP_WAVEFORMS:
                kept.append(wf.copy())
            got += len(batch)
        board.disarm()
    waveforms = np.concatenate(kept)

    def chunks(selected: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        idx = np.flatnonzero(selected[: waveforms.shape[0]])
        yield waveforms[idx], idx

    return event_data_from_results(
        concat_results(parts), source=Path(f"sim:{options}"), kind="simulation", channel=0, pulse=settings,
        record_length=8000, waveform_chunks=chunks, nominal_temperature_k=temperature_k,
        temperature_note="simulated",
    )  # fmt: skip


def expected_fwhm_percent(ly: float, q_spe: float, sigma_spe: float, sigma_int: float = 0.0182) -> float:
    """PHYSICS.md 2.5: (sigma/mu)^2 = (1 + (sigma_spe/Qspe)^2) / N + sigma_int^2 at 59.54 keV."""
    n = ly * 59.54
    return 100.0 * 2.3548 * float(np.sqrt((1.0 + (sigma_spe / q_spe) ** 2) / n + sigma_int**2))
