"""Unwrap the DT5751's trigger time tag into a monotonic 64-bit count of ns since the run started.

The x751 counts trigger time in 8 ns ticks in a 31-bit field (it wraps every 2^31 x 8 ns = 17.18 s);
with the extended time tag (Dig1 `/par/EXTRAS_OPT` = `EXTRAS_OPT_TT48`, [U] on the x751) the field has
48 bits and wraps after ~26 days. A timestamp smaller than the one before it is a wrap: one period is
added from then on, within a batch and across batches. Limitation: a gap of more than one whole
period between two consecutive events (no trigger for 17 s without the extended tag) cannot be seen
in the tag and shifts every later timestamp back by a multiple of the period; the readout logs a
warning when its own clock saw such a gap. If the library already delivers an unwrapped 64-bit time,
nothing ever decreases and the values pass through unchanged.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

TIME_TAG_TICK_NS = 8  # 125 MHz trigger time tag clock of the x751
TIME_TAG_BITS = 31
EXTENDED_TIME_TAG_BITS = 48


def wrap_period_ns(extended: bool) -> int:
    """Period after which the board's TIMESTAMP_NS wraps, ns: 2^31 x 8 ns, or 2^48 x 8 ns if extended."""
    return TIME_TAG_TICK_NS << (EXTENDED_TIME_TAG_BITS if extended else TIME_TAG_BITS)


class TimestampUnwrapper:
    """Turn wrapping board timestamps (ns) into monotonic ones; reset() at every arm."""

    def __init__(self, period_ns: int) -> None:
        if period_ns <= 0:
            raise ValueError(f"wrap period must be > 0 ns, not {period_ns}")
        self.period_ns = int(period_ns)
        self.wraps = 0  # wraps seen since the last reset
        self._last_raw: int | None = None

    def reset(self, period_ns: int | None = None) -> None:
        """Start a new run (the board's counter restarts at 0); optionally with another period."""
        if period_ns is not None:
            self.period_ns = int(period_ns)
        self.wraps = 0
        self._last_raw = None

    def unwrap(self, raw_ns: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """Return the monotonic timestamps (uint64 ns) of consecutive events' raw `raw_ns` (uint64 ns)."""
        raw = np.asarray(raw_ns, dtype=np.uint64)
        if raw.size == 0:
            return raw.copy()
        values = raw.astype(np.int64)
        previous = np.empty_like(values)
        previous[0] = values[0] if self._last_raw is None else self._last_raw
        previous[1:] = values[:-1]
        wraps = self.wraps + np.cumsum(values < previous)
        self.wraps = int(wraps[-1])
        self._last_raw = int(values[-1])
        return (raw + wraps.astype(np.uint64) * np.uint64(self.period_ns)).astype(np.uint64)
