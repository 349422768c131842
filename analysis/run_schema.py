"""The layout of an HDF5 run file: names, dtypes, units, filters and format versions, for its writer and readers.

Every program that writes or reads run files takes the layout from here (docs/run_file.md shows it as a
table). Version history (the integer root attribute `format_version`):

1. Files written before this module: `format_version` absent or the string "1.0"; `libver="latest"`
   (with HDF5 2.0 unreadable by HDF5 <= 1.14 tools); bitshuffle-LZ4 on every dataset; a `unit` attribute;
   no /provenance. Files written before 2026-12 also lack /events/integral_q. Read as they are.
2. `format_version` = 2 (an integer); HDF5 1.10 object headers (`LIBVER_BOUNDS`), so HDF5 1.10-1.14 tools
   read every dataset; bitshuffle-LZ4 on the waveforms only, shuffle + gzip (built into every HDF5) on the
   other growing datasets, none on the small fixed ones; a `units` attribute on every dataset with a
   unit; a /provenance group (attributes: which code, libraries, host, user, command line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

FORMAT_VERSION = 2
KNOWN_VERSIONS = (1, 2)
LIBVER_BOUNDS = ("v110", "v110")  # HDF5 1.10 headers: SWMR works, HDF5 >= 1.10 reads them
GZIP_LEVEL = 4

EVENTS = "events"
PEAKS = "peaks"
SLOW = "slow"
LOG = "log"
HISTOGRAMS = "histograms"
COUNTERS = "counters"
DIGITIZER = "digitizer"
PROVENANCE = "provenance"
REPLAY_SOURCE = "replay_source"
SLOW_TEMPERATURE = "slow/temperature"
SLOW_HV = "slow/hv"

ROOT_ATTRS = (
    "format_version", "run_number", "started_at", "stopped_at", "stop_reason", "complete", "software_version",
    "config_yaml", "comment",
)  # fmt: skip  # and, when they apply: hv_safe_state (daq run), replay_source (a replay)
COUNTER_ATTRS = (
    "triggers", "events_read", "events_analysed", "events_written", "events_lost", "lost_board_memory_full",
    "lost_analysis_queue_full", "lost_writer_queue_full", "lost_writer_failed", "bytes_read", "memory_full_seen",
)  # fmt: skip

TEMPERATURE_DTYPE = np.dtype(
    [("time_s", "f8"), ("stage_k", "f4"), ("crystal_k", "f4"), ("setpoint_k", "f4"), ("heater_pct", "f4"),
     ("heater_range", "i1"), ("ramping", "u1")]
)  # fmt: skip
HV_DTYPE = np.dtype(
    [("time_s", "f8"), ("channel", "u1"), ("vset_v", "f4"), ("vmon_v", "f4"), ("imon_ua", "f4"), ("status", "u4")]
)  # fmt: skip
LOG_DTYPE = np.dtype([("time_s", "f8"), ("message", "S256")])
LOG_MESSAGE_BYTES = 256


@dataclass(frozen=True)
class DatasetSpec:
    """One growing dataset: where it is, its dtype, its shape per row, its unit and its chunk rows."""

    path: str  # e.g. "events/total_q"
    dtype: np.dtype
    per_channel: bool  # rows are (C,) (the waveform: (C, S)); otherwise scalars or records
    units: str  # "" when it has none
    chunk_rows: int
    description: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def group(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


_EVENT_CHUNK = 1024
_PEAK_CHUNK = 16384

WAVEFORM = DatasetSpec(
    "events/waveform",
    np.dtype("i2"),
    True,
    "ADC",
    0,
    "raw ADC samples (N, C, S); chunk rows: writer.chunk_events",
)
EVENT_DATASETS = (
    WAVEFORM,
    DatasetSpec("events/timestamp_ns", np.dtype("u8"), False, "ns", _EVENT_CHUNK, "trigger time since the start"),
    DatasetSpec("events/trigger_id", np.dtype("u4"), False, "", _EVENT_CHUNK, "the board's event counter"),
    DatasetSpec("events/baseline", np.dtype("f4"), True, "ADC", _EVENT_CHUNK, "baseline mean"),
    DatasetSpec("events/baseline_rms", np.dtype("f4"), True, "ADC", _EVENT_CHUNK, "baseline SD"),
    DatasetSpec("events/total_q", np.dtype("f4"), True, "ADC*ns", _EVENT_CHUNK, "TotalQ, the sum of PeakQ"),
    DatasetSpec("events/integral_q", np.dtype("f4"), True, "ADC*ns", _EVENT_CHUNK, "IntegralQ, no threshold"),
    DatasetSpec("events/n_peaks", np.dtype("i4"), True, "", _EVENT_CHUNK, "peaks found"),
    DatasetSpec("events/peak_offset", np.dtype("i8"), True, "", _EVENT_CHUNK, "index of the first peak in /peaks"),
)  # fmt: skip
PEAK_DATASETS = (
    DatasetSpec("peaks/q", np.dtype("f4"), False, "ADC*ns", _PEAK_CHUNK, "PeakQ"),
    DatasetSpec("peaks/t_start_ns", np.dtype("i4"), False, "ns", _PEAK_CHUNK, "TS, sample index"),
    DatasetSpec("peaks/t_end_ns", np.dtype("i4"), False, "ns", _PEAK_CHUNK, "TE, sample index"),
)
SLOW_DATASETS = (
    DatasetSpec(SLOW_TEMPERATURE, TEMPERATURE_DTYPE, False, "", 1024, "Lake Shore 325 polls"),
    DatasetSpec(SLOW_HV, HV_DTYPE, False, "", 1024, "NDT1470 polls of the PMT channel"),
)
LOG_DATASET = DatasetSpec(LOG, LOG_DTYPE, False, "", 256, "run events (interlocks, pauses, resumes)")
GROWING_DATASETS = (*EVENT_DATASETS, *PEAK_DATASETS, *SLOW_DATASETS, LOG_DATASET)
# units of the fields of compound datasets, as their `units` attribute ("field: unit; ...")
FIELD_UNITS = {
    "slow/temperature": "time_s: s (Unix time); stage_k: K; crystal_k: K; setpoint_k: K; heater_pct: %; "
    "heater_range: index; ramping: 0/1",
    "slow/hv": "time_s: s (Unix time); channel: index; vset_v: V; vmon_v: V; imon_ua: uA; status: STAT bits",
    "log": "time_s: s (Unix time); message: ASCII text",
}
HISTOGRAM_UNITS = {"spe": "ADC*ns", "npe": "PE", "baseline_rms": "ADC"}  # of the edges (counts: none)

# the per-event datasets that grow together; a killed run's may differ by one append
EVENT_COUNT_DATASETS = tuple(s.name for s in EVENT_DATASETS if s.name != "peak_offset")


class NewerFormatError(ValueError):
    """The file's format is newer than this program knows; the message names the file and what to do."""


def units_attribute(spec: DatasetSpec) -> str:
    """The `units` attribute a dataset carries ("" if none: then none is written)."""
    return spec.units or FIELD_UNITS.get(spec.path, "")


def filter_options(spec: DatasetSpec, compression: str) -> dict[str, Any]:
    """h5py create_dataset keywords for `spec` with `writer.compression` = compression.

    The waveforms take the configured filter (bitshuffle-lz4, gzip or none); every other dataset takes
    shuffle + gzip, built into every HDF5, unless compression is "none".
    """
    if spec is WAVEFORM:
        if compression == "bitshuffle-lz4":
            import hdf5plugin

            return dict(hdf5plugin.Bitshuffle(cname="lz4"))
        if compression == "gzip":
            return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
        return {}
    if compression == "none":
        return {}
    return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}


def format_version(f: h5py.File) -> int:
    """The file's format version (1 for files without an integer `format_version`)."""
    raw = f.attrs.get("format_version")
    if raw is None:
        return 1
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    try:
        return int(str(raw).split(".")[0]) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError):
        return 1  # unparsable: treat as the oldest, its datasets are looked up by name anyway


def check_format_version(f: h5py.File, path: object) -> int:
    """The file's format version; raises NewerFormatError if this program is too old to read it."""
    version = format_version(f)
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            f"{path}: run file format {version} is newer than this program reads (formats "
            f"{KNOWN_VERSIONS[0]}-{FORMAT_VERSION}); update clovers-daq (git pull, then pip install -e .)"
        )
    return version


def is_run_file(f: h5py.File) -> bool:
    """The file has the groups every version of a run file has (/events with waveforms, /digitizer)."""
    return EVENTS in f and DIGITIZER in f and "waveform" in f[EVENTS]


def events_dataset(f: h5py.File, name: str) -> h5py.Dataset | None:
    """/events/<name>, or None if this file has none (integral_q in files before 2026-12)."""
    ev = f.get(EVENTS)
    return ev[name] if ev is not None and name in ev else None


def peaks_dataset(f: h5py.File, name: str) -> h5py.Dataset | None:
    """/peaks/<name> (q, t_start_ns, t_end_ns), or None."""
    pk = f.get(PEAKS)
    return pk[name] if pk is not None and name in pk else None


def slow_dataset(f: h5py.File, name: str) -> h5py.Dataset | None:
    """/slow/<name> (temperature, hv), or None."""
    slow = f.get(SLOW)
    return slow[name] if slow is not None and name in slow else None


def log_dataset(f: h5py.File) -> h5py.Dataset | None:
    """/log, or None."""
    return f[LOG] if LOG in f else None


def histogram_group(f: h5py.File, name: str) -> h5py.Group | None:
    """/histograms/<name> (spe, npe, baseline_rms) with `counts` and `edges`, or None (no end record)."""
    h = f.get(HISTOGRAMS)
    return h[name] if h is not None and name in h else None


def counters(f: h5py.File) -> dict[str, Any] | None:
    """The /counters attributes, or None (the run has no end record)."""
    return dict(f[COUNTERS].attrs) if COUNTERS in f else None


def provenance(f: h5py.File) -> dict[str, Any]:
    """The /provenance attributes (empty for format 1)."""
    return dict(f[PROVENANCE].attrs) if PROVENANCE in f else {}


def event_channels(f: h5py.File) -> list[int]:
    """The board channel of each column of the per-event datasets."""
    return [int(c) for c in f[EVENTS].attrs["channels"]]


def events_recorded(f: h5py.File, names: tuple[str, ...] = EVENT_COUNT_DATASETS) -> int:
    """Events fully recorded: the shortest of the per-event datasets `names` present (they grow one by one)."""
    ev = f[EVENTS]
    return min(ev[name].shape[0] for name in names if name in ev)


def units_of(obj: h5py.Dataset | h5py.Group) -> str:
    """The unit of a dataset: `units` (format 2), else `unit` (format 1), else ""."""
    value = obj.attrs.get("units", obj.attrs.get("unit", ""))
    return value.decode() if isinstance(value, bytes) else str(value)
