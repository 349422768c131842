"""Truncated, empty, foreign and damaged files: `daq info`, `replay` and `analyze` say what is wrong in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from daq.cli import main
from daq.config import RunConfig
from daq.engine import RunEngine
from daq.run_info import describe_run

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("info", "replay", "analyze")


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short simulated run (60 events of the default 8001-sample records)."""
    data = RunConfig().model_dump()
    data["run"].update(output_dir=str(tmp_path_factory.mktemp("run")), events=60, slow_control=False)
    data["simulation"].update(pace="max", seed=5)
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    assert engine.wait(timeout_s=60)
    path = engine.status().path
    assert path is not None and "complete   : True" in describe_run(path)
    return path


def _truncated(run_file: Path, where: Path) -> Path:
    path = where / "run_000001.h5"
    shutil.copyfile(run_file, path)
    os.truncate(path, path.stat().st_size - 4096)
    return path


def _damaged(run_file: Path, where: Path) -> Path:
    """The run file with its root group's object header overwritten (its address from the v3 superblock)."""
    path = where / "run_000002.h5"
    shutil.copyfile(run_file, path)
    with path.open("r+b") as f:
        head = f.read(48)
        assert head[8] == 3 and head[9] == 8  # superblock v3, 8-byte addresses
        root = int.from_bytes(head[36:44], "little")
        f.seek(root)
        f.write(np.random.default_rng(3).integers(0, 256, 64, dtype=np.uint8).tobytes())
    return path


def _foreign(where: Path) -> Path:
    path = where / "other_program.h5"
    with h5py.File(path, "w") as f:
        f["spectrum"] = np.arange(10)
    return path


def _empty(where: Path) -> Path:
    path = where / "run_000003.h5"
    path.write_bytes(b"")
    return path


def _png(where: Path) -> Path:
    path = where / "run_000004.h5"
    shutil.copyfile(ROOT / "docs/gui_mid_run.png", path)
    return path


def _argv(command: str, path: Path) -> list[str]:
    return [command, str(path)]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_run_file_truncated_by_4_kb_is_reported_in_one_line_without_hanging(
    run_file: Path, tmp_path: Path, command: str
) -> None:
    path = _truncated(run_file, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "daq.cli", *_argv(command, path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,  # before the fix: more than 10 minutes (SWMR metadata retries)
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    size = path.stat().st_size
    assert f"{path}: file is truncated (expected {size + 4096} bytes, found {size})" in lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_empty, "empty file (0 bytes)"),
        (_png, "cannot be opened as an HDF5 run file (it is a PNG image)"),
        (_foreign, "an HDF5 file but not a run file of this program"),
        (_damaged, "damaged"),
    ],
    ids=["empty", "png", "foreign-hdf5", "damaged"],
)
def test_unreadable_files_give_one_line_naming_the_file(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, make, says: str
) -> None:
    path = make(run_file, tmp_path) if make is _damaged else make(tmp_path)
    capsys.readouterr()
    assert main(_argv(command, path)) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"daq {command}: {path}") and says in lines[0], lines[0]


def test_info_reports_each_unreadable_file_and_still_summarises_the_good_one(
    run_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, truncated = _empty(tmp_path), _truncated(run_file, tmp_path)
    assert main(["info", str(empty), str(run_file), str(truncated)]) == 2
    captured = capsys.readouterr()
    assert "complete   : True" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and "empty file" in lines[0] and "file is truncated" in lines[1]


def test_a_killed_run_is_still_read_through_swmr(run_file: Path, tmp_path: Path) -> None:
    """A file whose writer died keeps HDF5's 'open for writing' flags: the plain open fails, SWMR reads it."""
    path = tmp_path / "run_000009.h5"
    shutil.copyfile(run_file, path)
    kill_the_writer = (
        "import h5py, os, sys; f = h5py.File(sys.argv[1], 'r+', libver='latest'); f.swmr_mode = True; "
        "f.flush(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", kill_the_writer, str(path)], check=True, timeout=60)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    summary = describe_run(path)
    assert "events     : 60" in summary or "events     : 6" in summary
