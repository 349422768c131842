"""An independent waveform generator for the analysis tests, written apart from simulators/ on purpose.

Nothing here comes from the project's simulator: another SPE pulse (a difference of exponentials, not
(t/tau)^2 exp(-t/tau)), correlated noise (white noise through a one-pole low-pass, then rounded), two
scintillation components, a simplified Am-241 line list, a fixed trigger position instead of a threshold
crossing, and CAEN WaveDump binary files (24-byte headers, WaveDumpConfig.txt) as the output. The
parameters are drawn from plausible ranges by a seeded generator, so a test knows the truth without the
analysis being tuned to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

RECORD = 8000
TRIGGER_AT = 1600
BASELINE_ADC = 850.0
# (energy keV, relative rate): 59.54 and 26.34 keV gammas, Np L X-ray groups, a K-escape bump
LINES = ((59.54, 1.0), (26.34, 0.064), (13.9, 0.36), (17.5, 0.52), (21.0, 0.13), (29.5, 0.15))


@dataclass(frozen=True)
class Truth:
    noise_rms_adc: float
    q_spe_adc_ns: float
    sigma_spe_rel: float
    ly_pe_per_kev: float
    rise_ns: float
    fall_ns: float
    tau_slow_ns: float
    fast_fraction: float
    noise_corr: float  # one-pole low-pass coefficient of the noise

    @staticmethod
    def draw(seed: int, noise_range: tuple[float, float], q_range: tuple[float, float],
             ly_range: tuple[float, float]) -> Truth:  # fmt: skip
        """Hidden parameters drawn from the given ranges and from plausible ones for the rest."""
        r = np.random.default_rng(seed)
        return Truth(
            noise_rms_adc=float(r.uniform(*noise_range)), q_spe_adc_ns=float(r.uniform(*q_range)),
            sigma_spe_rel=float(r.uniform(0.25, 0.4)), ly_pe_per_kev=float(r.uniform(*ly_range)),
            rise_ns=float(r.uniform(0.8, 1.6)), fall_ns=float(r.uniform(2.5, 4.0)),
            tau_slow_ns=float(r.uniform(900.0, 1100.0)), fast_fraction=float(r.uniform(0.05, 0.2)),
            noise_corr=float(r.uniform(0.0, 0.3)),
        )  # fmt: skip


def _pulse(t: Truth) -> np.ndarray:
    """The SPE shape sampled per ns, unit area: exp(-t/fall) - exp(-t/rise)."""
    x = np.arange(0.0, 12.0 * t.fall_ns)
    y = np.exp(-x / t.fall_ns) - np.exp(-x / t.rise_ns)
    return y / y.sum()


def write_wavedump(folder: Path, truth: Truth, n_events: int, seed: int, batch: int = 500) -> None:
    """Write wave0.dat and WaveDumpConfig.txt of `n_events` Am-241 events into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pulse = _pulse(truth)
    size = 1 << int(np.ceil(np.log2(RECORD + pulse.size)))
    pulse_ft = np.fft.rfft(pulse, size)
    energies = np.array([e for e, _ in LINES])
    rates = np.array([w for _, w in LINES])
    (folder / "WaveDumpConfig.txt").write_text(
        "[COMMON]\nOPEN USB 0 0\nRECORD_LENGTH 8000\nPOST_TRIGGER 80\nOUTPUT_FILE_FORMAT BINARY\n"
        "OUTPUT_FILE_HEADER YES\nPULSE_POLARITY NEGATIVE\n[0]\nENABLE_INPUT YES\n"
    )
    with open(folder / "wave0.dat", "wb") as out:
        for first in range(0, n_events, batch):
            m = min(batch, n_events - first)
            energy = rng.choice(energies, size=m, p=rates / rates.sum())
            mean_pe = truth.ly_pe_per_kev * energy * (1.0 + 0.018 * rng.standard_normal(m))
            n_pe = rng.poisson(np.maximum(mean_pe, 0.0))
            owner = np.repeat(np.arange(m), n_pe)
            fast = rng.random(owner.size) < truth.fast_fraction
            delay = np.where(
                fast, rng.exponential(30.0, owner.size), rng.exponential(truth.tau_slow_ns, owner.size)
            )
            when = TRIGGER_AT + delay + rng.normal(0.0, 2.0, owner.size)
            q = rng.normal(truth.q_spe_adc_ns, truth.sigma_spe_rel * truth.q_spe_adc_ns, owner.size)
            while np.any(bad := q <= 0):
                q[bad] = rng.normal(
                    truth.q_spe_adc_ns, truth.sigma_spe_rel * truth.q_spe_adc_ns, int(bad.sum())
                )
            # dark counts anywhere in the record, 200 Hz
            n_dark = rng.poisson(200e-9 * RECORD * m)
            owner = np.concatenate((owner, rng.integers(0, m, n_dark)))
            when = np.concatenate((when, rng.uniform(0, RECORD, n_dark)))
            q = np.concatenate((q, rng.normal(truth.q_spe_adc_ns, 0.3 * truth.q_spe_adc_ns, n_dark).clip(0)))
            inside = when < RECORD - 1
            owner, when, q = owner[inside], when[inside], q[inside]
            charge = np.zeros((m, RECORD))
            sample, phase = when.astype(np.int64), when % 1.0  # a sub-sample arrival: shared by two samples
            np.add.at(charge, (owner, sample), q * (1.0 - phase))
            np.add.at(charge, (owner, sample + 1), q * phase)
            signal = np.fft.irfft(np.fft.rfft(charge, size, axis=1) * pulse_ft, size, axis=1)[:, :RECORD]
            # white noise through a one-pole low-pass, rescaled to the drawn rms
            noise = lfilter([1.0], [1.0, -truth.noise_corr], rng.standard_normal((m, RECORD)), axis=1)
            noise *= truth.noise_rms_adc * np.sqrt(1.0 - truth.noise_corr**2)
            samples = np.clip(np.round(BASELINE_ADC + noise - signal), 0, 1023).astype("<u2")
            for k in range(m):
                head = struct.pack(
                    "<6I", 24 + 2 * RECORD, 0, 0, 0, first + k, (first + k) * 250_000 % (1 << 31)
                )
                out.write(head + samples[k].tobytes())
