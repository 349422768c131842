"""Line servers that can send a reply in two chunks with a pause between them (a split-reply fault).

They serve like simulators.line_servers.PtyServer and TcpServer; a handler that has
`take_split() -> float | None` gets its reply cut in the middle, the first half sent at once,
the second after the pause it returned.
"""

from __future__ import annotations

import os
import socket

from simulators.line_servers import PtyServer, TcpServer


def _pause_inside(handler: object) -> float | None:
    take = getattr(handler, "take_split", None)
    return take() if callable(take) else None


class ChunkedPtyServer(PtyServer):
    """A PtyServer that honours split replies."""

    def _reply(self, line: str) -> bytes | None:
        out = super()._reply(line)
        pause_s = _pause_inside(self.handler)
        if out is None or pause_s is None:
            return out
        cut = len(out) // 2
        os.write(self._master, out[:cut])
        self._stop.wait(pause_s)
        return out[cut:]


class ChunkedTcpServer(TcpServer):
    """A TcpServer that honours split replies."""

    _conn: socket.socket | None = None

    def _talk(self, conn: socket.socket) -> None:
        self._conn = conn
        try:
            super()._talk(conn)
        finally:
            self._conn = None

    def _reply(self, line: str) -> bytes | None:
        out = super()._reply(line)
        pause_s = _pause_inside(self.handler)
        if out is None or pause_s is None or self._conn is None:
            return out
        cut = len(out) // 2
        self._conn.sendall(out[:cut])
        self._stop.wait(pause_s)
        return out[cut:]
