"""What `daq analyze` prints and writes: a table like the paper's, and the JSON report."""

from __future__ import annotations

import math
from typing import Any

from analysis.characterise import MethodResult, RunAnalysis, light_yield_ratio
from analysis.spe_fit import Measured
from analysis.spectrum_fit import SpectrumFitResult


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _m(x: Measured | None) -> dict[str, float | None] | None:
    return None if x is None else {"value": _num(x.value), "error": _num(x.error)}


def _spectrum_json(spec: SpectrumFitResult | None, ly: Measured | None, error: str) -> dict[str, Any]:
    return {
        "light_yield_pe_per_kevee": _num(ly.value) if ly else None,
        "light_yield_error": _num(ly.error) if ly else None,
        "light_yield_note": spec.light_yield_note if spec else None,
        "fwhm_percent_at_59keV": _num(spec.fwhm_percent_59.value) if spec else None,
        "fwhm_error": _num(spec.fwhm_percent_59.error) if spec else None,
        "mu59_npe": _num(spec.peaks[0].mu_npe.value) if spec else None,
        "chi2_ndf": _num(spec.chi2_ndf) if spec else None,
        "error": error or None,
    }


def _method_json(m: MethodResult) -> dict[str, Any]:
    return {
        "charge": m.charge,
        "q_spe_adc_ns": _num(m.q_spe_adc_ns),
        "q_spe_source": m.q_spe_source,
        "q_spe_error_adc_ns": _num(m.q_spe_error_adc_ns),
        **_spectrum_json(m.spectrum, m.light_yield, m.error),
    }


def _calibration_json(a: RunAnalysis) -> dict[str, Any]:
    c = a.calibration
    if c is None:
        return {"error": a.calibration_error or "not run"}
    return {
        "method": "fixed-window charges of the late region, pedestal (x) n-PE Poisson-likelihood fit (Bellamy)",
        "q_mean_adc_ns": _num(c.q_spe.value),
        "q_mean_error_stat": _num(c.q_spe.error),
        "q_mean_error_template": _num(c.q_spe_template_syst),
        "q_sigma_adc_ns": _num(c.sigma_spe.value),
        "q_sigma_error": _num(c.sigma_spe.error),
        "region_ns": list(c.region_ns),
        "window_ns": c.window_ns,
        "occupancy_pe_per_window": _num(c.occupancy),
        "low_charge_fraction": _m(c.low_charge_fraction),
        "n_windows": c.n_windows,
        "n_events": c.n_events,
        "n_events_vetoed": c.n_vetoed,
        "pedestal_sigma_adc_ns": _num(c.pedestal_sigma_adc_ns),
        "template": c.template_source,
        "template_fwhm_ns": _num(c.template_fwhm_ns),
        "chi2_ndf": _num(c.chi2_ndf),
        "error": None,
    }


def _paper_fit_json(a: RunAnalysis) -> dict[str, Any]:
    spe = a.spe
    if spe is None:
        return {"error": a.spe_error or "not run", "n_peaks": a.n_spe_peaks}
    return {
        "q_mean_adc_ns": _num(spe.q_spe.value),
        "q_mean_error": _num(spe.q_spe.error),
        "q_sigma_adc_ns": _num(spe.sigma_spe.value),
        "q_sigma_error": _num(spe.sigma_spe.error),
        "q_sigma_without_noise_term_adc_ns": _num(spe.sigma_fit_paper),
        "noise_sigma_adc_ns": _num(spe.sigma_noise_adc_ns),
        "q0_adc_ns": _m(spe.q0),
        "k_per_adc_ns": _m(spe.k),
        "q_mean_poisson_fit_adc_ns": _num(spe.q_spe_poisson),
        "chi2_ndf": _num(spe.chi2_ndf),
        "n_peaks": spe.n_entries,
        "error": None,
    }


def _headline_spe_json(a: RunAnalysis) -> dict[str, Any]:
    """Qspe and sigma_spe of the best calibration there is: the window calibration, else the paper's fit."""
    if a.calibration is not None:
        c, source = a.calibration, "window calibration"
        q, q_err, sigma = c.q_spe.value, c.q_spe_error_total, c.sigma_spe
    elif a.spe is not None:
        c, source = a.spe, "the paper's SPE fit"
        q, q_err, sigma = c.q_spe.value, c.q_spe.error, c.sigma_spe
    else:
        return {"q_mean_adc_ns": None, "q_mean_error": None, "q_sigma_adc_ns": None, "q_sigma_error": None,
                "source": None, "error": a.calibration_error or a.spe_error or "no SPE calibration"}  # fmt: skip
    return {"q_mean_adc_ns": _num(q), "q_mean_error": _num(q_err), "q_sigma_adc_ns": _num(sigma.value),
            "q_sigma_error": _num(sigma.error), "source": source, "error": None}  # fmt: skip


def run_json(a: RunAnalysis) -> dict[str, Any]:
    """One input's results: the headline method's at the top level, both methods and both SPE calibrations
    under their own keys; nulls where a stage could not be done."""
    d = a.data
    spec, dec = a.spectrum, a.decay
    without_noise = a.fwhm_without_noise_percent()
    noise_npe = a.integral_noise_adc_ns / a.q_spe_used if a.q_spe_used else None
    out: dict[str, Any] = {
        "source": str(d.source),
        "kind": d.kind,
        "channel": d.channel,
        "n_events": d.n_events,
        "notes": list(d.notes),
        "headline": {"method": a.headline, "why": a.headline_reason},
        "warnings": list(a.warnings),
        "pulse_settings": {
            "baseline_samples": [d.pulse.baseline_start, d.pulse.baseline_stop],
            "signal_samples": [d.pulse.signal_start, d.pulse.signal_stop],
            "threshold_sigma": d.pulse.n_sigma,
            "peak_boundaries": "counted" if d.pulse.count_boundaries else "excluded",
            "polarity": "negative" if d.pulse.polarity < 0 else "positive",
            "reanalysed_from_waveforms": d.reanalysed,
        },
        "pulses": {
            "peaks": int(d.peak_q.size),
            "peaks_per_event": d.peak_q.size / d.n_events if d.n_events else 0.0,
            "baseline_rms_adc": _num(float(d.baseline_rms.mean())) if d.n_events else None,
            "spe_window_ns": list(a.options.spe_window_ns),
            "spe_window_peaks": a.n_spe_peaks,
        },
        "temperature_k": _num(a.temperature_k),
        "temperature_source": a.temperature_source,
        "spe": _headline_spe_json(a),
        "spe_calibration": _calibration_json(a),
        "spe_paper_fit": _paper_fit_json(a),
        "q_spe_used_adc_ns": _num(a.q_spe_used),
        "q_spe_source": a.q_spe_source,
        "light_yield": {
            "pe_per_kevee": _num(spec.light_yield.value) if spec else None,
            "error": _num(a.headline_method.light_yield.error) if spec else None,
            "error_lines": _num(spec.light_yield.error) if spec else None,
            "error_q_spe": _num(spec.light_yield.value * a.headline_method.q_spe_error_adc_ns / a.q_spe_used)
            if spec
            else None,
            "method": a.headline,
            "points": [p.name for p in spec.peaks if p.in_mean_ly and not p.tied] if spec else [],
            "note": spec.light_yield_note if spec else None,
            "paper_weights": _m(spec.light_yield_paper) if spec else None,
            "error_message": a.spectrum_error or None,
        },
        "resolution": {
            "fwhm_percent_at_59keV": _num(spec.fwhm_percent_59.value) if spec else None,
            "error": _num(spec.fwhm_percent_59.error) if spec else None,
            "fwhm_percent_without_electronics_noise": _num(without_noise),
            "electronics_noise_npe": _num(noise_npe) if a.headline == "integral" else None,
            "integral_noise_adc_ns": _num(a.integral_noise_adc_ns),
        },
        "methods": {name: _method_json(m) for name, m in a.methods.items()},
        "spectrum_fit": {
            "likelihood": "binned Poisson (deviance), empty bins included",
            "chi2_ndf": _num(spec.chi2_ndf) if spec else None,
            "chi2_ndf_npe_range": _num(spec.chi2_ndf_restricted) if spec else None,
            "npe_range": list(a.options.spectrum.chi2_range_npe),
            "fit_range_npe": list(spec.fit_range_npe) if spec else None,
            "line_labels": a.options.spectrum.labels,
        },
        "peaks": [
            {
                "name": p.name,
                "energy_kev": p.energy_kev,
                "mu_npe": _num(p.mu_npe.value),
                "mu_error": _num(p.mu_npe.error),
                "sigma_npe": _num(p.sigma_npe.value),
                "sigma_error": _num(p.sigma_npe.error),
                "counts": _num(p.counts.value),
                "tied_to_59keV": p.tied,
                "ly_pe_per_kevee": _num(p.ly_pe_per_kevee),
                "ly_error": _num(p.ly_error),
                "ly_width": _num(p.ly_width),
                "fwhm_percent": _num(p.fwhm_percent),
            }
            for p in (spec.peaks if spec else [])
        ],
        "decay": {
            "tau_ns": [_num(x.value) for x in dec.tau_ns] if dec else [],
            "tau_error_ns": [_num(x.error) for x in dec.tau_ns] if dec else [],
            "fraction": [_num(x.value) for x in dec.fraction] if dec else [],
            "n_events": dec.n_events if dec else 0,
            "fit_start_ns": _num(dec.fit_start_ns) if dec else None,
            "chi2_ndf": _num(dec.chi2_ndf) if dec else None,
            "with_rise": dec.rise if dec else a.options.decay.rise,
            "selection": a.decay_selection,
            "error": a.decay_error or None,
        },
        "temperature_series": [
            {
                "temperature_k": p.temperature_k,
                "pe_per_kevee": p.light_yield.value,
                "error": p.light_yield.error,
                "n_events": p.n_events,
            }
            for p in a.temperature_series
        ],  # fmt: skip
        "seconds": {k: round(v, 3) for k, v in a.seconds.items()},
    }
    return out


def comparison_json(runs: list[RunAnalysis]) -> dict[str, Any]:
    """LY versus temperature over the runs, and each run's R_ly relative to the first."""
    points = [
        {"source": str(r.data.source), "temperature_k": _num(r.temperature_k),
         "pe_per_kevee": r.headline_method.light_yield.value, "error": r.headline_method.light_yield.error}
        for r in runs if r.spectrum is not None
    ]  # fmt: skip
    for r in runs:
        points += [
            {"source": f"{r.data.source} ({p.n_events} events)", "temperature_k": p.temperature_k,
             "pe_per_kevee": p.light_yield.value, "error": p.light_yield.error}
            for p in r.temperature_series
        ]  # fmt: skip
    ratios = []
    ref = runs[0].headline_method.light_yield if runs else None
    for r in runs[1:]:
        if ref is not None and r.spectrum is not None:  # each run its own Qspe: independent errors
            q = light_yield_ratio(r.headline_method.light_yield, ref)
            ratios.append({"run": str(r.data.source), "reference": str(runs[0].data.source),
                           "r_ly": q.value, "error": q.error})  # fmt: skip
    return {"ly_vs_temperature": sorted(points, key=lambda p: p["temperature_k"] or 0.0), "r_ly": ratios}


def _finite(obj: Any) -> Any:
    """JSON has no NaN: non-finite numbers become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, str):  # numpy scalars
        return _finite(obj.item())
    return obj


def report_json(runs: list[RunAnalysis]) -> dict[str, Any]:
    """The JSON report: the first input's results at top level (the issue's keys), all inputs under runs."""
    if not runs:
        return {}
    top = run_json(runs[0])
    top["runs"] = [run_json(r) for r in runs] if len(runs) > 1 else []
    top["comparison"] = comparison_json(runs) if len(runs) > 1 or runs[0].temperature_series else {}
    return _finite(top)


def _fmt(m: Measured | None, spec: str = ".2f") -> str:
    if m is None or not math.isfinite(m.value):
        return "-"
    if not math.isfinite(m.error):
        return format(m.value, spec)
    return f"{format(m.value, spec)} ± {format(m.error, spec)}"


def _spe_lines(a: RunAnalysis) -> list[str]:
    c, spe = a.calibration, a.spe
    lines = ["SPE calibration"]
    if c is not None:
        lf = c.low_charge_fraction
        low = (
            f"{_fmt(Measured(100 * lf.value, 100 * lf.error), '.1f')} %" if lf.value >= 1e-3 else "none found"
        )
        lines += [
            f"  window fit      Qspe {c.q_spe.value:.3f} ± {c.q_spe.error:.3f} (stat) ± {c.q_spe_template_syst:.3f} "
            f"(shape) ADC*ns, sigma_spe {_fmt(c.sigma_spe, '.3f')} ADC*ns, low-charge PEs {low}",
            f"                  {c.n_windows} windows of {c.window_ns} ns in {c.region_ns[0]}-{c.region_ns[1]} ns of "
            f"{c.n_events} events ({c.n_vetoed} with a second pulse left out), {c.occupancy:.3f} PE per window, "
            f"pedestal {c.pedestal_sigma_adc_ns:.2f} ADC*ns, chi2/ndf {c.chi2_ndf:.2f}",
            f"                  SPE shape: {c.template_source} (FWHM {c.template_fwhm_ns:.1f} ns)",
        ]
    else:
        lines.append(f"  window fit      not available: {a.calibration_error}")
    w0, w1 = a.options.spe_window_ns
    if spe is not None:
        lines += [
            f"  paper's fit     Qspe {_fmt(spe.q_spe, '.3f')} ADC*ns, sigma_spe {_fmt(spe.sigma_spe, '.3f')} "
            f"({a.n_spe_peaks} peaks in {w0}-{w1} ns; Poisson-likelihood cross-check {spe.q_spe_poisson:.3f})",
            f"                  acceptance q0 {_fmt(spe.q0)} ADC*ns, k {_fmt(spe.k, '.3f')} per ADC*ns, "
            f"chi2/ndf {spe.chi2_ndf:.2f}",
        ]
    else:
        lines.append(f"  paper's fit     not available: {a.spe_error}")
    if c is not None and spe is not None:
        diff = spe.q_spe.value - c.q_spe.value
        lines.append(
            f"  difference      paper - window = {diff:+.3f} ADC*ns ({100 * diff / c.q_spe.value:+.1f} %)"
        )
    return lines


def _spectrum_lines(a: RunAnalysis) -> list[str]:
    spec, m = a.spectrum, a.headline_method
    if spec is None:
        return [f"Am-241 spectrum: not available: {a.spectrum_error}"]
    r0, r1 = a.options.spectrum.chi2_range_npe
    lines = [
        f"Am-241 spectrum, {m.name} method: NPE = {m.charge} / {m.q_spe_adc_ns:.3f} ({m.q_spe_source})",
        f"  binned Poisson likelihood, chi2/ndf {spec.chi2_ndf:.2f} over NPE {spec.fit_range_npe[0]:.0f}-"
        f"{spec.fit_range_npe[1]:.0f}, {spec.chi2_ndf_restricted:.2f} over {r0:g}-{r1:g}",
        f"  {'component':<18} {'E (keV)':>8} {'mu (NPE)':>17} {'sigma (NPE)':>12} {'counts':>9} "
        f"{'LY (PE/keVee)':>17} {'FWHM %':>7}",
    ]
    for p in spec.peaks:
        e = f"{p.energy_kev:.2f}" if p.energy_kev else "-"
        if p.tied:
            mu, ly = f"{p.mu_npe.value:.1f} (tied)", "-"
        else:
            mu = _fmt(p.mu_npe, ".1f") if p.energy_kev else f"{p.mu_npe.value:.1f} (broad)"
            ly = _fmt(Measured(p.ly_pe_per_kevee, p.ly_error or math.nan), ".3f") if p.energy_kev else "-"
        used = p.in_mean_ly and not p.tied and p.counts.value >= a.options.spectrum.min_line_events
        lines.append(
            f" {'*' if used else ' '}{p.name:<18} {e:>8} {mu:>17} {p.sigma_npe.value:>12.1f} "
            f"{p.counts.value:>9.0f} {ly:>17} {f'{p.fwhm_percent:.2f}' if p.energy_kev else '-':>7}"
        )
    lines += [
        f"  light yield     {_fmt(a.headline_method.light_yield, '.3f')} PE/keVee (the lines "
        f"± {spec.light_yield.error:.3f}, Qspe ± {spec.light_yield.value * m.q_spe_error_adc_ns / m.q_spe_adc_ns:.3f}): "
        "error-weighted constant through the * points "
        f"({spec.light_yield_note}); with the paper's width error bars {_fmt(spec.light_yield_paper, '.2f')}",
        f"  resolution      {_fmt(spec.fwhm_percent_59, '.2f')} % FWHM at 59.54 keV",
    ]
    without = a.fwhm_without_noise_percent()
    if without is not None:
        lines[-1] += (
            f"; {without:.2f} % without the electronics noise of IntegralQ "
            f"({a.integral_noise_adc_ns / a.q_spe_used:.1f} PE rms, from the baseline noise)"
        )
    return lines


def _methods_lines(a: RunAnalysis) -> list[str]:
    lines = [f"Methods (headline: {a.headline}: {a.headline_reason})"]
    for m in a.methods.values():
        if m.spectrum is None:
            lines.append(f"  {m.name:<9} {m.error}")
            continue
        sp = m.spectrum
        lines.append(
            f"  {m.name:<9} Qspe {m.q_spe_adc_ns:.3f} ({m.q_spe_source}), LY {_fmt(m.light_yield, '.3f')} PE/keVee, "
            f"FWHM {sp.fwhm_percent_59.value:.2f} %, 59.54 keV at NPE {sp.peaks[0].mu_npe.value:.1f}"
        )
    return lines


def table_text(a: RunAnalysis) -> str:
    """The paper-like table of one input, both methods, and the warnings."""
    d, dec = a.data, a.decay
    t = f"{a.temperature_k:.1f} K ({a.temperature_source})" if a.temperature_k is not None else "unknown"
    lines = [
        f"== {d.source} ({d.kind}, channel {d.channel}) ==",
        f"events {d.n_events}, peaks {d.peak_q.size} ({d.peak_q.size / max(d.n_events, 1):.1f} per event), "
        f"baseline rms {float(d.baseline_rms.mean()) if d.n_events else float('nan'):.3f} ADC, temperature {t}",
        *[f"note: {n}" for n in d.notes],
        "",
        *_spe_lines(a),
        "",
        *_spectrum_lines(a),
        "",
        *_methods_lines(a),
        "",
    ]
    if dec is not None:
        comps = ", ".join(
            f"{t.value:.1f} ns ({f.value * 100:.1f} %)" for t, f in zip(dec.tau_ns, dec.fraction, strict=True)
        )
        lines.append(
            f"decay ({dec.n_events} events: {a.decay_selection}; fit from {dec.fit_start_ns:.0f} ns): {comps}; "
            f"chi2/ndf {dec.chi2_ndf:.1f}"
        )
    else:
        lines.append(f"decay: not available: {a.decay_error}")
    for p in a.temperature_series:
        lines.append(
            f"  LY at {p.temperature_k:6.1f} K: {_fmt(p.light_yield)} PE/keVee ({p.n_events} events)"
        )
    if a.temperature_series_error:
        lines.append(f"  LY vs T: {a.temperature_series_error}")
    lines += [f"WARNING: {w}" for w in a.warnings]
    return "\n".join(lines)


def comparison_text(runs: list[RunAnalysis]) -> str:
    c = comparison_json(runs)
    lines = ["== comparison ==", "LY versus temperature:"]
    for p in c["ly_vs_temperature"]:
        t = f"{p['temperature_k']:.1f} K" if p["temperature_k"] is not None else "  ? K"
        lines.append(f"  {t:>9}  {p['pe_per_kevee']:.2f} ± {p['error']:.2f} PE/keVee  {p['source']}")
    for r in c["r_ly"]:
        lines.append(f"R_ly {r['run']} / {r['reference']} = {r['r_ly']:.3f} ± {r['error']:.3f}")
    return "\n".join(lines)
