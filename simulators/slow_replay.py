"""Slow-control playback: the Lake Shore 325 and NDT1470 simulators answer with a run's recorded readings.

The replayed DT5751 moves a ReplayClock to the board time of each event it plays; a SeriesPlayback
returns the last recorded row at or before that moment (the file's started_at + board time), so the
temperatures and HV of the replayed run are those of the original at the same point of the data.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class ReplayClock:
    """Where a replay is in the recorded run: board time (ns) of the event played last."""

    def __init__(self) -> None:
        self.board_ns = 0.0  # written by the readout thread, read by the instrument simulators


class SeriesPlayback:
    """A recorded series (rows with a `time_s` field, Unix seconds) looked up at the replay's position."""

    def __init__(self, rows: NDArray[np.void], started_at_unix_s: float, clock: ReplayClock) -> None:
        if len(rows) == 0:
            raise ValueError("a playback needs at least one recorded row")
        order = np.argsort(rows["time_s"], kind="stable")
        self.rows = rows[order]
        self._times = self.rows["time_s"].astype(np.float64)
        self._started = started_at_unix_s
        self._clock = clock

    def now(self) -> np.void:
        """The row in force at the replay's position (the first row before the series starts)."""
        t = self._started + self._clock.board_ns * 1e-9
        i = int(np.searchsorted(self._times, t, side="right")) - 1
        return self.rows[max(i, 0)]

    @property
    def channel(self) -> int:
        """The channel of an HV series (its first row's)."""
        return int(self.rows[0]["channel"])
