"""`daq sim`, `daq hv` and `daq cooldown` from the command line, against the simulators."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daq.cli import main
from drivers.lakeshore325 import LakeShore325
from drivers.ndt1470 import Ndt1470

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("instrument", "pattern"),
    [("ndt1470", r"socket://127\.0\.0\.1:\d+"), ("lakeshore325", r"ASRLsocket://127\.0\.0\.1:\d+::INSTR")],
)
def test_daq_sim_serves_a_simulator_that_any_client_can_use(instrument: str, pattern: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daq.cli", "sim", instrument, "--time-scale", "10"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        address = re.search(pattern, line).group(0)
        if instrument == "ndt1470":
            with Ndt1470(address, timeout_s=1.0) as hv:
                assert hv.board_value("BDNAME") == "NDT1470"
        else:
            with LakeShore325(address) as ls:
                assert ls.identify().startswith("LSCI,MODEL325")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_daq_sim_pty_for_the_hv() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "daq.cli", "sim", "ndt1470", "--pty"], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        path = re.search(r"/dev/pts/\d+", proc.stdout.readline()).group(0)
        with Ndt1470(path, timeout_s=1.0) as hv:
            assert hv.get(0, "POL") == "-"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_daq_hv_and_daq_cooldown_on_the_simulated_stand(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "config/run.yaml")
    assert main(["hv", "--config", config, "set", "-1200"]) == 0
    out = capsys.readouterr().out
    vmon = float(re.search(r"HV channel 0: VSET 1200 V, VMON ([\d.]+) V", out).group(1))
    assert abs(vmon - 1200) <= 5.0, out  # the ramp is done within the driver's tolerance
    assert main(["hv", "--config", config, "status"]) == 0
    assert "VMON 0 V" in capsys.readouterr().out  # a fresh simulator each time
    assert main(["hv", "--config", config, "set"]) == 2
    assert "needs a voltage" in capsys.readouterr().err
    assert main(["hv", "--config", config, "set", "-5000"]) == 2
    assert "VSET 5000 V refused before sending" in capsys.readouterr().err
    assert main(["cooldown", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "stable: stage 77.0" in out or "stable: stage 76.9" in out
