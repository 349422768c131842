"""The numba pulse kernel and its vectorised NumPy twin agree with a plain-Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.pulses import PulseResults, PulseSettings, analyse_batch
from analysis.pulses_numpy import analyse_batch_numpy
from tests.analysis.pulse_reference import reference_pulses

S = 8000
BASE = 900


def _pulse(wf: np.ndarray, start: int, amplitude: float, tau_ns: float = 40.0) -> None:
    t = np.arange(wf.size - start)
    wf[start:] -= (amplitude * np.exp(-t / tau_ns) * (1 - np.exp(-t / 3.0))).astype(wf.dtype)


def _noise(rng: np.random.Generator, n: int, rms: float = 0.6) -> np.ndarray:
    return np.round(BASE + rng.normal(0, rms, (n, S))).astype(np.int16)


def _edge_cases(rng: np.random.Generator) -> np.ndarray:
    wfs = _noise(rng, 9)
    _pulse(wfs[0], 1400, 60)  # pulse starting exactly at the signal-region start
    _pulse(wfs[0], 1380, 80)  # ... and one already high when the region begins
    wfs[1, 7990:] = BASE - 40  # pulse running to the last sample
    wfs[2, 2000:2300] = 0  # saturated (clipped) pulse
    wfs[2, 2300:2400] = BASE - 20
    # wfs[3]: noise only
    for k in range(40):  # many overlapping pulses
        _pulse(wfs[4], 1600 + 37 * k, rng.uniform(5, 60), tau_ns=rng.uniform(5, 80))
    wfs[5, :] = BASE  # perfectly flat: sigma 0
    wfs[5, 3000:3003] = BASE - 3
    wfs[6, 1401::2] = BASE - 10  # alternating single-sample peaks: boundaries shared
    wfs[6, 1400::2] = BASE + 1
    wfs[7, 7999] = BASE - 50  # single sample trigger on the last sample
    wfs[8, 1400] = BASE - 50  # single sample trigger on the first sample
    return wfs


def _random(rng: np.random.Generator, n: int) -> np.ndarray:
    wfs = _noise(rng, n, rms=rng.uniform(0.4, 1.2))
    for i in range(n):
        for _ in range(rng.poisson(20)):
            _pulse(wfs[i], int(rng.integers(0, S)), rng.uniform(2, 200), tau_ns=rng.uniform(2, 300))
    return np.clip(wfs, 0, 1023).astype(np.int16)


def _assert_matches_reference(wfs: np.ndarray, res: PulseResults, **kw: object) -> None:
    for i, wf in enumerate(wfs):
        ref = reference_pulses(wf.astype(int).tolist(), **kw)
        assert res.baseline[i] == pytest.approx(ref["mu"], abs=1e-4)
        assert res.baseline_rms[i] == pytest.approx(ref["sigma"], abs=1e-4)
        a, n = res.peak_offset[i], res.n_peaks[i]
        peaks = ref["peaks"]
        assert n == len(peaks), f"waveform {i}"
        assert list(res.t_start[a : a + n]) == [p[1] for p in peaks]
        assert list(res.t_end[a : a + n]) == [p[2] for p in peaks]
        np.testing.assert_allclose(res.q[a : a + n], [p[0] for p in peaks], rtol=1e-5, atol=1e-3)
        assert res.total_q[i] == pytest.approx(ref["total_q"], rel=1e-5, abs=1e-3)
        assert res.integral_q[i] == pytest.approx(ref["integral_q"], rel=1e-5, abs=2e-2)


def _assert_same(a: PulseResults, b: PulseResults) -> None:
    for name in ("n_peaks", "peak_offset", "t_start", "t_end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("baseline", "baseline_rms", "total_q", "q", "integral_q"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-3, err_msg=name)


@pytest.mark.parametrize("make", ["edge", "random"])
def test_numba_and_numpy_agree_with_the_reference(make: str) -> None:
    rng = np.random.default_rng(20251125)
    wfs = _edge_cases(rng) if make == "edge" else _random(rng, 30)
    res = analyse_batch(wfs)
    _assert_matches_reference(wfs, res)
    _assert_same(res, analyse_batch_numpy(wfs))


@pytest.mark.parametrize("make", ["edge", "random"])
def test_boundaries_left_out_agree_with_the_reference(make: str) -> None:
    rng = np.random.default_rng(7)
    wfs = _edge_cases(rng) if make == "edge" else _random(rng, 20)
    settings = PulseSettings(count_boundaries=False)
    res = analyse_batch(wfs, settings)
    _assert_matches_reference(wfs, res, count_boundaries=False)
    _assert_same(res, analyse_batch_numpy(wfs, settings))
    counted = analyse_batch(wfs)
    np.testing.assert_array_equal(res.t_start, counted.t_start)  # same peaks, only PeakQ changes
    assert np.all(res.q >= counted.q - 1e-3)  # boundary samples hold x <= 0: leaving them out never lowers


def test_edge_cases_behave_as_documented() -> None:
    wfs = _edge_cases(np.random.default_rng(1))
    res = analyse_batch(wfs)
    first = res.peak_offset
    assert res.t_start[first[0]] == 1400  # walk stops at the region start
    assert res.t_end[first[1] + res.n_peaks[1] - 1] == 7999  # runs to the last sample
    assert res.n_peaks[3] <= 1  # noise only: at most a rare 5-sigma fluctuation
    assert res.n_peaks[5] == 1 and res.q[first[5]] == pytest.approx(9.0)  # sigma 0: x > 0 still required
    ts6, te6 = (
        res.t_start[first[6] : first[6] + res.n_peaks[6]],
        res.t_end[first[6] : first[6] + res.n_peaks[6]],
    )
    assert np.all(ts6[1:] > te6[:-1])  # no sample belongs to two peaks
    assert res.n_peaks[7] == 1 and res.t_start[first[7]] == 7998 and res.t_end[first[7]] == 7999
    saturated = res.q[first[2] : first[2] + res.n_peaks[2]].max()
    assert saturated > 300 * BASE


def test_positive_polarity_other_regions_and_threshold() -> None:
    rng = np.random.default_rng(3)
    wfs = (2 * BASE - _random(rng, 10)).astype(np.int16)  # positive pulses around 900
    settings = PulseSettings(baseline_start=100, baseline_stop=1000, signal_start=1200, signal_stop=7000,
                             n_sigma=4.0, ddof=1, polarity=1)  # fmt: skip
    res = analyse_batch(wfs, settings)
    _assert_matches_reference(
        wfs, res, baseline=(100, 1000), signal=(1200, 7000), n_sigma=4.0, ddof=1, polarity=1
    )
    _assert_same(res, analyse_batch_numpy(wfs, settings))


def test_many_peaks_grow_the_output() -> None:
    wfs = np.full((3, S), BASE, np.int16)
    wfs[:, 100:1400:7] = BASE + 1  # a small baseline sigma
    wfs[:, 1400::2] = BASE + 1
    wfs[:, 1401::2] = BASE - 20  # 3300 single-sample peaks per waveform: more than the initial capacity
    res = analyse_batch(wfs)
    assert res.n_peaks.tolist() == [3300] * 3 and res.q.size == 9900
    _assert_same(res, analyse_batch_numpy(wfs))


def test_integral_counts_every_photoelectron_the_threshold_misses() -> None:
    """IntegralQ is the charge of the whole region: pulses far below 5 sigma are in it, TotalQ misses them."""
    rng = np.random.default_rng(11)
    n = 400
    shape = np.exp(-np.arange(40) / 4.0)
    small = shape * 4.0 / shape.sum()  # ten pulses of 4 ADC*ns, peaking at 0.94 ADC: never above 5 sigma
    pulses = np.zeros(S)
    for start in range(3000, 7000, 400):
        pulses[start : start + 40] += small
    noise = rng.normal(0.0, 1.0, (n, S))
    with_pulses = np.round(BASE + noise - pulses).astype(np.int16)
    without = np.round(BASE + noise).astype(np.int16)
    res, ref = analyse_batch(with_pulses), analyse_batch(without)
    assert res.total_q.mean() < 2.0  # the paper's peaks see (almost) nothing of the 40 ADC*ns
    # the same noise with and without the pulses: IntegralQ differs by the injected charge, up to rounding
    diff = res.integral_q - ref.integral_q
    assert diff.mean() == pytest.approx(40.0, abs=1.0)
    # noise-free records: exactly the injected charge of the rounded pulses
    flat = analyse_batch(np.round(BASE - np.tile(pulses * 10, (2, 1))).astype(np.int16))
    assert flat.integral_q[0] == pytest.approx(float(np.sum(BASE - np.round(BASE - pulses * 10))), abs=1e-3)
    spread = np.sqrt(6600 * (1 + 6600 / 1400) * (1.0 + 1 / 12))  # the noise of 6600 samples and the baseline
    assert res.integral_q.std() == pytest.approx(spread, rel=0.1)


def test_bad_regions_are_refused() -> None:
    with pytest.raises(ValueError, match="signal region 1400-9000 does not fit 8000 samples"):
        analyse_batch(np.zeros((1, S), np.int16), PulseSettings(signal_stop=9000))
