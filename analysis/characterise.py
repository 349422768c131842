"""The characterisation of one input (PHYSICS.md 1.3-1.6): SPE fit, NPE spectrum fit, LY, resolution, decay.

Each stage that cannot be done (too few peaks, no Am-241 peak, a record too short) is reported with
its reason and the others still run: a WaveDump file of another detector is analysed as far as it
goes, never refused as a whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from analysis.decay_fit import DecayFitResult, DecayFitSettings, WaveformAverager, fit_decay
from analysis.run_data import EventData
from analysis.spe_fit import FitError, Measured, SpeFitResult, SpeFitSettings, fit_spe, noise_sigma_from_peaks
from analysis.spectrum_fit import SpectrumFitResult, SpectrumFitSettings, fit_spectrum


@dataclass(frozen=True)
class AnalysisOptions:
    spe_window_ns: tuple[int, int] = (7000, 8000)  # a peak is an SPE candidate if its TS is in [start, stop)
    spe: SpeFitSettings = SpeFitSettings()
    spectrum: SpectrumFitSettings = SpectrumFitSettings()
    decay: DecayFitSettings = DecayFitSettings()
    decay_selection_sigma: float = 2.0  # events with |NPE - mu59| < this many sigma59 are averaged
    q_spe_adc_ns: float | None = None  # use this Qspe instead of the SPE fit's
    temperature_step_k: float | None = None  # also fit the LY in temperature bins of one run's series


@dataclass
class TemperaturePoint:
    temperature_k: float
    light_yield: Measured
    n_events: int
    source: str


@dataclass
class RunAnalysis:
    data: EventData
    options: AnalysisOptions
    spe: SpeFitResult | None = None
    spe_error: str = ""
    q_spe_used: float | None = None
    q_spe_source: str = ""
    spectrum: SpectrumFitResult | None = None
    spectrum_error: str = ""
    decay: DecayFitResult | None = None
    decay_error: str = ""
    decay_selection: str = "events within 2 sigma of the 59.54 keV peak"
    temperature_k: float | None = None
    temperature_source: str = ""
    temperature_series: list[TemperaturePoint] = field(default_factory=list)
    temperature_series_error: str = ""
    n_spe_peaks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


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
    out.seconds["spe fit"] = time.perf_counter() - t
    if options.q_spe_adc_ns is not None:
        out.q_spe_used, out.q_spe_source = options.q_spe_adc_ns, "given (--q-spe)"
    elif out.spe is not None:
        out.q_spe_used, out.q_spe_source = out.spe.q_spe.value, "SPE fit"
    t = time.perf_counter()
    npe = None
    if out.q_spe_used is None:
        out.spectrum_error = f"no Qspe: the SPE fit failed ({out.spe_error}); give one with --q-spe"
    else:
        npe = data.total_q / out.q_spe_used
        try:
            out.spectrum = fit_spectrum(npe, options.spectrum)
        except FitError as exc:
            out.spectrum_error = str(exc)
    out.seconds["spectrum fit"] = time.perf_counter() - t
    t = time.perf_counter()
    if out.spectrum is not None and npe is not None:
        g = out.spectrum.peaks[0]
        selected = np.abs(npe - g.mu_npe.value) < options.decay_selection_sigma * g.sigma_npe.value
    else:  # no 59.54 keV peak to select on: average every event with a pulse, and say so
        selected = (data.total_q > 0) & (data.peak_event.size > 0)
        out.decay_selection = "all events with a pulse (no 59.54 keV selection: the spectrum fit failed)"
    if selected.any():
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
    else:
        out.decay_error = "no event with a pulse to average"
    out.seconds["decay fit"] = time.perf_counter() - t
    if options.temperature_step_k is not None and npe is not None:
        t = time.perf_counter()
        out.temperature_series, out.temperature_series_error = _temperature_series(
            data, npe, options.temperature_step_k, options.spectrum
        )
        out.seconds["LY vs T"] = time.perf_counter() - t
    return out


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
