"""The NDT1470's parameters declared as data: reply shape, SET format, unit, range and read-back of each.

One table per scope (channel, board). The driver's setters validate and format with it, its
getters check and parse replies with it, and a SET is verified by reading back the parameter the
table names. Formats and ranges: INSTRUMENTS.md 1.4 and 1.6 (the N1470-family manual wording).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

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


def _int10(text: str) -> int:
    return int(text, 10)  # zero-padded replies are decimal, never octal


# Reply shapes (a MON value must match its parameter's, or it is another command's answer).
_V1 = r"\d{1,4}\.\d"  # XXXX.X: volts, seconds
_I2 = r"\d{1,4}\.\d{2}"  # XXXX.XX: microamps
_IMON = r"\d{1,4}\.\d{2,3}"  # 2 decimals in the HIGH range, 3 in LOW (a DT1470ET recorded '000.000')
_INT3, _INT4, _INT5 = r"\d{1,3}", r"\d{1,4}", r"\d{5}"  # XXX, XXXX, XXXXX (STAT and BDALARM: always 5)
_DIGIT = r"\d"


def _words(*choices: str) -> str:
    return "|".join(re.escape(c) for c in choices)


@dataclass(frozen=True)
class Param:
    """One protocol parameter.

    reply: regular expression a MON value must match in full. kind: parses it. fmt: formats a SET
    value at the unit's resolution (None: read-only; "" : a SET without VAL). low/high: the range
    enforced before sending. readback: the MON parameter that shows a SET took (STAT for ON/OFF).
    """

    name: str
    reply: str
    kind: Callable[[str], Any] = float
    fmt: str | None = None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    readback: str | None = None
    doc: str = ""
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(f"(?:{self.reply})"))

    @property
    def settable(self) -> bool:
        return self.fmt is not None

    def parse(self, text: str) -> Any:
        """Parse one MON value; raise ValueError if it is not this parameter's shape."""
        if self._pattern.fullmatch(text) is None:
            raise ValueError(f"{text!r} is not a {self.name} value")
        return self.kind(text)

    def format(self, value: Any) -> str:
        """Validate a SET value and format it; raise ValueError (never clips) outside range or choices."""
        if self.fmt is None:
            raise ValueError(f"NDT1470 parameter {self.name} is read-only")
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"NDT1470 {self.name} must be one of {self.choices}, not {value!r}")
            return self.fmt.format(value)
        if self.fmt == "":
            return ""
        number = float(value)
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if not low <= number <= high:  # NaN fails too
            raise ValueError(
                f"NDT1470 {self.name} {value!r} {self.unit} is outside {low:g}-{high:g} {self.unit}".rstrip()
            )
        return self.fmt.format(number)


def _p(name: str, reply: str, **kw: Any) -> tuple[str, Param]:
    return name, Param(name, reply, **kw)


CHANNEL_PARAMS: dict[str, Param] = dict([
    _p("VSET", _V1, fmt="{:.1f}", unit="V", low=0.0, high=8000.0, readback="VSET", doc="voltage set point (magnitude)"),
    _p("VMIN", _V1, unit="V"),
    _p("VMAX", _V1, unit="V"),
    _p("VDEC", _DIGIT, kind=_int10),
    _p("VMON", _V1, unit="V", doc="monitored voltage (magnitude)"),
    _p("ISET", _I2, fmt="{:.2f}", unit="uA", low=0.0, high=3000.0, readback="ISET", doc="current limit"),
    _p("IMIN", _I2, unit="uA"),
    _p("IMAX", _I2, unit="uA"),
    _p("ISDEC", _DIGIT, kind=_int10),
    _p("IMON", _IMON, unit="uA", doc="monitored current"),
    _p("IMRANGE", _words("HIGH", "LOW"), kind=str, fmt="{}", choices=("HIGH", "LOW"), readback="IMRANGE"),
    _p("IMDEC", _DIGIT, kind=_int10),
    _p("MAXV", _INT4, fmt="{:.0f}", unit="V", low=0.0, high=8100.0, readback="MAXV", doc="voltage limit"),
    _p("MVMIN", _INT4, unit="V"),
    _p("MVMAX", _INT4, unit="V"),
    _p("MVDEC", _DIGIT, kind=_int10),
    _p("RUP", _INT3, fmt="{:.0f}", unit="V/s", low=1.0, high=500.0, readback="RUP", doc="ramp-up rate"),
    _p("RDW", _INT3, fmt="{:.0f}", unit="V/s", low=1.0, high=500.0, readback="RDW", doc="ramp-down rate"),
    _p("RUPMIN", _INT3, unit="V/s"),
    _p("RUPMAX", _INT3, unit="V/s"),
    _p("RUPDEC", _DIGIT, kind=_int10),
    _p("RDWMIN", _INT3, unit="V/s"),
    _p("RDWMAX", _INT3, unit="V/s"),
    _p("RDWDEC", _DIGIT, kind=_int10),
    _p("TRIP", _V1, fmt="{:.1f}", unit="s", low=0.0, high=1000.0, readback="TRIP", doc="over-current trip time"),
    _p("TRIPMIN", _V1, unit="s"),
    _p("TRIPMAX", _V1, unit="s"),
    _p("TRIPDEC", _DIGIT, kind=_int10),
    _p("PDWN", _words("RAMP", "KILL"), kind=str, fmt="{}", choices=("RAMP", "KILL"), readback="PDWN"),
    _p("POL", _words("+", "-"), kind=str, doc="polarity switch (read-only)"),
    _p("STAT", _INT5, kind=lambda s: ChannelStatus(_int10(s)), doc="status bits"),
    _p("ON", "", fmt="", readback="STAT", doc="switch on (STAT shows ON)"),
    _p("OFF", "", fmt="", readback="STAT", doc="switch off (STAT shows no ON)"),
])  # fmt: skip

BOARD_PARAMS: dict[str, Param] = dict([
    _p("BDNAME", r"[ -~]+", kind=str),
    _p("BDNCH", r"\d{1,2}", kind=_int10),
    _p("BDFREL", r"\d{1,2}\.\d{1,2}", kind=str),  # '1.08' recorded on a DT1470ET
    _p("BDSNUM", r"\d{1,5}", kind=str),  # '79' and '19198' recorded: not padded
    _p("BDILK", _words("YES", "NO"), kind=str),
    _p("BDILKM", _words("OPEN", "CLOSED"), kind=str, fmt="{}", choices=("OPEN", "CLOSED"), readback="BDILKM"),
    _p("BDCTR", _words("LOCAL", "REMOTE"), kind=str),
    _p("BDTERM", _words("ON", "OFF"), kind=str),
    _p("BDALARM", _INT5, kind=lambda s: BoardAlarm(_int10(s))),
    _p("BDCLR", "", fmt=""),  # no read-back: an alarm may come back at once
])  # fmt: skip


def readback_matches(param: Param, sent: str, read: Any) -> bool:
    """Whether a read-back value shows that SET `param` with VAL `sent` took.

    ON/OFF read STAT: ON shows the ON bit, OFF shows it clear. Numbers compare at the resolution
    of the formatted value; choices compare as text.
    """
    if param.name == "ON":
        return bool(read & ChannelStatus.ON)
    if param.name == "OFF":
        return not read & ChannelStatus.ON
    if param.choices:
        return read == sent
    decimals = len(sent.partition(".")[2])
    return abs(float(read) - float(sent)) <= 0.5 * 10.0**-decimals + 1e-9
