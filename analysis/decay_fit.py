"""Scintillation decay time (PHYSICS.md 1.6): the averaged, normalised waveform of selected events, fitted.

Each selected waveform is baseline-subtracted (x = polarity-corrected baseline - raw), normalised to
unit area over the signal region and accumulated. The average is fitted with three exponentials,
sum_j A_j exp(-(t - t_pk) / tau_j), from `start_after_peak_ns` after its peak to the record's end;
with `rise=True` the model is the same sum convolved with a Gaussian (the SPE shape and TTS) and
fitted from before the peak. Fractions are each component's share of the light, A_j tau_j / sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lmfit
import numpy as np
from numpy.typing import NDArray
from scipy.special import erfc, erfcx

from analysis.spe_fit import FitError, Measured


@dataclass(frozen=True)
class DecayFitSettings:
    n_components: int = 3
    start_after_peak_ns: float = 5.0
    rise: bool = False  # fit the rise too: exponentials convolved with a Gaussian
    max_events: int = 20_000  # the average of 3000 events already recovers the constants within 1 %


@dataclass
class AverageWaveform:
    """The accumulated, normalised waveform over the signal region (sample i at time signal_start + i ns)."""

    mean: NDArray[np.float64]
    signal_start: int
    n_events: int
    error: NDArray[np.float64] | None = None  # standard error of the mean per sample (spread over events)


class WaveformAverager:
    """Accumulate normalised waveforms batch by batch (bounded memory)."""

    def __init__(self, signal_start: int, signal_stop: int, polarity: int = -1) -> None:
        self.signal_start, self.signal_stop, self.sign = signal_start, signal_stop, -polarity
        self._sum: NDArray[np.float64] | None = None
        self._sum2: NDArray[np.float64] | None = None
        self.n_events = 0

    def add(self, waveforms: NDArray[np.integer], baseline: NDArray[np.floating]) -> None:
        """waveforms (n, samples) raw ADC; baseline (n,) from the pulse analysis."""
        if waveforms.shape[0] == 0:
            return
        region = waveforms[:, self.signal_start : self.signal_stop].astype(np.float32)
        x = self.sign * (baseline[:, None].astype(np.float32) - region)  # float32: 2x faster, 1e-7 relative
        area = x.sum(axis=1, dtype=np.float64)
        good = area > 0
        x = x[good] / area[good, None].astype(np.float32)
        total, total2 = x.sum(axis=0, dtype=np.float64), np.einsum("ij,ij->j", x, x, dtype=np.float64)
        self._sum = total if self._sum is None else self._sum + total
        self._sum2 = total2 if self._sum2 is None else self._sum2 + total2
        self.n_events += int(good.sum())

    def result(self) -> AverageWaveform:
        if self._sum is None or self.n_events == 0:
            raise FitError("decay fit: no selected events to average (is the 59.54 keV peak in the data?)")
        n = self.n_events
        mean = self._sum / n
        var = np.maximum(self._sum2 / n - mean**2, 0.0) * n / max(n - 1, 1)
        return AverageWaveform(mean, self.signal_start, n, np.sqrt(var / n))


@dataclass
class DecayFitResult:
    tau_ns: list[Measured]  # fastest first
    fraction: list[Measured]  # share of the light of each component, same order
    t_peak_ns: float
    fit_start_ns: float
    chi2_ndf: float
    n_events: int
    time_ns: NDArray[np.float64]
    average: NDArray[np.float64]
    params: dict[str, float] = field(default_factory=dict)
    rise: bool = False
    noise: NDArray[np.float64] | float = float("nan")  # error of the average per sample (the residuals' unit)

    def curve(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return _model(t, self.params, len(self.tau_ns), self.rise)


def _model(t: NDArray[np.float64], p: dict[str, float], n: int, rise: bool) -> NDArray[np.float64]:
    y = np.zeros_like(t, dtype=np.float64)
    for j in range(n):
        a, tau = p[f"a{j}"], p[f"tau{j}"]
        dt = t - p["t0"]
        if not rise:
            y += a * np.exp(-dt / tau)
        else:  # exponential convolved with a Gaussian of width s (exGaussian), stable via erfcx
            s = p["sigma_rise"]
            z = (s / tau - dt / s) / np.sqrt(2.0)
            late = z < 0  # exp(s^2/2tau^2 - dt/tau) erfc(z): no overflow once z < 0; before, erfcx
            out = np.empty_like(dt)
            out[late] = np.exp(0.5 * (s / tau) ** 2 - dt[late] / tau) * erfc(z[late])
            out[~late] = np.exp(-0.5 * (dt[~late] / s) ** 2) * erfcx(z[~late])
            y += a * 0.5 * out
    return y


def fit_decay(avg: AverageWaveform, settings: DecayFitSettings = DecayFitSettings()) -> DecayFitResult:
    """Fit the averaged waveform; starting values from the waveform's own tail."""
    s = settings
    y = avg.mean
    t = avg.signal_start + np.arange(y.size, dtype=np.float64)
    pk = int(np.argmax(y))
    # with the rise, from 100 ns before the peak; without, from start_after_peak_ns after it
    i0 = max(0, pk - 100) if s.rise else pk + int(round(s.start_after_peak_ns))
    if y.size - i0 < 50:
        raise FitError("decay fit: fewer than 50 samples after the peak; the signal region is too short")
    tf, yf = t[i0:], y[i0:]
    # the noise of the average, from the samples before the pulse (or from the tail's scatter)
    pre = y[: max(pk - 50, 0)]
    noise = float(np.std(pre)) if pre.size > 20 else float(np.std(np.diff(yf[-500:])) / np.sqrt(2.0))
    noise = max(noise, 1e-9)
    # per sample: the spread over the averaged events (photon statistics dominate near the peak)
    sigma = np.maximum(avg.error[i0:], noise) if avg.error is not None else np.full(yf.size, noise)
    # slowest constant from the last half of the tail: a straight line in log
    half = tf.size // 2
    tail_t, tail_y = tf[half:], yf[half:]
    ok = tail_y > 3 * noise
    if ok.sum() > 10:
        slope = np.polyfit(tail_t[ok], np.log(tail_y[ok]), 1)[0]
        tau_slow = float(-1.0 / slope) if slope < 0 else 1000.0
    else:
        tau_slow = 1000.0
    tau_slow = float(np.clip(tau_slow, 20.0, 1e5))
    p = lmfit.Parameters()
    p.add("t0", float(t[pk]), vary=s.rise, min=float(t[pk]) - 50, max=float(t[pk]) + 20)
    if s.rise:
        p.add("sigma_rise", 3.0, min=0.3, max=30.0)
    n = s.n_components
    if not 1 <= n <= 3:
        raise FitError("decay fit: 1 to 3 components")
    starts = [tau_slow / 40.0, tau_slow / 4.0, tau_slow][-n:]
    peak = float(y[pk])
    for j, tau in enumerate(starts):
        p.add(f"a{j}", peak / n, min=0.0)
        p.add(f"tau{j}", tau, min=1.0, max=1e6)
    for j in range(1, n):  # keep the order fastest -> slowest
        p.add(f"ratio{j}", starts[j] / starts[j - 1], min=1.05, max=1e4)
        p[f"tau{j}"].set(expr=f"tau{j - 1}*ratio{j}")

    def residual(q: lmfit.Parameters) -> NDArray[np.float64]:
        return (_model(tf, q.valuesdict(), n, s.rise) - yf) / sigma

    result = lmfit.minimize(residual, p, method="leastsq", max_nfev=5000)
    v = result.params
    taus, amps = [], []
    for j in range(n):
        err = v[f"tau{j}"].stderr
        taus.append(Measured(float(v[f"tau{j}"].value), float(err) if err is not None else float("nan")))
        amps.append((float(v[f"a{j}"].value), v[f"a{j}"].stderr))
    light = np.array([a * tau.value for (a, _), tau in zip(amps, taus, strict=True)])
    if light.sum() <= 0:
        raise FitError("decay fit: the fitted components carry no light")
    fractions = []
    for j, ((a, a_err), tau) in enumerate(zip(amps, taus, strict=True)):
        f = light[j] / light.sum()
        rel = np.hypot((a_err or np.nan) / a if a > 0 else np.nan, tau.error / tau.value)
        fractions.append(Measured(float(f), float(f * (1 - f) * rel)))
    return DecayFitResult(
        tau_ns=taus,
        fraction=fractions,
        t_peak_ns=float(t[pk]),
        fit_start_ns=float(tf[0]),
        chi2_ndf=float(result.redchi),
        n_events=avg.n_events,
        time_ns=t,
        average=y,
        params={k: float(q.value) for k, q in v.items()},
        rise=s.rise,
        noise=sigma,
    )
