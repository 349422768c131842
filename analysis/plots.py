"""PNG plots of `daq analyze` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402

from analysis.characterise import RunAnalysis  # noqa: E402
from analysis.report import comparison_json  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_spe(a: RunAnalysis, path: Path) -> Path | None:
    r = a.spe
    if r is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = 0.5 * (r.edges[1:] + r.edges[:-1])
    ax.errorbar(x, r.counts, yerr=np.sqrt(r.counts), fmt=".", ms=3, color="k", label="PeakQ, late window")
    fine = np.linspace(r.edges[0], r.edges[-1], 800)
    for name, y in r.curve(fine).items():
        ax.plot(fine, y, lw=2 if name == "total" else 1, ls="-" if name == "total" else "--", label=name)
    ax.set_xlabel("PeakQ (ADC*ns)")
    ax.set_ylabel(f"peaks / {r.edges[1] - r.edges[0]:g} ADC*ns")
    ax.set_title(f"SPE fit: Qspe {r.q_spe.value:.2f} +- {r.q_spe.error:.2f}, sigma {r.sigma_spe.value:.2f} ADC*ns, "
                 f"chi2/ndf {r.chi2_ndf:.2f}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_spectrum(a: RunAnalysis, path: Path) -> Path | None:
    r = a.spectrum
    if r is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    x = 0.5 * (r.edges[1:] + r.edges[:-1])
    ax.errorbar(x, r.counts, yerr=np.sqrt(np.maximum(r.counts, 1)), fmt=".", ms=2, color="k", label="data")
    fine = np.linspace(r.edges[0], r.edges[-1], 2000)
    curves = r.curve(fine)
    for name, y in curves.items():
        if name != "total":
            ax.plot(fine, y, lw=0.9, ls="--", label=name)
    ax.plot(fine, curves["total"], lw=1.8, color="r", label="total")
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(r.counts.max(), 1) * 3)
    ax.set_xlabel("NPE")
    ax.set_ylabel(f"events / {r.edges[1] - r.edges[0]:.2f} NPE")
    ax.set_title(f"Am-241: LY {r.light_yield.value:.2f} +- {r.light_yield.error:.2f} PE/keVee, "
                 f"FWHM {r.fwhm_percent_59.value:.2f} % at 59.54 keV, chi2/ndf {r.chi2_ndf:.2f}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_ly_per_line(a: RunAnalysis, path: Path) -> Path | None:
    r = a.spectrum
    if r is None:
        return None
    pts = [p for p in r.peaks if p.energy_kev and p.counts.value >= 1.0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in pts:
        ax.errorbar(p.energy_kev, p.ly_pe_per_kevee, yerr=p.ly_error, fmt="o" if p.in_mean_ly else "s",
                    mfc="C0" if p.in_mean_ly else "none", color="C0")  # fmt: skip
        ax.annotate(
            p.name, (p.energy_kev, p.ly_pe_per_kevee), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    ly = r.light_yield
    ax.axhline(ly.value, color="r", label=f"constant fit {ly.value:.2f} +- {ly.error:.2f}")
    ax.axhspan(ly.value - ly.error, ly.value + ly.error, color="r", alpha=0.15)
    ax.set_xlabel("energy (keV)")
    ax.set_ylabel("LY (PE/keVee)")
    ax.set_title("Light yield per line (filled: in the mean; bars: Gaussian width / E)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_decay(a: RunAnalysis, path: Path) -> Path | None:
    r = a.decay
    if r is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(
        r.time_ns, np.maximum(r.average, 1e-9), lw=0.8, color="k", label=f"average of {r.n_events} events"
    )
    t = r.time_ns[r.time_ns >= r.fit_start_ns]
    comps = ", ".join(f"{x.value:.0f} ns" for x in r.tau_ns)
    ax.plot(t, r.curve(t), color="r", lw=1.5, label=f"fit: {comps}")
    ax.set_yscale("log")
    ax.set_ylim(max(r.average.max() * 1e-5, 1e-9), r.average.max() * 2)
    ax.set_xlabel("time (ns)")
    ax.set_ylabel("normalised amplitude (1/ns)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ly_vs_temperature(runs: list[RunAnalysis], path: Path) -> Path | None:
    pts = [p for p in comparison_json(runs)["ly_vs_temperature"] if p["temperature_k"] is not None]
    if len(pts) < 2:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar([p["temperature_k"] for p in pts], [p["pe_per_kevee"] for p in pts],
                yerr=[p["error"] for p in pts], fmt="o")  # fmt: skip
    ax.set_xlabel("crystal temperature (K)")
    ax.set_ylabel("LY (PE/keVee)")
    ax.set_title("Light yield versus temperature", fontsize=9)
    return _save(fig, path)


def write_plots(runs: list[RunAnalysis], directory: Path) -> list[Path]:
    """Write every plot that has data; file names carry the input's stem when there are several."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path | None] = []
    for a in runs:
        stem = "" if len(runs) == 1 else f"{a.data.source.stem}_"
        written += [
            plot_spe(a, directory / f"{stem}spe_fit.png"),
            plot_spectrum(a, directory / f"{stem}spectrum_fit.png"),
            plot_ly_per_line(a, directory / f"{stem}ly_per_line.png"),
            plot_decay(a, directory / f"{stem}decay_fit.png"),
        ]
    written.append(plot_ly_vs_temperature(runs, directory / "ly_vs_temperature.png"))
    return [p for p in written if p is not None]
