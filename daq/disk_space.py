"""Disk space of the run file: free bytes, the check before each batch, and a reserve freed when the disk fills.

HDF5 cannot be trusted once one of its writes failed for lack of space: the file can be left claiming events
whose data never reached the disk, or unreadable, and closing it can crash the process. So the writer stops
while writer.min_free_disk_mb are still free (checked before every batch), and keeps a small reserve file
beside the run file: if another program fills the disk faster than that, deleting the reserve gives HDF5
the room to finish the file.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_BYTES = 16_000_000  # enough for about a second of data at 500 Hz, the histograms and the summary


class DiskFullError(OSError):
    """The disk holding the run file is (nearly) full; the run must stop while its data are safe."""


def free_disk_bytes(directory: Path) -> int:
    """Bytes free for this user on the file system of `directory`."""
    return shutil.disk_usage(directory).free


def free_text(directory: Path) -> str:
    """'N MB free on DIR' (or that it is unknown), for messages."""
    try:
        return f"{free_disk_bytes(directory) / 1e6:.1f} MB free on {directory}"
    except OSError:
        return f"free space on {directory} unknown"


def check_free_space(run_path: Path, need_bytes: int, min_free_mb: float, n_events: int) -> None:
    """Raise DiskFullError if writing `need_bytes` more would leave less than `min_free_mb` MB free.

    run_path: the run file (named in the message). n_events: events already in it (safe).
    """
    free_b = free_disk_bytes(run_path.parent)
    if free_b - need_bytes < min_free_mb * 1e6:
        raise DiskFullError(
            f"only {free_b / 1e6:.1f} MB free on the disk of {run_path} (limit writer.min_free_disk_mb = "
            f"{min_free_mb:g}, the next batch needs up to {need_bytes / 1e6:.1f} MB): the run is stopped with "
            f"its {n_events} events safe. Free space or choose another run.output_dir."
        )


class SpaceReserve:
    """A file of RESERVE_BYTES allocated beside the run file, deleted to make room when the disk is full."""

    def __init__(self, run_path: Path, size_bytes: int = RESERVE_BYTES) -> None:
        """Raises DiskFullError if the disk has not even room for the reserve."""
        self.path = run_path.with_name(f".{run_path.name}.reserve")
        self.size_bytes = 0
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        except OSError as exc:
            log.warning(
                "no disk reserve for %s (%s): a full disk may leave the file unreadable", run_path, exc
            )
            return
        try:
            os.posix_fallocate(fd, 0, size_bytes)
            self.size_bytes = size_bytes
        except OSError as exc:
            os.close(fd)
            fd = -1
            self.path.unlink(missing_ok=True)
            raise DiskFullError(
                f"no room for the run file's {size_bytes / 1e6:.0f} MB reserve beside {run_path} ({exc.strerror}; "
                f"{free_text(run_path.parent)}): free space or choose another run.output_dir"
            ) from None
        finally:
            if fd >= 0:
                os.close(fd)

    def release(self) -> int:
        """Delete the reserve; return the bytes it freed (0 if there was none or it is gone already)."""
        freed, self.size_bytes = self.size_bytes, 0
        self.path.unlink(missing_ok=True)
        return freed
