"""Wire-level simulator of the CAEN NDT1470: its ASCII protocol and the behaviour of its four HV channels.

`Ndt1470Simulator.handle(line)` answers one request line as the unit would (or returns None:
silence). Ramps at RUP/RDW, IMON from a resistive load, over-current then trip after TRIP
seconds, KILL/RAMP power-down, interlock, LOCAL mode and the status bits of INSTRUMENTS.md 1.8.
Time comes from an injectable clock with a time scale. Link faults (late, split, garbage,
silence, clamped VSET) are injected on demand with inject() (simulators/ndt1470_faults.py).
Serve it with simulators.line_servers (or simulators.chunked_line_servers for split replies).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from drivers.ndt1470 import BoardAlarm, ChannelStatus
from simulators.ndt1470_channel import MON_FORMATS, SET_LIMITS, SimChannel
from simulators.ndt1470_faults import GARBAGE, Fault, FaultKind, FaultPlan
from simulators.slow_replay import SeriesPlayback

_REQUEST = re.compile(r"^\$BD:(\d{1,2}),(.*)$")
STEP_S = 0.05  # simulated seconds per integration step (20 Hz)


@dataclass
class Ndt1470Options:
    """Behaviour switches of the simulated unit."""

    board: int = 0
    name: str = "NDT1470"
    serial: str = "00123"
    firmware: str = "02.4"
    ovv_tolerance_v: float = 2.5
    set_ack_lf_cr: bool = False  # one firmware ends SET acks with LF CR
    clip_vset_above_maxv: bool = False  # else VSET above MAXV is refused with VAL:ERR
    latency_s: float = 0.0
    noise_ua: float = 0.02
    seed: int = 1


@dataclass
class _Board:
    local: bool = False
    interlock: bool = False
    interlock_mode: str = "CLOSED"
    alarm: BoardAlarm = BoardAlarm(0)
    channels: list[SimChannel] = field(default_factory=lambda: [SimChannel() for _ in range(4)])


class Ndt1470Simulator:
    """The simulated unit. Thread-safe: handle() may be called from a server thread."""

    def __init__(
        self,
        options: Ndt1470Options | None = None,
        clock: Callable[[], float] = time.monotonic,
        time_scale: float = 1.0,
        playback: SeriesPlayback | None = None,
    ) -> None:
        self.options = options or Ndt1470Options()
        self.playback = (
            playback  # replay: that channel's VSET, VMON, IMON and STAT follow a recorded /slow/hv
        )
        self._clock = clock
        self.time_scale = time_scale
        self._sim_t = 0.0
        self._last_wall = clock()
        self._lock = threading.Lock()
        self._rng = random.Random(self.options.seed)
        self.board = _Board()
        self.drop_replies = 0  # fault hooks: silently drop, or garble, the next N replies
        self.garble_replies = 0
        self.faults = FaultPlan()
        self._split_s: float | None = None  # the pause inside the reply being sent (a split fault)
        self._clamp = False  # a clamp fault on the request being answered
        self._delay = threading.Event()  # never set: its wait() is the late-reply delay

    @property
    def channels(self) -> list[SimChannel]:
        return self.board.channels

    # ---- time ----

    def advance(self) -> None:
        """Integrate the channels up to now (injectable clock x time scale)."""
        now = self._clock()
        dt_total = (now - self._last_wall) * self.time_scale
        self._last_wall = now
        while dt_total > 1e-12:
            dt = min(STEP_S, dt_total)
            dt_total -= dt
            self._sim_t += dt
            for i, ch in enumerate(self.channels):
                self._step(i, ch, dt)
        self._step_all_now()  # status bits reflect changes made since the last step

    def _step(self, index: int, ch: SimChannel, dt: float) -> None:
        row = self.playback.now() if self.playback is not None and index == self.playback.channel else None
        if row is not None:
            ch.vset_v, ch.vmon_v = abs(float(row["vset_v"])), abs(float(row["vmon_v"]))
            ch.imon_ua, ch.status = float(row["imon_ua"]), ChannelStatus(int(row["status"]))
            ch.on = bool(ch.status & ChannelStatus.ON)
            return
        b = self.board
        if b.interlock or ch.disabled:
            ch.on = False
        target = min(ch.vset_v, ch.maxv_v) if ch.on else 0.0
        status = ChannelStatus(0)
        if ch.vmon_v < target:
            ch.vmon_v = min(target, ch.vmon_v + ch.rup_v_per_s * dt)
            status |= ChannelStatus.RUP if ch.vmon_v < target else 0
        elif ch.vmon_v > target:
            ch.vmon_v = max(target, ch.vmon_v - ch.rdw_v_per_s * dt)
            status |= ChannelStatus.RDW if ch.vmon_v > target else 0
        ch.imon_ua = (
            ch.vmon_v / ch.load_mohm + ch.extra_current_ua + self._rng.gauss(0.0, self.options.noise_ua)
        )
        ch.imon_ua = max(0.0, ch.imon_ua)
        if ch.on and ch.imon_ua >= ch.iset_ua:
            status |= ChannelStatus.OVC
            ch.over_current_s += dt
            if ch.over_current_s > ch.trip_s:
                ch.on = False
                ch.tripped = True
                b.alarm |= BoardAlarm(1 << index)
                if ch.pdwn == "KILL":
                    ch.vmon_v = 0.0
        else:
            ch.over_current_s = 0.0
        if ch.on:
            status |= ChannelStatus.ON
            if ch.vset_v > ch.maxv_v:
                status |= ChannelStatus.MAXV
            if not status & (ChannelStatus.RUP | ChannelStatus.RDW):
                if ch.vmon_v > target + self.options.ovv_tolerance_v:
                    status |= ChannelStatus.OVV
                elif ch.vmon_v < target - self.options.ovv_tolerance_v:
                    status |= ChannelStatus.UNV
        if ch.tripped:
            status |= ChannelStatus.TRIP
        if ch.killed:
            status |= ChannelStatus.KILL
        if b.interlock:
            status |= ChannelStatus.ILK
        if ch.disabled and not b.local:
            status |= ChannelStatus.DIS
        ch.status = status

    # ---- fault and front-panel hooks ----

    def set_local(self, local: bool) -> None:
        """Front panel LOCAL (every SET refused with LOC:ERR) or REMOTE."""
        with self._lock:
            self.board.local = local

    def set_interlock(self, active: bool) -> None:
        """Open (active) or close the front-panel interlock: when active every channel goes off."""
        with self._lock:
            self.advance()
            self.board.interlock = active

    def kill(self, channel: int) -> None:
        """The front-panel kill of one channel: off at once, KILL set."""
        with self._lock:
            self.advance()
            ch = self.channels[channel]
            ch.on, ch.killed, ch.vmon_v = False, True, 0.0

    def set_disabled(self, channel: int, disabled: bool) -> None:
        """The channel's front-panel switch OFF (disabled: the channel goes off, DIS in REMOTE) or back ON."""
        with self._lock:
            self.advance()
            self.channels[channel].disabled = disabled

    def inject_current_ua(self, channel: int, extra_ua: float) -> None:
        """Add load current to a channel (provokes OVC and, after TRIP seconds, a trip)."""
        with self._lock:
            self.advance()
            self.channels[channel].extra_current_ua = extra_ua

    # ---- the protocol ----

    def inject(
        self,
        kind: FaultKind,
        on: Literal["SET", "MON", "any"] = "any",
        par: str | None = None,
        delay_s: float = 0.0,
        apply: bool = True,
        count: int = 1,
    ) -> None:
        """Make the next `count` requests that match (`on` SET, MON or any; `par`) suffer a fault.

        kind: late (reply `delay_s` after the request), split (a `delay_s` pause inside the reply),
        garbage, silence, clamp (VSET above MAXV stored as MAXV). apply=False: a SET is also lost.
        """
        self.faults.add(Fault(kind, on, par, delay_s, apply, count))

    def handle(self, line: str) -> str | None:
        """Answer one request line (without its terminator); None means no reply at all."""
        fields = dict(item.partition(":")[::2] for item in line.strip().split(","))
        fault = self.faults.take(fields.get("CMD"), fields.get("PAR"))
        with self._lock:
            self.advance()
            lost = fault is not None and not fault.apply and fields.get("CMD") == "SET"
            self._clamp = fault is not None and fault.kind == "clamp"
            reply = self._answer(line.strip()) if not lost else self._ack_only(line.strip())
            self._clamp = False
            if reply is None:
                return None
            if self.drop_replies:
                self.drop_replies -= 1
                return None
            if self.garble_replies:
                self.garble_replies -= 1
                return "#BD:0?,CMD:O"
        if fault is None or fault.kind == "clamp":
            return reply
        if fault.kind == "silence":
            return None
        if fault.kind == "garbage":
            return GARBAGE
        if fault.kind == "split":
            self._split_s = fault.delay_s
        else:  # late
            self._delay.wait(fault.delay_s)
        return reply

    def take_split(self) -> float | None:
        """The pause to leave inside the reply just answered (a split fault), or None; the server asks once."""
        split, self._split_s = self._split_s, None
        return split

    def _ack_only(self, line: str) -> str | None:
        """The acknowledgement of a SET the unit then loses (an apply=False fault)."""
        m = _REQUEST.match(line)
        if m is None or int(m.group(1), 10) != self.options.board:
            return None
        return f"#BD:{self.options.board:02d},CMD:OK"

    def terminator(self, reply: str) -> bytes:
        """The line end the unit puts after `reply` (LF CR on SET acks with that firmware option)."""
        if self.options.set_ack_lf_cr and reply.endswith("CMD:OK"):
            return b"\n\r"
        return b"\r\n"

    def _answer(self, line: str) -> str | None:
        m = _REQUEST.match(line)
        if m is None:
            return None  # not addressed to any board: nobody answers
        bd = int(m.group(1), 10)
        if bd != self.options.board:
            return None  # another board's address: silence
        head = f"#BD:{bd:02d}"
        fields: dict[str, str] = {}
        for item in m.group(2).split(","):
            key, sep, value = item.partition(":")
            if not sep or key in fields:
                return f"{head},CMD:ERR"
            fields[key.strip()] = value.strip()
        cmd = fields.get("CMD")
        if cmd not in ("MON", "SET") or set(fields) - {"CMD", "CH", "PAR", "VAL"}:
            return f"{head},CMD:ERR"
        channel = None
        if "CH" in fields:
            if not fields["CH"].isdigit() or int(fields["CH"], 10) > 4:
                return f"{head},CH:ERR"
            channel = int(fields["CH"], 10)
        par = fields.get("PAR")
        if par is None:
            return f"{head},PAR:ERR"
        if channel is None:
            return self._board_command(head, cmd, par, fields.get("VAL"))
        return self._channel_command(head, cmd, channel, par, fields.get("VAL"))

    def _board_command(self, head: str, cmd: str, par: str, val: str | None) -> str:
        b, o = self.board, self.options
        if cmd == "MON":
            values = {
                "BDNAME": o.name,
                "BDNCH": "4",
                "BDFREL": o.firmware,
                "BDSNUM": o.serial,
                "BDILK": "YES" if b.interlock else "NO",
                "BDILKM": b.interlock_mode,
                "BDCTR": "LOCAL" if b.local else "REMOTE",
                "BDTERM": "OFF",
                "BDALARM": f"{int(b.alarm):05d}",
            }
            return f"{head},CMD:OK,VAL:{values[par]}" if par in values else f"{head},PAR:ERR"
        if par not in ("BDILKM", "BDCLR"):
            return f"{head},PAR:ERR"
        if par == "BDILKM" and val not in ("OPEN", "CLOSED"):
            return f"{head},VAL:ERR"
        if b.local:
            return f"{head},LOC:ERR"
        if par == "BDILKM":
            b.interlock_mode = val or b.interlock_mode
        else:
            b.alarm = BoardAlarm(0)
            for ch in self.channels:
                ch.tripped = False
        return f"{head},CMD:OK"

    def _channel_command(self, head: str, cmd: str, channel: int, par: str, val: str | None) -> str:
        chans = self.channels if channel == 4 else [self.channels[channel]]
        if cmd == "MON":
            getter = MON_FORMATS.get(par)
            if getter is None:
                return f"{head},PAR:ERR"
            return f"{head},CMD:OK,VAL:" + ";".join(getter(c) for c in chans)
        setter = SET_LIMITS.get(par)
        if setter is None:
            return f"{head},PAR:ERR"
        needs_value, lo, hi, apply = setter
        number = 0.0
        if needs_value:
            if val is None:
                return f"{head},VAL:ERR"
            if par in ("PDWN", "IMRANGE"):
                if val not in (("RAMP", "KILL") if par == "PDWN" else ("HIGH", "LOW")):
                    return f"{head},VAL:ERR"
            else:
                try:
                    number = float(val)
                except ValueError:
                    return f"{head},VAL:ERR"
                if not lo <= number <= hi:
                    return f"{head},VAL:ERR"
                if par == "VSET" and not (self.options.clip_vset_above_maxv or self._clamp):
                    if any(number > c.maxv_v for c in chans):
                        return f"{head},VAL:ERR"
        if self.board.local:
            return f"{head},LOC:ERR"
        for c in chans:
            value = min(number, c.maxv_v) if par == "VSET" and self._clamp else number
            apply(c, val if par in ("PDWN", "IMRANGE") else value)
        if par == "ON":  # an ON that switches a channel on clears its trip and its board alarm bit
            for index in range(4) if channel == 4 else [channel]:
                if self.channels[index].on:
                    self.board.alarm &= ~BoardAlarm(1 << index)
        self._step_all_now()
        return f"{head},CMD:OK"

    def _step_all_now(self) -> None:
        for i, ch in enumerate(self.channels):
            self._step(i, ch, 0.0)
