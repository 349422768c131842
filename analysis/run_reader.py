"""Read one run file for interactive work (`analysis.open_run`): arrays, peaks, histograms, series, metadata.

Per-event arrays, peaks, histograms and slow series are read on first use and kept; waveforms are read
only for the events asked for (`run.waveforms[i:j]`). `event_chunks` streams everything in bounded
memory for exporters. A file still being written (or killed mid-run) is read up to its shortest
per-event dataset, like `daq info`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import yaml
from numpy.typing import NDArray

from analysis import run_schema as schema
from analysis.run_file_open import UnreadableRunFile, open_for_reading

if TYPE_CHECKING:
    import awkward as ak

EVENT_COLUMNS = tuple(spec.name for spec in schema.EVENT_DATASETS if spec is not schema.WAVEFORM)
PEAK_COLUMNS = tuple(spec.name for spec in schema.PEAK_DATASETS)  # q, t_start_ns, t_end_ns
HISTOGRAMS = tuple(schema.HISTOGRAM_UNITS)  # spe, npe, baseline_rms


@dataclass(frozen=True)
class RunHistogram:
    """One of the run's live histograms as written at its end: counts per bin, edges, out-of-range counts."""

    counts: NDArray[np.int64]
    edges: NDArray[np.float64]
    underflow: int
    overflow: int
    unit: str

    @property
    def centres(self) -> NDArray[np.float64]:
        return 0.5 * (self.edges[1:] + self.edges[:-1])


@dataclass(frozen=True)
class Peaks:
    """The peaks of one channel: event i's are `q[offsets[i]:offsets[i + 1]]` (and the same for TS, TE)."""

    offsets: NDArray[np.int64]  # (N + 1,)
    q: NDArray[np.float32]  # PeakQ, ADC*ns
    t_start_ns: NDArray[np.int32]  # TS, sample index = ns at 1 GS/s
    t_end_ns: NDArray[np.int32]  # TE

    @property
    def counts(self) -> NDArray[np.int64]:
        """Peaks per event."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def of_event(self, i: int) -> dict[str, NDArray[Any]]:
        """PeakQ, TS and TE of event `i` (0 <= i < number of events)."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {"q": self.q[a:b], "t_start_ns": self.t_start_ns[a:b], "t_end_ns": self.t_end_ns[a:b]}

    def to_awkward(self) -> ak.Array:
        """An awkward array of N lists of {q, t_start_ns, t_end_ns} records (no copy of the values)."""
        import awkward as ak

        contents = [ak.contents.NumpyArray(a) for a in (self.q, self.t_start_ns, self.t_end_ns)]
        records = ak.contents.RecordArray(contents, list(PEAK_COLUMNS))
        return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(self.offsets), records))


@dataclass(frozen=True)
class EventChunk:
    """Events [start, stop) of a run: per-event columns (n, ...) and each channel's peaks."""

    start: int
    stop: int
    columns: dict[str, NDArray[Any]]  # EVENT_COLUMNS, and "waveform" (n, C, S) int16 when asked for
    peaks: list[Peaks]  # one per channel, in the order of Run.channels


class Waveforms:
    """The raw waveforms (N, C, S) int16, read from the file only for the events indexed."""

    def __init__(self, dataset: h5py.Dataset, n_events: int) -> None:
        self._ds = dataset
        self.shape: tuple[int, int, int] = (n_events, *dataset.shape[1:])
        self.dtype = dataset.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> NDArray[np.int16]:
        """Read `run.waveforms[i]`, `[i:j]`, `[i:j, channel]`, ...; a slice past the events is cut to them."""
        first = index[0] if isinstance(index, tuple) else index
        rest = index[1:] if isinstance(index, tuple) else ()
        n = self.shape[0]
        if isinstance(first, slice) and first.indices(n)[2] == 1:
            start, stop, _ = first.indices(n)
            return self._ds[(slice(start, max(start, stop)), *rest)]
        if isinstance(first, slice):  # a stepped slice: read as an index list
            first = np.arange(*first.indices(n))
        elif np.ndim(first) == 0:
            i = int(first)
            if not -n <= i < n:
                raise IndexError(f"event {i} is out of range: the run holds {n} events")
            return self._ds[(i % n, *rest)]
        wanted = np.asarray(first)
        if wanted.dtype == bool:
            wanted = np.flatnonzero(wanted[:n])
        if wanted.size and (wanted.max() >= n or wanted.min() < -n):
            raise IndexError(
                f"events {wanted.min()}..{wanted.max()} are out of range: the run holds {n} events"
            )
        order, inverse = np.unique(wanted % n if n else wanted, return_inverse=True)  # h5py wants increasing
        return self._ds[(order, *rest)][inverse] if order.size else self._ds[(slice(0, 0), *rest)]

    def chunks(self, chunk_events: int = 1024) -> Iterator[tuple[int, NDArray[np.int16]]]:
        """Yield (first event, waveforms of `chunk_events` events) over the whole run."""
        for a in range(0, self.shape[0], chunk_events):
            yield a, self._ds[a : min(a + chunk_events, self.shape[0])]


class Run:
    """An open run file. Use as a context manager, or call close(); arrays read before stay valid."""

    def __init__(self, f: h5py.File, path: Path) -> None:
        self._f = f
        self.path = path
        self.format_version: int = schema.format_version(f)
        self.channels: list[int] = schema.event_channels(f)
        self.n_events: int = schema.events_recorded(f)
        self.waveforms = Waveforms(f[schema.WAVEFORM.path], self.n_events)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def __repr__(self) -> str:
        return f"<Run {self.run_number} {self.path.name}: {self.n_events} events, channels {self.channels}>"

    # metadata -------------------------------------------------------------------------------------------
    @cached_property
    def attrs(self) -> dict[str, Any]:
        """The root attributes (run_number, started_at, complete, comment, ...) as Python values."""
        return _plain(self._f.attrs)

    @property
    def run_number(self) -> int | None:
        return int(self.attrs["run_number"]) if "run_number" in self.attrs else None

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete", False))

    @property
    def config_yaml(self) -> str:
        return str(self.attrs.get("config_yaml", ""))

    @cached_property
    def config(self) -> dict[str, Any]:
        """The validated configuration the run used, as a nested dict (empty if the file has none)."""
        return yaml.safe_load(self.config_yaml) or {}

    @cached_property
    def metadata(self) -> dict[str, dict[str, Any]]:
        """Every group's attributes: "digitizer", "counters", "events", "histograms", ... ("/" is attrs)."""
        out = {"/": self.attrs}
        for name, item in self._f.items():
            if isinstance(item, h5py.Group) and len(item.attrs):
                out[name] = _plain(item.attrs)
        return out

    @cached_property
    def provenance(self) -> dict[str, Any] | None:
        """Which code, libraries, host and command made the file, or None for files older than that record."""
        if schema.PROVENANCE not in self._f:
            return None
        return _plain(self._f[schema.PROVENANCE].attrs)

    # per-event data ------------------------------------------------------------------------------------
    @cached_property
    def events(self) -> dict[str, NDArray[Any]]:
        """Per-event arrays, first axis the event: timestamp_ns, trigger_id (N,); the others (N, channels)."""
        ev = self._f[schema.EVENTS]
        return {name: ev[name][: self.n_events] for name in EVENT_COLUMNS if name in ev}

    def peaks(self, channel: int | None = None, awkward: bool = False) -> Peaks | ak.Array:
        """The peaks of board channel `channel` (default: the first recorded) as offsets + values.

        With awkward=True, an awkward array of per-event lists of {q, t_start_ns, t_end_ns}.
        Raises ValueError for a channel the run did not record, UnreadableRunFile if /peaks is short.
        """
        col = self._column(channel)
        n_peaks, offsets = self.events["n_peaks"], self.events["peak_offset"]
        peaks = self._gather_peaks(n_peaks, offsets, [col])[0]
        return peaks.to_awkward() if awkward else peaks

    def event_chunks(self, chunk_events: int = 10_000, waveforms: bool = False) -> Iterator[EventChunk]:
        """Yield the run in chunks of `chunk_events` events: columns and peaks (and waveforms if asked)."""
        ev = self._f[schema.EVENTS]
        for a in range(0, self.n_events, chunk_events):
            b = min(a + chunk_events, self.n_events)
            cols = {name: ev[name][a:b] for name in EVENT_COLUMNS if name in ev}
            if waveforms:
                cols["waveform"] = ev["waveform"][a:b]
            peaks = self._gather_peaks(cols["n_peaks"], cols["peak_offset"], range(len(self.channels)))
            yield EventChunk(a, b, cols, peaks)

    # whole-run summaries -------------------------------------------------------------------------------
    @cached_property
    def histograms(self) -> dict[str, RunHistogram]:
        """The SPE, NPE and baseline-rms histograms at the end of the run (empty for a killed run)."""
        out: dict[str, RunHistogram] = {}
        for name in HISTOGRAMS:
            g = schema.histogram_group(self._f, name)
            if g is not None:
                out[name] = RunHistogram(
                    counts=g["counts"][()], edges=g["edges"][()], underflow=int(g.attrs.get("underflow", 0)),
                    overflow=int(g.attrs.get("overflow", 0)), unit=schema.units_of(g) or schema.HISTOGRAM_UNITS[name],
                )  # fmt: skip
        return out

    @cached_property
    def slow(self) -> dict[str, NDArray[np.void]]:
        """The slow-control series as structured arrays: "temperature", "hv" (only those recorded)."""
        out = {}
        for spec in schema.SLOW_DATASETS:
            ds = schema.slow_dataset(self._f, spec.name)
            if ds is not None:
                out[spec.name] = ds[()]
        return out

    @cached_property
    def log(self) -> NDArray[np.void]:
        """The run's log (time_s, message): interlocks, pauses, resumes."""
        ds = schema.log_dataset(self._f)
        return ds[()] if ds is not None else np.zeros(0, schema.LOG_DTYPE)

    # helpers -------------------------------------------------------------------------------------------
    def _column(self, channel: int | None) -> int:
        ch = self.channels[0] if channel is None else channel
        if ch not in self.channels:
            raise ValueError(f"{self.path}: channel {ch} was not recorded (channels {self.channels})")
        return self.channels.index(ch)

    def _gather_peaks(
        self, n_peaks: NDArray[np.integer], peak_offset: NDArray[np.integer], columns: Any
    ) -> list[Peaks]:
        counts = np.atleast_2d(n_peaks.astype(np.int64).T).T  # (n, C), also for one column given as (n,)
        starts = np.atleast_2d(peak_offset.astype(np.int64).T).T
        lo = int(starts.min()) if starts.size else 0
        hi = int((starts + counts).max()) if starts.size else 0
        group = self._f[schema.PEAKS]
        available = min(group[name].shape[0] for name in PEAK_COLUMNS)
        if hi > available:
            raise UnreadableRunFile(
                f"{self.path}: /peaks holds {available} peaks but /events refers to {hi}: the file is damaged"
            )
        values = {name: group[name][lo:hi] for name in PEAK_COLUMNS}
        out = []
        for col in columns:
            c = counts[:, col]
            offsets = np.concatenate(([0], np.cumsum(c)))
            within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], c)
            idx = np.repeat(starts[:, col] - lo, c) + within
            out.append(Peaks(offsets, *(values[name][idx] for name in PEAK_COLUMNS)))
        return out


def open_run(path: str | Path) -> Run:
    """Open the run file at `path` for reading (complete, killed, or still being written).

    Raises UnreadableRunFile (an OSError, one line naming the file) for a missing, empty, foreign,
    truncated or damaged file, or an HDF5 file that is not a run file.
    """
    p = Path(path)
    f = open_for_reading(p)
    try:
        if not schema.is_run_file(f) or schema.PEAKS not in f:
            found = ", ".join(f"/{name}" for name in list(f)[:5]) or "nothing"
            raise UnreadableRunFile(
                f"{p}: an HDF5 file but not a run file of this program (no /events with waveforms, /digitizer "
                f"or /peaks; it holds {found})"
            )
        return Run(f, p)
    except BaseException:
        f.close()
        raise


def _plain(attrs: h5py.AttributeManager) -> dict[str, Any]:
    return {key: _value(attrs[key]) for key in sorted(attrs)}


def _value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [_value(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v
