"""What `daq analyze` prints and writes: a table like the paper's, and the JSON report."""

from __future__ import annotations

import math
from typing import Any

from analysis.characterise import RunAnalysis, light_yield_ratio
from analysis.spe_fit import Measured


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _m(x: Measured | None) -> dict[str, float | None] | None:
    return None if x is None else {"value": _num(x.value), "error": _num(x.error)}


def run_json(a: RunAnalysis) -> dict[str, Any]:
    """One input's results; keys of the issue's contract, nulls where a stage could not be done."""
    d = a.data
    spe, spec, dec = a.spe, a.spectrum, a.decay
    out: dict[str, Any] = {
        "source": str(d.source),
        "kind": d.kind,
        "channel": d.channel,
        "n_events": d.n_events,
        "notes": list(d.notes),
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
        "spe": {
            "q_mean_adc_ns": _num(spe.q_spe.value) if spe else None,
            "q_mean_error": _num(spe.q_spe.error) if spe else None,
            "q_sigma_adc_ns": _num(spe.sigma_spe.value) if spe else None,
            "q_sigma_error": _num(spe.sigma_spe.error) if spe else None,
            "q_sigma_without_noise_term_adc_ns": _num(spe.sigma_fit_paper) if spe else None,
            "noise_sigma_adc_ns": _num(spe.sigma_noise_adc_ns) if spe else None,
            "q0_adc_ns": _m(spe.q0) if spe else None,
            "k_per_adc_ns": _m(spe.k) if spe else None,
            "q_mean_poisson_fit_adc_ns": _num(spe.q_spe_poisson) if spe else None,
            "chi2_ndf": _num(spe.chi2_ndf) if spe else None,
            "n_peaks": spe.n_entries if spe else a.n_spe_peaks,
            "error": a.spe_error or None,
        },
        "q_spe_used_adc_ns": _num(a.q_spe_used),
        "q_spe_source": a.q_spe_source,
        "light_yield": {
            "pe_per_kevee": _num(spec.light_yield.value) if spec else None,
            "error": _num(spec.light_yield.error) if spec else None,
            "points": [p.name for p in spec.peaks if p.in_mean_ly] if spec else [],
            "error_message": a.spectrum_error or None,
        },
        "resolution": {
            "fwhm_percent_at_59keV": _num(spec.fwhm_percent_59.value) if spec else None,
            "error": _num(spec.fwhm_percent_59.error) if spec else None,
        },
        "spectrum_fit": {
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
                "ly_pe_per_kevee": _num(p.ly_pe_per_kevee),
                "ly_error": _num(p.ly_error),
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
        {"source": str(r.data.source), "temperature_k": _num(r.temperature_k), "pe_per_kevee": r.spectrum.light_yield.value,
         "error": r.spectrum.light_yield.error}
        for r in runs if r.spectrum is not None
    ]  # fmt: skip
    for r in runs:
        points += [
            {"source": f"{r.data.source} ({p.n_events} events)", "temperature_k": p.temperature_k,
             "pe_per_kevee": p.light_yield.value, "error": p.light_yield.error}
            for p in r.temperature_series
        ]  # fmt: skip
    ratios = []
    ref = runs[0].spectrum if runs else None
    for r in runs[1:]:
        if ref is not None and r.spectrum is not None:
            q = light_yield_ratio(r.spectrum.light_yield, ref.light_yield)
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
    if m is None:
        return "-"
    if not math.isfinite(m.error):
        return format(m.value, spec)
    return f"{format(m.value, spec)} +- {format(m.error, spec)}"


def table_text(a: RunAnalysis) -> str:
    """The paper-like table of one input."""
    d, spe, spec, dec = a.data, a.spe, a.spectrum, a.decay
    t = f"{a.temperature_k:.1f} K ({a.temperature_source})" if a.temperature_k is not None else "unknown"
    lines = [
        f"== {d.source} ({d.kind}, channel {d.channel}) ==",
        f"events {d.n_events}, peaks {d.peak_q.size} ({d.peak_q.size / max(d.n_events, 1):.1f} per event), "
        f"baseline rms {float(d.baseline_rms.mean()) if d.n_events else float('nan'):.3f} ADC, temperature {t}",
        *[f"note: {n}" for n in d.notes],
        "",
        "SPE calibration (late window "
        f"{a.options.spe_window_ns[0]}-{a.options.spe_window_ns[1]} ns, {a.n_spe_peaks} peaks)",
    ]
    if spe is not None:
        lines += [
            f"  Qspe            {_fmt(spe.q_spe, '.3f')} ADC*ns   (Poisson-likelihood fit {spe.q_spe_poisson:.3f})",
            f"  sigma_spe       {_fmt(spe.sigma_spe, '.3f')} ADC*ns   (noise term {spe.sigma_noise_adc_ns:.2f}; "
            f"without it {spe.sigma_fit_paper:.3f})",
            f"  acceptance      q0 {_fmt(spe.q0)} ADC*ns, k {_fmt(spe.k, '.3f')} per ADC*ns",
            f"  chi2/ndf        {spe.chi2_ndf:.2f} ({spe.chi2:.1f}/{spe.ndf})",
        ]
    else:
        lines.append(f"  not available: {a.spe_error}")
    lines.append("")
    if spec is not None:
        r0, r1 = a.options.spectrum.chi2_range_npe
        lines += [
            f"Am-241 spectrum (NPE = TotalQ / {a.q_spe_used:.3f}, {a.q_spe_source}); "
            f"chi2/ndf {spec.chi2_ndf:.2f} over {spec.fit_range_npe[0]:.0f}-{spec.fit_range_npe[1]:.0f}, "
            f"{spec.chi2_ndf_restricted:.2f} over NPE {r0:g}-{r1:g}",
            f"  {'component':<18} {'E (keV)':>8} {'mu (NPE)':>16} {'sigma (NPE)':>14} {'counts':>9} "
            f"{'LY (PE/keVee)':>16} {'FWHM %':>7}",
        ]
        for p in spec.peaks:
            e = f"{p.energy_kev:.2f}" if p.energy_kev else "-"
            ly = f"{p.ly_pe_per_kevee:.2f} +- {p.ly_error:.2f}" if p.energy_kev else "-"
            mark = "*" if p.in_mean_ly else " "
            lines.append(
                f" {mark}{p.name:<18} {e:>8} {_fmt(p.mu_npe, '.1f'):>16} {p.sigma_npe.value:>14.1f} "
                f"{p.counts.value:>9.0f} {ly:>16} {p.fwhm_percent:>7.2f}"
            )
        lines += [
            f"  light yield     {_fmt(spec.light_yield, '.2f')} PE/keVee (constant through the * points; "
            "error bars are the widths)",
            f"  resolution      {_fmt(spec.fwhm_percent_59, '.2f')} % FWHM at 59.54 keV",
        ]
    else:
        lines.append(f"Am-241 spectrum: not available: {a.spectrum_error}")
    lines.append("")
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
    return "\n".join(lines)


def comparison_text(runs: list[RunAnalysis]) -> str:
    c = comparison_json(runs)
    lines = ["== comparison ==", "LY versus temperature:"]
    for p in c["ly_vs_temperature"]:
        t = f"{p['temperature_k']:.1f} K" if p["temperature_k"] is not None else "  ? K"
        lines.append(f"  {t:>9}  {p['pe_per_kevee']:.2f} +- {p['error']:.2f} PE/keVee  {p['source']}")
    for r in c["r_ly"]:
        lines.append(f"R_ly {r['run']} / {r['reference']} = {r['r_ly']:.3f} +- {r['error']:.3f}")
    return "\n".join(lines)
