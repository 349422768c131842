"""SPE calibration without a threshold: a Bellamy-type fit of fixed-window charges in the late, sparse region.

Method (Bellamy et al., NIM A 339 (1994) 468, in the form used for LED-free PMT calibrations):
consecutive windows of `window_ns` tile the end of the signal region, where the scintillation tail
leaves a few photoelectrons per microsecond. Nothing selects the windows, so there is no acceptance
to model and no threshold to bias the charge scale. The charge of a window is

    pedestal (+) sum of n PE charges,   n = 0, 1, 2, ... with free weights a_n

- the pedestal is measured: the same windows in the baseline region, each against a baseline mean
  that leaves its own samples out (docs/analysis.md);
- a PE's charge is Gaussian(Qspe, sigma_spe), as in the paper's model;
- a PE that arrives near a window's edge leaves part of its charge in the neighbour: the fraction
  inside follows from the averaged SPE shape of the data and a uniform arrival time, so the
  partial PEs form a modelled continuum between the pedestal and the 1-PE peak;
- the weights a_n are free (Bellamy's Poisson weights generalised): the occupancy changes along the
  tail and from event to event, so n is a mixture of Poissons, not one;
- the fit is a binned Poisson likelihood (deviance), over all bins of the range, empty ones included.

The late region is the longest run of windows at the record's end whose mean occupancy stays below
`max_occupancy`, never shorter than the paper's SPE window. Events with a window above `veto_spe`
x Qspe there (a second interaction in the tail) are left out; the range ends at that charge.
The template's width is the method's main systematic: it is refitted with the template stretched
by +-`template_stretch` and the change is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lmfit
import numpy as np
from numpy.typing import NDArray
from scipy import optimize
from scipy.special import ndtr

from analysis.spe_fit import FitError, Measured
from analysis.spe_windows import WindowCharges, estimate_template, main_lobe
from analysis.spectrum_fit import deviance_residuals

DEFAULT_SPE_TAU_NS = 2.2  # (t/tau)^2 exp(-t/tau): the shape assumed when the data give too few pulses


@dataclass(frozen=True)
class SpeCalibrationSettings:
    """Window width (ns), late-region choice, veto, PE terms, template systematic, minimum statistics."""

    window_ns: int = 32
    max_occupancy: float = 0.2  # mean PEs per window in the late region
    veto_spe: float = 4.0  # events with a late window above this many Qspe are left out
    n_pe: int = 4  # n = 1..n_pe PE terms besides the pedestal
    template_stretch: float = 0.05
    min_template_pulses: int = 200
    min_pe_windows: int = 2000  # estimated windows holding a PE
    low_charge_term: bool = (
        True  # a free share of PEs with exponential charges (under-multiplied at a dynode)
    )


@dataclass
class SpeCalibration:
    """The result: Qspe and sigma_spe with statistical errors, the template systematic, the fit's record."""

    q_spe: Measured  # ADC*ns, statistical error
    q_spe_template_syst: float  # ADC*ns: change of Qspe with the template +-stretch
    sigma_spe: Measured
    occupancy: float  # mean PEs per window touching it
    low_charge_fraction: Measured  # share of PEs with exponential (under-multiplied) charges
    region_ns: tuple[int, int]
    window_ns: int
    n_windows: int
    n_events: int
    n_vetoed: int
    pedestal_sigma_adc_ns: float
    template_source: str
    template_fwhm_ns: float
    deviance: float
    ndf: int
    edges: NDArray[np.float64]
    counts: NDArray[np.float64]
    components: dict[str, NDArray[np.float64]] = field(default_factory=dict)  # per bin: pedestal, n PE, total

    @property
    def q_spe_error_total(self) -> float:
        return float(np.hypot(self.q_spe.error, self.q_spe_template_syst))

    @property
    def chi2_ndf(self) -> float:
        return self.deviance / self.ndf if self.ndf > 0 else float("nan")


def default_template() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The R11065 shape (t/tau)^2 exp(-t/tau) on a fine grid, unit area, time relative to its centroid."""
    t = np.arange(0.0, 40.0, 0.05)
    y = (t / DEFAULT_SPE_TAU_NS) ** 2 * np.exp(-t / DEFAULT_SPE_TAU_NS)
    y /= y.sum() * 0.05
    return t - 3.0 * DEFAULT_SPE_TAU_NS, y


def fwhm_ns(t: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    above = np.flatnonzero(y >= 0.5 * y.max())
    return float(t[above[-1]] - t[above[0]]) if above.size else float("nan")


def fraction_inside(
    t: NDArray[np.float64], y: NDArray[np.float64], window_ns: int, step_ns: float = 0.05
) -> NDArray[np.float64]:
    """Fractions of a PE's charge inside a window of `window_ns`, for arrivals uniform over all that touch it.

    Arrivals whose pulse leaves less than 0.5 % in the window are left out (they are pedestal).
    """
    dt = t[1] - t[0]
    cum = np.concatenate(([0.0], np.cumsum(y) * dt))
    edges = np.concatenate((t - 0.5 * dt, [t[-1] + 0.5 * dt]))
    shift = np.arange(-edges[-1], window_ns - edges[0], step_ns)  # the template's time zero in the window
    inside = np.interp(window_ns - shift, edges, cum) - np.interp(-shift, edges, cum)
    return inside[inside > 0.005]


def _late_region(
    wc: WindowCharges, q_guess: float, s: SpeCalibrationSettings, spe_window_ns: tuple[int, int]
) -> int:
    """Number of windows at the end of the signal region that form the late region."""
    starts = wc.regions.window_starts_ns()
    clipped = np.minimum(wc.signal, s.veto_spe * q_guess)
    occupancy = clipped.mean(axis=0) / q_guess
    k = 0
    while k < starts.size and occupancy[starts.size - 1 - k] <= s.max_occupancy:
        k += 1
    paper = int(np.sum(starts >= spe_window_ns[0] - 0.5 * wc.regions.window_ns))  # at least the SPE window
    return max(k, min(paper, starts.size), 1)


def _gauss_bins(centres: NDArray[np.float64], width: float, mu: NDArray[np.float64],
                sigma: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
    """Probability of Gaussian(mu_j, sigma_j) in bins of `width` around `centres`: (j, bins)."""
    sd = np.maximum(sigma, 1e-6)[:, None]
    hi = (centres[None, :] + 0.5 * width - mu[:, None]) / sd
    lo = (centres[None, :] - 0.5 * width - mu[:, None]) / sd
    return ndtr(hi) - ndtr(lo)


class _Model:
    """Expected counts per bin: measured pedestal (x) [a_0 delta + sum_n a_n S1^(*n)]."""

    def __init__(self, pedestal_hist: NDArray[np.float64], width: float, fractions: NDArray[np.float64],
                 n_pe: int) -> None:  # fmt: skip
        self.n_bins = pedestal_hist.size
        self.width = width
        self.size = 1 << int(np.ceil(np.log2(2 * self.n_bins)))
        total = pedestal_hist.sum()
        self.ped_ft = np.fft.rfft(pedestal_hist / total, self.size)
        self.ped_var = pedestal_hist / total**2  # the measured pedestal's own Poisson variance, per a0^2
        self.grid = np.arange(self.n_bins) * width  # signal charges added to the pedestal
        counts, f_edges = np.histogram(fractions, bins=40, range=(0.0, 1.0 + 1e-9))
        sums = np.histogram(fractions, bins=f_edges, weights=fractions)[0]
        self.f_weight = counts / counts.sum()
        self.f_centre = sums / np.maximum(counts, 1)  # the mean fraction in each bin (full PEs: exactly 1)
        used = counts > 0
        self.f_weight, self.f_centre = self.f_weight[used], self.f_centre[used]
        self.n_pe = n_pe

    def single(self, q: float, sigma: float, low: float = 0.0, low_mean: float = 0.2) -> NDArray[np.float64]:
        """One PE's charge in the window: Gaussian(q, sigma), a fraction `low` of it exponential with mean
        low_mean * q instead (Bellamy's under-multiplied PEs), times the fraction inside the window."""
        out = self.f_weight @ _gauss_bins(self.grid, self.width, self.f_centre * q, self.f_centre * sigma)
        if low > 0.0:
            scale = np.maximum(self.f_centre * low_mean * q, 1e-9)[:, None]
            lo = np.maximum(self.grid - 0.5 * self.width, 0.0)[None, :]
            hi = (self.grid + 0.5 * self.width)[None, :]
            out = (1.0 - low) * out + low * (self.f_weight @ (np.exp(-lo / scale) - np.exp(-hi / scale)))
        return out

    def shapes(self, q: float, sigma: float, low: float = 0.0, low_mean: float = 0.2) -> NDArray[np.float64]:
        """(1 + n_pe, bins): the pedestal and each n-PE term for unit amplitude."""
        s1 = np.fft.rfft(self.single(q, sigma, low, low_mean), self.size)
        power = np.ones_like(s1)
        rows = [np.fft.irfft(self.ped_ft, self.size)[: self.n_bins]]
        for _ in range(self.n_pe):
            power = power * s1
            rows.append(np.fft.irfft(self.ped_ft * power, self.size)[: self.n_bins])
        return np.maximum(np.array(rows), 0.0)

    def components(self, p: dict[str, float]) -> dict[str, NDArray[np.float64]]:
        """Expected counts per bin of each term (pedestal, n PE) and their total, for parameters `p`."""
        rows = self.shapes(p["q_spe"], p["sigma_spe"], p["low_fraction"], p["low_mean_rel"])
        names = ["pedestal", *(f"{n} PE" for n in range(1, self.n_pe + 1))]
        out = {name: p[f"a{i}"] * rows[i] for i, name in enumerate(names)}
        out["total"] = np.sum(list(out.values()), axis=0)
        return out


def _poisson_deviance(mu: NDArray[np.float64], n: NDArray[np.float64]) -> float:
    return float(np.sum(deviance_residuals(mu, n) ** 2))


def _profiled(
    shapes: NDArray[np.float64], counts: NDArray[np.float64], iterations: int = 60
) -> NDArray[np.float64]:
    """Amplitudes of fixed shapes that maximise the Poisson likelihood (EM updates: non-negative, monotonic)."""
    norm = np.maximum(shapes.sum(axis=1), 1e-300)
    amps = np.full(shapes.shape[0], counts.sum() / shapes.shape[0])
    for _ in range(iterations):
        mu = np.maximum(amps @ shapes, 1e-300)
        amps = amps * (shapes @ (counts / mu)) / norm
    return amps


def _start(
    counts: NDArray[np.float64], model: _Model, q_guess: float, low_charge_term: bool
) -> lmfit.Parameters:
    """Starting values from the profile likelihood: a scan of Qspe, then (Qspe, sigma) by simplex,
    every time with the amplitudes that fit best for those shapes (the likelihood in Qspe has side
    minima, and the amplitudes span five decades: a local fit from a rough start can stall)."""

    def deviance(q: float, sigma: float) -> float:
        shapes = model.shapes(q, sigma)
        return _poisson_deviance(_profiled(shapes, counts) @ shapes, counts)

    scan = q_guess * np.exp(np.linspace(np.log(0.5), np.log(2.0), 25))
    q0 = float(scan[int(np.argmin([deviance(q, 0.3 * q) for q in scan]))])
    best = optimize.minimize(
        lambda v: deviance(v[0], abs(v[1])), x0=[q0, 0.3 * q0], method="Nelder-Mead",
        options={"xatol": 1e-3 * q0, "fatol": 0.01, "maxfev": 400},
    )  # fmt: skip
    q, sigma = float(best.x[0]), float(abs(best.x[1]))
    amps = _profiled(model.shapes(q, sigma), counts)
    p = lmfit.Parameters()
    p.add("q_spe", q, min=0.3 * q_guess, max=3.0 * q_guess)
    p.add("sigma_spe", sigma, min=0.02 * q_guess, max=1.5 * q_guess)
    p.add("low_fraction", 0.02 if low_charge_term else 0.0, min=0.0, max=0.5, vary=low_charge_term)
    p.add("low_mean_rel", 0.2, min=0.05, max=0.5, vary=low_charge_term)
    for n, a in enumerate(amps):
        p.add(f"a{n}", float(a), min=0.0)
    return p


def _fit(
    counts: NDArray[np.float64], model: _Model, p: lmfit.Parameters, errors: bool = True
) -> lmfit.minimizer.MinimizerResult:
    """The full likelihood fit from `p` (all parameters free; errors from its curvature).

    The objective is the binned Poisson deviance, each bin's term scaled by mu / (mu + v), v the
    variance the measured pedestal brings into that bin (its own counting error, times a0^2), as a
    Pearson chi2 with both variances would weigh it (Barlow-Beeston lite). The weights are taken at the
    starting values and held, so that they do not pull on a0. Parameters are scaled by the Jacobian:
    the amplitudes are 10^5 times the low-charge fraction.
    """
    start = model.components(p.valuesdict())["total"]
    weight = np.sqrt(
        np.maximum(start, 1e-12) / (np.maximum(start, 1e-12) + p["a0"].value ** 2 * model.ped_var)
    )

    def residual(params: lmfit.Parameters) -> NDArray[np.float64]:
        return deviance_residuals(model.components(params.valuesdict())["total"], counts) * weight

    def minimise(q: lmfit.Parameters) -> lmfit.minimizer.MinimizerResult:
        return lmfit.minimize(
            residual, q, method="least_squares", scale_covar=False, max_nfev=20_000, x_scale="jac"
        )

    result = minimise(p)
    if (
        errors and not result.errorbars
    ):  # a parameter on its bound (no low-charge PEs, an empty term): hold it
        held = result.params.copy()
        if held["low_fraction"].value < 1e-3:  # no low-charge PEs: their mean charge is undefined
            held["low_fraction"].set(value=0.0, vary=False)
            held["low_mean_rel"].set(vary=False)
        for par in held.values():
            span = par.max - par.min if np.isfinite(par.max - par.min) else abs(par.value) + 1.0
            near_bound = min(abs(par.value - par.min), abs(par.max - par.value)) < 1e-4 * span
            empty_term = par.name[0] == "a" and par.name[1:].isdigit() and par.value < 1.0
            if par.vary and (near_bound or empty_term):
                par.set(vary=False)
        result = minimise(held)
    if (
        not result.success
        or not np.isfinite(result.params["q_spe"].value)
        or (errors and not result.errorbars)
    ):
        raise FitError(f"SPE calibration: the window fit did not converge ({result.message})")
    return result


def _profile_error(
    counts: NDArray[np.float64], model: _Model, best: lmfit.minimizer.MinimizerResult, deviance: float
) -> float:
    """Qspe's error from the profile likelihood: refits with Qspe held 1 % off either side, every other
    parameter free; the deviance rises as (dQ / error)^2. Steadier than the curvature at the minimum,
    which the low-charge term's near-degeneracy with the pedestal makes erratic."""
    q = float(best.params["q_spe"].value)
    step = 0.01 * q
    rises = []
    for sign in (-1.0, 1.0):
        held = best.params.copy()
        held["q_spe"].set(value=q + sign * step, vary=False)
        r = _fit(counts, model, held, errors=False)
        rises.append(max(float(np.sum(r.residual**2)) - deviance, 1e-12))
    return step / float(np.sqrt(np.mean(rises)))


def rough_q_spe(wc: WindowCharges, n_windows: int = 32) -> float:
    """A starting Qspe from the data alone: the median charge of the late windows standing 4 sigma above
    the pedestal (within a factor 1.5 of Qspe for SPE pulses above the noise; refined by the fit)."""
    ped = wc.pedestal.ravel()
    sigma = float(1.4826 * np.median(np.abs(ped - np.median(ped)))) if ped.size else 0.0
    late = wc.signal[:, -n_windows:].ravel()
    above = late[late > 4.0 * sigma]
    if above.size < 50:
        raise FitError(
            f"SPE calibration: only {above.size} late windows stand 4 sigma above the pedestal "
            f"({4 * sigma:.1f} ADC*ns); no photoelectrons to calibrate on"
        )
    return float(np.median(above))


def _template(
    wc: WindowCharges, q_guess: float, s: SpeCalibrationSettings
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """The SPE shape for the window model: measured on the data's isolated late pulses, else the default."""
    t, y = default_template()
    source = f"the default R11065 shape (tau {DEFAULT_SPE_TAU_NS} ns)"
    if wc.pulse_segments.shape[0] < s.min_template_pulses:
        return (
            t,
            y,
            source
            + f": only {wc.pulse_segments.shape[0]} isolated late pulses, {s.min_template_pulses} needed",
        )
    t_data, y_data, n_used = estimate_template(wc.pulse_segments, q_guess, (t, y))
    if n_used < s.min_template_pulses:
        return (
            t,
            y,
            source + f": only {n_used} isolated late pulses of 0.9-1.8 Qspe, {s.min_template_pulses} needed",
        )
    return t_data, main_lobe(t_data, y_data), f"averaged from {n_used} isolated late pulses"


def calibrate_spe(
    wc: WindowCharges, q_guess_adc_ns: float, spe_window_ns: tuple[int, int] = (7000, 8000),
    settings: SpeCalibrationSettings = SpeCalibrationSettings(),  # noqa: B008 - frozen
) -> SpeCalibration:  # fmt: skip
    """Fit the late-window charges of `wc`; `q_guess_adc_ns` sets the veto, range and start (+-30 % is enough).

    Raises FitError with the reason when the data cannot calibrate (too few PEs, no late region).
    """
    s = settings
    if wc.n_events == 0:
        raise FitError("SPE calibration: no events")
    if not q_guess_adc_ns > 0:
        raise FitError(f"SPE calibration: no starting Qspe ({q_guess_adc_ns})")
    q_guess = float(q_guess_adc_ns)
    result = None
    for _ in range(4):  # the shape's selection, the veto and the range follow Qspe: redo once they moved
        t, y, source = _template(wc, q_guess, s)
        result = _calibrate_once(wc, q_guess, spe_window_ns, s, t, y, source)
        if abs(result.q_spe.value - q_guess) < 0.05 * q_guess:
            break
        q_guess = result.q_spe.value
    else:
        raise FitError(
            f"SPE calibration: Qspe still moves after 4 rounds ({q_guess:.2f} -> {result.q_spe.value:.2f} ADC*ns); "
            "the window fit is not stable on these data"
        )
    assert result is not None
    return result


def _calibrate_once(
    wc: WindowCharges, q_guess: float, spe_window_ns: tuple[int, int], s: SpeCalibrationSettings,
    t: NDArray[np.float64], y: NDArray[np.float64], source: str,
) -> SpeCalibration:  # fmt: skip
    w = wc.regions.window_ns
    k = _late_region(wc, q_guess, s, spe_window_ns)
    late = wc.signal[:, -k:]
    veto = s.veto_spe * q_guess
    # a pulse in the baseline region also lowers the event's baseline mean, and so every late window
    keep = (late.max(axis=1) < veto) & (wc.pedestal.max(axis=1) < veto)
    late = late[keep].ravel().astype(np.float64)
    ped_all = wc.pedestal[keep].ravel().astype(np.float64)
    if ped_all.size < 100:
        raise FitError("SPE calibration: fewer than 100 pedestal windows in the baseline region")
    ped_sigma = float(1.4826 * np.median(np.abs(ped_all - np.median(ped_all))))
    width = max(min(q_guess / 25.0, ped_sigma / 3.0), 0.05)
    lo = np.floor(min(-6.0 * ped_sigma, float(np.percentile(ped_all, 0.01))) / width) * width
    edges = np.arange(lo, veto + 0.5 * width, width)
    counts = np.histogram(late, edges)[0].astype(np.float64)
    pedestal = np.histogram(ped_all, edges)[0].astype(np.float64)
    pe_windows = max(late.mean() / q_guess, 0.0) * late.size
    region = (int(wc.regions.window_starts_ns()[-k]), int(wc.regions.signal[1]))
    if pe_windows < s.min_pe_windows:
        raise FitError(
            f"SPE calibration: about {pe_windows:.0f} photoelectrons in the late region {region[0]}-{region[1]} ns "
            f"of {int(keep.sum())} events, fewer than {s.min_pe_windows}; take a longer run"
        )

    model = _Model(pedestal, width, fraction_inside(t, y, w), s.n_pe)
    res = _fit(counts, model, _start(counts, model, q_guess, s.low_charge_term))
    q_fit = float(res.params["q_spe"].value)
    shifts = []
    for stretch in (1.0 - s.template_stretch, 1.0 + s.template_stretch):
        # the shape y(t / s) / s: wider or narrower, same area; refitted from the nominal result
        other = _Model(pedestal, width, fraction_inside(t * stretch, y / stretch, w), s.n_pe)
        r2 = _fit(counts, other, res.params.copy(), errors=False)
        shifts.append(abs(float(r2.params["q_spe"].value) - q_fit))
    v = res.params

    def m(name: str) -> Measured:
        err = v[name].stderr
        return Measured(float(v[name].value), float(err) if err is not None else float("nan"))

    deviance, ndf = float(np.sum(res.residual**2)), int(res.nfree)
    q_error = _profile_error(counts, model, res, deviance) * float(np.sqrt(max(deviance / max(ndf, 1), 1.0)))

    values = v.valuesdict()
    comps = model.components(values)
    a_pe = np.array([values[f"a{n}"] for n in range(1, s.n_pe + 1)])
    occupancy = float(np.sum(np.arange(1, s.n_pe + 1) * a_pe) / max(values["a0"] + a_pe.sum(), 1e-12))
    return SpeCalibration(
        q_spe=Measured(q_fit, q_error),
        q_spe_template_syst=float(max(shifts)),
        sigma_spe=Measured(abs(v["sigma_spe"].value), m("sigma_spe").error),
        occupancy=occupancy,
        low_charge_fraction=m("low_fraction"),
        region_ns=region,
        window_ns=w,
        n_windows=int(late.size),
        n_events=int(keep.sum()),
        n_vetoed=int((~keep).sum()),
        pedestal_sigma_adc_ns=ped_sigma,
        template_source=source,
        template_fwhm_ns=fwhm_ns(t, y),
        deviance=deviance,
        ndf=ndf,
        edges=edges,
        counts=counts,
        components=comps,
    )
