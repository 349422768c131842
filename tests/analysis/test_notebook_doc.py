"""docs/notebook.md runs: its python blocks, in order, against a fresh simulated run; and the Run object's parts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import matplotlib
import numpy as np
import pytest

import analysis
from analysis.run_file_open import UnreadableRunFile
from tests.analysis.simulated_runs import ROOT, make_run

DOC = ROOT / "docs/notebook.md"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding runs/run_000001.h5, as the doc's examples expect (with slow control)."""
    folder = tmp_path_factory.mktemp("notebook")
    make_run(folder / "runs", 300, 1, slow_control=True, seed=11)
    return folder


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_docs_python_blocks_run(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib.use("Agg")
    monkeypatch.chdir(run_dir)
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"__name__": "notebook"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback points into it
            pytest.fail(f"{DOC.name}: python block {i + 1} failed: {exc!r}\n{block}")


def test_the_block_extractor_sees_every_block() -> None:
    text = "x\n```python\na = 1\n```\n```\nnot python\n```\n```python\nb = a + 1\n```\n"
    assert _python_blocks(text) == ["a = 1\n", "b = a + 1\n"]


def test_run_arrays_equal_the_file(run_dir: Path) -> None:
    path = run_dir / "runs/run_000001.h5"
    with analysis.open_run(path) as run, h5py.File(path, "r") as f:
        n = f["events/timestamp_ns"].shape[0]
        assert run.n_events == n and run.channels == [0] and run.run_number == 1 and run.complete
        for name, values in run.events.items():
            assert np.array_equal(values, f[f"events/{name}"][:n]), name
        peaks = run.peaks(0)
        for i in (0, n // 2, n - 1):
            a, k = f["events/peak_offset"][i, 0], f["events/n_peaks"][i, 0]
            assert np.array_equal(peaks.of_event(i)["q"], f["peaks/q"][a : a + k])
            assert np.array_equal(peaks.of_event(i)["t_end_ns"], f["peaks/t_end_ns"][a : a + k])
        jagged = run.peaks(awkward=True)
        assert len(jagged) == n and jagged[n - 1].q.to_numpy().tolist() == peaks.of_event(n - 1)["q"].tolist()
        wf = f["events/waveform"]
        assert np.array_equal(run.waveforms[5], wf[5]) and np.array_equal(run.waveforms[-1], wf[n - 1])
        assert np.array_equal(run.waveforms[3:9, 0], wf[3:9, 0]) and np.array_equal(
            run.waveforms[::50], wf[::50]
        )
        assert np.array_equal(run.waveforms[[7, 2, 7]], wf[[2, 7]][[1, 0, 1]])
        assert run.waveforms[n + 5 : n + 9].shape == (0, 1, wf.shape[2])
        with pytest.raises(IndexError, match=f"holds {n} events"):
            run.waveforms[n]
        assert np.array_equal(run.histograms["npe"].counts, f["histograms/npe/counts"][()])
        assert np.array_equal(run.slow["hv"], f["slow/hv"][()]) and run.slow["temperature"].size > 0
        assert run.config["run"]["events"] == 300 and run.metadata["digitizer"]["model"] == "DT5751"
        with pytest.raises(ValueError, match="channel 3 was not recorded"):
            run.peaks(3)
    assert not run._f  # closed by the with block


def test_open_run_refuses_missing_and_foreign_files_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UnreadableRunFile, match="no such run file"):
        analysis.open_run(tmp_path / "run_000042.h5")
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(UnreadableRunFile, match="not a run file of this program") as err:
        analysis.open_run(foreign)
    assert str(foreign) in str(err.value) and "\n" not in str(err.value)


def test_importing_analysis_loads_no_reader_until_open_run_is_used() -> None:
    code = (
        "import sys, analysis; heavy = [m for m in ('h5py', 'numba', 'uproot', 'awkward', 'analysis.run_reader') "
        "if m in sys.modules]; print(heavy); analysis.open_run; print('analysis.run_reader' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
