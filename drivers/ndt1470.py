"""Driver of the CAEN NDT1470 HV supply: the N1470-family ASCII protocol over pyserial (device, pty or socket://).

Parameters are declared in one table (drivers/ndt1470_params.py) that the setters, the read-back
and the validation all use; ranges, choices, the configured voltage limit and the polarity are
checked before anything is sent. Every SET with a value is read back; a SET whose acknowledgement
is late, garbled or missing is confirmed by reading the value back before anything fails. The
exchange (drivers/ndt1470_link.py) never takes another command's reply as an answer. One lock
around each request/reply, and the thread that opened the port owns it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from drivers.ndt1470_channel import ChannelParameter, ChannelReading, Ndt1470Channel
from drivers.ndt1470_errors import (
    ERROR_REPLIES,
    Ndt1470ChannelError,
    Ndt1470CommandError,
    Ndt1470Error,
    Ndt1470LocalModeError,
    Ndt1470ParameterError,
    Ndt1470ProtocolError,
    Ndt1470RangeError,
    Ndt1470ReadbackError,
    Ndt1470SafetyError,
    Ndt1470TimeoutError,
    Ndt1470TripError,
    Ndt1470UnconfirmedError,
    Ndt1470ValueError,
)
from drivers.ndt1470_link import Expect, Ndt1470Link, Reply, error_in
from drivers.ndt1470_params import (
    ALL_CHANNELS,
    BOARD_PARAMS,
    CHANNEL_PARAMS,
    FAULT_BITS,
    N_CHANNELS,
    BoardAlarm,
    ChannelStatus,
    Param,
    readback_matches,
)

__all__ = [
    "ALL_CHANNELS",
    "BOARD_PARAMS",
    "CHANNEL_PARAMS",
    "FAULT_BITS",
    "N_CHANNELS",
    "BoardAlarm",
    "ChannelParameter",
    "ChannelReading",
    "ChannelStatus",
    "Ndt1470",
    "Ndt1470Channel",
    "Ndt1470ChannelError",
    "Ndt1470CommandError",
    "Ndt1470Error",
    "Ndt1470LocalModeError",
    "Ndt1470ParameterError",
    "Ndt1470ProtocolError",
    "Ndt1470RangeError",
    "Ndt1470ReadbackError",
    "Ndt1470SafetyError",
    "Ndt1470TimeoutError",
    "Ndt1470TripError",
    "Ndt1470UnconfirmedError",
    "Ndt1470ValueError",
    "Param",
]

log = logging.getLogger(__name__)


class Ndt1470:
    """A CAEN NDT1470 at `url` (device path, pty path, socket://host:port, spy://...).

    max_voltage_v: the largest |VSET| this program may ever send (the PMT's limit), checked
    before sending. timeout_s: how long a reply may take; silence raises Ndt1470TimeoutError.
    late_reply_s: how long after a missed reply it is still waited for before the next request
    (default timeout_s).
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
        late_reply_s: float | None = None,
    ) -> None:
        if not 0 <= board <= 31:
            raise ValueError(f"NDT1470 board address must be 0-31, not {board}")
        self.url = url
        self.board = board
        self.max_voltage_v = max_voltage_v
        self.timeout_s = timeout_s
        self._owner = threading.get_ident()
        try:
            port = open_port(
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
        self._link = Ndt1470Link(port, url, timeout_s, timeout_s if late_reply_s is None else late_reply_s)

    # ---- the wire ----

    def _check_owner(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                f"NDT1470 {self.url} is owned by the thread that opened it; send it requests instead"
            )

    def request(self, command: str) -> str | None:
        """Send `$BD:nn,<command>` and return the VAL of its own reply (None for a SET's bare CMD:OK).

        The reply must fit the command (its board; a value for MON, none for SET; for a known
        parameter the count and shape of the values). Raises the typed error of an ERR reply,
        Ndt1470TimeoutError on silence, Ndt1470ProtocolError on anything that is not this answer.
        """
        return self._exchange(command).text

    def _exchange(self, command: str) -> Reply:
        self._check_owner()
        return self._link.exchange(self.board, command, _expect(command))

    # ---- parameters ----

    def channel(self, index: int) -> Ndt1470Channel:
        """Channel 0-3 as an object with its parameters as attributes."""
        self._check_channel(index)
        return Ndt1470Channel(self, index)

    def get(self, channel: int, name: str) -> Any:
        """Read a channel parameter (CHANNEL_PARAMS) of channel 0-3, in its unit."""
        self._check_channel(channel)
        self._readable(name, CHANNEL_PARAMS)
        return self._exchange(f"CMD:MON,CH:{channel},PAR:{name}").values[0]

    def get_all(self, name: str) -> list[Any]:
        """Read a channel parameter of the four channels at once (CH:4)."""
        self._readable(name, CHANNEL_PARAMS)
        return list(self._exchange(f"CMD:MON,CH:{ALL_CHANNELS},PAR:{name}").values)

    def board_value(self, name: str) -> Any:
        """Read a board parameter (BOARD_PARAMS)."""
        self._readable(name, BOARD_PARAMS)
        return self._exchange(f"CMD:MON,PAR:{name}").values[0]

    def set(self, channel: int, name: str, value: Any = None) -> None:
        """Write a channel parameter (0-3, or 4 for all), formatted at its resolution, then read it back.

        Raises Ndt1470SafetyError (VSET above max_voltage_v) or Ndt1470RangeError (outside the
        table's range or choices, read-only) before sending; Ndt1470ReadbackError if the unit
        acknowledged but reads back another value; Ndt1470UnconfirmedError if the acknowledgement
        was lost and the read-back does not show the value.
        """
        self._check_channel(channel, allow_all=True)
        param = CHANNEL_PARAMS.get(name)
        if param is None:
            raise Ndt1470RangeError(f"NDT1470 has no channel parameter {name!r}: see CHANNEL_PARAMS")
        if name == "VSET":
            self._check_voltage(float(value))
        self._set(param, channel, value)

    def set_board(self, name: str, value: Any = None) -> None:
        """Write a board parameter (BDILKM, BDCLR) like set()."""
        param = BOARD_PARAMS.get(name)
        if param is None:
            raise Ndt1470RangeError(f"NDT1470 has no board parameter {name!r}: see BOARD_PARAMS")
        self._set(param, None, value)

    def _readable(self, name: str, table: dict[str, Param]) -> None:
        if name not in table or not table[name].reply:
            raise Ndt1470RangeError(
                f"NDT1470 parameter {name!r} cannot be read (MON): see the parameter table"
            )

    def _set(self, param: Param, channel: int | None, value: Any) -> None:
        where = "board" if channel is None else f"channel {channel}"
        try:
            sent = param.format(value)
        except (ValueError, TypeError) as exc:
            raise Ndt1470RangeError(f"NDT1470 ({self.url}) {where}: {exc}; refused before sending") from None
        command = "CMD:SET" + ("" if channel is None else f",CH:{channel}") + f",PAR:{param.name}"
        command += f",VAL:{sent}" if sent else ""
        try:
            self.request(command)
        except (Ndt1470TimeoutError, Ndt1470ProtocolError) as exc:
            if param.readback is None:
                raise
            self._confirm_unacknowledged(param, channel, sent, command, exc)
            return
        if param.readback is not None and param.fmt:  # a SET with a value is always read back
            read = self._read_back(param, channel)
            if not self._taken(param, sent, read):
                raise Ndt1470ReadbackError(
                    f"NDT1470 ({self.url}) {where}: {command} was acknowledged but {param.readback} reads back "
                    f"{_show(read)}: the unit clamped or ignored it (check MAXV and the front panel).",
                    command, channel, sent, read,
                )  # fmt: skip

    def _confirm_unacknowledged(
        self, param: Param, channel: int | None, sent: str, command: str, exc: Ndt1470Error
    ) -> None:
        """A SET without a usable acknowledgement: wait for a late one, then read the value back."""
        where = "board" if channel is None else f"channel {channel}"
        why = (
            f"no acknowledgement within {self.timeout_s:g} s"
            if isinstance(exc, Ndt1470TimeoutError)
            else f"no usable acknowledgement ({exc})"
        )
        for raw in self._link.catch_up():  # the late acknowledgement, or a late refusal
            kind = error_in(raw.decode("ascii", errors="replace").strip("\r\n "))
            if kind is not None:
                raise ERROR_REPLIES.get(kind, Ndt1470Error)(
                    f"NDT1470 ({self.url}) refused {command}: {kind}:ERR (a late reply).", command
                ) from exc
        try:
            read = self._read_back(param, channel)
        except Ndt1470Error as failed:
            raise Ndt1470UnconfirmedError(
                f"NDT1470 ({self.url}) {where}: {command} not confirmed: {why}; reading {param.readback} back "
                f"failed too ({failed}). Check the link, then read the channel before trusting it.",
                command, channel, sent, None,
            ) from failed  # fmt: skip
        if not self._taken(param, sent, read):
            raise Ndt1470UnconfirmedError(
                f"NDT1470 ({self.url}) {where}: {command} not confirmed: {why}; {param.readback} reads "
                f"{_show(read)}, so the unit did not take it. Send it again or check the unit.",
                command, channel, sent, read,
            ) from exc  # fmt: skip
        log.warning("NDT1470 (%s) %s: %s had %s, but %s reads %s: it took",
                    self.url, where, command, why, param.readback, _show(read))  # fmt: skip

    def _read_back(self, param: Param, channel: int | None) -> Any:
        name = param.readback or param.name
        if channel is None:
            return self.board_value(name)
        return self.get_all(name) if channel == ALL_CHANNELS else self.get(channel, name)

    @staticmethod
    def _taken(param: Param, sent: str, read: Any) -> bool:
        values = read if isinstance(read, list) else [read]
        return all(readback_matches(param, sent, value) for value in values)

    def _check_channel(self, channel: int, allow_all: bool = False) -> None:
        if not (0 <= channel < N_CHANNELS or (allow_all and channel == ALL_CHANNELS)):
            raise Ndt1470RangeError(f"NDT1470 channel must be 0-{N_CHANNELS - 1}, not {channel}")

    def _check_voltage(self, voltage_v: float) -> None:
        if not 0.0 <= voltage_v <= self.max_voltage_v:
            raise Ndt1470SafetyError(
                f"NDT1470 ({self.url}): VSET {voltage_v:g} V refused before sending: the configured limit is "
                f"0-{self.max_voltage_v:g} V (hv.max_voltage_v). VSET is a magnitude; the sign is the channel's POL."
            )

    # ---- typed helpers ----

    def set_voltage_v(self, channel: int, voltage_v: float) -> None:
        """Set a signed target voltage: |V| as VSET after checking the channel's polarity switch."""
        self._check_channel(channel)
        self._check_voltage(abs(voltage_v))
        polarity = self.get(channel, "POL")
        if voltage_v != 0 and (polarity == "-") != (voltage_v < 0):
            raise Ndt1470SafetyError(
                f"NDT1470 ({self.url}) channel {channel}: asked for {voltage_v:+g} V but its polarity switch is "
                f"'{polarity}'. Check the configuration's sign or the channel."
            )
        self.set(channel, "VSET", abs(voltage_v))

    def on(self, channel: int) -> None:
        """Switch a channel on (it ramps to VSET at RUP); a lost acknowledgement is checked in STAT."""
        self.set(channel, "ON")

    def off(self, channel: int) -> None:
        """Switch a channel off (ramps down at RDW, or drops with PDWN KILL); a lost acknowledgement is checked in STAT."""
        self.set(channel, "OFF")

    def clear_alarm(self) -> None:
        """Clear the board alarm and the TRIP flags (BDCLR)."""
        self.set_board("BDCLR")

    def set_interlock_mode(self, mode: str) -> None:
        """Set the interlock mode, OPEN or CLOSED."""
        self.set_board("BDILKM", mode)

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
        self._link.port.close()

    def __enter__(self) -> Ndt1470:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _expect(command: str) -> Expect:
    """What answer `command` must get, from its CMD, CH and PAR fields and the parameter table."""
    fields = dict(item.partition(":")[::2] for item in command.split(","))
    if fields.get("CMD") != "MON":
        return Expect(values=False)
    table = CHANNEL_PARAMS if "CH" in fields else BOARD_PARAMS
    count = N_CHANNELS if fields.get("CH") == str(ALL_CHANNELS) else 1
    return Expect(values=True, param=table.get(fields.get("PAR", "")), count=count)


def _show(read: Any) -> str:
    values = read if isinstance(read, list) else [read]
    return ";".join(str(v.value) if isinstance(v, ChannelStatus) else str(v) for v in values)
