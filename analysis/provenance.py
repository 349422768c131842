"""Which code made a run file or an analysis report: version from git, library versions, host, user, command.

The version comes from git when the package runs from a checkout (editable install or a clone run in
place): `<release>+g<short hash>`, with `.dirty` when tracked files differ from the commit. Outside a
checkout (a wheel, a tarball) it is the installed distribution's version. Library versions come from the
installed metadata, so nothing heavy (numba, lmfit) is imported to learn them.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import shlex
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "clovers-daq"
LIBRARIES = ("numpy", "numba", "h5py", "hdf5plugin", "lmfit", "scipy")
_CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding analysis/, daq/, ...
_GIT_TIMEOUT_S = 5.0
_HASH_BLOCK_B = 1 << 20


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool] | None:
    """(full commit hash, dirty) of the checkout this package runs from, or None if it is not in git."""
    try:
        top = _git("rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() != _CHECKOUT:
            return None  # not a checkout of this project (e.g. installed into some other repository)
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return None  # no git program
    if commit is None or status is None:
        return None
    return commit, bool(status)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_CHECKOUT), *args],
            capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def release_version() -> str:
    """The version the distribution was installed with ("unknown" when run from a bare checkout)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def software_version() -> str:
    """This program's version: `0.1.0+g1a2b3c4[.dirty]` from a checkout, else the installed release."""
    state = git_state()
    if state is None:
        return release_version()
    commit, dirty = state
    return f"{release_version()}+g{commit[:7]}{'.dirty' if dirty else ''}"


def library_version(name: str) -> str:
    """The installed version of distribution `name`, without importing it ("not installed" if absent)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def hdf5_version() -> str:
    """The HDF5 library h5py is built on."""
    import h5py

    return str(h5py.version.hdf5_version)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def gather(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance record: strings and a bool, flat, ready for HDF5 attributes or JSON.

    argv: the command line (default: sys.argv).
    """
    state = git_state()
    record: dict[str, Any] = {
        "software_version": software_version(),
        "git_commit": state[0] if state else "",
        "git_dirty": bool(state[1]) if state else False,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        **{f"{lib}_version": library_version(lib) for lib in LIBRARIES},
        "hdf5_version": hdf5_version(),
        "host": socket.gethostname(),
        "user": _user(),
        "platform": platform.platform(),
        "command_line": shlex.join(sys.argv if argv is None else argv),
    }
    return record


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's content (hex), read in 1 MB blocks (any size, bounded memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(_HASH_BLOCK_B):
            digest.update(block)
    return digest.hexdigest()


def input_record(path: str | Path, run_number: int | None) -> dict[str, Any]:
    """An analysis input: its path, run number and the SHA-256 of each file (a WaveDump folder: every file)."""
    p = Path(path).resolve()
    files = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    return {
        "path": str(p),
        "run_number": run_number,
        "sha256": {q.name: sha256_of(q) for q in files},
    }
