"""The three threads of a run: readout (owns the digitizer), analysis (numba kernel, histograms), writer (HDF5)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from analysis import run_schema as schema
from analysis.histograms import LiveHistograms
from analysis.pulses import PulseResults, PulseSettings, analyse_batch
from daq.config import RunConfig
from daq.run_context import RunContext, RunState
from daq.writer import ReplayOrigin, RunFileWriteError, RunFileWriter, RunSummary
from drivers import EffectiveSettings, EventBatch

log = logging.getLogger(__name__)

TRIGGER_ID_MASK = (1 << 24) - 1  # the DT5751's TRIGGER_ID is 24 bits wide
DRAIN_TIMEOUT_S = 10.0  # longest wait for the board's end of run (STOP) after the disarm


class Board(Protocol):
    """What the readout needs of a digitizer (drivers.Dt5751, or an in-memory source in benchmarks)."""

    def configure(self, settings: Any) -> EffectiveSettings: ...
    def arm(self) -> None: ...
    def read_batch(self, max_events: int = 256, max_wait_s: float = 0.1) -> EventBatch: ...
    def disarm(self) -> None: ...
    def close(self) -> None: ...


class ReadoutStage(threading.Thread):
    """Own the digitizer: open, configure, arm, read batches until asked to stop, disarm, drain, close."""

    def __init__(
        self,
        ctx: RunContext,
        config: RunConfig,
        open_board: Callable[[], Board],
        out: queue.Queue[EventBatch | None],
        writer_ready: threading.Event,
    ) -> None:
        super().__init__(name="readout", daemon=True)
        self._ctx, self._cfg, self._open, self._out = ctx, config, open_board, out
        self._writer_ready = writer_ready
        self.consumer: threading.Thread | None = None
        self.effective: EffectiveSettings | None = None
        self.configured = threading.Event()
        self.started_at = 0.0
        self.acquired_s = 0.0  # from arm to the stop request
        self._time_offset_ns = 0  # added to the board's timestamps after a pause
        self._last_timestamp_ns = 0
        self._trigger_id_offset = 0  # added to the board's trigger counter after a pause
        self._last_trigger_id = -1
        self.latest_batch: EventBatch | None = None

    def run(self) -> None:
        ctx = self._ctx
        try:
            ctx.set_state(RunState.CONFIGURING)
            board = self._open()
            try:
                self.effective = board.configure(self._cfg.digitizer.settings())
                self.configured.set()
                while not self._writer_ready.wait(0.1):
                    if ctx.stopping:
                        return
                if ctx.stopping:
                    return
                board.arm()
                self.started_at = time.monotonic()
                ctx.set_state(RunState.RUNNING)
                self._acquire(board)
            finally:
                board.close()
        except Exception as exc:  # noqa: BLE001 - any failure of the board is a run fault, reported
            ctx.report_fault("digitizer readout", exc)
        finally:
            self.configured.set()
            ctx.put_end(self._out, self.consumer)

    def _acquire(self, board: Board) -> None:
        ctx, run, dig = self._ctx, self._cfg.run, self._cfg.digitizer
        put_timeout = self._cfg.pipeline.put_timeout_s
        read = 0
        while not ctx.stopping:
            if ctx.paused.is_set():
                self._pause(board, put_timeout)
                continue
            want = dig.batch_events if run.events is None else min(dig.batch_events, run.events - read)
            batch = board.read_batch(want, dig.batch_wait_s)
            read += len(batch)
            self._hand_over(batch, put_timeout)
            if run.events is not None and read >= run.events:
                ctx.request_stop(f"event count reached ({run.events})")
            elif run.duration_s is not None and time.monotonic() - self.started_at >= run.duration_s:
                ctx.request_stop(f"duration reached ({run.duration_s:g} s)")
            elif batch.end_of_run:
                ctx.request_stop("the digitizer ended the run")
        self.acquired_s = time.monotonic() - self.started_at
        if ctx.state is RunState.RUNNING:
            ctx.set_state(RunState.STOPPING)
        board.disarm()
        give_up_at = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up_at:  # events still in the board's memory were triggered: keep them
            batch = board.read_batch(dig.batch_events, 0.5)
            self._hand_over(batch, put_timeout)
            if batch.end_of_run:
                return
        log.error(
            "the digitizer did not signal the end of the run within %.0f s of the disarm", DRAIN_TIMEOUT_S
        )

    def _pause(self, board: Board, put_timeout: float) -> None:
        """Disarm and keep what is in memory; wait for resume (or stop); re-arm with continuing timestamps."""
        board.disarm()
        give_up_at = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up_at:
            batch = board.read_batch(256, 0.5)
            self._hand_over(batch, put_timeout)  # the batch that carries the end of run holds events too
            if batch.end_of_run:
                break
        duration = self._cfg.run.duration_s
        while self._ctx.paused.is_set() and not self._ctx.stopping:
            if duration is not None and time.monotonic() - self.started_at >= duration:
                self._ctx.request_stop(f"duration reached ({duration:g} s) while paused")
            self._ctx.stop_event.wait(0.1)
        if not self._ctx.stopping:
            board.arm()  # the board's clock restarts: offset its timestamps so they keep increasing
            wall_ns = int((time.monotonic() - self.started_at) * 1e9)
            self._time_offset_ns = max(wall_ns, self._last_timestamp_ns + 1)
            self._trigger_id_offset = (
                self._last_trigger_id + 1
            ) & TRIGGER_ID_MASK  # the counter restarts too

    @property
    def time_offset_ns(self) -> int:
        """What is added to the board's timestamps (non-zero after a pause: the board's clock restarted)."""
        return self._time_offset_ns

    def _hand_over(self, batch: EventBatch, put_timeout: float) -> None:
        if self._time_offset_ns and len(batch):
            batch.timestamp_ns = batch.timestamp_ns + np.uint64(self._time_offset_ns)
        if self._trigger_id_offset and len(batch):
            # continue the board's 24-bit counter (it wraps there, like the board's own)
            batch.trigger_id = (batch.trigger_id + np.uint32(self._trigger_id_offset)) & np.uint32(
                TRIGGER_ID_MASK
            )
        if len(batch):
            self._last_timestamp_ns = int(batch.timestamp_ns[-1])
            self._last_trigger_id = int(batch.trigger_id[-1])
        self._ctx.count_read(len(batch), batch.lost_triggers, batch.nbytes, batch.memory_full_seen)
        if len(batch):
            self.latest_batch = batch
            self._ctx.put(self._out, batch, len(batch), "analysis_queue_full", put_timeout)


class AnalysisStage(threading.Thread):
    """Run the pulse kernel on every channel of every batch, fill the live histograms, pass on to the writer."""

    def __init__(
        self,
        ctx: RunContext,
        config: RunConfig,
        histograms: LiveHistograms,
        inbox: queue.Queue[EventBatch | None],
        out: queue.Queue[tuple[EventBatch, list[PulseResults]] | None] | None,
        channels: Callable[[], tuple[int, ...]],
    ) -> None:
        """out: the writer's queue (None: no run file, the results go to the histograms only)."""
        super().__init__(name="analysis", daemon=True)
        self._ctx, self._cfg, self._hist, self._in, self._out = ctx, config, histograms, inbox, out
        self._channels = channels
        a = config.analysis
        self.settings = PulseSettings(
            baseline_start=a.baseline_samples[0],
            baseline_stop=a.baseline_samples[1],
            signal_start=a.signal_samples[0],
            signal_stop=a.signal_samples[1],
            n_sigma=a.threshold_sigma,
            ddof=a.baseline_ddof,
            count_boundaries=a.peak_boundaries == "counted",
            polarity=-1 if config.digitizer.polarity == "negative" else 1,
        )
        self.consumer: threading.Thread | None = None
        self.latest: tuple[EventBatch, list[PulseResults]] | None = None

    def run(self) -> None:
        ctx = self._ctx
        put_timeout = self._cfg.pipeline.put_timeout_s
        in_hand = 0  # events of the batch being analysed: lost if it fails (the counters add up)
        try:
            while (batch := self._in.get()) is not None:
                in_hand = len(batch)
                channels = self._channels()
                crystal = channels.index(self._cfg.digitizer.crystal_channel)
                settings = self.settings.checked(batch.n_samples)
                results = [analyse_batch(batch.waveforms[:, j, :], settings) for j in range(len(channels))]
                self._hist.fill(results[crystal])
                ctx.count_analysed(len(batch))
                self.latest = (batch, results)
                if self._out is None:
                    continue
                if self.consumer is not None and not self.consumer.is_alive():
                    ctx.count_lost("writer_failed", len(batch))
                    continue
                ctx.put(self._out, (batch, results), len(batch), "writer_queue_full", put_timeout)
                in_hand = 0
        except Exception as exc:  # noqa: BLE001 - reported as a run fault
            ctx.count_lost("writer_failed", in_hand)  # read, never to reach the file
            ctx.report_fault("online analysis", exc)
            while (batch := self._in.get()) is not None:  # keep the readout unblocked; count what passes
                ctx.count_lost("writer_failed", len(batch))
        finally:
            if self._out is not None:
                ctx.put_end(self._out, self.consumer)


class WriterStage(threading.Thread):
    """Create the run file once the digitizer is configured, append every batch, finish the file."""

    def __init__(
        self,
        ctx: RunContext,
        config: RunConfig,
        config_yaml: str,
        histograms: LiveHistograms,
        inbox: queue.Queue[tuple[EventBatch, list[PulseResults]] | None],
        readout: ReadoutStage,
        ready: threading.Event,
        slow: Any = None,
        replay: ReplayOrigin | None = None,
    ) -> None:
        super().__init__(name="writer", daemon=True)
        self._replay = replay
        self._slow = slow  # a daq.instruments.SlowControl, whose readings go to /slow
        self._ctx, self._cfg, self._yaml, self._hist, self._in = ctx, config, config_yaml, histograms, inbox
        self._readout = readout
        self.ready = ready  # set once the run file exists (or the writer gave up): the readout may arm
        self.writer: RunFileWriter | None = None

    def run(self) -> None:
        ctx = self._ctx
        in_hand = 0  # events of the batch being written
        try:
            self._readout.configured.wait()
            effective = self._readout.effective
            if effective is None:  # configuration failed: no file
                self._drain()
                return
            self.writer = RunFileWriter(
                self._cfg.run.output_dir,
                self._yaml,
                effective,
                self._cfg.writer,
                self._cfg.run.comment,
                self._replay,
                self._cfg.run.run_number,
            )
            self.ready.set()
            while True:
                try:
                    item = self._in.get(timeout=0.5)
                except queue.Empty:
                    self._write_slow()
                    self.writer.flush_if_due()  # a paused run's readings reach its readers too
                    continue
                if item is None:
                    break
                in_hand = len(item[0])
                self.writer.append(*item)
                ctx.count_written(in_hand)
                in_hand = 0
                self._write_slow()
        except Exception as exc:  # noqa: BLE001 - disk full or any I/O failure: a run fault, data kept
            ctx.count_lost("writer_failed", in_hand)
            ctx.report_fault("run file writer", exc)
            self._drain()
        finally:
            self.ready.set()
            if self.writer is not None:
                self._finish()

    def _write_slow(self) -> None:
        """Append the slow-control readings and run notes gathered since the last call."""
        assert self.writer is not None
        slow = self._slow
        if slow is not None:
            if slow.cryostat is not None:
                rows = [(r.time_s, r.stage_k, r.crystal_k, r.setpoint_k, r.heater_pct, r.heater_range, r.ramping)
                        for r in slow.cryostat.drain()]  # fmt: skip
                self.writer.append_rows(schema.SLOW_TEMPERATURE, rows)
            if slow.hv is not None:
                rows = [
                    (r.time_s, r.channel, r.vset_v, r.vmon_v, r.imon_ua, int(r.status))
                    for r in slow.hv.drain()
                ]
                self.writer.append_rows(schema.SLOW_HV, rows)
        self.writer.append_rows(
            schema.LOG,
            [
                (t, m.encode("ascii", "replace")[: schema.LOG_MESSAGE_BYTES])
                for t, m in self._ctx.drain_notes()
            ],
        )

    def _drain(self) -> None:
        while (item := self._in.get()) is not None:
            self._ctx.count_lost("writer_failed", len(item[0]))

    def _finish(self) -> None:
        ctx, writer = self._ctx, self.writer
        assert writer is not None
        try:
            if not writer.failed:
                self._write_slow()
                writer.flush()
        except RunFileWriteError as exc:  # the disk filled up at the end: as in the run
            ctx.report_fault("run file writer", exc)
        except Exception as exc:  # noqa: BLE001 - the last readings are lost, the file is still closed
            ctx.report_fault("closing the run file", exc)
        complete = ctx.state is not RunState.FAULT
        reason = ctx.stop_reason or "stopped"
        if not complete and not reason.startswith(
            "fault"
        ):  # a fault after the stop request: say why it is bad
            reason = f"fault: {ctx.fault} (after: {reason})"
        try:
            if writer.failed:
                self._salvage(writer)
            writer.close(RunSummary(reason, complete, ctx.counters().as_attrs(), self._hist.snapshot()))
        except Exception as exc:  # noqa: BLE001 - the file's data are flushed; the summary could not be added
            ctx.report_fault("closing the run file", exc)

    def _salvage(self, writer: RunFileWriter) -> None:
        """Finish a file whose write failed; events that never reached it are counted lost, not written."""
        try:
            writer.salvage()
        finally:
            unflushed = self._ctx.counters().written - writer.n_flushed
            self._ctx.count_written(-unflushed)
            self._ctx.count_lost("writer_failed", unflushed)
