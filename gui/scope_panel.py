"""Scope: the latest recorded waveform of the crystal channel with its baseline, threshold and peaks; pause."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QCheckBox, QVBoxLayout, QWidget

from daq.stand import StandSnapshot, TestStand


class ScopePanel(QWidget):
    def __init__(self, stand: TestStand) -> None:
        super().__init__()
        self.stand = stand
        self.plot = pg.PlotWidget(title="latest waveform")
        self.plot.setLabel("left", "ADC")
        self.plot.setLabel("bottom", "sample (ns at 1 GS/s)")
        # 8000 samples on some 900 pixels: drawn as each pixel column's min and max (autoDownsampleFactor 1:
        # pyqtgraph's default 5 would leave 8000 points alone), so every pulse stays visible and the path to
        # paint is ~4 times shorter (the costliest part of this view's redraw)
        self.trace = self.plot.plot(pen=pg.mkPen("#1f618d"), autoDownsampleFactor=1.0)
        self.trace.setDownsampling(auto=True, method="peak")
        self.trace.setClipToView(True)
        self.baseline = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#7f8c8d", style=pg.QtCore.Qt.PenStyle.DashLine)
        )
        self.threshold = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#c0392b", style=pg.QtCore.Qt.PenStyle.DotLine)
        )
        self.peaks = pg.ScatterPlotItem(size=7, brush=pg.mkBrush("#e67e22"), pen=None, symbol="t")
        for item in (self.baseline, self.threshold, self.peaks):
            self.plot.addItem(item)
        self.hold = QCheckBox("pause the scope")
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hold)
        self._shown: object = None
        self._range: tuple[float, float, int] | None = None

    def refresh(self, snap: StandSnapshot) -> None:
        if self.hold.isChecked() or snap.scope is None or snap.scope is self._shown:
            return
        self._shown = snap.scope
        batch, results = snap.scope
        cfg = self.stand.engine.config if self.stand.engine is not None else self.stand.config
        crystal = cfg.digitizer.crystal_channel
        if crystal not in batch.channels or not len(batch):
            return
        col = batch.channels.index(crystal)
        res = results[col]
        i = len(batch) - 1
        wave = batch.waveforms[i, col, :].astype(np.float64)
        self.trace.setData(np.arange(wave.size), wave)
        lo, hi = float(wave.min()), float(wave.max())
        held = self._range
        if (
            held is None
            or lo < held[0]
            or hi > held[1]
            or (hi - lo) < (held[1] - held[0]) / 4
            or held[2] != wave.size
        ):
            pad = max(5.0, 0.1 * (hi - lo))  # re-laid out only when the trace outgrows it (or shrinks a lot)
            self._range = (lo - pad, hi + pad, wave.size)
            self.plot.getViewBox().setRange(xRange=(0, wave.size), yRange=(lo - pad, hi + pad), padding=0)
        base, rms = float(res.baseline[i]), float(res.baseline_rms[i])
        sign = -1.0 if cfg.digitizer.polarity == "negative" else 1.0
        self.baseline.setValue(base)
        self.threshold.setValue(base + sign * cfg.analysis.threshold_sigma * rms)
        first = int(res.peak_offset[i])
        starts = res.t_start[first : first + int(res.n_peaks[i])]
        ends = res.t_end[first : first + int(res.n_peaks[i])]
        tips = [
            int(s + np.argmax(sign * (wave[s : e + 1] - base)))
            for s, e in zip(starts, ends, strict=True)
            if e >= s
        ]
        self.peaks.setData(tips, wave[tips] if tips else [])
