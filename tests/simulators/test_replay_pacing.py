"""A paced replay does not count the simulator's own reading of the source as board time that fills the memory.

The cause of a flaky test (tests/daq/test_replay_command.py, 40-90 events lost under CPU load): the
replayed board read 1024 recorded events at a time from the run file, inline, when the next one was
due. Under load that read took ~85 ms; at 2000 Hz the events due meanwhile came all at once, more than
the board's 128-event memory, and were lost though the readout kept up. Here a fake clock makes the
source's read take its time, deterministically.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.felib_types import ErrorCode, FelibError
from simulators.dt5751_replay import READ_EVENTS, ReplayAcquisition
from simulators.pcsi_signal import BoardSetup
from simulators.replay_source import ReplayChunk, ReplayGeometry

RATE_HZ = 2000.0
SAMPLES = 16
SETUP = BoardSetup(
    record_length=SAMPLES, pre_trigger=4, enabled=(True, False, False, False), baseline_adc=(900.0, 0, 0, 0),
    threshold_adc=(870, None, None, None), falling=True, calibrated=True,
)  # fmt: skip


class FakeClock:
    """Wall time that moves only when someone sleeps or the source reads."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += max(seconds, 0.0)


class SlowSource:
    """Recorded events at RATE_HZ whose reading costs `read_s_per_event` of the fake clock (disk, LZ4)."""

    def __init__(self, n_events: int, clock: FakeClock, read_s_per_event: float) -> None:
        self.geometry = ReplayGeometry(SAMPLES, 12, (0,), "negative", {0: 50.0}, 0, "test source")
        self.slow = None
        self._clock, self._cost_s = clock, read_s_per_event
        self._times_ns = (np.arange(n_events) * (1e9 / RATE_HZ)).astype(np.uint64)
        self._position = 0
        self.read_sizes: list[int] = []

    def read(self, max_events: int) -> ReplayChunk | None:
        n = min(max_events, self._times_ns.size - self._position)
        if n == 0:
            return None
        self._clock.sleep(n * self._cost_s)
        self.read_sizes.append(n)
        part = slice(self._position, self._position + n)
        self._position += n
        ids = np.arange(part.start, part.stop, dtype=np.uint32)
        return ReplayChunk(np.full((n, 1, SAMPLES), 900, np.int16), self._times_ns[part], ids)


def _play(source: SlowSource, clock: FakeClock, speed: float | None) -> ReplayAcquisition:
    """A reader that keeps up: it empties the memory as soon as wait() returns."""
    acquisition = ReplayAcquisition(source, speed=speed, clock=clock, sleep=clock.sleep)
    acquisition.arm(SETUP, capacity=128, count_all=True, start_now=True)
    while True:
        try:
            acquisition.wait(100)
        except FelibError as exc:
            if exc.code is ErrorCode.STOP:
                return acquisition
            assert exc.code is ErrorCode.TIMEOUT
            continue
        acquisition.fifo.clear()


def test_a_slow_source_read_loses_nothing_when_the_reader_keeps_up() -> None:
    clock = FakeClock()
    # 0.1 ms per event: reading 1024 at once took 102 ms, and ~205 events fell due in the meantime
    source = SlowSource(3000, clock, read_s_per_event=1e-4)
    acquisition = _play(source, clock, speed=1.0)
    assert acquisition.lost_memory_full == 0
    assert acquisition.played == 3000
    assert max(source.read_sizes) <= 128 // 4  # a read never holds back more than the memory takes


def test_the_paced_timeline_is_kept() -> None:
    clock = FakeClock()
    source = SlowSource(3000, clock, read_s_per_event=1e-5)
    start_s = clock()
    acquisition = _play(source, clock, speed=2.0)
    recorded_s = 2999 / RATE_HZ
    assert clock() - start_s == pytest.approx(recorded_s / 2.0, rel=0.01)  # the small reads cost no rate
    assert acquisition.lost_memory_full == 0


def test_as_fast_as_possible_reads_the_source_in_big_pieces() -> None:
    clock = FakeClock()
    source = SlowSource(3000, clock, read_s_per_event=1e-5)
    acquisition = _play(source, clock, speed=None)
    assert acquisition.played == 3000 and max(source.read_sizes) == READ_EVENTS
