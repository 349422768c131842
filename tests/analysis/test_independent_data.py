"""`daq analyze` on WaveDump data from a generator that is not this project's simulator (hidden parameters).

tests/analysis/independent_generator.py draws its parameters from seeded ranges and writes CAEN WaveDump
binary files with another SPE pulse shape, correlated noise and a fixed trigger position; the analysis
must find Qspe and the light yield within 2 % without being told any of it. One case sits in the range
where the paper's threshold method was seen to fail on outside data (noise 0.7-0.9 ADC, Qspe 26-37).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analysis.independent_generator import Truth, write_wavedump

ROOT = Path(__file__).resolve().parents[2]
CASES = {  # seed: (noise ADC rms, Qspe ADC*ns, LY PE/keVee) ranges
    1: ((0.7, 0.9), (26.0, 37.0), (30.0, 40.0)),
    3: ((0.8, 1.0), (20.0, 26.0), (10.0, 20.0)),
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(CASES))
def test_analyze_recovers_hidden_parameters_of_independent_wavedump_data(seed: int, tmp_path: Path) -> None:
    truth = Truth.draw(seed, *CASES[seed])
    write_wavedump(tmp_path / "data", truth, 30_000, seed)
    done = subprocess.run(
        [sys.executable, "-m", "daq.cli", "analyze", str(tmp_path / "data"), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["kind"] == "WaveDump" and report["headline"]["method"] == "integral"
    assert report["spe"]["source"] == "window calibration", report["spe_calibration"]
    assert report["spe"]["q_mean_adc_ns"] == pytest.approx(truth.q_spe_adc_ns, rel=0.02)
    assert report["light_yield"]["pe_per_kevee"] == pytest.approx(truth.ly_pe_per_kev, rel=0.02)
    assert report["decay"]["tau_ns"][-1] == pytest.approx(truth.tau_slow_ns, rel=0.05)
