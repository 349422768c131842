"""The scan file: defaults applied to every step, and each mistake refused in one message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from daq.campaign_config import load_campaign, parse_campaign
from daq.campaign_setup import prepare
from daq.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _scan(**extra: object) -> dict:
    data = {
        "run_config": str(ROOT / "config/run.yaml"),
        "defaults": {"events": 2000, "stable_hold_s": 0},
        "steps": [
            {"name": "77K", "temperature_k": 77},
            {"name": "290K", "temperature_k": 290, "events": 9000},
        ],
    }
    data.update(extra)
    return data


def test_the_defaults_apply_to_every_step_and_a_step_overrides_them() -> None:
    scan = parse_campaign(_scan())
    assert [s.events for s in scan.steps] == [2000, 9000]
    assert all(s.stable_hold_s == 0 for s in scan.steps)
    assert scan.reference() == "77K"  # the step nearest 77 K, when none is named


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"steps": [{"name": "a", "temperature_k": 400}]},
            ["steps.0 (a).temperature_k", "400", "less than or equal to 350"],
        ),
        (
            {"steps": [{"name": "a", "temperature_k": 77, "stable_band": 1}]},
            ["unknown key 'steps.0 (a).stable_band'"],
        ),
        ({"steps": [{"temperature_k": 77}]}, ["'steps.0.name' is required but missing"]),
        (
            {"steps": [{"name": "a", "temperature_k": 77}, {"name": "a", "temperature_k": 80}]},
            ["repeated: a"],
        ),
        ({"steps": []}, ["'steps'", "at least 1"]),
        ({"on_failure": "retry"}, ["'on_failure' = 'retry'", "'stop' or 'skip'"]),
        ({"reference_step": "4K"}, ["reference_step '4K' is not a step"]),
        ({"pairs": [["77K", "ground"]]}, ["pairs: 'ground' is neither a step name nor a run file"]),
        ({"defaults": {"events": None, "duration_s": None}}, ["give events or duration_s"]),
        ({"defaults": {"cryocooler": "standby"}}, ["steps.0 (77K).cryocooler", "'on' or 'off'"]),
    ],
)
def test_a_bad_scan_is_refused_naming_the_field(change: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_campaign(_scan(**change), "scan.yaml")
    message = str(info.value)
    assert message.startswith("scan.yaml: ")
    for word in words:
        assert word in message, message


def test_a_missing_file_and_bad_yaml_say_which_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scan file not found"):
        load_campaign(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line"):
        load_campaign(bad)


def test_prepare_checks_the_steps_against_the_run_configuration(tmp_path: Path) -> None:
    scan_path = tmp_path / "scan.yaml"
    data = _scan(steps=[{"name": "a", "temperature_k": 77, "hv_v": -1700}])
    scan_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"steps.0 \(a\).hv_v' = -1700 V exceeds hv.max_voltage_v 1600"):
        prepare(load_campaign(scan_path), scan_path)
    data = _scan(run_overrides={"cryostat": {"time_scale": 0}})
    scan_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="cryostat.time_scale"):
        prepare(load_campaign(scan_path), scan_path)
    data = _scan(
        run_overrides={"cryostat": {"simulate": False}},
        steps=[{"name": "a", "temperature_k": 200, "cryocooler": "off"}],
    )
    scan_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="only the simulated stand's cryocooler"):
        prepare(load_campaign(scan_path), scan_path)


def test_prepare_sends_the_runs_into_the_campaign_folder(tmp_path: Path) -> None:
    scan_path = tmp_path / "scan.yaml"
    scan_path.write_text(
        yaml.safe_dump(_scan(output_dir="c1", run_overrides={"simulation": {"pace": "max"}}))
    )
    campaign = prepare(load_campaign(scan_path), scan_path)
    assert campaign.directory == tmp_path / "c1"
    assert campaign.config.run.output_dir == str(tmp_path / "c1" / "runs")
    assert campaign.config.simulation.pace == "max"
    assert not campaign.config.cryostat.cooldown_before_run and not campaign.config.hv.on_before_run


def test_the_shipped_example_scan_is_valid_and_spans_10_to_290_k() -> None:
    scan = load_campaign(ROOT / "config/scan.yaml")
    temps = [s.temperature_k for s in scan.steps]
    assert len(temps) >= 7 and min(temps) == 10 and max(temps) == 290
    prepare(scan, ROOT / "config/scan.yaml")


def test_a_campaign_is_refused_by_the_pre_flight_before_any_instrument_opens(tmp_path: Path) -> None:
    """A region that does not fit the record is found before hours of cooling, not after the first step."""
    from daq.campaign_command import run_campaign
    from daq.preflight import PreflightError
    from tests.daq.test_campaign_run import FAST, write_scan

    overrides = {**FAST, "analysis": {"baseline_samples": [0, 1400], "signal_samples": [1400, 9000]}}
    scan_path = write_scan(tmp_path, [{"name": "77K", "temperature_k": 77}], run_overrides=overrides)
    with pytest.raises(
        PreflightError, match=r"analysis.signal_samples \[1400, 9000\) does not fit the record"
    ):
        run_campaign(str(scan_path), resume=False)
    assert not (tmp_path / "campaign" / "journal.jsonl").exists()
    assert not list((tmp_path / "campaign").rglob("run_*.h5"))
