"""What an interactive session keeps for its views: reading histories, recent log lines, the run folder's state."""

from __future__ import annotations

import logging
import shutil
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from daq.writer import next_run_number

HISTORY_POINTS = 200_000  # readings kept per series (hours at 1 Hz)
DISPLAY_POINTS = 2000  # a strip chart gets at most this many (min/max pairs) points
LOG_LINES = 2000


class SeriesHistory:
    """Time series of readings in a fixed NumPy ring (the oldest dropped when full), thread-safe; downsampled
    copies for display. `version` counts the readings added, so a view redraws only when there is news."""

    def __init__(self, names: tuple[str, ...], capacity: int = HISTORY_POINTS) -> None:
        self.names = names
        self._ring = np.zeros((capacity, len(names) + 1), np.float64)
        self.version = 0
        self._lock = threading.Lock()

    def add(self, t: float, *values: float) -> None:
        with self._lock:
            self._ring[self.version % len(self._ring)] = (t, *values)
            self.version += 1

    def arrays(self, max_points: int = DISPLAY_POINTS) -> dict[str, NDArray[np.float64]]:
        """time_s and each series in time order. Longer histories are cut into equal buckets keeping each
        bucket's lowest and highest point of the first series (spikes and steps stay visible), plus the latest."""
        with self._lock:
            n, capacity = self.version, len(self._ring)
            if n <= capacity:
                data = self._ring[:n].copy()
            else:
                cut = n % capacity
                data = np.concatenate((self._ring[cut:], self._ring[:cut]))
        if len(data) > max_points:
            per = -(-len(data) // (max_points // 2))  # rows per bucket
            whole = len(data) // per
            column = data[:, 1 if data.shape[1] > 1 else 0]
            series = column[: whole * per].reshape(whole, per)
            first = np.arange(whole) * per
            tail = column[whole * per :]  # the newest rows: a bucket of their own
            ends = [whole * per + int(tail.argmin()), whole * per + int(tail.argmax())] if tail.size else []
            lows, highs = first + series.argmin(axis=1), first + series.argmax(axis=1)
            keep = np.concatenate((lows, highs, np.asarray(ends, int), [len(data) - 1]))
            data = data[np.unique(keep)]
        return {"time_s": data[:, 0], **{name: data[:, i + 1] for i, name in enumerate(self.names)}}


class LogBuffer(logging.Handler):
    """The last log records as text lines, for a log panel (thread-safe; front ends take new lines)."""

    def __init__(self, capacity: int = LOG_LINES) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._count = 0
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._lock2:
            self._count += 1
            self._lines.append((self._count, text))

    def since(self, seen: int) -> tuple[int, list[str]]:
        """Lines after number `seen`, and the number of the last one."""
        with self._lock2:
            return self._count, [t for n, t in self._lines if n > seen]


class DiskWatch:
    """The run folder's free space and next run number, looked up once a second on a thread of its own
    (a slow or hung file system never holds up a front end's refresh)."""

    PERIOD_S = 1.0

    def __init__(self, output_dir: Callable[[], str]) -> None:
        self._output_dir = output_dir
        self._latest: tuple[float, int] = (float("nan"), 0)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk watch", daemon=True)
        self._thread.start()

    def latest(self) -> tuple[float, int]:
        """(free MB, next run number); NaN and 0 until the first look."""
        return self._latest

    def _run(self) -> None:
        while True:
            directory = Path(self._output_dir())
            try:
                free_mb = shutil.disk_usage(_existing(directory)).free / 1e6
            except OSError:
                free_mb = float("nan")
            try:
                number = next_run_number(directory)
            except OSError:
                number = 0
            self._latest = (free_mb, number)
            if self._halt.wait(self.PERIOD_S):
                return

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(5.0)


def _existing(path: Path) -> Path:
    """The nearest existing folder of `path` (for the free space of a run folder not made yet)."""
    p = path.resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p
