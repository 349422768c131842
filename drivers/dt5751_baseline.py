"""Measure each channel's baseline from software-triggered DT5751 records, rejecting pulses and clipping."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from drivers.dt5751_errors import DigitizerError
from drivers.dt5751_settings import ADC_MAX

log = logging.getLogger(__name__)

RAIL_FRACTION_MAX = 0.01  # baseline records with more samples at 0 or 1023 are clipped
QUIET_LIMIT_ADC = 10.0  # a baseline record with a sample further than this from the level holds a pulse ...
QUIET_LIMIT_SIGMA = 6.0  # ... or further than this many sigma of the input's noise, if that is larger ...
QUIET_LIMIT_MAX_ADC = 64.0  # ... but never further than this
NOISY_INPUT_ADC = 3.0  # baseline noise above this is worth a warning


def baselines_of_records(
    where: str, records: NDArray[np.float64], channels: tuple[int, ...], step: str, fix: str
) -> dict[int, tuple[float, float]]:
    """Return channel -> (baseline, rms) in ADC of `records` (n, channels, samples), raw ADC counts.

    where: the board, for messages. step: which measurement (e.g. "at DC offset 30 %"). fix: what to
    change when the baseline is clipped (names the config key; `{ch}` is replaced by the channel).
    Raises DigitizerError naming the channel if too many records hold pulses or the baseline is clipped.
    """
    n_records = records.shape[0]
    result: dict[int, tuple[float, float]] = {}
    for j, ch in enumerate(channels):
        per_event = np.median(records[:, j, :], axis=1)
        level = float(np.median(per_event))
        deviation = np.abs(records[:, j, :] - level)
        # a record holding a pulse is rejected: beyond 10 ADC, or beyond 6 sigma of a noisier input (a SiPM
        # at 3-5 ADC rms), but never beyond 64 ADC: an oscillating or floating input stays refused
        sigma = 1.4826 * float(np.median(deviation))  # robust: pulses do not inflate it
        limit = min(max(QUIET_LIMIT_ADC, QUIET_LIMIT_SIGMA * sigma), QUIET_LIMIT_MAX_ADC)
        quiet = deviation.max(axis=1) < limit
        if quiet.sum() < max(1, n_records // 2):
            raise DigitizerError(
                f"{where} channel {ch}: {int((~quiet).sum())} of {n_records} baseline records {step} hold "
                f"pulses or noise more than {limit:.0f} ADC from the baseline (noise {sigma:.1f} ADC rms); the "
                f"baseline cannot be measured. Check the input, its grounding and the HV."
            )
        if sigma > NOISY_INPUT_ADC:
            log.warning(
                "%s channel %d: baseline noise %.1f ADC rms (a PMT input is below 1): check the grounding and "
                "the cable", where, ch, sigma,
            )  # fmt: skip
        samples = records[quiet, j, :]
        at_rail = float(np.mean((samples <= 0) | (samples >= ADC_MAX)))
        if at_rail > RAIL_FRACTION_MAX:
            raise DigitizerError(
                f"{where} channel {ch}: {at_rail:.0%} of the baseline samples {step} sit at the ADC limit "
                f"(0 or {ADC_MAX}), so the baseline ({samples.mean():.1f} ADC) is clipped and cannot be "
                f"measured. {fix.format(ch=ch)}"
            )
        result[ch] = (float(samples.mean()), float(samples.std()))
    return result
