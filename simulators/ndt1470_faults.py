"""The link faults the NDT1470 simulator injects on demand, and the plan that hands them out request by request.

Kinds (each seen on, or plausible for, real units; INSTRUMENTS.md 1.7 and issue 14):

- late: the reply leaves `delay_s` after the request (later than the driver's timeout); a SET is
  taken at once, so this is the late SET acknowledgement with the value taken.
- split: the reply leaves in two chunks with `delay_s` between them (needs a server from
  simulators/chunked_line_servers.py; a plain line server sends the line whole).
- garbage: line noise instead of the reply.
- silence: no reply at all.
- clamp: a SET of VSET above the channel's MAXV is acknowledged but VSET is stored clamped to
  MAXV, so reading it back differs.

`apply=False` makes a SET's fault also lose the request: the unit does not take the value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["late", "split", "garbage", "silence", "clamp"]
GARBAGE = "#BD:0?,CMD:O\x15~"  # a line the protocol never sends


@dataclass
class Fault:
    """One injected fault: which requests it hits (`on` SET, MON or any; `par` one parameter) and how often."""

    kind: FaultKind
    on: Literal["SET", "MON", "any"] = "any"
    par: str | None = None
    delay_s: float = 0.0
    apply: bool = True
    count: int = 1

    def hits(self, cmd: str | None, par: str | None) -> bool:
        """Whether this fault applies to a request with these CMD and PAR fields."""
        if self.on != "any" and cmd != self.on:
            return False
        return self.par is None or par == self.par


class FaultPlan:
    """Faults waiting for their requests, first injected first used. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Queue a fault; it hits the next `fault.count` requests it matches."""
        if fault.count < 1 or fault.delay_s < 0:
            raise ValueError(f"NDT1470 simulator fault needs count >= 1 and delay_s >= 0, not {fault}")
        with self._lock:
            self._faults.append(fault)

    def take(self, cmd: str | None, par: str | None) -> Fault | None:
        """The fault for this request (and one use of it spent), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.hits(cmd, par):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def pending(self) -> int:
        """How many fault uses are still waiting."""
        with self._lock:
            return sum(fault.count for fault in self._faults)

    def clear(self) -> None:
        """Drop every waiting fault."""
        with self._lock:
            self._faults.clear()
