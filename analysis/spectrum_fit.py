"""The Am-241 NPE spectrum (PHYSICS.md 1.4-1.5): the paper's ten-Gaussian fit, light yield and resolution.

NPE = charge / Qspe per event. One global fit of ten Gaussians (mean, width and area each) over a
range set from the data; starting values come from the spectrum itself: the 59.54 keV peak is found
as the highest-NPE prominent peak, its position gives a first light yield, and every other component
starts at that light yield times its energy. The model is one vectorised NumPy expression
(components x bins), so a fit takes a fraction of a second.

The fit is a binned Poisson likelihood over every bin of the range, empty ones included (the
deviance, minimised by least squares on its signed square roots; errors from its curvature, not
scaled by the fit quality). A line that the data cannot constrain (fewer than `min_line_events` in
it, e.g. the 0.1 % L-shell escape) keeps a free area but has its mean and width tied to the
59.54 keV line (its energy times that line's NPE per keV, the width scaled as sqrt(E)), and is
reported as tied. The mean light yield is the error-weighted constant through the line points,
with the errors of the fitted means; lines with fewer than `min_line_events` are left out with a
note, and the error is scaled by sqrt(chi2/ndf) of the constant when the lines disagree (PDG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import lmfit
import numpy as np
from numpy.typing import NDArray
from scipy.signal import find_peaks

from analysis.spe_fit import FitError, Measured

SQRT_2PI = float(np.sqrt(2.0 * np.pi))
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Component:
    """One Gaussian of the fit: start at `energy_kev`, mean kept inside [lo_kev, hi_kev]."""

    name: str
    energy_kev: float | None  # None: a broad component that is not a line (no LY point)
    lo_kev: float
    hi_kev: float
    sigma_start_kev: float | None = None  # None: from the resolution of the 59.54 keV peak
    in_mean_ly: bool = False  # one of the line points of the zero-order polynomial (PHYSICS.md 1.5)


# LNHB energies of the Np L groups (PHYSICS.md 1.4); "paper" labels: 13.95, 17.8, 20.8 keV
LNHB_LINES = {"Np La": 13.85, "Np Lb": 16.96, "Np Lg": 21.16}
PAPER_LINES = {"Np La": 13.95, "Np Lb": 17.8, "Np Lg": 20.8}


def am241_components(labels: str = "lnhb") -> tuple[Component, ...]:
    """The paper's ten components with the X-ray energies of `labels` ("lnhb" or "paper")."""
    x = LNHB_LINES if labels == "lnhb" else PAPER_LINES
    if labels not in ("lnhb", "paper"):
        raise ValueError(f"line labels must be 'lnhb' or 'paper', not {labels!r}")
    return (
        Component("59.54 keV gamma", 59.54, 56.5, 62.5, in_mean_ly=True),
        Component("26.34 keV gamma", 26.34, 24.5, 27.5, in_mean_ly=True),
        Component("K-shell escape", 29.2, 27.5, 31.5),
        Component("L-shell escape", 55.2, 50.0, 57.0),
        Component("Np La X-ray", x["Np La"], 12.5, 15.0, in_mean_ly=True),
        Component("Np Lb X-ray", x["Np Lb"], 15.5, 19.0, in_mean_ly=True),
        Component("Np Lg X-ray", x["Np Lg"], 19.5, 23.0, in_mean_ly=True),
        Component("77 keV sum", 75.8, 70.0, 82.0),
        Component("Bkg", None, 5.0, 150.0, sigma_start_kev=40.0),
        Component("Other X-ray/e", None, 5.0, 25.0, sigma_start_kev=6.0),
    )


@dataclass(frozen=True)
class SpectrumFitSettings:
    labels: str = "lnhb"  # energies of the Np L groups: "lnhb" (centroids) or "paper" (the paper's labels)
    range_kev: tuple[float, float] = (9.0, 95.0)  # fit range, in keV at the first light-yield estimate
    chi2_range_npe: tuple[float, float] = (600.0, 3000.0)  # the paper's restricted chi2 range
    bins_per_sigma59: float = 10.0
    min_events: int = 2000
    min_line_events: int = 200  # a line with fewer is tied to the 59.54 keV line and not in the mean LY


@dataclass
class Peak:
    name: str
    energy_kev: float | None
    mu_npe: Measured
    sigma_npe: Measured
    counts: Measured  # fitted events in the component
    in_mean_ly: bool
    tied: bool = False  # mean and width tied to the 59.54 keV line: the data could not constrain them

    @property
    def ly_pe_per_kevee(self) -> float | None:
        return self.mu_npe.value / self.energy_kev if self.energy_kev else None

    @property
    def ly_error(self) -> float | None:
        """The error of this line's LY: the fitted mean's error over the energy (nan when tied)."""
        return self.mu_npe.error / self.energy_kev if self.energy_kev else None

    @property
    def ly_width(self) -> float | None:
        """The paper's error bar: the Gaussian width over the energy (not an error of the mean)."""
        return self.sigma_npe.value / self.energy_kev if self.energy_kev else None

    @property
    def fwhm_percent(self) -> float:
        return 100.0 * FWHM_PER_SIGMA * self.sigma_npe.value / self.mu_npe.value


@dataclass
class SpectrumFitResult:
    peaks: list[Peak]
    light_yield: Measured  # error-weighted constant through the line points, PE/keVee
    light_yield_note: str  # the points used, left out and why, the constant's chi2/ndf
    light_yield_paper: Measured  # the paper's constant, error bars sigma_i / E_i (for comparison)
    fwhm_percent_59: Measured
    chi2: float
    ndf: int
    chi2_restricted: float
    ndf_restricted: int
    n_events: int
    edges: NDArray[np.float64]
    counts: NDArray[np.float64]
    fit_range_npe: tuple[float, float]
    params: dict[str, float] = field(default_factory=dict)
    components: tuple[Component, ...] = ()

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")

    @property
    def chi2_ndf_restricted(self) -> float:
        return self.chi2_restricted / self.ndf_restricted if self.ndf_restricted > 0 else float("nan")

    def peak(self, name: str) -> Peak:
        return next(p for p in self.peaks if p.name == name)

    def curve(self, x: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        """Each component and the total at x, in counts per bin of this fit."""
        bin_width = float(self.edges[1] - self.edges[0])
        amp, mu, sig = _arrays(self.params, len(self.components))
        g = _gaussians(x, amp, mu, sig, bin_width)
        out = {c.name: g[i] for i, c in enumerate(self.components)}
        out["total"] = g.sum(axis=0)
        return out


def _gaussians(
    x: NDArray[np.float64], area: NDArray[np.float64], mu: NDArray[np.float64], sigma: NDArray[np.float64],
    bin_width: float,
) -> NDArray[np.float64]:  # fmt: skip
    z = (x[None, :] - mu[:, None]) / sigma[:, None]
    return (area * bin_width / (SQRT_2PI * sigma))[:, None] * np.exp(-0.5 * z * z)


def _arrays(p: dict[str, float], n: int) -> tuple[NDArray[np.float64], ...]:
    return tuple(np.array([p[f"c{i}_{k}"] for i in range(n)]) for k in ("area", "mu", "sigma"))


def locate_59kev_peak(npe: NDArray[np.floating]) -> tuple[float, float]:
    """(mean, sigma) in NPE of the 59.54 keV peak: the highest-NPE peak at least a quarter as tall as the tallest.

    Raises FitError when the spectrum shows no such peak (not an Am-241 spectrum, or too few events).
    """
    finite = npe[np.isfinite(npe) & (npe > 0)]
    if finite.size < 100:
        raise FitError(f"spectrum fit: {finite.size} events with a positive charge; at least 100 are needed")
    top = float(np.percentile(finite, 99.0)) * 1.3
    counts, edges = np.histogram(finite, bins=300, range=(0.0, top))
    smooth = np.convolve(counts, np.ones(5) / 5.0, mode="same")
    peaks, _ = find_peaks(smooth, prominence=0.1 * smooth.max(), width=1)
    tall = peaks[smooth[peaks] >= 0.25 * smooth.max()]
    if tall.size == 0:
        raise FitError("spectrum fit: no peak found in the NPE spectrum; is this an Am-241 run?")
    i = int(tall[-1])
    centres = 0.5 * (edges[1:] + edges[:-1])
    half = smooth[i] / 2.0
    lo = i - int(np.argmax(smooth[i::-1] < half))
    hi = i + int(np.argmax(smooth[i:] < half))
    mu = float(centres[i])
    sigma = max(float(centres[hi] - centres[lo]) / FWHM_PER_SIGMA, float(edges[1] - edges[0]))
    # refine on the events within 1.5 sigma: a local Gaussian mean and spread
    near = finite[np.abs(finite - mu) < 1.5 * sigma]
    if near.size > 50:
        mu = float(np.mean(near))
    return mu, sigma


def _unconstrained(result: lmfit.minimizer.MinimizerResult, i: int, s: SpectrumFitSettings) -> bool:
    """Whether line i's area is too small to fit its own mean and width: fewer than s.min_line_events,
    or consistent with zero (smaller than its own error, e.g. a 0.1 % L-shell escape that a free fit fills
    from the 59.54 keV line's tail: 2118 +- 4054 events, which widened that line's FWHM error to 0.5 pp)."""
    area = result.params[f"c{i}_area"]
    error = area.stderr if area.stderr is not None and np.isfinite(area.stderr) else 0.0
    return bool(area.value < s.min_line_events or area.value < error)


def _with_errors(
    result: lmfit.minimizer.MinimizerResult,
    minimise: Callable[[lmfit.Parameters], lmfit.minimizer.MinimizerResult],
) -> lmfit.minimizer.MinimizerResult:
    """`result`, or where a parameter on its bound (an empty component) left no covariance, a refit with
    those held (and an empty component's mean and width, which are undefined) for the others' errors."""
    if result.errorbars:
        return result
    pinned = result.params.copy()
    n = sum(1 for name in pinned if name.endswith("_area"))
    for i in range(n):
        if pinned[f"c{i}_area"].value < 1.0:
            for k in ("area", "mu", "sigma"):
                if not pinned[f"c{i}_{k}"].expr:
                    pinned[f"c{i}_{k}"].set(vary=False)
    for par in pinned.values():
        if not par.vary or par.expr:
            continue
        span = par.max - par.min if np.isfinite(par.max - par.min) else abs(par.value) + 1.0
        if min(abs(par.value - par.min), abs(par.max - par.value)) < 1e-6 * span:
            par.set(vary=False)
    return minimise(pinned)


def fit_spectrum(
    npe: NDArray[np.floating], settings: SpectrumFitSettings = SpectrumFitSettings()
) -> SpectrumFitResult:
    """Fit the Am-241 NPE spectrum of per-event NPE values. Raises FitError if it cannot."""
    s = settings
    comps = am241_components(s.labels)
    npe = np.asarray(npe, np.float64)
    if npe.size < s.min_events:
        raise FitError(f"spectrum fit: {npe.size} events, fewer than {s.min_events}; take a longer run")
    mu59, sigma59 = locate_59kev_peak(npe)
    ly0 = mu59 / 59.54
    rel59 = sigma59 / mu59
    bin_width = max(sigma59 / s.bins_per_sigma59, 1e-3)
    lo, hi = s.range_kev[0] * ly0, s.range_kev[1] * ly0
    edges = np.arange(lo, hi + 0.5 * bin_width, bin_width)
    counts, _ = np.histogram(npe, edges)
    counts = counts.astype(np.float64)
    x = 0.5 * (edges[1:] + edges[:-1])

    params = lmfit.Parameters()
    for i, c in enumerate(comps):
        if c.energy_kev is not None:
            mu0 = ly0 * c.energy_kev
            sig0 = mu0 * rel59 * np.sqrt(59.54 / c.energy_kev)  # statistics-dominated scaling
        else:
            mu0 = ly0 * 0.5 * (c.lo_kev + c.hi_kev) if c.name != "Bkg" else ly0 * 40.0
            sig0 = ly0 * (c.sigma_start_kev or 10.0)
        height = float(np.interp(mu0, x, np.convolve(counts, np.ones(5) / 5, mode="same")))
        area0 = max(height, 1.0) * SQRT_2PI * sig0 / bin_width
        if c.name in ("L-shell escape", "77 keV sum"):
            area0 *= 0.2  # small components sit under the tails of big ones
        if c.name == "Bkg":
            area0 = max(float(counts[x > 66 * ly0].sum()) * 3.0, 1.0)
        params.add(f"c{i}_area", area0, min=0.0)
        params.add(f"c{i}_mu", mu0, min=c.lo_kev * ly0, max=c.hi_kev * ly0)
        if c.energy_kev is not None:
            params.add(f"c{i}_sigma", sig0, min=0.3 * sig0, max=3.0 * sig0)
        else:
            params.add(f"c{i}_sigma", sig0, min=2.0 * ly0, max=200.0 * ly0)
    n = len(comps)

    def residual(p: lmfit.Parameters) -> NDArray[np.float64]:
        amp, mu, sig = _arrays(p.valuesdict(), n)
        return deviance_residuals(_gaussians(x, amp, mu, sig, bin_width).sum(axis=0), counts)

    def minimise(p: lmfit.Parameters) -> lmfit.minimizer.MinimizerResult:
        return lmfit.minimize(residual, p, method="least_squares", max_nfev=20_000, scale_covar=False)

    # stage 1: lines at one light yield times their energy, widths from one resolution law
    # (sigma^2 = a mu + b mu^2); it sorts out the overlapping 26.34 keV line and K-escape
    staged = params.copy()
    staged.add("ly", ly0, min=0.8 * ly0, max=1.2 * ly0)
    staged.add("res_a", rel59**2 * mu59 * 0.7, min=0.0)
    staged.add("res_b", rel59**2 * 0.3, min=0.0)
    for i, c in enumerate(comps):
        if c.energy_kev is None or c.name == "K-shell escape":
            continue
        staged[f"c{i}_mu"].set(expr=f"ly*{c.energy_kev!r}")
        staged[f"c{i}_sigma"].set(expr=f"sqrt(res_a*c{i}_mu + res_b*c{i}_mu**2)")
    first = minimise(staged)
    for name in params:
        params[name].set(value=float(np.clip(first.params[name].value, params[name].min, params[name].max)))
    # stage 2: the paper's fit, every mean, width and area free
    result = _with_errors(minimise(params), minimise)
    # lines the data cannot constrain: mean and width follow the 59.54 keV line, area free
    tied = [
        i for i, c in enumerate(comps) if i > 0 and c.energy_kev is not None and _unconstrained(result, i, s)
    ]
    if tied:
        fitted = result.params
        params = params.copy()  # the stage-2 freedoms (an error refit may have held some), at its values
        for name, par in params.items():
            par.set(value=float(np.clip(fitted[name].value, par.min, par.max)))
        for i in tied:
            e = comps[i].energy_kev
            params[f"c{i}_mu"].set(expr=f"c0_mu*{e / 59.54!r}")
            params[f"c{i}_sigma"].set(expr=f"c0_sigma*{float(np.sqrt(e / 59.54))!r}")
        result = _with_errors(minimise(params), minimise)
    if result.params["c0_area"].value <= 0 or not np.isfinite(result.chisqr):
        raise FitError(f"spectrum fit failed: {result.message}")
    v = result.params

    def m(name: str) -> Measured:
        err = v[name].stderr
        return Measured(float(v[name].value), float(err) if err is not None else float("nan"))

    peaks = [
        Peak(c.name, c.energy_kev, m(f"c{i}_mu"), m(f"c{i}_sigma"), m(f"c{i}_area"), c.in_mean_ly, i in tied)
        for i, c in enumerate(comps)
    ]
    for p in peaks:  # a width is a width: the fit may land on either sign
        p.sigma_npe = Measured(abs(p.sigma_npe.value), p.sigma_npe.error)
        if p.tied:  # no error of its own: it is the 59.54 keV line's, scaled
            p.mu_npe = Measured(p.mu_npe.value, float("nan"))
            p.sigma_npe = Measured(p.sigma_npe.value, float("nan"))
    residuals = result.residual
    r0, r1 = s.chi2_range_npe
    inside = (x >= r0) & (x <= r1)
    n_inside = int(inside.sum())
    g59 = peaks[0]
    rel = g59.sigma_npe.value / g59.mu_npe.value
    rel_err = rel * np.hypot(g59.sigma_npe.error / g59.sigma_npe.value, g59.mu_npe.error / g59.mu_npe.value)
    ly, ly_note = mean_light_yield([p for p in peaks if p.in_mean_ly], s.min_line_events)
    return SpectrumFitResult(
        peaks=peaks,
        light_yield=ly,
        light_yield_note=ly_note,
        light_yield_paper=paper_light_yield([p for p in peaks if p.in_mean_ly]),
        fwhm_percent_59=Measured(100.0 * FWHM_PER_SIGMA * rel, 100.0 * FWHM_PER_SIGMA * float(rel_err)),
        chi2=float(np.sum(residuals**2)),
        ndf=int(result.nfree),
        chi2_restricted=float(np.sum(residuals[inside] ** 2)),
        ndf_restricted=max(n_inside - result.nvarys, 0),
        n_events=int(npe.size),
        edges=edges,
        counts=counts,
        fit_range_npe=(float(edges[0]), float(edges[-1])),
        params={k: float(p.value) for k, p in v.items()},
        components=comps,
    )


def deviance_residuals(mu: NDArray[np.float64], n: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed square roots of the binned Poisson deviance: their squares sum to -2 ln(L / L_saturated).

    Minimising their sum of squares is the maximum-likelihood fit (Baker and Cousins, NIM 221 (1984) 437);
    empty bins count (2 mu each), unlike a chi2 over the non-empty bins.
    """
    mu = np.maximum(mu, 1e-12)
    dev = 2.0 * (mu - n + np.where(n > 0, n * np.log(np.maximum(n, 1e-300) / mu), 0.0))
    return np.sign(mu - n) * np.sqrt(np.maximum(dev, 0.0))


def mean_light_yield(points: list[Peak], min_events: int = 200) -> tuple[Measured, str]:
    """The error-weighted constant through LY_i = mu_i / E_i, errors of the fitted means; and a note.

    Lines with fewer than `min_events` events, tied or without an error are left out (named in the
    note). When the points scatter more than their errors (chi2/ndf > 1) the error is scaled by
    sqrt(chi2/ndf). Raises FitError when no line is usable.
    """
    used, left = [], []
    for p in points:
        err = p.ly_error
        if p.tied or p.counts.value < min_events:
            left.append(f"{p.name} ({p.counts.value:.0f} events, fewer than {min_events})")
        elif err is None or not np.isfinite(err) or err <= 0:
            left.append(f"{p.name} (no error from the fit)")
        else:
            used.append(p)
    if not used:
        raise FitError(f"light yield: no usable line point ({'; '.join(left)})")
    ly = np.array([p.ly_pe_per_kevee for p in used], np.float64)
    w = 1.0 / np.array([p.ly_error for p in used], np.float64) ** 2
    mean = float(np.sum(w * ly) / np.sum(w))
    error = float(1.0 / np.sqrt(np.sum(w)))
    ndf = ly.size - 1
    chi2 = float(np.sum(w * (ly - mean) ** 2))
    note = f"{ly.size} lines ({', '.join(p.name for p in used)})"
    if ndf > 0:
        note += f", chi2/ndf of the constant {chi2 / ndf:.1f}"
        if chi2 > ndf:
            error *= float(np.sqrt(chi2 / ndf))
            note += " (error scaled by its square root)"
    if left:
        note += f"; left out: {'; '.join(left)}"
    return Measured(mean, error), note


def paper_light_yield(points: list[Peak]) -> Measured:
    """The paper's zero-order polynomial through LY_i with error bars sigma_i / E_i (widths); nan if none."""
    pts = [p for p in points if not p.tied and p.ly_width and np.isfinite(p.ly_width) and p.ly_width > 0]
    if not pts:
        return Measured(float("nan"), float("nan"))
    ly = np.array([p.ly_pe_per_kevee for p in pts], np.float64)
    w = 1.0 / np.array([p.ly_width for p in pts], np.float64) ** 2
    return Measured(float(np.sum(w * ly) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w))))
