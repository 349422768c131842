"""A campaign made ready before any instrument opens: the scan resolved against its run configuration, the journal
checked against the scan, the scan file kept beside the journal."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from daq.campaign_config import CampaignConfig, resolve
from daq.campaign_fit import BorrowedQspe
from daq.campaign_journal import Journal, JournalError, StepRecord
from daq.config import ConfigError, RunConfig, load_config, parse_config


@dataclass(frozen=True)
class Campaign:
    """A validated scan with everything resolved: the run configuration, folders, the scan file itself."""

    scan: CampaignConfig
    scan_path: Path
    directory: Path
    config: RunConfig
    config_path: Path

    @property
    def runs_dir(self) -> Path:
        return self.directory / "runs"


def prepare(scan: CampaignConfig, scan_path: Path) -> Campaign:
    """Resolve the scan's run configuration (its run.output_dir becomes DIR/runs) and check the steps against it.

    The scan's run_overrides replace keys of the run configuration's sections. Raises ConfigError naming
    the scan file and the field.
    """
    directory = resolve(scan_path, scan.output_dir)
    config_path = resolve(scan_path, scan.run_config)
    base = load_config(config_path).model_dump(mode="json")
    for section, values in scan.run_overrides.items():
        if not isinstance(values, dict) or section not in base:
            raise ConfigError(
                f"{scan_path}: run_overrides.{section} is not a section of the run configuration"
            )
        base[section] = {**base[section], **values}
    base["run"].update(output_dir=str(directory / "runs"), run_number=None)
    # the campaign is the pre-run sequence: each step's setpoint and HV come from the scan (the core takes a
    # run at the session's setpoint and voltage), not from the configuration's cooldown / HV before a run
    base["cryostat"]["cooldown_before_run"] = False
    base["hv"]["on_before_run"] = False
    config = parse_config(base, f"{config_path} with {scan_path}'s run_overrides")
    for i, step in enumerate(scan.steps):
        hv_v = step.hv_v if step.hv_v is not None else config.hv.voltage_v
        if abs(hv_v) > config.hv.max_voltage_v:
            raise ConfigError(
                f"{scan_path}: 'steps.{i} ({step.name}).hv_v' = {hv_v:g} V exceeds hv.max_voltage_v "
                f"{config.hv.max_voltage_v:g} V of {config_path}"
            )
    if not config.cryostat.simulate:
        for i, step in enumerate(scan.steps):
            if step.cryocooler is not None:
                raise ConfigError(
                    f"{scan_path}: 'steps.{i} ({step.name}).cryocooler' = {step.cryocooler!r}: the program switches "
                    f"only the simulated stand's cryocooler; on the real stand remove the key and switch it by hand "
                    f"between two campaigns"
                )
    return Campaign(scan, scan_path, directory, config, config_path)


def check_journal(campaign: Campaign, journal: Journal, resume: bool) -> None:
    """Refuse a fresh start over a journal, and a resume whose finished steps no longer match the scan."""
    if journal.records and not resume:
        raise JournalError(
            f"{journal.path} already holds {len(journal.records)} finished step(s): add --resume to continue "
            f"that campaign, or set output_dir to a new folder"
        )
    steps = {s.name: s for s in campaign.scan.steps}
    for record in journal.records:
        step = steps.get(record.step)
        if step is None:
            raise JournalError(
                f"{journal.path}: step {record.step!r} is not in {campaign.scan_path} any more"
            )
        if step.fingerprint() != record.fingerprint:
            raise JournalError(
                f"{journal.path}: step {record.step!r} was done with other settings than {campaign.scan_path} "
                f"gives now; restore them, or run the changed campaign in a new output_dir"
            )


def borrowed_for(records: list[StepRecord]) -> BorrowedQspe | None:
    """The same choice as the runner's, for a report: the last self-calibrated step of a journal."""
    for record in reversed(records):
        fit = record.data.get("fit") or {}
        if record.status == "done" and fit.get("q_spe_own") and fit.get("q_spe_adc_ns"):
            return BorrowedQspe(
                fit["q_spe_adc_ns"], f"step {record.step} (run {record.data.get('run_number')})"
            )
    return None


def keep_scan_copy(campaign: Campaign) -> None:
    """DIR/scan.yaml: the scan as run, for `daq campaign report DIR` (kept if there is one: a resume)."""
    campaign.directory.mkdir(parents=True, exist_ok=True)
    copy = campaign.directory / "scan.yaml"
    if not copy.exists():
        shutil.copyfile(campaign.scan_path, copy)
