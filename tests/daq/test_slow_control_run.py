"""Runs with slow control: cooldown and HV first, /slow in the file, interlocks, the HV left safe on every exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from daq.config import RunConfig, load_config
from daq.engine import RunEngine
from daq.instruments import SlowControl
from daq.run_command import run
from daq.run_context import RunState
from daq.run_info import open_run_file
from daq.sequences import cooldown, hv_on
from drivers.ndt1470 import ChannelStatus
from simulators.line_servers import TcpServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, events: int | None = 2000, **sections: dict) -> RunConfig:
    data = load_config(ROOT / "config/run.yaml").model_dump()
    data["run"].update({"output_dir": str(tmp_path), "events": events})
    data["simulation"].update({"pace": "realtime", "rate_hz": 1000, "seed": 7})
    data["cryostat"].update({"time_scale": 2000, "poll_period_s": 0.4, "stable_hold_s": 60})
    data["hv"].update({"time_scale": 50})
    for name, values in sections.items():
        data[name].update(values)
    return RunConfig.model_validate(data)


def _stand(cfg: RunConfig) -> SlowControl:
    slow = SlowControl(cfg)
    assert slow.cryostat is not None and slow.hv is not None
    cooldown(slow.cryostat, cfg.cryostat)
    hv_on(slow.hv, cfg.hv)
    return slow


def _run(cfg: RunConfig, slow: SlowControl, during=None) -> RunEngine:
    engine = RunEngine(cfg, slow=slow)
    engine.start()
    if during is not None:
        during(engine)
    assert engine.wait(timeout_s=120)
    return engine


def test_a_run_records_temperature_and_hv_and_ends_with_the_hv_down(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=3000)
    slow = _stand(cfg)
    try:
        engine = _run(cfg, slow)
    finally:
        slow.close()
    assert (
        slow.hv_sim is not None and slow.hv_sim.channels[0].vmon_v == 0.0 and not slow.hv_sim.channels[0].on
    )
    status = engine.status()
    assert status.state is RunState.DONE
    with open_run_file(status.path) as f:
        assert f.attrs["complete"]
        started = datetime.fromisoformat(f.attrs["started_at"]).timestamp()
        everything = f["slow/temperature"][:]
        assert everything["stage_k"][0] > 150  # the cooldown before the run is in the file too
        temps = everything[everything["time_s"] > started]
        hv = f["slow/hv"][:]
        hv = hv[hv["time_s"] > started]
        assert len(temps) >= 2 and len(hv) >= 10  # the Lake Shore is polled every ~0.7 s, the HV every 0.02 s
        assert np.all(np.abs(temps["stage_k"] - 77.0) < 0.1) and np.all(temps["setpoint_k"] == 77.0)
        assert np.all(np.abs(hv["vmon_v"] - 1500.0) < 5.0) and np.all(hv["status"] & int(ChannelStatus.ON))
        assert np.all(np.diff(everything["time_s"]) > 0)


def test_an_hv_trip_mid_run_stops_the_run_and_the_file_says_why(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=None, hv={"trip_s": 0.5})
    slow = _stand(cfg)

    def trip(engine: RunEngine) -> None:
        while engine.status().counters.written < 300:
            time.sleep(0.05)
        slow.hv_sim.inject_current_ua(0, 500.0)

    try:
        engine = _run(cfg, slow, trip)
    finally:
        slow.close()
    status = engine.status()
    assert status.state is RunState.DONE and status.stop_reason.startswith("interlock: HV channel 0")
    assert "OVC" in status.stop_reason or "TRIP" in status.stop_reason
    with open_run_file(status.path) as f:
        assert f.attrs["complete"] and f.attrs["stop_reason"] == status.stop_reason
        messages = [m.decode() for m in f["log"]["message"]]
        assert any("interlock (hv)" in m and "stopping the run" in m for m in messages)
    assert slow.hv_sim.channels[0].vmon_v == 0.0


def test_a_pause_on_trip_resumes_when_the_hv_is_back(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=2500, hv={"trip_s": 0.5, "interlock_action": "pause"})
    slow = _stand(cfg)

    def trip_then_recover(engine: RunEngine) -> None:
        while engine.status().counters.written < 300:
            time.sleep(0.05)
        slow.hv_sim.inject_current_ua(0, 500.0)
        while not engine.ctx.paused.is_set():
            time.sleep(0.05)
        read_at_pause = engine.status().counters.read
        time.sleep(0.5)
        assert engine.status().counters.read - read_at_pause < 300  # not taking data while paused
        slow.hv_sim.inject_current_ua(0, 0.0)
        hv_on(slow.hv, cfg.hv)  # the physicist switches the channel on again

    try:
        engine = _run(cfg, slow, trip_then_recover)
    finally:
        slow.close()
    status = engine.status()
    assert status.state is RunState.DONE and status.counters.read >= 2500
    with open_run_file(status.path) as f:
        messages = [m.decode() for m in f["log"]["message"]]
        assert any(m.startswith("run paused: interlock (hv)") for m in messages)
        assert any(m.startswith("run resumed") for m in messages)
        stamps = f["events/timestamp_ns"][:].astype(np.int64)
        assert np.all(np.diff(stamps) > 0)  # the board's clock restarted after the pause: offset applied
        ids = f["events/trigger_id"][:].astype(np.int64)
        assert np.all(np.diff(ids) >= 1)  # so did its trigger counter
        c = f["counters"].attrs
        assert c["triggers"] == c["events_written"] + c["events_lost"]


def test_the_stage_leaving_its_band_stops_the_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=None)
    slow = _stand(cfg)

    def front_panel_setpoint(engine: RunEngine) -> None:
        while engine.status().counters.written < 200:
            time.sleep(0.05)
        slow.cryo_sim.handle("SETP 1,90.0")  # someone changes the setpoint on the controller

    try:
        engine = _run(cfg, slow, front_panel_setpoint)
    finally:
        slow.close()
    assert engine.status().stop_reason == "interlock: controller setpoint changed to 90 K, the run needs 77 K"


def test_the_stage_warming_out_of_its_band_stops_the_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=None)
    slow = _stand(cfg)

    def cooler_fails(engine: RunEngine) -> None:
        while engine.status().counters.written < 200:
            time.sleep(0.05)
        slow.cryo_sim.set_cooler(False)  # the cryocooler stops: the stage warms through its band

    try:
        engine = _run(cfg, slow, cooler_fails)
    finally:
        slow.close()
    status = engine.status()
    assert status.stop_reason.startswith("interlock: stage at 78.") or status.stop_reason.startswith(
        "interlock: stage at 79."
    ), status.stop_reason
    assert status.stop_reason.endswith("K, outside 77 +- 1 K")
    with open_run_file(status.path) as f:
        assert f.attrs["complete"] and f.attrs["stop_reason"] == status.stop_reason
        temps = f["slow/temperature"][:]
        assert temps["stage_k"].max() > 78.0


def test_an_hv_supply_silent_before_the_run_starts_is_caught_once_it_runs(tmp_path: Path) -> None:
    cfg = _config(tmp_path, events=None)
    slow = _stand(cfg)
    assert slow.hv_sim is not None and slow.hv is not None
    slow.hv_sim.drop_replies = 10**9  # the link dies between the ramp-up and the run
    deadline = time.monotonic() + 30
    while not slow.hv.faulted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.hv.faulted, "the HV loop never noticed the silence"
    try:
        engine = _run(cfg, slow)
    finally:
        slow.hv_sim.drop_replies = 0  # the link comes back: the ramp-down at close can go through
        slow.close()
    assert engine.status().stop_reason.startswith("interlock: HV supply silent: NDT1470")
    slow.hv_sim.advance()
    assert not slow.hv_sim.channels[0].on


@pytest.fixture
def external_hv() -> tuple[Ndt1470Simulator, str]:
    sim = Ndt1470Simulator(Ndt1470Options(), time_scale=50)
    with TcpServer(sim) as server:
        yield sim, f"socket://{server.address}"


def _yaml_with_external_hv(tmp_path: Path, port: str, **extra: str) -> Path:
    text = (ROOT / "config/run.yaml").read_text()
    text = text.replace("  port: /dev/ttyACM0", f"  port: {port}")
    hv_block = text.index("hv:")
    text = text[:hv_block] + text[hv_block:].replace("  simulate: true", "  simulate: false", 1)
    text = text.replace("  poll_period_s: 1.0\n  on_before_run", "  poll_period_s: 0.2\n  on_before_run")
    text = text.replace("time_scale: 20            # simulator only", "time_scale: 50")
    for old, new in extra.items():
        text = text.replace(old, new)
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_leaves_the_hv_ramped_down(tmp_path: Path, external_hv, signum: int) -> None:
    sim, port = external_hv
    path = _yaml_with_external_hv(tmp_path, port, **{
        "events: 10000": "events: null",
        "cooldown_before_run: true": "cooldown_before_run: false",
        "interlock_action: stop    # stop, pause or ignore": "interlock_action: ignore",  # the cryostat stays warm
    })  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daq.cli", "run", "--config", str(path), "--output", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (sim.channels[0].on and sim.channels[0].vmon_v > 1490) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the run is going
    assert sim.channels[0].vmon_v > 1490, proc.communicate(timeout=5)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"{signal.Signals(signum).name} received" in out and "HV channel 0 ramped down (safe state)" in out
    sim.advance()
    assert not sim.channels[0].on and sim.channels[0].vmon_v == 0.0


def test_an_exception_leaves_the_hv_ramped_down(tmp_path: Path, external_hv, capsys) -> None:
    sim, port = external_hv
    path = _yaml_with_external_hv(tmp_path, port, **{"url: sim://dt5751 ": "url: sim://dt5751?bogus=1 ",
                                                     "cooldown_before_run: true": "cooldown_before_run: false"})  # fmt: skip
    assert run(str(path), output_dir=str(tmp_path / "runs")) == 2  # the digitizer cannot start
    assert "HV channel 0 ramped down (safe state)" in capsys.readouterr().out
    sim.advance()
    assert not sim.channels[0].on and sim.channels[0].vmon_v == 0.0
    assert any(ch.status & ChannelStatus.ON for ch in sim.channels) is False
