"""Fixed-window charges for the threshold-free SPE calibration, collected in one pass over the waveforms.

Per event: the charge x summed over consecutive windows of `window_ns` samples that tile the signal
region from its end backwards (the last window ends at the region's last sample), and over the
windows of the baseline region, each measured against a baseline mean that leaves the window's own
samples out (so that its noise has the same variance as a signal-region window's). The baseline
windows are the pedestal: the charge of a window without light, measured, not modelled.

Beside them, the pass averages the shape of isolated single photoelectrons of the late region (the
template the window model needs: a PE near a window's edge leaves part of its charge outside) and
the autocovariance of the baseline noise (the electronics noise of IntegralQ, whatever its spectrum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

TEMPLATE_STEP_NS = 0.25  # fine grid of the averaged SPE shape
TEMPLATE_RANGE_NS = (-24.0, 72.0)  # around the pulse's charge centroid
NOISE_LAGS = 160  # autocovariance lags kept (ns), at most a quarter of the baseline region
NOISE_EVENTS = 4096  # events whose baseline samples give the autocovariance
SEGMENT_BEFORE_NS = 64  # a stored pulse segment starts this long before the pulse
SEGMENT_NS = 192
SEGMENT_ISOLATION_NS = 60


@dataclass(frozen=True)
class Regions:
    """Sample regions of the records (start inclusive, stop exclusive) and the window width."""

    baseline: tuple[int, int]
    signal: tuple[int, int]
    window_ns: int
    polarity: int  # -1 negative pulses, +1 positive

    @property
    def n_signal_windows(self) -> int:
        return (self.signal[1] - self.signal[0]) // self.window_ns

    @property
    def n_baseline_windows(self) -> int:
        return (self.baseline[1] - self.baseline[0]) // self.window_ns

    def window_starts_ns(self) -> NDArray[np.int64]:
        """The first sample of each signal-region window, in time order."""
        n = self.n_signal_windows
        return self.signal[1] - self.window_ns * np.arange(n, 0, -1, dtype=np.int64)


@dataclass
class WindowCharges:
    """What the pass collected: per-event window charges, isolated pulses and the baseline noise."""

    regions: Regions
    signal: NDArray[np.float32]  # (events, windows) in time order, ADC*ns
    pedestal: NDArray[np.float32]  # (events, baseline windows), ADC*ns
    pulse_segments: NDArray[np.float32]  # (pulses, SEGMENT_NS) of x around isolated late pulses
    noise_autocov_adc2: NDArray[np.float64]  # lags 0.. (up to NOISE_LAGS, a quarter of the baseline region)

    @property
    def n_events(self) -> int:
        return int(self.signal.shape[0])


class WindowCollector:
    """Accumulate window charges chunk by chunk (bounded memory besides the per-event windows).

    Isolated late pulses are kept for the SPE shape: local maxima of a running sum of `box_ns`
    samples (about a pulse's width) above `box_min_adc_ns` with no other maximum above
    `box_isolation_adc_ns` close by, inside `template_region`, at most `max_pulses` of them
    (estimate_template averages them).
    """

    def __init__(
        self, regions: Regions, n_events: int, template_region: tuple[int, int], box_min_adc_ns: float,
        box_isolation_adc_ns: float, box_ns: int = 8, max_pulses: int = 40_000,
    ) -> None:  # fmt: skip
        r = regions
        if r.window_ns < 4:
            raise ValueError(f"SPE window width {r.window_ns} ns: at least 4 samples")
        if r.n_signal_windows < 1 or r.baseline[1] - r.baseline[0] < 2 * r.window_ns:
            raise ValueError(
                f"the regions (baseline {r.baseline}, signal {r.signal}) are too short for {r.window_ns}-sample "
                "windows: the signal region needs one, the baseline region two (a window's pedestal is "
                "measured against the baseline samples outside it); choose a narrower --window"
            )
        self.regions = r
        self._signal = np.zeros((n_events, r.n_signal_windows), np.float32)
        self._pedestal = np.zeros((n_events, r.n_baseline_windows), np.float32)
        self._filled = np.zeros(n_events, bool)
        self._template_region = template_region
        self._box = (int(box_ns), float(box_min_adc_ns), float(box_isolation_adc_ns))
        self._segments = np.zeros((max_pulses, SEGMENT_NS), np.float32)
        self._n_segments = 0
        self._lags = min(NOISE_LAGS, max(1, (r.baseline[1] - r.baseline[0]) // 4))
        self._autocov = np.zeros(self._lags)
        self._n_noise = 0

    def add(self, waveforms: NDArray[np.integer], events: NDArray[np.int64]) -> None:
        """Add raw records (m, samples) of the events `events` (indices into the run)."""
        m = waveforms.shape[0]
        if m == 0:
            return
        r = self.regions
        sign = -float(r.polarity)
        wf = np.ascontiguousarray(waveforms)
        signal = np.empty((m, r.n_signal_windows), np.float32)
        pedestal = np.empty((m, r.n_baseline_windows), np.float32)
        _window_sums(wf, sign, r.baseline[0], r.baseline[1], r.signal[1], r.window_ns, signal, pedestal)
        self._signal[events] = signal
        self._pedestal[events] = pedestal
        self._filled[events] = True
        if self._n_noise < NOISE_EVENTS:  # the noise spectrum is known well long before the run ends
            bl = wf[: NOISE_EVENTS - self._n_noise, r.baseline[0] : r.baseline[1]].astype(np.float64)
            self._add_noise(bl - bl.mean(axis=1)[:, None])
        if self._n_segments < self._segments.shape[0]:
            box, lo, iso = self._box
            t0, t1 = self._template_region
            self._n_segments = _pulse_segments(
                wf, sign, r.baseline[0], r.baseline[1], max(t0, r.signal[0]), min(t1, wf.shape[1]), box, lo, iso,
                self._segments, self._n_segments,
            )  # fmt: skip

    def _add_noise(self, centred: NDArray[np.float64]) -> None:
        n = centred.shape[1]
        size = 1 << int(np.ceil(np.log2(n + self._lags)))
        spec = np.fft.rfft(centred, size, axis=1)
        ac = np.fft.irfft(spec * spec.conj(), size, axis=1)[:, : self._lags]
        self._autocov += (ac / (n - np.arange(self._lags))).sum(axis=0)
        self._n_noise += centred.shape[0]

    def result(self) -> WindowCharges:
        """The collected charges of the events seen (events never added are left out)."""
        keep = self._filled
        return WindowCharges(
            regions=self.regions,
            signal=self._signal[keep],
            pedestal=self._pedestal[keep],
            pulse_segments=self._segments[: self._n_segments].copy(),
            noise_autocov_adc2=_unbiased(self._autocov / max(self._n_noise, 1), self.regions.baseline),
        )


def _unbiased(autocov: NDArray[np.float64], baseline: tuple[int, int]) -> NDArray[np.float64]:
    """Undo the bias of an autocovariance measured about each record's own mean.

    Subtracting the mean of n samples lowers every lag by about S / n, S the sum of the autocovariance
    over all lags (white noise: sigma^2 / n at every lag; over 160 lags and 1400 samples that is 23 % of
    the variance of a long sum). With S taken over the measured lags, S = S_measured / (1 - (2K - 1) / n).
    """
    n = baseline[1] - baseline[0]
    k = autocov.size
    measured_sum = autocov[0] + 2.0 * autocov[1:].sum()
    total = measured_sum / (1.0 - (2 * k - 1) / n)
    return autocov + total / n


@numba.njit(nogil=True, cache=True)
def _window_sums(
    wf: np.ndarray, sign: float, b0: int, b1: int, s1: int, w: int, signal: np.ndarray, pedestal: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Per event: x summed over the signal windows (ending at s1) and the baseline windows (own samples
    left out of their baseline mean)."""
    nb = b1 - b0
    n_sig = signal.shape[1]
    n_ped = pedestal.shape[1]
    for ev in range(wf.shape[0]):
        row = wf[ev]
        total = 0
        for i in range(b0, b1):
            total += np.int64(row[i])
        mu = total / nb
        first = s1 - w * n_sig
        for k in range(n_sig):
            acc = 0
            for i in range(first + k * w, first + (k + 1) * w):
                acc += np.int64(row[i])
            signal[ev, k] = sign * (mu * w - acc)
        for k in range(n_ped):
            acc = 0
            for i in range(b0 + k * w, b0 + (k + 1) * w):
                acc += np.int64(row[i])
            mu_other = (total - acc) / (nb - w)
            pedestal[ev, k] = sign * (mu_other * w - acc)


@numba.njit(nogil=True, cache=True)
def _pulse_segments(
    wf: np.ndarray,
    sign: float,
    b0: int,
    b1: int,
    t0: int,
    t1: int,
    box: int,
    lo: float,
    iso: float,
    segments: np.ndarray,
    first_free: int,
) -> int:  # pragma: no cover - compiled
    """Store x around isolated pulses of [t0, t1) in `segments` from row `first_free`; return rows used.

    A pulse is a local maximum of the running sum of `box` samples above `lo`, with no other maximum
    above `iso` within SEGMENT_ISOLATION_NS (`iso` well above the noise: a lower bar would favour
    quiet noise around the pulse, and so bias the shape's tail). The row holds x from SEGMENT_BEFORE_NS before the box's
    middle; the shape estimate (estimate_template) re-finds and re-aligns the pulses without the box.
    """
    n_rows, length = segments.shape
    used = first_free
    span = t1 - t0 - box + 1
    if span < 3:
        return used
    run = np.empty(span)
    cand = np.empty(span, np.int64)
    for ev in range(wf.shape[0]):
        row = wf[ev]
        total = 0
        for i in range(b0, b1):
            total += np.int64(row[i])
        mu = total / (b1 - b0)
        acc = 0.0
        for i in range(t0, t0 + box):
            acc += sign * (mu - row[i])
        run[0] = acc
        for j in range(1, span):
            acc += sign * (row[t0 + j - 1] - row[t0 + j - 1 + box])
            run[j] = acc
        n_cand = 0
        for j in range(1, span - 1):
            if run[j] >= min(lo, iso) and run[j] >= run[j - 1] and run[j] > run[j + 1]:
                cand[n_cand] = j
                n_cand += 1
        for c in range(n_cand):
            j = cand[c]
            if run[j] < lo:
                continue
            before = True
            for d in range(c - 1, -1, -1):
                if j - cand[d] > SEGMENT_ISOLATION_NS:
                    break
                before = before and run[cand[d]] < iso
            after = True
            for d in range(c + 1, n_cand):
                if cand[d] - j > SEGMENT_ISOLATION_NS:
                    break
                after = after and run[cand[d]] < iso
            start = t0 + j + box // 2 - SEGMENT_BEFORE_NS
            if not (before and after) or start < 0 or start + length > row.size:
                continue
            for i in range(length):
                segments[used, i] = sign * (mu - row[start + i])
            used += 1
            if used >= n_rows:
                return used
    return used


def estimate_template(
    segments: NDArray[np.float32], q_guess_adc_ns: float, start: tuple[NDArray[np.float64], NDArray[np.float64]],
    iterations: int = 4,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:  # fmt: skip
    """The average SPE shape of the stored pulse segments: (times ns, shape per ns of unit area, pulses used).

    Each round filters the segments with the current shape (a matched filter, normalised so that an
    aligned SPE of charge q gives q), takes the pulses whose filter maximum lies in 0.9-1.8 Qspe,
    aligns them on the maximum interpolated between samples and averages them on a fine grid. The
    noise that the selection favours has the filter's shape, so once the filter is the pulse's own
    shape the selection no longer distorts it: the rounds converge on the shape of the data.
    """
    grid_t, shape = start
    lo_t, hi_t = TEMPLATE_RANGE_NS
    grid = np.arange(lo_t, hi_t, TEMPLATE_STEP_NS) + 0.5 * TEMPLATE_STEP_NS
    n_seg, length = segments.shape
    x = segments.astype(np.float64)
    used = 0
    for _ in range(iterations):
        taps_t = np.arange(np.floor(grid_t[0]), np.ceil(grid_t[-1]) + 1.0)
        taps = np.interp(taps_t, grid_t, shape, left=0.0, right=0.0)
        if not np.any(taps > 0):
            break
        lobe = np.flatnonzero(main_lobe(taps_t, taps, 0.01) > 0)  # the filter: the shape's main part only
        taps_t, taps = taps_t[lobe[0] : lobe[-1] + 1], taps[lobe[0] : lobe[-1] + 1]
        h = taps / np.sum(taps**2) * np.sum(taps)  # an aligned pulse of charge q gives q
        # y[k] = sum_j x[first + k + j] h[j], the shape's time zero at sample first + k - taps_t[0]: the
        # filter output around the segment's middle only (+-7 samples), where the stored pulse is
        first = SEGMENT_BEFORE_NS + int(taps_t[0]) - 7
        y = np.zeros((n_seg, 15))
        for j, tap in enumerate(h):
            y += tap * x[:, first + j : first + j + 15]
        k = 1 + np.argmax(y[:, 1:-1], axis=1)  # the maximum within +-6 samples, with a neighbour each side
        rows = np.arange(n_seg)
        ym, yl, yr = y[rows, k], y[rows, k - 1], y[rows, k + 1]
        den = yl - 2.0 * ym + yr
        delta = np.where(den < 0, 0.5 * (yl - yr) / np.where(den < 0, den, -1.0), 0.0)
        pick = (ym >= 0.9 * q_guess_adc_ns) & (ym <= 1.8 * q_guess_adc_ns)
        used = int(pick.sum())
        if used == 0:
            break
        t_pulse = (first + k + delta)[pick] - taps_t[0]  # the pulse's time zero within the segment
        rel = np.arange(length)[None, :] - t_pulse[:, None]
        idx = np.floor((rel - lo_t) / TEMPLATE_STEP_NS).astype(np.int64)
        inside = (idx >= 0) & (idx < grid.size)
        sums = np.bincount(idx[inside], weights=x[pick][inside], minlength=grid.size)
        weights = np.bincount(idx[inside], minlength=grid.size).astype(np.float64)
        avg = np.where(weights > 0, sums / np.maximum(weights, 1.0), 0.0)
        avg -= np.median(avg[grid < lo_t + 12.0])  # the level well before the pulse is the baseline
        area = avg.sum() * TEMPLATE_STEP_NS
        if not area > 0:
            break
        grid_t, shape = grid, avg / area
    return grid_t, shape, used


def main_lobe(t: NDArray[np.float64], y: NDArray[np.float64], level: float = 0.005) -> NDArray[np.float64]:
    """The shape with everything outside its main lobe (beyond where it first falls below `level` of its
    peak on either side: the noise of an average) set to zero, renormalised to unit area."""
    top = int(np.argmax(y))
    small = y < level * y[top]
    before = np.flatnonzero(small[:top])
    after = np.flatnonzero(small[top:])
    out = y.copy()
    if before.size:
        out[: before[-1] + 1] = 0.0
    if after.size:
        out[top + after[0] :] = 0.0
    return out / (out.sum() * (t[1] - t[0]))


def integral_noise_adc_ns(autocov_adc2: NDArray[np.float64], baseline: tuple[int, int],
                          signal: tuple[int, int]) -> float:  # fmt: skip
    """The electronics noise (rms, ADC*ns) of IntegralQ for the measured baseline-noise autocovariance.

    IntegralQ = sum over the signal region of (baseline mean - sample): weights +1 on the signal region
    and -N_signal/N_baseline on the baseline region; its variance is sum_ij w_i w_j C(i - j), with the
    autocovariance C taken as zero beyond the measured lags.
    """
    if autocov_adc2.size == 0 or not np.isfinite(autocov_adc2[0]):
        return float("nan")
    n_total = max(baseline[1], signal[1])
    w = np.zeros(n_total)
    w[signal[0] : signal[1]] += 1.0
    w[baseline[0] : baseline[1]] -= (signal[1] - signal[0]) / (baseline[1] - baseline[0])
    size = 1 << int(np.ceil(np.log2(2 * n_total)))
    spec = np.fft.rfft(w, size)
    weight_ac = np.fft.irfft(spec * spec.conj(), size)[: autocov_adc2.size]  # sum_i w_i w_(i+k)
    lags = np.arange(autocov_adc2.size)
    factor = np.where(lags == 0, 1.0, 2.0)
    return float(np.sqrt(max(np.sum(factor * weight_ac * autocov_adc2), 0.0)))
