"""`daq runs [DIR]`: one line per run file of a folder, read from attributes only (fast on thousands of files).

Each file is opened as `daq info` opens it (a killed run through SWMR); only attributes and, for a run
without its end-of-run counters, the lengths of the per-event datasets are read, never their data.
Temperature and HV are the run's setpoints (cryostat.setpoint_k, hv.voltage_v of the configuration stored
in the file), shown only when the run controlled the slow control (run.slow_control).
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import h5py

from analysis import run_schema
from analysis.run_file_open import UnreadableRunFile, one_line, open_for_reading

RECENT_WRITE_S = 10.0  # an unfinished file written to within this long is taken as a run in progress
CSV_COLUMNS = (
    "file", "run_number", "start_local", "duration_s", "events", "lost", "temperature_setpoint_k",
    "hv_setpoint_v", "status", "stop_reason", "comment",
)  # fmt: skip
_HEADER = (
    f"{'run':>6}  {'start (local)':19}  {'duration':>9}  {'events':>8}  {'lost':>6}  {'T set':>7}  "
    f"{'HV set':>7}  {'status':9}  comment"
)


@dataclass(frozen=True)
class RunRow:
    """What `daq runs` shows of one file; None where the file does not say.

    status: complete; fault (ended, marked incomplete: stop_reason says why); killed (never closed); running
    (never closed, written to in the last RECENT_WRITE_S); unreadable (error says why).
    duration_s: stopped_at - started_at, or for a killed or running run up to the file's last write.
    """

    path: Path
    status: str
    run_number: int | None = None
    started: datetime | None = None
    duration_s: float | None = None
    events: int | None = None
    lost: int | None = None
    setpoint_k: float | None = None
    hv_v: float | None = None
    stop_reason: str = ""
    comment: str = ""
    error: str = ""


def run_files(folder: str | Path) -> list[Path]:
    """The `*.h5` files of `folder`, by run number then name; raise NotADirectoryError/FileNotFoundError."""
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"{d}: no such folder; give the folder of the run files: daq runs DIR")
    if not d.is_dir():
        raise NotADirectoryError(
            f"{d}: a file, not a folder; daq runs lists a folder (daq info FILE for one)"
        )
    return sorted(d.glob("*.h5"), key=_sort_key)


def read_row(path: Path, now_s: float | None = None) -> RunRow:
    """The row of one file; never raises for a bad file (status 'unreadable' with the reason)."""
    try:
        f = open_for_reading(path)
    except UnreadableRunFile as exc:
        return RunRow(path, "unreadable", error=str(exc))
    try:
        with f:
            return _row(path, f, time.time() if now_s is None else now_s)
    except run_schema.NewerFormatError as exc:
        return RunRow(path, "unreadable", error=str(exc))
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # h5py's errors of a damaged file
        return RunRow(path, "unreadable", error=f"{path}: damaged run file, cannot be read ({one_line(exc)})")


def list_runs(folder: str | Path) -> list[RunRow]:
    """The rows of every `*.h5` file of `folder` (see run_files)."""
    now_s = time.time()
    return [read_row(path, now_s) for path in run_files(folder)]


def write_table(rows: Iterable[RunRow], out: TextIO) -> None:
    """Print a header and one aligned line per row; an unreadable file is one line with its reason."""
    print(_HEADER, file=out)
    for r in rows:
        if r.status == "unreadable":
            print(f"{'?':>6}  unreadable: {r.error}", file=out)
            continue
        number = "?" if r.run_number is None else str(r.run_number)
        start = r.started.strftime("%Y-%m-%d %H:%M:%S") if r.started else "-"
        duration = "-" if r.duration_s is None else _clock(r.duration_s)
        if r.duration_s is not None and r.status in ("killed", "running"):
            duration = "~" + duration  # up to the file's last write
        status = r.status if r.status != "fault" else f"fault ({r.stop_reason.removeprefix('fault: ')})"
        comment = " ".join(r.comment.split())
        print(
            f"{number:>6}  {start:19}  {duration:>9}  {_num(r.events):>8}  {_num(r.lost):>6}  "
            f"{_unit(r.setpoint_k, 'K', 1):>7}  {_unit(r.hv_v, 'V', 0):>7}  {status:9}  {comment}".rstrip(),
            file=out,
        )


def write_csv(rows: Iterable[RunRow], out: TextIO) -> None:
    """Write CSV_COLUMNS and one record per row (an unreadable file: its reason under stop_reason)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.path.name,
                _blank(r.run_number),
                r.started.isoformat(sep=" ", timespec="seconds") if r.started else "",
                "" if r.duration_s is None else f"{r.duration_s:.3f}",
                _blank(r.events),
                _blank(r.lost),
                _blank(r.setpoint_k),
                _blank(r.hv_v),
                r.status,
                r.error or r.stop_reason,
                r.comment,
            ]
        )


def _row(path: Path, f: h5py.File, now_s: float) -> RunRow:
    a = f.attrs
    if "run_number" not in a or not run_schema.is_run_file(f):
        found = ", ".join(f"/{name}" for name in list(f)[:5]) or "nothing"
        return RunRow(
            path,
            "unreadable",
            error=f"{path}: an HDF5 file but not a run file of this program (it holds {found})",
        )
    run_schema.check_format_version(f, path)
    started = _time(a["started_at"])
    stopped = _time(a.get("stopped_at", ""))
    stop_reason = _text(a.get("stop_reason", ""))
    counters = (
        f[run_schema.COUNTERS].attrs if run_schema.COUNTERS in f else {}
    )  # 2 of its 11 read: 90 us each
    modified_s = path.stat().st_mtime
    if bool(a.get("complete", False)):
        status = "complete"
    elif stopped is not None:
        status = "fault"
    else:
        status = "running" if now_s - modified_s < RECENT_WRITE_S else "killed"
    if stopped is not None and started is not None:
        duration_s: float | None = (stopped - started).total_seconds()
    elif started is not None and "replay_source" not in a:  # a replay's started_at is its source's
        duration_s = max(modified_s - started.timestamp(), 0.0)
    else:
        duration_s = None
    events = counters.get("events_written")
    if events is None:  # no end record: what the file holds (dataset lengths, not their data)
        events = run_schema.events_recorded(f)
    lost = counters.get("events_lost")
    setpoint_k, hv_v = _setpoints(_text(a.get("config_yaml", "")))
    return RunRow(
        path,
        status,
        run_number=int(a["run_number"]),
        started=started.astimezone() if started else None,
        duration_s=duration_s,
        events=None if events is None else int(events),
        lost=None if lost is None else int(lost),
        setpoint_k=setpoint_k,
        hv_v=hv_v,
        stop_reason=stop_reason,
        comment=_text(a.get("comment", "")),
    )


def _setpoints(config_yaml: str) -> tuple[float | None, float | None]:
    """(cryostat.setpoint_k, hv.voltage_v) of the stored configuration; None without slow control.

    The stored YAML is yaml.safe_dump's block style (daq.config.config_yaml), so the two keys are found by
    their section and indentation without parsing the whole document (a full parse is 1 ms a file).
    """
    if _value(config_yaml, "run", "slow_control") != "true":
        return None, None
    return _float(_value(config_yaml, "cryostat", "setpoint_k")), _float(
        _value(config_yaml, "hv", "voltage_v")
    )


def _value(text: str, section: str, key: str) -> str | None:
    block = re.search(rf"^{section}:\n((?:[ \t].*\n?)*)", text, re.MULTILINE)
    if block is None:
        return None
    found = re.search(rf"^  {key}: *(\S+)", block.group(1), re.MULTILINE)
    return found.group(1) if found else None


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(_text(value))
    except ValueError:
        return None
    return t if t.tzinfo else None  # the writer stores UTC with its offset; anything else is not trusted


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _sort_key(path: Path) -> tuple[int, str]:
    m = re.match(r"^run_(\d+)\.h5$", path.name)
    return (int(m.group(1)) if m else 10**9, path.name)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _unit(value: float | None, unit: str, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f} {unit}"


def _blank(value: object) -> str:
    return "" if value is None else str(value)
