"""`daq info RUN.h5`: the summary of a run file, complete or not (also one still being written)."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the bitshuffle/LZ4 filter for reading
import numpy as np

from analysis import run_schema as schema
from analysis.histograms import Histogram, histogram_peaks
from analysis.run_file_open import UnreadableRunFile, one_line, open_for_reading

EVENT_DATASETS = schema.EVENT_COUNT_DATASETS


def open_run_file(path: str | Path) -> h5py.File:
    """Open a run file for reading, whether complete, killed mid-run or still being written (SWMR).

    Raises UnreadableRunFile (an OSError, one line naming the file) for a missing, empty, foreign,
    truncated or damaged file.
    """
    f = open_for_reading(path)
    if schema.EVENTS not in f or schema.DIGITIZER not in f:
        found = ", ".join(f"/{name}" for name in list(f)[:5]) or "nothing"
        f.close()
        raise UnreadableRunFile(
            f"{path}: an HDF5 file but not a run file of this program (no /events or /digitizer; it holds "
            f"{found})"
        )
    return f


def events_in(f: h5py.File) -> int:
    """Events fully recorded: the shortest of the per-event datasets (they grow one after the other)."""
    return schema.events_recorded(f)


def describe_run(path: str | Path) -> str:
    """A human-readable summary of the run file at `path`.

    Raises UnreadableRunFile (one line naming the file) if it cannot be read.
    """
    p = Path(path)
    try:
        return _summary(p)
    except UnreadableRunFile:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # h5py's errors of a damaged file
        raise UnreadableRunFile(f"{p}: damaged run file, cannot be read ({one_line(exc)})") from None


def _summary(p: Path) -> str:
    with open_run_file(p) as f:
        a = f.attrs
        n = events_in(f)
        wf = schema.events_dataset(f, "waveform")
        d = f[schema.DIGITIZER].attrs
        lines = [
            f"run file   : {p} ({p.stat().st_size / 1e6:.1f} MB on disk)",
            f"run        : {int(a['run_number'])}, format_version {schema.format_version(f)}, "
            f"software {_software(f)}",
            f"started    : {a['started_at']}   stopped: {a['stopped_at'] or '-'}",
            f"complete   : {bool(a['complete'])}   stop reason: {a['stop_reason'] or '(not recorded: the run did not end cleanly)'}",
            f"digitizer  : {d.get('model', '?')} serial {d.get('serial', '?')}, {int(d.get('record_length_samples', 0))} "
            f"samples, channels {schema.event_channels(f)}",
            f"events     : {n}, waveforms {wf.shape}, peaks {schema.peaks_dataset(f, 'q').shape[0]}",
        ]
        raw_mb = n * int(np.prod(wf.shape[1:])) * 2 / 1e6
        if n:
            ts = schema.events_dataset(f, "timestamp_ns")[:n].astype(np.float64)
            span_s = (ts[-1] - ts[0]) * 1e-9
            rate = f"{(n - 1) / span_s:.1f} Hz" if span_s > 0 else "-"
            lines.append(f"time span  : {span_s:.2f} s of board time, event rate {rate}")
            lines.append(
                f"raw samples: {raw_mb:.1f} MB, compression ratio {raw_mb / (p.stat().st_size / 1e6):.2f}"
            )
        if (c := schema.counters(f)) is not None:
            lost = {k[5:]: int(v) for k, v in c.items() if k.startswith("lost_") and v}
            lines.append(
                f"counters   : triggers {c.get('triggers')}, written {c.get('events_written')}, "
                f"lost {c.get('events_lost')} {lost or ''}".rstrip()
            )
        if (spe_group := schema.histogram_group(f, "spe")) is not None:
            h = f[schema.HISTOGRAMS]
            spe = _hist(spe_group)
            npe = _hist(h["npe"])
            lines.append(
                f"histograms : SPE peak {', '.join(f'{q:.1f}' for q in histogram_peaks(spe, 1, 3)) or '-'} ADC*ns, "
                f"NPE peaks {', '.join(f'{x:.0f}' for x in histogram_peaks(npe, 3, 5)) or '-'} PE "
                f"(Qspe {h.attrs['q_spe_adc_ns']:g} ADC*ns)"
            )
        return "\n".join(lines)


def _software(f: h5py.File) -> str:
    """The software version, and where it ran (format 2's /provenance)."""
    text = str(f.attrs.get("software_version", "?"))
    prov = schema.provenance(f)
    if prov:
        text += (
            f" (on {prov.get('host', '?')} by {prov.get('user', '?')}, HDF5 {prov.get('hdf5_version', '?')})"
        )
    return text


def _hist(group: h5py.Group) -> Histogram:
    return Histogram(
        group["counts"][()], group["edges"][()], int(group.attrs["underflow"]), int(group.attrs["overflow"])
    )
