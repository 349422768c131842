"""Rates over the last seconds of a run (a front end's "now"), beside RunStatus's whole-run averages."""

from __future__ import annotations

from collections import deque

from daq.engine import RunStatus


class RecentRates:
    """Trigger rate and data rate over the last `window_s` seconds of run time, from successive statuses."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, int, int]] = deque()  # (elapsed s, triggers, bytes read)
        self._run: object = None

    def update(self, status: RunStatus) -> tuple[float, float] | None:
        """Add a status; (trigger Hz, MB/s) over the window, or None until 1 s of run time is covered."""
        key = (status.path, status.run_number)
        if key != self._run or (self._points and status.elapsed_s < self._points[-1][0]):
            self._points.clear()  # another run
            self._run = key
        c = status.counters
        if not self._points or status.elapsed_s > self._points[-1][0]:
            self._points.append((status.elapsed_s, c.triggers, c.bytes_read))
        while len(self._points) > 2 and self._points[-1][0] - self._points[1][0] >= self.window_s:
            self._points.popleft()
        t0, n0, b0 = self._points[0]
        t1, n1, b1 = self._points[-1]
        if t1 - t0 < 1.0:
            return None
        return (n1 - n0) / (t1 - t0), (b1 - b0) / 1e6 / (t1 - t0)
