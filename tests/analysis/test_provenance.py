"""Provenance: the version from git with its dirty flag (or the release outside git), library versions without
importing lmfit or numba, streamed checksums, and the record in `daq analyze`'s JSON."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import provenance
from tests.shared_data import WAVEDUMP_SIPM, needs_wavedump_sample

ROOT = Path(__file__).resolve().parents[2]


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository standing in for the project's checkout."""
    repo = tmp_path / "clone"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.setattr(provenance, "_CHECKOUT", repo.resolve())
    provenance.git_state.cache_clear()
    yield repo
    provenance.git_state.cache_clear()


def test_a_clean_checkout_gives_release_plus_hash(checkout: Path) -> None:
    commit = _git(checkout, "rev-parse", "HEAD")
    assert provenance.git_state() == (commit, False)
    assert provenance.software_version() == f"{provenance.release_version()}+g{commit[:7]}"


def test_a_changed_tracked_file_is_dirty(checkout: Path) -> None:
    (checkout / "a.py").write_text("x = 2\n")
    (checkout / "new_untracked.txt").write_text("not counted\n")
    record = provenance.gather(["daq", "run", "--comment", "two words"])
    assert record["git_dirty"] is True and record["software_version"].endswith(".dirty")
    assert record["command_line"] == "daq run --comment 'two words'"


def test_outside_git_the_installed_release_is_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance, "_CHECKOUT", tmp_path.resolve())
    provenance.git_state.cache_clear()
    try:
        assert provenance.git_state() is None
        assert provenance.software_version() == provenance.release_version() != ""
        assert provenance.gather()["git_commit"] == ""
    finally:
        provenance.git_state.cache_clear()


def test_this_checkout_is_recognised() -> None:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if commit.returncode != 0:
        pytest.skip("not a git checkout")
    state = provenance.git_state()
    assert state is not None and state[0] == commit.stdout.strip()


def test_versions_come_without_importing_lmfit_or_numba() -> None:
    code = (
        "import sys, json; from analysis import provenance; r = provenance.gather(); "
        "print(json.dumps([r, 'lmfit' in sys.modules, 'numba' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    record, lmfit_imported, numba_imported = json.loads(done.stdout)
    assert not lmfit_imported and not numba_imported
    for key in ("python", "numpy_version", "numba_version", "h5py_version", "hdf5_version", "lmfit_version"):
        assert record[key] and record[key] != "not installed", key
    assert record["host"] and record["user"]


def test_the_checksum_is_streamed_and_exact(tmp_path: Path) -> None:
    data = np.random.default_rng(15).integers(0, 256, 3 * (1 << 20) + 123, dtype=np.uint8).tobytes()
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert provenance.sha256_of(path) == hashlib.sha256(data).hexdigest()


@needs_wavedump_sample
def test_analyze_json_records_provenance_and_the_inputs_checksums(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "daq.cli", "analyze", str(WAVEDUMP_SIPM), "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    prov = json.loads(out.read_text())["provenance"]
    assert prov["software_version"] == provenance.software_version() and "analyze" in prov["command_line"]
    (entry,) = prov["inputs"]
    assert entry["run_number"] is None and entry["path"] == str(WAVEDUMP_SIPM.resolve())
    wave = WAVEDUMP_SIPM / "wave0.dat"
    assert entry["sha256"]["wave0.dat"] == hashlib.sha256(wave.read_bytes()).hexdigest()
