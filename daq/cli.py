"""The `daq` command line: one top-level error handler over the subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from drivers import DigitizerError

log = logging.getLogger("daq")

DEFAULT_SIM_URL = "sim://dt5751?seed=1"


def _scope(args: argparse.Namespace) -> int:
    from daq.scope import print_scope

    return print_scope(args.url, args.events, args.sim_rate)


def _run(args: argparse.Namespace) -> int:
    from daq.run_command import run

    return run(args.config, args.events, args.duration, args.output, args.sim_rate)


def _info(args: argparse.Namespace) -> int:
    from daq.run_info import describe_run

    for path in args.files:
        print(describe_run(path))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the `daq` command."""
    parser = argparse.ArgumentParser(prog="daq", description="CLOVERS pure-CsI test-stand DAQ")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    scope = sub.add_parser(
        "scope",
        help="configure the DT5751 (or its simulator) and print a summary of a few events",
        description="Configure the digitizer through the driver, read events and print one line per event.",
    )
    scope.add_argument(
        "--url", default=DEFAULT_SIM_URL, help=f"dig1://... or sim://... (default {DEFAULT_SIM_URL})"
    )
    scope.add_argument("--events", type=int, default=5, help="events to read (default 5)")
    scope.add_argument("--sim-rate", default=None, help="simulated trigger rate: HZ or max (sim:// only)")
    scope.set_defaults(func=_scope)
    run = sub.add_parser(
        "run",
        help="run the acquisition headless: HDF5 run file, online analysis, progress and summary",
        description="Configure the test stand from FILE and record a run; Ctrl-C or SIGTERM stops it cleanly.",
    )
    run.add_argument(
        "--config", default="config/run.yaml", help="run configuration (default config/run.yaml)"
    )
    run.add_argument("--events", type=int, default=None, help="stop after N events (0: no event limit)")
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    run.add_argument("--output", default=None, help="directory for the run file (overrides run.output_dir)")
    run.add_argument(
        "--sim-rate", default=None, help="simulated trigger rate: HZ, or max (as fast as possible)"
    )
    run.set_defaults(func=_run)
    info = sub.add_parser(
        "info", help="print the summary of run files", description="Summarise HDF5 run files."
    )
    info.add_argument("files", nargs="+", help="run_NNNNNN.h5 files")
    info.set_defaults(func=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `daq` command; return the exit code (0 ok, 2 a clear error, 1 an unexpected one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (DigitizerError, ValueError, OSError) as exc:
        print(f"daq {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daq {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("daq %s failed unexpectedly; please report this with the traceback above", args.command)
        return 1


if __name__ == "__main__":
    sys.exit(main())
