"""One simulated NDT1470 channel: its state, the padded formats of its MON replies and the limits of its SETs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drivers.ndt1470 import ChannelStatus


@dataclass
class SimChannel:
    """State of one HV channel."""

    vset_v: float = 0.0
    iset_ua: float = 200.0
    maxv_v: float = 8000.0
    rup_v_per_s: float = 50.0
    rdw_v_per_s: float = 50.0
    trip_s: float = 10.0
    pdwn: str = "RAMP"
    imrange: str = "HIGH"
    polarity: str = "-"
    on: bool = False
    vmon_v: float = 0.0
    imon_ua: float = 0.0
    load_mohm: float = 15.0  # R11065 divider
    extra_current_ua: float = 0.0  # fault hook: drive the channel into over-current
    over_current_s: float = 0.0
    tripped: bool = False
    killed: bool = False
    disabled: bool = (
        False  # the front-panel switch is OFF: the channel stays off (DIS in REMOTE), ON is ignored
    )
    status: ChannelStatus = ChannelStatus(0)


def _switch_on(c: SimChannel, _: object) -> None:
    if c.disabled:  # acknowledged, but the front-panel switch wins [U: the manual does not say]
        return
    c.on = True
    c.tripped = False
    c.killed = False
    c.over_current_s = 0.0


def _imon(c: SimChannel) -> str:
    return f"{c.imon_ua:07.2f}" if c.imrange == "HIGH" else f"{c.imon_ua:08.3f}"


MON_FORMATS: dict[str, Callable[[SimChannel], str]] = {
    "VSET": lambda c: f"{c.vset_v:06.1f}",
    "VMIN": lambda c: "0000.0",
    "VMAX": lambda c: "8000.0",
    "VDEC": lambda c: "1",
    "VMON": lambda c: f"{c.vmon_v:06.1f}",
    "ISET": lambda c: f"{c.iset_ua:07.2f}",
    "IMIN": lambda c: "0000.00",
    "IMAX": lambda c: "3000.00",
    "ISDEC": lambda c: "2",
    "IMON": _imon,
    "IMRANGE": lambda c: c.imrange,
    "IMDEC": lambda c: "2" if c.imrange == "HIGH" else "3",
    "MAXV": lambda c: f"{c.maxv_v:04.0f}",
    "MVMIN": lambda c: "0000",
    "MVMAX": lambda c: "8100",
    "MVDEC": lambda c: "0",
    "RUP": lambda c: f"{c.rup_v_per_s:03.0f}",
    "RDW": lambda c: f"{c.rdw_v_per_s:03.0f}",
    "RUPMIN": lambda c: "001",
    "RUPMAX": lambda c: "500",
    "RUPDEC": lambda c: "0",
    "RDWMIN": lambda c: "001",
    "RDWMAX": lambda c: "500",
    "RDWDEC": lambda c: "0",
    "TRIP": lambda c: f"{c.trip_s:06.1f}",
    "TRIPMIN": lambda c: "0000.0",
    "TRIPMAX": lambda c: "1000.0",
    "TRIPDEC": lambda c: "1",
    "PDWN": lambda c: c.pdwn,
    "POL": lambda c: c.polarity,
    "STAT": lambda c: f"{int(c.status):05d}",
}


def _setter(attr: str) -> Callable[[SimChannel, object], None]:
    return lambda c, v: setattr(c, attr, v)


# PAR -> (needs VAL, min, max, apply)
SET_LIMITS: dict[str, tuple[bool, float, float, Callable[[SimChannel, object], None]]] = {
    "VSET": (True, 0.0, 8000.0, _setter("vset_v")),
    "ISET": (True, 0.0, 3000.0, _setter("iset_ua")),
    "MAXV": (True, 0.0, 8100.0, _setter("maxv_v")),
    "RUP": (True, 1.0, 500.0, _setter("rup_v_per_s")),
    "RDW": (True, 1.0, 500.0, _setter("rdw_v_per_s")),
    "TRIP": (True, 0.0, 1000.0, _setter("trip_s")),
    "PDWN": (True, 0.0, 0.0, _setter("pdwn")),
    "IMRANGE": (True, 0.0, 0.0, _setter("imrange")),
    "ON": (False, 0.0, 0.0, _switch_on),
    "OFF": (False, 0.0, 0.0, lambda c, _: setattr(c, "on", False)),
}
