"""Slow control: one thread per instrument that owns its connection, applies queued commands and polls.

Other threads never call a driver: they submit a function (run on the owner thread, result in a
Future) and read the latest published reading. Readings also go to a bounded buffer that the run
file's writer drains into /slow/..., and to observers (interlocks, displays).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from drivers.lakeshore325 import LakeShore325
from drivers.ndt1470 import FAULT_BITS, ChannelStatus, Ndt1470

log = logging.getLogger(__name__)

D = TypeVar("D")
R = TypeVar("R")
BUFFER_READINGS = 100_000
FAILURES_BEFORE_FAULT = 3


@dataclass(frozen=True)
class TemperatureReading:
    """A Lake Shore poll: stage (input A), crystal (input B), setpoint and heater."""

    time_s: float  # Unix time
    stage_k: float
    crystal_k: float
    setpoint_k: float
    heater_pct: float
    heater_range: int
    ramping: bool


@dataclass(frozen=True)
class HvReading:
    """An NDT1470 poll of the PMT channel."""

    time_s: float
    channel: int
    vset_v: float
    vmon_v: float
    imon_ua: float
    status: ChannelStatus

    @property
    def flags(self) -> str:
        return " ".join(f.name for f in ChannelStatus if f in self.status and f.name) or "off"

    @property
    def faulted(self) -> bool:
        return bool(self.status & (FAULT_BITS | ChannelStatus.OVC))


class InstrumentLoop(threading.Thread, Generic[D, R]):
    """Own one instrument: open it on this thread, run submitted commands, poll every period_s, publish."""

    def __init__(
        self,
        name: str,
        open_driver: Callable[[], D],
        poll: Callable[[D], R | None],
        period_s: float,
        on_close: Callable[[D], None] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._open, self._poll, self.period_s, self._on_close = open_driver, poll, period_s, on_close
        self._commands: queue.Queue[tuple[Callable[[D], Any], Future[Any]]] = queue.Queue()
        self._halt = threading.Event()
        self._buffer: deque[R] = deque(maxlen=BUFFER_READINGS)
        self._buffer_lock = threading.Lock()
        self.dropped_readings = 0
        self.latest: R | None = None
        self.error = ""  # the last failure, "" while polls succeed
        self.safe_state_error = ""  # why the instrument's safe state at close is not confirmed ("" if it is)
        self.faulted = False  # several polls in a row failed: the instrument is silent
        self.opened = threading.Event()
        self.observers: list[Callable[[R | None, str], None]] = []
        self._new_reading = threading.Condition()

    def submit(self, fn: Callable[[D], Any]) -> Future[Any]:
        """Run fn(driver) on the owner thread; the Future gives its result or exception."""
        future: Future[Any] = Future()
        if not self.is_alive() and self.opened.is_set():
            future.set_exception(RuntimeError(f"{self.name}: the instrument loop has stopped ({self.error})"))
            return future
        self._commands.put((fn, future))
        return future

    def wait_for_reading(self, timeout_s: float) -> R | None:
        """Block until the next poll publishes (or timeout); return the latest reading."""
        with self._new_reading:
            self._new_reading.wait(timeout_s)
        return self.latest

    def drain(self) -> list[R]:
        """Take the readings buffered since the last drain (for the run file)."""
        with self._buffer_lock:
            out = list(self._buffer)
            self._buffer.clear()
        return out

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop polling; the loop puts the instrument in its safe state and closes it.

        Returns False (and says so in .error) if the loop is still busy after timeout_s.
        """
        self._halt.set()
        self.join(timeout_s)
        if self.is_alive():
            self.safe_state_error = f"{self.name}: still closing after {timeout_s:g} s"
            log.error("%s, the safe state is not confirmed", self.safe_state_error)
            return False
        return True

    def run(self) -> None:
        try:
            driver = self._open()
        except Exception as exc:  # noqa: BLE001 - reported to the observers and kept in .error
            self._fail(exc)
            self.opened.set()
            self._fail_pending()
            return
        self.opened.set()
        failures = 0
        try:
            while not self._halt.is_set():
                self._run_commands(driver)
                try:
                    reading = self._poll(driver)
                except Exception as exc:  # noqa: BLE001 - a silent or garbled instrument: count, report
                    failures += 1
                    self.error = str(exc)
                    log.warning("%s poll failed (%d in a row): %s", self.name, failures, exc)
                    if failures >= FAILURES_BEFORE_FAULT:
                        self._fail(exc)  # every silent poll is reported: a run that starts later sees it
                else:
                    failures = 0
                    self.faulted = False
                    self.error = ""
                    if reading is not None:  # None: the poll has nothing to record yet
                        self._publish(reading)
                self._wait_period()
        finally:
            self._run_commands(driver)
            try:
                if self._on_close is not None:
                    self._on_close(driver)
            except Exception as exc:  # noqa: BLE001 - the safe state could not be reached: say so loudly
                log.error("%s: could not reach the safe state while closing: %s", self.name, exc)
                self.safe_state_error = f"{self.name}: {exc}"
            finally:
                close = getattr(driver, "close", None)
                if close is not None:
                    close()
            self._fail_pending()

    def _fail(self, exc: BaseException) -> None:
        if not self.faulted:
            log.error("%s is not answering: %s", self.name, exc)
        self.faulted = True
        self.error = str(exc)  # driver errors name the instrument already
        for observer in tuple(self.observers):  # a copy: runs add and remove theirs from other threads
            observer(None, self.error)

    def _fail_pending(self) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            future.set_exception(
                RuntimeError(f"{self.name} stopped before running the command ({self.error})")
            )

    def _run_commands(self, driver: D) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(driver))
                except Exception as exc:  # noqa: BLE001 - handed to the caller through the Future
                    future.set_exception(exc)

    def _publish(self, reading: R) -> None:
        self.latest = reading
        with self._buffer_lock:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped_readings += 1
            self._buffer.append(reading)
        with self._new_reading:
            self._new_reading.notify_all()
        for observer in tuple(self.observers):  # a copy: runs add and remove theirs from other threads
            observer(reading, "")

    def _wait_period(self) -> None:
        deadline = time.monotonic() + self.period_s
        while not self._halt.is_set() and self._commands.empty():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._halt.wait(min(left, 0.05))


def poll_temperatures(
    clock: Callable[[], float | None] = time.time,
) -> Callable[[LakeShore325], TemperatureReading | None]:
    """A Lake Shore poll (six queries, paced by the driver).

    clock: the readings' time (Unix s); None from it means there is nothing to record yet (a replay
    whose recorded series has no row so far), and the poll returns None.
    """

    def poll(ls: LakeShore325) -> TemperatureReading | None:
        t = clock()
        if t is None:
            return None
        return TemperatureReading(
            time_s=t,
            stage_k=ls.temperature_k("A"),
            crystal_k=ls.temperature_k("B"),
            setpoint_k=ls.setpoint_k(1),
            heater_pct=ls.heater_output_pct(1),
            heater_range=ls.heater_range(1),
            ramping=ls.ramping(1),
        )

    return poll


def poll_hv(
    channel: int, clock: Callable[[], float | None] = time.time
) -> Callable[[Ndt1470], HvReading | None]:
    """An NDT1470 poll of one channel; clock as for poll_temperatures."""

    def poll(hv: Ndt1470) -> HvReading | None:
        t = clock()
        if t is None:
            return None
        return HvReading(
            time_s=t,
            channel=channel,
            vset_v=hv.get(channel, "VSET"),
            vmon_v=hv.get(channel, "VMON"),
            imon_ua=hv.get(channel, "IMON"),
            status=hv.status(channel),
        )

    return poll
