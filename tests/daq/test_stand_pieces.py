"""The pieces of the GUI's control core that need no Qt: strip-chart history, recent rates, cryostat alarms,
a view's histogram reset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from analysis.histograms import Histogram, HistogramSnapshot
from daq.config import CryostatSection, RunConfig
from daq.cryostat_alarms import HEATER_FULL_ALARM_S, CryostatAlarms
from daq.engine import RunStatus
from daq.rates import RecentRates
from daq.run_context import CounterSnapshot, RunState
from daq.slowcontrol import TemperatureReading
from daq.stand import SeriesHistory, TestStand


def test_history_ring_keeps_the_newest_in_time_order() -> None:
    h = SeriesHistory(("a", "b"), capacity=100)
    for i in range(250):
        h.add(float(i), float(i) * 2, -float(i))
    out = h.arrays(max_points=1000)
    np.testing.assert_array_equal(out["time_s"], np.arange(150, 250))
    np.testing.assert_array_equal(out["a"], np.arange(150, 250) * 2)
    np.testing.assert_array_equal(out["b"], -np.arange(150, 250))
    assert h.version == 250


def test_history_downsampling_keeps_spikes_dips_and_the_latest_reading() -> None:
    rng = np.random.default_rng(7)
    h = SeriesHistory(("stage_k",), capacity=50_000)
    values = 77.0 + 0.01 * rng.standard_normal(40_000)
    values[12_345] = 90.0  # a spike
    values[30_001] = 60.0  # a dip
    for i, v in enumerate(values):
        h.add(float(i), float(v))
    out = h.arrays(max_points=400)
    assert len(out["time_s"]) <= 401
    assert np.all(np.diff(out["time_s"]) > 0)
    assert 90.0 in out["stage_k"] and 60.0 in out["stage_k"]
    assert out["time_s"][-1] == 39_999 and out["stage_k"][-1] == values[-1]
    empty = SeriesHistory(("x",)).arrays()
    assert empty["time_s"].size == 0 and empty["x"].size == 0


def _status(elapsed_s: float, triggers: int, path: str = "run_000001.h5") -> RunStatus:
    counters = CounterSnapshot(triggers, triggers, triggers, triggers, {}, triggers * 16_000, 0)
    return RunStatus(RunState.RUNNING, elapsed_s, counters, Path(path), 1, "", 0, 0)


def test_recent_rates_follow_a_rate_change_that_the_run_average_hides() -> None:
    rates = RecentRates(window_s=5.0)
    assert rates.update(_status(0.5, 500)) is None  # less than a second covered
    triggers, out = 500, None
    for step in range(1, 40):  # 1000 Hz for 10 s, then 100 Hz
        t = 0.5 + 0.5 * step
        triggers += 500 if t <= 10 else 50
        out = rates.update(_status(t, triggers))
    assert out is not None
    assert abs(out[0] - 100.0) < 1e-9 and abs(out[1] - 1.6) < 1e-9
    assert _status(20.0, triggers).trigger_rate_hz > 300  # the average still says otherwise
    assert rates.update(_status(0.2, 10, "run_000002.h5")) is None  # another run starts afresh


def _reading(t: float, stage: float, setpoint: float = 77.0, heater: float = 30.0, ramping: bool = False):
    return TemperatureReading(t, stage, stage + 0.05, setpoint, heater, 2, ramping)


def test_cryostat_alarms_a_lost_hold_and_a_saturated_heater_not_a_cooldown() -> None:
    alarms = CryostatAlarms(CryostatSection(stable_band_k=0.1, interlock_band_k=1.0))
    assert alarms.update(_reading(0, 250.0, ramping=True)) == ""  # cooling down: far off, no alarm
    assert alarms.update(_reading(1, 80.0)) == ""  # settling: not yet held
    assert alarms.update(_reading(2, 77.02)) == ""  # held
    assert alarms.update(_reading(3, 77.6)) == ""  # inside the interlock band
    text = alarms.update(_reading(4, 79.5))
    assert "+2.500 K off the setpoint 77 K it held" in text
    assert alarms.update(_reading(5, 77.0)) == ""  # back
    assert alarms.update(_reading(6, 60.0, setpoint=150.0)) == ""  # a new setpoint: settling again
    assert alarms.update(_reading(10, 80.0, setpoint=150.0, heater=100.0)) == ""
    text = alarms.update(_reading(10 + HEATER_FULL_ALARM_S, 95.0, setpoint=150.0, heater=100.0))
    assert "heater at 100 % for 60 s" in text and "raise the range" in text
    assert alarms.update(_reading(80, 149.99, setpoint=150.0, heater=40.0)) == ""


def _hist(counts: list[int], under: int = 0, over: int = 0) -> Histogram:
    return Histogram(np.asarray(counts, np.int64), np.arange(len(counts) + 1, dtype=np.float64), under, over)


def test_a_view_reset_shows_what_came_after_and_leaves_the_run_whole() -> None:
    earlier = HistogramSnapshot(_hist([1, 2, 3]), _hist([0, 5]), _hist([4]), 12.0, 10)
    later = HistogramSnapshot(_hist([2, 2, 7], 1, 2), _hist([3, 5]), _hist([9]), 12.5, 19)
    since = later.since(earlier)
    np.testing.assert_array_equal(since.spe.counts, [1, 0, 4])
    assert (since.spe.underflow, since.spe.overflow) == (1, 2)
    np.testing.assert_array_equal(since.npe.counts, [3, 0])
    assert since.n_events == 9 and since.q_spe_adc_ns == 12.5
    np.testing.assert_array_equal(later.spe.counts, [2, 2, 7])  # untouched


def test_the_newest_readings_keep_their_extremes_after_downsampling() -> None:
    h = SeriesHistory(("stage_k",), capacity=200_000)
    for i in range(150_100):
        h.add(float(i), 77.0 if i != 150_097 else 95.0)  # a spike three readings old, in no full bucket
    out = h.arrays(max_points=2000)
    assert 95.0 in out["stage_k"] and out["time_s"][-1] == 150_099


class _NoInstruments:
    cryostat = hv = None

    def close(self) -> None:
        pass


def test_a_lasting_fault_is_kept_and_logged_once_and_its_end_noted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = RunConfig.model_validate({"run": {"output_dir": str(tmp_path)}})
    stand = TestStand(config, slow=_NoInstruments())  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="daq.stand"):
            stand._on_temperature(_reading(0, 77.0), "")  # held
            for t in range(1, 8):  # lost, with a different temperature in every reading's text
                stand._on_temperature(_reading(t, 79.0 + 0.1 * t), "")
            for _ in range(3):  # then silent: the alarm stands, the silence is a fault of its own
                stand._on_temperature(None, "Lake Shore 325: no reply within 1 s")
            stand._on_temperature(_reading(9, 77.0), "")
        faults = stand.snapshot().faults
        assert len(faults) == 2 and faults[0].startswith("cryostat: stage at 79.100 K")
        assert faults[1] == "Lake Shore 325: no reply within 1 s"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2
        assert (
            "fault over: cryostat hold" in caplog.text and "fault over: Lake Shore 325 silent" in caplog.text
        )
        assert stand.snapshot().cryostat_alarm == ""  # no instrument loop: nothing shown as current
    finally:
        stand.close()
