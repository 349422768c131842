"""Read every dataset of an HDF5 file with an HDF5 1.10-1.14 library, for the run file's compatibility tests.

Two readers, the first found wins: Debian's `h5dump` (hdf5-tools, HDF5 1.10.8 on bookworm; `.ci/run`
installs it where apt works), else h5py 3.11.0 (wheels bundle HDF5 1.14.2) in its own virtual environment
under ~/.cache/clovers-daq (made once by pip; CLOVERS_OLD_H5PY_VENV chooses the folder;
CLOVERS_OLD_HDF5_READER=h5py uses it even where h5dump is installed). Each returns
{dataset path: array} for what it read and {dataset path: error} for what it could not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OLD_H5PY = "h5py==3.11.0"
VENV = Path(os.environ.get("CLOVERS_OLD_H5PY_VENV", Path.home() / ".cache/clovers-daq/h5py-3.11-venv"))
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^,\s{}]+')
_READ_SCRIPT = """
import json, sys
import h5py, numpy as np
path, names, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
arrays, errors = {}, {}
with h5py.File(path, "r") as f:
    for name in names:
        try:
            arrays[name.replace("/", "|")] = f[name][()]
        except Exception as exc:
            errors[name] = " ".join(str(exc).split())
np.savez(out, **arrays)
print(json.dumps({"errors": errors, "hdf5": h5py.version.hdf5_version}))
"""


class OldReader:
    """One HDF5 1.10-1.14 reader; `library` names it and its HDF5 version."""

    library: str

    def read(
        self, path: Path, names: dict[str, np.dtype], plugin_dir: str | None
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        raise NotImplementedError


class H5dumpReader(OldReader):
    def __init__(self, program: str, version: str) -> None:
        self.program, self.library = program, f"h5dump {version}"

    def read(
        self, path: Path, names: dict[str, np.dtype], plugin_dir: str | None
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        arrays, errors = {}, {}
        env = _env(plugin_dir)
        with tempfile.TemporaryDirectory() as tmp:
            for name, dtype in names.items():
                out = Path(tmp) / "data.bin"
                if dtype.names:  # h5dump's binary output leaves compound data out: read its text
                    args = [self.program, "-m", "%.17g", "-y", "-w", "0", "-d", name, str(path)]
                else:
                    args = [self.program, "-d", name, "-b", "LE", "-o", str(out), str(path)]
                done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
                if done.returncode != 0 or "error" in done.stderr:
                    errors[name] = " ".join(done.stderr.split())[:300] or f"h5dump exit {done.returncode}"
                elif dtype.names:
                    arrays[name] = _compound_from_text(done.stdout, dtype)
                else:
                    arrays[name] = np.fromfile(out, dtype=dtype.newbyteorder("<"))
        return arrays, errors


class OldH5pyReader(OldReader):
    def __init__(self, python: Path, version: str) -> None:
        self.python, self.library = python, f"h5py 3.11.0 on HDF5 {version}"

    def read(
        self, path: Path, names: dict[str, np.dtype], plugin_dir: str | None
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "read.npz"
            done = subprocess.run(
                [str(self.python), "-c", _READ_SCRIPT, str(path), json.dumps(list(names)), str(out)],
                capture_output=True, text=True, env=_env(plugin_dir), timeout=300, check=True,
            )  # fmt: skip
            report = json.loads(done.stdout.strip().splitlines()[-1])
            with np.load(out) as npz:
                arrays = {key.replace("|", "/"): npz[key] for key in npz.files}
        return arrays, report["errors"]


def _env(plugin_dir: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    # without the plugin: a folder with no filters in it (HDF5's default folder might hold some)
    env["HDF5_PLUGIN_PATH"] = (
        plugin_dir if plugin_dir is not None else tempfile.gettempdir() + "/no-hdf5-plugins"
    )
    return env


def _compound_from_text(text: str, dtype: np.dtype) -> np.ndarray:
    """The records of h5dump's text output of a compound dataset (values printed with %.17g)."""
    body = text.split("DATA {", 1)[1] if "DATA {" in text else ""
    body = body.split("ATTRIBUTE", 1)[0]
    records = re.findall(r"\{([^{}]*)\}", body)
    rows = []
    for record in records:
        tokens = _TOKEN.findall(record)
        rows.append(tuple(_value(t, dtype[i]) for i, t in enumerate(tokens)))
    return np.array(rows, dtype=dtype)


def _value(token: str, dtype: np.dtype) -> object:
    if token.startswith('"'):
        return token[1:-1].encode("ascii")
    return float(token) if dtype.kind == "f" else int(token)


def find_old_reader() -> OldReader | None:
    """h5dump of HDF5 1.10-1.14 if installed, else h5py 3.11 in its own venv (made here), else None."""
    program = shutil.which("h5dump")
    if program is not None and os.environ.get("CLOVERS_OLD_HDF5_READER") != "h5py":  # "h5py": skip h5dump
        done = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
        m = re.search(r"Version (1\.1[0-4])\.(\d+)", done.stdout)
        if m:
            return H5dumpReader(program, f"{m.group(1)}.{m.group(2)}")
    python = VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300
            )
            subprocess.run([str(python), "-m", "pip", "install", "-q", OLD_H5PY], check=True,
                           capture_output=True, timeout=600)  # fmt: skip
        except (subprocess.SubprocessError, OSError):
            shutil.rmtree(VENV, ignore_errors=True)
            return None
    done = subprocess.run(
        [str(python), "-c", "import h5py; print(h5py.version.hdf5_version)"], capture_output=True, text=True
    )
    version = done.stdout.strip()
    return OldH5pyReader(python, version) if done.returncode == 0 and version.startswith("1.1") else None
