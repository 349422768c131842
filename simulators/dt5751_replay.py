"""The simulated DT5751's acquisition when it plays recorded events (a replay source) instead of the physics model.

Same interface as simulators.dt5751_acquisition.BoardAcquisition, so the device tree, the driver and
the whole pipeline see a board. Recorded events are triggers: they are played while a trigger source is
enabled (a channel's self-trigger), so the driver's baseline measurement with self-triggers off gets
software-triggered records only, made of recorded pre-trigger samples, and consumes no recorded event.

speed None: as fast as the reader takes them (nothing lost). speed S: event i is released at
t_start + (t_i - t_first) / S of wall time, t_i its recorded board time; the board memory holds
`capacity` events, and events that find it full are lost as on the board (a gap in the trigger IDs).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from drivers.felib_types import ErrorCode, FelibError
from simulators.pcsi_signal import BoardSetup
from simulators.replay_source import TRIGGER_ID_MODULO, ReplayChunk, ReplayError, ReplaySource
from simulators.slow_replay import ReplayClock

READ_EVENTS = 1024  # events read from the source at a time as fast as possible (paced: see _read_size)
STATUS_RUN = 1 << 2
STATUS_EVENT_READY = 1 << 3
STATUS_EVENT_FULL = 1 << 4
FOLLOW_POLL_S = 0.05  # how long to wait for a run file still being written before asking again
FIRST_EVENT_WAIT_S = 10.0  # how long a baseline measurement waits for a followed file's first event
_READ = "CAEN_FELib_ReadData"


@dataclass
class ReplayRecord:
    """One event in the board memory: rows of the recorded channels, its board time."""

    waveform: NDArray[np.int16]  # (recorded channels, samples)
    time_ns: int


class ReplayAcquisition:
    """Run control and event memory of a board that plays a ReplaySource."""

    def __init__(
        self,
        source: ReplaySource,
        speed: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        position: ReplayClock | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"replay speed must be > 0 (or None: as fast as possible), not {speed}")
        if speed is not None and not source.geometry.has_time_tags:
            speed = None  # nothing to pace by (the source has said so in its notes)
        self.source = source
        self.speed = speed
        self.position = position or ReplayClock()
        self._clock, self._sleep = clock, sleep
        geometry = source.geometry
        self._rows = {ch: row for row, ch in enumerate(geometry.channels)}
        self.capacity = 128
        self.setup: BoardSetup | None = None
        self.armed = self.running = self.stop_pending = False
        self.fifo: deque[tuple[ReplayRecord, int]] = deque()
        self.played = 0  # recorded events put into the memory
        self.lost_memory_full = 0  # recorded events that found the memory full (realtime speeds)
        self.source_done = False
        self.on_end: Callable[[], None] | None = None  # called once when the last recorded event was played
        self.first_played_ns: int | None = None
        self.last_played_ns = 0
        self._chunk: ReplayChunk | None = None
        self._next = 0
        self._sw_counter = 0
        self._wall0 = 0.0
        self._t0_ns: int | None = None
        self._baseline_event = 0
        # (board ns, trigger ID) of the last recorded event put into the memory
        self._last_recorded: tuple[int, int] | None = None
        self._t_base_ns = 0
        self._id_base = 0

    # ---- the recorded events ----

    def row_of(self, channel: int) -> int:
        """Row of a board channel in the recorded waveforms."""
        return self._rows[channel]

    def timestamp_ns(self, record: ReplayRecord) -> int:
        return record.time_ns

    def _pending(self) -> bool:
        """True if a recorded event is ready to be played (reading the source when needed)."""
        while self._chunk is None or self._next >= len(self._chunk):
            if self.source_done:
                return False
            try:
                chunk = self.source.read(self._read_size())
            except (ReplayError, OSError) as exc:
                raise FelibError(f"replay source: {exc}", ErrorCode.GENERIC_ERROR, _READ) from exc
            if chunk is None:
                self.source_done = True
                if self.on_end is not None:
                    self.on_end()
                return False
            if not len(chunk):
                return False  # a run file still being written: nothing new yet
            self._chunk, self._next = chunk, 0
        return True

    def _read_size(self) -> int:
        """Events to read from the source at once. Paced, a read holds the board's timeline back while
        events fall due; they then arrive at once, so it takes at most a quarter of the memory's events
        (reading READ_EVENTS of 8000 samples took ~85 ms under CPU load: more than the 128-event
        memory's worth at 2 kHz, lost although the readout kept up)."""
        if self.speed is None:
            return READ_EVENTS
        return max(1, min(READ_EVENTS, self.capacity // 4))

    def _play_one(self) -> None:
        """Move the next recorded event into the memory (or lose it if the memory is full)."""
        chunk, i = self._chunk, self._next
        assert chunk is not None
        self._next += 1
        t_ns, trigger_id = int(chunk.timestamp_ns[i]), int(chunk.trigger_id[i])
        self.position.board_ns = float(t_ns)
        if len(self.fifo) >= self.capacity:
            self.lost_memory_full += 1
            return
        self._last_recorded = (t_ns, trigger_id)
        # as the board's, the clock and the counter restart at each arm (the readout continues them)
        board_ns = max(t_ns - self._t_base_ns, 0)
        self.fifo.append(
            (ReplayRecord(chunk.waveforms[i], board_ns), (trigger_id - self._id_base) % TRIGGER_ID_MODULO)
        )
        self.played += 1
        if self.first_played_ns is None:
            self.first_played_ns = t_ns
        self.last_played_ns = t_ns

    def board_time_ns(self) -> float:
        """The replay's position on the board clock (as the board reports event times since the last arm)."""
        return self.position.board_ns - self._t_base_ns

    @property
    def played_span_ns(self) -> int:
        """Board time from the first to the last event played."""
        return 0 if self.first_played_ns is None else self.last_played_ns - self.first_played_ns

    def _next_time_ns(self) -> int:
        assert self._chunk is not None
        return int(self._chunk.timestamp_ns[self._next])

    def _release_wall(self) -> float:
        """Wall time at which the next recorded event is due (realtime or scaled speed)."""
        assert self.speed is not None
        t = self._next_time_ns()
        if self._t0_ns is None:
            self._t0_ns = t
        return self._wall0 + (t - self._t0_ns) * 1e-9 / self.speed

    def _release_due(self) -> None:
        """Scaled speed: play every event whose time has come."""
        if self.speed is None or not self.running or not self._triggers_on():
            return
        now = self._clock()
        while self._pending() and self._release_wall() <= now:
            self._play_one()

    def _triggers_on(self) -> bool:
        return self.setup is not None and any(t is not None for t in self.setup.threshold_adc)

    # ---- run control ----

    def arm(self, setup: BoardSetup, capacity: int, count_all: bool, start_now: bool) -> None:
        if self.armed:
            raise FelibError("acquisition already armed", ErrorCode.COMMAND_ERROR, "CAEN_FELib_SendCommand")
        self._check_setup(setup)
        self.setup, self.capacity = setup, capacity
        self.armed, self.stop_pending = True, False
        self._sw_counter = 0
        if self._last_recorded is not None:  # a re-arm (after a pause): the clock and counter restart here
            self._t_base_ns = self._last_recorded[0]
            self._id_base = (self._last_recorded[1] + 1) % TRIGGER_ID_MODULO
        if start_now:
            self.start()

    def _check_setup(self, setup: BoardSetup) -> None:
        geometry = self.source.geometry
        func = "CAEN_FELib_SendCommand"
        if setup.record_length != geometry.record_length_samples:
            raise FelibError(
                f"the replayed data ({geometry.description}) have records of {geometry.record_length_samples} "
                f"samples, the board is set to {setup.record_length}: set the record length to match",
                ErrorCode.COMMAND_ERROR,
                func,
            )
        missing = [ch for ch, on in enumerate(setup.enabled) if on and ch not in self._rows]
        if missing:
            raise FelibError(
                f"channel(s) {missing} enabled, but the replayed data ({geometry.description}) hold channels "
                f"{list(geometry.channels)} only",
                ErrorCode.COMMAND_ERROR,
                func,
            )

    def start(self) -> None:
        if not self.armed or self.running:
            return
        self.running = True
        self._wall0 = self._clock()  # timing restarts at the next event (after a pause too)
        self._t0_ns = None

    def disarm(self) -> None:
        if self.running:
            self._release_due()
        self.stop_pending = self.stop_pending or self.armed
        self.armed = self.running = False

    def clear(self) -> None:
        self.fifo.clear()

    def update_setup(self, setup: BoardSetup) -> None:
        if self.armed:
            self._release_due()
            self.setup = setup

    def software_trigger(self) -> None:
        """A record of the recorded baseline: the pre-trigger samples of a recorded event, repeated."""
        if not self.running or self.setup is None:
            return
        waveform = self._baseline_record()
        self.fifo.append((ReplayRecord(waveform, 0), self._sw_counter))
        self._sw_counter = (self._sw_counter + 1) % TRIGGER_ID_MODULO

    def _baseline_record(self) -> NDArray[np.int16]:
        give_up_at = self._clock() + FIRST_EVENT_WAIT_S
        while not self._pending() and not self.source_done and self._clock() < give_up_at:
            self._sleep(FOLLOW_POLL_S)  # a run file just created: its first events are on their way
        if not self._pending():
            raise FelibError(
                "the replay source holds no event to take a baseline from (an empty file, or a followed run "
                "that recorded nothing yet): replay it once it holds events", ErrorCode.GENERIC_ERROR,
                "CAEN_FELib_SendCommand",
            )  # fmt: skip
        assert self._chunk is not None
        k = min(self._next + self._baseline_event, len(self._chunk) - 1)
        self._baseline_event += 1
        recorded = self._chunk.waveforms[k]
        geometry = self.source.geometry
        pre = max(8, (geometry.record_length_samples - geometry.post_trigger_samples) * 7 // 8)
        reps = -(-recorded.shape[1] // pre)
        return np.tile(recorded[:, :pre], reps)[:, : recorded.shape[1]]

    def status_register(self) -> int:
        self._release_due()
        value = STATUS_RUN if self.running else 0
        if self.fifo:
            value |= STATUS_EVENT_READY
        if len(self.fifo) >= self.capacity:
            value |= STATUS_EVENT_FULL
        return value

    def wait(self, timeout_ms: int) -> None:
        """Return once an event is in memory; raise TIMEOUT, or STOP after a disarm or the last recorded event."""
        self._release_due()
        if self.fifo:
            return
        if not self.running:
            if self.stop_pending and not self.armed:
                self.stop_pending = False
                raise FelibError("end of run", ErrorCode.STOP, _READ)
            self._sleep_ms(timeout_ms)
            raise FelibError("no event in time", ErrorCode.TIMEOUT, _READ)
        deadline = self._clock() + (timeout_ms / 1000.0 if timeout_ms >= 0 else float("inf"))
        while True:
            if not self._triggers_on():
                self._sleep_until(deadline)
                raise FelibError("no trigger source enabled", ErrorCode.TIMEOUT, _READ)
            if not self._pending():
                if self.source_done:
                    raise FelibError("end of the replayed data", ErrorCode.STOP, _READ)
                if self._clock() >= deadline:
                    raise FelibError("no event in time", ErrorCode.TIMEOUT, _READ)
                self._sleep_until(min(deadline, self._clock() + FOLLOW_POLL_S))  # a run still written
                continue
            if self.speed is None:
                self._play_one()  # one at a time: a stop leaves nothing behind in the memory
                return
            due = self._release_wall()
            if due > deadline:
                self._sleep_until(deadline)
                raise FelibError("no event in time", ErrorCode.TIMEOUT, _READ)
            self._sleep_until(due)
            self._release_due()
            if self.fifo:
                return

    def _sleep_until(self, wall: float) -> None:
        left = wall - self._clock()
        if left > 0:
            self._sleep(left)

    def _sleep_ms(self, timeout_ms: int) -> None:
        if timeout_ms > 0:
            self._sleep(timeout_ms / 1000.0)
