"""Slow-control playback: the Lake Shore 325 and NDT1470 simulators answer with a run's recorded readings.

The replayed DT5751 moves a ReplayClock to the board time of each event it plays; a SeriesPlayback
returns the last recorded row at or before that moment (the file's started_at + board time), so the
temperatures and HV of the replayed run are those of the original at the same point of the data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray


class ReplayClock:
    """Where a replay is in the recorded run: board time (ns) of the event played last."""

    def __init__(self) -> None:
        self.board_ns = 0.0  # written by the readout thread, read by the instrument simulators


class SeriesPlayback:
    """A recorded series (rows with a `time_s` field, Unix seconds, in time order) looked up at the replay's position.

    rows: returns the series as it is now; a run file still being written replaces it with a longer one.
    channel: the recorded HV channel (HV series only).
    """

    def __init__(
        self,
        rows: Callable[[], NDArray[np.void]],
        started_at_unix_s: float,
        clock: ReplayClock,
        channel: int = 0,
    ) -> None:
        self._rows = rows
        self._cache: tuple[NDArray[np.void] | None, NDArray[np.float64]] = (None, np.zeros(0))
        self._started = started_at_unix_s
        self._clock = clock
        self.channel = channel

    def now(self) -> np.void | None:
        """The row in force at the replay's position (the first row before the series starts; None: no row)."""
        rows = self._rows()  # one attribute read: a new series is complete when we see it
        seen, times = self._cache
        if rows is not seen:
            times = rows["time_s"].astype(np.float64) if len(rows) else np.zeros(0)
            self._cache = (rows, times)  # one assignment: a concurrent caller sees the old pair or the new
        if not len(rows):
            return None
        t = self._started + self._clock.board_ns * 1e-9
        i = int(np.searchsorted(times, t, side="right")) - 1
        return rows[max(i, 0)]
