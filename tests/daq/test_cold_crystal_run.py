"""Simulated runs over the cryostat's whole range: a crystal at the cold head's floor runs; outside the
physics model's 2.5-350 K the run stops with a message naming the temperature and the range."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.config import ConfigError, RunConfig, load_config, parse_config
from daq.engine import RunEngine, open_configured_board
from daq.run_context import RunState
from simulators.cryostat_thermal import COLD_HEAD_BASE_K, CryostatModel

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **sim: object) -> RunConfig:
    data = load_config(ROOT / "config/run.yaml").model_dump()
    data["run"].update(output_dir=str(tmp_path), events=300, slow_control=False)
    data["simulation"].update({"pace": "max", "seed": 5, **sim})
    return RunConfig.model_validate(data)


def _run(config: RunConfig, crystal_k: float | None = None) -> RunEngine:
    live = None if crystal_k is None else (lambda: crystal_k)
    engine = RunEngine(config, open_board=lambda: open_configured_board(config, live))
    engine.start()
    assert engine.wait(timeout_s=120)
    return engine


def test_a_crystal_free_cooled_to_the_cold_heads_floor_runs_without_fault(tmp_path: Path) -> None:
    model = CryostatModel()
    model.step(8 * 3600.0, 0.0)  # the cold head on, no heater: as cold as the simulated stand gets
    assert model.crystal_k == pytest.approx(COLD_HEAD_BASE_K, abs=0.01)
    engine = _run(_config(tmp_path), crystal_k=model.crystal_k)
    status = engine.status()
    assert status.state is RunState.DONE, status.stop_reason
    assert status.counters.written >= 300


def test_a_crystal_at_2_5_k_runs_without_fault(tmp_path: Path) -> None:
    engine = _run(_config(tmp_path, temperature_k=2.5))
    assert engine.status().state is RunState.DONE, engine.status().stop_reason


@pytest.mark.parametrize("crystal_k", [2.4, 351.0])
def test_a_crystal_outside_the_model_stops_the_run_with_the_temperature_and_the_range(
    tmp_path: Path, crystal_k: float
) -> None:
    engine = _run(_config(tmp_path), crystal_k=crystal_k)
    status = engine.status()
    assert status.state is RunState.FAULT
    message = status.stop_reason
    assert f"{crystal_k:g} K" in message and "2.5-350 K" in message, message
    assert "simulation.temperature_k" in message and "ValueError" not in message


def test_a_configured_temperature_outside_the_model_is_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigError, match="temperature_k"):
        parse_config({"simulation": {"temperature_k": 2.0}}, "test.yaml")
