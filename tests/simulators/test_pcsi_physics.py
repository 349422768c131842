"""The simulator's physics, checked statistically with fixed seeds through the driver (PHYSICS.md sections 2-4).

The analysis here is deliberately simple and independent of analysis/: a reference charge
integral over samples 1400-7999 with the baseline of samples 0-1399, and Gaussian fits.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from scipy.optimize import curve_fit

from drivers import DigitizerSettings, Dt5751, EventBatch
from simulators import board_of
from simulators.am241_source import GAMMA_59_KEV
from simulators.csi_crystal import (
    CrystalTemperatureError,
    decay_components,
    light_yield_scale,
    relative_light_yield,
)
from simulators.r11065_pmt import R11065, spe_template
from simulators.waveform_kernels import add_pulses

Q_SPE = 32.5
LY = 35.2
PRE = 1601  # trigger sample with 8001-sample records and 6400 post-trigger


def batches(options: str, n_events: int) -> Iterator[EventBatch]:
    with Dt5751.open(f"sim://dt5751?pace=max&{options}") as board:
        board.configure(DigitizerSettings())
        board.arm()
        seen = 0
        while seen < n_events:
            batch = board.read_batch(min(512, n_events - seen), max_wait_s=5.0)
            seen += len(batch)
            yield batch


def reference_npe(batch: EventBatch) -> np.ndarray:
    """Sum of baseline-subtracted, inverted samples 1400-7999, in units of 32.5 ADC*ns."""
    wf = batch.waveforms[:, 0, :].astype(np.float64)
    baseline = wf[:, :1400].mean(axis=1)
    return (baseline[:, None] - wf[:, 1400:8000]).sum(axis=1) / Q_SPE


def gauss(x: np.ndarray, a: float, mu: float, sigma: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def fit_peak(values: np.ndarray, guess: float, half_width: float) -> tuple[float, float, float]:
    """Fit a Gaussian to the histogram of `values` within mu +- 2.5 sigma; return (mu, sigma, mu error)."""
    mu, sigma = guess, half_width / 2.5
    for _ in range(3):
        lo, hi = mu - 2.5 * sigma, mu + 2.5 * sigma
        counts, edges = np.histogram(values, bins=60, range=(lo, hi))
        centres = 0.5 * (edges[1:] + edges[:-1])
        keep = counts > 0
        popt, pcov = curve_fit(
            gauss,
            centres[keep],
            counts[keep],
            p0=(counts.max(), mu, sigma),
            sigma=np.sqrt(counts[keep]),
            absolute_sigma=True,
        )
        mu, sigma = popt[1], abs(popt[2])
    return mu, sigma, float(np.sqrt(pcov[1, 1]))


@pytest.fixture(scope="module")
def default_npe() -> np.ndarray:
    return np.concatenate([reference_npe(b) for b in batches("seed=101", 24_000)])


def test_59keV_peak_sits_at_the_light_yield_with_the_published_resolution(default_npe: np.ndarray) -> None:
    expected = LY * GAMMA_59_KEV  # 2096 PE
    mu, sigma, mu_err = fit_peak(default_npe, expected, 150.0)
    in_peak = np.sum(np.abs(default_npe - mu) < 2 * sigma)
    assert in_peak > 7000  # enough events that the width is known to ~0.05 pp
    assert mu == pytest.approx(expected, rel=0.02)
    fwhm_percent = 2.3548 * sigma / mu * 100
    assert fwhm_percent == pytest.approx(6.9, abs=0.3)


def test_spectrum_has_the_am241_lines_at_their_energies(default_npe: np.ndarray) -> None:
    mu59, _, _ = fit_peak(default_npe, LY * GAMMA_59_KEV, 150.0)
    ly = mu59 / GAMMA_59_KEV
    for energy_kev, width_pe in ((13.852, 40.0), (16.96, 45.0), (GAMMA_59_KEV + 16.3, 200.0)):
        mu, _, _ = fit_peak(default_npe, ly * energy_kev, width_pe)
        assert mu / energy_kev == pytest.approx(ly, rel=0.03), f"line at {energy_kev} keV"


def test_k_escape_moves_15_percent_of_the_59keV_absorptions_to_23_31_keV(default_npe: np.ndarray) -> None:
    control = np.concatenate([reference_npe(b) for b in batches("seed=101&k_escape_fraction=0", 24_000)])

    def fractions(npe: np.ndarray) -> tuple[float, float]:
        mu59, sigma59, _ = fit_peak(npe, LY * GAMMA_59_KEV, 150.0)
        ly = mu59 / GAMMA_59_KEV
        n59 = np.sum(np.abs(npe - mu59) < 3 * sigma59)
        window = np.sum((npe > ly * 22.5) & (npe < ly * 32.5))
        return n59 / npe.size, window / npe.size

    p59, window = fractions(default_npe)
    p59_0, window_0 = fractions(control)
    # with escape, 15 % of the would-be 59.54 keV events move into the 23-31 keV window
    assert (p59_0 - p59) / p59_0 == pytest.approx(0.15, abs=0.02)
    assert (window - window_0) / p59_0 == pytest.approx(0.15, abs=0.02)


def test_spe_charge_distribution_and_pulse_shape() -> None:
    from simulators.physics_settings import PhysicsSettings

    pmt = R11065(PhysicsSettings())
    q = pmt.charges(np.random.Generator(np.random.SFC64(4)), 1_000_000)
    assert q.min() > 0
    assert q.mean() == pytest.approx(32.5, abs=0.05)
    assert q.std() == pytest.approx(10.37, abs=0.05)
    template = spe_template(2.2)
    for phase in range(template.shape[0]):
        signal = np.zeros(100, dtype=np.float32)
        add_pulses(
            signal, np.array([10.0 + phase / 32], np.float32), np.array([32.5], np.float32), 0.0, template
        )
        assert signal.sum() == pytest.approx(32.5, rel=1e-5)  # charge is conserved exactly
        assert signal.max() == pytest.approx(4.0, rel=0.12)  # 0.123/ns x 32.5 ADC*ns at the peak
        above_half = np.flatnonzero(signal > signal.max() / 2)
        assert 6 <= above_half[-1] - above_half[0] + 1 <= 9  # FWHM about 7.5 ns


def test_low_charge_pes_keep_the_light_yield_qspe_equivalent() -> None:
    from simulators.physics_settings import PhysicsSettings

    pmt = R11065(PhysicsSettings(low_charge_fraction=0.15))
    q = pmt.charges(np.random.Generator(np.random.SFC64(5)), 1_000_000)
    assert q.mean() * pmt.pe_count_factor == pytest.approx(32.5, rel=0.005)


def test_scintillation_tail_decays_with_the_slow_constant() -> None:
    sums = np.zeros(8001)
    n = 0
    for batch in batches("seed=202&rate_hz=100", 3000):
        npe = reference_npe(batch)
        sel = np.abs(npe - LY * GAMMA_59_KEV) < 200
        wf = batch.waveforms[sel, 0, :].astype(np.float64)
        pulses = wf[:, :1400].mean(axis=1)[:, None] - wf
        sums += (pulses / pulses[:, 1400:8000].sum(axis=1)[:, None]).sum(axis=0)
        n += int(sel.sum())
    mean = sums / n
    t = np.arange(PRE + 1500, PRE + 6000)
    slope, _ = np.polyfit(t, np.log(mean[t]), 1)
    assert -1.0 / slope == pytest.approx(1000.0, rel=0.03)


def test_photoelectron_times_follow_the_three_component_profile() -> None:
    from simulators.pcsi_signal import PcsiSignal
    from simulators.physics_settings import PhysicsSettings

    signal = PcsiSignal(PhysicsSettings(seed=7, tts_sigma_ns=3.8))
    for _ in range(4):
        signal._draw_chunk()
    t = signal._pe_t.astype(np.float64)
    assert t.size > 500_000
    for t_ns in (50.0, 200.0, 1000.0, 3000.0):
        expected = (
            0.05 * (1 - np.exp(-t_ns / 25))
            + 0.15 * (1 - np.exp(-t_ns / 250))
            + 0.80 * (1 - np.exp(-t_ns / 1000))
        )
        assert np.mean(t < t_ns) == pytest.approx(expected, abs=0.003), f"CDF at {t_ns} ns"
    early = t[t < 0]  # only the transit-time spread puts PEs before the interaction
    assert early.size > 0 and early.min() > -8 * 3.8


@pytest.mark.parametrize("temperature_k", [20.0, 150.0])
def test_light_yield_follows_the_temperature_curve(temperature_k: float) -> None:
    npe = np.concatenate([reference_npe(b) for b in batches(f"seed=303&temperature_k={temperature_k}", 6000)])
    scale = light_yield_scale(temperature_k)
    mu, _, _ = fit_peak(npe, LY * GAMMA_59_KEV * scale, 150.0 * scale)
    assert mu / (LY * GAMMA_59_KEV) == pytest.approx(scale, rel=0.02)


def test_light_yield_curve_anchors() -> None:
    assert light_yield_scale(20.0) == pytest.approx(1.20, abs=0.01)
    assert light_yield_scale(77.0) == 1.0
    assert relative_light_yield(293.0) == pytest.approx(0.053, abs=0.001)
    assert max(relative_light_yield(t) for t in np.arange(3, 300, 1.0)) == pytest.approx(1.0)
    plateau = [light_yield_scale(t) for t in (70.0, 87.0, 100.0)]
    assert max(plateau) - min(plateau) < 0.025
    with pytest.raises(ValueError, match="400 K is outside the physics model's 2.5-350 K"):
        relative_light_yield(400.0)


def test_below_3_k_the_lowest_measured_light_yield_and_decay_times_are_held() -> None:
    """The cryostat's floor (2.8 K) and down to 2.5 K: the 3 K values, not an extrapolated slope."""
    for temperature_k in (2.5, 2.8):
        assert relative_light_yield(temperature_k) == relative_light_yield(3.0) == pytest.approx(0.55)
        taus, fractions = decay_components(temperature_k, (25.0, 250.0, 1000.0), (0.05, 0.15, 0.80))
        assert list(taus) == [25.0, 250.0, 1000.0] and list(fractions) == [0.05, 0.15, 0.80]
    with pytest.raises(CrystalTemperatureError, match="2.4 K is outside the physics model's 2.5-350 K"):
        decay_components(2.4, (1000.0,), (1.0,))


def test_pile_up_and_dead_time_show_in_the_trigger_times() -> None:
    """A trigger keeps the board busy for the post-trigger window: what arrives then is in that record.

    So the trigger rate is R / (1 + R * 6.4 us) (non-paralysable dead time), gaps are never shorter
    than 6.4 us, and beyond that they are exponential at the interaction rate.
    """
    rate_hz = 20_000.0
    stamps = []
    with Dt5751.open(f"sim://dt5751?pace=max&seed=404&rate_hz={rate_hz:g}") as board:
        board.configure(DigitizerSettings())
        board.arm()
        while sum(len(s) for s in stamps) < 8000:
            stamps.append(board.read_batch(512).timestamp_ns)
        signal = board_of(board._root).signal
    gaps_ns = np.diff(np.concatenate(stamps).astype(np.float64))
    total_hz = signal.source.total_rate_hz
    efficiency = 1 - signal.subthreshold / max(1, signal.interactions)
    assert gaps_ns.min() >= 6400
    expected_hz = total_hz * efficiency / (1 + total_hz * efficiency * 6.4e-6)
    assert 1e9 / gaps_ns.mean() == pytest.approx(expected_hz, rel=0.03)
    beyond = gaps_ns - 6400
    assert np.mean(beyond > 1e9 / (total_hz * efficiency)) == pytest.approx(np.exp(-1), abs=0.03)


def test_muons_saturate_the_10_bit_adc() -> None:
    for batch in batches("seed=505&rate_hz=1&muon_rate_hz=50", 20):
        lows = batch.waveforms[:, 0, :].min(axis=1)
        big = lows == 0
        if big.any():
            wf = batch.waveforms[np.flatnonzero(big)[0], 0]
            assert np.sum(wf == 0) > 50  # a flat, clipped stretch
            return
    pytest.fail("no saturated muon record among 20 events")


def test_dark_counts_add_single_pe_charge_before_the_trigger() -> None:
    total, n = 0.0, 0
    with Dt5751.open("sim://dt5751?pace=max&seed=606&dark_rate_hz=1000000") as board:
        eff = board.configure(DigitizerSettings())
        board.arm()
        true_baseline = board_of(board._root).board_setup().baseline_adc[0]
        while n < 600:
            batch = board.read_batch(200)
            wf = batch.waveforms[:, 0, :1400].astype(np.float64)
            total += float((true_baseline - wf).sum())
            n += len(batch)
    assert eff.channels[0].baseline_rms_adc > 0.7  # dark pulses widen the measured baseline
    per_record = total / n
    assert per_record == pytest.approx(1e6 * 1400e-9 * Q_SPE, rel=0.12)


def test_afterpulses_add_their_charge_to_the_event() -> None:
    plain = np.concatenate([reference_npe(b) for b in batches("seed=707", 4000)])
    with_ap = np.concatenate(
        [reference_npe(b) for b in batches("seed=707&afterpulse_probability=0.05&afterpulse_max_pe=3", 4000)]
    )
    mu0, _, _ = fit_peak(plain, LY * GAMMA_59_KEV, 150.0)
    mu1, _, _ = fit_peak(with_ap, LY * GAMMA_59_KEV * 1.1, 170.0)
    # 5 % of PEs each followed after ~0.6 us by 1-3 PEs (mean 2): +10 % charge inside the window
    assert mu1 / mu0 == pytest.approx(1.10, abs=0.012)


def test_trigger_times_are_poisson_at_the_configured_rate() -> None:
    stamps = np.concatenate([b.timestamp_ns for b in batches("seed=808&rate_hz=500", 6000)]).astype(
        np.float64
    )
    gaps_s = np.diff(stamps) * 1e-9
    rate_hz = 1.0 / gaps_s.mean()
    # interactions at 500 + 1 + 0.07 Hz; a few low-energy X/e ones stay below the 30 ADC threshold
    assert 0.97 * 501.07 < rate_hz < 501.07 * (1 + 3 / np.sqrt(len(gaps_s)))  # 3 sigma of the mean gap
    # exponential gaps: the fraction longer than the mean is 1/e
    assert np.mean(gaps_s > gaps_s.mean()) == pytest.approx(np.exp(-1), abs=0.02)


def test_realtime_pace_delivers_the_rate_on_the_board_clock() -> None:
    from tests.drivers.test_dt5751 import FakeClock

    clock = FakeClock()
    with Dt5751.open("sim://dt5751?seed=909&rate_hz=500", clock=clock, sleep=clock.sleep) as board:
        board.configure(DigitizerSettings())
        board.arm()
        start_s = clock()
        n = 0
        while clock() - start_s < 10.0:
            batch = board.read_batch(100, max_wait_s=0.5)
            n += len(batch)
            assert batch.lost_triggers == 0
    assert n == pytest.approx(5000, abs=4 * np.sqrt(5000) + 100)


def test_crystal_temperature_can_come_from_a_live_source() -> None:
    temperature = {"k": 77.0}
    npe = {}
    with Dt5751.open("sim://dt5751?seed=111&pace=max", temperature_k=lambda: temperature["k"]) as board:
        board.configure(DigitizerSettings())
        board.arm()
        for t_k in (77.0, 20.0):
            temperature["k"] = t_k
            board.read_batch(1024)  # flush interactions drawn at the previous temperature
            values = []
            while len(values) < 5000:
                values.extend(reference_npe(board.read_batch(512)))
            npe[t_k] = fit_peak(np.asarray(values), LY * GAMMA_59_KEV * light_yield_scale(t_k), 180.0)[0]
    assert npe[20.0] / npe[77.0] == pytest.approx(1.20, abs=0.03)


def test_optional_effects_transmission_nonproportionality_ac_coupling() -> None:
    from simulators.am241_source import LINES, P_LINE_59, Am241Source
    from simulators.physics_settings import PhysicsSettings
    from simulators.waveform_kernels import high_pass

    only_59 = tuple(1.0 if i == P_LINE_59 else 0.0 for i in range(len(LINES)))
    deposits = Am241Source(PhysicsSettings(line_transmission=only_59, other_xray_fraction=0)).draw(
        np.random.default_rng(1), 20_000
    )
    assert set(np.unique(deposits.process)) <= {
        P_LINE_59,
        9,
        10,
        11,
        13,
        14,
    }  # 59.54, its escapes, sum, background
    npe = np.concatenate(
        [reference_npe(b) for b in batches("seed=121&nonproportionality_per_decade=0.03", 6000)]
    )
    mu59, _, _ = fit_peak(npe, LY * GAMMA_59_KEV, 150.0)
    mu17, _, _ = fit_peak(npe, LY * 16.96 * (1 + 0.03 * np.log10(16.96 / GAMMA_59_KEV)), 45.0)
    assert (mu17 / 16.96) / (mu59 / GAMMA_59_KEV) == pytest.approx(
        1 + 0.03 * np.log10(16.96 / GAMMA_59_KEV), abs=0.01
    )
    pulse = np.zeros(60_000, np.float32)
    pulse[100:110] = 100.0  # 1000 ADC*ns
    high_pass(pulse, 17_000.0)
    assert pulse.sum() == pytest.approx(0.0, abs=30.0)  # the undershoot cancels the area
    assert pulse[200] == pytest.approx(-1000 / 17_000, rel=0.05)
