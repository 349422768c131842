"""The example scan (config/scan.yaml) on the simulated stand: LY(T)/LY(77 K) against the simulator's model
(simulators/csi_crystal.py, PHYSICS.md 3.1) within 2 % at <= 150 K and 4 % above, at every one of its points.

About 4 minutes (nine runs of 20,000-30,000 events, each analysed twice: the quick fit and the report).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from daq.campaign_command import run_campaign
from simulators.csi_crystal import light_yield_scale

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 4 minutes; more on a loaded machine
def test_the_example_scan_reproduces_the_simulators_ly_of_t(tmp_path: Path) -> None:
    scan = yaml.safe_load((ROOT / "config/scan.yaml").read_text())
    scan.update(run_config=str(ROOT / "config/run.yaml"), output_dir=str(tmp_path / "scan"))
    scan_path = tmp_path / "scan.yaml"
    scan_path.write_text(yaml.safe_dump(scan))
    out = io.StringIO()
    assert run_campaign(str(scan_path), resume=False, out=out) == 0, out.getvalue()
    report = json.loads((tmp_path / "scan/report/campaign.json").read_text())
    rows = report["ly_vs_temperature"]
    assert len(rows) == len(scan["steps"]) >= 7
    reference = next(r for r in rows if r["step"] == "77K")
    for row in rows:
        model = light_yield_scale(row["crystal_k"]) / light_yield_scale(reference["crystal_k"])
        tolerance = 0.02 if row["crystal_k"] <= 150.0 else 0.04
        assert row["ly_over_reference"] == pytest.approx(model, rel=tolerance), (row, out.getvalue())
        assert row["simulator_model_ratio"] == pytest.approx(model)
        assert abs(row["crystal_k"] - row["setpoint_k"]) < 3.0  # the crystal settles near the stage
