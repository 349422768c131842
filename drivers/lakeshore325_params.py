"""The Lake Shore 325's parameters in one table: command, query, fields (type, unit, range, resolution), read-back.

The setters, the read-back comparison, the range checks (made before anything is sent) and the reply
shape checks all come from TABLE. Sources: the Model 325 manual, chapter 6 (PID, RAMP and MOUT on
p. 6-31; serial settings in table 6-6), QCoDeS' Lakeshore_model_325 driver, INSTRUMENTS.md 2.4.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
IDN_SHAPE = re.compile(r"^LSCI,MODEL\w+,[^,]*,[^,]*$")  # *IDN?: LSCI,MODEL325,<serial>,<firmware>

Kind = Literal["float", "int", "bool", "input"]
Choices = tuple[int, ...] | Mapping[int, tuple[int, ...]]  # a mapping: the choices per loop


class ReplyShapeError(ValueError):
    """A reply line does not have the shape its query answers with."""


class Pid(NamedTuple):
    p: float
    i: float
    d: float


class Ramp(NamedTuple):
    enabled: bool
    rate_k_per_min: float


class ControlSetup(NamedTuple):
    input: str
    units: int  # 1 K, 2 Celsius, 3 sensor units
    powerup: int  # 0/1: the loop resumes after a power cut
    display: int  # heater display: 1 current, 2 power


class SensorType(NamedTuple):
    sensor_type: int  # 0 silicon diode ... 9 (INSTRUMENTS.md 2.4)
    compensation: int


@dataclass(frozen=True)
class Field:
    """One value of a command: its type, unit, range (or choices) and the resolution it is sent with."""

    name: str
    kind: Kind
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: Choices | None = None
    decimals: int = 0  # floats are sent rounded to this and compared within half a step


@dataclass(frozen=True)
class Param:
    """One parameter: `command` (None: read-only), `query`, its fields; scope says what the first argument is."""

    name: str
    scope: Literal["loop", "input", "instrument"]
    query: str
    fields: tuple[Field, ...]
    command: str | None = None
    value_type: Callable[..., Any] | None = None  # a NamedTuple for several fields
    check: Callable[[tuple[Any, ...]], str | None] | None = None  # a rule across fields: its complaint
    doc: str = ""


def _ramp_rule(values: tuple[Any, ...]) -> str | None:
    enabled, rate = values
    if enabled and rate < 0.1:
        return f"an enabled ramp needs a rate of 0.1-100 K/min, not {rate:g} (turn the ramp off instead)"
    return None


_LOOP_RANGES: dict[int, tuple[int, ...]] = {1: (0, 1, 2), 2: (0, 1)}
_F = Field
TABLE: dict[str, Param] = {
    p.name: p
    for p in (
        # ---- control loops 1 and 2 ----
        Param("setpoint_k", "loop", "SETP?", (_F("setpoint_k", "float", "K", 0.0, 1500.0, decimals=3),), "SETP",
              doc="Control the loop's setpoint in its CSET units (K here), 0-1500."),
        Param("ramp", "loop", "RAMP?", (_F("enabled", "bool"), _F("rate_k_per_min", "float", "K/min", 0.0, 100.0,
              decimals=1)), "RAMP", Ramp, _ramp_rule, doc="Control the setpoint ramp: on/off, 0.1-100 K/min."),
        Param("heater_range", "loop", "RANGE?", (_F("heater_range", "int", choices=_LOOP_RANGES),), "RANGE",
              doc="Control the heater range: loop 1 0 off, 1 low 2.5 W, 2 high 25 W; loop 2 0 off, 1 on."),
        Param("pid", "loop", "PID?", (_F("p", "float", "", 0.1, 1000.0, decimals=1),
              _F("i", "float", "1000/s", 0.1, 1000.0, decimals=1), _F("d", "float", "%", 0.0, 200.0, decimals=1)),
              "PID", Pid, doc="Control P 0.1-1000, I 0.1-1000 (1000/integral time in s), D 0-200 %."),
        Param("control_setup", "loop", "CSET?", (_F("input", "input"), _F("units", "int", choices=(1, 2, 3)),
              _F("powerup", "int", choices=(0, 1)), _F("display", "int", choices=(1, 2))), "CSET", ControlSetup,
              doc="Control the loop's input, units (1 K), power-up enable and heater display (1 I, 2 P)."),
        Param("control_mode", "loop", "CMODE?", (_F("mode", "int", choices=(1, 2, 3, 4, 5, 6)),), "CMODE",
              doc="Control the mode: 1 manual PID, 2 zone, 3 open loop, 4-6 autotune."),
        Param("manual_output_pct", "loop", "MOUT?", (_F("manual_output_pct", "float", "%", 0.0, 100.0,
              decimals=2),), "MOUT", doc="Control the manual heater output, 0-100 %."),
        Param("heater_resistance", "loop", "HTRRES?", (_F("code", "int", choices=(1, 2)),), "HTRRES",
              doc="Control the heater resistance setting: 1 = 25 ohm, 2 = 50 ohm."),
        Param("heater_output_pct", "loop", "HTR?", (_F("heater_output_pct", "float", "%"),),
              doc="Measure the heater output, % of full scale."),
        Param("ramping", "loop", "RAMPST?", (_F("ramping", "bool"),), doc="Get whether the setpoint is ramping."),
        # ---- inputs A and B ----
        Param("sensor_type", "input", "INTYPE?", (_F("sensor_type", "int", choices=tuple(range(10))),
              _F("compensation", "int", choices=(0, 1))), "INTYPE", SensorType,
              doc="Control the input's sensor type (0 silicon diode ... 9) and compensation."),
        Param("curve", "input", "INCRV?", (_F("curve", "int", low=0, high=35),), "INCRV",
              doc="Control the input's curve: 0 none, 1-20 standard, 21-35 user."),
        Param("temperature_k", "input", "KRDG?", (_F("temperature_k", "float", "K"),),
              doc="Measure the input's temperature in kelvin."),
        Param("temperature_c", "input", "CRDG?", (_F("temperature_c", "float", "C"),),
              doc="Measure the input's temperature in Celsius."),
        Param("sensor_units", "input", "SRDG?", (_F("sensor_units", "float", "V or ohm"),),
              doc="Measure the input's raw sensor reading (V for a diode, ohm for an RTD)."),
        Param("reading_status", "input", "RDGST?", (_F("status", "int", low=0, high=255),),
              doc="Get the input's reading status bits (RDGST?)."),
        # ---- the instrument ----
        Param("esr", "instrument", "*ESR?", (_F("esr", "int", low=0, high=255),),
              doc="Get and clear the standard event status register."),
    )
}  # fmt: skip


def _in_choices(field: Field, channel: int | str, value: int) -> bool:
    choices = field.choices
    if choices is None:
        return True
    if isinstance(choices, Mapping):
        return value in choices[int(channel)]
    return value in choices


def _field_value(param: Param, field: Field, channel: int | str, value: Any) -> Any:
    """The value of one field, checked against its type and range; raise ValueError naming both."""
    where = (
        f"Lake Shore 325 {param.name}.{field.name}"
        if len(param.fields) > 1
        else f"Lake Shore 325 {param.name}"
    )
    if field.kind == "input":
        if value not in ("A", "B"):
            raise ValueError(f"{where} must be input A or B, not {value!r}")
        return value
    if field.kind == "bool":
        if value not in (0, 1, True, False):
            raise ValueError(f"{where} must be on or off (True/False), not {value!r}")
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, not {value!r}")
    if field.kind == "int":
        if value != int(value):
            raise ValueError(f"{where} must be a whole number, not {value!r}")
        value = int(value)
    else:
        value = float(value)  # rounded to the resolution only after every check
    unit = f" {field.unit}" if field.unit else ""
    if (field.low is not None and value < field.low) or (field.high is not None and value > field.high):
        raise ValueError(f"{where} must be within {field.low:g}-{field.high:g}{unit}, not {value:g}")
    if field.kind == "int" and not _in_choices(field, channel, value):
        choices = field.choices
        allowed = choices[int(channel)] if isinstance(choices, Mapping) else choices
        raise ValueError(f"{where} must be one of {', '.join(map(str, allowed or ()))} here, not {value}")
    return value


def validate(param: Param, channel: int | str, value: Any) -> tuple[Any, ...]:
    """The values to send for `value` (a scalar for one field, a tuple for several), checked and rounded.

    Raises ValueError naming the parameter, the field and its range; nothing is clipped.
    """
    if param.command is None:
        raise ValueError(f"Lake Shore 325 {param.name} is read-only")
    values = tuple(value) if len(param.fields) > 1 else (value,)
    if len(values) != len(param.fields):
        names = ", ".join(f.name for f in param.fields)
        raise ValueError(
            f"Lake Shore 325 {param.name} takes {len(param.fields)} values ({names}), not {value!r}"
        )
    checked = tuple(_field_value(param, f, channel, v) for f, v in zip(param.fields, values, strict=True))
    complaint = param.check(checked) if param.check is not None else None
    if complaint:
        raise ValueError(f"Lake Shore 325 {param.name}: {complaint}")
    return tuple(
        round(v, f.decimals) if f.kind == "float" else v for f, v in zip(param.fields, checked, strict=True)
    )


def _format(field: Field, value: Any) -> str:
    if field.kind == "bool":
        return str(int(value))
    if field.kind == "float":
        return f"{value:.{field.decimals}f}"
    return str(value)


def command_text(param: Param, channel: int | str, values: tuple[Any, ...]) -> str:
    """The command line for checked `values`, e.g. 'SETP 1,77.000'."""
    args = ",".join([str(channel), *(_format(f, v) for f, v in zip(param.fields, values, strict=True))])
    return f"{param.command} {args}" if param.scope != "instrument" else f"{param.command} {args[2:]}"


def query_text(param: Param, channel: int | str | None) -> str:
    """The query line, e.g. 'KRDG? A'."""
    return param.query if param.scope == "instrument" else f"{param.query} {channel}"


def _parse_field(field: Field, channel: int | str, text: str) -> Any:
    text = text.strip()
    if field.kind == "input":
        if text not in ("A", "B"):
            raise ReplyShapeError(f"{field.name} should be A or B")
        return text
    if field.kind == "float":
        if not _NUMBER.match(text):
            raise ReplyShapeError(f"{field.name} should be a number")
        return float(text)
    if not _INTEGER.match(text):
        raise ReplyShapeError(f"{field.name} should be a whole number")
    value = int(text, 10)  # zero-padded: never base 0
    if field.kind == "bool":
        if value not in (0, 1):
            raise ReplyShapeError(f"{field.name} should be 0 or 1")
        return bool(value)
    if (field.low is not None and value < field.low) or (field.high is not None and value > field.high):
        raise ReplyShapeError(f"{field.name} should be within {field.low:g}-{field.high:g}")
    if not _in_choices(field, channel, value):
        raise ReplyShapeError(f"{field.name} should be one of its choices")
    return value


def parse_reply(param: Param, channel: int | str | None, reply: str) -> Any:
    """The value of a reply to `param`'s query (NamedTuple for several fields); ReplyShapeError if it does not fit."""
    parts = reply.split(",")
    if len(parts) != len(param.fields):
        raise ReplyShapeError(f"{len(param.fields)} comma-separated field(s) expected, {len(parts)} received")
    values = tuple(_parse_field(f, channel or 0, t) for f, t in zip(param.fields, parts, strict=True))
    if param.value_type is not None:
        return param.value_type(*values)
    return values[0]


def same(param: Param, sent: tuple[Any, ...], read: Any) -> bool:
    """Whether a read-back equals what was sent, floats within half a step of their resolution."""
    read_values = tuple(read) if len(param.fields) > 1 else (read,)
    for field, s, r in zip(param.fields, sent, read_values, strict=True):
        if field.kind == "float":
            if abs(float(s) - float(r)) > 0.5 * 10.0**-field.decimals + 1e-9:
                return False
        elif s != r:
            return False
    return True


def shown(param: Param, values: tuple[Any, ...] | Any) -> str:
    """Values as a person reads them: 'p=50.0, i=20.0, d=0.0' or '77.000'."""
    if len(param.fields) == 1:
        value = values[0] if isinstance(values, tuple) else values
        return _format(param.fields[0], value) + (f" {param.fields[0].unit}" if param.fields[0].unit else "")
    return ", ".join(f"{f.name}={_format(f, v)}" for f, v in zip(param.fields, values, strict=True))
