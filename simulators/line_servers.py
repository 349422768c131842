"""Serve a line-oriented instrument simulator on a pseudo-terminal or a loopback TCP port.

A handler answers one request line (terminator removed) with a reply or None (silence) and says
which line end follows the reply. Any client (our drivers, a terminal, a third-party package)
can connect to the pty path or to 127.0.0.1:<port>.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import tty
from typing import Protocol

log = logging.getLogger(__name__)


class LineHandler(Protocol):
    def handle(self, line: str) -> str | None: ...
    def terminator(self, reply: str) -> bytes: ...


def _split_lines(buffer: bytearray) -> list[str]:
    """Take the complete lines (ended by LF, or CR LF, or a lone CR) out of `buffer`."""
    lines = []
    while True:
        cut = min((i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0), default=-1)
        if cut < 0:
            return lines
        line = bytes(buffer[:cut])
        del buffer[: cut + 1]
        if buffer[:1] == b"\n":
            del buffer[:1]  # CR LF
        if line:
            lines.append(line.decode("ascii", errors="replace"))


class _Server:
    def __init__(self, handler: LineHandler, latency_s: float = 0.0) -> None:
        self.handler = handler
        self.latency_s = latency_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _reply(self, line: str) -> bytes | None:
        reply = self.handler.handle(line)
        if reply is None:
            return None
        if self.latency_s:
            self._stop.wait(self.latency_s)
        return reply.encode("ascii") + self.handler.terminator(reply)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _serve(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PtyServer(_Server):
    """Serve on a raw pseudo-terminal; `path` is the device a client opens (e.g. /dev/pts/5)."""

    def __init__(self, handler: LineHandler, latency_s: float = 0.0) -> None:
        super().__init__(handler, latency_s)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/NL translation
        self.path = os.ttyname(self._slave)  # the slave stays open here too, or reads fail with EIO

    def _serve(self) -> None:
        buffer = bytearray()
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                try:
                    chunk = os.read(self._master, 4096)
                except OSError:  # EIO while no client is attached
                    continue
                buffer += chunk
                for line in _split_lines(buffer):
                    out = self._reply(line)
                    if out:
                        os.write(self._master, out)
        finally:
            os.close(self._master)
            os.close(self._slave)


class TcpServer(_Server):
    """Serve on 127.0.0.1:`port` (0: any free port; the chosen one is in `port`), one client at a time."""

    def __init__(self, handler: LineHandler, port: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(handler, latency_s)
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    self._talk(conn)
        finally:
            self._listener.close()

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buffer = bytearray()
        while not self._stop.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return  # the client left
            buffer += chunk
            for line in _split_lines(buffer):
                out = self._reply(line)
                if out:
                    try:
                        conn.sendall(out)
                    except OSError:
                        return
