"""Interlocks during a run: stage temperature out of its band, an HV trip or over-current, a silent instrument.

Each is an observer of a slow-control loop; the configured action stops or pauses the run (a
temperature pause resumes once the stage is back in band), and the run file's /log records why.
"""

from __future__ import annotations

import logging
import threading

from daq.config import RunConfig
from daq.run_context import RunContext, RunState
from daq.slowcontrol import HvReading, TemperatureReading
from drivers.ndt1470 import ChannelStatus

log = logging.getLogger(__name__)


class Interlocks:
    """Watch the readings of a run's slow-control loops and act on the run context.

    Each source (cryostat, HV) holds its own pause: the run resumes only when every source that
    paused it is back in its band, so an HV recovery cannot mask a stage still out of band.
    Observers are called from the two instruments' threads, hence the lock.
    """

    def __init__(self, ctx: RunContext, config: RunConfig) -> None:
        self._ctx = ctx
        self._cfg = config
        self._lock = threading.Lock()
        self._paused_by: dict[str, str] = {}  # source -> reason

    def _active(self) -> bool:
        return self._ctx.state is RunState.RUNNING and not self._ctx.stopping

    def _act(self, action: str, source: str, reason: str) -> None:
        if action == "ignore":
            return
        with self._lock:
            if not self._active():
                return
            if action == "stop":
                self._ctx.note(f"interlock ({source}): {reason}; stopping the run", logging.ERROR)
                self._ctx.request_stop(f"interlock: {reason}")
            elif source not in self._paused_by:
                self._paused_by[source] = reason
                if self._ctx.paused.is_set():
                    self._ctx.note(f"interlock ({source}): {reason}; the run stays paused", logging.WARNING)
                else:
                    self._ctx.pause(f"interlock ({source}): {reason}")

    def _clear(self, source: str, reason: str) -> None:
        with self._lock:
            if self._paused_by.pop(source, None) is None or not self._active():
                return  # nothing held, or the run is stopping: no "resumed" after a stop
            if self._paused_by:
                waiting = "; ".join(f"{s}: {r}" for s, r in self._paused_by.items())
                self._ctx.note(f"interlock ({source}) cleared: {reason}; still paused by {waiting}")
            else:
                self._ctx.resume(reason)

    @property
    def paused_by(self) -> dict[str, str]:
        with self._lock:
            return dict(self._paused_by)

    def on_temperature(self, reading: TemperatureReading | None, error: str) -> None:
        cfg = self._cfg.cryostat
        if reading is None:
            self._act(cfg.interlock_action, "cryostat", f"temperature controller silent: {error}")
            return
        band = cfg.interlock_band_k
        if abs(reading.setpoint_k - cfg.setpoint_k) > band:
            self._act(
                cfg.interlock_action,
                "cryostat",
                f"controller setpoint changed to {reading.setpoint_k:g} K, the run needs {cfg.setpoint_k:g} K",
            )
        elif abs(reading.stage_k - cfg.setpoint_k) > band:  # the run's setpoint, not the controller's
            self._act(
                cfg.interlock_action,
                "cryostat",
                f"stage at {reading.stage_k:.3f} K, outside {cfg.setpoint_k:g} +- {band:g} K",
            )
        else:
            self._clear("cryostat", f"stage back at {reading.stage_k:.3f} K")

    def on_hv(self, reading: HvReading | None, error: str) -> None:
        cfg = self._cfg.hv
        if reading is None:
            self._act(cfg.interlock_action, "hv", f"HV supply silent: {error}")
            return
        if reading.faulted:
            self._act(
                cfg.interlock_action,
                "hv",
                f"HV channel {reading.channel} {reading.flags} (VMON {reading.vmon_v:g} V, IMON {reading.imon_ua:g} uA)",
            )
        elif (
            cfg.on_before_run and ChannelStatus.ON not in reading.status
        ):  # off with no fault bit (LOCAL panel)
            self._act(
                cfg.interlock_action,
                "hv",
                f"HV channel {reading.channel} is off (VMON {reading.vmon_v:g} V, status {reading.flags})",
            )
        elif abs(reading.vmon_v - abs(cfg.voltage_v)) <= 5.0:
            self._clear("hv", f"HV channel {reading.channel} back at {reading.vmon_v:g} V")
