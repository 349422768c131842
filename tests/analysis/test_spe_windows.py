"""The window pass and the threshold-free SPE calibration's pieces, against plain NumPy and known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from analysis.pulses import PulseSettings, analyse_batch
from analysis.spe_calibration import calibrate_spe, default_template, fraction_inside, fwhm_ns
from analysis.spe_fit import FitError
from analysis.spe_windows import (
    SEGMENT_BEFORE_NS,
    SEGMENT_NS,
    Regions,
    WindowCollector,
    estimate_template,
    integral_noise_adc_ns,
    main_lobe,
)

BASE = 900.0


def _noise_records(
    rng: np.random.Generator, n: int, samples: int, rms: float, corr: float = 0.0
) -> np.ndarray:
    noise = (
        lfilter([1.0], [1.0, -corr], rng.standard_normal((n, samples)), axis=1) * rms * np.sqrt(1 - corr**2)
    )
    return np.round(BASE + noise).astype(np.int16)


@pytest.mark.parametrize("polarity", [-1, 1])
def test_window_charges_equal_plain_numpy_sums(polarity: int) -> None:
    rng = np.random.default_rng(5)
    wf = rng.integers(850, 950, size=(7, 1000)).astype(np.int16)
    regions = Regions(baseline=(0, 200), signal=(250, 1000), window_ns=32, polarity=polarity)
    col = WindowCollector(regions, 10, (600, 1000), box_min_adc_ns=1e9, box_isolation_adc_ns=1e9)
    events = np.array([0, 3, 4, 5, 7, 8, 9])
    col.add(wf, events)
    wc = col.result()
    assert wc.signal.shape == (7, 750 // 32) and wc.pedestal.shape == (7, 200 // 32)
    x = wf.astype(np.float64)
    mu = x[:, :200].mean(axis=1)
    first = 1000 - 32 * (750 // 32)  # windows tile the signal region from its end
    expect = -polarity * (mu[:, None] * 32 - x[:, first:].reshape(7, -1, 32).sum(axis=2))
    np.testing.assert_allclose(wc.signal, expect, rtol=1e-5, atol=1e-2)
    sums = x[:, : 32 * 6].reshape(7, 6, 32).sum(axis=2)
    mu_other = (x[:, :200].sum(axis=1)[:, None] - sums) / (200 - 32)  # the window's own samples left out
    np.testing.assert_allclose(wc.pedestal, -polarity * (mu_other * 32 - sums), rtol=1e-5, atol=1e-2)
    assert regions.window_starts_ns()[0] == first and regions.window_starts_ns()[-1] == 1000 - 32


@pytest.mark.parametrize("corr", [0.0, 0.6])
def test_integral_noise_from_the_baseline_matches_the_integral_of_pure_noise(corr: float) -> None:
    """The noise model of IntegralQ (from 4096 records' baseline autocovariance) against the spread of the
    kernel's own IntegralQ over records of noise only, white and correlated."""
    rng = np.random.default_rng(8)
    wf = _noise_records(rng, 6000, 8000, rms=0.9, corr=corr)
    regions = Regions(baseline=(0, 1400), signal=(1400, 8000), window_ns=32, polarity=-1)
    col = WindowCollector(regions, wf.shape[0], (5000, 8000), box_min_adc_ns=1e9, box_isolation_adc_ns=1e9)
    for a in range(0, wf.shape[0], 1000):
        col.add(wf[a : a + 1000], np.arange(a, a + 1000))
    predicted = integral_noise_adc_ns(col.result().noise_autocov_adc2, (0, 1400), (1400, 8000))
    measured = float(np.std(analyse_batch(wf, PulseSettings()).integral_q))
    assert predicted == pytest.approx(measured, rel=0.05)  # the std of 6000 values is known to 0.9 %
    if corr == 0.0:  # white: sigma^2 N_SG (1 + N_SG / N_BL), sigma with rounding
        assert predicted == pytest.approx(np.sqrt((0.81 + 1 / 12) * 6600 * (1 + 6600 / 1400)), rel=0.03)


def _bi_exponential(t: np.ndarray, rise: float = 1.0, fall: float = 3.5) -> np.ndarray:
    y = np.where(t > 0, np.exp(-t / fall) - np.exp(-t / rise), 0.0)
    return y / (y.sum() * (t[1] - t[0]))


def test_template_estimate_finds_a_shape_unlike_the_starting_one() -> None:
    """Segments of single PEs with a bi-exponential shape (not the R11065 start), noise 0.9 ADC, 30 ADC*ns."""
    rng = np.random.default_rng(2)
    n = 6000
    fine = np.arange(0.0, 60.0, 0.01)
    truth = _bi_exponential(fine)
    segments = rng.normal(0.0, 0.9, (n, SEGMENT_NS))
    q = rng.normal(30.0, 9.0, n).clip(1.0)
    start = SEGMENT_BEFORE_NS - 4 + rng.random(n)  # arrival, with a sub-sample phase
    samples = np.arange(SEGMENT_NS)
    for i in range(n):  # each sample holds the shape's integral over its nanosecond
        edges = samples - start[i]
        cum = np.interp(np.concatenate((edges, [edges[-1] + 1])), fine, np.cumsum(truth) * 0.01, left=0.0)
        segments[i] += q[i] * np.diff(cum)
    t, y, used = estimate_template(segments.astype(np.float32), 30.0, default_template())
    assert used > 0.5 * n
    true_fwhm = fwhm_ns(fine, truth)
    assert fwhm_ns(t, y) == pytest.approx(true_fwhm, abs=0.6)  # 0.25 ns grid, within a sample's jitter
    # what the calibration uses the shape for: the fraction of a PE inside a 32 ns window by arrival time;
    # the arrival span (ns, of 0.05 ns steps) that leaves more than `cut` of the charge inside
    f_true = fraction_inside(fine, truth, 32)
    f_est = fraction_inside(t, main_lobe(t, y), 32)
    for cut in (0.05, 0.5, 0.9, 0.97):
        assert np.sum(f_est > cut) * 0.05 == pytest.approx(np.sum(f_true > cut) * 0.05, abs=1.0), cut
    default_t, default_y = default_template()
    assert abs(fwhm_ns(default_t, default_y) - true_fwhm) > 1.5  # the start was really another shape


def test_calibration_without_photoelectrons_says_so() -> None:
    rng = np.random.default_rng(3)
    wf = _noise_records(rng, 3000, 8000, rms=0.8)
    regions = Regions(baseline=(0, 1400), signal=(1400, 8000), window_ns=32, polarity=-1)
    col = WindowCollector(regions, 3000, (5000, 8000), box_min_adc_ns=15.0, box_isolation_adc_ns=20.0)
    col.add(wf, np.arange(3000))
    with pytest.raises(FitError, match="photoelectrons in the late region .* take a longer run"):
        calibrate_spe(col.result(), 30.0)


@pytest.mark.parametrize("polarity", [-1, 1])
def test_isolated_pulses_are_stored_centred_and_a_close_pair_is_not(polarity: int) -> None:
    rng = np.random.default_rng(4)
    wf = np.round(BASE + rng.normal(0.0, 0.5, (3, 8000)))
    pulse = 30.0 * _bi_exponential(np.arange(0.0, 40.0))  # 30 ADC*ns, ~7 ADC high
    starts = {0: [5200, 6000, 7000], 1: [5600, 5630], 2: []}  # event 1: two pulses 30 ns apart
    for ev, where in starts.items():
        for t0 in where:
            wf[ev, t0 : t0 + 40] += polarity * pulse
    regions = Regions(baseline=(0, 1400), signal=(1400, 8000), window_ns=32, polarity=polarity)
    col = WindowCollector(regions, 3, (5000, 8000), box_min_adc_ns=12.0, box_isolation_adc_ns=12.0)
    col.add(np.round(wf).astype(np.int16), np.arange(3))
    segments = col.result().pulse_segments
    assert segments.shape == (3, SEGMENT_NS)  # the three isolated pulses, not the pair, not the noise
    peak = np.argmax(segments, axis=1)  # always positive: x = polarity-corrected baseline - raw
    assert np.all(np.abs(peak - SEGMENT_BEFORE_NS) <= 4)
    charge = segments[:, SEGMENT_BEFORE_NS - 10 : SEGMENT_BEFORE_NS + 40].sum(axis=1)
    assert np.allclose(charge, 30.0, atol=11.0)  # the charge, within 3 sigma of the noise of 50 samples


def test_a_baseline_too_short_for_two_windows_is_refused() -> None:
    regions = Regions(baseline=(0, 40), signal=(40, 400), window_ns=32, polarity=-1)
    with pytest.raises(ValueError, match="baseline region two"):
        WindowCollector(regions, 10, (0, 400), box_min_adc_ns=10.0, box_isolation_adc_ns=10.0)
