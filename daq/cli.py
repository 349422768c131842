"""The `daq` command line: one top-level error handler over the subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("daq")

DEFAULT_SIM_URL = "sim://dt5751?seed=1"
_CONFIG_HELP = (
    "run configuration (default: ./config/run.yaml if there is one, else the simulated stand shipped with "
    "the package; daq config init DIR writes editable copies)"
)
_FILE_COMMANDS = ("info", "replay", "analyze", "export")  # their errors name a file, in one line
# Errors reported in one line with exit 2, besides ValueError and OSError: (defining module, class). They are
# looked up only in modules already imported (an exception whose class was never imported cannot have been
# raised), so that `daq --help`, `daq info` and `daq runs` import no driver, numba, scipy or lmfit.
_CLEAR_ERRORS = (
    ("drivers.dt5751_errors", "DigitizerError"),
    ("daq.instruments", "InstrumentError"),
    ("daq.sequences", "SequenceError"),
    ("drivers.ndt1470_errors", "Ndt1470Error"),
    ("drivers.lakeshore325_errors", "LakeShoreError"),
    ("analysis.run_data", "DataError"),
)


def _scope(args: argparse.Namespace) -> int:
    from daq.scope import print_scope

    return print_scope(args.url, args.events, args.sim_rate)


def _run(args: argparse.Namespace) -> int:
    from daq.run_command import run

    return run(
        _config_path(args.config),
        args.events,
        args.duration,
        args.output,
        args.sim_rate,
        run_number=args.run_number,
        comment=args.comment,
    )


def _config_path(given: str | None) -> str:
    """The configuration to use: --config FILE, else ./config/run.yaml if there is one, else the shipped one."""
    if given is not None:
        return given
    local = Path("config/run.yaml")
    if local.is_file():
        path = local
    else:
        from daq.config_init import shipped_config

        path = shipped_config("run.yaml")
    log.info("configuration: %s (no --config given)", path)
    return str(path)


def _runs(args: argparse.Namespace) -> int:
    from daq.run_list import list_runs, write_csv, write_table

    rows = list_runs(args.folder)
    (write_csv if args.csv else write_table)(rows, sys.stdout)
    if not rows:
        print(f"daq runs: no run files (*.h5) in {args.folder}", file=sys.stderr)
    return 0


def _config_init(args: argparse.Namespace) -> int:
    from daq.config_init import init_config

    written = init_config(args.folder, force=args.force)
    print(
        f"wrote {written[0]} (the simulated stand) and {written[1]} (the real instruments); edit them and run"
    )
    print(f"daq run --config {written[0]}")
    return 0


class _VersionAction(argparse.Action):
    """--version: print the installed package's version (importlib.metadata, loaded only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version of clovers-daq and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("clovers-daq")
        except PackageNotFoundError:
            text = "unknown (clovers-daq is not installed: pip install -e . in the checkout)"
        print(f"daq (clovers-daq) {text}")
        parser.exit()


def _analyze(args: argparse.Namespace) -> int:
    from daq.analyze_command import analyze  # lmfit and scipy load only for this command

    return analyze(args)


def _replay(args: argparse.Namespace) -> int:
    from daq.replay_command import replay

    return replay(
        args.source,
        args.config,
        args.speed,
        args.output,
        args.events,
        record_length=args.record_length,
        header=False if args.no_header else None,
    )


def _campaign(args: argparse.Namespace) -> int:
    from daq.campaign_command import report_campaign, run_campaign

    if args.words[:1] == ["report"] and len(args.words) == 2:
        return report_campaign(args.words[1])
    if args.words or args.config is None:
        raise ValueError("use daq campaign --config SCAN.yaml [--resume], or daq campaign report DIR")
    return run_campaign(args.config, args.resume)


def _gui(args: argparse.Namespace) -> int:
    try:
        from gui.app import run_gui  # Qt loads only for this command
    except ImportError as exc:
        raise ValueError(
            f"the GUI needs PyQt6 and pyqtgraph ({exc}): install them with pip install -e '.[gui]'"
        ) from None

    return run_gui(_config_path(args.config))


def _info(args: argparse.Namespace) -> int:
    from daq.run_info import describe_run

    code = 0
    for path in args.files:  # one unreadable file does not hide the others
        try:
            print(describe_run(path))
        except OSError as exc:
            print(f"daq info: {exc}", file=sys.stderr)
            code = 2
    return code


def _export(args: argparse.Namespace) -> int:
    from daq.export_command import export  # uproot and awkward load only for this command

    return export(args)


def _sim(args: argparse.Namespace) -> int:
    from daq.instrument_commands import serve_simulator

    return serve_simulator(args.instrument, args.pty, args.port, args.time_scale)


def _cooldown(args: argparse.Namespace) -> int:
    from daq.instrument_commands import run_cooldown

    return run_cooldown(_config_path(args.config), args.to)


def _hv(args: argparse.Namespace) -> int:
    from daq.instrument_commands import run_hv

    if args.action == "set" and args.voltage is None:
        raise ValueError("daq hv set needs a voltage, e.g. daq hv --config config/run.yaml set -1500")
    return run_hv(_config_path(args.config), args.action, args.voltage)


def _doctor(args: argparse.Namespace) -> int:
    from daq.doctor import run_doctor  # pyvisa, numba and the drivers load only for this command

    return run_doctor(_config_path(args.config))


def _digitizer(args: argparse.Namespace) -> int:
    from daq.digitizer_commands import run

    return run(args)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the parser of the `daq` command.

    command: the subcommand about to run ("" for none, e.g. `daq --help`); subcommands whose arguments need
    heavy imports (analyze: lmfit, scipy) get their arguments only when they are that command. None: all.
    """
    parser = argparse.ArgumentParser(prog="daq", description="CLOVERS pure-CsI test-stand DAQ")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action=_VersionAction)
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
        epilog="exit codes: 0 complete file; 2 bad configuration or instrument error (nothing started); "
        "3 the run ended in a fault (file marked complete = false); 4 the HV ramp-down at the end is not "
        "confirmed (check the supply; the file's hv_safe_state says why, complete says whether the data "
        "are whole); 130 interrupted before the run started.",
    )
    run.add_argument("--config", default=None, help=_CONFIG_HELP)
    run.add_argument("--events", type=int, default=None, help="stop after N events (0: no event limit)")
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    run.add_argument(
        "--output",
        default=None,
        help="directory for the run file (overrides run.output_dir; relative paths, here and in the "
        "configuration, are relative to the current directory: the shipped configs write to ./runs)",
    )
    run.add_argument(
        "--comment", default=None, help="the run's comment, stored in the file (overrides run.comment)"
    )
    run.add_argument(
        "--run-number",
        type=int,
        default=None,
        help="this run number (default: the next free one); never overwrites",
    )
    run.add_argument(
        "--sim-rate", default=None, help="simulated trigger rate: HZ, or max (as fast as possible)"
    )
    run.set_defaults(func=_run)
    rep = sub.add_parser(
        "replay",
        help="play a run file or WaveDump data through the simulated test stand and the online analysis",
        description="Replay recorded events (and the run's temperatures and HV) through the simulated DT5751, "
        "the online analysis and the live histograms; with --output, write a new run file linked to SOURCE.",
    )
    rep.add_argument(
        "source", help="run_NNNNNN.h5 (also one still being written), or a WaveDump folder or file"
    )
    rep.add_argument(
        "--config",
        default=None,
        help="configuration whose analysis settings to use (default: the run file's own, or defaults)",
    )
    rep.add_argument(
        "--speed", default="max", help="max (default), realtime, or a factor of real time such as 4 or 0.5"
    )
    rep.add_argument("--output", default=None, help="directory for a new run file (default: no file)")
    rep.add_argument("--events", type=int, default=None, help="stop after N events")
    rep.add_argument(
        "--record-length",
        type=_positive_int,
        default=None,
        help="WaveDump files without headers: samples per event",
    )
    rep.add_argument(
        "--no-header", action="store_true", help="WaveDump files without the 24-byte event header"
    )
    rep.set_defaults(func=_replay)
    camp = sub.add_parser(
        "campaign",
        help="temperature scan: setpoint, wait stable, HV, run, fit per step; journal, --resume; report DIR",
        description="Run the steps of a scan file (docs/campaign.md) in order, one journal line per finished step; "
        "--resume continues a killed campaign. 'daq campaign report DIR' writes the LY(T) table, plot and JSON.",
        epilog="exit codes: 0 every step done; 2 bad scan file or journal; 3 a step failed (on_failure: stop); "
        "130 interrupted (the HV is made safe in every case).",
    )
    camp.add_argument(
        "words", nargs="*", metavar="report DIR", help="report DIR: the report of a campaign folder"
    )
    camp.add_argument("--config", default=None, help="the scan file (e.g. config/scan.yaml)")
    camp.add_argument("--resume", action="store_true", help="continue the campaign of the scan's journal")
    camp.set_defaults(func=_campaign)
    gui = sub.add_parser("gui", help="the test stand's window: cooldown, HV, runs, live histograms, replay")
    gui.add_argument("--config", default=None, help=_CONFIG_HELP)
    gui.set_defaults(func=_gui)
    info = sub.add_parser(
        "info", help="print the summary of run files", description="Summarise HDF5 run files."
    )
    info.add_argument("files", nargs="+", help="run_NNNNNN.h5 files")
    info.set_defaults(func=_info)
    exp = sub.add_parser(
        "export",
        help="write run files into a ROOT file (TTree per run, TH1 histograms, slow series; docs/export.md)",
    )
    exp.add_argument("files", nargs="+", help="run_NNNNNN.h5 files")
    exp.add_argument("--root", required=True, metavar="OUT.root", help="the ROOT file to write (replaced)")
    exp.add_argument("--waveforms", action="store_true", help="also the raw waveforms (large)")
    exp.set_defaults(func=_export)
    ana = sub.add_parser(
        "analyze",
        help="the paper's characterisation (SPE, LY, resolution, decay) of run files or WaveDump data",
        description="Fit SPE charge, Am-241 spectrum (light yield, resolution) and decay time; print a table, "
        "write a JSON report and PNG plots.",
    )
    if command in (None, "analyze"):
        from daq.analyze_command import add_arguments

        add_arguments(ana)
    ana.set_defaults(func=_analyze)
    sim = sub.add_parser("sim", help="serve an instrument simulator standalone (any program can connect)")
    sim.add_argument("instrument", choices=("ndt1470", "lakeshore325"))
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (NDT1470 only)")
    where.add_argument("--port", type=int, default=0, help="loopback TCP port (default: any free port)")
    sim.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")
    sim.set_defaults(func=_sim)
    cool = sub.add_parser("cooldown", help="cool the stage to the setpoint (or --to K) and wait until stable")
    cool.add_argument("--config", default=None, help=_CONFIG_HELP)
    cool.add_argument("--to", type=float, default=None, help="target temperature, K")
    cool.set_defaults(func=_cooldown)
    hv = sub.add_parser("hv", help="status, on, off or set V on the PMT's HV channel")
    hv.add_argument("--config", default=None, help=_CONFIG_HELP)
    hv.add_argument("action", choices=("status", "on", "off", "set"))
    hv.add_argument("voltage", type=float, nargs="?", default=None, help="volts, signed (for set)")
    hv.set_defaults(func=_hv)
    doc = sub.add_parser(
        "doctor",
        help="what is installed and reachable for a configuration: ok / missing / warning, with the fix",
        description="Check CAEN libraries, caen-felib, VISA backends and resources, serial ports and "
        "permissions, the configured instruments' identities, free disk and the numba cache. "
        "Exit 0 when everything the configuration needs is there, 2 otherwise.",
    )
    doc.add_argument("--config", default=None, help=_CONFIG_HELP)
    doc.set_defaults(func=_doctor)
    dig = sub.add_parser(
        "digitizer", help="bench tools for the DT5751: dump-tree URL --out FILE, compare-tree A B"
    )
    if command in (None, "digitizer"):
        from daq.digitizer_commands import add_arguments as add_digitizer_arguments

        add_digitizer_arguments(dig)
    dig.set_defaults(func=_digitizer)
    runs = sub.add_parser(
        "runs",
        help="list the run files of a folder: number, start, duration, events, lost, T, HV, status, comment",
        description="One line per *.h5 file of DIR, from its attributes only. status: complete; fault "
        "(ended, marked incomplete); killed (never closed: a duration with ~ runs to its last write); "
        "running (never closed, written in the last 10 s); unreadable (why). T set and HV set are the "
        "run's setpoints (cryostat.setpoint_k, hv.voltage_v), shown when it ran the slow control.",
    )
    runs.add_argument(
        "folder", nargs="?", default="runs", help="folder of the run files (default: ./runs, run.output_dir)"
    )
    runs.add_argument("--csv", action="store_true", help="CSV with a header line instead of the table")
    runs.set_defaults(func=_runs)
    cfg = sub.add_parser("config", help="config init DIR: write editable run.yaml and lab.yaml into DIR")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    init = cfg_sub.add_parser(
        "init",
        help="write the shipped run.yaml (all simulated) and lab.yaml (the real instruments) into DIR",
        description="Copy the configurations shipped with the package into DIR (created if needed), to "
        "edit and use with daq run --config DIR/run.yaml. Existing files are kept unless --force.",
    )
    init.add_argument("folder", metavar="DIR", help="where to write run.yaml and lab.yaml")
    init.add_argument("--force", action="store_true", help="overwrite run.yaml and lab.yaml in DIR")
    init.set_defaults(func=_config_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `daq` command; return the exit code (0 ok, 2 a clear error, 1 an unexpected one)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command=next((word for word in argv if not word.startswith("-")), ""))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"daq {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_clear_error(exc):
            log.exception(
                "daq %s failed unexpectedly; please report this with the traceback above", args.command
            )
            return 1
        text = " ".join(str(exc).split()) if args.command in _FILE_COMMANDS else exc  # HDF5's line breaks
        print(f"daq {args.command}: {text}", file=sys.stderr)
        return 2


def _is_clear_error(exc: Exception) -> bool:
    """True for the errors that carry a complete message (one line, exit 2) rather than a bug's traceback."""
    if isinstance(exc, ValueError | OSError):
        return True
    for module_name, class_name in _CLEAR_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
