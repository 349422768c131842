"""The slow-control instruments of a configuration: real ones, or simulators served on a pty / loopback port.

`SlowControl(config)` starts the simulators a configuration asks for, opens each instrument in its
own InstrumentLoop, and on close puts the HV in its safe state (ramped down by default) and stops
the simulators. The drivers talk to the simulators exactly as to the hardware.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from daq.config import CryostatSection, HvSection, RunConfig
from daq.slowcontrol import HvReading, InstrumentLoop, TemperatureReading, poll_hv, poll_temperatures
from drivers.lakeshore325 import LakeShore325, LineSettings
from drivers.ndt1470 import Ndt1470, Ndt1470Error, Ndt1470LocalModeError, Ndt1470TimeoutError
from simulators.lakeshore325 import LakeShore325Simulator, LakeShoreOptions
from simulators.line_servers import PtyServer, TcpServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator
from simulators.slow_replay import SeriesPlayback

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 15.0
OFF_ATTEMPTS = 3


class InstrumentError(RuntimeError):
    """A slow-control instrument could not be opened; the message names it and what to check."""


def hv_safe_state(cfg: HvSection, sleep: Callable[[float], None] = time.sleep) -> Callable[[Ndt1470], None]:
    """The HV loop's last act: ramp the channel down and wait for it (unless safe_state is 'keep')."""

    def close(hv: Ndt1470) -> None:
        if cfg.safe_state == "keep":
            log.warning("NDT1470 channel %d left as it is (hv.safe_state = keep)", cfg.channel)
            return
        for attempt in range(1, OFF_ATTEMPTS + 1):  # a lost reply must not leave the PMT biased
            try:
                hv.off(cfg.channel)
                break
            except Ndt1470LocalModeError:
                raise  # the front panel holds the unit: retrying cannot help
            except Ndt1470Error as exc:
                if attempt == OFF_ATTEMPTS:
                    raise
                log.warning("NDT1470: OFF for channel %d failed (%s); trying again", cfg.channel, exc)
        scale = cfg.time_scale if cfg.simulate else 1.0
        deadline = time.monotonic() + cfg.ramp_timeout_s / scale
        while True:  # a reply lost while watching the ramp is not a failed ramp-down: keep watching
            try:
                hv.wait_for_ramp(
                    cfg.channel,
                    timeout_s=max(deadline - time.monotonic(), 0.1),
                    poll_s=0.1,
                    sleep=sleep,
                    tolerance_v=5.0,
                    expect_on=False,
                )
                break
            except Ndt1470TimeoutError as exc:
                if time.monotonic() >= deadline or exc.command == "wait_for_ramp":  # the ramp's own deadline
                    raise
                log.warning("NDT1470: %s; still watching the ramp-down", exc)
        log.info("NDT1470 channel %d ramped down (safe state)", cfg.channel)

    return close


class SlowControl:
    """The HV and cryostat loops of a run (either may be absent), with their simulators if simulated."""

    def __init__(
        self,
        config: RunConfig,
        hv: bool = True,
        cryostat: bool = True,
        hv_playback: SeriesPlayback | None = None,
        temperature_playback: SeriesPlayback | None = None,
        hv_clock: Callable[[], float | None] = time.time,
        temperature_clock: Callable[[], float | None] = time.time,
    ) -> None:
        """hv_playback / temperature_playback: simulators answer with recorded readings (a replay).

        hv_clock / temperature_clock: the time stamped on readings (Unix s); a replay gives its own
        timeline, and None while there is no recorded reading to play yet.
        """
        self.config = config
        self._hv_clock, self._temperature_clock = hv_clock, temperature_clock
        self._hv_playback, self._temperature_playback = hv_playback, temperature_playback
        self.hv_sim: Ndt1470Simulator | None = None
        self.cryo_sim: LakeShore325Simulator | None = None
        self._servers: list[PtyServer | TcpServer] = []
        self.hv: InstrumentLoop[Ndt1470, HvReading] | None = None
        self.cryostat: InstrumentLoop[LakeShore325, TemperatureReading] | None = None
        try:
            if hv:
                self.hv = self._hv_loop(config.hv)
            if cryostat:
                self.cryostat = self._cryostat_loop(config.cryostat)
            for loop in (self.hv, self.cryostat):
                if loop is None:
                    continue
                if not loop.opened.wait(OPEN_TIMEOUT_S):
                    raise InstrumentError(f"{loop.name}: no connection within {OPEN_TIMEOUT_S:g} s")
                if loop.faulted:
                    raise InstrumentError(loop.error)
        except BaseException:
            self.close()
            raise

    def _hv_loop(self, cfg: HvSection) -> InstrumentLoop[Ndt1470, HvReading]:
        port = cfg.port
        if cfg.simulate:
            self.hv_sim = Ndt1470Simulator(
                Ndt1470Options(board=cfg.board), time_scale=cfg.time_scale, playback=self._hv_playback
            )
            server = PtyServer(self.hv_sim)
            server.start()
            self._servers.append(server)
            port = server.path
            log.info("simulated NDT1470 on %s (time scale %g)", port, cfg.time_scale)
        loop: InstrumentLoop[Ndt1470, HvReading] = InstrumentLoop(
            "NDT1470",
            lambda: Ndt1470(port, board=cfg.board, max_voltage_v=cfg.max_voltage_v),
            poll_hv(cfg.channel, self._hv_clock),
            cfg.poll_period_s / cfg.time_scale if cfg.simulate else cfg.poll_period_s,
            on_close=hv_safe_state(cfg)
            if self._hv_playback is None
            else None,  # a playback has no HV to make safe
        )
        loop.start()
        return loop

    def _cryostat_loop(self, cfg: CryostatSection) -> InstrumentLoop[LakeShore325, TemperatureReading]:
        resource = cfg.resource
        if cfg.simulate:
            self.cryo_sim = LakeShore325Simulator(
                LakeShoreOptions(), time_scale=cfg.time_scale, playback=self._temperature_playback
            )
            server = TcpServer(self.cryo_sim)
            server.start()
            self._servers.append(server)
            resource = f"ASRLsocket://{server.address}::INSTR"
            log.info("simulated Lake Shore 325 on %s (time scale %g)", server.address, cfg.time_scale)
        loop: InstrumentLoop[LakeShore325, TemperatureReading] = InstrumentLoop(
            "LakeShore325",
            lambda: LakeShore325(resource, line=LineSettings(**cfg.serial.model_dump())),
            poll_temperatures(self._temperature_clock),
            cfg.poll_period_s,
        )
        loop.start()
        return loop

    def crystal_temperature_k(self) -> Callable[[], float] | None:
        """The simulated crystal's temperature, for the simulated DT5751's light yield (None if not simulated)."""
        sim = self.cryo_sim
        if sim is None:
            return None
        model = sim.model
        return lambda: model.crystal_k

    def close(self) -> None:
        """Stop the loops (the HV ramps down first), then the simulators."""
        for loop in (self.hv, self.cryostat):
            if loop is not None and loop.is_alive():
                loop.stop(
                    timeout_s=self.config.hv.ramp_timeout_s + 10.0
                )  # the HV's safe state may take a ramp
        for server in self._servers:
            server.stop()
        self._servers.clear()

    def __enter__(self) -> SlowControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
