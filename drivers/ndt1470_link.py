"""The NDT1470's request/reply exchange: one line out, its own reply back, never another command's.

The protocol carries no sequence number, and a reply names neither the channel nor the
parameter, so a reply that comes after the timeout would otherwise answer the next request.
The link therefore drains the input before each request, remembers the requests whose replies
are still owed (timed out or cut short), waits for those up to `late_reply_s` after the fault
before it sends again, and checks every reply against what was asked: the board, the shape
(bare CMD:OK for a SET, CMD:OK,VAL for a MON) and, for a MON, the number and shape of the values
(INSTRUMENTS.md 1.4 formats). A reply that fits an owed request instead is set aside as that
late reply; any other mismatch raises Ndt1470ProtocolError after a resync, so the next request
is in step again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.ndt1470_errors import ERROR_REPLIES, Ndt1470Error, Ndt1470ProtocolError, Ndt1470TimeoutError
from drivers.ndt1470_params import Param

log = logging.getLogger(__name__)

_REPLY = re.compile(r"^#BD:(\d{2}),(.+)$")
_MAX_OWED = 4


@dataclass(frozen=True)
class Expect:
    """The answer a request must get: values (a MON) or a bare CMD:OK (a SET); for a MON, their shape."""

    values: bool
    param: Param | None = None  # None: any value (a parameter the table does not know)
    count: int = 1  # 4 for CH:4


@dataclass(frozen=True)
class Reply:
    """A reply that matched its request: the VAL text (None for a SET) and the parsed values."""

    text: str | None
    values: tuple[Any, ...] = ()


class _Stale(Exception):
    """The line is the late reply of an owed request (the `index`-th still owed), not this one's."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def error_in(text: str) -> str | None:
    """The field that carries ERR in a reply ('VAL' for '#BD:00,VAL:ERR'), or None."""
    m = _REPLY.match(text)
    if m is None:
        return None
    for field in m.group(2).split(","):
        key, _, value = field.partition(":")
        if value == "ERR":
            return key
    return None


class Ndt1470Link:
    """The exchange on an open port (pyserial API: write, read_until, reset_input_buffer, timeout).

    timeout_s: how long a reply may take. late_reply_s: how long after a fault a late reply is
    still waited for (and discarded) before the next request is sent.
    """

    def __init__(
        self,
        port: Any,
        url: str,
        timeout_s: float,
        late_reply_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port, self.url = port, url
        self.timeout_s, self.late_reply_s = timeout_s, late_reply_s
        self._clock = clock
        self._lock = threading.Lock()
        self._owed: deque[tuple[str, Expect]] = deque(maxlen=_MAX_OWED)
        self._owed_until = 0.0
        self.discarded: list[bytes] = []  # lines set aside since the last request began

    def exchange(self, board: int, command: str, expect: Expect) -> Reply:
        """Send `$BD:nn,<command>` and return its own reply; raise the typed error of an ERR reply.

        Raises Ndt1470TimeoutError on silence, Ndt1470ProtocolError on garbage, a partial line or
        a reply that is not this command's answer (after a resync).
        """
        with self._lock:
            self.discarded = []
            self._catch_up()
            self.port.write(f"$BD:{board:02d},{command}".encode("ascii") + b"\r\n")
            deadline = self._clock() + self.timeout_s
            while True:
                raw = self._read_line(deadline)
                if raw is None:
                    self._owe(command, expect)
                    self.port.reset_input_buffer()
                    raise Ndt1470TimeoutError(
                        f"NDT1470 ({self.url}, board {board:02d}) did not answer {command} within "
                        f"{self.timeout_s:g} s. Check hv.board in the configuration (a wrong board address gets "
                        f"no reply), the cable, and that the unit is on.",
                        command,
                    )
                try:
                    return self._match(raw, board, command, expect)
                except _Stale as stale:
                    for _ in range(stale.index + 1):  # replies come in order: those before it are lost
                        owed, _ = self._owed.popleft()
                    self.discarded.append(raw)
                    log.warning("NDT1470 (%s): late reply %r to %s set aside while waiting for %s's",
                                self.url, raw, owed, command)  # fmt: skip
                except Ndt1470ProtocolError:
                    self._owe(command, expect)  # this command's own reply may still come: wait it out
                    self._catch_up()
                    raise

    def catch_up(self) -> list[bytes]:
        """Wait for the owed replies (until late_reply_s after the fault), drain the rest; return what was set aside."""
        with self._lock:
            self._catch_up()
            return list(self.discarded)

    # ---- internals (called with the lock held) ----

    def _owe(self, command: str, expect: Expect) -> None:
        self._owed.append((command, expect))
        self._owed_until = self._clock() + self.late_reply_s

    def _catch_up(self) -> None:
        while self._owed and self._clock() < self._owed_until:
            raw = self._read_line(self._owed_until)
            if raw is None:
                break
            owed, _ = self._owed.popleft()
            self.discarded.append(raw)
            log.warning("NDT1470 (%s): late reply %r to %s discarded", self.url, raw, owed)
        self.port.reset_input_buffer()  # a stray CR of an LF CR ack, or the tail of anything late

    def _read_line(self, deadline: float) -> bytes | None:
        """One line up to LF (or what came before the deadline); None if nothing but line ends came."""
        buffer = b""
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            if abs(self.port.timeout - remaining) > 1e-3:
                self.port.timeout = remaining
            chunk = self.port.read_until(b"\n")
            buffer += chunk
            if buffer.endswith(b"\n"):
                if buffer.strip(b"\r\n "):
                    break
                buffer = b""  # an empty line (the CR of an LF CR ack and nothing else)
            elif not chunk:
                break
        if abs(self.port.timeout - self.timeout_s) > 1e-3:
            self.port.timeout = self.timeout_s
        return buffer if buffer.strip(b"\r\n ") else None

    def _match(self, raw: bytes, board: int, command: str, expect: Expect) -> Reply:
        where = f"NDT1470 ({self.url})"
        if not raw.endswith(b"\n"):
            raise Ndt1470ProtocolError(
                f"{where} sent a partial reply {raw!r} to {command} (no line end within {self.timeout_s:g} s): "
                f"check the baud rate and the cable",
                command,
            )
        text = raw.decode("ascii", errors="replace").strip("\r\n ")
        m = _REPLY.match(text)
        if m is None:
            raise Ndt1470ProtocolError(f"{where} sent {raw!r} to {command}: not a reply", command)
        if int(m.group(1), 10) != board:
            raise Ndt1470ProtocolError(
                f"{where} reply from board {m.group(1)} to {command} for board {board:02d}", command
            )
        kind = error_in(text)
        if kind is not None:
            hint = (
                " The supply is in LOCAL mode: switch it to REMOTE on the front panel."
                if kind == "LOC"
                else ""
            )
            raise ERROR_REPLIES.get(kind, Ndt1470Error)(
                f"{where} refused {command}: {kind}:ERR.{hint}", command
            )
        fields = m.group(2).split(",")
        if (
            fields[0] != "CMD:OK"
            or len(fields) > 2
            or (len(fields) == 2 and not fields[1].startswith("VAL:"))
        ):
            raise Ndt1470ProtocolError(f"{where} sent {raw!r} to {command}: not a reply", command)
        value = fields[1][4:] if len(fields) == 2 else None
        try:
            return _fit(value, expect)
        except ValueError as exc:
            for index, (_, owed) in enumerate(self._owed):
                if _fits(value, owed):
                    raise _Stale(index) from None
            raise Ndt1470ProtocolError(
                f"{where} answered {command} with {text!r}: {exc}, so it is another command's reply; "
                f"discarded and resynchronised",
                command,
            ) from None


def _fit(value: str | None, expect: Expect) -> Reply:
    """The reply if `value` is the answer `expect` describes; raise ValueError saying why not."""
    if not expect.values:
        if value is not None:
            raise ValueError("a SET is answered by a bare CMD:OK, not a value")
        return Reply(None)
    if value is None:
        raise ValueError("a MON is answered with a value, not a bare CMD:OK")
    items = [item.strip() for item in value.split(";") if item.strip()]  # a trailing ';' may come
    if len(items) != expect.count:
        raise ValueError(f"{len(items)} values where {expect.count} were asked")
    if expect.param is None:
        return Reply(value, tuple(items))
    return Reply(value, tuple(expect.param.parse(item) for item in items))


def _fits(value: str | None, expect: Expect) -> bool:
    try:
        _fit(value, expect)
    except ValueError:
        return False
    return True
