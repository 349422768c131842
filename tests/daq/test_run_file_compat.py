"""A `daq run` file reads completely with HDF5 1.10-1.14 (h5dump 1.10 or h5py 3.11), the waveforms with the
plugin path set, all else without; SWMR readers still follow a run; format versions are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import yaml

from analysis import run_schema as schema
from analysis.run_file_open import UnreadableRunFile, open_for_reading
from daq.cli import main
from daq.config import RunConfig, load_config
from daq.engine import RunEngine
from daq.run_info import describe_run
from tests.daq.old_hdf5 import OldReader, find_old_reader

ROOT = Path(__file__).resolve().parents[2]
_IN_CI = os.environ.get("CLOVERS_REQUIRE_SHARED") == "1"  # set by .ci/run: no reader there is a failure


def _fast_stand_yaml(tmp_path: Path, events: int) -> Path:
    data = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    data["run"].update({"output_dir": str(tmp_path), "events": events})
    data["simulation"].update({"pace": "max", "seed": 11})
    data["cryostat"].update({"time_scale": 2000, "poll_period_s": 0.4, "stable_hold_s": 60})
    data["hv"].update({"time_scale": 50})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `daq run` of the simulated stand (cooldown, HV, slow control), 400 events."""
    where = tmp_path_factory.mktemp("compat")
    argv = ["run", "--config", str(_fast_stand_yaml(where, 400))]
    saved, sys.argv = (
        sys.argv,
        ["daq", *argv],
    )  # as the console script sees it (the provenance's command line)
    try:
        assert main(argv) == 0
    finally:
        sys.argv = saved
    return where / "run_000001.h5"


@pytest.fixture(scope="module")
def old_reader() -> OldReader:
    reader = find_old_reader()
    if reader is None:
        message = "no HDF5 1.10-1.14 reader: install hdf5-tools (h5dump) or let pip fetch h5py 3.11.0"
        pytest.fail(message) if _IN_CI else pytest.skip(message)
    return reader


def _datasets(path: Path) -> dict[str, h5py.Dataset]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return found


def test_every_dataset_but_the_waveforms_reads_with_hdf5_1_10_without_the_plugin(
    run_file: Path, old_reader: OldReader
) -> None:
    current = _datasets(run_file)
    assert {
        "events/total_q",
        "peaks/q",
        "slow/temperature",
        "slow/hv",
        "log",
        "histograms/spe/counts",
    } <= set(current)
    assert current["slow/temperature"].size and current["slow/hv"].size and current["peaks/q"].size
    arrays, errors = old_reader.read(run_file, {n: a.dtype for n, a in current.items()}, plugin_dir=None)
    assert set(errors) == {"events/waveform"}, f"{old_reader.library}: {errors}"
    for name, value in current.items():
        if name != "events/waveform":
            np.testing.assert_array_equal(arrays[name].reshape(value.shape), value, err_msg=name)


def test_the_waveforms_read_with_hdf5_1_10_and_the_plugin_path(run_file: Path, old_reader: OldReader) -> None:
    with h5py.File(run_file, "r") as f:
        waveform = f["events/waveform"][()]
    arrays, errors = old_reader.read(run_file, {"events/waveform": waveform.dtype}, hdf5plugin.PLUGIN_PATH)
    assert not errors, f"{old_reader.library}: {errors}"
    np.testing.assert_array_equal(arrays["events/waveform"].reshape(waveform.shape), waveform)


def test_the_old_reader_really_is_old_it_refuses_a_latest_format_file(
    tmp_path: Path, old_reader: OldReader
) -> None:
    """The control: what this program wrote before (libver latest, HDF5 2.0) the old library cannot read."""
    path = tmp_path / "latest.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("x", data=np.arange(100), chunks=(10,), maxshape=(None,), compression="gzip")
    arrays, errors = old_reader.read(path, {"x": np.dtype(np.int64)}, plugin_dir=None)
    assert "x" in errors and "x" not in arrays


def test_layout_filters_and_units_follow_the_schema(run_file: Path) -> None:
    with h5py.File(run_file, "r") as f:
        assert f.attrs["format_version"] == schema.FORMAT_VERSION and schema.format_version(f) == 2
        for spec in schema.GROWING_DATASETS:
            ds = f[spec.path]
            assert ds.dtype == spec.dtype and ds.maxshape[0] is None, spec.path
            assert schema.units_of(ds) == schema.units_attribute(spec), spec.path
            builtin = set(ds._filters) <= {"shuffle", "gzip"}
            assert builtin == (spec is not schema.WAVEFORM), (spec.path, ds._filters)
        assert f["events/total_q"].attrs["units"] == "ADC*ns" and f["histograms/spe/edges"].attrs["units"]
        prov = schema.provenance(f)
        assert prov["software_version"] == f.attrs["software_version"] and prov["hdf5_version"]
        assert prov["command_line"].startswith("daq run --config") and prov["lmfit_version"] and prov["host"]


_FOLLOWER = """
import json, sys, time
import h5py
from analysis import run_schema as schema
from analysis.run_file_open import open_for_reading
seen = []
with open_for_reading(sys.argv[1]) as f:
    swmr = bool(f.id.get_intent() & h5py.h5f.ACC_SWMR_READ)
    ds = schema.events_dataset(f, "total_q")
    deadline = time.monotonic() + 60
    while len(set(seen)) < 4 and time.monotonic() < deadline:
        ds.refresh()
        seen.append(ds.shape[0])
        time.sleep(0.05)
print(json.dumps({"swmr": swmr, "seen": seen}))
"""


def test_a_swmr_reader_follows_a_run_being_written(tmp_path: Path) -> None:
    """Another process (as daq info, a GUI, a replay) opens the run in SWMR mode and sees it grow."""
    data = load_config(ROOT / "config/run.yaml").model_dump()
    data["run"].update({"output_dir": str(tmp_path), "events": 3000, "slow_control": False})
    data["simulation"].update({"pace": "realtime", "rate_hz": 1000, "seed": 5})
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    try:
        while engine.status().path is None or not engine.status().path.exists():
            assert not engine.wait(timeout_s=0.05)
        path = engine.status().path
        done = subprocess.run(
            [sys.executable, "-c", _FOLLOWER, str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        assert engine.wait(timeout_s=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    seen = report["seen"]
    assert report["swmr"] and seen == sorted(seen) and any(0 < n < 3000 for n in seen), report  # it grew
    with open_for_reading(path) as f:
        assert f.attrs["complete"] and schema.events_recorded(f) >= 3000


def test_an_older_file_reads_and_a_newer_one_is_refused(run_file: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "run_000002.h5", tmp_path / "run_000003.h5"
    for path, version in ((old, "1.0"), (new, schema.FORMAT_VERSION + 1)):
        path.write_bytes(run_file.read_bytes())
        with h5py.File(path, "r+") as f:
            f.attrs["format_version"] = version
    assert "format_version 1," in describe_run(old)
    with pytest.raises(UnreadableRunFile, match=r"run file format 3 is newer than this program reads"):
        describe_run(new)
    assert main(["info", str(new)]) == 2


def test_info_shows_the_version_and_the_format(run_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(run_file)]) == 0
    out = capsys.readouterr().out
    assert "format_version 2," in out and "software 0.1.0" in out


def _as_format_1(source: Path, target: Path) -> None:
    """Rewrite a run file as the writer wrote it before format 2: libver latest, bitshuffle-LZ4 on every
    dataset, `unit` attributes, format_version "1.0", no /provenance."""
    with h5py.File(source, "r") as a, h5py.File(target, "w", libver="latest") as b:
        b.attrs.update({k: v for k, v in a.attrs.items()} | {"format_version": "1.0"})

        def copy(name: str, obj: h5py.Group | h5py.Dataset) -> None:
            if name.startswith(schema.PROVENANCE):
                return
            if isinstance(obj, h5py.Group):
                b.require_group(name).attrs.update(obj.attrs)
                return
            data = obj[()]
            ds = b.create_dataset(name, data=data, chunks=True, maxshape=(None, *data.shape[1:]),
                                  **hdf5plugin.Bitshuffle(cname="lz4"))  # fmt: skip
            ds.attrs.update({("unit" if k == "units" else k): v for k, v in obj.attrs.items()})

        a.visititems(copy)


def test_a_format_1_file_is_read_by_info_analysis_and_replay(run_file: Path, tmp_path: Path) -> None:
    from analysis.run_data import load_run_file
    from simulators.replay_runfile import RunFileSource

    old = tmp_path / "run_000001.h5"
    _as_format_1(run_file, old)
    with h5py.File(old, "r") as f:
        assert schema.format_version(f) == 1 and not schema.provenance(f)
        assert schema.units_of(f["events/total_q"]) == "ADC*ns"
    assert "format_version 1," in describe_run(old)
    new_data, old_data = load_run_file(run_file), load_run_file(old)
    np.testing.assert_array_equal(old_data.total_q, new_data.total_q)
    np.testing.assert_array_equal(old_data.peak_q, new_data.peak_q)
    source = RunFileSource(old, follow=False)
    try:
        chunk = source.read(50)
        with h5py.File(run_file, "r") as f:
            np.testing.assert_array_equal(chunk.waveforms, f["events/waveform"][:50])
        assert source.slow is not None and len(source.slow.temperature)
    finally:
        source.close()
