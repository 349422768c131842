"""Run `daq` on a disk that another program fills: `python -m tests.daq.full_disk FREE_MB FILL_MB LIE -- ARGS`.

The disk is simulated in this process only, without privileges: RLIMIT_FSIZE caps the run file at what is
"free" (so HDF5's writes really fail, with EFBIG, as they would with ENOSPC), and shutil.disk_usage reports
that free space. Each look at the free space lets the other program write FILL_MB more. LIE=1 makes
disk_usage report plenty of room (the other program filled the disk between the check and the write).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
from pathlib import Path


class FakeDisk:
    """free_mb at the start; the other program writes fill_mb per look; the run's files (and the writer's
    reserve beside them) count as used: deleting the reserve gives room, until the other program takes it."""

    def __init__(self, free_mb: float, fill_mb: float, lie: bool) -> None:
        self.free_b = int(free_mb * 1e6)
        self.fill_b = int(fill_mb * 1e6)
        self.lie = lie
        self.other_b = 0
        self._real = shutil.disk_usage

    def usage(self, path: str | Path) -> object:
        real = self._real(path)
        entries = list(os.scandir(path)) if Path(path).is_dir() else []
        used_b = sum(e.stat().st_size for e in entries)
        run_file_b = max((e.stat().st_size for e in entries if e.name.startswith("run_")), default=0)
        self.other_b += self.fill_b
        free = max(0, self.free_b - self.other_b - used_b)
        # the run file may grow into what is free now: a write beyond fails as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (run_file_b + free, resource.RLIM_INFINITY))
        shown = real.free if self.lie else free
        return type(real)(real.total, real.total - shown, shown)


def main() -> int:
    free_mb, fill_mb, lie = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
    argv = sys.argv[sys.argv.index("--") + 1 :]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG instead
    disk = FakeDisk(free_mb, fill_mb, lie)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(free_mb * 1e6), resource.RLIM_INFINITY))
    shutil.disk_usage = disk.usage  # type: ignore[assignment]
    from daq.cli import main as daq_main

    return daq_main(argv)


if __name__ == "__main__":
    sys.exit(main())
