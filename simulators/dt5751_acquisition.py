"""The simulated DT5751's acquisition: run state, board time, event memory (FIFO), trigger counter, losses.

Board time follows the (injectable) clock in `realtime` pace, so a reader that falls behind
fills the memory and triggers are lost as on the board: counted by TRIGGER_ID and flagged in
register 0x8104. In `max` pace records are made when the reader asks, as fast as they can be
generated, and nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from drivers.felib_types import ErrorCode, FelibError
from simulators.pcsi_signal import BoardSetup, PcsiSignal, Record

log = logging.getLogger(__name__)

TRIGGER_ID_MODULO = 1 << 24
MAX_PACE_BATCH = 16
INTERACTIONS_PER_STEP = 256
ADVANCE_BUDGET_S = 0.25  # longest a realtime read spends catching up before the board clock slows
STATUS_RUN = 1 << 2
STATUS_EVENT_READY = 1 << 3
STATUS_EVENT_FULL = 1 << 4


class BoardAcquisition:
    """Run control and event memory of one simulated board."""

    def __init__(
        self,
        signal: PcsiSignal,
        pace: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.signal = signal
        self.pace = pace
        self._clock = clock
        self._sleep = sleep
        self.capacity = 128
        self.setup: BoardSetup | None = None
        self.armed = False
        self.running = False
        self.stop_pending = False
        self.count_all = False
        self.fifo: deque[tuple[Record, int]] = deque()
        self.trigger_counter = 0
        self.lost_memory_full = 0
        self.records_made = 0
        self.lag_s = 0.0  # how far the board clock fell behind the wall clock (realtime, too high a rate)
        self._warned_lag = False
        self._stream_now_ns = 0.0
        self._t0_stream_ns = 0.0
        self._t_arm_wall_s = 0.0

    # ---- board time ----

    def _stream_now(self) -> float:
        if self.pace == "max" or not self.running:
            return self._stream_now_ns
        return self._t0_stream_ns + (self._clock() - self._t_arm_wall_s) * 1e9

    def row_of(self, channel: int) -> int:
        """Row of a board channel in a record's waveform (records hold every channel)."""
        return channel

    def timestamp_ns(self, record: Record) -> int:
        """Trigger time since the run started, ns."""
        return max(0, round(record.time_ns - self._t0_stream_ns))

    # ---- run control ----

    def arm(self, setup: BoardSetup, capacity: int, count_all: bool, start_now: bool) -> None:
        """Arm with `setup`; start now (software start) or wait for start()."""
        if self.armed:
            raise FelibError("acquisition already armed", ErrorCode.COMMAND_ERROR, "CAEN_FELib_SendCommand")
        self.setup = setup
        self.capacity = capacity
        self.count_all = count_all
        self.armed = True
        self.stop_pending = False
        self.trigger_counter = 0
        if start_now:
            self.start()

    def start(self) -> None:
        """Start the armed run (software start, S-IN or first trigger)."""
        if not self.armed or self.running:
            return
        self._t0_stream_ns = self._stream_now_ns
        self.signal.skip_until(self._t0_stream_ns)
        self.signal.busy_until_ns = -float("inf")
        self._t_arm_wall_s = self._clock()
        self.running = True

    def disarm(self) -> None:
        """Stop taking triggers; what is in memory stays readable, then STOP is signalled once."""
        if self.running:
            self._advance()
            self._stream_now_ns = self._stream_now()
        self.stop_pending = self.stop_pending or self.armed  # a second disarm keeps the pending STOP
        self.armed = False
        self.running = False

    def clear(self) -> None:
        """Drop everything in the event memory (CLEARDATA)."""
        self.fifo.clear()

    def update_setup(self, setup: BoardSetup) -> None:
        """Apply settings changed during the run (thresholds)."""
        if self.armed:
            self._advance()  # what happened before the change was taken with the old settings
            self.setup = setup

    # ---- triggers and memory ----

    def _store(self, record: Record) -> None:
        event_id = self.trigger_counter
        if len(self.fifo) >= self.capacity:
            self.lost_memory_full += 1
            if self.count_all:
                self.trigger_counter = (self.trigger_counter + 1) % TRIGGER_ID_MODULO
            return
        self.fifo.append((record, event_id))
        self.records_made += 1
        self.trigger_counter = (self.trigger_counter + 1) % TRIGGER_ID_MODULO

    def _advance(self, at_least_ns: float = 0.0) -> None:
        """Take every trigger that happened up to now on the board clock (realtime pace).

        at_least_ns: stream time known to be reached (after sleeping until an interaction), so
        that rounding of the clock cannot leave that interaction pending. Records that find the
        memory full are not digitised. If catching up takes longer than ADVANCE_BUDGET_S, the
        simulator cannot keep up with the rate in real time: the board clock is slowed down by
        the backlog (counted in lag_s, warned once) instead of falling further behind every call.
        """
        if self.pace == "max" or not self.running or self.setup is None:
            return
        now = max(self._stream_now(), at_least_ns)
        give_up_at = time.monotonic() + ADVANCE_BUDGET_S  # real CPU time, whatever clock the board runs on
        while True:
            keep = len(self.fifo) < self.capacity
            record = self.signal.next_triggered(self.setup, now, INTERACTIONS_PER_STEP, keep)
            if record is not None:
                self._store(record)
            elif not self.signal.exhausted:
                return  # caught up with the board clock
            if time.monotonic() > give_up_at:
                behind_s = max(0.0, (now - self.signal.next_arrival_ns()) * 1e-9)
                self._t_arm_wall_s += behind_s
                self.lag_s += behind_s
                if not self._warned_lag:
                    self._warned_lag = True
                    log.warning(
                        "simulated DT5751: rate_hz=%g is more than this machine simulates in real time; the "
                        "board clock runs slow (%.2f s behind so far). Lower rate_hz or use pace=max.",
                        self.signal.source.total_rate_hz, self.lag_s,
                    )  # fmt: skip
                return

    def software_trigger(self) -> None:
        """SENDSWTRIGGER: record whatever the input holds now."""
        if not self.running or self.setup is None:
            return
        self._advance()
        t = self._stream_now()
        if self.pace == "max":
            self._stream_now_ns = t = t + self.setup.record_length
        self._store(self.signal.software_record(self.setup, t))

    def status_register(self) -> int:
        """Acquisition status register 0x8104: bit 2 run, bit 3 event ready, bit 4 memory full."""
        self._advance()
        value = STATUS_RUN if self.running else 0
        if self.fifo:
            value |= STATUS_EVENT_READY
        if len(self.fifo) >= self.capacity:
            value |= STATUS_EVENT_FULL
        return value

    def wait(self, timeout_ms: int) -> None:
        """Return once an event is in memory; raise FelibError TIMEOUT, or STOP once after a disarm."""
        func = "CAEN_FELib_ReadData"
        self._advance()
        if self.fifo:
            return
        if not self.running:
            if self.stop_pending and not self.armed:
                self.stop_pending = False
                raise FelibError("end of run", ErrorCode.STOP, func)
            self._sleep_ms(timeout_ms)
            raise FelibError("no event in time", ErrorCode.TIMEOUT, func)
        assert self.setup is not None
        if self.pace == "max":
            self._make_now(timeout_ms)
            if self.fifo:
                return
            raise FelibError("no event in time", ErrorCode.TIMEOUT, func)
        deadline = self._clock() + (timeout_ms / 1000.0 if timeout_ms >= 0 else float("inf"))
        while True:
            next_ns = self.signal.next_arrival_ns()
            next_wall = self._t_arm_wall_s + (next_ns - self._t0_stream_ns) * 1e-9
            now = self._clock()
            if next_wall > deadline:
                if deadline > now:
                    self._sleep(deadline - now)
                self._advance()
                if self.fifo:
                    return
                raise FelibError("no event in time", ErrorCode.TIMEOUT, func)
            if next_wall > now:
                self._sleep(next_wall - now)
            self._advance(at_least_ns=next_ns)
            if self.fifo:
                return

    def _make_now(self, timeout_ms: int) -> None:
        """Max pace: make up to MAX_PACE_BATCH records at once; give up after the read's timeout (or 50 ms)."""
        assert self.setup is not None
        give_up_at = time.monotonic() + max(timeout_ms / 1000.0, 0.05)
        made = 0
        while made < MAX_PACE_BATCH:
            record = self.signal.next_triggered(self.setup, float("inf"), INTERACTIONS_PER_STEP)
            if record is not None:
                self._stream_now_ns = record.time_ns
                self._store(record)
                made += 1
            elif time.monotonic() > give_up_at:
                return  # nothing crosses the threshold (e.g. a rising edge on negative pulses)

    def _sleep_ms(self, timeout_ms: int) -> None:
        if timeout_ms > 0:
            self._sleep(timeout_ms / 1000.0)
