"""One run of the test stand: wire readout, analysis and writer threads with bounded queues; observe; stop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analysis.histograms import HistogramSettings, HistogramSnapshot, LiveHistograms
from analysis.pulses import warm_up as warm_up_pulse_kernel
from daq.config import RunConfig, config_yaml
from daq.digitizer_urls import open_digitizer
from daq.instruments import SlowControl
from daq.interlocks import Interlocks
from daq.run_context import CounterSnapshot, RunContext, RunState
from daq.stages import AnalysisStage, Board, ReadoutStage, WriterStage
from daq.writer import ReplayOrigin
from drivers import EffectiveSettings, EventBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunStatus:
    """A snapshot for observers (progress line, GUI): never blocks the run."""

    state: RunState
    elapsed_s: float
    counters: CounterSnapshot
    path: Path | None
    run_number: int | None
    stop_reason: str
    analysis_queue_fill: int
    writer_queue_fill: int

    @property
    def event_rate_hz(self) -> float:
        return self.counters.read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def trigger_rate_hz(self) -> float:
        return self.counters.triggers / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.counters.bytes_read / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


def open_configured_board(
    config: RunConfig, crystal_temperature_k: Callable[[], float] | None = None
) -> Board:
    """Open the digitizer of `config` (the simulator's physics from the `simulation` section).

    crystal_temperature_k: a live temperature for the simulated crystal (the simulated cryostat).
    """
    if config.digitizer.simulated:
        return open_digitizer(
            config.digitizer.url, physics=config.simulation, temperature_k=crystal_temperature_k
        )
    return open_digitizer(config.digitizer.url)


class RunEngine:
    """Run the acquisition of `config` once: start(), then wait(); request_stop() from anywhere."""

    def __init__(
        self,
        config: RunConfig,
        open_board: Callable[[], Board] | None = None,
        slow: SlowControl | None = None,
        replay: ReplayOrigin | None = None,
    ) -> None:
        """replay: the recorded data a replay plays (linked from the new run file) and its timeline origin."""
        self.config = config
        self.ctx = RunContext()
        self.slow = slow
        a = config.analysis
        self.histograms = LiveHistograms(
            HistogramSettings(
                spe_window_start=a.spe_window_ns[0],
                spe_window_stop=a.spe_window_ns[1],
                spe_max_adc_ns=a.spe_max_adc_ns,
                spe_bin_adc_ns=a.spe_bin_adc_ns,
                npe_max=a.npe_max,
                npe_bin=a.npe_bin,
                q_spe_adc_ns=a.q_spe_adc_ns,
            )
        )
        p = config.pipeline
        self._to_analysis: queue.Queue[EventBatch | None] = queue.Queue(maxsize=p.analysis_queue_batches)
        self._to_writer: queue.Queue = queue.Queue(maxsize=p.writer_queue_batches)
        crystal_k = slow.crystal_temperature_k() if slow is not None else None
        opener = open_board or (lambda: open_configured_board(config, crystal_k))
        file_ready = threading.Event()
        if not config.run.write_file:
            file_ready.set()  # no file to wait for
        self.readout = ReadoutStage(
            self.ctx, config, lambda: self._warm_up_then(opener), self._to_analysis, file_ready
        )
        self.analysis = AnalysisStage(
            self.ctx,
            config,
            self.histograms,
            self._to_analysis,
            self._to_writer if config.run.write_file else None,
            self._channels,
        )
        self.writer: WriterStage | None = None
        if config.run.write_file:
            self.writer = WriterStage(
                self.ctx,
                config,
                config_yaml(config),
                self.histograms,
                self._to_writer,
                self.readout,
                file_ready,
                slow,
                replay,
            )
        self._observing: list[tuple[list[Callable[..., None]], Callable[..., None]]] = []
        if slow is not None:  # the run's interlocks watch the session's instruments until the run ends
            interlocks = Interlocks(self.ctx, config)
            if slow.cryostat is not None:
                self._observing.append((slow.cryostat.observers, interlocks.on_temperature))
            if slow.hv is not None:
                self._observing.append((slow.hv.observers, interlocks.on_hv))
            for observers, observer in self._observing:
                observers.append(observer)
        self.readout.consumer = self.analysis
        self.analysis.consumer = self.writer
        self._threads: tuple[threading.Thread, ...] = tuple(
            t for t in (self.readout, self.analysis, self.writer) if t is not None
        )
        self._t0 = 0.0
        self._t_end: float | None = None
        self._end_lock = threading.Lock()

    def _warm_up_then(self, open_board: Callable[[], Board]) -> Board:
        """On the readout thread, before the board is opened and armed: the analysis kernel compiled or loaded
        from numba's cache (seconds on a fresh clone, while the board's memory would fill); the simulated
        board compiles its own kernels as it opens."""
        t0 = time.monotonic()
        warm_up_pulse_kernel(self.analysis.settings)
        log.info(
            "pulse kernel ready in %.2f s (compiled, or loaded from numba's cache)", time.monotonic() - t0
        )
        return open_board()

    def _channels(self) -> tuple[int, ...]:
        assert self.readout.effective is not None
        return self.readout.effective.enabled_channels

    @property
    def effective_settings(self) -> EffectiveSettings | None:
        return self.readout.effective

    def start(self) -> None:
        """Start the threads; the run configures the digitizer, opens the file and starts acquiring."""
        self._t0 = time.monotonic()
        for thread in reversed(self._threads):  # consumers first
            thread.start()

    def request_stop(self, reason: str) -> None:
        """Stop cleanly: disarm, drain, write everything, close the file complete."""
        self.ctx.request_stop(reason)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the run to end; return True once every thread has finished."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            if thread.ident is None:
                return False  # not started yet
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False
        with self._end_lock:  # wait() may be called from several threads (a GUI's timer and its shutdown)
            if self._t_end is None:
                self._t_end = time.monotonic()
                for observers, observer in self._observing:  # a session's later runs bring their own
                    observers.remove(observer)
                if self.ctx.state is not RunState.FAULT:
                    if self.ctx.state in (RunState.CONFIGURING, RunState.RUNNING):
                        self.ctx.set_state(RunState.STOPPING)
                    self.ctx.set_state(RunState.DONE)
        return True

    def status(self) -> RunStatus:
        """The run's state, counters and rates now."""
        started = self.readout.started_at or self._t0
        end = self._t_end if self._t_end is not None else time.monotonic()
        w = self.writer.writer if self.writer is not None else None
        return RunStatus(
            state=self.ctx.state,
            elapsed_s=max(0.0, end - started) if self.readout.started_at else 0.0,
            counters=self.ctx.counters(),
            path=w.path if w else None,
            run_number=w.run_number if w else None,
            stop_reason=self.ctx.stop_reason,
            analysis_queue_fill=self._to_analysis.qsize(),
            writer_queue_fill=self._to_writer.qsize(),
        )

    def histogram_snapshot(self) -> HistogramSnapshot:
        return self.histograms.snapshot()
