"""A VISA resource that plays a transcript: the messages a driver must send, in order, and the lines that come back.

Each pair is (message, reply): reply None for a command (nothing comes back), a line for a query,
"" for silence (the read times out), or Late(line) for a reply that comes after the timeout: the
read times out and the line arrives during the next message, after the driver's flush. Every pair
must be used (`assert_done`). This fakes the transport only; the driver's own code runs unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvisa import constants, errors

from drivers.lakeshore325 import LineSettings

CONNECT = [("*IDN?", "LSCI,MODEL325,1234567,1.0/1.0"), ("*CLS", None), ("*ESR?", "000")]


@dataclass(frozen=True)
class Late:
    line: str


class VisaTranscript:
    def __init__(self, pairs: list[tuple[str, str | Late | None]], connect: bool = True) -> None:
        self.pairs = [*(CONNECT if connect else []), *pairs]
        self.used = 0
        self.incoming: list[str] = []
        self._late: list[str] = []
        self.flushes = 0
        self.sent: list[str] = []

    def __call__(self, resource: str, timeout_s: float, line: LineSettings) -> VisaTranscript:
        return self

    def write(self, message: str) -> None:
        assert self.used < len(self.pairs), f"unexpected {message!r} (transcript used up)"
        sent, reply = self.pairs[self.used]
        self.used += 1
        self.sent.append(message)
        assert message == sent, f"sent {message!r}, transcript expects {sent!r}"
        self.incoming += self._late  # a late line lands after the flush that preceded this message
        self._late = []
        if isinstance(reply, Late):
            self._late.append(reply.line)
        elif reply:
            self.incoming.append(reply)

    def read(self) -> str:
        if not self.incoming:
            raise errors.VisaIOError(constants.StatusCode.error_timeout)
        return self.incoming.pop(0) + "\r\n"

    def flush(self, mask: constants.BufferOperation) -> None:
        assert mask & constants.BufferOperation.discard_read_buffer
        self.flushes += 1
        self.incoming.clear()

    def close(self) -> None:
        pass

    def assert_done(self) -> None:
        assert self.used == len(self.pairs), f"{len(self.pairs) - self.used} transcript messages unused"
