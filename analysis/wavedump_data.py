"""CAEN WaveDump output as input of the offline analysis: read in chunks, pulse-analysed with the numba kernel.

Regions default to the paper's proportions of the record: the baseline ends at 7/8 of the part before
the trigger and the signal region runs from there to the end (an 8000-sample record with the trigger
at 1600 gives the paper's 0-1400 / 1400-8000). The trigger position is measured on the data (the
median position of each event's largest excursion): WaveDump moves it (its relative-threshold setup
sets 50 % post-trigger), so POST_TRIGGER of the config is not trusted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.pulses import PulseSettings, analyse_batch
from analysis.run_data import (
    DataError,
    EventData,
    PulseOverrides,
    apply_overrides,
    concat_results,
    event_data_from_results,
)
from analysis.wavedump import CONFIG_FILE_NAME, iter_wavedump


def is_wavedump(path: Path) -> bool:
    """A wave*.dat / wave*.txt file, or a folder holding WaveDumpConfig.txt or such files."""
    if path.is_dir():
        return (
            (path / CONFIG_FILE_NAME).exists() or any(path.glob("wave*.dat")) or any(path.glob("wave*.txt"))
        )
    return path.name.lower().startswith("wave") and path.suffix.lower() in (".dat", ".txt")


def _excursions(waveforms: NDArray[np.integer]) -> NDArray[np.float64]:
    """Each record minus the median of its first 5 % (a rough baseline before any region is known)."""
    w = waveforms.astype(np.float64)
    return w - np.median(w[:, : max(w.shape[1] // 20, 1)], axis=1)[:, None]


def trigger_position(waveforms: NDArray[np.integer], polarity: int) -> int:
    """The median sample of each record's largest excursion in the pulse direction."""
    return int(np.median(np.argmax(polarity * _excursions(waveforms), axis=1)))


def data_polarity(waveforms: NDArray[np.integer]) -> int:
    """+1 if the records' excursions go up more than down, else -1."""
    x = _excursions(waveforms)
    return 1 if np.median(x.max(axis=1)) > np.median((-x).max(axis=1)) else -1


def default_regions(n_samples: int, trigger_sample: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(baseline, signal) sample regions for a record of n_samples with the trigger at trigger_sample."""
    stop = min(max(int(round(0.875 * trigger_sample)), 2), n_samples - 1)
    return (0, stop), (stop, n_samples)


def load_wavedump(
    path: Path, overrides: PulseOverrides | None = None, channel: int | None = None,
    record_length: int | None = None,
) -> EventData:  # fmt: skip
    """Read a WaveDump run (file or folder), analyse the pulses of one channel chunk by chunk."""
    overrides = overrides or PulseOverrides()
    parts, notes = [], []
    settings: PulseSettings | None = None
    col = 0
    n_samples = 0
    chans: tuple[int, ...] = ()
    times: list[NDArray[np.uint64]] = []
    for chunk in iter_wavedump(path, record_length=record_length):
        notes += [t.message for t in chunk.truncations]
        notes += [f"channel {ch}: {m.size} events missing, dropped" for ch, m in chunk.missing_events.items()]
        if len(chunk) == 0:
            continue
        if settings is None:
            chans = chunk.channels
            ch = chans[0] if channel is None else channel
            if ch not in chans:
                raise DataError(f"{path}: channel {ch} is not in the WaveDump data (channels {list(chans)})")
            col = chans.index(ch)
            n_samples = chunk.n_samples
            cfg = chunk.config
            first = chunk.waveforms[:, col, :]
            if overrides.polarity is not None:
                polarity = overrides.polarity
            elif cfg is not None and (cfg.value("PULSE_POLARITY", ch) or cfg.value("TRIGGER_EDGE", ch)):
                polarity = -1 if chunk.pulse_polarity.get(ch) == "negative" else 1
            else:
                polarity = data_polarity(first)
                notes.append(f"polarity {'positive' if polarity > 0 else 'negative'}: from the data (no "
                             "PULSE_POLARITY in the config)")  # fmt: skip
            trigger = trigger_position(first, polarity)
            bl, sg = default_regions(n_samples, trigger)
            base = PulseSettings(baseline_start=bl[0], baseline_stop=bl[1], signal_start=sg[0],
                                 signal_stop=sg[1], count_boundaries=False, polarity=polarity)  # fmt: skip
            settings = apply_overrides(base, overrides)
            try:
                settings.checked(n_samples)
            except ValueError as exc:
                raise DataError(
                    f"{path}: {exc} (records of {n_samples} samples); set --baseline/--signal"
                ) from None
        if chunk.n_samples != n_samples:
            raise DataError(
                f"{path}: the record length changes from {n_samples} to {chunk.n_samples} samples inside the "
                "data; analyse the parts separately"
            )
        parts.append(analyse_batch(chunk.waveforms[:, col, :], settings))
        times.append(chunk.timestamp_ns)
    if settings is None:
        raise DataError(f"{path}: no complete event in the WaveDump data")
    res = concat_results(parts)
    ch = chans[col]
    return event_data_from_results(
        res, source=path, kind="WaveDump", channel=ch, pulse=settings, record_length=n_samples,
        waveform_chunks=_wavedump_waveforms(path, col, record_length), notes=notes,
        temperature_note="not recorded in WaveDump data", started_at=_modified_at(path),
    )  # fmt: skip


def _modified_at(path: Path) -> str:
    """When the WaveDump data were written (the newest data file's modification time, UTC, ISO 8601)."""
    files = [path] if path.is_file() else sorted(path.glob("wave*.*"))
    if not files:
        return ""
    newest = max(f.stat().st_mtime for f in files)
    return datetime.fromtimestamp(newest, tz=UTC).isoformat(timespec="seconds")


def _wavedump_waveforms(path: Path, col: int, record_length: int | None):  # noqa: ANN202 - WaveformChunks
    def chunks(selected: NDArray[np.bool_]) -> Iterator[tuple[NDArray[np.int16], NDArray[np.int64]]]:
        first = 0
        for chunk in iter_wavedump(path, record_length=record_length):
            n = len(chunk)
            pick = selected[first : first + n]
            if n and pick.any():
                yield chunk.waveforms[pick, col, :], np.flatnonzero(pick) + first
            first += n

    return chunks
