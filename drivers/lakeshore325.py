"""Driver of the Lake Shore 325 temperature controller over pyvisa (pyvisa-py: GPIB, serial 7O1 CR LF, sockets).

Every query has a timeout (the 325 is silent on errors); every configuration command is followed
by `*ESR?`, so a rejected command raises instead of passing unnoticed; messages are spaced by at
least 50 ms (20 commands/s). One thread owns the connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

ESR_CME, ESR_EXE, ESR_QYE = 32, 16, 4
MIN_INTERVAL_S = 0.05


class ReadingStatus(IntFlag):
    """RDGST? bits."""

    INVALID = 1
    TEMP_UNDER = 16
    TEMP_OVER = 32
    UNITS_ZERO = 64
    UNITS_OVER = 128


class LakeShoreError(RuntimeError):
    """The controller refused or did not answer; `command` names the message."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class LakeShoreTimeoutError(LakeShoreError):
    """No reply to a query: wrong address or port, or the 325 rejected the query (it stays silent)."""


class LakeShoreRejectedError(LakeShoreError):
    """*ESR? reports a command error (CME) or an execution error (EXE) after a command."""


@dataclass(frozen=True)
class Reading:
    """One temperature reading with its status."""

    input: str
    temperature_k: float
    sensor_units: float
    status: ReadingStatus

    @property
    def valid(self) -> bool:
        return not self.status


def open_resource(resource: str, timeout_s: float) -> Any:
    """Open a VISA resource with pyvisa-py, set up for the 325 (7O1, 9600 baud on serial; CR LF)."""
    import pyvisa
    from pyvisa import constants

    try:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(resource)
    except Exception as exc:  # noqa: BLE001 - pyvisa raises several kinds; all mean "cannot open"
        raise LakeShoreError(
            f"Lake Shore 325: cannot open {resource}: {exc}. Check cryostat.resource in the configuration "
            f"(ASRL/dev/ttyUSB0::INSTR, GPIB0::12::INSTR) or run the simulator (daq sim lakeshore325)."
        ) from exc
    inst.timeout = int(timeout_s * 1000)
    inst.read_termination = "\r\n"
    inst.write_termination = "\r\n"
    if resource.upper().startswith("ASRL"):
        inst.baud_rate = 9600
        inst.data_bits = 7
        inst.parity = constants.Parity.odd
        inst.stop_bits = constants.StopBits.one
    return inst


class LakeShore325:
    """A Lake Shore 325 at a VISA resource (ASRL.../GPIB.../TCPIP...::SOCKET, or ASRLsocket://host:port::INSTR)."""

    def __init__(
        self,
        resource: str,
        timeout_s: float = 1.0,
        open_instrument: Callable[[str, float], Any] = open_resource,
        min_interval_s: float = MIN_INTERVAL_S,
    ) -> None:
        self.resource = resource
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self._inst = open_instrument(resource, timeout_s)
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._last_message = 0.0
        self.clear_status()  # flags left by an earlier session must not be blamed on our commands

    # ---- the wire ----

    def _check_owner(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"Lake Shore 325 {self.resource} is owned by the thread that opened it")

    def _space(self) -> None:
        wait = self._last_message + self.min_interval_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def query(self, message: str) -> str:
        """Send a query and return its reply line; raise LakeShoreTimeoutError on silence."""
        self._check_owner()
        with self._lock:
            self._space()
            try:
                reply = self._inst.query(message)
            except Exception as exc:  # noqa: BLE001 - VisaIOError on timeout, OSError on a lost socket
                raise LakeShoreTimeoutError(
                    f"Lake Shore 325 ({self.resource}) did not answer {message!r} within {self.timeout_s:g} s. "
                    f"It stays silent on a bad query; otherwise check the address, cable and baud rate.",
                    message,
                ) from exc
            finally:
                self._last_message = time.monotonic()
        return reply.strip()

    def command(self, message: str) -> None:
        """Send a command, then check *ESR?; raise LakeShoreRejectedError if the 325 flagged it."""
        if len(message) > 64:
            raise ValueError(f"Lake Shore 325 messages are at most 64 characters: {message!r}")
        self._check_owner()
        with self._lock:
            self._space()
            self._inst.write(message)
            self._last_message = time.monotonic()
        esr = int(self.query("*ESR?"), 10)
        if esr & (ESR_CME | ESR_EXE):
            kind = (
                "command error (unknown command or syntax)"
                if esr & ESR_CME
                else "execution error (bad value)"
            )
            raise LakeShoreRejectedError(
                f"Lake Shore 325 ({self.resource}) rejected {message!r}: {kind}, *ESR {esr}", message
            )

    # ---- identity and status ----

    def identify(self) -> str:
        """*IDN?: maker, model, serial, firmware."""
        reply = self.query("*IDN?")
        if "MODEL325" not in reply:
            raise LakeShoreError(f"{self.resource} identifies as {reply!r}, not a Lake Shore 325", "*IDN?")
        return reply

    def clear_status(self) -> None:
        """Clear the event registers (*CLS) and read *ESR? once so that old flags are gone."""
        with self._lock:
            self._space()
            self._inst.write("*CLS")
            self._last_message = time.monotonic()
        self.query("*ESR?")

    # ---- readings ----

    def _input(self, inp: str) -> str:
        if inp not in ("A", "B"):
            raise ValueError(f"Lake Shore 325 input must be A or B, not {inp!r}")
        return inp

    def temperature_k(self, inp: str) -> float:
        """Temperature of input A or B, K."""
        return float(self.query(f"KRDG? {self._input(inp)}"))

    def sensor_units(self, inp: str) -> float:
        """Raw sensor reading of input A or B (V for a diode, ohm for an RTD)."""
        return float(self.query(f"SRDG? {self._input(inp)}"))

    def reading_status(self, inp: str) -> ReadingStatus:
        """RDGST? of input A or B."""
        return ReadingStatus(int(self.query(f"RDGST? {self._input(inp)}"), 10))

    def read(self, inp: str) -> Reading:
        """Temperature, sensor units and status of one input."""
        return Reading(inp, self.temperature_k(inp), self.sensor_units(inp), self.reading_status(inp))

    # ---- control loop ----

    def _loop(self, loop: int) -> int:
        if loop not in (1, 2):
            raise ValueError(f"Lake Shore 325 loop must be 1 or 2, not {loop}")
        return loop

    def setpoint_k(self, loop: int = 1) -> float:
        return float(self.query(f"SETP? {self._loop(loop)}"))

    def set_setpoint_k(self, loop: int, value_k: float) -> None:
        """Set the control setpoint (in the loop's CSET units, K by default)."""
        self.command(f"SETP {self._loop(loop)},{value_k:.3f}")

    def heater_range(self, loop: int = 1) -> int:
        return int(self.query(f"RANGE? {self._loop(loop)}"), 10)

    def set_heater_range(self, loop: int, heater_range: int) -> None:
        """Loop 1: 0 off, 1 low (2.5 W), 2 high (25 W); loop 2: 0 off, 1 on."""
        self.command(f"RANGE {self._loop(loop)},{heater_range}")

    def heater_output_pct(self, loop: int = 1) -> float:
        return float(self.query(f"HTR? {self._loop(loop)}"))

    def pid(self, loop: int = 1) -> tuple[float, float, float]:
        p, i, d = (float(x) for x in self.query(f"PID? {self._loop(loop)}").split(","))
        return p, i, d

    def set_pid(self, loop: int, p: float, i: float, d: float) -> None:
        """P 0.1-1000, I 0.1-1000 (1000 / integral time in s), D 0-200 % of a quarter of it."""
        self.command(f"PID {self._loop(loop)},{p:g},{i:g},{d:g}")

    def ramp(self, loop: int = 1) -> tuple[bool, float]:
        on, rate = self.query(f"RAMP? {self._loop(loop)}").split(",")
        return on.strip() == "1", float(rate)

    def set_ramp(self, loop: int, on: bool, rate_k_per_min: float) -> None:
        """Setpoint ramp on/off and its rate, 0.1-100 K/min."""
        self.command(f"RAMP {self._loop(loop)},{int(on)},{rate_k_per_min:g}")

    def ramping(self, loop: int = 1) -> bool:
        return self.query(f"RAMPST? {self._loop(loop)}") == "1"

    def set_control_setup(
        self, loop: int, inp: str, units: int = 1, powerup: bool = False, display: int = 2
    ) -> None:
        """CSET: the input the loop controls, units (1 K), power-up enable, heater display (1 current, 2 power)."""
        self.command(f"CSET {self._loop(loop)},{self._input(inp)},{units},{int(powerup)},{display}")

    def control_setup(self, loop: int = 1) -> tuple[str, int, int, int]:
        inp, units, powerup, display = self.query(f"CSET? {self._loop(loop)}").split(",")
        return inp.strip(), int(units), int(powerup), int(display)

    def set_control_mode(self, loop: int, mode: int) -> None:
        """CMODE: 1 manual PID, 2 zone, 3 open loop, 4-6 autotune."""
        self.command(f"CMODE {self._loop(loop)},{mode}")

    def control_mode(self, loop: int = 1) -> int:
        return int(self.query(f"CMODE? {self._loop(loop)}"), 10)

    def set_manual_output_pct(self, loop: int, pct: float) -> None:
        self.command(f"MOUT {self._loop(loop)},{pct:g}")

    def manual_output_pct(self, loop: int = 1) -> float:
        return float(self.query(f"MOUT? {self._loop(loop)}"))

    def set_heater_resistance(self, loop: int, code: int) -> None:
        """HTRRES: 1 = 25 ohm, 2 = 50 ohm."""
        self.command(f"HTRRES {self._loop(loop)},{code}")

    def set_input_type(self, inp: str, sensor_type: int, compensation: bool = False) -> None:
        """INTYPE: 0 silicon diode (DT-670), 2 100 ohm platinum, ..."""
        self.command(f"INTYPE {self._input(inp)},{sensor_type},{int(compensation)}")

    def input_type(self, inp: str) -> tuple[int, int]:
        kind, comp = self.query(f"INTYPE? {self._input(inp)}").split(",")
        return int(kind), int(comp)

    def set_input_curve(self, inp: str, curve: int) -> None:
        self.command(f"INCRV {self._input(inp)},{curve}")

    def input_curve(self, inp: str) -> int:
        return int(self.query(f"INCRV? {self._input(inp)}"), 10)

    def close(self) -> None:
        self._inst.close()

    def __enter__(self) -> LakeShore325:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
