"""`daq run`: the command-line front end of a run on the control core: progress line, Ctrl-C/SIGTERM, summary."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from analysis.histograms import histogram_peaks
from daq.config import RunConfig, load_config
from daq.control_core import ControlCore, record_hv_safe_state
from daq.engine import RunEngine, RunStatus
from daq.instrument_commands import throttled_printer
from daq.preflight import check_run_number
from daq.run_context import RunState
from daq.run_overrides import apply_overrides
from daq.sequences import SequenceError

__all__ = [
    "HV_NOT_SAFE_EXIT",
    "acquire",
    "apply_overrides",
    "check_run_number",
    "record_hv_safe_state",
    "run",
]

HV_NOT_SAFE_EXIT = 4  # the run ended, but the HV's safe state is not confirmed


def progress_line(status: RunStatus) -> str:
    """One line: state, events, trigger rate, MB/s, losses, queue fill."""
    c = status.counters
    lost = ", ".join(f"{k} {v}" for k, v in c.lost.items() if v) or "0"
    return (
        f"[{status.state.value:>11}] {status.elapsed_s:7.1f} s  events {c.read:8d}  written {c.written:8d}  "
        f"trigger rate {status.trigger_rate_hz:7.1f} Hz  {status.mb_per_s:6.1f} MB/s  lost {lost}  "
        f"queues {status.analysis_queue_fill}/{status.writer_queue_fill}"
    )


def summary_text(engine: RunEngine) -> str:
    """The final summary: file, counts, rates, where the SPE and NPE peaks sit."""
    status = engine.status()
    c = status.counters
    snap = engine.histogram_snapshot()
    spe = histogram_peaks(snap.spe, n_peaks=1, smooth_bins=3)
    npe = histogram_peaks(snap.npe, n_peaks=3, smooth_bins=5)
    lines = [
        f"run file       : {status.path or '(none)'}",
        f"state          : {status.state.value} ({status.stop_reason or 'no stop reason'})",
        f"events         : {c.read} read, {c.written} written, {c.triggers} triggers, {c.lost_total} lost"
        + (f" ({', '.join(f'{k} {v}' for k, v in c.lost.items() if v)})" if c.lost_total else ""),
        f"duration       : {status.elapsed_s:.1f} s, {status.trigger_rate_hz:.1f} Hz triggers, "
        f"{status.mb_per_s:.1f} MB/s of raw samples",
        f"SPE peak       : {', '.join(f'{q:.1f}' for q in spe) or '-'} ADC*ns ({int(snap.spe.counts.sum())} peaks "
        f"in the {engine.config.analysis.spe_window_ns[0]}-{engine.config.analysis.spe_window_ns[1]} ns window)",
        f"NPE peaks      : {', '.join(f'{n:.0f}' for n in npe) or '-'} PE (Qspe {snap.q_spe_adc_ns:g} ADC*ns)",
    ]
    return "\n".join(lines)


@contextmanager
def stop_on_signals() -> Iterator[tuple[threading.Event, dict[str, RunEngine]]]:
    """While inside: SIGINT and SIGTERM set the event and stop holder["engine"] (once one is put there).

    The handlers are installed only on the main thread; the previous ones come back on exit.
    """
    interrupted = threading.Event()
    holder: dict[str, RunEngine] = {}

    def on_signal(signum: int, frame: object) -> None:
        interrupted.set()
        if "engine" in holder:
            holder["engine"].request_stop(f"{signal.Signals(signum).name} received")

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield interrupted, holder
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    config_path: str,
    events: int | None = None,
    duration_s: float | None = None,
    output_dir: str | None = None,
    sim_rate: str | None = None,
    out: TextIO | None = None,
    run_number: int | None = None,
    comment: str | None = None,
) -> int:
    """Pre-flight, cool down and bias if asked, run the acquisition of `config_path`, leave the HV safe.

    Returns 0 for a complete file, 3 for a faulty run, 2 if nothing could start (a pre-flight refusal
    among them: raised as PreflightError before any instrument is touched), 130 if interrupted before the
    run started, and HV_NOT_SAFE_EXIT (4) instead of any of these when the HV's ramp-down at the end is not
    confirmed (the file's `complete` still says whether the data are whole).
    """
    out = out or sys.stdout
    config = apply_overrides(
        load_config(config_path), events, duration_s, output_dir, sim_rate, run_number, comment
    )
    ControlCore.check_start(config)  # before a cooldown of hours, not after
    with stop_on_signals() as (interrupted, holder):
        core = ControlCore.open(config, instruments=config.run.slow_control)
        try:  # our handlers stay installed until the core is closed: a second Ctrl-C cannot cut the ramp-down
            printers = {"cryostat": throttled_printer(out), "hv": throttled_printer(out, every_s=1.0)}

            def progress(kind: str, text: str) -> None:
                if text.endswith("..."):
                    print(text, file=out, flush=True)
                else:
                    printers[kind](text)

            core.prepare_run(config, progress, lambda kind: interrupted.is_set())
            engine = core.new_run(core.run_config(config))
            holder["engine"] = engine  # from here a signal stops the engine; before, it is seen just below
            if interrupted.is_set():
                print("daq run: interrupted before the run started", file=sys.stderr)
                code = 130
            else:
                code = acquire(engine, out)
        except SequenceError as exc:
            print(f"daq run: {exc}", file=sys.stderr)
            code = 130 if interrupted.is_set() else 2
        finally:
            hv_state = core.close()
            print_hv_state(hv_state, config, out)
    if hv_state.startswith("not confirmed"):
        return HV_NOT_SAFE_EXIT
    return code


def print_hv_state(state: str, config: RunConfig, out: TextIO) -> None:
    """One line on how the run left the HV ("" state: the run controlled no HV, nothing printed)."""
    channel = config.hv.channel
    if state.startswith("kept"):
        print(f"HV channel {channel} left as it is (hv.safe_state = keep)", file=out)
    elif state.startswith("not confirmed"):
        reason = state.removeprefix("not confirmed: ")
        print(f"HV channel {channel} ramped down (NOT CONFIRMED: {reason}; check the supply)", file=out)
    elif state:
        print(f"HV channel {channel} ramped down (safe state)", file=out)


def acquire(engine: RunEngine, out: TextIO) -> int:
    """Start the engine, print progress until it ends, then the summary; 0 complete, 3 faulty, 2 never started."""
    tty = out.isatty()
    engine.start()
    last_print = 0.0
    while not engine.wait(timeout_s=0.5):
        status = engine.status()
        if tty:
            print("\r" + progress_line(status), end="", file=out, flush=True)
        elif status.elapsed_s - last_print >= 5.0:
            print(progress_line(status), file=out, flush=True)
            last_print = status.elapsed_s
    status = engine.status()
    if status.state is RunState.FAULT and status.path is None:
        print(
            "daq run: nothing was recorded: the run failed while starting (the error is above)",
            file=sys.stderr,
        )
        return 2
    if tty:
        print("\r" + progress_line(status), file=out)
    print(summary_text(engine), file=out)
    return 3 if status.state is RunState.FAULT else 0
