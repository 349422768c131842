"""Driver of the CAEN NDT1470 HV supply: the N1470-family ASCII protocol over pyserial (device, pty or socket://).

Parameters are declared as data (name, type, format, unit); replies are parsed strictly; every
error reply raises a typed error naming the command; silence raises a timeout error. One lock
around each request/reply, and the thread that opened the port owns it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

import serial

N_CHANNELS = 4
ALL_CHANNELS = 4  # CH:4 addresses the four channels at once


class ChannelStatus(IntFlag):
    """STAT bits of a channel (INSTRUMENTS.md 1.5)."""

    ON = 1
    RUP = 2
    RDW = 4
    OVC = 8
    OVV = 16
    UNV = 32
    MAXV = 64
    TRIP = 128
    OVP = 256
    OVT = 512
    DIS = 1024
    KILL = 2048
    ILK = 4096
    NOCAL = 8192


class BoardAlarm(IntFlag):
    """BDALARM bits of the board (INSTRUMENTS.md 1.6)."""

    CH0 = 1
    CH1 = 2
    CH2 = 4
    CH3 = 8
    PWFAIL = 16
    OVP = 32
    HVCKFAIL = 64


FAULT_BITS = (
    ChannelStatus.TRIP | ChannelStatus.KILL | ChannelStatus.ILK | ChannelStatus.DIS | ChannelStatus.OVT
)


class Ndt1470Error(RuntimeError):
    """The NDT1470 refused or failed a command; `command` is the request that failed."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class Ndt1470CommandError(Ndt1470Error):
    """CMD:ERR: the command is malformed or not recognised."""


class Ndt1470ChannelError(Ndt1470Error):
    """CH:ERR: the channel is missing or out of range."""


class Ndt1470ParameterError(Ndt1470Error):
    """PAR:ERR: the parameter is missing or not recognised."""


class Ndt1470ValueError(Ndt1470Error):
    """VAL:ERR: the value is below the minimum or above the maximum."""


class Ndt1470LocalModeError(Ndt1470Error):
    """LOC:ERR: the supply is in LOCAL mode and refuses every SET."""


class Ndt1470TimeoutError(Ndt1470Error):
    """No reply: wrong board address, port or cable, or the unit is off."""


class Ndt1470ProtocolError(Ndt1470Error):
    """A reply that is not in the protocol's format (garbage, a partial line, another board)."""


class Ndt1470SafetyError(Ndt1470Error):
    """Refused by the driver before anything was sent (a voltage above the configured limit, wrong polarity)."""


class Ndt1470TripError(Ndt1470Error):
    """A channel tripped, was killed or interlocked while the driver waited for it."""


_ERRORS: dict[str, type[Ndt1470Error]] = {
    "CMD": Ndt1470CommandError,
    "CH": Ndt1470ChannelError,
    "PAR": Ndt1470ParameterError,
    "VAL": Ndt1470ValueError,
    "LOC": Ndt1470LocalModeError,
}
_REPLY = re.compile(r"^#BD:(\d{2}),(.+)$")


@dataclass(frozen=True)
class Param:
    """One protocol parameter: reply type, how a SET value is formatted, unit."""

    kind: Callable[[str], Any]
    fmt: str | None = None  # None: read-only
    unit: str = ""
    choices: tuple[str, ...] = ()


def _int10(text: str) -> int:
    return int(text, 10)  # zero-padded replies are decimal, never octal


CHANNEL_PARAMS: dict[str, Param] = {
    "VSET": Param(float, "{:.1f}", "V"),
    "VMIN": Param(float, unit="V"),
    "VMAX": Param(float, unit="V"),
    "VDEC": Param(_int10),
    "VMON": Param(float, unit="V"),
    "ISET": Param(float, "{:.2f}", "uA"),
    "IMIN": Param(float, unit="uA"),
    "IMAX": Param(float, unit="uA"),
    "ISDEC": Param(_int10),
    "IMON": Param(float, unit="uA"),
    "IMRANGE": Param(str, "{}", choices=("HIGH", "LOW")),
    "IMDEC": Param(_int10),
    "MAXV": Param(float, "{:.0f}", "V"),
    "MVMIN": Param(float, unit="V"),
    "MVMAX": Param(float, unit="V"),
    "MVDEC": Param(_int10),
    "RUP": Param(float, "{:.0f}", "V/s"),
    "RDW": Param(float, "{:.0f}", "V/s"),
    "RUPMIN": Param(float, unit="V/s"),
    "RUPMAX": Param(float, unit="V/s"),
    "RUPDEC": Param(_int10),
    "RDWMIN": Param(float, unit="V/s"),
    "RDWMAX": Param(float, unit="V/s"),
    "RDWDEC": Param(_int10),
    "TRIP": Param(float, "{:.1f}", "s"),
    "TRIPMIN": Param(float, unit="s"),
    "TRIPMAX": Param(float, unit="s"),
    "TRIPDEC": Param(_int10),
    "PDWN": Param(str, "{}", choices=("RAMP", "KILL")),
    "POL": Param(str),
    "STAT": Param(lambda s: ChannelStatus(_int10(s))),
}
BOARD_PARAMS: dict[str, Param] = {
    "BDNAME": Param(str),
    "BDNCH": Param(_int10),
    "BDFREL": Param(str),
    "BDSNUM": Param(str),
    "BDILK": Param(str),
    "BDILKM": Param(str, "{}", choices=("OPEN", "CLOSED")),
    "BDCTR": Param(str),
    "BDTERM": Param(str),
    "BDALARM": Param(lambda s: BoardAlarm(_int10(s))),
}


@dataclass(frozen=True)
class ChannelReading:
    """One poll of a channel."""

    channel: int
    vset_v: float
    vmon_v: float
    iset_ua: float
    imon_ua: float
    status: ChannelStatus
    polarity: str

    @property
    def flags(self) -> str:
        """The status bits in words, e.g. 'ON RUP' or 'off'."""
        names = [flag.name for flag in ChannelStatus if flag in self.status and flag.name]
        return " ".join(names) if names else "off"


class Ndt1470:
    """A CAEN NDT1470 at `url` (device path, pty path, socket://host:port, spy://...).

    max_voltage_v: the largest |VSET| this program may ever send (the PMT's limit), checked
    before sending. timeout_s: how long a reply may take; silence raises Ndt1470TimeoutError.
    """

    def __init__(
        self,
        url: str,
        board: int = 0,
        max_voltage_v: float = 1700.0,
        baudrate: int = 9600,
        xonxoff: bool = True,
        timeout_s: float = 1.0,
        open_port: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        if not 0 <= board <= 31:
            raise ValueError(f"NDT1470 board address must be 0-31, not {board}")
        self.url = url
        self.board = board
        self.max_voltage_v = max_voltage_v
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        try:
            self._port = open_port(
                url,
                baudrate=baudrate,
                bytesize=8,
                parity="N",
                stopbits=1,
                xonxoff=xonxoff,
                timeout=timeout_s,
                exclusive=True,  # a second program on the same port would interleave requests and replies
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise Ndt1470Error(
                f"NDT1470: cannot open {url}: {exc}. Check hv.port in the configuration (a /dev/ttyACM* "
                f"device for the USB link), that no other program holds it, or use the simulator (daq sim ndt1470)."
            ) from exc

    # ---- the wire ----

    def _check_owner(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                f"NDT1470 {self.url} is owned by the thread that opened it; send it requests instead"
            )

    def request(self, command: str) -> str | None:
        """Send `$BD:nn,<command>` and return the VAL of the reply (None for a bare CMD:OK); raise on errors."""
        self._check_owner()
        line = f"$BD:{self.board:02d},{command}"
        with self._lock:
            self._port.reset_input_buffer()  # a late reply or a stray CR of an LF CR ack
            self._port.write(line.encode("ascii") + b"\r\n")
            raw = self._port.read_until(b"\n")
        if not raw:
            raise Ndt1470TimeoutError(
                f"NDT1470 ({self.url}, board {self.board:02d}) did not answer {command} within {self.timeout_s:g} s. "
                f"Check hv.board in the configuration (a wrong board address gets no reply), the cable, and that "
                f"the unit is on.",
                command,
            )
        return self._parse(raw, command)

    def _parse(self, raw: bytes, command: str) -> str | None:
        text = raw.decode("ascii", errors="replace").strip("\r\n ")
        if not raw.endswith(b"\n"):
            raise Ndt1470ProtocolError(
                f"NDT1470 ({self.url}) sent a partial reply {raw!r} to {command} (no line end within "
                f"{self.timeout_s:g} s): check the baud rate and the cable",
                command,
            )
        m = _REPLY.match(text)
        if m is None:
            raise Ndt1470ProtocolError(
                f"NDT1470 ({self.url}) sent {raw!r} to {command}: not a reply", command
            )
        if int(m.group(1), 10) != self.board:
            raise Ndt1470ProtocolError(
                f"NDT1470 ({self.url}) reply from board {m.group(1)} to {command} for board {self.board:02d}",
                command,
            )
        fields = m.group(2).split(",")
        for field in fields:
            key, _, value = field.partition(":")
            if value == "ERR":
                kind = _ERRORS.get(key, Ndt1470Error)
                hint = (
                    " The supply is in LOCAL mode: switch it to REMOTE on the front panel."
                    if kind is Ndt1470LocalModeError
                    else ""
                )
                raise kind(f"NDT1470 ({self.url}) refused {command}: {key}:ERR.{hint}", command)
        if (
            fields[0] != "CMD:OK"
            or len(fields) > 2
            or (len(fields) == 2 and not fields[1].startswith("VAL:"))
        ):
            raise Ndt1470ProtocolError(
                f"NDT1470 ({self.url}) sent {raw!r} to {command}: not a reply", command
            )
        return fields[1][4:] if len(fields) == 2 else None

    # ---- parameters ----

    def _value(self, name: str, table: dict[str, Param], command: str) -> Any:
        text = self.request(command)
        if text is None:
            raise Ndt1470ProtocolError(f"NDT1470 ({self.url}) answered {command} without a value", command)
        try:
            return table[name].kind(text.strip())
        except ValueError:
            raise Ndt1470ProtocolError(
                f"NDT1470 ({self.url}) sent {text!r} for {name}: not a valid value"
            ) from None

    def get(self, channel: int, name: str) -> Any:
        """Read a channel parameter (CHANNEL_PARAMS) of channel 0-3, in its unit."""
        self._check_channel(channel)
        return self._value(name, CHANNEL_PARAMS, f"CMD:MON,CH:{channel},PAR:{name}")

    def get_all(self, name: str) -> list[Any]:
        """Read a channel parameter of the four channels at once (CH:4)."""
        text = self.request(f"CMD:MON,CH:{ALL_CHANNELS},PAR:{name}")
        items = [item for item in (text or "").split(";") if item.strip()]  # a trailing ';' may come
        if len(items) != N_CHANNELS:
            raise Ndt1470ProtocolError(f"NDT1470 ({self.url}) sent {text!r} for {name} of all channels")
        return [CHANNEL_PARAMS[name].kind(item.strip()) for item in items]

    def set(self, channel: int, name: str, value: Any) -> None:
        """Write a settable channel parameter, formatted with its resolution."""
        self._check_channel(channel, allow_all=True)
        param = CHANNEL_PARAMS[name]
        if param.fmt is None:
            raise ValueError(f"NDT1470 parameter {name} is read-only")
        if param.choices and value not in param.choices:
            raise ValueError(f"NDT1470 {name} must be one of {param.choices}, not {value!r}")
        if name == "VSET":
            self._check_voltage(float(value))
        self.request(f"CMD:SET,CH:{channel},PAR:{name},VAL:{param.fmt.format(value)}")

    def board_value(self, name: str) -> Any:
        """Read a board parameter (BOARD_PARAMS)."""
        return self._value(name, BOARD_PARAMS, f"CMD:MON,PAR:{name}")

    def _check_channel(self, channel: int, allow_all: bool = False) -> None:
        if not (0 <= channel < N_CHANNELS or (allow_all and channel == ALL_CHANNELS)):
            raise ValueError(f"NDT1470 channel must be 0-{N_CHANNELS - 1}, not {channel}")

    def _check_voltage(self, voltage_v: float) -> None:
        if not 0.0 <= voltage_v <= self.max_voltage_v:
            raise Ndt1470SafetyError(
                f"NDT1470 ({self.url}): VSET {voltage_v:g} V refused before sending: the configured limit is "
                f"0-{self.max_voltage_v:g} V (hv.max_voltage_v). VSET is a magnitude; the sign is the channel's POL."
            )

    # ---- typed helpers ----

    def set_voltage_v(self, channel: int, voltage_v: float) -> None:
        """Set a signed target voltage: |V| as VSET after checking the channel's polarity switch."""
        polarity = self.get(channel, "POL")
        if voltage_v != 0 and (polarity == "-") != (voltage_v < 0):
            raise Ndt1470SafetyError(
                f"NDT1470 ({self.url}) channel {channel}: asked for {voltage_v:+g} V but its polarity switch is "
                f"'{polarity}'. Check the configuration's sign or the channel."
            )
        self.set(channel, "VSET", abs(voltage_v))

    def on(self, channel: int) -> None:
        """Switch a channel on (it ramps to VSET at RUP)."""
        self._check_channel(channel, allow_all=True)
        self.request(f"CMD:SET,CH:{channel},PAR:ON")

    def off(self, channel: int) -> None:
        """Switch a channel off (it ramps down at RDW, or drops at once with PDWN KILL)."""
        self._check_channel(channel, allow_all=True)
        self.request(f"CMD:SET,CH:{channel},PAR:OFF")

    def clear_alarm(self) -> None:
        """Clear the board alarm and the TRIP flags (BDCLR)."""
        self.request("CMD:SET,PAR:BDCLR")

    def set_interlock_mode(self, mode: str) -> None:
        """Set the interlock mode, OPEN or CLOSED."""
        if mode not in BOARD_PARAMS["BDILKM"].choices:
            raise ValueError(f"NDT1470 interlock mode must be OPEN or CLOSED, not {mode!r}")
        self.request(f"CMD:SET,PAR:BDILKM,VAL:{mode}")

    def status(self, channel: int) -> ChannelStatus:
        """The channel's status bits."""
        return self.get(channel, "STAT")

    def read_channel(self, channel: int) -> ChannelReading:
        """VSET, VMON, ISET, IMON, STAT and POL of one channel (six requests)."""
        return ChannelReading(
            channel=channel,
            vset_v=self.get(channel, "VSET"),
            vmon_v=self.get(channel, "VMON"),
            iset_ua=self.get(channel, "ISET"),
            imon_ua=self.get(channel, "IMON"),
            status=self.status(channel),
            polarity=self.get(channel, "POL"),
        )

    def wait_for_ramp(
        self,
        channel: int,
        timeout_s: float,
        tolerance_v: float = 2.0,
        poll_s: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        expect_on: bool | None = None,
    ) -> ChannelReading:
        """Wait until the channel stops ramping with VMON within `tolerance_v` of its target.

        The target is VSET when on, 0 when off. While going up, raises Ndt1470TripError if TRIP, KILL,
        ILK, DIS or OVT appear (going down to 0 they do not matter); Ndt1470TimeoutError after
        `timeout_s`; Ndt1470Error if `should_stop()` says so.
        """
        deadline = clock() + timeout_s
        going_up: bool | None = None
        while True:
            reading = self.read_channel(channel)
            if going_up is None:  # what the caller waits for: on (or tripped on the way), or off
                going_up = (
                    expect_on
                    if expect_on is not None
                    else bool(reading.status & (ChannelStatus.ON | FAULT_BITS))
                )
            if going_up and reading.status & FAULT_BITS:
                raise Ndt1470TripError(
                    f"NDT1470 ({self.url}) channel {channel} stopped while ramping: {reading.flags} "
                    f"(VMON {reading.vmon_v:g} V, IMON {reading.imon_ua:g} uA). Check the PMT and its cable, "
                    f"then clear the alarm (daq hv ... off, then on).",
                    "wait_for_ramp",
                )
            target = reading.vset_v if reading.status & ChannelStatus.ON else 0.0
            ramping = reading.status & (ChannelStatus.RUP | ChannelStatus.RDW)
            if not ramping and abs(reading.vmon_v - target) <= tolerance_v:
                return reading
            if should_stop():
                raise Ndt1470Error(f"NDT1470 channel {channel}: wait for the ramp abandoned", "wait_for_ramp")
            if clock() > deadline:
                raise Ndt1470TimeoutError(
                    f"NDT1470 ({self.url}) channel {channel} did not reach {target:g} V within {timeout_s:g} s "
                    f"(VMON {reading.vmon_v:g} V, {reading.flags}). Check RUP/RDW and the load.",
                    "wait_for_ramp",
                )
            sleep(poll_s)

    def close(self) -> None:
        """Close the port."""
        self._port.close()

    def __enter__(self) -> Ndt1470:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
