"""`daq run` leaving the HV: an unconfirmed ramp-down gives exit 4 and `hv_safe_state` in the run file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import h5py
import pytest
import yaml

from daq.run_command import HV_NOT_SAFE_EXIT, run
from simulators.line_servers import TcpServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator

ROOT = Path(__file__).resolve().parents[2]


def _yaml(tmp_path: Path, **hv: object) -> Path:
    """config/run.yaml without the cooldown, a short fast run, and these hv settings."""
    config = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    config["run"].update(events=300, output_dir=str(tmp_path / "runs"))
    config["simulation"].update(seed=3, rate_hz=1000)
    config["cryostat"].update(cooldown_before_run=False, interlock_action="ignore")
    config["hv"].update(
        {"ramp_up_v_per_s": 500, "time_scale": 50, "poll_period_s": 0.2, "interlock_action": "ignore", **hv}
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _attrs(tmp_path: Path) -> dict[str, object]:
    with h5py.File(tmp_path / "runs" / "run_000001.h5", "r") as f:
        return dict(f.attrs)


def test_a_ramp_down_too_slow_to_confirm_exits_4_with_the_data_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 V/s from 1500 V cannot end within the 20 s the configuration allows the ramp
    path = _yaml(tmp_path, ramp_down_v_per_s=1, ramp_timeout_s=20)
    assert run(str(path)) == HV_NOT_SAFE_EXIT == 4
    out = capsys.readouterr().out
    assert "NOT CONFIRMED" in out and "check the supply" in out
    attrs = _attrs(tmp_path)
    assert attrs["complete"]  # the data are whole; the HV is a separate matter
    state = str(attrs["hv_safe_state"])
    assert state.startswith("not confirmed: ") and "did not reach 0 V" in state, state


def test_a_supply_that_stops_answering_exits_4_and_says_so_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Ndt1470Simulator(Ndt1470Options(), time_scale=50)
    with TcpServer(sim) as server:
        path = _yaml(tmp_path, simulate=False, port=f"socket://{server.address}")
        config = yaml.safe_load(path.read_text())
        config["run"]["events"] = 2000
        path.write_text(yaml.safe_dump(config))

        def go_silent() -> None:  # once the PMT is biased and the run is going, the supply says nothing
            deadline = time.monotonic() + 60
            while sim.channels[0].vmon_v < 1490 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            sim.drop_replies = 10**9

        silencer = threading.Thread(target=go_silent, daemon=True)
        silencer.start()
        code = run(str(path))
        silencer.join(5)
    assert code == HV_NOT_SAFE_EXIT
    assert "NOT CONFIRMED" in capsys.readouterr().out
    attrs = _attrs(tmp_path)
    assert str(attrs["hv_safe_state"]).startswith("not confirmed: NDT1470")
    # the OFF reached the unit, but with every reply lost nothing could confirm it: exit 4 is right
    assert not sim.channels[0].on


def test_a_confirmed_ramp_down_exits_0_and_is_recorded(tmp_path: Path) -> None:
    assert run(str(_yaml(tmp_path))) == 0
    attrs = _attrs(tmp_path)
    assert attrs["complete"] and attrs["hv_safe_state"] == "confirmed: channel 0 ramped down to 0 V"
