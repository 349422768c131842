"""The main window: run control, HV and replay on the left; histograms, scope and cryostat on the right; the log.

Views pull a TestStand snapshot on a GUI-thread timer (20 Hz); instrument I/O, file I/O and fits happen on
other threads. Closing the window runs the stand's shutdown (stop the run, close its file, HV safe) on a
thread and closes once it is done, so the window stays responsive while the HV ramps down.
"""

from __future__ import annotations

import logging
import threading
import time

from PyQt6.QtCore import QTimer
from PyQt6.QtGui import QCloseEvent, QFont, QImage, QPainter
from PyQt6.QtWidgets import QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from daq.stand import LogBuffer, StandSnapshot, TestStand
from gui.cryostat_panel import CryostatPanel
from gui.hv_panel import HvPanel
from gui.log_panel import LogPanel
from gui.replay_panel import ReplayPanel
from gui.run_panel import RunPanel
from gui.scope_panel import ScopePanel
from gui.spectra_panel import SpectraPanel
from gui.widgets import ALARM

log = logging.getLogger(__name__)

REFRESH_MS = 50  # 20 Hz, the most ARCHITECTURE.md allows an observer


def _warm_up_text() -> None:
    """Lay out once the characters the plots' axes will need: digits, the exponents of the log axis, and
    pyqtgraph's minus sign (U+2212), for which Qt searches a fallback font on first use. Left to the first
    axis with a negative tick during a run, that search took 60-90 ms of the GUI thread (bench/bench_gui.py).
    """
    image = QImage(400, 40, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        for font in (QFont(), QFont(QFont().family(), 9)):
            painter.setFont(font)
            painter.drawText(2, 30, "0123456789 .,-+\u2212·×10⁰¹²³⁴⁵⁶⁷⁸⁹⁻ µmkKMG ADC*ns PE (K) Hz")
    finally:
        painter.end()


class MainWindow(QMainWindow):
    def __init__(self, stand: TestStand, log_buffer: LogBuffer) -> None:
        super().__init__()
        self.stand = stand
        self.setWindowTitle("CLOVERS test stand")
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.run_panel = RunPanel(stand, self.report)
        self.hv_panel = HvPanel(stand, self.report)
        self.replay_panel = ReplayPanel(stand, self.report)
        self.spectra = SpectraPanel(stand, self.report)
        self.scope = ScopePanel(stand)
        self.cryostat = CryostatPanel(stand, self.report)
        self.log_panel = LogPanel(log_buffer)
        controls = QTabWidget()
        controls.addTab(self.run_panel, "Run")
        controls.addTab(self.hv_panel, "HV")
        controls.addTab(self.replay_panel, "Replay")
        self.views = QTabWidget()
        self.views.addTab(self.spectra, "Histograms")
        self.views.addTab(self.scope, "Scope")
        self.views.addTab(self.cryostat, "Cryostat")
        top = QSplitter()
        top.addWidget(controls)
        top.addWidget(self.views)
        top.setStretchFactor(1, 3)
        body = QSplitter()
        body.setOrientation(body.orientation().Vertical)
        body.addWidget(top)
        body.addWidget(self.log_panel)
        body.setStretchFactor(0, 4)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)
        self.setCentralWidget(central)
        self.resize(1500, 950)
        self.messages: list[QMessageBox] = []  # the last error dialogs shown
        self.refreshes = 0
        self.refresh_s_max = 0.0
        self._closing: threading.Thread | None = None
        _warm_up_text()
        self.spectra.warm_up()
        for view in (self.scope, self.cryostat):  # each view's first layout now rather than mid-run
            view.grab()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)

    def report(self, what: str, exc: BaseException) -> None:
        """A command failed: log it and say so in a dialog that does not block the views (it says what to do)."""
        log.error("%s: %s", what, exc)
        box = QMessageBox(QMessageBox.Icon.Warning, what, str(exc), QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self.messages.append(box)
        del self.messages[:-5]

    def refresh(self) -> None:
        t0 = time.perf_counter()
        snap = self.stand.snapshot()
        self.run_panel.refresh(snap)
        self.hv_panel.refresh(snap)
        self.replay_panel.refresh(snap)
        visible = self.views.currentWidget()
        for view in (self.spectra, self.scope, self.cryostat):
            if view is visible or view is self.spectra:  # the fits finish on the histogram view's refresh
                view.refresh(snap)
        self.log_panel.refresh()
        if self._closing is None:  # while shutting down the banner says so
            self._banner(snap)
        self.refreshes += 1
        self.refresh_s_max = max(self.refresh_s_max, time.perf_counter() - t0)
        if self._closing is not None and not self._closing.is_alive():
            self._closing = None
            self.timer.stop()
            self.close()

    def _banner(self, snap: StandSnapshot) -> None:
        problems = []
        if snap.run is not None and snap.run.state.value == "fault":
            problems.append(f"run fault: {snap.run.stop_reason}")
        for name, error in (("Lake Shore 325", snap.cryostat_error), ("NDT1470", snap.hv_error)):
            if error:
                problems.append(f"{name} not answering: {error}")
        if snap.cryostat_alarm:
            problems.append(f"cryostat: {snap.cryostat_alarm}")
        if snap.config_error:
            problems.append(snap.config_error)
        if snap.hv is not None and snap.hv.faulted:
            problems.append(f"HV channel {snap.hv.channel}: {snap.hv.flags}")
        if snap.run is not None and snap.run.counters.lost_total:
            problems.append(f"{snap.run.counters.lost_total} events lost")
        if snap.replay_error:
            problems.append(snap.replay_error)
        if snap.run_error:
            problems.append(snap.run_error)
        if snap.disk_free_mb < self.stand.config.writer.min_free_disk_mb:
            problems.append(f"disk almost full: {snap.disk_free_mb:.0f} MB free")
        text = " | ".join(problems) or " | ".join(t for t in (snap.cryostat_sequence, snap.hv_sequence) if t)
        self.banner.setText(text)
        self.banner.setStyleSheet(ALARM if problems else "")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Shut the stand down on a thread (the run stops, the HV ramps down), then close."""
        if self._closing is None and not getattr(self, "_closed", False):
            self.banner.setText(
                "shutting down: stopping the run, closing its file, putting the HV in its safe state"
            )
            self.banner.setStyleSheet(ALARM)
            self.setEnabled(False)
            self._closing = threading.Thread(target=self._shutdown, name="shutdown", daemon=True)
            self._closing.start()
            event.ignore()
            return
        if self._closing is not None:  # still shutting down
            event.ignore()
            return
        self.spectra.shutdown()
        logging.getLogger().removeHandler(self.log_panel.buffer)
        event.accept()

    def _shutdown(self) -> None:
        try:
            self.stand.close()
        except Exception:  # noqa: BLE001 - the window closes anyway; the traceback is in the log
            log.exception("the shutdown of the test stand failed; check the HV and the run file")
        finally:
            self._closed = True
