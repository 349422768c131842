"""The control core for interactive front ends (the GUI): the session's ControlCore on threads, with histories.

`TestStand(config)` opens the slow-control instruments of the configuration (simulated by default) in a
daq.control_core.ControlCore and keeps them for the whole session. Runs (with their pre-flight and
pre-run sequences), replays and sequences (cooldown, HV on) run on their own threads; every call here
returns at once. Front ends read `snapshot()` on a timer: plain Python data, never a
reference into a running thread. `close()` is the one ordered shutdown path: stop the run and drain it,
close the file, then put the HV in its safe state and close the instruments.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from analysis.histograms import HistogramSnapshot
from analysis.pulses import PulseResults
from daq.config import ConfigError, RunConfig, load_config
from daq.control_core import ControlCore
from daq.cryostat_alarms import CryostatAlarms
from daq.engine import RunEngine, RunStatus
from daq.instruments import SlowControl
from daq.replay_session import Replay
from daq.run_context import RunState
from daq.run_overrides import apply_overrides
from daq.sequences import SequenceError
from daq.session_views import DiskWatch, LogBuffer, SeriesHistory
from daq.slowcontrol import HvReading, TemperatureReading
from daq.stages import Board
from drivers import EventBatch
from drivers.ndt1470 import FAULT_BITS, ChannelStatus

log = logging.getLogger(__name__)

__all__ = ["LogBuffer", "SeriesHistory", "StandError", "StandSnapshot", "TestStand", "run_state_text"]

RUN_STOP_TIMEOUT_S = 30.0


class StandError(RuntimeError):
    """A command the stand cannot carry out now; the message says why and what to do."""


@dataclass(frozen=True)
class StandSnapshot:
    """What a front end shows, taken at one moment."""

    run: RunStatus | None
    run_kind: str  # "run", "replay" or ""
    paused: bool
    histograms: HistogramSnapshot | None
    scope: tuple[EventBatch, list[PulseResults]] | None
    temperature: TemperatureReading | None
    hv: HvReading | None
    cryostat_error: str
    hv_error: str
    cryostat_alarm: str  # a held temperature lost, a saturated heater ("" when fine)
    cryostat_sequence: str  # what the cooldown / warm-up says, or how it ended
    hv_sequence: str  # likewise for HV on / off
    stable: bool  # the stage within stable_band_k of its setpoint
    disk_free_mb: float
    faults: tuple[str, ...] = field(default_factory=tuple)
    replay_error: str = ""
    # a replay's recorded readings (from its own playback instruments, not the session's)
    replayed_temperature: TemperatureReading | None = None
    replayed_hv: HvReading | None = None
    next_run_number: int = 0  # what the next automatic run file is numbered (0: not known yet)
    config_path: str = ""  # the configuration runs use
    config_generation: int = 0  # counts the configurations taken (the same file loaded again too)
    config_error: str = ""  # why the last configuration chosen was not taken
    run_error: str = ""  # why the last run asked for did not start (one line: what to do), "" once one starts
    run_preparing: bool = False  # the pre-run sequences of a run asked for are running


class TestStand:
    """Instruments, sequences, runs and replays of one configuration, for an interactive session."""

    __test__ = False  # not a pytest test class

    def __init__(self, config: RunConfig, config_path: str = "", slow: SlowControl | None = None) -> None:
        """Open the instruments of `config` (or use `slow`); raises InstrumentError if one cannot be opened."""
        self.core = ControlCore(config, slow if slow is not None else SlowControl(config))
        self.slow = self.core.slow
        self.config_path = config_path
        self.temperatures = SeriesHistory(("stage_k", "crystal_k", "setpoint_k", "heater_pct"))
        self.hv_history = SeriesHistory(("vmon_v", "imon_ua"))
        self._engine: RunEngine | None = None
        self._replay: Replay | None = None
        self._run_kind = ""
        # one sequence at a time per instrument: "cryostat" (cooldown, warm-up) and "hv" (on, off)
        self._sequences: dict[str, threading.Thread] = {}
        self._sequence_text: dict[str, str] = {"cryostat": "", "hv": ""}
        self._aborts = {"cryostat": threading.Event(), "hv": threading.Event()}
        self._lock = threading.RLock()  # start_run -> _require_idle -> _close_replay take it again
        self._faults: deque[str] = deque(maxlen=50)  # each fault as it began
        self._active_faults: dict[str, str] = {}  # kind -> its text, while it lasts
        self._preparing: threading.Thread | None = None
        self._preparing_run: threading.Thread | None = None
        self._closing = False
        self.run_error = ""
        self._closers: list[threading.Thread] = []
        self.replay_error = ""
        self.config_error = ""
        self.config_generation = 0
        self._loading: threading.Thread | None = None
        self._disk = DiskWatch(lambda: self.config.run.output_dir)
        self.cryostat_alarms = CryostatAlarms(config.cryostat)
        if self.slow.cryostat is not None:
            self.slow.cryostat.observers.append(self._on_temperature)
        if self.slow.hv is not None:
            self.slow.hv.observers.append(self._on_hv)

    @property
    def config(self) -> RunConfig:
        """The configuration runs use (the core's: its hv and cryostat sections are the session's)."""
        return self.core.config

    @config.setter
    def config(self, config: RunConfig) -> None:
        self.core.config = config

    # ---- observers (instrument threads) ----

    def _fault(self, kind: str, text: str, key: str = "") -> None:
        """A fault of this kind begins (kept and logged), or goes on (readings repeating it are not new ones).

        key: what makes it a new fault of the same kind when it changes (HV fault bits going from OVC to
        TRIP); without one only the kind counts (alarm texts carry the reading's numbers).
        """
        if kind not in self._active_faults or self._active_faults[kind] != key:
            self._active_faults[kind] = key
            self._faults.append(text)
            log.warning("fault: %s", text)

    def _clear_fault(self, kind: str) -> None:
        if self._active_faults.pop(kind, None) is not None:
            log.info("fault over: %s", kind)

    def _on_temperature(self, reading: TemperatureReading | None, error: str) -> None:
        if reading is None:
            self._fault("Lake Shore 325 silent", _named("Lake Shore 325", error))
            return
        self._clear_fault("Lake Shore 325 silent")
        self.cryostat_alarms.update(reading)
        for kind in CryostatAlarms.KINDS:
            if text := self.cryostat_alarms.active.get(kind):
                self._fault(f"cryostat {kind}", f"cryostat: {text}")
            else:
                self._clear_fault(f"cryostat {kind}")
        self.temperatures.add(reading.time_s, reading.stage_k, reading.crystal_k, reading.setpoint_k,
                              reading.heater_pct)  # fmt: skip

    def _on_hv(self, reading: HvReading | None, error: str) -> None:
        if reading is None:
            self._fault("NDT1470 silent", _named("NDT1470", error))
            return
        self._clear_fault("NDT1470 silent")
        self.hv_history.add(reading.time_s, reading.vmon_v, reading.imon_ua)
        if reading.faulted:  # a new fault when the fault bits change (OVC to TRIP), not the ramp bits
            bits = reading.status & (FAULT_BITS | ChannelStatus.OVC)
            names = " ".join(f.name or "" for f in ChannelStatus if f in bits)
            self._fault("NDT1470 channel", f"NDT1470 channel {reading.channel}: {names} ({reading.flags})",
                        key=names)  # fmt: skip
        else:
            self._clear_fault("NDT1470 channel")

    # ---- sequences ----

    def _start_sequence(self, kind: str, name: str, work: Callable[[Callable[[str], None]], str]) -> None:
        with self._lock:
            running = self._sequences.get(kind)
            if running is not None and running.is_alive():
                raise StandError(f"{running.name} is still running: abort it first")
            self._aborts[kind].clear()
            self._sequence_text[kind] = f"{name} ..."

            def body() -> None:
                def progress(text: str) -> None:
                    self._sequence_text[kind] = f"{name}: {text}"

                try:
                    self._sequence_text[kind] = f"{name}: {work(progress)}"
                    log.info("%s", self._sequence_text[kind])
                except (SequenceError, RuntimeError, TimeoutError, ValueError) as exc:
                    self._sequence_text[kind] = f"{name} stopped: {exc}"
                    log.error("%s", self._sequence_text[kind])

            thread = threading.Thread(target=body, name=name, daemon=True)
            thread.start()  # before it is registered: close() joins only started threads
            self._sequences[kind] = thread

    def start_cooldown(self, to_k: float, ramp_k_per_min: float | None = None) -> None:
        """Cool (or warm) the stage to `to_k` at the configured (or given) ramp rate and hold it, on a thread."""
        if self.slow.cryostat is None:
            raise StandError("no cryostat in this configuration (the cryostat section is not in use)")
        if not 1.5 <= to_k <= 350.0:
            raise StandError(f"setpoint {to_k:g} K is outside 1.5-350 K")
        verb = "cooldown" if self.temperatures_latest_k() > to_k else "warm-up"

        def work(progress: Callable[[str], None]) -> str:
            reading = self.core.cool(to_k, ramp_k_per_min, progress, self._aborts["cryostat"].is_set)
            return f"stable at {reading.stage_k:.3f} K"

        self._start_sequence("cryostat", f"{verb} to {to_k:g} K", work)

    def temperatures_latest_k(self) -> float:
        reading = self.slow.cryostat.latest if self.slow.cryostat is not None else None
        return reading.stage_k if reading is not None else float("nan")

    def hv_on(self, voltage_v: float) -> None:
        """Ramp the PMT channel to `voltage_v` (signed), on a thread; refused above hv.max_voltage_v."""
        if self.slow.hv is None:
            raise StandError("no HV supply in this configuration")
        limit = self.config.hv.max_voltage_v
        if abs(voltage_v) > limit:
            raise StandError(f"{voltage_v:g} V exceeds the limit of {limit:g} V (hv.max_voltage_v)")

        def work(progress: Callable[[str], None]) -> str:
            reading = self.core.bias(voltage_v, progress, self._aborts["hv"].is_set)
            return f"on at {reading.vmon_v:.1f} V"

        self._start_sequence("hv", f"HV on to {voltage_v:g} V", work)

    def hv_off(self) -> None:
        """Switch the PMT channel off and watch it ramp down, on a thread (aborts a running HV sequence)."""
        hv = self.slow.hv
        if hv is None:
            raise StandError("no HV supply in this configuration")
        self._aborts["hv"].set()  # an HV-on in progress gives way
        channel = self.config.hv.channel
        sent = hv.submit(lambda d: d.off(channel))  # at once, whatever runs: never waited for here

        def report(done: Future[object]) -> None:
            if done.exception() is not None:
                log.error(
                    "NDT1470: OFF of channel %d failed: %s; check the supply", channel, done.exception()
                )

        sent.add_done_callback(report)
        running = self._sequences.get("hv")
        if running is not None and running.is_alive():
            return  # OFF is sent; the running sequence ends on the abort

        def work(progress: Callable[[str], None]) -> str:
            reading = self.core.unbias(progress)
            return f"off ({reading.vmon_v:.1f} V)"

        self._start_sequence("hv", "HV off", work)

    def abort_sequence(self, kind: str = "cryostat") -> None:
        """Stop waiting for the cryostat's (or the HV's) sequence; what was programmed stays."""
        self._aborts[kind].set()

    # ---- runs and replays ----

    def start_run(
        self,
        events: int | None,
        duration_s: float | None,
        comment: str,
        open_board: Callable[[], Board] | None = None,
        run_number: int | None = None,
        prepare: bool = True,
    ) -> None:
        """Start a run of the configuration with these stop criteria (0/None: no limit) and comment.

        Pre-flight first (daq.preflight: analysis regions, output folder and free space, run number): a
        refusal raises StandError with the one-line reason, also kept in the snapshot's run_error. The run is
        taken at the session's chosen setpoint and voltage (ControlCore.run_config). If the configuration's
        pre-run sequences (cryostat.cooldown_before_run, hv.on_before_run) are not done yet, they run first on
        a thread (snapshot's run_preparing; the run starts when they end, or run_error says why not) unless
        `prepare` is False, which refuses the start instead. Otherwise the run starts before this returns.

        run_number: this number (refused if its file exists); None: the next free one (a front end shows the
        configuration's run.run_number as its initial choice, used once).
        open_board: another event source than the configured digitizer (benchmarks).
        """
        with self._lock:
            self._require_idle()
            try:
                if run_number is not None and not 1 <= run_number <= 999_999:
                    raise StandError(f"run number {run_number} is outside 1-999999")
                config = apply_overrides(self.config, events=events or 0, duration_s=duration_s)
                run = config.run.model_copy(update={"comment": comment, "run_number": run_number})
                config = self.core.run_config(config.model_copy(update={"run": run}))
                try:
                    self.core.check_start(config)
                    pending = self.core.pending_sequences(
                        config
                    )  # refused while a needed instrument is silent
                except ConfigError as exc:
                    raise StandError(f"run not started: {exc}") from None
                if pending and not prepare:
                    raise StandError(f"run not started: {' and '.join(pending)} first (the configuration asks "
                                     "for it before a run)")  # fmt: skip
            except StandError as exc:
                self.run_error = str(exc)
                log.error("%s", exc)
                raise
            self.run_error = ""
            if not pending:
                self._start_engine(config, open_board)
                return
            self._preparing_run = threading.Thread(
                target=self._prepare_run,
                args=(config, open_board, pending),
                name="run preparation",
                daemon=True,
            )
            self._preparing_run.start()

    def _start_engine(self, config: RunConfig, open_board: Callable[[], Board] | None) -> None:
        engine = self.core.new_run(config, open_board, drain_readings=True)  # the session's readings stay out
        engine.start()  # started before it is published (as for replays)
        self._engine = engine
        self._run_kind = "run"

    def _prepare_run(
        self, config: RunConfig, open_board: Callable[[], Board] | None, pending: list[str]
    ) -> None:
        """The pre-run sequences (each shown and abortable as its instrument's sequence), then the run."""
        kinds = [{"cooldown": "cryostat", "hv_on": "hv"}[step] for step in pending]
        for kind in kinds:  # a sequence running on the same instrument gives way
            running = self._sequences.get(kind)
            if running is not None and running.is_alive():
                self._aborts[kind].set()
                running.join(30.0)
            with self._lock:  # from here the panels' own sequences on it are refused until the run starts
                self._aborts[kind].clear()
                self._sequences[kind] = threading.current_thread()

        def progress(kind: str, text: str) -> None:
            self._sequence_text[kind] = f"before the run: {text}"

        try:
            self.core.prepare_run(config, progress, lambda kind: self._aborts[kind].is_set(), allowed=pending)
            with self._lock:
                if self._closing:
                    raise StandError("the stand is shutting down")
                self._start_engine(config, open_board)
        except (RuntimeError, TimeoutError, ValueError, OSError) as exc:  # a sequence, the stand, the config
            self.run_error = f"run not started: {exc}"
            log.error("%s", self.run_error)
        finally:
            with self._lock:
                self._preparing_run = None

    def start_replay(
        self,
        source: str,
        speed: float | None,
        output_dir: str | None,
        record_length: int | None = None,
        header: bool | None = None,
    ) -> None:
        """Replay a run file or WaveDump data through the same views (its own simulated instruments).

        record_length / header: for WaveDump files written without headers (None: from WaveDumpConfig.txt).

        Opening the source and its playback instruments takes time: it happens on a thread, and a
        failure is logged and shown in the snapshot's replay_error.
        """
        with self._lock:
            self._require_idle()
            self.replay_error = ""
            self._preparing = threading.Thread(
                target=self._prepare_replay,
                args=(source, speed, output_dir, record_length, header),
                name="replay",
                daemon=True,
            )
            self._preparing.start()

    def _prepare_replay(
        self,
        source: str,
        speed: float | None,
        output_dir: str | None,
        record_length: int | None,
        header: bool | None,
    ) -> None:
        try:
            replay = self.core.new_replay(source, self.config_path or None, speed, output_dir,
                                          record_length=record_length, header=header)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a bad source or config: shown to the operator
            self.replay_error = f"replay of {source}: {exc}"
            log.error("%s", self.replay_error)
            return
        with self._lock:
            replay.engine.start()  # started before it is published: snapshot() may wait(0) on it at once
            self._replay = replay
            self._engine = replay.engine
            self._run_kind = "replay"

    def use_config(self, path: str) -> None:
        """Take the run settings of another configuration file for the next runs, on a thread.

        The session's instruments stay as they were opened: the file's hv and cryostat sections are not
        taken (a warning says so when they differ); restart `daq gui --config FILE` to use them. A file that
        does not load is refused with its message in the snapshot's config_error.
        """
        with self._lock:
            self._require_idle()
            self.config_error = ""

            def load() -> None:
                try:
                    self._load_config(path)
                finally:
                    with self._lock:
                        self._loading = None

            self._loading = threading.Thread(target=load, name="load config", daemon=True)
            self._loading.start()

    def _load_config(self, path: str) -> None:
        try:
            new = load_config(path)
        except (ConfigError, OSError) as exc:
            kept = self.config_path or "the defaults"
            self.config_error = f"configuration not taken (the runs keep {kept}): {exc}"
            log.error("%s", self.config_error)
            return
        with self._lock:  # no run starts while a file loads (_require_idle): none started meanwhile
            kept = [name for name in ("hv", "cryostat") if getattr(new, name) != getattr(self.config, name)]
            self.config = new.model_copy(update={"hv": self.config.hv, "cryostat": self.config.cryostat})
            self.config_path = path
            self.config_generation += 1
        log.info("runs now use the configuration %s", path)
        if kept:
            what = (
                "the hv and cryostat sections differ" if len(kept) == 2 else f"the {kept[0]} section differs"
            )
            log.warning(
                "%s: %s from the session's and %s not used: the instruments stay as opened; restart with "
                "`daq gui --config %s` to use them",
                path, what, "are" if len(kept) == 2 else "is", path,
            )  # fmt: skip

    def _require_idle(self) -> None:
        if self._preparing_run is not None and self._preparing_run.is_alive():
            raise StandError("a run is being prepared (its pre-run sequences): wait, or abort them")
        if self._preparing is not None and self._preparing.is_alive():
            raise StandError("a replay is being prepared: wait a moment")
        if self._loading is not None:
            raise StandError("a configuration file is being loaded: wait a moment")
        if self._engine is not None and not self._engine.wait(0):
            raise StandError("a run is in progress: stop it first")
        self._close_replay(wait=True)

    def _close_replay(self, wait: bool) -> None:
        """Close a finished replay's source and playback instruments on a thread (they take a while)."""
        with self._lock:
            replay, engine = self._replay, self._engine
            if replay is None or engine is None or not engine.wait(0):
                return
            self._replay = None
            closer = threading.Thread(target=replay.close, name="replay close", daemon=True)
            closer.start()
            self._closers.append(closer)
        if wait:
            closer.join(30.0)

    def stop_run(self, reason: str = "stopped by the operator") -> None:
        if self._engine is not None:
            self._engine.request_stop(reason)

    def pause_run(self) -> None:
        if self._engine is not None:
            self._engine.ctx.pause("paused by the operator")

    def resume_run(self) -> None:
        if self._engine is not None:
            self._engine.ctx.resume("resumed by the operator")

    @property
    def engine(self) -> RunEngine | None:
        return self._engine

    # ---- what front ends read ----

    def snapshot(self) -> StandSnapshot:
        engine = self._engine
        if engine is not None:
            engine.wait(0)  # never blocks; once the threads are done the run's state becomes final
        self._close_replay(wait=False)
        cryo, hv = self.slow.cryostat, self.slow.hv
        temperature = cryo.latest if cryo is not None else None
        cfg = self.config.cryostat
        stable = (
            temperature is not None and abs(temperature.stage_k - temperature.setpoint_k) <= cfg.stable_band_k
        )
        free_mb, next_number = self._disk.latest()
        replay = self._replay
        played = replay.slow if replay is not None and self._run_kind == "replay" else None
        played_cryo = played.cryostat if played is not None else None
        played_hv = played.hv if played is not None else None
        scope = engine.analysis.latest if engine is not None else None
        faults = tuple(self._faults)
        return StandSnapshot(
            run=engine.status() if engine is not None else None,
            run_kind=self._run_kind if engine is not None else "",
            paused=engine is not None and engine.ctx.paused.is_set() and not engine.wait(0),
            histograms=engine.histogram_snapshot() if engine is not None else None,
            scope=scope,
            temperature=temperature,
            hv=hv.latest if hv is not None else None,
            cryostat_error=cryo.error if cryo is not None else "",
            hv_error=hv.error if hv is not None else "",
            cryostat_alarm=self.cryostat_alarms.text if cryo is not None and not cryo.error else "",
            cryostat_sequence=self._sequence_text["cryostat"],
            hv_sequence=self._sequence_text["hv"],
            stable=stable,
            disk_free_mb=free_mb,
            faults=faults,
            replay_error=self.replay_error,
            replayed_temperature=played_cryo.latest if played_cryo is not None else None,
            replayed_hv=played_hv.latest if played_hv is not None else None,
            next_run_number=next_number,
            config_path=self.config_path,
            config_generation=self.config_generation,
            config_error=self.config_error,
            run_error=self.run_error,
            run_preparing=self._preparing_run is not None,
        )

    # ---- shutdown ----

    def close(self) -> None:
        """Stop the run (its file closed complete), end the sequences, put the HV safe, close the instruments."""
        self._closing = True
        try:
            for kind in ("cryostat", "hv"):  # a run being prepared gives up: it never starts
                if self._preparing_run is not None:
                    self._aborts[kind].set()
            preparing = self._preparing_run
            if preparing is not None:
                preparing.join(30.0)
            if self._preparing is not None:
                self._preparing.join(30.0)
            engine = self._engine
            if engine is not None and not engine.wait(0):
                engine.request_stop("the window was closed")
                if not engine.wait(RUN_STOP_TIMEOUT_S):
                    log.error("the run did not stop within %.0f s; closing the instruments anyway",
                              RUN_STOP_TIMEOUT_S)  # fmt: skip
        finally:
            try:
                with self._lock:
                    replay, self._replay = self._replay, None
                if replay is not None:
                    replay.close()
                for closer in self._closers:
                    closer.join(30.0)
                with self._lock:
                    sequences = list(self._sequences.items())
                for kind, thread in sequences:
                    self._aborts[kind].set()
                    thread.join(10.0)
            finally:
                self._disk.stop()
                self.core.close()  # the HV's safe state whatever happened before, recorded in the last run file


def _named(instrument: str, error: str) -> str:
    """The error with the instrument's name in front, unless the driver's message names it already."""
    return error if error.startswith(instrument) else f"{instrument}: {error}"


def run_state_text(status: RunStatus | None) -> str:
    if status is None:
        return "idle"
    state = status.state.value
    if status.state is RunState.RUNNING and status.stop_reason:
        state = "stopping"
    return state
