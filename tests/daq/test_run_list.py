"""`daq runs`: one line per run file from attributes only, a killed run listed and marked, bad files one line each."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from analysis import run_schema
from analysis.run_file_open import open_for_reading
from daq.cli import main
from daq.config import RunConfig, config_yaml
from daq.run_list import CSV_COLUMNS, RECENT_WRITE_S, _setpoints, list_runs, read_row, write_table

ROOT = Path(__file__).resolve().parents[2]
COMMENT = "Am-241, 77 K, PMT at -1500 V"

# A run of the simulated stand that never ends by itself; the test kills it with SIGKILL mid-run.
_ENDLESS_RUN = """
import sys, threading
from daq.config import RunConfig
from daq.engine import RunEngine
data = RunConfig().model_dump()
data["run"].update(output_dir=sys.argv[1], events=None, slow_control=False, comment="killed on purpose")
data["simulation"].update(pace="realtime", rate_hz=1000, seed=7)
RunEngine(RunConfig.model_validate(data)).start()
threading.Event().wait(120)
"""


def _events_seen(path: Path) -> int:
    try:
        with open_for_reading(path) as f:
            return run_schema.events_recorded(f)
    except (OSError, KeyError, ValueError):
        return 0  # the file is still being created


def _killed_run(folder: Path) -> Path:
    """A real run killed with SIGKILL after a reader saw at least 100 of its events in the file."""
    before = set(folder.glob("run_*.h5"))
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENDLESS_RUN, str(folder)], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        path = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            new = set(folder.glob("run_*.h5")) - before
            if new:
                path = new.pop()
                if _events_seen(path) >= 100:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the run in {folder} did not reach 100 events")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert path is not None
    return path


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """run 1 complete (daq run --comment), run 2 killed, run 3 empty, run 4 a PNG, run 5 a fault, a foreign file."""
    folder = tmp_path_factory.mktemp("runs")
    cfg = folder.parent / "run.yaml"
    cfg.write_text(
        (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    )
    argv = ["run", "--config", str(cfg), "--events", "50", "--sim-rate", "max", "--output", str(folder)]
    assert main([*argv, "--comment", COMMENT]) == 0
    assert _killed_run(folder).name == "run_000002.h5"
    (folder / "run_000003.h5").write_bytes(b"")
    shutil.copyfile(ROOT / "docs/gui_mid_run.png", folder / "run_000004.h5")
    shutil.copyfile(folder / "run_000001.h5", folder / "run_000005.h5")
    with h5py.File(folder / "run_000005.h5", "r+") as f:
        f.attrs.update(run_number=5, complete=False, stop_reason="fault: digitizer link lost")
    with h5py.File(folder / "other_program.h5", "w") as f:
        f["spectrum"] = np.arange(10)
    old_s = time.time() - 3600  # the killed run's last write an hour ago: not a run in progress
    os.utime(folder / "run_000002.h5", (old_s, old_s))
    return folder


def test_comment_is_stored_as_the_root_attribute(runs_dir: Path) -> None:
    with h5py.File(runs_dir / "run_000001.h5", "r") as f:
        assert f.attrs["comment"] == COMMENT and f.attrs["complete"]


def test_table_lists_every_file_in_run_order_with_the_killed_run_marked(
    runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", str(runs_dir)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["run", "start", "(local)"] and len(lines) == 7
    with h5py.File(runs_dir / "run_000001.h5", "r") as f:
        written = int(f["counters"].attrs["events_written"])
    first = lines[1].split()
    assert first[0] == "1" and first[4] == str(written) and first[5] == "0" and lines[1].endswith(COMMENT)
    assert "complete" in first and first[6] == "-"  # no slow control: no setpoints shown
    killed = lines[2].split()
    assert killed[0] == "2" and "killed" in killed and lines[2].endswith("killed on purpose")
    assert int(killed[4]) >= 100 and killed[5] == "-"  # the events the file holds; lost unknown
    assert lines[3].startswith("     ?  unreadable:") and "run_000003.h5: empty file" in lines[3]
    assert "run_000004.h5" in lines[4] and "PNG" in lines[4]
    assert lines[5].split()[0] == "5" and "fault (digitizer link lost)" in lines[5]
    assert "other_program.h5: an HDF5 file but not a run file" in lines[6]


def test_csv_has_a_header_and_one_record_per_file(runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(runs_dir), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["file"] for r in rows] == [
        "run_000001.h5", "run_000002.h5", "run_000003.h5", "run_000004.h5", "run_000005.h5", "other_program.h5",
    ]  # fmt: skip
    assert [r["status"] for r in rows] == [
        "complete",
        "killed",
        "unreadable",
        "unreadable",
        "fault",
        "unreadable",
    ]
    complete, killed = rows[0], rows[1]
    assert complete["comment"] == COMMENT and complete["stop_reason"] == "event count reached (50)"
    assert float(complete["duration_s"]) > 0 and complete["temperature_setpoint_k"] == ""
    with open_for_reading(runs_dir / "run_000002.h5") as f:
        assert int(killed["events"]) == run_schema.events_recorded(f) and killed["lost"] == ""
    assert killed["stop_reason"] == "" and "empty file" in rows[2]["stop_reason"]


def test_a_killed_run_written_to_just_now_is_running_and_later_killed(runs_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "run_000002.h5"
    shutil.copyfile(runs_dir / "run_000002.h5", path)  # a fresh modification time
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")  # never closed: only SWMR reads it
    modified_s = path.stat().st_mtime
    now = read_row(path, now_s=modified_s + 1.0)
    later = read_row(path, now_s=modified_s + RECENT_WRITE_S + 1.0)
    assert (now.status, later.status) == ("running", "killed")
    assert later.started is not None and later.duration_s is not None
    assert later.duration_s == pytest.approx(modified_s - later.started.timestamp(), abs=1e-3)
    out = io.StringIO()
    write_table([later], out)
    assert " ~" in out.getvalue()  # an estimate: up to the last write


def test_no_dataset_is_read(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("daq runs read a dataset")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    rows = list_runs(runs_dir)
    assert [r.status for r in rows][:2] == ["complete", "killed"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, (77.0, -1500.0)),
        ({"cryostat": {"setpoint_k": 20.5}, "hv": {"voltage_v": -1400.0}}, (20.5, -1400.0)),
        ({"run": {"slow_control": False}}, (None, None)),
    ],
)
def test_setpoints_come_from_the_stored_configuration(
    changes: dict[str, dict[str, object]], expected: tuple[float | None, float | None]
) -> None:
    data = RunConfig().model_dump()
    for section, values in changes.items():
        data[section].update(values)
    text = config_yaml(RunConfig.model_validate(data))
    assert _setpoints(text) == expected
    parsed = yaml.safe_load(text)
    if expected[0] is not None:
        assert expected == (parsed["cryostat"]["setpoint_k"], parsed["hv"]["voltage_v"])


def test_a_missing_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope: no such folder" in err[0]


def test_an_empty_folder_lists_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "no run files (*.h5)" in captured.err
