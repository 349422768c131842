"""Wire-level simulator of the Lake Shore 325 with the cryostat's thermal model behind it (INSTRUMENTS.md 2).

`LakeShore325Simulator.handle(line)` answers one message as the 325 does: commands never reply,
only a final query does; `;` chains up to 64 characters; unknown mnemonics (CME) and bad
parameters (EXE) get no reply and set *ESR bits. Loop 1 runs the 325's PID law with a setpoint
ramp and heats the copper plate (input A); input B reads the crystal. Time comes from an
injectable clock with a time scale, so a cooldown plays in seconds. Serve it with line_servers
(or lakeshore325_faults.FaultTcpServer); `faults` injects late, split, garbage or missing replies.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulators.cryostat_thermal import CryostatModel, Table, ThermalSettings
from simulators.lakeshore325_faults import GARBAGE, FaultInjector
from simulators.slow_replay import SeriesPlayback

PON, CME, EXE, QYE, OPC = 128, 32, 16, 4, 1
MAX_MESSAGE = 64
CONTROL_STEP_S = 0.5  # the loop's update period (simulated seconds)
# DT-670 standard curve: (K, V) (INSTRUMENTS.md 2.8)
_DT670_K = np.array([1.4, 4.2, 6.0, 7.5, 18.0, 20.0, 30.0, 40.0, 46.0, 125.0, 200.0, 273.15, 300.0])
_DT670_V = np.array(
    [1.644290, 1.578480, 1.515410, 1.460860, 1.228300, 1.197748, 1.106244, 1.089024, 1.079492, 0.939242,
     0.783720, 0.621141, 0.559639]
)  # fmt: skip


_DT670 = Table(_DT670_K, _DT670_V)


def dt670_volts(temperature_k: float) -> float:
    """Diode voltage of a DT-670 at `temperature_k` (linear between the curve's points, as INSTRUMENTS.md 2.8)."""
    return _DT670(temperature_k)


@dataclass
class Loop:
    """One control loop of the 325."""

    setpoint_k: float = 293.0  # present (ramping) setpoint
    target_k: float = 293.0  # the SETP value
    ramp_on: bool = False
    ramp_k_per_min: float = 0.0
    range: int = 0
    heater_ohm: int = 1  # HTRRES 1 = 25 ohm, 2 = 50 ohm
    manual_pct: float = 0.0
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    cset_input: str = "A"
    cset_units: int = 1
    cset_powerup: int = 0
    cset_display: int = 2  # 1 current, 2 power
    mode: int = 1  # 1 manual PID, 3 open loop, ...
    integral: float = 0.0
    last_error: float | None = None
    output_pct: float = 0.0


@dataclass
class LakeShoreOptions:
    """Identity and behaviour switches."""

    serial: str = "325A1234"
    firmware: str = "1.5/1.1"
    noise_k: float = 0.002
    seed: int = 1
    thermal: ThermalSettings = field(default_factory=ThermalSettings)
    start_k: float = 293.0
    # fault: a SETP above this is clamped to it without an error flag (so its read-back differs)
    setpoint_limit_k: float | None = None


class LakeShore325Simulator:
    """The simulated controller and cryostat; thread-safe."""

    def __init__(
        self,
        options: LakeShoreOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        time_scale: float = 1.0,
        playback: SeriesPlayback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """sleep: how a late reply waits (real time: it must outlast the client's timeout)."""
        self.options = options or LakeShoreOptions()
        self.playback = playback  # replay: readings, setpoint and heater follow a recorded /slow/temperature
        self._clock = clock
        self.time_scale = time_scale
        self._last_wall = clock()
        self._lock = threading.Lock()
        self._rng = random.Random(self.options.seed)
        self.model = CryostatModel(self.options.thermal, self.options.start_k)
        self.loops = {1: Loop(), 2: Loop(cset_input="B")}
        self.input_type = {"A": (0, 0), "B": (0, 0)}
        self.input_curve = {"A": 6, "B": 6}
        self.esr = PON
        self.ese = 0
        self.sre = 0
        self.open_sensor: set[str] = set()  # fault hook: these inputs read as open circuits
        self.messages = 0
        self.too_fast = 0  # messages closer than 50 ms (the manual's 20 per second)
        self._last_message_wall: float | None = None
        self.faults = FaultInjector()  # late, split, garbage or missing replies on demand
        self._sleep = sleep

    # ---- time and control ----

    def advance(self) -> None:
        """Bring the controller and the cryostat up to the clock's present time."""
        with self._lock:
            self._advance()

    def _advance(self) -> None:
        if self.playback is not None:
            self._play()
            return
        now = self._clock()
        left = (now - self._last_wall) * self.time_scale
        self._last_wall = now
        while left > 1e-9:
            h = min(left, CONTROL_STEP_S)
            left -= h
            loop = self.loops[1]
            self._walk_setpoint(loop, h)
            self._control(loop, h)
            self.model.step(h, self.heater_w(1))

    def _play(self) -> None:
        row = self.playback.now() if self.playback is not None else None
        if row is None:
            return
        loop = self.loops[1]
        self.model.plate_k, self.model.crystal_k = float(row["stage_k"]), float(row["crystal_k"])
        loop.target_k = float(row["setpoint_k"])
        loop.setpoint_k = loop.target_k + (1e-3 if row["ramping"] else 0.0)  # RAMPST? reads the difference
        loop.ramp_on = bool(row["ramping"])
        loop.output_pct = float(row["heater_pct"])
        loop.range = int(row["heater_range"])

    def _walk_setpoint(self, loop: Loop, h: float) -> None:
        if not loop.ramp_on or loop.ramp_k_per_min <= 0:
            loop.setpoint_k = loop.target_k
            return
        step = loop.ramp_k_per_min / 60.0 * h
        delta = loop.target_k - loop.setpoint_k
        loop.setpoint_k = (
            loop.target_k if abs(delta) <= step else loop.setpoint_k + math.copysign(step, delta)
        )

    def _control(self, loop: Loop, h: float) -> None:
        if loop.range == 0:
            loop.output_pct = 0.0
            return
        if loop.mode == 3:  # open loop
            loop.output_pct = min(max(float(loop.manual_pct), 0.0), 100.0)
            return
        error = loop.setpoint_k - self._true_k(loop.cset_input)
        tau_i_s = 1000.0 / loop.i if loop.i > 0 else float("inf")
        tau_d_s = loop.d / 100.0 * tau_i_s / 4.0 if math.isfinite(tau_i_s) else 0.0
        if loop.i > 0:
            loop.integral += error * h
            limit = 100.0 / (loop.p * loop.i / 1000.0)  # the integral term alone stays within 0-100 %
            loop.integral = min(max(loop.integral, 0.0), limit)
        derivative = 0.0 if loop.last_error is None or h <= 0 else (error - loop.last_error) / h
        loop.last_error = error
        out = loop.p * (error + loop.i / 1000.0 * loop.integral + tau_d_s * derivative) + loop.manual_pct
        loop.output_pct = min(max(out, 0.0), 100.0)

    def heater_w(self, loop_number: int) -> float:
        """Heater power of a loop now (W)."""
        loop = self.loops[loop_number]
        full_scale = {1: {0: 0.0, 1: 2.5, 2: 25.0}, 2: {0: 0.0, 1: 1.0}}[loop_number].get(loop.range, 0.0)
        fraction = loop.output_pct / 100.0
        return full_scale * (fraction if loop.cset_display == 2 else fraction**2)

    def _true_k(self, inp: str) -> float:
        return self.model.plate_k if inp == "A" else self.model.crystal_k

    def reading_k(self, inp: str) -> float:
        if self.playback is not None:
            return self._true_k(inp)  # the recorded reading as it was
        return self._true_k(inp) + self._rng.gauss(0.0, self.options.noise_k)

    # ---- fault hooks ----

    def set_open_sensor(self, inp: str, is_open: bool) -> None:
        with self._lock:
            (self.open_sensor.add if is_open else self.open_sensor.discard)(inp)

    def set_cooler(self, on: bool) -> None:
        """Switch the cryocooler (a warm-up when off)."""
        with self._lock:
            self._advance()
            self.model.cooler_on = on

    # ---- the protocol ----

    def terminator(self, reply: str) -> bytes:
        return b"\r\n"

    def handle(self, line: str) -> str | None:
        """Answer one message as the 325 does, then apply an armed fault to the reply (if any)."""
        reply = self._answer(line)
        if reply is None:
            return None
        fault = self.faults.take(line)
        if fault is None or fault.kind == "split":  # a split is cut on the wire by FaultTcpServer
            return reply
        if fault.kind == "silence":
            return None
        if fault.kind == "garbage":
            return GARBAGE
        self._sleep(fault.delay_s)  # late: outside the lock, the model stays readable meanwhile
        return reply

    def _answer(self, line: str) -> str | None:
        with self._lock:
            wall = time.monotonic()
            # 45 ms: the driver spaces its sends by 50 ms; arrivals jitter by a few ms on a loaded machine
            if self._last_message_wall is not None and wall - self._last_message_wall < 0.045:
                self.too_fast += 1
            self._last_message_wall = wall
            self.messages += 1
            self._advance()
            message = line.strip()
            if len(message) > MAX_MESSAGE:
                self.esr |= CME
                return None
            parts = [p.strip() for p in message.split(";") if p.strip()]
            reply = None
            for k, part in enumerate(parts):
                head, _, args = part.partition(" ")
                head = head.upper()
                params = [a.strip() for a in args.split(",")] if args.strip() else []
                if head.endswith("?") and k != len(parts) - 1:
                    self.esr |= CME  # a query must come last
                    return None
                try:
                    reply = self._execute(head, params)
                except KeyError:
                    self.esr |= CME
                    return None
                except (ValueError, IndexError):
                    self.esr |= EXE
                    return None
            return reply

    def _loop(self, params: list[str]) -> Loop:
        n = int(params[0])
        if n not in self.loops:
            raise ValueError(n)
        return self.loops[n]

    def _input(self, params: list[str]) -> str:
        inp = params[0].upper()
        if inp not in ("A", "B"):
            raise ValueError(inp)
        return inp

    def _execute(self, head: str, p: list[str]) -> str | None:  # noqa: C901 - one branch per mnemonic
        if head == "*IDN?":
            return f"LSCI,MODEL325,{self.options.serial},{self.options.firmware}"
        if head == "*ESR?":
            value, self.esr = self.esr, 0
            return f"{value:03d}"
        if head in ("*CLS", "*RST", "*WAI", "*OPC"):
            if head == "*CLS":
                self.esr = 0
            if head == "*OPC":
                self.esr |= OPC
            if head == "*RST":
                self.loops = {1: Loop(setpoint_k=self.loops[1].setpoint_k), 2: Loop(cset_input="B")}
            return None
        if head in ("*ESE", "*SRE"):
            setattr(self, head[1:].lower(), int(p[0]))
            return None
        if head in ("*ESE?", "*SRE?"):
            return f"{getattr(self, head[1:4].lower()):03d}"
        if head in ("*STB?", "*TST?"):
            return "000"
        if head == "*OPC?":
            return "1"
        if head in ("KRDG?", "CRDG?", "SRDG?", "RDGST?"):
            inp = self._input(p)
            if inp in self.open_sensor:
                return "129" if head == "RDGST?" else "+000.000"
            t = self.reading_k(inp)
            if head == "KRDG?":
                return f"{t:+08.3f}"
            if head == "CRDG?":
                return f"{t - 273.15:+08.3f}"
            if head == "SRDG?":
                return f"{dt670_volts(t):+08.5f}"
            return "000" if 1.4 <= t <= 500 else ("016" if t < 1.4 else "032")
        if head == "SETP":
            loop = self._loop(p)
            value = float(p[1])
            if not 0 <= value <= 500:
                raise ValueError(value)
            limit = self.options.setpoint_limit_k
            if limit is not None and value > limit:
                value = limit  # the clamp fault: accepted without EXE
            if not loop.ramp_on:
                loop.setpoint_k = value
            loop.target_k = value
            return None
        if head == "SETP?":
            return f"{self._loop(p).target_k:+08.3f}"
        if head == "RANGE":
            loop, r = self._loop(p), int(p[1])
            if r not in ((0, 1, 2) if loop is self.loops[1] else (0, 1)):
                raise ValueError(r)
            loop.range = r
            if r == 0:
                loop.integral = 0.0
            return None
        if head == "RANGE?":
            return str(self._loop(p).range)
        if head == "HTR?":
            return f"{self._loop(p).output_pct:05.1f}"
        if head == "HTRRES":
            loop, r = self._loop(p), int(p[1])
            if r not in (1, 2):
                raise ValueError(r)
            loop.heater_ohm = r
            return None
        if head == "HTRRES?":
            return str(self._loop(p).heater_ohm)
        if head == "MOUT":
            loop, v = self._loop(p), float(p[1])
            if not 0 <= v <= 100:
                raise ValueError(v)
            loop.manual_pct = v
            return None
        if head == "MOUT?":
            return f"{self._loop(p).manual_pct:+08.3f}"
        if head == "PID":
            loop = self._loop(p)
            pp, ii, dd = float(p[1]), float(p[2]), float(p[3])
            if not (0.1 <= pp <= 1000 and 0.1 <= ii <= 1000 and 0 <= dd <= 200):
                raise ValueError(p)
            loop.p, loop.i, loop.d = pp, ii, dd
            return None
        if head == "PID?":
            loop = self._loop(p)
            return f"{loop.p:+07.1f},{loop.i:+07.1f},{loop.d:+07.1f}"
        if head == "RAMP":
            loop, on, rate = self._loop(p), int(p[1]), float(p[2])
            if on not in (0, 1) or not 0 <= rate <= 100:
                raise ValueError(p)
            loop.ramp_on, loop.ramp_k_per_min = bool(on), rate
            return None
        if head == "RAMP?":
            loop = self._loop(p)
            return f"{int(loop.ramp_on)},{loop.ramp_k_per_min:+06.1f}"
        if head == "RAMPST?":
            loop = self._loop(p)
            return "1" if loop.ramp_on and abs(loop.setpoint_k - loop.target_k) > 1e-9 else "0"
        if head == "CSET":
            loop = self._loop(p)
            inp, units, powerup, display = p[1].upper(), int(p[2]), int(p[3]), int(p[4])
            if (
                inp not in ("A", "B")
                or units not in (1, 2, 3)
                or powerup not in (0, 1)
                or display not in (1, 2)
            ):
                raise ValueError(p)
            loop.cset_input, loop.cset_units, loop.cset_powerup, loop.cset_display = (
                inp,
                units,
                powerup,
                display,
            )
            return None
        if head == "CSET?":
            loop = self._loop(p)
            return f"{loop.cset_input},{loop.cset_units},{loop.cset_powerup},{loop.cset_display}"
        if head == "CMODE":
            loop, m = self._loop(p), int(p[1])
            if not 1 <= m <= 6:
                raise ValueError(m)
            loop.mode = m
            return None
        if head == "CMODE?":
            return str(self._loop(p).mode)
        if head == "INTYPE":
            inp, kind, comp = self._input(p), int(p[1]), int(p[2])
            if not 0 <= kind <= 9 or comp not in (0, 1):
                raise ValueError(p)
            self.input_type[inp] = (kind, comp)
            return None
        if head == "INTYPE?":
            kind, comp = self.input_type[self._input(p)]
            return f"{kind},{comp}"
        if head == "INCRV":
            inp, curve = self._input(p), int(p[1])
            if not 0 <= curve <= 35:
                raise ValueError(curve)
            self.input_curve[inp] = curve
            return None
        if head == "INCRV?":
            return f"{self.input_curve[self._input(p)]:02d}"
        if head == "TUNEST?":
            return "0"
        raise KeyError(head)
