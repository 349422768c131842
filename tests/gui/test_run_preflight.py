"""The window's Start run goes through the control core's pre-flight and pre-run sequences, as `daq run` does:
a refused start shows its one-line reason and touches nothing; a warm stand with the HV off is cooled and
biased first, then the run is taken cold and biased."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401
import pytest
import yaml

from daq.run_context import RunState
from gui.app import make_window
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


def _window(qtbot, tmp_path: Path, changes: dict[str, dict[str, Any]]) -> MainWindow:  # noqa: ANN001
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["run"]["output_dir"] = str(tmp_path / "runs")
    config["simulation"]["rate_hz"] = 2000
    config["cryostat"].update(time_scale=2000, poll_period_s=0.2, cooldown_timeout_s=86400)
    config["hv"].update(time_scale=100, poll_period_s=0.2)
    for section, values in changes.items():
        config[section].update(values)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    w = make_window(str(path))
    w.show()
    w.hv_panel.confirm = lambda text: True
    w.messages.clear()
    return w


@pytest.fixture
def closing(qtbot):  # noqa: ANN001, ANN201 - pytest-qt's fixture
    windows: list[MainWindow] = []
    yield windows
    for w in windows:
        if w.isVisible():
            w.close()
            qtbot.waitUntil(lambda w=w: not w.isVisible(), timeout=60_000)
        w.deleteLater()


@pytest.mark.parametrize(
    ("changes", "taken", "words"),
    [
        (
            {"analysis": {"signal_samples": [1400, 8800]}},
            0,
            "analysis.signal_samples [1400, 8800) does not fit",
        ),
        ({}, 4, "run number 4 (run.run_number, --run-number) exists already"),
    ],
)
def test_a_refused_start_shows_its_one_line_reason_and_cools_nothing(
    qtbot,
    tmp_path: Path,
    closing: list[MainWindow],
    changes: dict[str, dict[str, Any]],
    taken: int,
    words: str,
) -> None:  # noqa: ANN001
    w = _window(qtbot, tmp_path, changes)
    closing.append(w)
    if taken:
        (tmp_path / "runs").mkdir()
        (tmp_path / "runs" / f"run_{taken:06d}.h5").write_bytes(b"")
        w.run_panel.run_number.setValue(taken)
    w.run_panel.start_button.click()
    snap = w.stand.snapshot()
    assert snap.run_error.startswith("run not started: ") and words in snap.run_error
    assert "\n" not in snap.run_error
    qtbot.waitUntil(lambda: words in w.banner.text(), timeout=5_000)
    assert any(words in box.text() for box in w.messages)  # the dialog says it too
    assert snap.run is None and not snap.run_preparing
    assert snap.cryostat_sequence == "" and snap.hv_sequence == ""  # nothing cooled or biased
    reading = w.stand.snapshot().hv
    assert reading is None or abs(reading.vmon_v) < 5


def test_start_on_a_warm_stand_cools_and_biases_first_then_runs(
    qtbot, tmp_path: Path, closing: list[MainWindow]
) -> None:  # noqa: ANN001
    w = _window(qtbot, tmp_path, {"cryostat": {"setpoint_k": 80.0, "stable_hold_s": 30}})
    closing.append(w)
    qtbot.waitUntil(lambda: w.stand.snapshot().temperature is not None, timeout=10_000)
    assert w.stand.snapshot().temperature.stage_k > 250  # warm, and the HV is off
    w.run_panel.events.setValue(400)
    w.run_panel.start_button.click()
    snap = w.stand.snapshot()
    assert snap.run_preparing and snap.run is None and snap.run_error == ""
    qtbot.waitUntil(lambda: "before the run" in w.banner.text(), timeout=5_000)
    qtbot.waitUntil(lambda: w.stand.snapshot().run is not None, timeout=60_000)
    qtbot.waitUntil(lambda: w.stand.snapshot().run.state in (RunState.DONE, RunState.FAULT), timeout=60_000)
    status = w.stand.snapshot().run
    c = status.counters
    assert status.state is RunState.DONE and c.triggers == c.written + c.lost_total
    with h5py.File(status.path, "r") as f:
        assert f.attrs["complete"]
        assert abs(f["slow/temperature"]["stage_k"][0] - 80.0) < 1.0  # cold from its first reading
        assert min(abs(f["slow/hv"]["vmon_v"])) > 1495  # biased throughout
        stored = yaml.safe_load(f.attrs["config_yaml"])
    assert stored["cryostat"]["setpoint_k"] == 80.0 and stored["hv"]["voltage_v"] == -1500
