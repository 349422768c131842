"""The characterisation of one input (PHYSICS.md 1.3-1.6): SPE calibration, NPE spectra, LY, resolution, decay.

Two methods side by side (docs/analysis.md):
- `integral` (the headline): NPE = IntegralQ / Qspe, with Qspe from the threshold-free window
  calibration (analysis.spe_calibration). Nothing in it depends on a threshold, so it stays right
  when the single-PE pulse sinks into the noise.
- `paper`: NPE = TotalQ / Qspe of the paper's 5-sigma peaks and its sigmoid-acceptance SPE fit.
  It is reported beside the headline, with warnings where its threshold biases it.

Each stage that cannot be done (too few peaks, no Am-241 peak, a record too short) is reported with
its reason and the others still run: a WaveDump file of another detector is analysed as far as it
goes, never refused as a whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from analysis.decay_fit import DecayFitResult, DecayFitSettings, WaveformAverager, fit_decay
from analysis.run_data import EventData
from analysis.spe_calibration import SpeCalibration, SpeCalibrationSettings, calibrate_spe, rough_q_spe
from analysis.spe_fit import FitError, Measured, SpeFitResult, SpeFitSettings, fit_spe, noise_sigma_from_peaks
from analysis.spe_windows import Regions, WindowCharges, WindowCollector, integral_noise_adc_ns
from analysis.spectrum_fit import FWHM_PER_SIGMA, SpectrumFitResult, SpectrumFitSettings, fit_spectrum

PAPER_BIAS_WARNING = 0.02  # the paper's LY differing from the headline by more than this is flagged
TEMPLATE_SEARCH_NS = 2000  # isolated pulses for the SPE shape are taken from this long before the SPE window


@dataclass(frozen=True)
class AnalysisOptions:
    spe_window_ns: tuple[int, int] = (7000, 8000)  # a peak is an SPE candidate if its TS is in [start, stop)
    spe: SpeFitSettings = SpeFitSettings()
    calibration: SpeCalibrationSettings = SpeCalibrationSettings()
    spectrum: SpectrumFitSettings = SpectrumFitSettings()
    decay: DecayFitSettings = DecayFitSettings()
    decay_selection_sigma: float = 2.0  # events with |NPE - mu59| < this many sigma59 are averaged
    q_spe_adc_ns: float | None = None  # use this Qspe in both methods instead of the calibrations'
    temperature_step_k: float | None = None  # also fit the LY in temperature bins of one run's series


@dataclass
class TemperaturePoint:
    temperature_k: float
    light_yield: Measured
    n_events: int
    source: str


@dataclass
class MethodResult:
    """One charge estimator's chain: the charge per event, the Qspe that scales it, the NPE spectrum fit."""

    name: str  # "integral" or "paper"
    charge: str  # what NPE is made of
    q_spe_adc_ns: float | None = None
    q_spe_error_adc_ns: float = 0.0  # its total error (statistics and shape); 0 for a given Qspe
    q_spe_source: str = ""
    spectrum: SpectrumFitResult | None = None
    error: str = ""
    npe: NDArray[np.float64] | None = None

    @property
    def light_yield(self) -> Measured | None:
        """The spectrum's mean LY with the Qspe error added (NPE = charge / Qspe: LY moves with 1/Qspe)."""
        if self.spectrum is None or not self.q_spe_adc_ns:
            return None
        ly = self.spectrum.light_yield
        return Measured(
            ly.value, float(np.hypot(ly.error, ly.value * self.q_spe_error_adc_ns / self.q_spe_adc_ns))
        )


@dataclass
class RunAnalysis:
    data: EventData
    options: AnalysisOptions
    spe: SpeFitResult | None = None  # the paper's SPE fit
    spe_error: str = ""
    calibration: SpeCalibration | None = None  # the threshold-free window calibration
    calibration_error: str = ""
    integral_noise_adc_ns: float = float("nan")  # electronics noise (rms) of IntegralQ
    methods: dict[str, MethodResult] = field(default_factory=dict)
    headline: str = "integral"
    headline_reason: str = ""
    warnings: list[str] = field(default_factory=list)
    decay: DecayFitResult | None = None
    decay_error: str = ""
    decay_selection: str = "events within 2 sigma of the 59.54 keV peak"
    temperature_k: float | None = None
    temperature_source: str = ""
    temperature_series: list[TemperaturePoint] = field(default_factory=list)
    temperature_series_error: str = ""
    n_spe_peaks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def headline_method(self) -> MethodResult:
        return self.methods[self.headline]

    @property
    def spectrum(self) -> SpectrumFitResult | None:
        """The headline method's spectrum fit."""
        return self.headline_method.spectrum if self.methods else None

    @property
    def spectrum_error(self) -> str:
        return self.headline_method.error if self.methods else "not analysed"

    @property
    def q_spe_used(self) -> float | None:
        return self.headline_method.q_spe_adc_ns if self.methods else None

    @property
    def q_spe_source(self) -> str:
        return self.headline_method.q_spe_source if self.methods else ""

    def fwhm_without_noise_percent(self) -> float | None:
        """FWHM at 59.54 keV of the headline spectrum with its electronics noise removed in quadrature."""
        spec = self.spectrum
        if spec is None or self.headline != "integral" or not np.isfinite(self.integral_noise_adc_ns):
            return None
        g = spec.peaks[0]
        noise_npe = self.integral_noise_adc_ns / float(self.q_spe_used)
        var = g.sigma_npe.value**2 - noise_npe**2
        return 100.0 * FWHM_PER_SIGMA * float(np.sqrt(var)) / g.mu_npe.value if var > 0 else None


def spe_window_mask(data: EventData, window_ns: tuple[int, int]) -> np.ndarray:
    return (data.peak_t_start >= window_ns[0]) & (data.peak_t_start < window_ns[1])


def analyse(data: EventData, options: AnalysisOptions = AnalysisOptions()) -> RunAnalysis:
    """Run every stage on `data`; failures are kept per stage as messages."""
    out = RunAnalysis(data=data, options=options)
    out.temperature_k, out.temperature_source = data.temperature_k()
    t = time.perf_counter()
    in_window = spe_window_mask(data, options.spe_window_ns)
    out.n_spe_peaks = int(in_window.sum())
    try:
        noise = noise_sigma_from_peaks(
            data.baseline_rms[data.peak_event[in_window]], data.peak_widths_summed()[in_window]
        )
        out.spe = fit_spe(data.peak_q[in_window], options.spe, noise)
    except FitError as exc:
        out.spe_error = str(exc)
    out.seconds["paper SPE fit"] = time.perf_counter() - t
    t = time.perf_counter()
    _calibrate(out, in_window)
    out.seconds["window SPE calibration"] = time.perf_counter() - t
    t = time.perf_counter()
    _spectra(out)
    out.seconds["spectrum fits"] = time.perf_counter() - t
    t = time.perf_counter()
    _decay(out)
    out.seconds["decay fit"] = time.perf_counter() - t
    npe = out.headline_method.npe
    if options.temperature_step_k is not None and npe is not None:
        t = time.perf_counter()
        out.temperature_series, out.temperature_series_error = _temperature_series(
            data, npe, options.temperature_step_k, options.spectrum
        )
        out.seconds["LY vs T"] = time.perf_counter() - t
    _warnings(out)
    return out


def _calibrate(out: RunAnalysis, in_window: NDArray[np.bool_]) -> None:
    """The threshold-free SPE calibration: one pass over all waveforms, then the window fit."""
    data, options = out.data, out.options
    p = data.pulse
    w0, w1 = options.spe_window_ns
    if not (p.signal_start <= w0 < w1 <= p.signal_stop):
        out.calibration_error = (
            f"the SPE window {w0}-{w1} ns is not inside the signal region {p.signal_start}-{p.signal_stop} "
            f"of these {data.record_length}-sample records; set --spe-window"
        )
        return
    if out.spe is not None:
        q_guess = out.spe.q_spe.value
    elif in_window.sum() >= 50:
        q_guess = float(np.median(data.peak_q[in_window]))
    else:
        q_guess = float("nan")
    try:
        windows = collect_windows(data, options, q_guess)
        if not q_guess > 0:
            q_guess = rough_q_spe(windows)
        out.integral_noise_adc_ns = integral_noise_adc_ns(
            windows.noise_autocov_adc2, (p.baseline_start, p.baseline_stop), (p.signal_start, p.signal_stop)
        )
        out.calibration = calibrate_spe(windows, q_guess, options.spe_window_ns, options.calibration)
    except (FitError, ValueError) as exc:
        out.calibration_error = str(exc)


def collect_windows(data: EventData, options: AnalysisOptions, q_guess_adc_ns: float) -> WindowCharges:
    """Window charges, isolated late pulses and baseline noise of every event (one pass over the waveforms)."""
    p = data.pulse
    regions = Regions(
        (p.baseline_start, p.baseline_stop), (p.signal_start, p.signal_stop), options.calibration.window_ns,
        p.polarity,
    )  # fmt: skip
    box_ns = 8
    box_noise = float(np.median(data.baseline_rms)) * np.sqrt(box_ns) if data.n_events else 1.0
    q = q_guess_adc_ns if q_guess_adc_ns > 0 else 10.0 * box_noise
    collector = WindowCollector(
        regions, data.n_events, (options.spe_window_ns[0] - TEMPLATE_SEARCH_NS, p.signal_stop),
        box_min_adc_ns=max(0.4 * q, 4.0 * box_noise), box_isolation_adc_ns=max(0.6 * q, 5.0 * box_noise),
        box_ns=box_ns,
    )  # fmt: skip
    for waveforms, events in data.waveform_chunks(np.ones(data.n_events, bool)):
        collector.add(waveforms, events)
    return collector.result()


def _spectra(out: RunAnalysis) -> None:
    """NPE spectra of both methods, and which one is the headline."""
    data, options = out.data, out.options
    integral = MethodResult("integral", "IntegralQ (the whole signal region, no threshold)")
    paper = MethodResult("paper", "TotalQ (sum of the 5-sigma peaks' PeakQ)")
    if options.q_spe_adc_ns is not None:
        for m in (integral, paper):
            m.q_spe_adc_ns, m.q_spe_source = options.q_spe_adc_ns, "given (--q-spe)"
    else:
        if out.calibration is not None:
            integral.q_spe_adc_ns, integral.q_spe_source = out.calibration.q_spe.value, "window calibration"
            integral.q_spe_error_adc_ns = out.calibration.q_spe_error_total
        elif out.spe is not None:
            integral.q_spe_adc_ns = out.spe.q_spe.value
            integral.q_spe_error_adc_ns = float(np.nan_to_num(out.spe.q_spe.error))
            integral.q_spe_source = (
                f"the paper's SPE fit (the window calibration failed: {out.calibration_error})"
            )
        if out.spe is not None:
            paper.q_spe_adc_ns, paper.q_spe_source = out.spe.q_spe.value, "the paper's SPE fit"
            paper.q_spe_error_adc_ns = float(np.nan_to_num(out.spe.q_spe.error))
    for m, charge in ((integral, data.integral_q), (paper, data.total_q)):
        if m.q_spe_adc_ns is None:
            why = out.spe_error if m is paper else f"{out.calibration_error}; {out.spe_error}"
            m.error = f"no Qspe: {why}; give one with --q-spe"
            continue
        m.npe = charge / m.q_spe_adc_ns
        try:
            m.spectrum = fit_spectrum(m.npe, options.spectrum)
        except FitError as exc:
            m.error = str(exc)
    out.methods = {"integral": integral, "paper": paper}
    if integral.spectrum is None and paper.spectrum is None:
        out.headline, out.headline_reason = "integral", "neither method could be fitted (see above)"
    elif integral.spectrum is not None:
        out.headline = "integral"
        out.headline_reason = (
            "IntegralQ sums every sample of the signal region, so it loses no photoelectron below the 5-sigma "
            "threshold; the paper's TotalQ loses the small pulses once the single-PE pulse nears the noise"
        )
        if out.calibration is not None and options.q_spe_adc_ns is None:
            out.headline_reason += (
                "; its Qspe comes from a fit of fixed windows that no threshold selects, where the paper's "
                "PeakQ fit sees the SPE peak through its threshold"
            )
        else:
            out.headline_reason += f"; its Qspe: {integral.q_spe_source}"
    else:
        out.headline = "paper"
        out.headline_reason = f"the integral method could not be fitted: {integral.error}"


def _decay(out: RunAnalysis) -> None:
    data, options = out.data, out.options
    spec, npe = out.spectrum, out.headline_method.npe
    if spec is not None and npe is not None:
        g = spec.peaks[0]
        selected = np.abs(npe - g.mu_npe.value) < options.decay_selection_sigma * g.sigma_npe.value
    else:  # no 59.54 keV peak to select on: average every event with a pulse, and say so
        selected = (data.total_q > 0) & (data.peak_event.size > 0)
        out.decay_selection = "all events with a pulse (no 59.54 keV selection: the spectrum fit failed)"
    if not selected.any():
        out.decay_error = "no event with a pulse to average"
        return
    keep = np.flatnonzero(selected)[: options.decay.max_events]
    mask = np.zeros(data.n_events, bool)
    mask[keep] = True
    try:
        p = data.pulse
        avg = WaveformAverager(p.signal_start, p.signal_stop, p.polarity)
        for waveforms, events in data.waveform_chunks(mask):
            avg.add(waveforms, data.baseline[events])
        out.decay = fit_decay(avg.result(), options.decay)
    except FitError as exc:
        out.decay_error = str(exc)


def _warnings(out: RunAnalysis) -> None:
    """Where the paper's method is biased, or the two calibrations disagree, say so with the numbers."""
    spe, cal = out.spe, out.calibration
    integral, paper = out.methods.get("integral"), out.methods.get("paper")
    ly_shift = None
    if (
        integral is not None
        and paper is not None
        and integral.spectrum is not None
        and paper.spectrum is not None
    ):
        ly_shift = paper.spectrum.light_yield.value / integral.spectrum.light_yield.value - 1.0
    if spe is not None and cal is not None and spe.q0.value > 0.5 * cal.q_spe.value:
        effect = (
            f"here its Qspe is {100 * (spe.q_spe.value / cal.q_spe.value - 1):+.1f} % and its LY "
            f"{100 * ly_shift:+.1f} % off the threshold-free ones"
            if ly_shift is not None
            else "its Qspe is biased"
        )
        out.warnings.append(
            f"the paper's 5-sigma threshold cuts into the SPE peak: its acceptance midpoint q0 = {spe.q0.value:.1f} "
            f"ADC*ns ({spe.q0.value / cal.q_spe.value:.2f} Qspe) is above half of Qspe, so its fit sees only the "
            f"upper side of the peak and TotalQ misses the smaller photoelectrons; {effect}"
        )
    if spe is not None and cal is not None:
        diff = spe.q_spe.value - cal.q_spe.value
        err = float(np.hypot(np.nan_to_num(spe.q_spe.error), np.nan_to_num(cal.q_spe_error_total)))
        if abs(diff) > err:
            out.warnings.append(
                f"the two Qspe differ by {diff:+.2f} ADC*ns ({100 * diff / cal.q_spe.value:+.1f} %), more than "
                f"their errors ({err:.2f}): paper fit {spe.q_spe.value:.2f}, window calibration {cal.q_spe.value:.2f}"
            )
    if ly_shift is not None and abs(ly_shift) > PAPER_BIAS_WARNING:
        out.warnings.append(
            f"the paper's method gives a LY {100 * ly_shift:+.1f} % off the integral method's "
            f"({paper.spectrum.light_yield.value:.2f} against {integral.spectrum.light_yield.value:.2f} PE/keVee)"
        )
    if spe is None and out.spe_error:
        out.warnings.append(f"the paper's SPE fit failed, so its method has no result: {out.spe_error}")
    if cal is None and out.calibration_error:
        out.warnings.append(f"no threshold-free SPE calibration: {out.calibration_error}")


def _temperature_series(
    data: EventData, npe: np.ndarray, step_k: float, settings: SpectrumFitSettings
) -> tuple[list[TemperaturePoint], str]:
    """Fit the spectrum of the events in each temperature bin of the run's crystal-sensor series."""
    temps = data.event_temperatures_k()
    if temps is None:
        return [], "the input has no temperature series (/slow/temperature)"
    lo = np.floor(temps.min() / step_k) * step_k
    edges = np.arange(lo, temps.max() + step_k, step_k)
    points, skipped = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = (temps >= a) & (temps < b)
        if sel.sum() < settings.min_events:
            skipped.append(f"{a:g}-{b:g} K ({int(sel.sum())} events)")
            continue
        try:
            fit = fit_spectrum(npe[sel], settings)
        except FitError as exc:
            skipped.append(f"{a:g}-{b:g} K ({exc})")
            continue
        points.append(TemperaturePoint(float(np.mean(temps[sel])), fit.light_yield, int(sel.sum()), "series"))
    note = f"bins skipped: {'; '.join(skipped)}" if skipped else ""
    return points, note


def light_yield_ratio(a: Measured, b: Measured) -> Measured:
    """R_ly = a / b with the uncertainties of both propagated (uncorrelated)."""
    r = a.value / b.value
    return Measured(r, abs(r) * float(np.hypot(a.error / a.value, b.error / b.value)))
