"""Pre-flight of a run, in one place: what must hold before anything is cooled, biased or armed.

Static checks (`check_start`): the analysis regions fit the record and the trigger position, the SPE
window lies in the signal region, the output folder is writable with writer.min_free_disk_mb free, and a
chosen run number is free. State checks (`pending_sequences`): which of the configured pre-run sequences
(cooldown, HV on) a run still needs, from the instruments' latest readings. Every refusal is a
PreflightError whose message is one line saying what is wrong and what to do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from daq.config import ConfigError, RunConfig
from daq.writer import next_run_number, run_file_path
from drivers.ndt1470 import FAULT_BITS, ChannelStatus

HV_AT_VOLTAGE_V = 5.0  # |VMON| this close to |VSET| (as sequences.hv_on verifies it)
SETPOINT_SAME_K = 1e-3  # the controller's setpoint is the run's


class PreflightError(ConfigError):
    """A run cannot start as configured; the message (one line) says what to change."""


def check_analysis(config: RunConfig, n_samples: int | None = None) -> None:
    """Refuse analysis regions that do not fit the record (n_samples, default the configured length).

    Regions are sample indices [start, stop); the SPE window is in ns, which are samples at 1 GS/s.
    The baseline region must end at the trigger (record length - post_trigger_samples) or before.
    """
    a, d = config.analysis, config.digitizer
    n = d.record_length_samples if n_samples is None else n_samples
    fix = "; fix the analysis section of the configuration"
    for name, (lo, hi) in (("baseline_samples", a.baseline_samples), ("signal_samples", a.signal_samples)):
        if hi > n:
            raise PreflightError(
                f"analysis.{name} [{lo}, {hi}) does not fit the record of {n} samples "
                f"(digitizer.record_length_samples){fix}"
            )
    if a.baseline_samples[1] - a.baseline_samples[0] <= a.baseline_ddof:
        raise PreflightError(
            f"analysis.baseline_samples [{a.baseline_samples[0]}, {a.baseline_samples[1]}) holds no more samples "
            f"than analysis.baseline_ddof ({a.baseline_ddof}): the baseline's sigma is undefined{fix}"
        )
    trigger = n - d.post_trigger_samples
    if a.baseline_samples[1] > trigger:
        raise PreflightError(
            f"analysis.baseline_samples [{a.baseline_samples[0]}, {a.baseline_samples[1]}) reaches past the "
            f"trigger at sample {trigger} (record_length_samples - post_trigger_samples): the baseline would "
            f"hold the pulse{fix}"
        )
    (s0, s1), (w0, w1) = a.signal_samples, a.spe_window_ns
    if not s0 <= w0 < w1 <= s1:
        raise PreflightError(
            f"analysis.spe_window_ns [{w0}, {w1}) is not inside analysis.signal_samples [{s0}, {s1}) (1 ns "
            f"per sample): no peak found could enter the SPE histogram there{fix}"
        )


def check_output(config: RunConfig) -> None:
    """Refuse an output folder that cannot be made or written, or with less than writer.min_free_disk_mb free."""
    if not config.run.write_file:
        return
    folder = Path(config.run.output_dir)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = f"run.output_dir {folder}"
    if not existing.is_dir():
        raise PreflightError(
            f"{where}: {existing} is not a folder; choose another run.output_dir (or --output)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PreflightError(f"{where}: {existing} is not writable by this user; choose another run.output_dir "
                             "(or --output) or fix its permissions")  # fmt: skip
    try:
        free_mb = shutil.disk_usage(existing).free / 1e6
    except OSError as exc:
        raise PreflightError(
            f"{where}: free space unknown ({exc.strerror}); choose another run.output_dir"
        ) from None
    need_mb = config.writer.min_free_disk_mb
    if free_mb < need_mb:
        raise PreflightError(
            f"{where}: only {free_mb:.0f} MB free, the run needs writer.min_free_disk_mb = {need_mb:g} MB; free "
            "space or choose another run.output_dir (or --output)"
        )


def check_run_number(config: RunConfig) -> None:
    """Refuse a chosen run number whose file exists; the writer re-checks atomically when it creates it."""
    number = config.run.run_number
    if config.run.write_file and number is not None:
        path = run_file_path(config.run.output_dir, number)
        if path.exists():
            raise PreflightError(
                f"run number {number} (run.run_number, --run-number) exists already ({path}); choose another "
                f"number, or none for the next free one ({next_run_number(config.run.output_dir)})"
            )


def check_start(config: RunConfig) -> None:
    """All static checks of a run, before any instrument is touched; raise PreflightError."""
    check_analysis(config)
    check_output(config)
    check_run_number(config)


def check_instruments(config: RunConfig, slow: Any) -> None:
    """Refuse a run while an instrument it needs is not answering (faulted: it never opened, or its last
    polls failed in a row; one failed poll, e.g. a serial timeout, is only a warning).

    Needed: the cryostat for a cooldown before the run or a temperature interlock, the HV supply for the
    HV on before the run or an HV interlock (interlock_action ignore and no sequence: not needed).
    """
    for name, loop, section, sequence in (
        (
            "Lake Shore 325",
            getattr(slow, "cryostat", None),
            config.cryostat,
            config.cryostat.cooldown_before_run,
        ),
        ("NDT1470", getattr(slow, "hv", None), config.hv, config.hv.on_before_run),
    ):
        if loop is None or not loop.faulted or (not sequence and section.interlock_action == "ignore"):
            continue
        error = loop.error if loop.error.startswith(name) else f"{name}: {loop.error}"
        raise PreflightError(
            f"{error.rstrip('.')}; the run needs it: check its cable and power (daq doctor), then start again"
        )


def pending_sequences(config: RunConfig, slow: Any, cooled_to_k: float | None = None) -> list[str]:
    """The pre-run sequences the run still needs: "cooldown" and/or "hv_on", in that order.

    slow: a daq.instruments.SlowControl (or None: no instruments, nothing to run). A sequence is needed
    when the configuration asks for it (cryostat.cooldown_before_run, hv.on_before_run) and the latest
    reading does not show it done: the controller at the run's setpoint with stage and crystal in their
    bands, or the channel on at the run's voltage, not ramping, without fault bits. cooled_to_k: the
    setpoint a cooldown of this session reached stable (its hold done): then the stage within
    interlock_band_k of it is enough.
    """
    needed = []
    cryostat = getattr(slow, "cryostat", None)
    if (
        config.cryostat.cooldown_before_run
        and cryostat is not None
        and not _stable(config, cryostat.latest, cooled_to_k)
    ):
        needed.append("cooldown")
    hv = getattr(slow, "hv", None)
    if config.hv.on_before_run and hv is not None and not _at_voltage(config, hv.latest):
        needed.append("hv_on")
    return needed


def _stable(config: RunConfig, reading: Any, cooled_to_k: float | None) -> bool:
    c = config.cryostat
    if reading is None or abs(reading.setpoint_k - c.setpoint_k) > SETPOINT_SAME_K:
        return False
    if cooled_to_k is not None and abs(cooled_to_k - c.setpoint_k) <= SETPOINT_SAME_K:
        return abs(reading.stage_k - c.setpoint_k) <= c.interlock_band_k
    return (
        abs(reading.stage_k - c.setpoint_k) <= c.stable_band_k
        and abs(reading.crystal_k - c.setpoint_k) <= c.crystal_band_k
    )


def _at_voltage(config: RunConfig, reading: Any) -> bool:
    if reading is None or not reading.status & ChannelStatus.ON:
        return False
    moving = reading.status & (ChannelStatus.RUP | ChannelStatus.RDW | FAULT_BITS)
    return not moving and abs(abs(reading.vmon_v) - abs(config.hv.voltage_v)) <= HV_AT_VOLTAGE_V
