"""Histograms: live SPE (with the last SPE fit on demand) and NPE (log y) spectra, baseline rms; reset, freeze,
save as PNG and CSV; the offline fits of `daq analyze` on the current histograms, run off the GUI thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from analysis.histograms import Histogram, HistogramSnapshot
from analysis.spe_fit import FitError, SpeFitResult, fit_spe_histogram
from analysis.spectrum_fit import SpectrumFitResult, fit_spectrum
from daq.stand import StandSnapshot, TestStand
from gui.widgets import button


def fit_histograms(snap: HistogramSnapshot) -> tuple[SpeFitResult | None, SpectrumFitResult | None, str]:
    """SPE fit of the SPE histogram, ten-Gaussian fit of the NPE spectrum (its bins' entries); never raises."""
    notes = []
    spe = spectrum = None
    try:
        spe = fit_spe_histogram(snap.spe.counts, snap.spe.edges)
    except (FitError, ValueError) as exc:
        notes.append(str(exc))
    try:
        spectrum = fit_spectrum(np.repeat(snap.npe.centres, snap.npe.counts))
    except (FitError, ValueError) as exc:
        notes.append(str(exc))
    return spe, spectrum, "; ".join(notes)


def histogram_csv(path: Path, snap: HistogramSnapshot, note: str = "") -> None:
    """The three histograms as CSV: name, bin low edge, bin high edge, counts (`note` ends the header line)."""
    with path.open("w", encoding="utf-8") as f:
        f.write(
            f"# q_spe_adc_ns {snap.q_spe_adc_ns:g}, events {snap.n_events}{note}\nhistogram,low,high,counts\n"
        )
        for name, h in (("spe_adc_ns", snap.spe), ("npe", snap.npe), ("baseline_rms_adc", snap.baseline_rms)):
            for lo, hi, n in zip(h.edges[:-1], h.edges[1:], h.counts, strict=True):
                f.write(f"{name},{lo:g},{hi:g},{int(n)}\n")


class SpectraPanel(QWidget):
    def __init__(self, stand: TestStand, report: Callable[[str, BaseException], None]) -> None:
        super().__init__()
        self.stand, self._report = stand, report
        self.spe_plot = pg.PlotWidget(title="SPE: PeakQ in the late window")
        self.spe_plot.setLabel("bottom", "PeakQ (ADC*ns)")
        self.npe_plot = pg.PlotWidget(title="NPE spectrum")
        self.npe_plot.setLabel("bottom", "NPE")
        self.npe_plot.setLogMode(y=True)
        self.rms_plot = pg.PlotWidget(title="baseline rms")
        self.rms_plot.setLabel("bottom", "baseline rms (ADC)")
        fill = (36, 113, 163, 80)
        self.spe = self.spe_plot.plot(stepMode="center", fillLevel=0, brush=fill, pen="#2471a3")
        self.spe_fit = self.spe_plot.plot(pen=pg.mkPen("#c0392b", width=2))
        self.npe = self.npe_plot.plot(stepMode="center", pen="#2471a3")
        self.npe_fit = self.npe_plot.plot(pen=pg.mkPen("#c0392b", width=2))
        self.rms = self.rms_plot.plot(stepMode="center", fillLevel=0, brush=fill, pen="#2471a3")
        self.freeze = QCheckBox("freeze")
        self.overlay = QCheckBox("show the last fit")
        self.overlay.setChecked(True)
        self.overlay.toggled.connect(self._show_overlay)
        self.result = QLabel("fits: not run")
        self.result.setWordWrap(True)
        self.since = QLabel("")
        row = QHBoxLayout()
        row.addWidget(
            button("Reset", self.reset, "show only what comes from now on (the run file keeps the whole run)")
        )
        row.addWidget(self.freeze)
        row.addWidget(
            button("Save PNG + CSV", self.save_dialog, "the three histograms as a picture and a table")
        )
        self.fit_button = button(
            "Fit (SPE, LY, resolution)", self.start_fit, "the offline fits of daq analyze"
        )
        row.addWidget(self.fit_button)
        row.addWidget(self.overlay)
        plots = QHBoxLayout()
        plots.addWidget(self.spe_plot)
        plots.addWidget(self.npe_plot)
        plots.addWidget(self.rms_plot)
        layout = QVBoxLayout(self)
        layout.addLayout(plots, 1)
        layout.addLayout(row)
        layout.addWidget(self.since)
        layout.addWidget(self.result)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fits")
        self._fit: Future[tuple[SpeFitResult | None, SpectrumFitResult | None, str]] | None = None
        self.last_fit: tuple[SpeFitResult | None, SpectrumFitResult | None, str] | None = None
        self.shown: HistogramSnapshot | None = None  # what the plots show (since the reset, if any)
        self._latest: HistogramSnapshot | None = None  # the run's own, as last read
        self._zero: tuple[object, HistogramSnapshot] | None = None  # (engine, its histograms at the reset)
        self._ranges: dict[int, tuple[tuple[float, float], float]] = {}

    def warm_up(self) -> None:
        """Draw once with counts over several decades, then empty: Qt's first layout of the (log) axes
        costs tens of ms, better spent at start-up than in the middle of a run."""
        edges = np.linspace(0.0, 4000.0, 801)
        counts = np.geomspace(1.0, 1e5, 800)
        for curve in (self.spe, self.npe, self.rms):
            curve.setData(edges, counts)
        self.grab()
        for curve in (self.spe, self.npe, self.rms):
            curve.setData([], [])

    def _step(self, curve: pg.PlotDataItem, h: Histogram, log_y: bool = False) -> None:
        counts = h.counts.astype(np.float64)
        if log_y:
            counts = np.maximum(counts, 0.5)  # empty bins drawn at 0.5 on the log axis
        curve.setData(h.edges, counts)
        self._hold_range(curve.getViewBox(), h, float(counts.max()) if counts.size else 1.0, log_y)

    def _hold_range(self, view: pg.ViewBox, h: Histogram, top: float, log_y: bool) -> None:
        """Ranges that change only when the data outgrow them (x 2), so the axes are not laid out anew at
        every refresh: laying out tick labels is the costliest part of a redraw."""
        held = self._ranges.get(id(view))
        want = (float(h.edges[0]), float(h.edges[-1]))
        if held is None or held[0] != want or top > held[1] or top < held[1] / 8:
            ceiling = max(2.0 * top, 10.0)
            self._ranges[id(view)] = (want, ceiling)
            view.setXRange(*want, padding=0.02)
            view.setYRange(
                np.log10(0.5) if log_y else 0.0, np.log10(ceiling) if log_y else ceiling, padding=0
            )

    def refresh(self, snap: StandSnapshot) -> None:
        if (
            snap.histograms is not None
            and not self.freeze.isChecked()
            and snap.histograms is not self._latest
        ):
            self._latest = snap.histograms
            self.shown = h = self._since_reset(snap.histograms)
            self._step(self.spe, h.spe)
            self._step(self.npe, h.npe, log_y=True)
            self._step(self.rms, h.baseline_rms)
        if self._fit is not None and self._fit.done():
            future, self._fit = self._fit, None
            self.fit_button.setEnabled(True)
            try:
                self.last_fit = future.result()
            except Exception as exc:  # noqa: BLE001 - a fit failure is shown, never fatal
                self._report("Fit", exc)
                return
            self._show_fit()

    def reset(self) -> None:
        """Show only the events from now on; the run's histograms (and those in its file) stay whole."""
        engine = self.stand.engine
        if engine is None:
            return
        zero = engine.histogram_snapshot()  # now, not the last one drawn (a refresh old, or frozen)
        self._zero = (engine, zero)
        self.since.setText(
            f"showing the events after the reset at {time.strftime('%H:%M:%S')} "
            f"(event {zero.n_events}); the run file keeps the whole run"
        )
        self._latest = None  # redrawn at the next refresh

    def _since_reset(self, histograms: HistogramSnapshot) -> HistogramSnapshot:
        """The histograms as shown: since the reset if it was made in this run, else whole."""
        if self._zero is None:
            return histograms
        engine, zero = self._zero
        if engine is self.stand.engine and histograms.n_events >= zero.n_events:
            try:
                return histograms.since(zero)
            except ValueError:
                pass  # other bins: not the run the reset was made in
        self._zero = None  # another run (or replay) started: it is shown whole
        self.since.setText("")
        return histograms

    def start_fit(self) -> None:
        if self._fit is not None:
            return
        if self.shown is None:
            self.result.setText("fits: no histograms yet; start a run or a replay first")
            return
        self.fit_button.setEnabled(False)
        self.result.setText("fitting ...")
        self._fit = self._pool.submit(fit_histograms, self.shown)

    def _show_fit(self) -> None:
        assert self.last_fit is not None
        spe, spectrum, notes = self.last_fit
        parts = []
        if spe is not None:
            parts.append(
                f"Qspe {spe.q_spe:.2f} ADC*ns, sigma_spe {spe.sigma_spe:.2f} (chi2/ndf {spe.chi2_ndf:.2f})"
            )
            x = np.linspace(spe.edges[0], spe.edges[-1], 400)
            self.spe_fit.setData(x, spe.curve(x)["total"])  # counts per bin of the histogram it fitted
        if spectrum is not None:
            parts.append(
                f"LY {spectrum.light_yield:.2f} PE/keVee, FWHM(59.5 keV) {spectrum.fwhm_percent_59:.2f} %"
            )
            x = np.linspace(spectrum.fit_range_npe[0], spectrum.fit_range_npe[1], 800)
            npe_bin = float(self.shown.npe.edges[1] - self.shown.npe.edges[0]) if self.shown else 1.0
            fit_bin = float(spectrum.edges[1] - spectrum.edges[0])
            self.npe_fit.setData(x, np.maximum(spectrum.curve(x)["total"] * npe_bin / fit_bin, 0.5))
        if notes:
            parts.append(f"not fitted: {notes}")
        if parts:  # the live histograms hold the paper's 5-sigma peaks: say so (daq analyze has the headline)
            parts[0] = f"paper's method (live peaks): {parts[0]}"
        self.result.setText("; ".join(parts) or "no fit")
        self._show_overlay(self.overlay.isChecked())

    def _show_overlay(self, on: bool) -> None:
        self.spe_fit.setVisible(on)
        self.npe_fit.setVisible(on)

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the histograms", "histograms.png", "PNG (*.png)")
        if path:
            try:
                self.save(Path(path))
            except (OSError, ValueError) as exc:
                self._report("Save the histograms", exc)

    def save(self, png: Path) -> tuple[Path, Path]:
        """Save the panel's plots as PNG and the histograms as CSV beside it; return both paths."""
        csv = png.with_suffix(".csv")
        if self.shown is None:
            raise ValueError("no histograms yet: start a run or a replay first")
        if not self.grab().save(str(png)):
            raise OSError(f"could not write {png}: check the folder exists and is writable")
        histogram_csv(csv, self.shown, f", {self.since.text()}" if self.since.text() else "")
        return png, csv

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
