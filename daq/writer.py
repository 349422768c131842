"""The HDF5 run file: numbered, never overwritten, chunked and compressed, SWMR, `complete` written last.

Layout (analysis/run_schema.py, docs/run_file.md): root attributes, /digitizer and /provenance attributes,
/events/* (N, ...) per event, /peaks/* flat with /events/peak_offset, /slow, /log, and at the end
/histograms/* and /counters. Only the writer thread uses a RunFileWriter.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from analysis import provenance
from analysis import run_schema as schema
from analysis.histograms import HistogramSnapshot
from analysis.pulses import PulseResults
from daq.config import WriterSection
from daq.disk_space import DiskFullError, SpaceReserve, check_free_space, free_text
from drivers import EffectiveSettings, EventBatch

log = logging.getLogger(__name__)

FORMAT_VERSION = schema.FORMAT_VERSION
_RUN_FILE = re.compile(r"^run_(\d{6,})\.h5$")
TEMPERATURE_DTYPE, HV_DTYPE, LOG_DTYPE = schema.TEMPERATURE_DTYPE, schema.HV_DTYPE, schema.LOG_DTYPE


@dataclass(frozen=True)
class ReplayOrigin:
    """What a replay's run file records of its origin: the source, and the replay's timeline origin.

    started_at_unix_s: the new file's started_at, the moment its board time 0 stands for; the replay's
    slow-control readings are stamped on the same timeline, so events and readings stay aligned.
    """

    source: Path
    started_at_unix_s: float


class RunFileWriteError(OSError):
    """HDF5 could not write the run file (disk full, I/O error); the message says what the file still holds."""

    reason: str = ""  # the cause alone (errno text), for later messages


_H5_ERRORS = (OSError, RuntimeError, ValueError)  # what h5py raises when a write fails


@dataclass
class RunSummary:
    """What the writer records when a run ends."""

    stop_reason: str
    complete: bool
    counters: dict[str, int] = field(default_factory=dict)
    histograms: HistogramSnapshot | None = None


def software_version() -> str:
    """This program's version, from git in a checkout (analysis.provenance)."""
    return provenance.software_version()


def run_file_path(output_dir: str | Path, number: int) -> Path:
    return Path(output_dir) / f"run_{number:06d}.h5"


def next_run_number(output_dir: str | Path) -> int:
    """The number the next automatic run file of `output_dir` gets: one above the highest there."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return 1
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := _RUN_FILE.match(p.name))]
    return max(numbers, default=0) + 1


class RunNumberTaken(FileExistsError):
    """The chosen run number has a file already (run files are never overwritten)."""


def create_run_file(output_dir: str | Path, number: int | None = None) -> tuple[Path, int, h5py.File]:
    """Create run file `run_NNNNNN.h5` in `output_dir`, never overwriting one.

    number: this run number (refused with RunNumberTaken if its file exists); None: the next free one.
    """
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if number is not None:
        path = run_file_path(directory, number)
        if not _claim(path):
            raise RunNumberTaken(
                f"run {number} exists already ({path}): choose another run.run_number, or none for the next free"
            )
        return path, number, h5py.File(path, "w", libver=schema.LIBVER_BOUNDS)
    number = next_run_number(directory)
    for _ in range(1000):
        path = run_file_path(directory, number)
        if _claim(path):
            return path, number, h5py.File(path, "w", libver=schema.LIBVER_BOUNDS)
        number += 1
    raise OSError(f"no free run number in {directory} after {number}")


def _claim(path: Path) -> bool:
    """Create `path` empty if it does not exist, atomically (O_EXCL); False if it exists."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def compression_options(kind: str) -> dict[str, object]:
    """The waveforms' filter for writer.compression = kind (the other datasets: schema.filter_options)."""
    return schema.filter_options(schema.WAVEFORM, kind)


class RunFileWriter:
    """Append event batches with their pulse results to one run file."""

    def __init__(
        self,
        output_dir: str | Path,
        config_yaml: str,
        effective: EffectiveSettings,
        settings: WriterSection,
        comment: str = "",
        replay: ReplayOrigin | None = None,
        run_number: int | None = None,
    ) -> None:
        """replay: a replay's source, named in the attribute `replay_source` (and linked as /replay_source when
        it is a run file), and its timeline origin (started_at)."""
        self.path, self.run_number, self._file = create_run_file(output_dir, run_number)
        try:
            self._reserve = SpaceReserve(self.path)
        except DiskFullError:
            self._file.close()
            raise
        self._settings = settings
        self._channels = effective.enabled_channels
        self.n_events = 0
        self.n_peaks = 0
        self.bytes_raw = 0
        self._last_flush = time.monotonic()
        self._failed = False  # a write failed: HDF5's cache holds data that cannot reach the disk
        self._flushed_rows: dict[str, int] = {}  # rows of each dataset at the last successful flush
        self.n_flushed = 0  # events at the last successful flush: what the file really holds
        f = self._file
        f.attrs.update(
            {
                "format_version": FORMAT_VERSION,
                "run_number": self.run_number,
                "started_at": (
                    datetime.fromtimestamp(replay.started_at_unix_s, UTC) if replay else datetime.now(UTC)
                ).isoformat(timespec="milliseconds"),
                "stopped_at": "",
                "stop_reason": "",
                "complete": False,
                "software_version": provenance.software_version(),
                "config_yaml": config_yaml,
                "comment": comment,
            }
        )
        if replay is not None:
            source = Path(replay.source).resolve()
            f.attrs["replay_source"] = str(source)
            if source.is_file() and h5py.is_hdf5(source):
                f["replay_source"] = h5py.ExternalLink(str(source), "/")
        f.create_group(schema.DIGITIZER).attrs.update(effective.as_attrs())
        f.create_group(schema.PROVENANCE).attrs.update(provenance.gather())
        f.create_group(schema.EVENTS).attrs["channels"] = np.asarray(self._channels, np.int32)
        self._ds = {
            _key(spec): _create(f, spec, len(self._channels), effective.record_length_samples, settings)
            for spec in schema.GROWING_DATASETS
        }
        f.flush()
        f.swmr_mode = True  # from here on readers may follow the run; no new objects until close
        self._flushed_rows = dict.fromkeys(self._ds, 0)
        self._rows = dict.fromkeys(self._ds, 0)  # rows of each dataset fully written (to HDF5's cache)

    @property
    def failed(self) -> bool:
        """A write failed: only the first n_flushed events are in the file."""
        return self._failed

    def append(self, batch: EventBatch, results: list[PulseResults]) -> None:
        """Append a batch and its per-channel results (one PulseResults per enabled channel, in order)."""
        n = len(batch)
        if n == 0:
            return
        # before anything grows: the raw samples (compression only shrinks them), twice for the results
        check_free_space(self.path, 2 * batch.nbytes, self._settings.min_free_disk_mb, self.n_events)
        n_ch = len(results)
        baseline = np.stack([r.baseline for r in results], axis=1)
        rms = np.stack([r.baseline_rms for r in results], axis=1)
        total = np.stack([r.total_q for r in results], axis=1)
        integral = np.stack([r.integral_q for r in results], axis=1)
        counts = np.stack([r.n_peaks for r in results], axis=1)
        # peaks in event-major order (event 0 channel 0, event 0 channel 1, ...) with global offsets
        local = np.concatenate(([0], np.cumsum(counts.ravel())[:-1])).reshape(n, n_ch)
        n_new = int(counts.sum())
        q = np.empty(n_new, np.float32)
        t0 = np.empty(n_new, np.int32)
        t1 = np.empty(n_new, np.int32)
        for c, r in enumerate(results):
            owner = np.repeat(np.arange(n), r.n_peaks)
            dest = local[owner, c] + (np.arange(r.q.size) - r.peak_offset[owner])
            q[dest], t0[dest], t1[dest] = r.q, r.t_start, r.t_end
        columns = {
            "waveform": batch.waveforms,
            "timestamp_ns": batch.timestamp_ns,
            "trigger_id": batch.trigger_id,
            "baseline": baseline,
            "baseline_rms": rms,
            "total_q": total,
            "integral_q": integral,
            "n_peaks": counts,
            "peak_offset": local + self.n_peaks,
        }
        with self._writing():
            for name, column in columns.items():
                ds = self._ds[name]
                ds.resize(self.n_events + n, axis=0)
                ds[self.n_events :] = column
            for name, column in (("peaks/q", q), ("peaks/t_start_ns", t0), ("peaks/t_end_ns", t1)):
                ds = self._ds[name]
                ds.resize(self.n_peaks + n_new, axis=0)
                ds[self.n_peaks :] = column
        self.n_events += n
        self.n_peaks += n_new
        self._rows |= dict.fromkeys(columns, self.n_events) | dict.fromkeys(
            ("peaks/q", "peaks/t_start_ns", "peaks/t_end_ns"), self.n_peaks
        )
        self.bytes_raw += batch.nbytes
        if time.monotonic() - self._last_flush >= self._settings.flush_interval_s:
            self.flush()

    def append_rows(self, name: str, rows: list[tuple]) -> None:
        """Append records to /slow/temperature, /slow/hv or /log (tuples in the dataset's field order)."""
        if not rows:
            return
        ds = self._ds[name]
        n = ds.shape[0]
        with self._writing():
            ds.resize(n + len(rows), axis=0)
            ds[n:] = np.array(rows, dtype=ds.dtype)
        self._rows[name] = n + len(rows)

    def flush(self) -> None:
        """Make everything appended so far visible to readers and safe on disk."""
        with self._writing():
            self._file.flush()
        self._flushed_rows = dict(self._rows)
        self.n_flushed = self.n_events
        self._last_flush = time.monotonic()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn h5py's errors into one RunFileWriteError naming the file, the free space and what is safe."""
        if self._failed:
            raise RunFileWriteError(f"{self.path.name}: not written after an earlier write failure")
        try:
            yield
        except _H5_ERRORS as exc:
            self._failed = True
            error = RunFileWriteError(
                f"writing {self.path} failed ({_reason(exc)}; {free_text(self.path.parent)}): the run is stopped "
                f"({self.n_flushed} events flushed so far; the writer frees its disk reserve to finish the file). "
                f"Free space or choose another run.output_dir."
            )
            error.reason = _reason(exc)
            raise error from None

    def flush_if_due(self) -> None:
        """Flush if the last flush is older than writer.flush_interval_s (no events: slow rows, notes)."""
        if time.monotonic() - self._last_flush >= self._settings.flush_interval_s:
            self.flush()

    def salvage(self) -> None:
        """After a write failure: free the disk reserve, cut the datasets back to the last successful flush and
        write that, so that the file claims no event it does not hold (n_flushed says what it holds).

        Raises RunFileWriteError if that fails too: the file is then left as it is, perhaps unreadable.
        """
        if not self._failed:
            return
        freed_b = self._reserve.release()
        log.warning(
            "%s: the %.0f MB disk reserve was freed to finish the file (%s)",
            self.path, freed_b / 1e6, free_text(self.path.parent),
        )  # fmt: skip
        self._failed = False
        try:  # not a retry of the pending data: HDF5 may have dropped a chunk whose write failed (tested)
            self._cut_to(self._flushed_rows)
            with self._writing():
                self._file.flush()
        except RunFileWriteError as exc:
            self._abandon()
            raise RunFileWriteError(
                f"{self.path} could not be finished after the write failure ({exc.reason}): it may be "
                f"unreadable; events flushed before the failure: {self.n_flushed}"
            ) from None

    def _cut_to(self, rows: dict[str, int]) -> None:
        with self._writing():
            for name, ds in self._ds.items():
                if ds.shape[0] != rows[name]:
                    ds.resize(rows[name], axis=0)
        self._rows = dict(rows)
        self.n_events, self.n_peaks = rows["waveform"], rows["peaks/q"]

    def _abandon(self) -> None:
        """Give up a file HDF5 cannot write: never close it (closing such a file crashed the process).

        Its h5py objects get an extra reference each, never dropped, so that neither the garbage collector nor
        the interpreter's exit closes them.
        """
        for obj in (self._file, *self._ds.values()):
            for kept in (obj, obj.id):
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(kept))
        self._ds = {}

    def close(self, summary: RunSummary) -> None:
        """Flush and close, then record the end of the run; `complete` is written last (if complete).

        A failed write is salvaged first (see salvage). Raises RunFileWriteError if the file could not be
        finished, closed or its end recorded (the message says what the file holds).
        """
        if not self._failed:
            try:
                self.flush()
            except RunFileWriteError:
                log.error("%s: the last flush failed; finishing the file with what fits", self.path)
        try:
            self.salvage()  # after a failure: makes the file consistent, or raises (and leaves it open)
            try:
                self._ds = {}
                self._file.close()
                self._record_end(summary)
            except _H5_ERRORS as exc:
                raise RunFileWriteError(
                    f"{self.path}: the end of the run (stop reason, counters, histograms) could not be recorded "
                    f"({_reason(exc)}; {free_text(self.path.parent)}); the file holds {self.n_flushed} events"
                ) from None
        finally:
            self._reserve.release()

    def _record_end(self, summary: RunSummary) -> None:
        # Without the file lock: a SWMR reader (daq info, the GUI, a replay following the run) holds a lock
        # that would refuse this open, and the summary would be lost. Only this writer ever writes the file.
        with h5py.File(self.path, "r+", libver=schema.LIBVER_BOUNDS, locking=False) as f:
            f.attrs["stopped_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            f.attrs["stop_reason"] = summary.stop_reason
            counters = f.require_group(schema.COUNTERS)
            for key, value in summary.counters.items():
                counters.attrs[key] = value
            if summary.histograms is not None:
                _write_histograms(f.require_group(schema.HISTOGRAMS), summary.histograms)
            f.flush()
            f.attrs["complete"] = bool(summary.complete)
            f.flush()


def _reason(exc: BaseException) -> str:
    """h5py's message of a failed write, shortened to its cause (errno text) where it names one."""
    text = " ".join(str(exc).split())
    if "error message = '" in text:
        return text.split("error message = '", 1)[1].split("'", 1)[0]
    return text


def _key(spec: schema.DatasetSpec) -> str:
    """The writer's name of a dataset: its name in /events, its path elsewhere ("peaks/q", "log")."""
    return spec.name if spec.group == schema.EVENTS else spec.path


def _create(
    f: h5py.File, spec: schema.DatasetSpec, n_channels: int, n_samples: int, settings: WriterSection
) -> h5py.Dataset:
    """An empty dataset of `spec`, growing along axis 0, with its filter and `units` attribute."""
    row: tuple[int, ...] = (
        (n_channels, n_samples) if spec is schema.WAVEFORM else (n_channels,) * spec.per_channel
    )
    rows = settings.chunk_events if spec is schema.WAVEFORM else spec.chunk_rows
    parent = f.require_group(spec.group) if spec.group else f
    ds = parent.create_dataset(
        spec.name, shape=(0, *row), maxshape=(None, *row), dtype=spec.dtype, chunks=(rows, *row),
        **schema.filter_options(spec, settings.compression),
    )  # fmt: skip
    if units := schema.units_attribute(spec):
        ds.attrs["units"] = units
    return ds


def _write_histograms(group: h5py.Group, snap: HistogramSnapshot) -> None:
    for name, hist in (("spe", snap.spe), ("npe", snap.npe), ("baseline_rms", snap.baseline_rms)):
        unit = schema.HISTOGRAM_UNITS[name]
        g = group.create_group(name)
        g.create_dataset("counts", data=hist.counts)
        g.create_dataset("edges", data=hist.edges).attrs["units"] = unit
        g.attrs.update({"unit": unit, "underflow": hist.underflow, "overflow": hist.overflow})
    group.attrs["q_spe_adc_ns"] = snap.q_spe_adc_ns
    group.attrs["n_events"] = snap.n_events
