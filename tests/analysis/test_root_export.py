"""`daq export --root`: runs from `daq run` on the simulator, exported, read back with uproot, every value compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import h5py
import hdf5plugin  # noqa: F401 - the waveforms are bitshuffle-LZ4
import numpy as np
import pytest
import uproot
import yaml

import analysis.root_export as root_export
from daq.cli import main
from tests.analysis.simulated_runs import make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run 1: one channel, with cooldown, HV and their series. Run 2: two channels, no slow control."""
    folder = tmp_path_factory.mktemp("runs")
    return make_run(folder, 300, 1, slow_control=True), make_run(folder, 200, 2, slow_control=False,
                                                                   second_channel=True, seed=5)  # fmt: skip


def _expected_peaks(f: h5py.File, col: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Counts per event and the flat values, gathered event by event straight from the HDF5 file."""
    n = f["events/n_peaks"][:, col]
    start = f["events/peak_offset"][:, col]
    flat = {
        name: np.concatenate([f[f"peaks/{name}"][a : a + k] for a, k in zip(start, n, strict=True)])
        for name in ("q", "t_start_ns", "t_end_ns")
    }
    return n, flat


def _check_run(root: uproot.ReadOnlyDirectory, h5: Path, suffix: str, waveforms: bool) -> None:
    with h5py.File(h5, "r") as f:
        tree = root[f"events{suffix}"]
        t = tree.arrays(library="ak")
        ev = f["events"]
        n = ev["timestamp_ns"].shape[0]
        assert tree.num_entries == n > 0
        assert np.array_equal(ak.to_numpy(t["Timestamp"]), ev["timestamp_ns"][:])
        assert t["Timestamp"].type.content.primitive == "uint64"
        assert np.array_equal(ak.to_numpy(t["TriggerID"]), ev["trigger_id"][:])
        channels = [int(c) for c in ev.attrs["channels"]]
        for col, ch in enumerate(channels):
            tag = "" if len(channels) == 1 else f"_ch{ch}"
            for branch, column in (("TotalQ", "total_q"), ("IntegralQ", "integral_q"),
                                   ("BaselineMean", "baseline"), ("BaselineSigma", "baseline_rms")):  # fmt: skip
                got = ak.to_numpy(t[branch + tag])
                assert got.dtype == np.float32 and np.array_equal(got, ev[column][:, col]), branch + tag
            counts, flat = _expected_peaks(f, col)
            assert np.array_equal(ak.to_numpy(t["NPeaks" + tag]), counts)
            for branch, name in (("PeakQ", "q"), ("TS", "t_start_ns"), ("TE", "t_end_ns")):
                assert np.array_equal(ak.to_numpy(ak.num(t[branch + tag])), counts)
                got = ak.to_numpy(ak.flatten(t[branch + tag]))
                assert got.dtype == flat[name].dtype and np.array_equal(got, flat[name]), branch + tag
            if waveforms:
                assert np.array_equal(ak.to_numpy(t["Waveform" + tag]), ev["waveform"][:, col, :])
            else:
                assert "Waveform" + tag not in tree
        for name in ("spe", "npe", "baseline_rms"):
            g, h = f[f"histograms/{name}"], root[f"h_{name}{suffix}"]
            flow = np.concatenate(([g.attrs["underflow"]], g["counts"][()], [g.attrs["overflow"]]))
            assert np.array_equal(h.values(flow=True), flow) and np.array_equal(
                h.axis().edges(), g["edges"][()]
            )
        for name in ("temperature", "hv"):
            series, slow = f[f"slow/{name}"][()], root[f"slow_{name}{suffix}"]
            assert slow.num_entries == series.size
            for field in series.dtype.names:
                got = slow[field].array(library="np")
                assert got.dtype == series.dtype[field] and np.array_equal(got, series[field]), field
        assert str(root[f"config{suffix}"]) == f.attrs["config_yaml"]
        info = yaml.safe_load(str(root[f"run_info{suffix}"]))
        assert info["/"]["run_number"] == f.attrs["run_number"] and info["/"]["complete"] is True
        assert info["/"]["comment"] == f.attrs["comment"] and info["counters"]["triggers"] == n
        assert info["events"]["channels"] == channels and info["source"]["events_exported"] == n
        assert str(root[f"log{suffix}"]).count("\n") == max(f["log"].shape[0] - 1, 0)
        if "provenance" in f:  # run files from format 2 on
            written = {
                k: v.item() if isinstance(v, np.generic) else v for k, v in f["provenance"].attrs.items()
            }
            assert yaml.safe_load(str(root[f"provenance{suffix}"])) == written
        else:
            assert f"provenance{suffix}" not in root


def test_export_of_one_run_round_trips_every_value(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(root_export, "CHUNK_EVENTS_WITH_WAVEFORMS", 64)  # chunk borders inside the run
    out = tmp_path / "run1.root"
    assert main(["export", str(runs[0]), "--root", str(out), "--waveforms"]) == 0
    with uproot.open(out) as root:
        assert {k.split(";")[0] for k in root.keys()} >= {"events", "h_spe", "h_npe", "h_baseline_rms",
                                                         "slow_temperature", "slow_hv", "config", "run_info"}  # fmt: skip
        assert root.classname_of("config") == "TObjString" and root.classname_of("h_spe") == "TH1D"
        assert root["slow_temperature"].num_entries > 0 and root["slow_hv"].num_entries > 0
        _check_run(root, runs[0], "", waveforms=True)
    assert not list(tmp_path.glob("*.partial"))


def test_export_of_two_runs_with_two_channels_round_trips(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(root_export, "CHUNK_EVENTS", 37)
    out = tmp_path / "both.root"
    assert main(["export", str(runs[0]), str(runs[1]), "--root", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        f"{runs[0]} -> {out}:events_run000001" in printed
        and f"{runs[1]} -> {out}:events_run000002" in printed
    )
    with uproot.open(out) as root:
        _check_run(root, runs[0], "_run000001", waveforms=False)
        _check_run(root, runs[1], "_run000002", waveforms=False)
        assert "PeakQ_ch1" in root["events_run000002"] and "PeakQ" in root["events_run000001"]


def test_missing_and_damaged_inputs_give_one_line_and_exit_2(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.root"
    missing = tmp_path / "run_000099.h5"
    assert main(["export", str(runs[0]), str(missing), "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"daq export: {missing}: no such run file"
    truncated = tmp_path / "run_000007.h5"
    shutil.copyfile(runs[0], truncated)
    with truncated.open("r+b") as fh:
        fh.truncate(truncated.stat().st_size // 2)
    assert main(["export", str(truncated), "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(truncated) in err and "truncated" in err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_unwritable_output_and_clashing_run_numbers_give_one_line(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "no such folder" / "out.root"
    assert main(["export", str(runs[0]), "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(out) in err and "writable folder" in err
    a_file = tmp_path / "plain"
    a_file.write_text("not a folder")
    assert main(["export", str(runs[0]), "--root", str(a_file / "out.root")]) == 2
    assert "writable folder" in capsys.readouterr().err
    copy = tmp_path / "copy_of_run_1.h5"
    shutil.copyfile(runs[0], copy)
    assert main(["export", str(runs[0]), str(copy), "--root", str(tmp_path / "x.root")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "both run 1" in err and str(copy) in err


def test_a_killed_run_exports_the_events_it_holds(runs: tuple[Path, Path], tmp_path: Path) -> None:
    killed = tmp_path / "run_000001.h5"
    shutil.copyfile(runs[0], killed)
    with h5py.File(killed, "r+") as f:  # as a kill leaves it: one dataset an append behind, no end record
        n = f["events/total_q"].shape[0]
        f["events/total_q"].resize(n - 7, axis=0)
        f.attrs["complete"] = False
        del f["histograms"], f["counters"]
    out = tmp_path / "killed.root"
    assert main(["export", str(killed), "--root", str(out)]) == 0
    with uproot.open(out) as root, h5py.File(killed, "r") as f:
        t = root["events"]
        assert t.num_entries == n - 7 and "h_spe" not in root
        assert np.array_equal(t["TotalQ"].array(library="np"), f["events/total_q"][:, 0])
        assert np.array_equal(t["Timestamp"].array(library="np"), f["events/timestamp_ns"][: n - 7])
        counts, flat = _expected_peaks(f, 0)
        assert np.array_equal(ak.to_numpy(ak.flatten(t["PeakQ"].array())), flat["q"][: counts[: n - 7].sum()])
        assert yaml.safe_load(str(root["run_info"]))["/"]["complete"] is False


def test_a_run_killed_before_its_first_event_gives_empty_trees(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    empty = tmp_path / "run_000001.h5"
    shutil.copyfile(runs[0], empty)
    with h5py.File(empty, "r+") as f:
        f["events/total_q"].resize(0, axis=0)
    out = tmp_path / "empty.root"
    assert main(["export", str(empty), "--root", str(out), "--waveforms"]) == 0
    with uproot.open(out) as root:
        assert root["events"].num_entries == 0
        assert {"PeakQ", "NPeaks", "TotalQ", "Waveform"} <= set(root["events"].keys())
