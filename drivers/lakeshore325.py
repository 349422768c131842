"""Driver of the Lake Shore 325 temperature controller over pyvisa (pyvisa-py: GPIB, serial 7O1 CR LF, sockets).

Parameters are declared once in `lakeshore325_params.TABLE`; `get` and `set` use it for the range
checks (before anything is sent), the reply shapes and the read-back. Channel objects:
`ls.input("A").temperature_k`, `ls.loop(1).setpoint_k = 77.0`. Every setting is checked with
*ESR? and then read back and compared. The wire (spacing, flushing, resynchronising after a late
or garbled reply) is `lakeshore325_link.Link`. One thread owns the connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from drivers.lakeshore325_errors import (
    LakeShoreBackendError,
    LakeShoreError,
    LakeShoreProtocolError,
    LakeShoreReadbackError,
    LakeShoreRejectedError,
    LakeShoreTimeoutError,
)
from drivers.lakeshore325_link import MIN_INTERVAL_S, LineSettings, Link, open_resource
from drivers.lakeshore325_params import (
    TABLE,
    ControlSetup,
    Param,
    Pid,
    Ramp,
    ReplyShapeError,
    SensorType,
    command_text,
    parse_reply,
    query_text,
    same,
    shown,
    validate,
)

__all__ = [
    "ControlLoop",
    "ControlSetup",
    "LakeShore325",
    "LakeShoreBackendError",
    "LakeShoreError",
    "LakeShoreProtocolError",
    "LakeShoreReadbackError",
    "LakeShoreRejectedError",
    "LakeShoreTimeoutError",
    "LineSettings",
    "Pid",
    "Ramp",
    "Reading",
    "ReadingStatus",
    "SensorType",
    "TemperatureInput",
]

ESR_CME, ESR_EXE, ESR_QYE = 32, 16, 4
MAX_MESSAGE = 64


class ReadingStatus(IntFlag):
    """RDGST? bits."""

    INVALID = 1
    TEMP_UNDER = 16
    TEMP_OVER = 32
    UNITS_ZERO = 64
    UNITS_OVER = 128


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


class _Setting:
    """A table parameter on a channel object: reading it queries, assigning it sets and verifies."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__doc__ = TABLE[name].doc

    def __get__(self, channel: Any, owner: type | None = None) -> Any:
        if channel is None:
            return self
        return channel.device.get(self.name, channel.id)

    def __set__(self, channel: Any, value: Any) -> None:
        channel.device.set(self.name, channel.id, value)


class TemperatureInput:
    """Input A or B of the 325."""

    temperature_k = _Setting("temperature_k")
    temperature_c = _Setting("temperature_c")
    sensor_units = _Setting("sensor_units")
    reading_status = _Setting("reading_status")
    sensor_type = _Setting("sensor_type")
    curve = _Setting("curve")

    def __init__(self, device: LakeShore325, name: str) -> None:
        if name not in ("A", "B"):
            raise ValueError(f"Lake Shore 325 input must be A or B, not {name!r}")
        self.device, self.id = device, name

    def read(self) -> Reading:
        """Measure temperature (K), sensor units and status of this input."""
        temperature_k, sensor_units = self.temperature_k, self.sensor_units
        return Reading(self.id, temperature_k, sensor_units, ReadingStatus(self.reading_status))


class ControlLoop:
    """Control loop 1 (25 W heater) or 2 of the 325."""

    setpoint_k = _Setting("setpoint_k")
    ramp = _Setting("ramp")
    heater_range = _Setting("heater_range")
    pid = _Setting("pid")
    control_setup = _Setting("control_setup")
    control_mode = _Setting("control_mode")
    manual_output_pct = _Setting("manual_output_pct")
    heater_resistance = _Setting("heater_resistance")
    heater_output_pct = _Setting("heater_output_pct")
    ramping = _Setting("ramping")

    def __init__(self, device: LakeShore325, number: int) -> None:
        if number not in (1, 2):
            raise ValueError(f"Lake Shore 325 loop must be 1 or 2, not {number!r}")
        self.device, self.id = device, number


class LakeShore325:
    """A Lake Shore 325 at a VISA resource (ASRL.../GPIB.../TCPIP...::SOCKET, or ASRLsocket://host:port::INSTR)."""

    def __init__(
        self,
        resource: str,
        timeout_s: float = 1.0,
        open_instrument: Callable[[str, float, LineSettings], Any] = open_resource,
        min_interval_s: float = MIN_INTERVAL_S,
        line: LineSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.resource = resource
        self.timeout_s = timeout_s
        self.line = line or LineSettings()
        inst = open_instrument(resource, timeout_s, self.line)
        self.link = Link(inst, resource, timeout_s, self.line, min_interval_s, clock, sleep)
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._inputs = {name: TemperatureInput(self, name) for name in ("A", "B")}
        self._loops = {n: ControlLoop(self, n) for n in (1, 2)}
        try:
            self.clear_status()  # flags left by an earlier session must not be blamed on our commands
        except BaseException:
            self.link.close()
            raise

    # ---- channels ----

    def input(self, name: str) -> TemperatureInput:
        """Input A or B; raise ValueError for any other name."""
        if name not in self._inputs:
            raise ValueError(f"Lake Shore 325 input must be A or B, not {name!r}")
        return self._inputs[name]

    def loop(self, number: int) -> ControlLoop:
        """Control loop 1 or 2; raise ValueError for any other number."""
        if number not in self._loops:
            raise ValueError(f"Lake Shore 325 loop must be 1 or 2, not {number!r}")
        return self._loops[number]

    # ---- the wire ----

    def _check_owner(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"Lake Shore 325 {self.resource} is owned by the thread that opened it")

    def query(self, message: str) -> str:
        """Send a raw query and return its reply line (any non-empty line); raise LakeShoreTimeoutError on silence."""
        self._check_owner()
        with self._lock:
            return self.link.ask(message, _any_line)

    def _ask(self, param: Param, channel: int | str | None) -> Any:
        message = query_text(param, channel)
        self._check_owner()
        with self._lock:
            return self.link.ask(message, lambda reply: parse_reply(param, channel, reply))

    def command(self, message: str) -> None:
        """Send a command, then check *ESR?; raise LakeShoreRejectedError if the 325 flagged it."""
        if len(message) > MAX_MESSAGE:
            raise ValueError(f"Lake Shore 325 messages are at most {MAX_MESSAGE} characters: {message!r}")
        self._check_owner()
        with self._lock:
            self.link.write(message)
        esr = self._ask(TABLE["esr"], None)
        if esr & (ESR_CME | ESR_EXE):
            kind = (
                "command error (unknown command or syntax)"
                if esr & ESR_CME
                else "execution error (bad value)"
            )
            raise LakeShoreRejectedError(
                f"Lake Shore 325 ({self.resource}) rejected {message!r}: {kind}, *ESR {esr}", message
            )

    # ---- the table ----

    def get(self, name: str, channel: int | str | None = None) -> Any:
        """Query one table parameter of a loop (1, 2) or input ('A', 'B'); the reply's shape is checked."""
        param = TABLE[name]
        self._channel(param, channel)
        return self._ask(param, channel)

    def set(self, name: str, channel: int | str, value: Any) -> None:
        """Set one table parameter, check *ESR?, read it back and compare.

        Ranges are checked before anything is sent (ValueError). Raises LakeShoreRejectedError when
        the 325 flags the command, LakeShoreReadbackError when it reads back different.
        """
        param = TABLE[name]
        self._channel(param, channel)
        sent = validate(param, channel, value)
        message = command_text(param, channel, sent)
        self.command(message)
        read = self._ask(param, channel)
        if not same(param, sent, read):
            raise LakeShoreReadbackError(
                f"Lake Shore 325 ({self.resource}) {name} of {param.scope} {channel}: sent {shown(param, sent)}, "
                f"read back {shown(param, read)}. The 325 clamped or ignored it: check its limits and front panel.",
                message,
                name,
                sent if len(sent) > 1 else sent[0],
                read,
            )

    @staticmethod
    def _channel(param: Param, channel: int | str | None) -> None:
        if param.scope == "loop" and channel not in (1, 2):
            raise ValueError(f"Lake Shore 325 loop must be 1 or 2, not {channel!r}")
        if param.scope == "input" and channel not in ("A", "B"):
            raise ValueError(f"Lake Shore 325 input must be A or B, not {channel!r}")

    # ---- identity and status ----

    def identify(self) -> str:
        """*IDN?: maker, model, serial, firmware."""
        reply = self.query("*IDN?")
        if "MODEL325" not in reply:
            raise LakeShoreError(f"{self.resource} identifies as {reply!r}, not a Lake Shore 325", "*IDN?")
        return reply

    def clear_status(self) -> None:
        """Clear the event registers (*CLS) and read *ESR? once so that old flags are gone."""
        self._check_owner()
        with self._lock:
            self.link.write("*CLS")
        self._ask(TABLE["esr"], None)

    # ---- the old method names, thin wrappers over the table ----

    def temperature_k(self, inp: str) -> float:
        return self.input(inp).temperature_k

    def sensor_units(self, inp: str) -> float:
        return self.input(inp).sensor_units

    def reading_status(self, inp: str) -> ReadingStatus:
        return ReadingStatus(self.input(inp).reading_status)

    def read(self, inp: str) -> Reading:
        return self.input(inp).read()

    def setpoint_k(self, loop: int = 1) -> float:
        return self.loop(loop).setpoint_k

    def set_setpoint_k(self, loop: int, value_k: float) -> None:
        self.loop(loop).setpoint_k = value_k

    def heater_range(self, loop: int = 1) -> int:
        return self.loop(loop).heater_range

    def set_heater_range(self, loop: int, heater_range: int) -> None:
        self.loop(loop).heater_range = heater_range

    def heater_output_pct(self, loop: int = 1) -> float:
        return self.loop(loop).heater_output_pct

    def pid(self, loop: int = 1) -> Pid:
        return self.loop(loop).pid

    def set_pid(self, loop: int, p: float, i: float, d: float) -> None:
        self.loop(loop).pid = (p, i, d)

    def ramp(self, loop: int = 1) -> Ramp:
        return self.loop(loop).ramp

    def set_ramp(self, loop: int, on: bool, rate_k_per_min: float) -> None:
        self.loop(loop).ramp = (on, rate_k_per_min)

    def ramping(self, loop: int = 1) -> bool:
        return self.loop(loop).ramping

    def set_control_setup(
        self, loop: int, inp: str, units: int = 1, powerup: bool = False, display: int = 2
    ) -> None:
        self.loop(loop).control_setup = (inp, units, int(powerup), display)

    def control_setup(self, loop: int = 1) -> ControlSetup:
        return self.loop(loop).control_setup

    def set_control_mode(self, loop: int, mode: int) -> None:
        self.loop(loop).control_mode = mode

    def control_mode(self, loop: int = 1) -> int:
        return self.loop(loop).control_mode

    def set_manual_output_pct(self, loop: int, pct: float) -> None:
        self.loop(loop).manual_output_pct = pct

    def manual_output_pct(self, loop: int = 1) -> float:
        return self.loop(loop).manual_output_pct

    def set_heater_resistance(self, loop: int, code: int) -> None:
        self.loop(loop).heater_resistance = code

    def set_input_type(self, inp: str, sensor_type: int, compensation: bool = False) -> None:
        self.input(inp).sensor_type = (sensor_type, int(compensation))

    def input_type(self, inp: str) -> SensorType:
        return self.input(inp).sensor_type

    def set_input_curve(self, inp: str, curve: int) -> None:
        self.input(inp).curve = curve

    def input_curve(self, inp: str) -> int:
        return self.input(inp).curve

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> LakeShore325:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _any_line(reply: str) -> str:
    if not reply:
        raise ReplyShapeError("an empty line")
    return reply
