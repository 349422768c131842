"""Replay source: one of our HDF5 run files, read in chunks, followed (SWMR) while another process writes it.

Following: the datasets are refreshed when the reader has caught up (the /slow series too, so their
playback keeps up). When nothing grows, the file is closed and opened again every REOPEN_EVERY_S to read
the end record (`stopped_at`), which the writer adds after leaving SWMR mode; an HDF5 reader sees root
attributes only as they were when it opened the file. A file in which nothing (events, /slow, /log)
grows and no end record appears for idle_timeout_s ends the replay (the recording process died).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401 - registers the bitshuffle/LZ4 filter for reading
import numpy as np
import yaml

from analysis import run_schema as schema
from analysis.run_file_open import UnreadableRunFile, open_for_reading
from simulators.replay_source import ReplayChunk, ReplayError, ReplayGeometry, SlowSeries, SourceNotes

EVENT_DATASETS = ("waveform", "timestamp_ns", "trigger_id")
LIVE_DATASETS = (schema.SLOW_TEMPERATURE, schema.SLOW_HV, schema.LOG)  # growing in a paused run too
REOPEN_EVERY_S = 0.5
IDLE_TIMEOUT_S = 60.0
REOPEN_GIVE_UP_S = 10.0  # the writer holds the file for its summary for milliseconds


class RunFileSource:
    """Events of a run file in order; `read` returns None once every event of an ended run was given."""

    def __init__(
        self,
        path: str | Path,
        follow: bool | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.notes = SourceNotes(self.path)
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._file = self._open()
        try:
            self._datasets = self._bind()
            attrs = self._file.attrs
            self.run_number = int(attrs.get("run_number", 0))
            ended = bool(attrs.get("stopped_at", ""))
            if follow is None:
                follow = not ended and time.time() - self.path.stat().st_mtime < idle_timeout_s
            self.following = bool(follow) and not ended
            if ended:
                self._note_end(attrs)
            elif not self.following:
                self.notes.add("the run has no end record (killed?); its events so far are replayed")
            self.geometry = self._geometry()
            self.slow = self._slow_series(attrs)
        except Exception:
            self._file.close()
            raise
        self._live = self._live_size()
        self._available = self._count()
        self._position = 0
        self._last_growth = self._last_reopen = clock()

    # ---- opening ----

    def _open(self) -> h5py.File:
        try:
            return open_for_reading(self.path)
        except UnreadableRunFile as exc:
            raise ReplayError(f"{exc} (nothing to replay)") from None

    def _bind(self) -> list[h5py.Dataset]:
        try:
            return [self._file[schema.EVENTS][name] for name in EVENT_DATASETS]
        except KeyError:
            raise ReplayError(
                f"{self.path}: an HDF5 file but not a run file of this program (no /events/waveform, "
                f"timestamp_ns, trigger_id); nothing to replay"
            ) from None

    def _count(self) -> int:
        return min(ds.shape[0] for ds in self._datasets)

    @property
    def stored_config_yaml(self) -> str:
        """The configuration the run was taken with (YAML text; empty if the file has none)."""
        return str(self._file.attrs.get("config_yaml", ""))

    def _stored_config(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.stored_config_yaml)
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}

    def _geometry(self) -> ReplayGeometry:
        f = self._file
        if not schema.is_run_file(f):
            raise ReplayError(
                f"{self.path}: an HDF5 file but not a run file of this program (no /events/waveform or "
                f"/digitizer); nothing to replay"
            )
        wf = schema.events_dataset(f, "waveform")
        d = f[schema.DIGITIZER].attrs
        if "channels" not in f[schema.EVENTS].attrs or wf.ndim != 3:
            raise ReplayError(
                f"{self.path}: /events has no channel list or 3-d waveforms: not a run file of this program"
            )
        channels = tuple(schema.event_channels(f))
        digitizer = self._stored_config().get("digitizer") or {}
        polarity = digitizer.get("polarity") or (
            "negative" if d.get("self_trigger_edge") == "FALL" else "positive"
        )
        crystal = digitizer.get("crystal_channel", channels[0])
        return ReplayGeometry(
            record_length_samples=int(wf.shape[2]),
            post_trigger_samples=int(d.get("post_trigger_samples", wf.shape[2] // 5)),
            channels=channels,
            polarity=polarity,
            dc_offset_pct={
                ch: float(d[f"ch{ch}_dc_offset_pct"]) if f"ch{ch}_dc_offset_pct" in d else None
                for ch in channels
            },  # fmt: skip
            crystal_channel=crystal if crystal in channels else channels[0],
            description=f"run {self.run_number} ({self.path})",
        )

    def _slow_series(self, attrs: h5py.AttributeManager) -> SlowSeries | None:
        if schema.SLOW not in self._file:
            return None
        try:
            started = datetime.fromisoformat(str(attrs["started_at"])).timestamp()
        except (KeyError, ValueError):
            self.notes.add(
                "no valid started_at: the slow-control series cannot be aligned and are not replayed"
            )
            return None
        temperature, hv = (schema.slow_dataset(self._file, name) for name in ("temperature", "hv"))
        run = self._stored_config().get("run") or {}
        series = SlowSeries(
            started_at_unix_s=started,
            temperature=temperature[()] if temperature is not None else np.zeros(0),
            hv=hv[()] if hv is not None else np.zeros(0),
            live=self.following and bool(run.get("slow_control", False)),
        )
        return None if series.empty and not series.live else series

    def _note_end(self, attrs: h5py.AttributeManager) -> None:
        if not bool(attrs.get("complete", False)):
            self.notes.add(
                f"the recorded run did not end cleanly: {attrs.get('stop_reason', '') or 'no reason'}"
            )

    # ---- reading ----

    def read(self, max_events: int) -> ReplayChunk | None:
        if self._position >= self._available:
            self._catch_up()
            if self._position >= self._available:
                return None if not self.following else _empty(self.geometry)
        stop = min(self._position + max_events, self._available)
        part = slice(self._position, stop)
        wf, ts, tid = (ds[part] for ds in self._datasets)
        self._position = stop
        return ReplayChunk(wf, ts.astype(np.uint64, copy=False), tid.astype(np.uint32, copy=False))

    def _catch_up(self) -> None:
        """Following: look for new events, and for the end record once the file stops growing."""
        if not self.following:
            return
        for ds in self._datasets:
            ds.refresh()
        now = self._clock()
        live = self._live_size()
        if live != self._live:  # slow control and the log grow in a paused run too
            self._live, self._last_growth = live, now
            self._update_slow()
        if self._grew(now):
            return
        if now - self._last_reopen >= REOPEN_EVERY_S:
            self._last_reopen = now
            if self._reopen_ended():
                self.following = False
                self._grew(now)
                return
        if now - self._last_growth >= self._idle_timeout_s and not self._paused():
            self.following = False
            self.notes.add(
                f"the run file stopped growing {self._idle_timeout_s:g} s ago without an end record (the "
                f"recording process died?); the replay ends with its {self._available} events"
            )

    def _grew(self, now: float) -> bool:
        count = self._count()
        grew = count > self._available
        self._available = count
        if grew:
            self._last_growth = now
        return grew

    def _reopen_ended(self) -> bool:
        """Open the file again to see its end record (False: none yet)."""
        self._file.close()
        give_up_at = time.monotonic() + REOPEN_GIVE_UP_S
        while True:
            try:
                self._file = self._open()
                break
            except ReplayError:
                if time.monotonic() > give_up_at:
                    raise
                time.sleep(0.05)  # the writer holds the file while it adds its summary: a few ms
        self._datasets = self._bind()
        self._update_slow()
        attrs = self._file.attrs
        if not bool(attrs.get("stopped_at", "")):
            return False
        self._note_end(attrs)
        return True

    def _paused(self) -> bool:
        """The recording's last note says it paused (nothing grows then without slow control)."""
        log = schema.log_dataset(self._file)
        if log is None:
            return False
        log.refresh()
        return log.shape[0] > 0 and bytes(log[-1]["message"]).startswith(b"run paused")

    def _live_size(self) -> tuple[int, ...]:
        sizes = []
        for name in LIVE_DATASETS:
            if name in self._file:
                ds = self._file[name]
                ds.refresh()
                sizes.append(ds.shape[0])
        return tuple(sizes)

    def _update_slow(self) -> None:
        """Give the playback the rows recorded since (a new array: readers see the old or the new one)."""
        if self.slow is None:
            return
        for name in ("temperature", "hv"):
            ds = schema.slow_dataset(self._file, name)
            if ds is not None:
                ds.refresh()
                old = getattr(self.slow, name)
                if ds.shape[0] > len(old):  # read the new rows only
                    new = ds[len(old) :]
                    setattr(self.slow, name, np.concatenate([old, new]) if len(old) else new)

    def close(self) -> None:
        self._file.close()


def _empty(geometry: ReplayGeometry) -> ReplayChunk:
    shape = (0, len(geometry.channels), geometry.record_length_samples)
    return ReplayChunk(np.zeros(shape, np.int16), np.zeros(0, np.uint64), np.zeros(0, np.uint32))
