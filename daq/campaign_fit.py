"""The fit of one campaign run: analysis.characterise on the run file, with a borrowed Qspe where it has none.

A warm crystal's light is fast (6 and 28 ns at 290 K): its late window holds too few photoelectrons for the
run's own SPE calibration. The PMT is the same in every step, so such a run takes the Qspe of another step
of the campaign (the nearest in temperature that calibrated itself) and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.characterise import AnalysisOptions, RunAnalysis, analyse
from analysis.run_data import PulseOverrides, load_run_file


@dataclass(frozen=True)
class BorrowedQspe:
    """A Qspe (ADC*ns) another step measured, and which one."""

    q_spe_adc_ns: float
    source: str  # e.g. "step 77K (run 3)"


MAX_Q_SPE_REL_ERROR = (
    0.02  # a run's own Qspe less precise than this is not used: alone it would exceed the 2 % LY goal
)


def own_q_spe_problem(a: RunAnalysis) -> str:
    """Why the run's own Qspe is not usable ("" if it is): none at all, or one with an error above 2 %."""
    if not a.methods or a.q_spe_used is None:
        return "this run has no SPE calibration of its own"
    error = a.headline_method.q_spe_error_adc_ns
    if not error / a.q_spe_used <= MAX_Q_SPE_REL_ERROR:
        return f"this run's own Qspe {a.q_spe_used:.2f} ± {error:.3g} ADC*ns is too uncertain (too little late light)"
    return ""


def fit_run(path: Path, fallback: BorrowedQspe | None) -> RunAnalysis:
    """Analyse the run file at `path`; if its own Qspe is missing or too uncertain and `fallback` is given, again
    with the borrowed Qspe (the reason kept as each method's q_spe_source)."""
    data = load_run_file(path, PulseOverrides(), None)
    result = analyse(data)
    problem = own_q_spe_problem(result)
    if problem and fallback is not None:
        result = analyse(data, AnalysisOptions(q_spe_adc_ns=fallback.q_spe_adc_ns))
        for method in result.methods.values():
            method.q_spe_source = f"borrowed from {fallback.source}: {problem}"
    return result


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def fit_summary(a: RunAnalysis) -> dict[str, Any]:
    """Qspe, LY at 59.54 keV and mean, FWHM at 59.54 keV and the crystal temperature, JSON-ready."""
    spec = a.spectrum
    ly = a.headline_method.light_yield if a.methods else None
    calibrated = (
        a.calibration is not None
        and a.headline == "integral"
        and "borrowed" not in a.q_spe_source
        and not own_q_spe_problem(a)
    )
    return {
        "events": a.data.n_events,
        "crystal_k": _num(a.temperature_k),
        "temperature_source": a.temperature_source,
        "method": a.headline,
        "q_spe_adc_ns": _num(a.q_spe_used),
        "q_spe_source": a.q_spe_source,
        "q_spe_own": calibrated,
        "ly_pe_per_kevee": _num(ly.value) if ly else None,
        "ly_error": _num(ly.error) if ly else None,
        "ly59_pe_per_kevee": _num(spec.peaks[0].ly_pe_per_kevee) if spec else None,
        "fwhm59_percent": _num(spec.fwhm_percent_59.value) if spec else None,
        "fwhm59_error": _num(spec.fwhm_percent_59.error) if spec else None,
        "error": None if spec is not None else a.spectrum_error,
    }
