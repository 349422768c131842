"""Live histograms: selections, binning, under/overflow, Qspe rescaling, thread-safe snapshots, peak locator."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from analysis.histograms import HistogramSettings, LiveHistograms, histogram_peaks
from analysis.pulses import PulseResults


def _results(total_q: list[float], peaks: list[tuple[float, int]], rms: float = 0.6) -> PulseResults:
    n = len(total_q)
    q = np.array([p[0] for p in peaks], np.float32)
    ts = np.array([p[1] for p in peaks], np.int32)
    return PulseResults(
        baseline=np.full(n, 900, np.float32), baseline_rms=np.full(n, rms, np.float32),
        total_q=np.array(total_q, np.float32), n_peaks=np.zeros(n, np.int32), peak_offset=np.zeros(n, np.int64),
        q=q, t_start=ts, t_end=ts + 5, integral_q=np.array(total_q, np.float32),
    )  # fmt: skip


def test_spe_takes_peaks_starting_in_the_window_only() -> None:
    h = LiveHistograms(HistogramSettings())
    h.fill(_results([100.0], [(31.0, 6999), (33.0, 7000), (35.0, 7999), (37.0, 8000), (250.0, 7500)]))
    snap = h.snapshot()
    assert snap.spe.counts.sum() == 2 and snap.spe.overflow == 1  # 33 and 35 in range, 250 above
    assert snap.spe.counts[16] == 1 and snap.spe.counts[17] == 1  # 2 ADC*ns bins
    assert snap.n_events == 1


def test_npe_axis_follows_qspe_exactly() -> None:
    h = LiveHistograms(HistogramSettings(q_spe_adc_ns=32.5, npe_bin=5.0))
    h.fill(_results([32.5 * 2096, 32.5 * 10, -5.0], []))
    snap = h.snapshot()
    assert snap.npe.underflow == 1
    assert snap.npe.centres[np.flatnonzero(snap.npe.counts)[-1]] == pytest.approx(2097.5)
    h.set_q_spe(30.0)
    rescaled = h.snapshot().npe
    assert rescaled.edges[1] == pytest.approx(5.0 * 32.5 / 30.0)
    with pytest.raises(ValueError, match="positive"):
        h.set_q_spe(0.0)


def test_concurrent_fills_and_snapshots_stay_consistent() -> None:
    h = LiveHistograms()
    batch = _results([1000.0] * 100, [(32.0, 7100)] * 50)

    def filler() -> None:
        for _ in range(200):
            h.fill(batch)

    threads = [threading.Thread(target=filler) for _ in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        snap = h.snapshot()
        assert snap.npe.entries == snap.n_events == 2 * snap.spe.entries
    for t in threads:
        t.join()
    assert h.snapshot().n_events == 40_000
    h.reset()
    assert h.snapshot().n_events == 0 and h.snapshot().npe.entries == 0


def test_histogram_peaks_finds_the_lines() -> None:
    rng = np.random.default_rng(5)
    h = LiveHistograms()
    values = np.concatenate([rng.normal(596, 28, 5000), rng.normal(2096, 61, 8000)]) * 32.5
    h.fill(_results(values.tolist(), []))
    peaks = histogram_peaks(h.snapshot().npe, n_peaks=2)
    assert peaks[0] == pytest.approx(596, abs=10) and peaks[1] == pytest.approx(2096, abs=15)
    assert histogram_peaks(LiveHistograms().snapshot().npe) == []
