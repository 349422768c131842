"""The plots of `daq analyze`, each as PNG and PDF (matplotlib, Agg backend: no display needed).

Every plot carries the run (number or source), the crystal temperature and the date; data points
have error bars only where a bin holds counts; uncertainties are written with ±.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from analysis.characterise import RunAnalysis  # noqa: E402
from analysis.report import comparison_json  # noqa: E402

COMPONENT_COLOURS = plt.get_cmap("tab10").colors  # ten components, ten distinct colours


def run_label(a: RunAnalysis) -> str:
    """'run 12 · 77.0 K · 2026-12-05': what every plot of this input is stamped with."""
    d = a.data
    who = f"run {d.run_number}" if d.run_number is not None else d.source.name
    temp = f"{a.temperature_k:.1f} K" if a.temperature_k is not None else "T unknown"
    date = d.started_at[:10] if d.started_at else "date unknown"
    return f"{who} · {temp} · {date}"


def _stamp(fig: plt.Figure, label: str) -> None:
    fig.text(0.995, 0.995, label, ha="right", va="top", fontsize=7, color="0.35")


def _save(fig: plt.Figure, path: Path, label: str) -> list[Path]:
    """Write the figure as PNG and, beside it, PDF; return both paths."""
    _stamp(fig, label)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    pdf = path.with_suffix(".pdf")
    fig.savefig(pdf)
    plt.close(fig)
    return [path, pdf]


def _points(ax: plt.Axes, x: NDArray[np.float64], counts: NDArray[np.float64], **kw: object) -> None:
    """Counts with sqrt(n) error bars on the filled bins only (an empty bin has no error bar to show)."""
    filled = counts > 0
    ax.errorbar(
        x[filled], counts[filled], yerr=np.sqrt(counts[filled]), fmt=".", ms=3, color="k", lw=0.8, **kw
    )


def plot_spe(a: RunAnalysis, path: Path) -> list[Path]:
    """The paper's SPE fit of the late-window PeakQ histogram."""
    r = a.spe
    if r is None:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = 0.5 * (r.edges[1:] + r.edges[:-1])
    _points(ax, x, r.counts, label="PeakQ, late window")
    fine = np.linspace(r.edges[0], r.edges[-1], 800)
    for i, (name, y) in enumerate(r.curve(fine).items()):
        total = name == "total"
        ax.plot(fine, y, lw=2 if total else 1, ls="-" if total else "--",
                color="r" if total else COMPONENT_COLOURS[i], label=name)  # fmt: skip
    ax.set_xlabel("PeakQ (ADC·ns)")
    ax.set_ylabel(f"peaks / {r.edges[1] - r.edges[0]:g} ADC·ns")
    ax.set_title(f"Paper's SPE fit: Qspe {r.q_spe.value:.2f} ± {r.q_spe.error:.2f}, σ {r.sigma_spe.value:.2f} ADC·ns, "
                 f"q0 {r.q0.value:.1f}, χ²/ndf {r.chi2_ndf:.2f}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return _save(fig, path, run_label(a))


def plot_calibration(a: RunAnalysis, path: Path) -> list[Path]:
    """The threshold-free window calibration: late-window charges, pedestal and n-PE terms, residuals."""
    c = a.calibration
    if c is None:
        return []
    fig, (ax, res) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    x = 0.5 * (c.edges[1:] + c.edges[:-1])
    _points(ax, x, c.counts, label=f"{c.window_ns} ns windows, {c.region_ns[0]}-{c.region_ns[1]} ns")
    for i, (name, y) in enumerate(c.components.items()):
        total = name == "total"
        ax.plot(x, y, lw=1.8 if total else 1, ls="-" if total else "--",
                color="r" if total else COMPONENT_COLOURS[i], label=name)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(c.counts.max(), 1) * 3)
    ax.set_ylabel(f"windows / {c.edges[1] - c.edges[0]:.2f} ADC·ns")
    ax.set_title(f"Window calibration: Qspe {c.q_spe.value:.2f} ± {c.q_spe.error:.2f} (stat) ± "
                 f"{c.q_spe_template_syst:.2f} (shape), σ {c.sigma_spe.value:.2f} ADC·ns, χ²/ndf {c.chi2_ndf:.2f}",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    total = c.components["total"]
    filled = c.counts > 0
    res.plot(x[filled], ((c.counts - total) / np.sqrt(np.maximum(total, 1.0)))[filled], ".", ms=3, color="k")
    res.axhline(0.0, color="r", lw=0.8)
    res.set_ylabel("(data − fit) / σ")
    res.set_xlabel("window charge (ADC·ns)")
    return _save(fig, path, run_label(a))


def plot_spectrum(a: RunAnalysis, path: Path) -> list[Path]:
    """The headline NPE spectrum with the ten components, a keV axis at the fitted light yield."""
    r = a.spectrum
    if r is None:
        return []
    fig, ax = plt.subplots(figsize=(8, 5))
    x = 0.5 * (r.edges[1:] + r.edges[:-1])
    _points(ax, x, r.counts, label="data")
    fine = np.linspace(r.edges[0], r.edges[-1], 2000)
    curves = r.curve(fine)
    for i, c in enumerate(r.components):
        tied = " (tied)" if r.peaks[i].tied else ""
        ax.plot(fine, curves[c.name], lw=0.9, ls="--", color=COMPONENT_COLOURS[i], label=c.name + tied)
    ax.plot(fine, curves["total"], lw=1.8, color="r", label="total")
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(r.counts.max(), 1) * 3)
    ax.set_xlabel(f"NPE ({a.headline_method.charge.split(' (')[0]} / Qspe {a.q_spe_used:.2f} ADC·ns)")
    ax.set_ylabel(f"events / {r.edges[1] - r.edges[0]:.2f} NPE")
    ly = r.peaks[0].mu_npe.value / 59.54  # the keV axis: the 59.54 keV line's NPE per keV
    top = ax.secondary_xaxis("top", functions=(lambda n: n / ly, lambda e: e * ly))
    top.set_xlabel("energy (keVee, at the 59.54 keV line's NPE per keV)", fontsize=8)
    ly_total = a.headline_method.light_yield
    ax.set_title(f"Am-241, {a.headline} method: LY {ly_total.value:.2f} ± {ly_total.error:.2f} PE/keVee, "
                 f"FWHM {r.fwhm_percent_59.value:.2f} % at 59.54 keV, χ²/ndf {r.chi2_ndf:.2f}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path, run_label(a))


def plot_ly_per_line(a: RunAnalysis, path: Path) -> list[Path]:
    """LY of each line with the error of its fitted mean; filled points enter the constant."""
    r = a.spectrum
    if r is None:
        return []
    pts = [p for p in r.peaks if p.energy_kev and p.counts.value >= 1.0 and not p.tied]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in pts:
        used = p.in_mean_ly and p.counts.value >= a.options.spectrum.min_line_events
        ax.errorbar(p.energy_kev, p.ly_pe_per_kevee, yerr=np.nan_to_num(p.ly_error), fmt="o" if used else "s",
                    mfc="C0" if used else "none", color="C0", capsize=3)  # fmt: skip
        ax.annotate(
            p.name, (p.energy_kev, p.ly_pe_per_kevee), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    ly = r.light_yield
    ax.axhline(ly.value, color="r", label=f"constant {ly.value:.2f} ± {ly.error:.2f} PE/keVee (lines; Qspe "
               f"± {ly.value * a.headline_method.q_spe_error_adc_ns / a.q_spe_used:.2f} more)")  # fmt: skip
    ax.axhspan(ly.value - ly.error, ly.value + ly.error, color="r", alpha=0.15)
    ax.set_xlabel("energy (keV)")
    ax.set_ylabel("LY (PE/keVee)")
    ax.set_title("Light yield per line (filled: in the mean; bars: error of the fitted mean)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path, run_label(a))


def plot_decay(a: RunAnalysis, path: Path) -> list[Path]:
    """The averaged waveform with the exponential fit, χ²/ndf, and the residuals below."""
    r = a.decay
    if r is None:
        return []
    fig, (ax, res) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    ax.plot(
        r.time_ns, np.maximum(r.average, 1e-9), lw=0.8, color="k", label=f"average of {r.n_events} events"
    )
    t = r.time_ns[r.time_ns >= r.fit_start_ns]
    comps = ", ".join(f"{x.value:.0f} ± {x.error:.0f} ns" for x in r.tau_ns)
    ax.plot(t, r.curve(t), color="r", lw=1.5, label=f"fit: τ = {comps}")
    ax.set_yscale("log")
    ax.set_ylim(max(r.average.max() * 1e-5, 1e-9), r.average.max() * 2)
    ax.set_ylabel("normalised amplitude (1/ns)")
    ax.set_title(f"Scintillation decay: χ²/ndf {r.chi2_ndf:.2f}", fontsize=9)
    ax.legend(fontsize=8)
    fitted = r.time_ns >= r.fit_start_ns
    resid = (r.average[fitted] - r.curve(r.time_ns[fitted])) / r.noise  # per-sample errors of the average
    res.plot(r.time_ns[fitted], resid, lw=0.5, color="k")
    res.axhline(0.0, color="r", lw=0.8)
    res.set_ylabel("(data − fit) / σ")
    res.set_xlabel("time (ns)")
    return _save(fig, path, run_label(a))


def plot_ly_vs_temperature(runs: list[RunAnalysis], path: Path) -> list[Path]:
    pts = [p for p in comparison_json(runs)["ly_vs_temperature"] if p["temperature_k"] is not None]
    if len(pts) < 2:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar([p["temperature_k"] for p in pts], [p["pe_per_kevee"] for p in pts],
                yerr=[p["error"] for p in pts], fmt="o", capsize=3)  # fmt: skip
    ax.set_xlabel("crystal temperature (K)")
    ax.set_ylabel("LY (PE/keVee)")
    ax.set_title("Light yield versus temperature", fontsize=9)
    labels = sorted({run_label(a).split(" · ")[0] for a in runs})
    dates = sorted({a.data.started_at[:10] for a in runs if a.data.started_at})
    return _save(fig, path, f"{', '.join(labels)} · {dates[0] if dates else ''}-{dates[-1] if dates else ''}")


def write_plots(runs: list[RunAnalysis], directory: Path) -> list[Path]:
    """Write every plot that has data (PNG and PDF); file names carry the input's stem when there are several."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for a in runs:
        stem = "" if len(runs) == 1 else f"{a.data.source.stem}_"
        written += plot_calibration(a, directory / f"{stem}spe_calibration.png")
        written += plot_spe(a, directory / f"{stem}spe_fit.png")
        written += plot_spectrum(a, directory / f"{stem}spectrum_fit.png")
        written += plot_ly_per_line(a, directory / f"{stem}ly_per_line.png")
        written += plot_decay(a, directory / f"{stem}decay_fit.png")
    written += plot_ly_vs_temperature(runs, directory / "ly_vs_temperature.png")
    return written
