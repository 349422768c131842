"""Simulated runs in memory for the closed-loop tests: the DT5751 simulator, the pulse kernel, EventData."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from analysis.pulses import PulseSettings, analyse_batch
from analysis.run_data import EventData, concat_results, event_data_from_results
from drivers import ChannelSettings, DigitizerSettings, Dt5751

SAMPLES = 8000
BASELINE_SAMPLES = 1400
SIGNAL_SAMPLES = SAMPLES - BASELINE_SAMPLES


def simulated_event_data(
    n_events: int, options: str, temperature_k: float = 77.0, threshold_adc: int = 30
) -> EventData:
    """n_events of the simulator with URL options (e.g. "seed=3&light_yield_pe_per_kev=28"), analysed.

    Every waveform is kept in memory (16 kB each): the window calibration reads them all.
    """
    settings = PulseSettings(count_boundaries=False)
    parts, kept = [], []
    digitizer = DigitizerSettings(
        channels={0: ChannelSettings(self_trigger=True, threshold_adc=threshold_adc)}
    )
    with Dt5751.open(f"sim://dt5751?pace=max&temperature_k={temperature_k}&{options}") as board:
        board.configure(digitizer)
        board.arm()
        got = 0
        while got < n_events:
            batch = board.read_batch(min(1024, n_events - got))
            wf = batch.waveforms[:, 0, :SAMPLES]
            parts.append(analyse_batch(wf, settings))
            kept.append(wf.copy())
            got += len(batch)
        board.disarm()
    waveforms = np.concatenate(kept)

    def chunks(selected: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for a in range(0, waveforms.shape[0], 4096):
            idx = np.flatnonzero(selected[a : a + 4096]) + a
            if idx.size:
                yield waveforms[idx], idx

    return event_data_from_results(
        concat_results(parts), source=Path(f"sim:{options}"), kind="simulation", channel=0, pulse=settings,
        record_length=SAMPLES, waveform_chunks=chunks, nominal_temperature_k=temperature_k,
        temperature_note="simulated",
    )  # fmt: skip


def expected_fwhm_percent(
    ly: float, q_spe: float, sigma_spe: float, sigma_int: float = 0.0182, noise_rms_adc: float = 0.0
) -> float:
    """PHYSICS.md 2.5 at 59.54 keV: (sigma/mu)^2 = (1 + (sigma_spe/Qspe)^2) / N + sigma_int^2, plus the
    electronics noise of IntegralQ: white noise (with rounding) over the signal region and, through the
    baseline mean, over the baseline region, (noise/Qspe)^2 N_SG (1 + N_SG/N_BL) / N^2."""
    n = ly * 59.54
    var = (1.0 + (sigma_spe / q_spe) ** 2) / n + sigma_int**2
    if noise_rms_adc > 0:
        noise2 = noise_rms_adc**2 + 1.0 / 12.0
        var += noise2 * SIGNAL_SAMPLES * (1.0 + SIGNAL_SAMPLES / BASELINE_SAMPLES) / (q_spe * n) ** 2
    return 100.0 * 2.3548 * float(np.sqrt(var))
