"""`daq gui [--config FILE]`: the Qt application around the main window, with one top-level error handler."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from types import TracebackType

from PyQt6.QtWidgets import QApplication

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


def freeze_start_up_objects() -> None:
    """Take what start-up made (modules, numba, Qt wrappers: some 200,000 objects) out of the garbage
    collector's full passes. A full pass over them held the GIL for 45-75 ms at a random moment of a run, in
    whichever thread triggered it, and was the GUI's longest stall (bench/bench_gui.py). They are collected
    first, so no garbage is frozen; objects made later are collected as usual. Once per process (run_gui):
    whatever is frozen is never collected, so a process making several windows (tests) must not call it."""
    gc.collect()
    gc.freeze()


def run_gui(config_path: str) -> int:
    """Run the GUI until its window is closed; 0 after a clean shutdown."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = make_window(config_path)
    freeze_start_up_objects()

    shown: set[str] = set()

    def on_error(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error in the GUI", exc_info=(kind, exc, tb))
        text = f"{kind.__name__}: {exc}"
        if text not in shown:  # once per distinct error, and never modal: the views keep running
            shown.add(text)
            window.report("Unexpected error (the traceback is in the log)", exc)

    sys.excepthook = on_error
    for sig in (signal.SIGINT, signal.SIGTERM):  # the same shutdown as closing the window (HV made safe)
        signal.signal(sig, lambda signum, frame: window.close())
    window.show()
    return int(app.exec())
