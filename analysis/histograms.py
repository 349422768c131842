"""Live histograms of the online analysis (SPE PeakQ, NPE, baseline rms), filled per batch, read as snapshots."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # for annotations only: readers of histograms (daq info) need no numba
    from analysis.pulses import PulseResults


@dataclass(frozen=True)
class HistogramSettings:
    """Binning and selections. Times are sample indices (ns), charges ADC*ns."""

    spe_window_start: int = 7000  # a peak enters the SPE histogram if its TS is in [start, stop)
    spe_window_stop: int = 8000
    spe_max_adc_ns: float = 200.0
    spe_bin_adc_ns: float = 2.0
    npe_max: float = 4000.0
    npe_bin: float = 5.0
    rms_max_adc: float = 5.0
    rms_bin_adc: float = 0.02
    q_spe_adc_ns: float = 32.5  # from the configuration until an SPE fit provides one


@dataclass(frozen=True)
class Histogram:
    """Counts in bins with their edges; entries outside the range are counted, not dropped."""

    counts: NDArray[np.int64]
    edges: NDArray[np.float64]
    underflow: int
    overflow: int

    @property
    def centres(self) -> NDArray[np.float64]:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def entries(self) -> int:
        return int(self.counts.sum()) + self.underflow + self.overflow

    def minus(self, earlier: Histogram) -> Histogram:
        """What was filled since `earlier`, a copy of this histogram taken before (same binning)."""
        if not np.array_equal(self.edges, earlier.edges):
            raise ValueError("histograms with different bins cannot be subtracted")
        return Histogram(
            self.counts - earlier.counts, self.edges, self.underflow - earlier.underflow,
            self.overflow - earlier.overflow,
        )  # fmt: skip


@dataclass(frozen=True)
class HistogramSnapshot:
    """A consistent copy of all live histograms."""

    spe: Histogram
    npe: Histogram
    baseline_rms: Histogram
    q_spe_adc_ns: float
    n_events: int

    def since(self, earlier: HistogramSnapshot) -> HistogramSnapshot:
        """The events filled after `earlier` (an earlier snapshot of the same run): a view's reset that
        leaves the run's own histograms, and its file, whole."""
        return HistogramSnapshot(
            self.spe.minus(earlier.spe),
            self.npe.minus(earlier.npe),
            self.baseline_rms.minus(earlier.baseline_rms),
            self.q_spe_adc_ns,
            self.n_events - earlier.n_events,
        )


class _Binned:
    def __init__(self, lo: float, hi: float, width: float) -> None:
        n = int(round((hi - lo) / width))
        self.lo, self.width, self.n = lo, width, n
        self.counts = np.zeros(n, np.int64)
        self.underflow = 0
        self.overflow = 0

    def fill(self, values: np.ndarray) -> None:
        idx = np.floor((np.asarray(values, np.float64) - self.lo) / self.width)
        under = idx < 0
        over = idx >= self.n
        self.underflow += int(under.sum())
        self.overflow += int(over.sum())
        inside = idx[~(under | over)].astype(np.int64)
        self.counts += np.bincount(inside, minlength=self.n)

    def edges(self, scale: float = 1.0) -> np.ndarray:
        return (self.lo + self.width * np.arange(self.n + 1)) * scale

    def copy(self, scale: float = 1.0) -> Histogram:
        return Histogram(self.counts.copy(), self.edges(scale), self.underflow, self.overflow)


class LiveHistograms:
    """Histograms filled by the analysis stage; any thread may take a snapshot.

    NPE is filled in TotalQ (bins of npe_bin x the configured Qspe), so a new Qspe from an SPE
    fit only rescales the NPE axis, exactly, without refilling.
    """

    def __init__(self, settings: HistogramSettings = HistogramSettings()) -> None:  # noqa: B008 - frozen
        self.settings = settings
        self._lock = threading.Lock()
        self._q_spe_adc_ns = settings.q_spe_adc_ns
        self.reset()

    def reset(self) -> None:
        """Empty every histogram."""
        s = self.settings
        with self._lock:
            self._spe = _Binned(0.0, s.spe_max_adc_ns, s.spe_bin_adc_ns)
            self._total_q = _Binned(0.0, s.npe_max * s.q_spe_adc_ns, s.npe_bin * s.q_spe_adc_ns)
            self._rms = _Binned(0.0, s.rms_max_adc, s.rms_bin_adc)
            self._n_events = 0

    def set_q_spe(self, q_spe_adc_ns: float) -> None:
        """Use a new SPE charge (ADC*ns, > 0) for the NPE axis, e.g. from the last SPE fit."""
        if not q_spe_adc_ns > 0:
            raise ValueError(f"Qspe must be positive, not {q_spe_adc_ns}")
        with self._lock:
            self._q_spe_adc_ns = float(q_spe_adc_ns)

    def fill(self, results: PulseResults) -> None:
        """Add one batch of results of the crystal channel."""
        s = self.settings
        in_window = (results.t_start >= s.spe_window_start) & (results.t_start < s.spe_window_stop)
        spe_q = results.q[in_window]
        with self._lock:
            self._spe.fill(spe_q)
            self._total_q.fill(results.total_q)
            self._rms.fill(results.baseline_rms)
            self._n_events += len(results)

    def snapshot(self) -> HistogramSnapshot:
        """Return copies of all histograms, consistent with each other."""
        with self._lock:
            q = self._q_spe_adc_ns
            return HistogramSnapshot(
                spe=self._spe.copy(),
                npe=self._total_q.copy(1.0 / q),
                baseline_rms=self._rms.copy(),
                q_spe_adc_ns=q,
                n_events=self._n_events,
            )


def histogram_peaks(
    hist: Histogram, n_peaks: int = 3, smooth_bins: int = 5, min_counts: int = 10
) -> list[float]:
    """Return the centres of the `n_peaks` highest local maxima of a smoothed histogram, sorted by position.

    A rough locator for summaries (where the SPE or the 59.54 keV line sits), not a fit.
    """
    counts = hist.counts.astype(np.float64)
    if counts.size < 3 or counts.max() < min_counts:
        return []
    kernel = np.ones(smooth_bins) / smooth_bins
    smooth = np.convolve(counts, kernel, mode="same")
    inner = smooth[1:-1]
    is_max = (inner > smooth[:-2]) & (inner >= smooth[2:]) & (inner >= min_counts / smooth_bins)
    idx = np.flatnonzero(is_max) + 1
    best = idx[np.argsort(smooth[idx])[::-1][:n_peaks]]
    return sorted(float(hist.centres[i]) for i in best)
