"""Run configuration: the shipped files are valid; bad files give one clear message and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.cli import main
from daq.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_are_valid() -> None:
    run = load_config(ROOT / "config/run.yaml")
    assert run.digitizer.simulated and run.digitizer.record_length_samples == 8000
    assert run.digitizer.channels[0].threshold_adc == 30 and run.digitizer.polarity == "negative"
    assert run.cryostat.setpoint_k == 77.0 and run.hv.voltage_v == -1500 and run.cryostat.simulate
    lab = load_config(ROOT / "config/lab.yaml")
    assert lab.digitizer.url.startswith("dig1://") and not lab.cryostat.simulate and not lab.hv.simulate


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run:\n  evnets: 5\n", r"unknown key 'run.evnets' \(value 5\); allowed here: comment, duration_s, events"),
        ("digitizer:\n  channels:\n    0: {treshold_adc: 30}\n", r"unknown key 'digitizer.channels.0.treshold_adc'.*threshold_adc"),
        ("run:\n  events: many\n", r"'run.events' = 'many' is not allowed: Input should be a valid integer"),
        ("digitizer:\n  channels:\n    0: {threshold_adc: 5000, self_trigger: true}\n",
         r"'digitizer.channels.0.threshold_adc' = 5000 is not allowed: Input should be less than or equal to 1023"),
        ("simulation:\n  rate_hz: -3\n", r"'simulation.rate_hz' = -3 is not allowed: Input should be greater than 0"),
        ("digitizer:\n  post_trigger_samples: 9000\n", r"post_trigger_samples 9000 must be below record_length_samples"),
        ("run: [1, 2\n", r"not valid YAML at line 2"),
        ("- just a list\n", r"the top level must be a mapping"),
    ],
)  # fmt: skip
def test_bad_config_gives_one_message_naming_file_field_value_and_rule(
    tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    assert main(["run", "--config", str(path), "--output", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: configuration file not found" in err and "Traceback" not in err


def test_bad_command_line_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(ROOT / "config/run.yaml"), "--sim-rate", "fast"]) == 2
    assert "--sim-rate must be a rate in Hz or 'max', not 'fast'" in capsys.readouterr().err


def test_lab_config_without_the_instruments_gives_one_clear_error(tmp_path: Path, caplog, capsys) -> None:
    assert main(["run", "--config", str(ROOT / "config/lab.yaml"), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "daq run: NDT1470: cannot open /dev/ttyACM0" in err and "daq sim ndt1470" in err
    assert "Traceback" not in err and not list(tmp_path.iterdir())
    no_slow = tmp_path / "lab.yaml"
    no_slow.write_text(
        (ROOT / "config/lab.yaml").read_text().replace("slow_control: true", "slow_control: false")
    )
    caplog.clear()
    assert main(["run", "--config", str(no_slow), "--output", str(tmp_path / "runs")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert (
        len(errors) == 1 and "Cannot open the DT5751 at dig1://" in errors[0] and "sim://dt5751" in errors[0]
    )
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "runs").exists()
