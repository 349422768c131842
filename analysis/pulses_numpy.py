"""The same pulse reconstruction as analysis.pulses, vectorised with NumPy (the benchmark's reference).

A peak is a run of samples with x > 0 that holds a trigger point (x >= n_sigma * sigma), widened
by the non-positive sample on each side (TS, TE) unless that sample was the previous peak's TE
(then TS is the run's first sample) or the run touches the end of the signal region.
"""

from __future__ import annotations

import numpy as np

from analysis.pulses import DEFAULT_PULSE_SETTINGS, PulseResults, PulseSettings


def analyse_batch_numpy(
    waveforms: np.ndarray, settings: PulseSettings = DEFAULT_PULSE_SETTINGS
) -> PulseResults:
    """Reconstruct the pulses of `waveforms` (n, samples); same results as analysis.pulses.analyse_batch."""
    n, n_samples = waveforms.shape
    s = settings.checked(n_samples)
    sign = float(-s.polarity)
    bl = waveforms[:, s.baseline_start : s.baseline_stop].astype(np.float64)
    mu = bl.mean(axis=1)
    sigma = bl.std(axis=1, ddof=s.ddof)
    length = s.signal_stop - s.signal_start
    width = length + 1  # one sentinel column keeps runs from crossing rows
    x = np.full((n, width), -1.0)
    x[:, :length] = sign * (mu[:, None] - waveforms[:, s.signal_start : s.signal_stop])
    flat = x.ravel()
    pos = flat > 0.0
    trig = pos & (flat >= (s.n_sigma * sigma).repeat(width))
    prev_pos = np.concatenate(([False], pos[:-1]))
    next_pos = np.concatenate((pos[1:], [False]))
    starts = np.flatnonzero(pos & ~prev_pos)
    ends = np.flatnonzero(pos & ~next_pos)
    trig_cum = np.cumsum(trig)
    has_trigger = (trig_cum[ends] - trig_cum[starts] + trig[starts]) > 0
    starts, ends = starts[has_trigger], ends[has_trigger]
    row = starts // width
    col_a = starts % width
    te = np.minimum(ends % width + 1, length - 1)
    same_row = np.concatenate(([False], row[1:] == row[:-1]))
    lower = np.where(same_row, np.concatenate(([-1], te[:-1])) + 1, 0)
    ts = np.maximum(col_a - 1, lower)
    cum = np.cumsum(flat)
    base = row * width
    q = cum[base + te] - cum[base + ts] + flat[base + ts]
    if not s.count_boundaries:  # TS and TE hold x <= 0 unless a walk stopped at a limit
        q -= np.minimum(flat[base + ts], 0.0) + np.minimum(flat[base + te], 0.0)
    n_peaks = np.bincount(row, minlength=n).astype(np.int32)
    offsets = np.concatenate(([0], np.cumsum(n_peaks)[:-1])).astype(np.int64)
    total = np.bincount(row, weights=q, minlength=n)
    integral = x[:, :length].sum(axis=1)
    return PulseResults(
        baseline=mu.astype(np.float32),
        baseline_rms=sigma.astype(np.float32),
        total_q=total.astype(np.float32),
        n_peaks=n_peaks,
        peak_offset=offsets,
        q=q.astype(np.float32),
        t_start=(ts + s.signal_start).astype(np.int32),
        t_end=(te + s.signal_start).astype(np.int32),
        integral_q=integral.astype(np.float32),
    )
