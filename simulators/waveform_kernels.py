"""numba kernels that draw PMT pulses into a waveform, find the self-trigger and digitise (10 bit)."""

from __future__ import annotations

import numba
import numpy as np

ADC_MAX = 1023


@numba.njit(nogil=True, cache=True, fastmath=True)
def add_pulses(
    signal: np.ndarray, pe_time_ns: np.ndarray, pe_charge: np.ndarray, offset_ns: float, template: np.ndarray
) -> None:
    """Add one pulse per photoelectron to `signal` (float32, ADC, positive-going).

    pe_time_ns: PE times relative to `offset_ns`, which is the buffer index of time 0.
    pe_charge: ADC*ns per PE. template: (phases, taps) unit-area SPE shape at sub-sample phases.
    """
    n_phase, n_tap = template.shape
    length = signal.size
    for k in range(pe_time_ns.size):
        t = offset_ns + pe_time_ns[k]
        if t <= -n_tap or t >= length:
            continue
        i0 = int(np.floor(t))
        phase = int((t - i0) * n_phase)
        q = pe_charge[k]
        m0 = 0 if i0 >= 0 else -i0
        m1 = n_tap if i0 + n_tap <= length else length - i0
        for m in range(m0, m1):
            signal[i0 + m] += q * template[phase, m]


@numba.njit(nogil=True, cache=True)
def find_crossing(
    signal: np.ndarray,
    noise: np.ndarray,
    baseline_adc: float,
    noise_rms_adc: float,
    threshold_adc: int,
    falling: bool,
    start: int,
    stop: int,
) -> int:
    """Return the first sample in [start, stop) whose digitised value crosses the threshold, or -1.

    The input is baseline + noise - signal (negative PMT pulses); falling: value <= threshold,
    rising: value >= threshold.
    """
    for i in range(start, stop):
        v = np.floor(baseline_adc + noise_rms_adc * noise[i] - signal[i] + 0.5)
        if v < 0.0:
            v = 0.0
        elif v > ADC_MAX:
            v = ADC_MAX
        if falling:
            if v <= threshold_adc:
                return i
        elif v >= threshold_adc:
            return i
    return -1


@numba.njit(nogil=True, cache=True)
def digitise(
    out: np.ndarray,
    signal: np.ndarray,
    noise: np.ndarray,
    start: int,
    baseline_adc: float,
    noise_rms_adc: float,
    uncalibrated_adc: float,
) -> None:
    """Write round(baseline + noise - signal) clipped to 0..1023 for samples start..start+len(out).

    uncalibrated_adc: amplitude of the even/odd pattern an x751 shows before CALIBRATEADC (0 after it).
    """
    for j in range(out.size):
        v = baseline_adc + noise_rms_adc * noise[start + j] - signal[start + j]
        if uncalibrated_adc != 0.0:
            v += uncalibrated_adc if (j & 1) else -uncalibrated_adc
        r = np.floor(v + 0.5)
        if r < 0.0:
            r = 0.0
        elif r > ADC_MAX:
            r = ADC_MAX
        out[j] = np.uint16(r)


@numba.njit(nogil=True, cache=True)
def high_pass(signal: np.ndarray, tau_ns: float) -> None:
    """Apply a first-order RC high-pass (AC coupling) of time constant tau_ns in place.

    A pulse of charge Q is followed by an undershoot of area -Q decaying with tau_ns. Light from
    before the buffer (more than the simulator's 12 us look-back) does not contribute its undershoot.
    """
    a = np.exp(-1.0 / tau_ns)
    low = 0.0
    for i in range(signal.size):
        low = a * low + (1.0 - a) * signal[i]
        signal[i] -= low


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel now, not while the board's clock is running."""
    signal = np.zeros(64, np.float32)
    noise = np.zeros(64, np.float32)
    template = np.ones((2, 4), np.float32) / 4
    add_pulses(signal, np.zeros(1, np.float32), np.ones(1, np.float32), 1.0, template)
    find_crossing(signal, noise, 900.0, 0.6, 870, True, 0, 64)
    digitise(np.zeros(64, np.uint16), signal, noise, 0, 900.0, 0.6, 0.0)
    high_pass(signal, 1000.0)
