"""The paper's pulse reconstruction (PHYSICS.md 1.2) over a batch of waveforms, as a numba nogil kernel.

Per waveform: baseline mean and sigma over the baseline region; x = baseline - raw (negative
pulses become positive; `polarity=+1` keeps positive pulses); in the signal region a sample
with x >= n_sigma * sigma is a trigger point; walk back and forward to the first samples with
x <= 0 (TS, TE, both counted in PeakQ); a trigger point must also have x > 0, which matters
only for a perfectly flat baseline (sigma 0); PeakQ = sum x[TS..TE]; resume at TE + 1; TotalQ = sum
of PeakQ. Walks stay inside the signal region, and a backward walk stops after the previous
peak's TE, so no sample belongs to two peaks.

Beside the paper's TotalQ, the kernel gives the threshold-free charge of each event: IntegralQ = sum
of x over the whole signal region. It loses no photoelectron below the threshold, so its mean is
NPE * Qspe whatever the noise; its price is the electronics noise of every sample in the region
(docs/analysis.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

_INITIAL_PEAKS_PER_WAVEFORM = 64
_BLOCK = 64  # samples tested at once for a possible trigger point


@dataclass(frozen=True)
class PulseSettings:
    """Regions (sample indices, end exclusive), threshold and conventions of the reconstruction."""

    baseline_start: int = 0
    baseline_stop: int = 1400
    signal_start: int = 1400
    signal_stop: int = 8000
    n_sigma: float = 5.0
    ddof: int = 0
    polarity: int = -1  # -1: negative pulses (PMT), +1: positive
    # TS and TE (samples with x <= 0) in PeakQ: the paper's literal reading. Leaving them out removes
    # a -0.85 ADC*ns bias per peak (PHYSICS.md 2.8 item 4), which is 2.6 % of an SPE.
    count_boundaries: bool = True

    def checked(self, n_samples: int) -> PulseSettings:
        """Return self if the regions fit records of `n_samples`; raise ValueError naming the bad one."""
        if not 0 <= self.baseline_start < self.baseline_stop <= n_samples:
            raise ValueError(
                f"baseline region {self.baseline_start}-{self.baseline_stop} does not fit {n_samples} samples"
            )
        if not 0 <= self.signal_start < self.signal_stop <= n_samples:
            raise ValueError(
                f"signal region {self.signal_start}-{self.signal_stop} does not fit {n_samples} samples"
            )
        if self.baseline_stop - self.baseline_start <= self.ddof:
            raise ValueError("the baseline region needs more samples than ddof")
        if self.polarity not in (-1, 1):
            raise ValueError(f"polarity must be -1 or +1, not {self.polarity}")
        return self


DEFAULT_PULSE_SETTINGS = PulseSettings()


@dataclass
class PulseResults:
    """Results for a batch of n waveforms (one channel): per event, and all peaks flat with offsets.

    Peaks of waveform i are q[peak_offset[i] : peak_offset[i] + n_peaks[i]] (likewise t_start, t_end).
    Times are sample indices (ns at 1 GS/s). Charges are ADC*ns.
    """

    baseline: NDArray[np.float32]
    baseline_rms: NDArray[np.float32]
    total_q: NDArray[np.float32]
    n_peaks: NDArray[np.int32]
    peak_offset: NDArray[np.int64]
    q: NDArray[np.float32]
    t_start: NDArray[np.int32]
    t_end: NDArray[np.int32]
    integral_q: NDArray[np.float32]  # per event: sum of x over the signal region, no threshold (ADC*ns)

    def __len__(self) -> int:
        return int(self.baseline.size)


def _make_kernel(sign: int):  # noqa: ANN202 - returns a numba dispatcher
    """Compile the kernel for one polarity: x = sign * (baseline - raw), sign a compile-time constant."""

    @numba.njit(nogil=True, cache=True)
    def analyse(
        waveforms: np.ndarray,
        bl0: int,
        bl1: int,
        sg0: int,
        sg1: int,
        n_sigma: float,
        ddof: int,
        count_boundaries: int,
        baseline: np.ndarray,
        rms: np.ndarray,
        total: np.ndarray,
        integral: np.ndarray,
        n_peaks: np.ndarray,
        offsets: np.ndarray,
        q: np.ndarray,
        ts: np.ndarray,
        te: np.ndarray,
        first_event: int,
        first_peak: int,
    ) -> tuple[int, int]:
        """Analyse events from `first_event` on; return (events done, peaks used).

        Stops early, before an event whose peaks no longer fit the flat arrays, so that the caller
        can grow them and resume (reallocating inside the loop would slow the kernel twenty-fold).
        """
        n_peak_total = first_peak
        nbl = bl1 - bl0
        for ev in range(first_event, waveforms.shape[0]):
            wf = waveforms[ev]
            # exact integer sums of the samples about the first one, in chunks of 1024 gathered per
            # chunk: 2.7x faster than one 64-bit sum of squares of the raw values (bench_pulses)
            ref = np.int32(wf[bl0])
            sx = np.int64(0)
            sxx = np.int64(0)
            for c in range(bl0, bl1, 1024):
                chunk = wf[c : min(c + 1024, bl1)]
                s1 = np.int32(0)
                s2 = np.int64(0)
                for j in range(chunk.size):
                    d = np.int32(chunk[j]) - ref
                    s1 += d
                    s2 += d * d
                sx += s1
                sxx += s2
            mu = ref + sx / nbl
            sigma = np.sqrt(max(sxx - sx * (sx / nbl), 0.0) / (nbl - ddof))
            baseline[ev] = mu
            rms[ev] = sigma
            threshold = n_sigma * sigma
            smu = sign * mu
            # IntegralQ from the exact integer sum of the signal region, in chunks of 4096 (a pass of its
            # own: folded into the block scan below it cost more, bench_pulses --against)
            region_sum = np.int64(0)
            for c in range(sg0, sg1, 4096):
                chunk = wf[c : min(c + 4096, sg1)]
                part = np.int32(0)
                for j in range(chunk.size):
                    part += np.int32(chunk[j])
                region_sum += part
            integral[ev] = (sg1 - sg0) * smu - sign * region_sum
            offsets[ev] = n_peak_total
            event_q = 0.0
            count = 0
            lower = sg0  # a backward walk may not go below this (after the previous peak's TE)
            # a trigger point needs sign * raw <= smu - threshold; with one count of margin against
            # rounding, samples above `bound` are skipped by an integer test, blocks of them at once
            bound = np.int64(np.floor(smu - max(threshold, 0.0))) + 1
            zero_level = np.int64(np.ceil(smu))
            i = sg0
            block_end = sg0
            while i < sg1:
                if i >= block_end:
                    block_end = min(i + _BLOCK, sg1)
                    block = wf[i:block_end]  # a view: indices from 0 let LLVM vectorise the reduction
                    extreme = block[0]
                    if sign > 0:
                        for j in range(1, block.size):
                            extreme = min(extreme, block[j])
                    else:
                        for j in range(1, block.size):
                            extreme = max(extreme, block[j])
                    if sign * np.int64(extreme) > bound:
                        i = block_end
                        continue
                if sign * np.int64(wf[i]) > bound:
                    i += 1
                    continue
                x = smu - sign * wf[i]
                if x < threshold or x <= 0.0:
                    i += 1
                    continue
                # x <= 0 exactly when sign * raw >= ceil(smu) (raw is an integer): the walks sum the
                # raw samples in integers and PeakQ = n * smu - sign * sum, with no rounding per sample
                raw_sum = 0
                excluded = 0  # boundary samples (x <= 0) left out of PeakQ when count_boundaries is 0
                start = i
                while start > lower:  # back to the first sample with x <= 0 (TS)
                    start -= 1
                    sw = sign * np.int64(wf[start])
                    if sw >= zero_level:
                        if count_boundaries:
                            raw_sum += sw
                        else:
                            excluded += 1
                        break
                    raw_sum += sw
                end = i
                while True:  # forward to the first sample with x <= 0 (TE)
                    sw = sign * np.int64(wf[end])
                    if sw >= zero_level and not count_boundaries:
                        excluded += 1
                        break
                    raw_sum += sw
                    if sw >= zero_level or end >= sg1 - 1:
                        break
                    end += 1
                peak_q = (end - start + 1 - excluded) * smu - raw_sum
                if n_peak_total >= q.size:
                    return ev, offsets[ev]  # out of room: redo this event once the caller grew the arrays
                q[n_peak_total] = peak_q
                ts[n_peak_total] = start
                te[n_peak_total] = end
                n_peak_total += 1
                count += 1
                event_q += peak_q
                lower = end + 1
                i = end + 1
            n_peaks[ev] = count
            total[ev] = event_q
        return waveforms.shape[0], n_peak_total

    return analyse


_KERNELS = {-1: _make_kernel(1), 1: _make_kernel(-1)}  # polarity -> kernel (negative pulses: x = mu - raw)


def analyse_batch(waveforms: np.ndarray, settings: PulseSettings = DEFAULT_PULSE_SETTINGS) -> PulseResults:
    """Reconstruct the pulses of `waveforms` (n, samples) of raw ADC counts (any integer dtype).

    Releases the GIL while it runs. Raises ValueError if the regions do not fit the records.
    """
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (events, samples), not shape {waveforms.shape}")
    n, n_samples = waveforms.shape
    s = settings.checked(n_samples)
    wf = np.ascontiguousarray(waveforms)
    baseline = np.empty(n, np.float32)
    rms = np.empty(n, np.float32)
    total = np.empty(n, np.float32)
    integral = np.empty(n, np.float32)
    n_peaks = np.empty(n, np.int32)
    offsets = np.empty(n, np.int64)
    capacity = max(1024, n * _INITIAL_PEAKS_PER_WAVEFORM)
    q, ts, te = np.empty(capacity, np.float32), np.empty(capacity, np.int32), np.empty(capacity, np.int32)
    done, used = 0, 0
    while True:
        done, used = _KERNELS[s.polarity](
            wf, s.baseline_start, s.baseline_stop, s.signal_start, s.signal_stop, float(s.n_sigma), s.ddof,
            int(s.count_boundaries), baseline, rms, total, integral, n_peaks, offsets, q, ts, te, done, used,
        )  # fmt: skip
        if done == n:
            break
        q, ts, te = (np.concatenate((a, np.empty(a.size, a.dtype))) for a in (q, ts, te))
    return PulseResults(
        baseline, rms, total, n_peaks, offsets, q[:used].copy(), ts[:used].copy(), te[:used].copy(), integral
    )


def warm_up(settings: PulseSettings = DEFAULT_PULSE_SETTINGS, dtype: type = np.int16) -> None:
    """Compile (or load from numba's cache) the kernel of `settings.polarity` for `dtype` records now.

    Call it before a digitizer is armed: a first compilation takes seconds, during which the board's
    memory would fill. A tiny batch of the same types as a run's (C-contiguous 2-D `dtype`, the same
    argument types) gives the signature the run will call.
    """
    tiny = PulseSettings(
        baseline_start=0, baseline_stop=8, signal_start=8, signal_stop=16, n_sigma=float(settings.n_sigma),
        ddof=0, polarity=settings.polarity, count_boundaries=settings.count_boundaries,
    )  # fmt: skip
    analyse_batch(np.zeros((1, 16), dtype), tiny)
