"""The real window in a real (offscreen) Qt application, driven like an operator would, on the simulators."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest
import yaml
from PyQt6.QtWidgets import QPushButton

from daq.config import RunConfig
from daq.engine import RunEngine
from daq.run_context import RunState
from gui.app import make_window
from gui.main_window import MainWindow
from gui.widgets import ALARM

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["run"]["output_dir"] = str(tmp_path / "runs")
    config["simulation"]["rate_hz"] = 2000
    config["hv"]["poll_period_s"] = 0.5
    config["cryostat"]["interlock_action"] = "ignore"  # runs without a cooldown first (tests of their own)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def window(qtbot, config_path: Path):  # noqa: ANN001 - pytest-qt's fixture
    w = make_window(str(config_path))
    w.show()
    w.hv_panel.confirm = lambda text: True  # the operator says yes
    yield w
    _close(qtbot, w)


def _close(qtbot, w: MainWindow) -> None:  # noqa: ANN001
    """Close as the operator does (the shutdown runs on a thread), wait for it, then delete the window."""
    if w.isVisible():
        w.close()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
    w.deleteLater()


def _label(w: MainWindow, panel: str, name: str) -> str:
    grid = w.run_panel.status if panel == "run_panel" else getattr(w, panel).values
    return grid.values[name].text()


def test_cooldown_hv_run_and_the_complete_file(qtbot, window: MainWindow, tmp_path: Path) -> None:  # noqa: ANN001
    w = window
    qtbot.waitUntil(lambda: w.stand.snapshot().temperature is not None, timeout=10_000)
    start_k = w.stand.snapshot().temperature.stage_k
    w.views.setCurrentWidget(w.cryostat)
    w.cryostat.target.setValue(77.0)
    w.cryostat.go()
    qtbot.waitUntil(lambda: w.stand.snapshot().temperature.stage_k < start_k - 20, timeout=20_000)
    assert "cooldown to 77 K" in w.cryostat.values.values["sequence"].text()
    abort = next(b for b in w.cryostat.findChildren(QPushButton) if b.text() == "Abort")
    abort.click()  # as the operator does (the button's clicked(bool) once reached the stand as a kind)
    qtbot.waitUntil(lambda: "abandoned on request" in w.stand.snapshot().cryostat_sequence, timeout=10_000)
    w.cryostat.go()  # and on again
    assert w.cryostat.curves["stage_k"].getData()[0] is not None  # the strip chart has points
    w.hv_panel.voltage.setValue(-1500)
    w.hv_panel.switch_on()
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) > 1495, timeout=20_000)
    qtbot.waitUntil(lambda: "ON" in _label(w, "hv_panel", "status"), timeout=5_000)
    w.views.setCurrentWidget(w.spectra)
    w.run_panel.events.setValue(20000)
    w.run_panel.comment.setText("gui test")
    w.run_panel.start_button.click()  # the cooldown still settling: the run waits for it (its pre-run sequence)
    qtbot.waitUntil(lambda: (run := w.stand.snapshot().run) is not None and run.counters.written > 500,
                    timeout=60_000)  # fmt: skip
    written_then = w.run_panel.status.values["written"].text()
    assert w.spectra.shown is not None and int(w.spectra.shown.npe.counts.sum()) > 0  # filling
    w.grab().save(str(tmp_path / "mid_run.png"))
    qtbot.waitUntil(lambda: w.run_panel.status.values["written"].text() != written_then, timeout=5_000)
    qtbot.waitUntil(lambda: w.stand.snapshot().run.elapsed_s > 2.5, timeout=10_000)  # slow-control readings
    w.run_panel.stop_button.click()
    qtbot.waitUntil(lambda: w.stand.snapshot().run.state is RunState.DONE, timeout=30_000)
    status = w.stand.snapshot().run
    assert status.stop_reason == "stopped by the operator"
    with h5py.File(status.path, "r") as f:
        assert f.attrs["complete"] and f.attrs["comment"] == "gui test"
        assert f["events/waveform"].shape[0] == status.counters.written > 500
        assert len(f["slow/temperature"]) > 0 and len(f["slow/hv"]) > 0
        started = datetime.fromisoformat(f.attrs["started_at"]).timestamp()
        assert f["slow/hv"]["time_s"].min() >= started - 1.0  # the run's own readings, not the session's
    assert (tmp_path / "mid_run.png").stat().st_size > 10_000


def test_a_silent_instrument_is_shown_and_the_window_stays_responsive(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    w = window
    qtbot.waitUntil(lambda: w.stand.snapshot().hv is not None, timeout=10_000)
    sim = w.stand.slow.hv_sim
    assert sim is not None
    sim.drop_replies = 10**9  # the NDT1470 stops answering
    qtbot.waitUntil(lambda: "NDT1470 not answering" in w.banner.text(), timeout=20_000)
    assert w.banner.styleSheet() == ALARM  # shown as an alarm
    assert "did not answer" in _label(w, "hv_panel", "status")
    before, t0 = w.refreshes, time.monotonic()
    qtbot.wait(1000)
    rate_hz = (w.refreshes - before) / (time.monotonic() - t0)
    assert rate_hz > 5  # the views keep refreshing while the driver waits for replies on its own thread
    # the pre-flight refuses a faulted supply (polls failed FAILURES_BEFORE_FAULT times in a row), not one
    # failed poll: the banner shows the first already
    qtbot.waitUntil(lambda: w.stand.slow.hv.faulted, timeout=30_000)
    w.run_panel.events.setValue(0)
    w.run_panel.start_button.click()  # pre-flight refuses a run whose HV supply is silent, before any cooldown
    snap = w.stand.snapshot()
    assert snap.run is None and snap.run_error.startswith("run not started: NDT1470")
    assert "then start again" in snap.run_error and snap.cryostat_sequence == ""
    qtbot.waitUntil(lambda: "run not started: NDT1470" in w.banner.text(), timeout=5_000)


def test_closing_the_window_mid_run_stops_the_run_and_ramps_the_hv_down(qtbot, config_path: Path) -> None:  # noqa: ANN001
    w = make_window(str(config_path))
    w.show()
    w.hv_panel.confirm = lambda text: True
    w.hv_panel.switch_on()
    qtbot.waitUntil(lambda: w.stand.snapshot().hv is not None and abs(w.stand.snapshot().hv.vmon_v) > 1495,
                    timeout=20_000)  # fmt: skip
    w.run_panel.events.setValue(0)  # no limit
    w.run_panel.start_button.click()
    qtbot.waitUntil(lambda: (run := w.stand.snapshot().run) is not None and run.counters.written > 200,
                    timeout=60_000)  # fmt: skip  # the configured cooldown runs first
    sim = w.stand.slow.hv_sim
    w.close()
    assert w.isVisible()  # still shutting down: the HV ramps down first
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
    w.deleteLater()
    status = w.stand.engine.status()
    assert status.state is RunState.DONE and status.stop_reason == "the window was closed"
    with h5py.File(status.path, "r") as f:
        assert f.attrs["complete"] and f["events/waveform"].shape[0] == status.counters.written
        assert f.attrs["hv_safe_state"] == "confirmed: channel 0 ramped down to 0 V"  # as daq run records it
    channel = sim.channels[w.stand.config.hv.channel]
    assert not channel.on and channel.vmon_v < 5  # the safe state


def test_replay_and_the_fits_on_the_live_histograms(qtbot, window: MainWindow, tmp_path: Path) -> None:  # noqa: ANN001
    w = window
    # a run of the simulated crystal at 77 K taken without the GUI, replayed through it
    data = RunConfig().model_dump()
    data["run"].update(output_dir=str(tmp_path / "recorded"), events=6000, slow_control=False)
    data["simulation"].update(pace="max", seed=4)
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    assert engine.wait(timeout_s=120)
    recorded = engine.status().path
    w.replay_panel.source.setText(str(recorded))
    w.replay_panel.speed.setCurrentText("max")
    w.replay_panel.write.setChecked(True)
    w.replay_panel.output.setText(str(tmp_path / "replays"))
    w.replay_panel.start()
    qtbot.waitUntil(lambda: w.stand.snapshot().run_kind == "replay"
                    and w.stand.snapshot().run.state is RunState.DONE, timeout=60_000)  # fmt: skip
    qtbot.waitUntil(
        lambda: "replay done (end of the replayed data)" in _label(w, "run_panel", "state"), timeout=5_000
    )
    qtbot.waitUntil(lambda: w.spectra.shown is not None and w.spectra.shown.n_events >= 6000, timeout=5_000)
    with h5py.File(recorded, "r") as a, h5py.File(tmp_path / "replays" / "run_000001.h5", "r") as b:
        assert np.array_equal(a["events/n_peaks"][()], b["events/n_peaks"][()])
    w.spectra.fit_button.click()
    qtbot.waitUntil(lambda: "LY" in w.spectra.result.text() or "not fitted" in w.spectra.result.text(),
                    timeout=60_000)  # fmt: skip
    text = w.spectra.result.text()
    assert "Qspe" in text and "LY" in text and "FWHM" in text and "paper's method" in text, text
    png, csv = w.spectra.save(tmp_path / "hist.png")
    assert png.stat().st_size > 5_000
    rows = csv.read_text().splitlines()
    assert rows[1] == "histogram,low,high,counts" and any(r.startswith("npe,") for r in rows)


def test_hv_off_twice_during_a_ramp_never_blocks_the_window(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    w = window
    qtbot.waitUntil(lambda: w.stand.snapshot().hv is not None, timeout=10_000)
    w.hv_panel.switch_on()
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) > 300, timeout=20_000)  # ramping up
    t0 = time.monotonic()
    w.hv_panel.switch_off()
    w.hv_panel.switch_off()  # a second Off while the first is still ramping down
    assert time.monotonic() - t0 < 0.5 and not w.messages  # sent at once, nothing refused
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) < 5, timeout=30_000)
    assert "ON" not in _label(w, "hv_panel", "status")


def test_run_number_another_configuration_rates_and_a_view_reset(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:  # noqa: ANN001
    w = window
    qtbot.waitUntil(lambda: w.stand.snapshot().hv is not None, timeout=10_000)
    w.hv_panel.switch_on()  # the run's HV interlock (the session's hv section) wants the PMT on
    other = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    other["run"].update(output_dir=str(tmp_path / "runs2"), events=2500, comment="second file")
    other["simulation"]["rate_hz"] = 1000
    other["hv"]["ramp_up_v_per_s"] = 40  # an instrument section: not taken in this session
    other_path = tmp_path / "other.yaml"
    other_path.write_text(yaml.safe_dump(other))
    (tmp_path / "broken.yaml").write_text("run:\n  events: many\n")
    w.run_panel.use_config(str(tmp_path / "broken.yaml"))
    qtbot.waitUntil(lambda: "broken.yaml" in w.banner.text(), timeout=5_000)  # refused, and said why
    assert w.run_panel.config_label.text() == str(w.stand.config_path)
    w.run_panel.use_config(str(other_path))
    qtbot.waitUntil(lambda: w.run_panel.config_label.text() == str(other_path), timeout=5_000)
    assert w.run_panel.events.value() == 2500 and w.run_panel.comment.text() == "second file"
    other["run"]["events"] = 3000  # edited, and the same file loaded again
    other_path.write_text(yaml.safe_dump(other))
    qtbot.waitUntil(lambda: w.run_panel.config_button.isEnabled(), timeout=5_000)
    w.run_panel.use_config(str(other_path))
    qtbot.waitUntil(lambda: w.run_panel.events.value() == 3000, timeout=5_000)
    assert w.stand.config.hv.ramp_up_v_per_s != 40  # the session's HV settings stay
    qtbot.waitUntil(lambda: "from the session's and are not used" in w.log_panel.toPlainText(), timeout=5_000)
    qtbot.waitUntil(lambda: w.run_panel.next_number.text() == "next free: 1", timeout=5_000)
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) > 1495, timeout=20_000)
    w.run_panel.run_number.setValue(42)
    w.run_panel.start_button.click()
    assert w.run_panel.run_number.value() == 0  # used once
    qtbot.waitUntil(lambda: (run := w.stand.snapshot().run) is not None and run.counters.written > 1200,
                    timeout=60_000)  # fmt: skip  # after the configured cooldown
    qtbot.waitUntil(lambda: "Hz now" in _label(w, "run_panel", "trigger rate"), timeout=5_000)
    w.spectra.reset()
    at_reset = int(re.search(r"\(event (\d+)\)", w.spectra.since.text()).group(1))
    assert 0 < at_reset < 3000
    qtbot.waitUntil(lambda: w.stand.snapshot().run.state is RunState.DONE, timeout=30_000)
    whole = w.stand.engine.histogram_snapshot()
    qtbot.waitUntil(lambda: w.spectra.shown is not None and w.spectra.shown.n_events == whole.n_events - at_reset,
                    timeout=5_000)  # fmt: skip
    assert "after the reset" in w.spectra.since.text()
    status = w.stand.snapshot().run
    assert status.path == tmp_path / "runs2" / "run_000042.h5"
    with h5py.File(status.path, "r") as f:
        assert f.attrs["complete"] and f.attrs["comment"] == "second file"
        assert f["histograms"].attrs["n_events"] == whole.n_events >= 3000  # the file keeps the whole run
        np.testing.assert_array_equal(f["histograms/npe/counts"][()], whole.npe.counts)
        assert int(whole.npe.counts.sum()) > int(w.spectra.shown.npe.counts.sum())
    assert (
        w.stand.slow.cryostat is not None and len(w.stand.slow.cryostat.observers) == 1
    )  # the run's interlock gone
    qtbot.waitUntil(lambda: w.run_panel.next_number.text() == "next free: 43", timeout=5_000)
    w.run_panel.run_number.setValue(42)
    w.run_panel.start()  # a taken number is refused before anything starts, with what to do
    assert (
        w.messages and "run number 42 (run.run_number, --run-number) exists already" in w.messages[-1].text()
    )
    w.run_panel.run_number.setValue(0)  # "next free": run 43, and the view shows it whole
    w.run_panel.start()
    qtbot.waitUntil(lambda: w.stand.snapshot().run.run_number == 43, timeout=10_000)
    qtbot.waitUntil(lambda: w.spectra.since.text() == "", timeout=5_000)
    w.run_panel.stop()


def test_an_hv_trip_is_an_alarm_in_the_banner_the_panel_and_the_log(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    w = window
    qtbot.waitUntil(lambda: w.stand.snapshot().hv is not None, timeout=10_000)
    w.hv_panel.switch_on()
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) > 1495, timeout=20_000)
    w.stand.slow.hv_sim.inject_current_ua(w.stand.config.hv.channel, 500.0)  # a breakdown: over-current
    qtbot.waitUntil(lambda: "TRIP" in w.banner.text(), timeout=20_000)
    assert w.banner.styleSheet() == ALARM
    assert "TRIP" in _label(w, "hv_panel", "status")
    assert w.hv_panel.values.values["status"].styleSheet() == ALARM
    qtbot.waitUntil(lambda: abs(w.stand.snapshot().hv.vmon_v) < 1, timeout=20_000)  # tripped: ramped down
    qtbot.wait(1500)  # a few more polls (0.5 s) at rest
    lines = w.log_panel.toPlainText().splitlines()
    logged = [line.split(" fault: ")[1] for line in lines if " fault: NDT1470 channel" in line]
    assert logged and "TRIP" in logged[-1].split("(")[0]
    assert len(logged) <= 2 and len(set(logged)) == len(
        logged
    )  # OVC then TRIP: not per poll nor per ramp bit
