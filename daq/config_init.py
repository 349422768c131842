"""The configurations shipped inside the package, and `daq config init DIR` writing editable copies of them.

daq/config_files/run.yaml and lab.yaml are links to the checkout's config/*.yaml (one copy to edit), and
the wheel holds their contents as package data, so an installed `daq` finds them from any directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SHIPPED_DIR = Path(__file__).parent / "config_files"
SHIPPED_NAMES = ("run.yaml", "lab.yaml")  # the simulated stand (the default), the real instruments


def shipped_config(name: str = "run.yaml") -> Path:
    """Return the path of a configuration shipped with the package (run.yaml or lab.yaml).

    Raises FileNotFoundError (one line, with the fix) if the installation lacks it.
    """
    if name not in SHIPPED_NAMES:
        raise ValueError(f"no shipped configuration {name!r}; there are {', '.join(SHIPPED_NAMES)}")
    path = SHIPPED_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the configuration shipped with the package is missing; reinstall clovers-daq "
            f"(pip install -e . in the checkout), or give one with --config FILE"
        )
    return path


def init_config(folder: str | Path, force: bool = False) -> list[Path]:
    """Copy the shipped run.yaml and lab.yaml into `folder` (created if needed); return the written paths.

    Raises FileExistsError naming the first existing file, with nothing written, unless `force`.
    """
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target}: a file, not a folder; daq config init DIR writes into a folder")
    sources = [shipped_config(name) for name in SHIPPED_NAMES]
    written = [target / name for name in SHIPPED_NAMES]
    existing = [path for path in written if path.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{existing[0]} exists already; nothing written: add --force to overwrite "
            f"{' and '.join(p.name for p in existing)}, or choose another folder"
        )
    target.mkdir(parents=True, exist_ok=True)
    for source, path in zip(sources, written, strict=True):
        shutil.copyfile(source, path)  # the contents, not the checkout's link
    return written
