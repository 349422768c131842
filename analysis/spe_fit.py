"""SPE calibration (PHYSICS.md 1.3): the paper's fit of the late-window PeakQ histogram, with lmfit.

    f(q) = [a_bkg exp(-q/tau_bkg) + sum_i a_i Gaus(q; i Qspe, w_i)] / (1 + exp(-k (q - q0)))

with w_i = sqrt(i sigma_spe^2 + sigma_noise^2). The paper's model is sigma_noise = 0; by default
sigma_noise is the spread the baseline noise adds to a PeakQ, measured from the same data
(`noise_sigma_from_peaks`), so that sigma_spe is the PMT's own spread and not sqrt(sigma^2 + 2.7^2).
The fit is a chi2 over the non-empty bins (ROOT's default), cross-checked by a Poisson likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lmfit
import numpy as np
from numpy.typing import NDArray


class FitError(RuntimeError):
    """A fit could not be done; the message says why and what to change."""


@dataclass(frozen=True)
class SpeFitSettings:
    """Histogram range and binning (ADC*ns), number of PE Gaussians, noise term."""

    q_min_adc_ns: float = 0.0
    q_max_adc_ns: float = 200.0
    bin_adc_ns: float = 2.0
    n_pe: int = 3
    noise_term: bool = True  # False: the paper's widths sqrt(i) * sigma_spe exactly
    min_entries: int = 500


@dataclass(frozen=True)
class Measured:
    """A fitted value with its 1-sigma uncertainty (nan if the fit could not estimate it)."""

    value: float
    error: float

    def __format__(self, spec: str) -> str:
        return f"{format(self.value, spec)} ± {format(self.error, spec)}"


@dataclass
class SpeFitResult:
    q_spe: Measured  # ADC*ns
    sigma_spe: Measured  # ADC*ns, the PMT's spread (noise term removed when fitted with one)
    sigma_fit_paper: float  # what sqrt(i)*sigma alone would give: sqrt(sigma_spe^2 + sigma_noise^2)
    sigma_noise_adc_ns: float
    q0: Measured
    k: Measured
    tau_bkg: Measured
    amplitudes: list[float]
    chi2: float
    ndf: int
    q_spe_poisson: float  # the Poisson-likelihood fit's Qspe, a cross-check of the chi2 fit
    n_entries: int
    edges: NDArray[np.float64]
    counts: NDArray[np.float64]
    params: dict[str, float] = field(default_factory=dict)

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")

    def curve(self, x: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        """The fitted function and its components at x (for plots)."""
        return spe_components(x, self.params, len(self.amplitudes))


def noise_sigma_from_peaks(
    baseline_rms_adc: NDArray[np.floating], width_samples: NDArray[np.integer]
) -> float:
    """The spread white baseline noise adds to a PeakQ summed over `width` samples: sqrt(<rms^2 * width>).

    baseline_rms_adc and width_samples are per peak (the event's sigma_BL, samples summed in PeakQ).
    """
    if width_samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(baseline_rms_adc.astype(np.float64) ** 2 * width_samples)))


def spe_components(x: NDArray[np.float64], p: dict[str, float], n_pe: int) -> dict[str, NDArray[np.float64]]:
    """Background, each i-PE Gaussian and their sum, each times the acceptance; vectorised over x."""
    acceptance = 1.0 / (1.0 + np.exp(np.clip(-p["k"] * (x - p["q0"]), -500, 500)))
    out = {"background": p["a_bkg"] * np.exp(-x / p["tau_bkg"]) * acceptance}
    i = np.arange(1, n_pe + 1, dtype=np.float64)[:, None]
    width2 = i * p["sigma_spe"] ** 2 + p["sigma_noise"] ** 2
    amps = np.array([p[f"a{j}"] for j in range(1, n_pe + 1)])[:, None]
    gauss = amps * np.exp(-((x[None, :] - i * p["q_spe"]) ** 2) / (2.0 * width2)) * acceptance
    for j in range(n_pe):
        out[f"{j + 1} PE"] = gauss[j]
    out["total"] = out["background"] + gauss.sum(axis=0)
    return out


def _start_values(x: NDArray[np.float64], counts: NDArray[np.float64], noise: float) -> dict[str, float]:
    """Starting values from the histogram itself: the 1-PE peak, its width, the acceptance edge."""
    smooth = np.convolve(counts, np.ones(5) / 5.0, mode="same")
    # the 1-PE peak: the highest point of the smoothed spectrum past its first rise
    top = int(np.argmax(smooth))
    q1 = float(x[top])
    half = smooth[top] / 2.0
    right = top + int(np.argmax(smooth[top:] < half)) if np.any(smooth[top:] < half) else len(x) - 1
    sigma = max((x[right] - q1) / 1.1774, 2.0 * (x[1] - x[0]))
    below = np.flatnonzero(smooth[:top] < half)
    q0 = float(x[below[-1]]) if below.size else q1 / 2.0
    return {
        "q_spe": q1,
        "sigma_spe": float(np.sqrt(max(sigma**2 - noise**2, (0.3 * q1) ** 2))),
        "q0": min(q0, 0.9 * q1),
        "k": 4.0 / max(q1 - q0, x[1] - x[0]),
        "amp": float(smooth[top]),
    }


def _parameters(start: dict[str, float], noise: float, n_pe: int, q_max: float) -> lmfit.Parameters:
    p = lmfit.Parameters()
    q1 = start["q_spe"]
    p.add("q_spe", q1, min=0.3 * q1, max=min(3.0 * q1, q_max))
    p.add("sigma_spe", start["sigma_spe"], min=0.02 * q1, max=2.0 * q1)
    p.add("sigma_noise", noise, vary=False)
    p.add("a_bkg", start["amp"], min=0.0)
    p.add("tau_bkg", 0.3 * q1, min=0.01 * q1, max=20.0 * q1)
    for i in range(1, n_pe + 1):
        p.add(f"a{i}", start["amp"] / i**2, min=0.0)
    p.add("q0", start["q0"], min=0.0, max=q1)
    p.add("k", start["k"], min=0.1 / q1, max=50.0 / q1)
    return p


def fit_spe_histogram(
    counts: NDArray[np.integer | np.floating],
    edges: NDArray[np.floating],
    noise_sigma_adc_ns: float = 0.0,
    n_pe: int = 3,
) -> SpeFitResult:
    """Fit a PeakQ histogram (counts per bin, bin edges in ADC*ns). Raises FitError if it cannot."""
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    x = 0.5 * (edges[1:] + edges[:-1])
    n = int(counts.sum())
    if n < 50:
        raise FitError(f"SPE fit: only {n} peaks in the SPE window; it needs a few hundred at least")
    start = _start_values(x, counts, noise_sigma_adc_ns)
    params = _parameters(start, noise_sigma_adc_ns, n_pe, float(edges[-1]))
    used = counts > 0  # chi2 over the non-empty bins, errors sqrt(n)
    xu, cu, su = x[used], counts[used], np.sqrt(counts[used])

    def chi(p: lmfit.Parameters) -> NDArray[np.float64]:
        return (spe_components(xu, p.valuesdict(), n_pe)["total"] - cu) / su

    result = lmfit.minimize(chi, params, method="least_squares", max_nfev=20_000)
    if not result.success or result.params["q_spe"].value <= 0:
        raise FitError(f"SPE fit did not converge: {result.message}")

    def nll(p: lmfit.Parameters) -> NDArray[np.float64]:  # Poisson deviance as residuals for leastsq
        mu = np.maximum(spe_components(x, p.valuesdict(), n_pe)["total"], 1e-12)
        dev = 2.0 * (mu - counts + np.where(counts > 0, counts * np.log(np.maximum(counts, 1) / mu), 0.0))
        return np.sqrt(np.maximum(dev, 0.0))

    poisson = lmfit.minimize(nll, result.params.copy(), method="leastsq")
    v = result.params

    def m(name: str) -> Measured:
        err = v[name].stderr
        return Measured(float(v[name].value), float(err) if err is not None else float("nan"))

    sigma = m("sigma_spe")
    return SpeFitResult(
        q_spe=m("q_spe"),
        sigma_spe=sigma,
        sigma_fit_paper=float(np.hypot(sigma.value, noise_sigma_adc_ns)),
        sigma_noise_adc_ns=noise_sigma_adc_ns,
        q0=m("q0"),
        k=m("k"),
        tau_bkg=m("tau_bkg"),
        amplitudes=[float(v[f"a{i}"].value) for i in range(1, n_pe + 1)],
        chi2=float(result.chisqr),
        ndf=int(result.nfree),
        q_spe_poisson=float(poisson.params["q_spe"].value),
        n_entries=n,
        edges=edges,
        counts=counts,
        params={k: float(p.value) for k, p in v.items()},
    )


def fit_spe(
    q_adc_ns: NDArray[np.floating],
    settings: SpeFitSettings = SpeFitSettings(),
    noise_sigma_adc_ns: float = 0.0,
) -> SpeFitResult:
    """Histogram the PeakQ of the SPE-window peaks and fit it (noise term only if settings.noise_term)."""
    s = settings
    if q_adc_ns.size < s.min_entries:
        raise FitError(
            f"SPE fit: {q_adc_ns.size} peaks in the SPE window, fewer than {s.min_entries}; take a longer run "
            "or widen the SPE window (--spe-window)"
        )
    edges = np.arange(s.q_min_adc_ns, s.q_max_adc_ns + 0.5 * s.bin_adc_ns, s.bin_adc_ns)
    counts, _ = np.histogram(q_adc_ns, edges)
    return fit_spe_histogram(counts, edges, noise_sigma_adc_ns if s.noise_term else 0.0, s.n_pe)
