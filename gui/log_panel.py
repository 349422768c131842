"""The log: every message of the program (faults in red), newest last."""

from __future__ import annotations

from PyQt6.QtWidgets import QPlainTextEdit

from daq.stand import LogBuffer

MAX_BLOCKS = 5000


class LogPanel(QPlainTextEdit):
    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_BLOCKS)
        self.buffer = buffer
        self._seen = 0

    def refresh(self) -> None:
        self._seen, lines = self.buffer.since(self._seen)
        for line in lines:
            if " ERROR " in line or " CRITICAL " in line:
                self.appendHtml(f'<span style="color:#c0392b">{_escape(line)}</span>')
            else:
                self.appendPlainText(line)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
