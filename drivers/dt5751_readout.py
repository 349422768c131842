"""Read DT5751 event batches from FELib's scope endpoint: copy, adopt the record length, unwrap time, end the run.

One reader per configured board, used only by the thread that owns the board. It copies every event
out of FELib's reused buffers, adopts the record length the board delivers (the x751 rounds it its own
way), unwraps the trigger time tag (drivers.timestamps), counts lost triggers from TRIGGER_ID gaps,
and decides when a disarmed run has ended: FELib's STOP; where no STOP comes, register 0x8104
reporting the run stopped with an empty memory, confirmed by one more empty read; or, as a bounded
fallback, END_OF_RUN_SILENCE_S without events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from drivers.dt5751_errors import DigitizerError
from drivers.event_batch import EventBatch
from drivers.felib_types import DataField, ErrorCode, FelibNode
from drivers.timestamps import TimestampUnwrapper

log = logging.getLogger(__name__)

ACQ_STATUS_RUN_BIT = 1 << 2
ACQ_STATUS_EVENT_READY_BIT = 1 << 3
ACQ_STATUS_EVENT_FULL_BIT = 1 << 4
TRIGGER_ID_BITS = 24  # width of the board's event counter in the event header
END_OF_RUN_CONFIRM_MS = (
    50  # after the board reports stopped and empty, one more read this long confirms the end
)
END_OF_RUN_SILENCE_S = 1.0  # fallback without STOP or status: this long without events after a disarm ends it


class ScopeReader:
    """The read side of one configured board: its endpoint, buffers and per-run counters."""

    def __init__(
        self,
        where: str,
        errors: tuple[type[BaseException], ...],
        fail: Callable[[str, BaseException], NoReturn],
        status: Callable[[], int],
        endpoint: FelibNode,
        data: Sequence[DataField],
        rows: tuple[int, ...],
        row_samples: int,
        timestamps: TimestampUnwrapper,
    ) -> None:
        self._where, self._errors, self._fail, self._status = where, errors, fail, status
        self._ep, self._data = endpoint, tuple(data)
        self._fields = {f.name: f for f in self._data}
        self.rows = rows
        self.row_samples = row_samples
        self.timestamps = timestamps
        self.record_length: int | None = None  # adopted from the first record the board delivers
        self.armed = False
        self.ended = False
        self.end_signal = ""  # how the last run ended: STOP, EMPTY (status, confirmed) or TIMEOUT (silence)
        self.lost_triggers_total = 0
        self.events_read_total = 0
        self._last_trigger_id: int | None = None
        self._disarmed_at = 0.0
        self._last_event_at = 0.0
        self._events_this_run = 0
        self._warned_gap = False

    def start_run(self) -> None:
        """The board was armed: counters of the run restart (its clock and event counter restart at 0)."""
        self.armed, self.ended, self.end_signal = True, False, ""
        self._last_trigger_id = None
        self.timestamps.reset()
        self._events_this_run = 0
        self._warned_gap = False

    def reset_totals(self) -> None:
        """Forget what was read so far (after the baseline measurement)."""
        self._last_trigger_id = None
        self.lost_triggers_total = self.events_read_total = 0
        self.ended = False

    def disarmed(self) -> None:
        """The board was disarmed: what is in its memory is still read, then the run ends."""
        self.armed = False
        self._disarmed_at = time.monotonic()

    def memory_full(self) -> bool:
        """True while the board's event memory is full (register 0x8104 bit 4): triggers are lost."""
        return bool(self._status() & ACQ_STATUS_EVENT_FULL_BIT)

    def _stopped_and_empty(self) -> bool:
        return not self._status() & (ACQ_STATUS_RUN_BIT | ACQ_STATUS_EVENT_READY_BIT)

    def read_batch(self, max_events: int, max_wait_s: float) -> EventBatch:
        """Read up to `max_events` events within `max_wait_s`; see the module docstring for the end of run."""
        n_ch = len(self.rows)
        waveforms: NDArray[np.int16] | None = None
        stamps = np.empty(max_events, dtype=np.uint64)
        ids = np.empty(max_events, dtype=np.uint32)
        sizes = np.empty(max_events, dtype=np.uint64)
        f = self._fields
        wf, wf_size, ts = f["WAVEFORM"].value, f["WAVEFORM_SIZE"].value, f["TIMESTAMP_NS"].value
        tid, evsize, fail = f["TRIGGER_ID"].value, f["EVENT_SIZE"].value, f["BOARD_FAIL"].value
        lost = n = 0
        ended = self.ended
        confirming = False
        memory_full = self.memory_full() if self.armed else False  # full now: triggers are being lost
        deadline = time.monotonic() + max_wait_s
        while n < max_events and not ended:
            timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if confirming:
                timeout_ms = max(timeout_ms, END_OF_RUN_CONFIRM_MS)
            try:
                self._ep.read_data(timeout_ms, self._data)
            except self._errors as exc:
                code = int(getattr(exc, "code", ErrorCode.GENERIC_ERROR))
                if code == ErrorCode.STOP:
                    ended, self.end_signal = True, "STOP"
                elif code != ErrorCode.TIMEOUT:
                    self._fail("read_data on the scope endpoint", exc)
                elif not self.armed:
                    if confirming:
                        ended, self.end_signal = True, "EMPTY"  # stopped, empty, and nothing more came
                    elif self._stopped_and_empty():
                        confirming = True  # the library may still hand over a block it read: look once more
                        continue
                    else:
                        ended = self._silence_ends(n)
                break
            confirming = False
            if bool(fail):
                raise DigitizerError(
                    f"{self._where} flags BOARD_FAIL in event {int(tid)}: PLL unlock or overheating. "
                    f"Check /par/PLLLOCKED and the board temperature, then power-cycle the board."
                )
            if waveforms is None:
                waveforms = np.empty((max_events, n_ch, self._adopt_record_length(wf_size)), dtype=np.int16)
            self._copy_rows(waveforms[n], wf, wf_size)
            lost += self._count_gap(int(tid))
            self._check_time_gap(n)
            stamps[n], ids[n], sizes[n] = ts, tid, evsize
            n += 1
            if time.monotonic() >= deadline:
                break
        if self.armed:
            memory_full = self.memory_full() or memory_full
        self.ended = ended
        self.lost_triggers_total += lost
        self.events_read_total += n
        self._events_this_run += n
        if waveforms is None:
            waveforms = np.empty((0, n_ch, self.record_length or 0), dtype=np.int16)
        return EventBatch(
            waveforms=waveforms[:n],
            timestamp_ns=self.timestamps.unwrap(stamps[:n]),
            trigger_id=ids[:n],
            channels=self.rows,
            lost_triggers=lost,
            memory_full_seen=memory_full,
            end_of_run=ended,
            event_size_bytes=sizes[:n],
        )

    def _silence_ends(self, n: int) -> bool:
        quiet_s = time.monotonic() - max(self._disarmed_at, self._last_event_at)
        if n or quiet_s < END_OF_RUN_SILENCE_S:
            return False
        log.warning(
            "%s: no STOP, and the status register still reports events %.1f s after the disarm; ending the run",
            self._where, quiet_s,
        )  # fmt: skip
        self.end_signal = "TIMEOUT"
        return True

    def _adopt_record_length(self, wf_size: NDArray[Any]) -> int:
        if self.record_length is None:
            delivered = {int(wf_size[row]) for row in self.rows}
            if len(delivered) != 1 or not 0 < min(delivered) <= self.row_samples:
                raise DigitizerError(
                    f"{self._where} delivered records of {sorted(delivered)} samples on channels {self.rows} "
                    f"(rows hold {self.row_samples}); the enabled channels must agree. Reconfigure the board; "
                    f"if it persists, dump its device tree (daq digitizer dump-tree)."
                )
            self.record_length = delivered.pop()
        return self.record_length

    def _copy_rows(self, out: NDArray[np.int16], wf: NDArray[Any], wf_size: NDArray[Any]) -> None:
        reclen = out.shape[1]
        for j, row in enumerate(self.rows):
            size = int(wf_size[row])
            if size != reclen:
                raise DigitizerError(
                    f"{self._where} sent {size} samples on channel {row} where its earlier records of this "
                    f"configuration had {reclen}; reconfigure the board (RECLEN changed behind the driver?)"
                )
            out[j] = wf[row, :reclen]

    def _check_time_gap(self, n_in_batch: int) -> None:
        now = time.monotonic()
        gap_ns = (now - self._last_event_at) * 1e9
        if (
            (n_in_batch or self._events_this_run)
            and not self._warned_gap
            and gap_ns > self.timestamps.period_ns
        ):
            self._warned_gap = True
            log.warning(
                "%s: %.1f s passed between two events, more than the time tag's period of %.2f s: a wrap may "
                "have been missed, later timestamps may be short by a multiple of that period",
                self._where, gap_ns * 1e-9, self.timestamps.period_ns * 1e-9,
            )  # fmt: skip
        self._last_event_at = now

    def _count_gap(self, trigger_id: int) -> int:
        previous = self._last_trigger_id
        self._last_trigger_id = trigger_id
        if previous is None:
            return trigger_id  # the counter starts at 0 when the run starts
        return (trigger_id - previous - 1) % (1 << TRIGGER_ID_BITS)
