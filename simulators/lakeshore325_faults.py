"""Reply faults the simulated Lake Shore 325 injects on demand: late, split, garbage or no reply (issue 14).

`FaultInjector.inject(kind, match=..., ...)` arms a fault for the next replies to messages that
start with `match`; the simulator applies it. A late reply is sent `delay_s` after the query (the
server thread waits, so later messages are answered after it, in order, as on the half-duplex 325).
A split reply goes out in two chunks `delay_s` apart, which needs `FaultTcpServer` (a TcpServer whose
connection sends the chunks). The clamped setpoint is `LakeShoreOptions.setpoint_limit_k`.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Literal, Protocol

from simulators.line_servers import TcpServer

FaultKind = Literal["late", "split", "garbage", "silence"]
GARBAGE = "#~?%\x15&!"  # no reply of the 325 looks like this


@dataclass
class Fault:
    """One armed fault: `count` replies to messages starting with `match` ('' = any query)."""

    kind: FaultKind
    match: str = ""
    delay_s: float = 0.5  # late: reply this long after the query; split: pause between the two chunks
    split_at: int = 3  # split: characters in the first chunk
    count: int = 1


class FaultInjector:
    """The faults armed on a simulator; thread-safe. `applied` logs (kind, message) of each one used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        self._split: tuple[int, float] | None = None
        self.applied: list[tuple[str, str]] = []

    def inject(
        self, kind: FaultKind, match: str = "", delay_s: float = 0.5, split_at: int = 3, count: int = 1
    ) -> None:
        """Arm a fault for the next `count` replies to messages starting with `match`."""
        if kind not in ("late", "split", "garbage", "silence"):
            raise ValueError(
                f"unknown Lake Shore 325 simulator fault {kind!r}: late, split, garbage or silence"
            )
        if count < 1 or delay_s < 0 or split_at < 1:
            raise ValueError("a fault needs count >= 1, delay_s >= 0 and split_at >= 1")
        with self._lock:
            self._armed.append(Fault(kind, match.upper(), delay_s, split_at, count))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._split = None

    def take(self, message: str) -> Fault | None:
        """The fault for the reply to `message`, if one is armed for it (its count goes down by one)."""
        with self._lock:
            for fault in self._armed:
                if message.strip().upper().startswith(fault.match):
                    fault.count -= 1
                    if fault.count == 0:
                        self._armed.remove(fault)
                    self.applied.append((fault.kind, message))
                    if fault.kind == "split":
                        self._split = (fault.split_at, fault.delay_s)
                    return fault
            return None

    def take_split(self) -> tuple[int, float] | None:
        """Where to cut the reply being sent and how long to pause, once per split fault."""
        with self._lock:
            split, self._split = self._split, None
            return split


class _Splitting(Protocol):
    faults: FaultInjector


class _SplitConnection:
    """A server-side socket whose sendall cuts a reply in two when a split fault is pending."""

    def __init__(self, conn: socket.socket, handler: _Splitting, stop: threading.Event) -> None:
        self._conn, self._handler, self._stop = conn, handler, stop

    def settimeout(self, value: float | None) -> None:
        self._conn.settimeout(value)

    def recv(self, size: int) -> bytes:
        return self._conn.recv(size)

    def sendall(self, data: bytes) -> None:
        split = self._handler.faults.take_split()
        if split is None:
            self._conn.sendall(data)
            return
        at, pause_s = split
        self._conn.sendall(data[:at])
        self._stop.wait(pause_s)
        self._conn.sendall(data[at:])


class FaultTcpServer(TcpServer):
    """A TcpServer for the Lake Shore simulator that can also split replies on the wire."""

    def __init__(self, handler: _Splitting, port: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(handler, port, latency_s)  # type: ignore[arg-type]  # the simulator is a LineHandler too

    def _talk(self, conn: socket.socket) -> None:
        handler: _Splitting = self.handler  # type: ignore[assignment]
        super()._talk(_SplitConnection(conn, handler, self._stop))  # type: ignore[arg-type]
