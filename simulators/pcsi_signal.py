"""The simulated input of the DT5751: CsI interactions in time, their photoelectrons, and the records they trigger.

PHYSICS.md 2.1: Poisson arrivals; per interaction a deposit, a Poisson number of PEs around
LY(T) * E with an intrinsic spread, scintillation delays plus TTS, R11065 charges and pulse
shape; pile-up from neighbouring interactions, dark counts, baseline noise, 10-bit digitisation
and the self-trigger on the first sample beyond the absolute threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulators.am241_source import GAMMA_59_KEV, Am241Source
from simulators.csi_crystal import decay_components, light_yield_scale
from simulators.normal_kernels import FN, KN, WN, fill_normal, new_state
from simulators.normal_kernels import warm_up as warm_up_noise
from simulators.physics_settings import PhysicsSettings
from simulators.r11065_pmt import R11065
from simulators.waveform_kernels import add_pulses, digitise, find_crossing, high_pass, warm_up

SEARCH_NS = 512  # how long after an interaction its light may first cross the threshold
T0_MARGIN_NS = 16  # room before the interaction time for PEs drawn early by the TTS
TAIL_NS = 12_000.0  # how far back an earlier interaction's light is still drawn into a record
CHUNK = 256  # interactions generated at a time
UNCALIBRATED_PATTERN_ADC = 4.0


@dataclass(frozen=True)
class BoardSetup:
    """What the board's settings mean for the signal: record geometry, channels, levels."""

    record_length: int
    pre_trigger: int
    enabled: tuple[bool, ...]
    baseline_adc: tuple[float, ...]
    threshold_adc: tuple[int | None, ...]  # None: the channel does not make the global trigger
    falling: bool
    calibrated: bool


@dataclass
class Record:
    """One triggered record with the truth of the interaction that made it (process -1: software trigger)."""

    waveform: (
        np.ndarray | None
    )  # (channels, samples) uint16, rows of disabled channels meaningless; None: dropped
    time_ns: float  # stream time of the trigger sample
    energy_kev: float
    process: int
    n_pe: int


class PcsiSignal:
    """A reproducible stream of interactions and the records a DT5751 would take of them."""

    def __init__(self, settings: PhysicsSettings, temperature_k: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self._temperature_k = temperature_k or (lambda: settings.temperature_k)
        warm_up()  # compile the kernels before any board time runs
        warm_up_noise()
        self.rng = np.random.Generator(np.random.SFC64(settings.seed))
        self._noise_state = new_state(self.rng)  # the baseline noise's own fast generator
        self.source = Am241Source(settings)
        self.pmt = R11065(settings)
        self._mean_gap_ns = 1e9 / self.source.total_rate_hz
        self._time = np.zeros(0)
        self._energy = np.zeros(0)
        self._process = np.zeros(0, dtype=np.int8)
        self._n_pe = np.zeros(0, dtype=np.int64)
        self._pe_start = np.zeros(1, dtype=np.int64)
        self._pe_t = np.zeros(0, dtype=np.float32)
        self._pe_q = np.zeros(0, dtype=np.float32)
        self._t_last_ns = 0.0
        self._next = 0
        self._lookback_ns = TAIL_NS + 10_000.0
        self._signal = np.zeros(0, dtype=np.float32)
        self._noise = np.zeros(0, dtype=np.float32)
        self.busy_until_ns = -np.inf
        self.exhausted = False  # the last next_triggered() stopped at its interaction budget
        self.interactions = 0
        self.subthreshold = 0
        self.piled_up = 0

    # ---- interactions ----

    def _draw_chunk(self) -> None:
        s, rng = self.settings, self.rng
        times = self._t_last_ns + np.cumsum(rng.exponential(self._mean_gap_ns, CHUNK))
        self._t_last_ns = float(times[-1])
        deposits = self.source.draw(rng, CHUNK)
        temperature_k = float(self._temperature_k())
        # light_yield_scale raises CrystalTemperatureError (a ValueError) outside 2.5-350 K
        ly = s.light_yield_pe_per_kev * light_yield_scale(temperature_k) * s.surface_factor * s.shape_factor
        energy = deposits.energy_kev
        if s.nonproportionality_per_decade:
            ly = ly * (1.0 + s.nonproportionality_per_decade * np.log10(energy / GAMMA_59_KEV))
        mean = ly * energy * (1.0 + s.sigma_intrinsic_rel * rng.standard_normal(CHUNK))
        n_pe = rng.poisson(np.clip(mean, 0.0, None) * self.pmt.pe_count_factor)
        total = int(n_pe.sum())
        taus, fractions = decay_components(temperature_k, s.decay_ns, s.decay_fraction)
        component = np.searchsorted(np.cumsum(fractions), rng.random(total, dtype=np.float32), side="right")
        component = np.minimum(component, taus.size - 1)
        t = rng.standard_exponential(total, dtype=np.float32) * taus.astype(np.float32)[component]
        if s.tts_sigma_ns > 0:
            t += rng.standard_normal(total, dtype=np.float32) * np.float32(s.tts_sigma_ns)
        q = self.pmt.charges(rng, total)
        counts = n_pe
        parent, t_ap, q_ap = self.pmt.afterpulses(rng, t)
        if parent.size:
            owner = np.repeat(np.arange(CHUNK), n_pe)
            order = np.argsort(np.concatenate([owner, owner[parent]]), kind="stable")
            t = np.concatenate([t, t_ap])[order]
            q = np.concatenate([q, q_ap])[order]
            counts = n_pe + np.bincount(owner[parent], minlength=CHUNK)
        self._append(times, deposits.energy_kev, deposits.process, n_pe, counts, t, q)
        self.interactions += CHUNK

    def _append(
        self,
        times: np.ndarray,
        energy: np.ndarray,
        process: np.ndarray,
        n_pe: np.ndarray,
        counts: np.ndarray,
        pe_t: np.ndarray,
        pe_q: np.ndarray,
    ) -> None:
        # forget interactions too old to reach any future record
        reference_ns = self._time[self._next] if self._next < self._time.size else times[0]
        keep = min(int(np.searchsorted(self._time, reference_ns - self._lookback_ns)), self._next)
        first_pe = self._pe_start[keep]
        self._time = np.concatenate([self._time[keep:], times])
        self._energy = np.concatenate([self._energy[keep:], energy])
        self._process = np.concatenate([self._process[keep:], process])
        self._n_pe = np.concatenate([self._n_pe[keep:], n_pe])
        old_starts = self._pe_start[keep:] - first_pe
        new_starts = old_starts[-1] + np.cumsum(counts)
        self._pe_start = np.concatenate([old_starts, new_starts])
        self._pe_t = np.concatenate([self._pe_t[first_pe:], pe_t])
        self._pe_q = np.concatenate([self._pe_q[first_pe:], pe_q])
        self._next -= keep

    def _ensure_time(self, t_ns: float) -> None:
        while self._time.size == 0 or self._time[-1] < t_ns:
            self._draw_chunk()

    def _ensure_next(self) -> None:
        while self._next >= self._time.size:
            self._draw_chunk()

    def next_arrival_ns(self) -> float:
        """Stream time of the next interaction not yet looked at."""
        self._ensure_next()
        return float(self._time[self._next])

    def skip_until(self, t_ns: float) -> None:
        """Let every interaction before `t_ns` pass without a record (the board is not acquiring)."""
        start_ns = t_ns - self._lookback_ns
        if start_ns > self._t_last_ns:  # a long gap: Poisson arrivals are memoryless, draw afresh near t_ns
            self._time = self._energy = np.zeros(0)
            self._process = np.zeros(0, dtype=np.int8)
            self._n_pe = np.zeros(0, dtype=np.int64)
            self._pe_start = np.zeros(1, dtype=np.int64)
            self._pe_t = self._pe_q = np.zeros(0, dtype=np.float32)
            self._next = 0
            self._t_last_ns = start_ns
        self._ensure_time(t_ns)
        self._next = max(self._next, int(np.searchsorted(self._time, t_ns)))

    # ---- records ----

    def _buffers(self, length: int, noisy: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A zeroed signal buffer and unit Gaussian noise over `noisy` (default: all) of `length` samples."""
        if self._signal.size < length:
            self._signal = np.zeros(length, dtype=np.float32)
            self._noise = np.zeros(length, dtype=np.float32)
        signal = self._signal[:length]
        signal[:] = 0.0
        noise = self._noise[:length]
        lo, hi = noisy or (0, length)
        fill_normal(noise[lo:hi], self._noise_state, KN, WN, FN)
        return signal, noise

    def _draw_light(self, signal: np.ndarray, origin_ns: float) -> None:
        """Add every interaction whose light reaches [origin, origin + len(signal)) and the dark counts."""
        lo = int(np.searchsorted(self._time, origin_ns - TAIL_NS))
        hi = int(np.searchsorted(self._time, origin_ns + signal.size))
        template = self.pmt.template
        for j in range(lo, hi):
            a, b = self._pe_start[j], self._pe_start[j + 1]
            add_pulses(signal, self._pe_t[a:b], self._pe_q[a:b], float(self._time[j] - origin_ns), template)
        self._draw_dark(signal)
        if self.settings.ac_coupling_tau_ns is not None:
            high_pass(signal, self.settings.ac_coupling_tau_ns)

    def _draw_dark(self, signal: np.ndarray) -> None:
        n = self.rng.poisson(self.settings.dark_rate_hz * signal.size * 1e-9)
        if n:
            t = self.rng.uniform(0.0, signal.size, n).astype(np.float32)
            add_pulses(signal, t, self.pmt.charges(self.rng, n), 0.0, self.pmt.template)

    def _other_channels(self, record: np.ndarray, setup: BoardSetup, skip: int) -> None:
        unc = 0.0 if setup.calibrated else UNCALIBRATED_PATTERN_ADC
        for ch, enabled in enumerate(setup.enabled):
            if not enabled or ch == skip:
                continue
            signal, noise = self._buffers(setup.record_length)
            if self.settings.channel_sources[ch] == "dark":
                self._draw_dark(signal)
            digitise(record[ch], signal, noise, 0, setup.baseline_adc[ch], self.settings.noise_rms_adc, unc)

    def next_triggered(
        self, setup: BoardSetup, t_limit_ns: float, max_interactions: int = 1 << 62, keep: bool = True
    ) -> Record | None:
        """Return the next self-triggered record with its trigger before `t_limit_ns`, or None.

        None means no trigger before `t_limit_ns`, or that `max_interactions` were examined without
        one (then `exhausted` is True). keep=False: the record will be dropped (board memory full),
        so only its trigger is found and nothing is digitised (waveform None).
        """
        self.exhausted = False
        ch = self.settings.crystal_channel
        if ch is None or not setup.enabled[ch] or setup.threshold_adc[ch] is None:
            if np.isfinite(t_limit_ns):
                self.skip_until(t_limit_ns)  # nothing the crystal does can trigger the board
            else:
                self.exhausted = True
            return None
        threshold = int(setup.threshold_adc[ch] or 0)
        length, pre = setup.record_length, setup.pre_trigger
        buffer_length = length + SEARCH_NS
        self._lookback_ns = TAIL_NS + pre + T0_MARGIN_NS
        unc = 0.0 if setup.calibrated else UNCALIBRATED_PATTERN_ADC
        for _ in range(max_interactions):
            self._ensure_next()
            t_a = float(self._time[self._next])
            if t_a > t_limit_ns:
                return None
            if t_a < self.busy_until_ns:
                self._next += 1
                self.piled_up += 1  # inside the record of an earlier trigger
                continue
            origin = t_a - (pre + T0_MARGIN_NS)
            self._ensure_time(origin + buffer_length)  # may forget old interactions: indices shift
            i = self._next
            self._next += 1
            signal, noise = self._buffers(
                buffer_length, (0, buffer_length) if keep else (pre, pre + SEARCH_NS)
            )
            self._draw_light(signal, origin)
            c = find_crossing(
                signal, noise, setup.baseline_adc[ch], self.settings.noise_rms_adc, threshold, setup.falling,
                pre, pre + SEARCH_NS,
            )  # fmt: skip
            if c < 0:
                self.subthreshold += 1
                continue
            t_trigger = origin + c
            self.busy_until_ns = t_trigger + (length - pre)
            truth = (float(self._energy[i]), int(self._process[i]), int(self._n_pe[i]))
            if not keep:
                return Record(None, t_trigger, *truth)
            record = np.zeros((len(setup.enabled), length), dtype=np.uint16)
            rms = self.settings.noise_rms_adc
            digitise(record[ch], signal, noise, c - pre, setup.baseline_adc[ch], rms, unc)
            self._other_channels(record, setup, ch)
            return Record(record, t_trigger, *truth)
        self.exhausted = True
        return None

    def software_record(self, setup: BoardSetup, t_ns: float) -> Record:
        """Return the record of a software trigger at stream time `t_ns` (whatever light is there)."""
        origin = t_ns - setup.pre_trigger
        self._ensure_time(origin + setup.record_length)
        record = np.zeros((len(setup.enabled), setup.record_length), dtype=np.uint16)
        ch = self.settings.crystal_channel
        unc = 0.0 if setup.calibrated else UNCALIBRATED_PATTERN_ADC
        if ch is not None and setup.enabled[ch]:
            signal, noise = self._buffers(setup.record_length)
            self._draw_light(signal, origin)
            digitise(record[ch], signal, noise, 0, setup.baseline_adc[ch], self.settings.noise_rms_adc, unc)
        self._other_channels(record, setup, -1 if ch is None else ch)
        return Record(record, t_ns, 0.0, -1, 0)
