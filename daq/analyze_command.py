"""`daq analyze RUN... [--json FILE] [--plots DIR]`: the paper's characterisation of run files or WaveDump data."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from analysis import provenance
from analysis.characterise import AnalysisOptions, RunAnalysis, analyse
from analysis.decay_fit import DecayFitSettings
from analysis.report import comparison_text, report_json, table_text
from analysis.run_data import DataError, EventData, PulseOverrides, load_run_file
from analysis.spe_calibration import SpeCalibrationSettings
from analysis.spe_fit import SpeFitSettings
from analysis.spectrum_fit import SpectrumFitSettings
from analysis.wavedump_data import is_wavedump, load_wavedump


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="RUN",
                   help="run_NNNNNN.h5 files, WaveDump wave*.dat / wave*.txt files, or WaveDump folders")  # fmt: skip
    p.add_argument("--json", dest="json_path", default=None, help="write the JSON report here")
    p.add_argument("--plots", default=None, help="write PNG plots into this directory")
    p.add_argument(
        "--channel", type=int, default=None, help="digitizer channel (default: the first recorded)"
    )
    g = p.add_argument_group("pulse reconstruction (default: the run's own settings, or the paper's)")
    g.add_argument(
        "--baseline", nargs=2, type=int, metavar=("START", "STOP"), help="baseline samples [start, stop)"
    )
    g.add_argument(
        "--signal", nargs=2, type=int, metavar=("START", "STOP"), help="signal samples [start, stop)"
    )
    g.add_argument(
        "--threshold", type=float, default=None, help="peak threshold in baseline sigmas (paper: 5)"
    )
    g.add_argument("--peak-boundaries", choices=("excluded", "counted"), default=None,
                   help="TS/TE samples in PeakQ (counted: the paper's literal reading, -0.85 ADC*ns per peak)")  # fmt: skip
    g.add_argument("--polarity", choices=("negative", "positive"), default=None,
                   help="pulse polarity (WaveDump default: PULSE_POLARITY of its config, else from the data)")  # fmt: skip
    g.add_argument("--record-length", type=int, default=None,
                   help="samples per event, for WaveDump files written without a header")  # fmt: skip
    f = p.add_argument_group("fits")
    f.add_argument("--spe-window", nargs=2, type=int, default=(7000, 8000), metavar=("START", "STOP"),
                   help="SPE candidates: peaks starting in [start, stop) ns (paper: 7000 8000)")  # fmt: skip
    f.add_argument("--spe-range", nargs=2, type=float, default=(0.0, 200.0), metavar=("LO", "HI"),
                   help="SPE histogram range, ADC*ns")  # fmt: skip
    f.add_argument("--spe-bin", type=float, default=2.0, help="SPE histogram bin, ADC*ns")
    f.add_argument("--window", type=int, default=32, metavar="NS",
                   help="window width of the threshold-free SPE calibration, ns (default 32: a few SPE widths)")  # fmt: skip
    f.add_argument("--spe-model", choices=("noise", "paper"), default="noise",
                   help="Gaussian widths sqrt(i sigma^2 + noise^2) with the noise measured (default) or "
                        "sqrt(i) sigma (the paper's)")  # fmt: skip
    f.add_argument(
        "--q-spe",
        type=float,
        default=None,
        help="use this Qspe (ADC*ns) in both methods instead of the fits'",
    )
    f.add_argument("--lines", choices=("lnhb", "paper"), default="lnhb",
                   help="Np L X-ray energies: LNHB centroids (13.85, 16.96, 21.16) or the paper's labels")  # fmt: skip
    f.add_argument("--fit-range", nargs=2, type=float, default=(9.0, 95.0), metavar=("LO", "HI"),
                   help="spectrum fit range in keV (at the first LY estimate)")  # fmt: skip
    f.add_argument("--chi2-range", nargs=2, type=float, default=(600.0, 3000.0), metavar=("LO", "HI"),
                   help="NPE range of the restricted chi2 (paper: 600 3000)")  # fmt: skip
    f.add_argument("--decay-rise", action="store_true", help="fit the rise too (exponentials (x) Gaussian)")
    f.add_argument("--decay-events", type=int, default=20_000, help="at most this many events averaged")
    f.add_argument("--temperature-step", type=float, default=None,
                   help="also fit the LY in temperature bins of this width (K) along a run's /slow series")  # fmt: skip


def _overrides(args: argparse.Namespace) -> PulseOverrides:
    return PulseOverrides(
        baseline_samples=tuple(args.baseline) if args.baseline else None,
        signal_samples=tuple(args.signal) if args.signal else None,
        threshold_sigma=args.threshold,
        peak_boundaries=args.peak_boundaries,
        polarity=None if args.polarity is None else (-1 if args.polarity == "negative" else 1),
    )


def _options(args: argparse.Namespace) -> AnalysisOptions:
    return AnalysisOptions(
        spe_window_ns=tuple(args.spe_window),
        spe=SpeFitSettings(
            q_min_adc_ns=args.spe_range[0],
            q_max_adc_ns=args.spe_range[1],
            bin_adc_ns=args.spe_bin,
            noise_term=args.spe_model == "noise",
        ),  # fmt: skip
        spectrum=SpectrumFitSettings(
            labels=args.lines, range_kev=tuple(args.fit_range), chi2_range_npe=tuple(args.chi2_range)
        ),  # fmt: skip
        decay=DecayFitSettings(rise=args.decay_rise, max_events=args.decay_events),
        calibration=SpeCalibrationSettings(window_ns=args.window),
        q_spe_adc_ns=args.q_spe,
        temperature_step_k=args.temperature_step,
    )


def load_input(
    path: Path, overrides: PulseOverrides, channel: int | None, record_length: int | None
) -> EventData:
    """A run file or WaveDump data, by what the path holds."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if is_wavedump(path):
        return load_wavedump(path, overrides, channel, record_length)
    if path.is_dir():
        raise DataError(
            f"{path}: a folder without WaveDump files (wave*.dat / wave*.txt); give run files by name"
        )
    return load_run_file(path, overrides, channel)


def analyze(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    t0 = time.perf_counter()
    options = _options(args)
    overrides = _overrides(args)
    runs: list[RunAnalysis] = []
    for name in args.inputs:
        data = load_input(Path(name), overrides, args.channel, args.record_length)
        runs.append(analyse(data, options))
        print(table_text(runs[-1]), file=out)
        print(file=out)
    if len(runs) > 1 or runs[0].temperature_series:
        print(comparison_text(runs), file=out)
    if args.plots:
        from analysis.plots import write_plots  # matplotlib only when plots are asked for

        written = write_plots(runs, Path(args.plots))
        print(f"plots: {', '.join(str(p) for p in written) or 'none (no fit succeeded)'}", file=out)
    report = report_json(runs)
    report["provenance"] = provenance.gather() | {
        "inputs": [provenance.input_record(r.data.source, r.data.run_number) for r in runs]
    }
    report["seconds_total"] = round(time.perf_counter() - t0, 3)
    if args.json_path:
        path = Path(args.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, allow_nan=False))
        print(f"JSON report: {path}", file=out)
    print(
        f"analysed {sum(r.data.n_events for r in runs)} events in {report['seconds_total']:.1f} s", file=out
    )
    return 0
