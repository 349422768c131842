"""`daq export RUN.h5... --root OUT.root [--waveforms]`: run files into one ROOT file (docs/export.md)."""

from __future__ import annotations

import argparse
import sys
import time


def export(args: argparse.Namespace) -> int:
    """Export, print one line per run; return 0. Errors (OSError, one line naming the file) reach cli.main."""
    from analysis.root_export import ExportedRun, export_root  # uproot and awkward load only here

    started = time.monotonic()
    interactive = sys.stderr.isatty()

    def progress(run: ExportedRun, done: int) -> None:
        if interactive:
            print(f"\r{run.source.name}: {done}/{run.events} events", end="", file=sys.stderr, flush=True)

    runs = export_root(args.files, args.root, waveforms=args.waveforms, progress=progress)
    if interactive:
        print(file=sys.stderr)
    for run in runs:
        print(f"{run.source} -> {args.root}:{run.tree} ({run.events} events, {run.peaks} peaks)")
    events = sum(run.events for run in runs)
    print(f"wrote {args.root}: {len(runs)} run(s), {events} events in {time.monotonic() - started:.1f} s")
    return 0
