"""`daq gui [--config FILE]`: the Qt application around the main window, with one top-level error handler."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from PyQt6.QtWidgets import QApplication, QMessageBox

from daq.config import load_config
from daq.stand import LogBuffer, TestStand
from gui.main_window import MainWindow

log = logging.getLogger(__name__)


def make_window(config_path: str, log_buffer: LogBuffer | None = None) -> MainWindow:
    """Open the stand of `config_path` and its window (a QApplication must exist)."""
    buffer = log_buffer or LogBuffer()
    root = logging.getLogger()
    if buffer not in root.handlers:
        root.addHandler(buffer)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)  # the log panel shows INFO and up
    stand = TestStand(load_config(config_path), config_path)
    return MainWindow(stand, buffer)


def run_gui(config_path: str) -> int:
    """Run the GUI until its window is closed; 0 after a clean shutdown."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = make_window(config_path)

    def on_error(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error in the GUI", exc_info=(kind, exc, tb))
        QMessageBox.critical(
            window, "Unexpected error", f"{kind.__name__}: {exc}\n\nThe traceback is in the log."
        )

    sys.excepthook = on_error
    window.show()
    return int(app.exec())
