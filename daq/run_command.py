"""`daq run`: a headless run with a progress line, clean stop on Ctrl-C or SIGTERM, and a final summary."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import h5py

from analysis.histograms import histogram_peaks
from analysis.run_schema import LIBVER_BOUNDS
from daq.config import ConfigError, RunConfig, load_config, parse_sim_rate
from daq.engine import RunEngine, RunStatus
from daq.instrument_commands import throttled_printer
from daq.instruments import SlowControl
from daq.run_context import RunState
from daq.sequences import SequenceError, cooldown, hv_on
from daq.writer import next_run_number, run_file_path

HV_NOT_SAFE_EXIT = 4  # the run ended, but the HV's safe state is not confirmed


def apply_overrides(
    config: RunConfig,
    events: int | None = None,
    duration_s: float | None = None,
    output_dir: str | None = None,
    sim_rate: str | None = None,
    run_number: int | None = None,
    comment: str | None = None,
) -> RunConfig:
    """Return `config` with the command-line overrides applied (validated like the file)."""
    data = config.model_dump()
    if comment is not None:
        data["run"]["comment"] = comment  # the writer stores run.comment as the root attribute `comment`
    if run_number is not None:
        data["run"]["run_number"] = run_number
    if events is not None:
        data["run"]["events"] = events if events > 0 else None
    if duration_s is not None:
        data["run"]["duration_s"] = duration_s
    if output_dir is not None:
        data["run"]["output_dir"] = output_dir
    if sim_rate is not None:
        if not config.digitizer.simulated:
            raise ConfigError(f"--sim-rate applies to a simulated digitizer, not to {config.digitizer.url}")
        rate_hz = parse_sim_rate(sim_rate)
        if rate_hz is None:
            data["simulation"]["pace"] = "max"
        else:
            data["simulation"]["rate_hz"] = rate_hz
            data["simulation"]["pace"] = "realtime"
    try:
        return RunConfig.model_validate(data)
    except Exception as exc:  # noqa: BLE001 - pydantic's message names the field
        raise ConfigError(f"command-line override: {exc}") from None


def check_run_number(config: RunConfig) -> None:
    """Refuse a chosen run number whose file exists (ConfigError naming it); the writer re-checks atomically."""
    number = config.run.run_number
    if config.run.write_file and number is not None:
        path = run_file_path(config.run.output_dir, number)
        if path.exists():
            raise ConfigError(
                f"run number {number} (run.run_number, --run-number) exists already ({path}); choose another "
                f"number, or none for the next free one ({next_run_number(config.run.output_dir)})"
            )


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
    """Cool down and bias if asked, run the acquisition of `config_path`, leave the HV safe.

    Returns 0 for a complete file, 3 for a faulty run, 2 if nothing could start, 130 if interrupted
    before the run started, and HV_NOT_SAFE_EXIT (4) instead of any of these when the HV's ramp-down at
    the end is not confirmed (the file's `complete` still says whether the data are whole).
    """
    out = out or sys.stdout
    config = apply_overrides(
        load_config(config_path), events, duration_s, output_dir, sim_rate, run_number, comment
    )
    check_run_number(config)  # before a cooldown of hours, not after
    hv_state = ""
    with stop_on_signals() as (interrupted, holder):
        slow: SlowControl | None = None
        try:
            if config.run.slow_control:
                slow = SlowControl(config)
                if config.cryostat.cooldown_before_run:
                    assert slow.cryostat is not None
                    print(f"cooling the stage to {config.cryostat.setpoint_k:g} K ...", file=out, flush=True)
                    cooldown(
                        slow.cryostat,
                        config.cryostat,
                        progress=throttled_printer(out),
                        should_stop=interrupted.is_set,
                    )
                if config.hv.on_before_run:
                    assert slow.hv is not None
                    print(f"ramping the PMT to {config.hv.voltage_v:g} V ...", file=out, flush=True)
                    hv_on(
                        slow.hv,
                        config.hv,
                        progress=throttled_printer(out, every_s=1.0),
                        should_stop=interrupted.is_set,
                    )
            engine = RunEngine(config, slow=slow)
            holder["engine"] = engine  # from here a signal stops the engine; before, it is seen just below
            if interrupted.is_set():
                print("daq run: interrupted before the run started", file=sys.stderr)
                return 130
            code = acquire(engine, out)
        except SequenceError as exc:
            print(f"daq run: {exc}", file=sys.stderr)
            return 130 if interrupted.is_set() else 2
        finally:
            if (
                slow is not None
            ):  # our handlers stay installed: a second Ctrl-C cannot cut the ramp-down short
                slow.close()
                hv_state = leave_hv(slow, config, holder.get("engine"), out)
    if hv_state.startswith("not confirmed"):
        return HV_NOT_SAFE_EXIT
    return code


def leave_hv(slow: SlowControl, config: RunConfig, engine: RunEngine | None, out: TextIO) -> str:
    """Say how the closed `slow` left the HV, record it in the run file as `hv_safe_state`; return it.

    Returns "confirmed: ...", "not confirmed: <reason>", "kept on (hv.safe_state = keep)", or "" when
    the run controlled no HV.
    """
    if slow.hv is None:
        return ""
    channel = config.hv.channel
    if config.hv.safe_state == "keep":
        state = "kept on (hv.safe_state = keep)"
        print(f"HV channel {channel} left as it is (hv.safe_state = keep)", file=out)
    elif slow.hv.safe_state_error:
        state = f"not confirmed: {slow.hv.safe_state_error}"
        print(f"HV channel {channel} ramped down (NOT CONFIRMED: {slow.hv.safe_state_error}; check the supply)",
              file=out)  # fmt: skip
    else:
        state = f"confirmed: channel {channel} ramped down to 0 V"
        print(f"HV channel {channel} ramped down (safe state)", file=out)
    path = engine.status().path if engine is not None else None
    if path is not None:
        record_hv_safe_state(path, state)
    return state


def record_hv_safe_state(path: Path, state: str) -> None:
    """Add the root attribute `hv_safe_state` to the closed run file `path` (docs/run_file.md).

    Written after the file is closed and after `complete`: the data may be complete while the HV is not
    safe. A failure to write it is printed, never raised: the HV state is also on the terminal.
    """
    try:  # no file lock: a SWMR reader (daq info, a GUI) may hold the file open, as for the writer's close
        with h5py.File(path, "r+", libver=LIBVER_BOUNDS, locking=False) as f:
            f.attrs["hv_safe_state"] = state
    except (OSError, ValueError) as exc:
        print(f"daq run: could not record hv_safe_state = {state!r} in {path}: {exc}", file=sys.stderr)


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
