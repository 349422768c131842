"""Per-event pulse results of one channel, from an HDF5 run file, for the offline analysis.

The online results in the file are used as they are when the requested pulse settings equal the
ones the run used; otherwise the waveforms are re-analysed chunk by chunk with the numba kernel.
Waveforms of selected events are streamed in chunks (bounded memory) for the decay average.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the bitshuffle/LZ4 filter for reading
import numpy as np
import yaml
from numpy.typing import NDArray

from analysis import run_schema as schema
from analysis.pulses import PulseResults, PulseSettings, analyse_batch
from analysis.run_file_open import UnreadableRunFile, one_line, open_for_reading

CHUNK_EVENTS = 2048
# given a mask over events, yield (waveforms (m, samples) of the selected events, their event indices)
WaveformChunks = Callable[[NDArray[np.bool_]], Iterator[tuple[NDArray[np.int16], NDArray[np.int64]]]]


class DataError(RuntimeError):
    """The input cannot be analysed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class PulseOverrides:
    """Analysis settings asked for on the command line; None keeps the run's own (or the paper's)."""

    baseline_samples: tuple[int, int] | None = None
    signal_samples: tuple[int, int] | None = None
    threshold_sigma: float | None = None
    peak_boundaries: str | None = None  # "excluded" | "counted"
    polarity: int | None = None  # -1 negative, +1 positive


@dataclass
class EventData:
    """The pulse results of one channel of one input, and how to get its waveforms."""

    source: Path
    kind: str  # "run file" or "WaveDump"
    channel: int
    pulse: PulseSettings
    total_q: NDArray[np.float64]  # the paper's TotalQ (sum of PeakQ), ADC*ns
    integral_q: NDArray[np.float64]  # the threshold-free charge of the signal region, ADC*ns
    baseline: NDArray[np.float32]
    baseline_rms: NDArray[np.float32]
    peak_q: NDArray[np.float32]
    peak_t_start: NDArray[np.int32]
    peak_t_end: NDArray[np.int32]
    peak_event: NDArray[np.int64]
    record_length: int
    waveform_chunks: WaveformChunks
    event_time_s: NDArray[np.float64] | None = None  # Unix time of each trigger, if known
    slow_time_s: NDArray[np.float64] | None = None  # the /slow/temperature series, if any
    slow_crystal_k: NDArray[np.float64] | None = None
    nominal_temperature_k: float | None = None
    temperature_note: str = ""
    notes: list[str] = field(default_factory=list)
    reanalysed: bool = False
    run_number: int | None = None  # the run file's number (None for WaveDump data)
    started_at: str = ""  # ISO 8601 start of the run (WaveDump: the data file's modification time)

    @property
    def n_events(self) -> int:
        return int(self.total_q.size)

    def peak_widths_summed(self) -> NDArray[np.int32]:
        """Samples summed in each PeakQ (TS..TE, minus the two boundaries when they are left out)."""
        w = self.peak_t_end - self.peak_t_start + 1
        return w if self.pulse.count_boundaries else np.maximum(w - 2, 1)

    def temperature_k(self) -> tuple[float | None, str]:
        """The crystal's mean temperature over the events, and where it comes from."""
        if self.slow_time_s is not None and self.slow_time_s.size and self.event_time_s is not None:
            t0, t1 = self.event_time_s[0], self.event_time_s[-1]
            inside = (self.slow_time_s >= t0 - 5.0) & (self.slow_time_s <= t1 + 5.0)
            if inside.any():
                return float(np.mean(self.slow_crystal_k[inside])), "crystal sensor (/slow/temperature)"
        return self.nominal_temperature_k, self.temperature_note

    def event_temperatures_k(self) -> NDArray[np.float64] | None:
        """The crystal temperature at each event's trigger (interpolated), or None without a series."""
        if self.slow_time_s is None or self.slow_time_s.size < 2 or self.event_time_s is None:
            return None
        return np.interp(self.event_time_s, self.slow_time_s, self.slow_crystal_k)


def peaks_of_channel(
    n_peaks: NDArray[np.integer], peak_offset: NDArray[np.integer]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(indices into the flat /peaks arrays, event of each) for per-event counts and offsets of one channel."""
    counts = n_peaks.astype(np.int64)
    event = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.repeat(peak_offset.astype(np.int64), counts)
    within = np.arange(event.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts + within, event


def _run_pulse_settings(cfg: dict, polarity: int) -> PulseSettings:
    """The settings the run's online analysis used (older files, without peak_boundaries, counted them)."""
    a = cfg.get("analysis", {}) or {}
    bl = a.get("baseline_samples", (0, 1400))
    sg = a.get("signal_samples", (1400, 8000))
    return PulseSettings(
        baseline_start=int(bl[0]), baseline_stop=int(bl[1]), signal_start=int(sg[0]), signal_stop=int(sg[1]),
        n_sigma=float(a.get("threshold_sigma", 5.0)), ddof=int(a.get("baseline_ddof", 0)),
        count_boundaries=a.get("peak_boundaries", "counted") == "counted", polarity=polarity,
    )  # fmt: skip


def apply_overrides(base: PulseSettings, o: PulseOverrides) -> PulseSettings:
    kw: dict[str, object] = {}
    if o.baseline_samples is not None:
        kw |= {"baseline_start": o.baseline_samples[0], "baseline_stop": o.baseline_samples[1]}
    if o.signal_samples is not None:
        kw |= {"signal_start": o.signal_samples[0], "signal_stop": o.signal_samples[1]}
    if o.threshold_sigma is not None:
        kw["n_sigma"] = o.threshold_sigma
    if o.peak_boundaries is not None:
        kw["count_boundaries"] = o.peak_boundaries == "counted"
    if o.polarity is not None:
        kw["polarity"] = o.polarity
    return PulseSettings(**{**base.__dict__, **kw})


def concat_results(parts: list[PulseResults]) -> PulseResults:
    """Join per-chunk results into one (peak offsets made global)."""
    if not parts:
        e32, e64 = np.zeros(0, np.float32), np.zeros(0, np.int64)
        return PulseResults(e32, e32, e32, np.zeros(0, np.int32), e64, e32, np.zeros(0, np.int32),
                            np.zeros(0, np.int32), e32)  # fmt: skip
    shift = np.cumsum([0] + [p.q.size for p in parts[:-1]])
    return PulseResults(
        baseline=np.concatenate([p.baseline for p in parts]),
        baseline_rms=np.concatenate([p.baseline_rms for p in parts]),
        total_q=np.concatenate([p.total_q for p in parts]),
        n_peaks=np.concatenate([p.n_peaks for p in parts]),
        peak_offset=np.concatenate([p.peak_offset + s for p, s in zip(parts, shift, strict=True)]),
        q=np.concatenate([p.q for p in parts]),
        t_start=np.concatenate([p.t_start for p in parts]),
        t_end=np.concatenate([p.t_end for p in parts]),
        integral_q=np.concatenate([p.integral_q for p in parts]),
    )


def event_data_from_results(res: PulseResults, **fields: object) -> EventData:
    """EventData from whole-input pulse results (WaveDump input, re-analysed runs)."""
    idx, event = peaks_of_channel(res.n_peaks, res.peak_offset)
    return EventData(
        total_q=res.total_q.astype(np.float64), integral_q=res.integral_q.astype(np.float64),
        baseline=res.baseline, baseline_rms=res.baseline_rms,
        peak_q=res.q[idx], peak_t_start=res.t_start[idx], peak_t_end=res.t_end[idx], peak_event=event,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def load_run_file(
    path: Path, overrides: PulseOverrides = PulseOverrides(), channel: int | None = None
) -> EventData:
    """Read one channel of a run file (complete, killed, or still being written)."""
    overrides = overrides or PulseOverrides()
    try:
        f = open_for_reading(path)
    except UnreadableRunFile as exc:
        raise DataError(str(exc)) from None
    try:
        return _load(f, path, overrides, channel)
    except (OSError, RuntimeError, KeyError, TypeError) as exc:  # h5py's errors of a damaged file
        raise DataError(f"{path}: damaged run file, cannot be read ({one_line(exc)})") from None


def _load(f: h5py.File, path: Path, overrides: PulseOverrides, channel: int | None) -> EventData:
    with f:
        if schema.EVENTS not in f or schema.PEAKS not in f:
            raise DataError(f"{path}: an HDF5 file but not a run file of this program (no /events or /peaks)")
        ev = f[schema.EVENTS]
        channels = schema.event_channels(f)
        ch = channels[0] if channel is None else channel
        if ch not in channels:
            raise DataError(f"{path}: channel {ch} was not recorded (channels {channels}); use --channel")
        col = channels.index(ch)
        n = schema.events_recorded(
            f, ("waveform", "total_q", "integral_q", "n_peaks", "peak_offset", "timestamp_ns")
        )
        if n == 0:
            raise DataError(f"{path}: the run file holds no events")
        try:
            cfg = yaml.safe_load(f.attrs["config_yaml"]) or {}
        except (KeyError, yaml.YAMLError):
            cfg = {}
        polarity = -1 if (cfg.get("digitizer", {}) or {}).get("polarity", "negative") == "negative" else 1
        online = _run_pulse_settings(cfg, polarity)
        pulse = apply_overrides(online, overrides)
        record_length = int(ev["waveform"].shape[2])
        pulse.checked(record_length)
        notes = [] if f.attrs.get("complete", False) else [f"{path.name}: the run file is not complete "
                                                          f"(killed or still running); {n} events read"]  # fmt: skip
        started = datetime.fromisoformat(str(f.attrs["started_at"])).timestamp()
        event_time = started + ev["timestamp_ns"][:n].astype(np.float64) * 1e-9
        slow_t = slow_k = None
        temperature = schema.slow_dataset(f, "temperature")
        if temperature is not None and temperature.shape[0]:
            series = temperature[:]
            slow_t, slow_k = series["time_s"].astype(np.float64), series["crystal_k"].astype(np.float64)
        sim = cfg.get("simulation", {}) or {}
        digitizer_url = str((cfg.get("digitizer", {}) or {}).get("url", ""))
        nominal = (
            float(sim["temperature_k"])
            if digitizer_url.startswith("sim://") and "temperature_k" in sim
            else None
        )
        common = dict(
            source=path, kind="run file", channel=ch, pulse=pulse, record_length=record_length,
            waveform_chunks=_run_waveforms(path, col, n), event_time_s=event_time, slow_time_s=slow_t,
            slow_crystal_k=slow_k, nominal_temperature_k=nominal,
            temperature_note="the simulated crystal's temperature (config)" if nominal is not None else "",
            notes=notes, run_number=int(f.attrs["run_number"]) if "run_number" in f.attrs else None,
            started_at=str(f.attrs["started_at"]),
        )  # fmt: skip
        if pulse == online and "integral_q" not in ev:
            notes.append(
                f"{path.name}: written before /events/integral_q existed; computed from the waveforms"
            )
        if pulse == online and "integral_q" in ev:
            po = ev["peak_offset"][:n, col]
            npk = ev["n_peaks"][:n, col]
            idx, event = peaks_of_channel(npk, po)
            q_all, ts_all, te_all = (
                schema.peaks_dataset(f, name) for name in ("q", "t_start_ns", "t_end_ns")
            )
            last = int(idx.max()) + 1 if idx.size else 0
            if last > q_all.shape[0]:
                raise DataError(f"{path}: /peaks is shorter than /events says ({q_all.shape[0]} < {last})")
            return EventData(
                total_q=ev["total_q"][:n, col].astype(np.float64),
                integral_q=ev["integral_q"][:n, col].astype(np.float64), baseline=ev["baseline"][:n, col],
                baseline_rms=ev["baseline_rms"][:n, col], peak_q=q_all[:last][idx],
                peak_t_start=ts_all[:last][idx], peak_t_end=te_all[:last][idx], peak_event=event, **common,
            )  # fmt: skip
        parts = []
        wf = ev["waveform"]
        for a in range(0, n, CHUNK_EVENTS):
            parts.append(analyse_batch(wf[a : min(a + CHUNK_EVENTS, n), col, :], pulse))
        data = event_data_from_results(concat_results(parts), **common)
        data.reanalysed = True
        return data


def _run_waveforms(path: Path, col: int, n: int) -> WaveformChunks:
    def chunks(selected: NDArray[np.bool_]) -> Iterator[tuple[NDArray[np.int16], NDArray[np.int64]]]:
        with open_for_reading(path) as f:
            wf = schema.events_dataset(f, "waveform")
            for a in range(0, n, CHUNK_EVENTS):
                b = min(a + CHUNK_EVENTS, n)
                pick = selected[a:b]
                if pick.any():
                    yield wf[a:b, col, :][pick], np.flatnonzero(pick) + a

    return chunks
