"""A serial port that plays an NDT1470 byte transcript: each write must be the next expected request.

A pair is (request bytes, reply bytes or None for silence). The reply reaches the input only once
its request is written, so bytes a test puts before the real reply (a stale late reply, garbage)
arrive after the request like on the wire; read_until reads up to LF. assert_done() fails if any
pair is left unused.
"""

from __future__ import annotations

from typing import Any


class SerialTranscript:
    """The pyserial calls the driver uses: write, read_until, reset_input_buffer, timeout, close."""

    def __init__(self, pairs: list[tuple[bytes, bytes | None]]) -> None:
        self.pairs = list(pairs)
        self.used = 0
        self.settings: dict[str, Any] = {}
        self.timeout = 1.0
        self._input = bytearray()

    def __call__(self, url: str, **settings: Any) -> SerialTranscript:
        self.settings = {"url": url, **settings}
        self.timeout = float(settings.get("timeout", 1.0))
        return self

    def reset_input_buffer(self) -> None:
        self._input.clear()

    def write(self, data: bytes) -> int:
        assert self.used < len(self.pairs), f"unexpected write {data!r}"
        sent, reply = self.pairs[self.used]
        assert data == sent, f"sent {data!r}, transcript expects {sent!r}"
        self.used += 1
        self._input += reply or b""
        return len(data)

    def read_until(self, expected: bytes = b"\n") -> bytes:
        cut = self._input.find(expected)
        end = len(self._input) if cut < 0 else cut + len(expected)
        out = bytes(self._input[:end])
        del self._input[:end]
        return out

    def close(self) -> None:
        pass

    def assert_done(self) -> None:
        assert self.used == len(self.pairs), f"{len(self.pairs) - self.used} transcript pairs unused"


def mon(par: str, value: str, ch: int | None = 0, board: int = 0) -> tuple[bytes, bytes]:
    """The pair of a MON of `par` answered with `value` (ch None: a board parameter)."""
    where = "" if ch is None else f"CH:{ch},"
    return (
        f"$BD:{board:02d},CMD:MON,{where}PAR:{par}\r\n".encode(),
        f"#BD:{board:02d},CMD:OK,VAL:{value}\r\n".encode(),
    )


def set_ok(par: str, value: str | None, ch: int | None = 0, board: int = 0) -> tuple[bytes, bytes]:
    """The pair of a SET of `par` (VAL `value`, None for none) acknowledged with CMD:OK."""
    where = "" if ch is None else f"CH:{ch},"
    val = "" if value is None else f",VAL:{value}"
    return (
        f"$BD:{board:02d},CMD:SET,{where}PAR:{par}{val}\r\n".encode(),
        f"#BD:{board:02d},CMD:OK\r\n".encode(),
    )
