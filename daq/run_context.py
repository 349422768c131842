"""What the threads of one run share: the run state, the stop request, the counters and bounded hand-overs."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from drivers import DigitizerError
from simulators.csi_crystal import CrystalTemperatureError

log = logging.getLogger(__name__)

# their messages say what to do: logged without a traceback
EXPECTED_FAULTS: tuple[type[BaseException], ...] = (DigitizerError, OSError, CrystalTemperatureError)
LOSS_REASONS = ("board_memory_full", "analysis_queue_full", "writer_queue_full", "writer_failed")


class RunState(Enum):
    """The run's state machine: idle -> configuring -> running -> stopping -> done, or fault from anywhere."""

    IDLE = "idle"
    CONFIGURING = "configuring"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"
    FAULT = "fault"


_ALLOWED = {
    RunState.IDLE: {RunState.CONFIGURING},
    RunState.CONFIGURING: {RunState.RUNNING, RunState.STOPPING},
    RunState.RUNNING: {RunState.STOPPING},
    RunState.STOPPING: {RunState.DONE},
    RunState.DONE: set(),
    RunState.FAULT: set(),
}


@dataclass(frozen=True)
class CounterSnapshot:
    """Counters of a run at one moment. Every trigger is read or lost; every read event written or lost."""

    triggers: int
    read: int
    analysed: int
    written: int
    lost: dict[str, int]
    bytes_read: int
    memory_full_seen: int

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())

    def as_attrs(self) -> dict[str, int]:
        out = {
            "triggers": self.triggers,
            "events_read": self.read,
            "events_analysed": self.analysed,
            "events_written": self.written,
            "events_lost": self.lost_total,
            "bytes_read": self.bytes_read,
            "memory_full_seen": self.memory_full_seen,
        }
        out.update({f"lost_{reason}": n for reason, n in self.lost.items()})
        return out


@dataclass
class RunContext:
    """Shared by the readout, analysis and writer threads of one run."""

    state: RunState = RunState.IDLE
    stop_reason: str = ""
    fault: str = ""
    stop_event: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)  # re-entrant: signal handlers call in
    _triggers: int = 0
    _read: int = 0
    _analysed: int = 0
    _written: int = 0
    _bytes: int = 0
    _memory_full: int = 0
    _lost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOSS_REASONS, 0))
    state_listeners: list[Callable[[RunState], None]] = field(default_factory=list)
    paused: threading.Event = field(default_factory=threading.Event)
    pause_reason: str = ""
    _notes: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=10_000))

    def note(self, message: str, level: int | None = logging.INFO) -> None:
        """Record an event of the run (kept in the run file's /log) and log it (level None: already logged)."""
        if level is not None:
            log.log(level, "%s", message)
        self._notes.append((time.time(), message))

    def drain_notes(self) -> list[tuple[float, str]]:
        """The notes not yet written."""
        out = []
        while self._notes:
            out.append(self._notes.popleft())
        return out

    def pause(self, reason: str) -> None:
        """Stop taking data until resume(): the board is disarmed, the file stays open."""
        if not self.paused.is_set():
            self.pause_reason = reason
            self.paused.set()
            self.note(f"run paused: {reason}", logging.WARNING)

    def resume(self, reason: str) -> None:
        if self.paused.is_set():
            self.paused.clear()
            self.note(f"run resumed: {reason}", logging.WARNING)

    def set_state(self, new: RunState) -> None:
        """Move to `new` if the state machine allows it (fault is always allowed, once)."""
        with self._lock:
            if new is RunState.FAULT:
                if self.state is RunState.FAULT:
                    return
            elif new not in _ALLOWED[self.state]:
                raise RuntimeError(f"run state cannot go from {self.state.value} to {new.value}")
            self.state = new
        for listener in self.state_listeners:
            listener(new)

    def request_stop(self, reason: str) -> None:
        """Ask the run to stop cleanly; the first reason given is the one recorded."""
        with self._lock:
            if not self.stop_reason:
                self.stop_reason = reason
        self.stop_event.set()

    def report_fault(self, where: str, exc: BaseException) -> None:
        """A thread failed: record why, stop the run, mark it faulty."""
        message = f"{where}: {exc}"
        if isinstance(exc, EXPECTED_FAULTS):  # instrument and disk errors carry their own explanation
            log.error("run fault in %s", message)
            log.debug("traceback of the fault", exc_info=exc)
        else:
            log.error("run fault in %s", message, exc_info=exc)
        with self._lock:
            if not self.fault:
                self.fault = message
        self.request_stop(f"fault: {message}")
        self.set_state(RunState.FAULT)

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    # ---- counters ----

    def count_read(self, n_events: int, n_lost_by_board: int, n_bytes: int, memory_full: bool) -> None:
        with self._lock:
            self._read += n_events
            self._triggers += n_events + n_lost_by_board
            self._lost["board_memory_full"] += n_lost_by_board
            self._bytes += n_bytes
            self._memory_full += int(memory_full)

    def count_lost(self, reason: str, n_events: int) -> None:
        with self._lock:
            self._lost[reason] += n_events

    def count_analysed(self, n_events: int) -> None:
        with self._lock:
            self._analysed += n_events

    def count_written(self, n_events: int) -> None:
        with self._lock:
            self._written += n_events

    def counters(self) -> CounterSnapshot:
        with self._lock:
            return CounterSnapshot(
                self._triggers, self._read, self._analysed, self._written, dict(self._lost), self._bytes,
                self._memory_full,
            )  # fmt: skip

    # ---- bounded hand-over ----

    def put(self, q: queue.Queue[Any], item: Any, n_events: int, reason: str, timeout_s: float) -> bool:
        """Put on a bounded queue, blocking at most `timeout_s`; on timeout count the events lost and log why."""
        try:
            q.put(item, timeout=timeout_s)
            return True
        except queue.Full:
            self.count_lost(reason, n_events)
            log.error(
                "%s: queue full for %.1f s, dropped %d events. Lower the trigger rate or check the disk.",
                reason, timeout_s, n_events,
            )  # fmt: skip
            return False

    def put_end(self, q: queue.Queue[Any], consumer: threading.Thread | None) -> None:
        """Tell the consumer that nothing more comes; wait for room as long as it is alive."""
        while True:
            try:
                q.put(None, timeout=0.2)
                return
            except queue.Full:
                if consumer is not None and not consumer.is_alive():
                    return


def elapsed_since(t0: float) -> float:
    """Seconds since a time.monotonic() stamp."""
    return time.monotonic() - t0
