"""Small run files made by `daq run` on the simulated stand, for the tests of readers and exporters."""

from __future__ import annotations

from pathlib import Path

import yaml

from daq.cli import main

ROOT = Path(__file__).resolve().parents[2]


def make_run(
    folder: Path,
    events: int,
    run_number: int,
    slow_control: bool = True,
    second_channel: bool = False,
    seed: int = 3,
) -> Path:
    """Record a run with `daq run` (simulator at full pace) into `folder`; return the run file's path.

    slow_control: cool down and bias first (seconds at the simulators' time scales), so /slow has series.
    second_channel: record board channel 1 too (no self-trigger), so the file has two columns.
    """
    cfg = yaml.safe_load((ROOT / "config/run.yaml").read_text())
    cfg["run"].update(output_dir=str(folder), events=events, slow_control=slow_control)
    cfg["simulation"].update(pace="max", seed=seed)
    cfg["cryostat"].update(time_scale=2000, poll_period_s=0.2, stable_hold_s=30)
    cfg["hv"].update(time_scale=50, poll_period_s=0.2)
    if second_channel:
        cfg["digitizer"]["channels"][1] = {"enabled": True, "self_trigger": False, "threshold_adc": 30}
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"run_{run_number}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code = main(["run", "--config", str(config), "--run-number", str(run_number)])
    path = folder / f"run_{run_number:06d}.h5"
    assert code == 0 and path.exists(), f"daq run exited {code}"
    return path
