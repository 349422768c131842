"""The configurations shipped with the package: `daq run` without --config from any directory, `daq config init`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from daq.cli import main
from daq.config import load_config
from daq.config_init import SHIPPED_NAMES, shipped_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_the_shipped_configs_are_the_checkouts_config_files(name: str) -> None:
    path = shipped_config(name)
    assert path.parent.parent == ROOT / "daq"
    assert path.read_bytes() == (ROOT / "config" / name).read_bytes()


def test_config_init_writes_editable_copies_and_never_overwrites_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "stand" / "configs"
    assert main(["config", "init", str(target)]) == 0
    assert f"daq run --config {target / 'run.yaml'}" in capsys.readouterr().out
    for name in SHIPPED_NAMES:
        copy = target / name
        assert not copy.is_symlink() and copy.read_bytes() == (ROOT / "config" / name).read_bytes()
    assert load_config(target / "run.yaml").digitizer.simulated
    assert not load_config(target / "lab.yaml").digitizer.simulated
    edited = (target / "run.yaml").read_text().replace("events: 10000", "events: 500")
    (target / "run.yaml").write_text(edited)
    assert main(["config", "init", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.yaml exists already; nothing written: add --force" in err[0]
    assert (target / "run.yaml").read_text() == edited
    assert main(["config", "init", str(target), "--force"]) == 0
    assert (target / "run.yaml").read_bytes() == (ROOT / "config/run.yaml").read_bytes()


def test_config_init_into_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("")
    assert main(["config", "init", str(tmp_path / "x")]) == 2
    assert "a file, not a folder" in capsys.readouterr().err


def test_daq_run_without_config_runs_the_shipped_simulated_stand_from_any_directory(tmp_path: Path) -> None:
    """The shipped run.yaml with its cooldown and HV ramp (time-scaled simulators), output in ./runs of the cwd."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable,
        "-m",
        "daq.cli",
        "run",
        "--events",
        "50",
        "--sim-rate",
        "max",
        "--comment",
        "from /tmp",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr
    assert f"configuration: {shipped_config('run.yaml')} (no --config given)" in done.stderr
    path = tmp_path / "runs" / "run_000001.h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] and f.attrs["comment"] == "from /tmp"
        assert "cooldown_before_run: true" in f.attrs["config_yaml"]
        assert f["slow/temperature"].shape[0] > 0 and f["slow/hv"].shape[0] > 0
