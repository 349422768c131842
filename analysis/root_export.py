"""Write run files into one ROOT file with uproot: event TTrees, TH1 histograms, slow TTrees, text as TObjString.

Per run: a TTree `events` with the paper's branch names (PeakQ, TS, TE as variable-length arrays
counted by NPeaks; TotalQ; IntegralQ; BaselineMean, BaselineSigma; Timestamp; TriggerID; Waveform on
request), the histograms `h_spe`, `h_npe`, `h_baseline_rms` (TH1D, under/overflow kept, edges exact),
the slow series `slow_temperature` and `slow_hv` (a branch per field), and the texts `config`,
`run_info`, `log` and, when the file has one, `provenance` (TObjString). With several runs every name
gets the suffix `_runNNNNNN`; with several channels every per-channel branch gets `_chN`. Events are
streamed in chunks, so no run's waveforms are ever in memory at once. docs/export.md shows ROOT macros.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uproot
import yaml
from numpy.typing import NDArray
from uproot.writing.identify import to_TAxis, to_TH1x

from analysis import run_schema as schema
from analysis.run_reader import EventChunk, Run, RunHistogram, UnreadableRunFile, open_run

CHUNK_EVENTS = 20_000  # per-event data only: ~1 MB of columns, a few MB of peaks per chunk
CHUNK_EVENTS_WITH_WAVEFORMS = 512  # 8 MB of int16 samples per channel
# ROOT branch <- run-file column, for the per-channel scalars (float32 except where noted)
SCALAR_BRANCHES = {
    "TotalQ": "total_q",
    "IntegralQ": "integral_q",
    "BaselineMean": "baseline",
    "BaselineSigma": "baseline_rms",
}
PEAK_BRANCHES = {"PeakQ": "q", "TS": "t_start_ns", "TE": "t_end_ns"}
TREE_TITLE = (
    "CLOVERS run {run}: PeakQ, TotalQ, IntegralQ in ADC*ns; TS, TE in ns (sample index); BaselineMean, "
    "BaselineSigma, Waveform in ADC; Timestamp in ns since the run's start; TriggerID the board's counter"
)
HISTOGRAM_AXES = {"spe": "PeakQ (ADC*ns)", "npe": "TotalQ / Qspe (PE)", "baseline_rms": "BaselineSigma (ADC)"}


class ExportError(OSError):
    """The export cannot be made; the one-line message names the file and what to do."""


@dataclass(frozen=True)
class ExportedRun:
    """What one run contributed to the ROOT file."""

    source: Path
    run_number: int
    tree: str  # the events TTree's name
    events: int
    peaks: int


def export_root(
    sources: Sequence[str | Path],
    out: str | Path,
    waveforms: bool = False,
    chunk_events: int | None = None,
    progress: Callable[[ExportedRun, int], None] | None = None,
) -> list[ExportedRun]:
    """Export the run files `sources` into the ROOT file `out` (replaced if it exists).

    The file is written as OUT.partial and renamed at the end, so a failed export leaves no half file.
    `progress(run, events_done)` is called after every chunk. Raises UnreadableRunFile for an input that
    is missing, damaged or not a run file (checked before anything is written), ExportError if `out`
    cannot be written.
    """
    paths = [Path(s) for s in sources]
    target = Path(out)
    runs = _open_all(paths)
    try:
        names = _run_suffixes(runs)
        partial = _claim_output(target)
        try:
            with uproot.recreate(partial, compression=uproot.ZLIB(1)) as root:
                done = [
                    _export_run(root, run, suffix, waveforms, chunk_events, progress)
                    for run, suffix in zip(runs, names, strict=True)
                ]
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    finally:
        for run in runs:
            run.close()
    return done


def _open_all(paths: list[Path]) -> list[Run]:
    runs: list[Run] = []
    try:
        for p in paths:
            runs.append(open_run(p))
    except BaseException:
        for run in runs:
            run.close()
        raise
    return runs


def _run_suffixes(runs: list[Run]) -> list[str]:
    if len(runs) == 1:
        return [""]
    numbers = [run.run_number if run.run_number is not None else i for i, run in enumerate(runs)]
    for i, number in enumerate(numbers):
        if number in numbers[:i]:
            other = runs[numbers.index(number)].path
            raise ExportError(
                f"{runs[i].path} and {other} are both run {number}: their trees would share a name; export "
                f"them into separate ROOT files"
            )
    return [f"_run{number:06d}" for number in numbers]


def _claim_output(target: Path) -> Path:
    partial = target.with_name(target.name + ".partial")
    try:
        partial.open("wb").close()
    except OSError as exc:
        raise ExportError(
            f"cannot write the ROOT file {target} ({exc.strerror or exc}): choose a writable folder that exists"
        ) from None
    return partial


def _export_run(
    root: Any,
    run: Run,
    suffix: str,
    waveforms: bool,
    chunk_events: int | None,
    progress: Callable[[ExportedRun, int], None] | None,
) -> ExportedRun:
    size = chunk_events or (CHUNK_EVENTS_WITH_WAVEFORMS if waveforms else CHUNK_EVENTS)
    number = run.run_number if run.run_number is not None else 0
    tree = None
    n_peaks = 0
    info = ExportedRun(run.path, number, f"events{suffix}", run.n_events, 0)
    try:
        for chunk in run.event_chunks(size, waveforms=waveforms):
            branches = _branches(chunk, run.channels)
            n_peaks += sum(int(p.offsets[-1]) for p in chunk.peaks)
            if tree is None:
                tree = root.mktree(
                    info.tree,
                    {name: _branch_type(value) for name, value in branches.items()},
                    title=TREE_TITLE.format(run=number),
                    counter_name=_counter_name,
                )
            tree.extend(branches)
            if progress is not None:
                progress(info, chunk.stop)
        if tree is None:  # a run without events still gets its (empty) tree
            columns = {**run.events, **({"waveform": run.waveforms[0:0]} if waveforms else {})}
            empty = EventChunk(0, 0, columns, [run.peaks(c) for c in run.channels])
            types = {name: _branch_type(value) for name, value in _branches(empty, run.channels).items()}
            root.mktree(info.tree, types, title=TREE_TITLE.format(run=number), counter_name=_counter_name)
        for name, hist in run.histograms.items():
            root[f"h_{name}{suffix}"] = _th1(name, hist, number)
        for name, series in run.slow.items():
            units = schema.FIELD_UNITS.get(f"{schema.SLOW}/{name}", "")
            _write_series(
                root, f"slow_{name}{suffix}", series, f"CLOVERS run {number}: /slow/{name} ({units})"
            )
        root[f"config{suffix}"] = run.config_yaml
        root[f"run_info{suffix}"] = yaml.safe_dump(_run_info(run), sort_keys=False, width=120)
        root[f"log{suffix}"] = "\n".join(
            f"{t:.3f} {m.decode('utf-8', 'replace')}"
            for t, m in zip(run.log["time_s"], run.log["message"], strict=True)
        )
        if run.provenance is not None:
            root[f"provenance{suffix}"] = yaml.safe_dump(run.provenance, sort_keys=False, width=120)
    except (UnreadableRunFile, ExportError):
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # h5py's errors of a damaged file
        message = " ".join(str(exc).split())
        raise UnreadableRunFile(f"{run.path}: damaged run file, cannot be read ({message})") from None
    return ExportedRun(run.path, number, info.tree, run.n_events, n_peaks)


def _counter_name(counted: str) -> str:
    """NPeaks counts PeakQ, TS and TE of one channel (one shared counter branch per channel)."""
    _, sep, channel = counted.rpartition("_ch")
    return f"NPeaks_ch{channel}" if sep else "NPeaks"


def _name(branch: str, ch: int, channels: list[int]) -> str:
    return branch if len(channels) == 1 else f"{branch}_ch{ch}"


def _branches(chunk: EventChunk, channels: list[int]) -> dict[str, Any]:
    import awkward as ak

    cols = chunk.columns
    out: dict[str, Any] = {
        "Timestamp": cols["timestamp_ns"].astype(np.uint64),
        "TriggerID": cols["trigger_id"].astype(np.uint32),
    }
    for col, ch in enumerate(channels):
        peaks = chunk.peaks[col]
        for branch, field in PEAK_BRANCHES.items():
            content = ak.contents.NumpyArray(np.ascontiguousarray(getattr(peaks, field)))
            out[_name(branch, ch, channels)] = ak.Array(
                ak.contents.ListOffsetArray(ak.index.Index64(peaks.offsets), content)
            )
        for branch, column in SCALAR_BRANCHES.items():
            if column in cols:
                out[_name(branch, ch, channels)] = np.ascontiguousarray(cols[column][:, col])
        if "waveform" in cols:
            out[_name("Waveform", ch, channels)] = np.ascontiguousarray(cols["waveform"][:, col, :])
    return out


def _branch_type(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.dtype((value.dtype, value.shape[1:])) if value.ndim > 1 else value.dtype
    return value.type.content  # awkward: "var * float32"


def _th1(name: str, hist: RunHistogram, run_number: int) -> Any:
    """A TH1D with the run's counts, under- and overflow, and its exact edges (variable binning)."""
    counts = hist.counts.astype(np.float64)
    data = np.concatenate(([hist.underflow], counts, [hist.overflow])).astype(">f8")
    centres = hist.centres
    axis = to_TAxis(
        fName="xaxis", fTitle=HISTOGRAM_AXES.get(name, hist.unit), fNbins=counts.size,
        fXmin=float(hist.edges[0]), fXmax=float(hist.edges[-1]), fXbins=hist.edges.astype(">f8"),
    )  # fmt: skip
    return to_TH1x(
        fName=None, fTitle=f"CLOVERS run {run_number}: {name} histogram at the end of the run", data=data,
        fEntries=float(data.sum()), fTsumw=float(counts.sum()), fTsumw2=float(counts.sum()),
        fTsumwx=float((counts * centres).sum()), fTsumwx2=float((counts * centres**2).sum()), fSumw2=None,
        fXaxis=axis,
    )  # fmt: skip


def _write_series(root: Any, name: str, series: NDArray[np.void], title: str) -> None:
    columns = {field: np.ascontiguousarray(series[field]) for field in series.dtype.names or ()}
    tree = root.mktree(name, {k: v.dtype for k, v in columns.items()}, title=title)
    if series.size:
        tree.extend(columns)


def _run_info(run: Run) -> dict[str, Any]:
    """Everything but the waveforms, config and provenance that describes the run: attributes of each group."""
    meta = {group: dict(attrs) for group, attrs in run.metadata.items()}
    meta["/"] = {k: v for k, v in meta["/"].items() if k != "config_yaml"}
    meta.pop(schema.PROVENANCE, None)  # its own TObjString
    meta["source"] = {"path": str(run.path.resolve()), "events_exported": run.n_events}
    return _yaml_safe(meta)


def _yaml_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _yaml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
