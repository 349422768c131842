"""One NDT1470 channel as an object: its parameters as attributes declared from the parameter table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from drivers.ndt1470_params import CHANNEL_PARAMS, ChannelStatus

if TYPE_CHECKING:
    from drivers.ndt1470 import Ndt1470


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


class ChannelParameter:
    """A channel parameter as an attribute: reading it sends MON, assigning it a validated, read-back SET."""

    def __init__(self, name: str) -> None:
        param = CHANNEL_PARAMS[name]
        self.name = name
        verb = "Control" if param.settable else "Measure"
        limits = (
            f", {param.low:g}-{param.high:g} {param.unit}" if param.low is not None and param.high else ""
        )
        choices = f", one of {param.choices}" if param.choices else ""
        self.__doc__ = f"{verb} {param.doc or name} ({name}{limits}{choices})."

    @overload
    def __get__(self, obj: None, owner: type) -> ChannelParameter: ...
    @overload
    def __get__(self, obj: Ndt1470Channel, owner: type) -> Any: ...
    def __get__(self, obj: Ndt1470Channel | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.get(self.name)

    def __set__(self, obj: Ndt1470Channel, value: Any) -> None:
        obj.set(self.name, value)


class Ndt1470Channel:
    """Channel 0-3 of an NDT1470 (`hv.channel(0).vset_v = 1500`); voltages are magnitudes, POL gives the sign."""

    vset_v = ChannelParameter("VSET")
    vmon_v = ChannelParameter("VMON")
    iset_ua = ChannelParameter("ISET")
    imon_ua = ChannelParameter("IMON")
    maxv_v = ChannelParameter("MAXV")
    ramp_up_v_per_s = ChannelParameter("RUP")
    ramp_down_v_per_s = ChannelParameter("RDW")
    trip_s = ChannelParameter("TRIP")
    power_down = ChannelParameter("PDWN")
    imon_range = ChannelParameter("IMRANGE")
    polarity = ChannelParameter("POL")
    status = ChannelParameter("STAT")

    def __init__(self, hv: Ndt1470, index: int) -> None:
        self.hv, self.index = hv, index

    def get(self, name: str) -> Any:
        """Read a parameter of this channel (CHANNEL_PARAMS), in its unit."""
        return self.hv.get(self.index, name)

    def set(self, name: str, value: Any) -> None:
        """Write a parameter of this channel: range checked before sending, then read back."""
        self.hv.set(self.index, name, value)

    def set_voltage_v(self, voltage_v: float) -> None:
        """Set the signed target voltage (checked against the polarity switch and hv.max_voltage_v)."""
        self.hv.set_voltage_v(self.index, voltage_v)

    def on(self) -> None:
        """Switch the channel on (it ramps to VSET at RUP)."""
        self.hv.on(self.index)

    def off(self) -> None:
        """Switch the channel off (it ramps down at RDW, or drops at once with PDWN KILL)."""
        self.hv.off(self.index)

    def read(self) -> ChannelReading:
        """VSET, VMON, ISET, IMON, STAT and POL."""
        return self.hv.read_channel(self.index)
