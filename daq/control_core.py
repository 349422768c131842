"""The headless control core of a session: its instruments, sequences, runs and replays, and the HV's safe state.

Front ends (`daq run`, `daq replay`, the GUI's TestStand, campaigns) drive one ControlCore: pre-flight
(daq.preflight) before anything is touched, the pre-run sequences the configuration asks for, a RunEngine
per run, a prepared replay, and `close()`, the one exit path that puts the HV in its safe state and records
how it was left (`hv_safe_state`) in the session's last run file. Everything here blocks; an interactive
front end calls it from its own threads. No Qt here: `daq run` and the tests import it without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path

import h5py

from analysis.run_schema import LIBVER_BOUNDS
from daq.config import RunConfig
from daq.engine import RunEngine
from daq.instruments import SlowControl
from daq.preflight import check_instruments, check_start, pending_sequences
from daq.replay_session import Replay, prepare_replay
from daq.sequences import SequenceError, cooldown, hv_limits, hv_off, hv_on
from daq.slowcontrol import HvReading, TemperatureReading
from daq.stages import Board
from simulators.replay_source import open_replay_source

log = logging.getLogger(__name__)


def _ignore(_: str) -> None:
    pass


def _never() -> bool:
    return False


class ControlCore:
    """One session: the instruments opened once, sequences on them, runs and replays, the safe exit."""

    def __init__(self, config: RunConfig, slow: SlowControl | None) -> None:
        """slow: the session's instruments (None: a run without slow control)."""
        self.config = config
        self.slow = slow
        self.setpoint_k: float | None = None  # the stage temperature last asked for in this session
        self.voltage_v: float | None = None  # the PMT voltage last asked for in this session
        self.cooled_to_k: float | None = (
            None  # the setpoint the last cooldown reached stable (None: none did)
        )
        self.hv_state = ""  # after close(): how the HV was left ("" when the session had no HV)
        self._last_run: RunEngine | None = None

    @classmethod
    def open(cls, config: RunConfig, instruments: bool = True) -> ControlCore:
        """Open the slow-control instruments of `config` (if `instruments`); raises InstrumentError."""
        return cls(config, SlowControl(config) if instruments else None)

    # ---- pre-flight ----

    @staticmethod
    def check_start(config: RunConfig) -> None:
        """The static pre-flight of a run (regions, output folder, run number); raises PreflightError."""
        check_start(config)

    def run_config(self, config: RunConfig) -> RunConfig:
        """`config` at the session's chosen setpoint and voltage, if one was asked for (a campaign's step, the
        operator's cooldown): the run is taken, its interlocks watch and its file records that temperature."""
        update = {}
        if self.setpoint_k is not None and self.setpoint_k != config.cryostat.setpoint_k:
            update["cryostat"] = config.cryostat.model_copy(update={"setpoint_k": self.setpoint_k})
        if self.voltage_v is not None and self.voltage_v != config.hv.voltage_v:
            update["hv"] = config.hv.model_copy(update={"voltage_v": self.voltage_v})
        return config.model_copy(update=update) if update else config

    def pending_sequences(self, config: RunConfig) -> list[str]:
        """The configured pre-run sequences ("cooldown", "hv_on") the instruments' state does not show done.

        Raises PreflightError while an instrument the run needs is not answering.
        """
        check_instruments(config, self.slow)
        return pending_sequences(config, self.slow, self.cooled_to_k)

    def prepare_run(
        self,
        config: RunConfig,
        progress: Callable[[str, str], None] = lambda kind, text: None,
        should_stop: Callable[[str], bool] = lambda kind: False,
        allowed: Collection[str] | None = None,
    ) -> None:
        """Run the pre-run sequences `config` still needs, cooldown first; raises SequenceError.

        progress(kind, text) and should_stop(kind): kind is "cryostat" or "hv". allowed: the sequences the
        caller has taken the instruments over for (default: both). After the sequences the state is checked
        again: what a long cooldown undid (the HV tripped or switched off meanwhile) is run again if allowed,
        else refused, so a run never starts with a pre-run condition lost. With the HV already at voltage,
        its configured limits (ISET, RUP, RDW, TRIP) are programmed anyway, as a ramp would.
        """
        allowed = ("cooldown", "hv_on") if allowed is None else tuple(allowed)
        done: list[str] = []
        for _ in range(2):
            pending = self.pending_sequences(config)
            if not pending:
                break
            refused = [step for step in pending if step not in allowed]
            if refused:
                raise SequenceError(
                    f"{' and '.join(refused)} needed again before the run (after {', '.join(done) or 'nothing'}): "
                    f"the instrument left its state meanwhile; start the run again"
                )
            for step in pending:
                if step == "cooldown":
                    progress("cryostat", f"cooling the stage to {config.cryostat.setpoint_k:g} K ...")
                    self.cool(config.cryostat.setpoint_k, None, lambda t: progress("cryostat", t),
                              lambda: should_stop("cryostat"))  # fmt: skip
                else:
                    progress("hv", f"ramping the PMT to {config.hv.voltage_v:g} V ...")
                    self.bias(config.hv.voltage_v, lambda t: progress("hv", t), lambda: should_stop("hv"))
                done.append(step)
        hv = self.slow.hv if self.slow is not None else None
        if config.hv.on_before_run and hv is not None and "hv_on" not in done:
            hv_limits(hv, config.hv)

    # ---- sequences ----

    def cool(
        self,
        to_k: float | None = None,
        ramp_k_per_min: float | None = None,
        progress: Callable[[str], None] = _ignore,
        should_stop: Callable[[], bool] = _never,
    ) -> TemperatureReading:
        """Cool (or warm) the stage to `to_k` (default the configured setpoint) and wait until it is stable."""
        cryostat = self.slow.cryostat if self.slow is not None else None
        if cryostat is None:
            raise SequenceError(
                "no cryostat in this session (run.slow_control is off or no cryostat section)"
            )
        cfg = self.config.cryostat
        if ramp_k_per_min is not None:
            cfg = cfg.model_copy(update={"ramp_k_per_min": ramp_k_per_min})
        target = cfg.setpoint_k if to_k is None else to_k
        self.setpoint_k = target  # programmed from here on: the session's runs are taken at it
        self.cooled_to_k = None
        reading = cooldown(cryostat, cfg, target, progress, should_stop)
        self.cooled_to_k = target
        return reading

    def bias(
        self,
        voltage_v: float | None = None,
        progress: Callable[[str], None] = _ignore,
        should_stop: Callable[[], bool] = _never,
    ) -> HvReading:
        """Ramp the PMT channel to `voltage_v` (signed; default the configured one) and verify it."""
        hv = self.slow.hv if self.slow is not None else None
        if hv is None:
            raise SequenceError("no HV supply in this session (run.slow_control is off or no hv section)")
        target = self.config.hv.voltage_v if voltage_v is None else voltage_v
        if abs(target) > self.config.hv.max_voltage_v:
            raise SequenceError(
                f"{target:g} V exceeds the limit of {self.config.hv.max_voltage_v:g} V (hv.max_voltage_v)"
            )
        self.voltage_v = target
        return hv_on(hv, self.config.hv, target, progress, should_stop)

    def unbias(self, progress: Callable[[str], None] = _ignore) -> HvReading:
        """Switch the PMT channel off and wait for the ramp-down."""
        hv = self.slow.hv if self.slow is not None else None
        if hv is None:
            raise SequenceError("no HV supply in this session")
        return hv_off(hv, self.config.hv, progress)

    # ---- runs and replays ----

    def new_run(
        self, config: RunConfig, open_board: Callable[[], Board] | None = None, drain_readings: bool = False
    ) -> RunEngine:
        """The engine of a run of `config` on the session's instruments (not started).

        drain_readings: the readings taken so far stay out of the run file (a session's earlier hours);
        False keeps them (`daq run`: the cooldown before the run is in its file).
        """
        if drain_readings and self.slow is not None:
            for loop in (self.slow.cryostat, self.slow.hv):
                if loop is not None:
                    loop.drain()
        engine = RunEngine(config, open_board=open_board, slow=self.slow)
        self._last_run = engine
        return engine

    @staticmethod
    def new_replay(
        source: str,
        config_path: str | None = None,
        speed: float | None = None,
        output_dir: str | None = None,
        events: int | None = None,
        record_length: int | None = None,
        header: bool | None = None,
    ) -> Replay:
        """A prepared replay of `source` on its own playback instruments (not started); close() it after."""
        opened = open_replay_source(source, record_length=record_length, header=header)
        try:
            return prepare_replay(opened, config_path, speed, output_dir, events)
        except BaseException:
            opened.close()
            raise

    # ---- the exit ----

    def close(self) -> str:
        """Close the instruments (the HV ramps down unless hv.safe_state is keep) and say how the HV was left.

        Returns "confirmed: ...", "not confirmed: <reason>", "kept on (hv.safe_state = keep)", or "" when the
        session had no HV; recorded as `hv_safe_state` in the session's last run file.
        """
        if self.slow is None:
            return ""
        self.slow.close()
        hv, cfg = self.slow.hv, self.config.hv
        if hv is None:
            return ""
        if cfg.safe_state == "keep":
            state = "kept on (hv.safe_state = keep)"
        elif hv.safe_state_error:
            state = f"not confirmed: {hv.safe_state_error}"
        else:
            state = f"confirmed: channel {cfg.channel} ramped down to 0 V"
        self.hv_state = state
        path = self._last_run.status().path if self._last_run is not None else None
        if path is not None:
            record_hv_safe_state(path, state)
        return state


def record_hv_safe_state(path: Path, state: str) -> None:
    """Add the root attribute `hv_safe_state` to the closed run file `path` (docs/run_file.md).

    Written after the file is closed and after `complete`: the data may be complete while the HV is not
    safe. A failure to write it is logged, never raised: the HV state is also on the terminal or the screen.
    """
    try:  # no file lock: a SWMR reader (daq info, a GUI) may hold the file open, as for the writer's close
        with h5py.File(path, "r+", libver=LIBVER_BOUNDS, locking=False) as f:
            f.attrs["hv_safe_state"] = state
    except (OSError, ValueError) as exc:
        log.error("could not record hv_safe_state = %r in %s: %s", state, path, exc)
