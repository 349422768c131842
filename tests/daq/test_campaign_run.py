"""A short campaign on the simulated stand, end to end: steps in order, a failed step skipped, journal, report,
the HV off at the end; and a campaign interrupted by SIGTERM stops its run cleanly, journals nothing for it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import yaml

from analysis.run_file_open import UnreadableRunFile, open_for_reading
from daq.campaign import CampaignRunner
from daq.campaign_config import load_campaign
from daq.campaign_journal import Journal, read_journal
from daq.campaign_report import write_report
from daq.campaign_setup import Campaign, keep_scan_copy, prepare
from daq.config import RunConfig
from daq.stand import TestStand

ROOT = Path(__file__).resolve().parents[2]
FAST = {  # the simulated stand at full speed: DT5751 as fast as it goes, cryostat 1000x, polls 5 Hz
    "simulation": {"pace": "max", "seed": 7},
    "cryostat": {"poll_period_s": 0.2},
}


def write_scan(tmp_path: Path, steps: list[dict], **extra: object) -> Path:
    scan = {
        "run_config": str(ROOT / "config/run.yaml"),
        "output_dir": "campaign",
        "run_overrides": FAST,
        "defaults": {"ramp_k_per_min": 10, "stable_band_k": 0.3, "stable_hold_s": 300, "events": 2000},
        "steps": steps,
        **extra,
    }
    path = tmp_path / "scan.yaml"
    path.write_text(yaml.safe_dump(scan))
    return path


def complete(path: Path) -> bool:
    """True for a run file closed complete; False for one cut short, even one killed as it was created."""
    try:
        with open_for_reading(path) as f:  # also a killed run's file (left open for SWMR writing)
            return bool(f.attrs.get("complete", False))
    except UnreadableRunFile:
        return False


@pytest.mark.timeout(600)  # about a minute; several on a loaded machine
def test_a_short_campaign_runs_its_steps_skips_a_failed_one_and_reports(tmp_path: Path) -> None:
    scan_path = write_scan(
        tmp_path,
        [
            {"name": "77K", "temperature_k": 77, "comment": "reference"},
            # not stable within 1 s (instrument time): times out at once, skipped
            {"name": "80K", "temperature_k": 80, "stable_timeout_s": 1},
            {"name": "85K", "temperature_k": 85, "hv_v": -1400},
        ],
        on_failure="skip",
        pairs=[["85K", "77K"]],
    )
    campaign: Campaign = prepare(load_campaign(scan_path), scan_path)
    stands: list[TestStand] = []

    def factory(config: RunConfig, path: str) -> TestStand:
        stands.append(TestStand(config, path))
        return stands[-1]

    out = io.StringIO()
    keep_scan_copy(campaign)  # DIR/scan.yaml, as daq campaign does
    journal = Journal(campaign.directory)
    code = CampaignRunner(campaign, journal, out, stand_factory=factory).run()
    assert code == 0, out.getvalue()
    records, _ = read_journal(campaign.directory / "journal.jsonl")
    assert [(r.step, r.status) for r in records] == [("77K", "done"), ("80K", "failed"), ("85K", "done")]
    assert "not stable" in records[1].data["error"]
    for record in (records[0], records[2]):
        path = campaign.directory / record.run_file
        assert complete(path)
        with h5py.File(path, "r") as f:
            stored = yaml.safe_load(f.attrs["config_yaml"])
            assert f.attrs["comment"].startswith(f"campaign step {record.step}")
        assert (
            stored["cryostat"]["setpoint_k"] == record.data["temperature_k"]
        )  # the run at the step's setpoint
        fit = record.data["fit"]
        assert fit["q_spe_own"] and abs(fit["q_spe_adc_ns"] / 32.5 - 1) < 0.05, fit
        assert fit["ly59_pe_per_kevee"] > 25 and fit["fwhm59_percent"] > 3, fit
        assert abs(fit["crystal_k"] - record.data["temperature_k"]) < 0.5
    assert records[2].data["events"] >= 2000
    # the HV at the step's voltage during its run, and off once the campaign is over
    with h5py.File(campaign.directory / records[2].run_file, "r") as f:
        assert abs(abs(f["slow/hv"]["vmon_v"][-1]) - 1400) < 5
    hv_sim = stands[0].slow.hv_sim
    assert hv_sim is not None and hv_sim.board.channels[0].vmon_v < 5.0
    text, json_path = write_report(campaign.directory)
    report = json.loads(json_path.read_text())
    rows = {r["step"]: r for r in report["ly_vs_temperature"]}
    assert set(rows) == {"77K", "85K"} and rows["77K"]["ly_over_reference"] == 1.0
    assert 0.9 < rows["85K"]["ly_over_reference"] < 1.05  # the model: 0.9936 at 85 K
    assert report["r_ly"][0]["a"] == "85K" and report["r_ly"][0]["r_ly"] == rows["85K"]["ly_over_reference"]
    assert [s["step"] for s in report["failed_steps"]] == ["80K"]
    assert (json_path.parent / "ly_vs_temperature.png").stat().st_size > 10_000
    assert (json_path.parent / "ly_vs_temperature.pdf").exists()
    assert "LY/LY(77K)" in text


def daq(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "daq.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, timeout_s: float, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout_s} s"
        time.sleep(0.05)


@pytest.mark.timeout(600)
def test_sigterm_stops_the_run_cleanly_journals_nothing_and_leaves_the_hv_off(tmp_path: Path) -> None:
    scan_path = write_scan(tmp_path, [{"name": "77K", "temperature_k": 77, "events": 200_000}])
    process = daq("campaign", "--config", str(scan_path))
    run_file = tmp_path / "campaign/runs/run_000001.h5"
    wait_for(run_file, 180, process)
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "campaign interrupted" in output and "ramped down (safe state)" in output
    assert complete(run_file)  # stopped cleanly, not cut
    assert read_journal(tmp_path / "campaign/journal.jsonl")[0] == []
