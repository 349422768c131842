"""Whole simulated runs on a DT5751 with each real-board fault: the run file is complete, monotonic, nothing lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daq.config import RunConfig, load_config
from daq.engine import RunEngine
from daq.run_command import apply_overrides
from daq.run_info import events_in, open_run_file

ROOT = Path(__file__).resolve().parents[2]
WRAP_NS = 8 << 31  # the 31-bit x 8 ns trigger time tag wraps every 17.18 s


def _config(tmp_path: Path, query: str, events: int, rate_hz: float) -> RunConfig:
    cfg = apply_overrides(load_config(ROOT / "config/run.yaml"), events=events, output_dir=str(tmp_path))
    data = cfg.model_dump()
    data["run"]["slow_control"] = False
    data["digitizer"]["url"] = f"sim://dt5751?{query}"
    data["simulation"].update({"pace": "max", "seed": 17, "rate_hz": rate_hz})
    return RunConfig.model_validate(data)


@pytest.mark.parametrize(
    ("query", "events", "rate_hz", "samples"),
    [
        ("timestamp_wrap=true", 90, 2.0, 8001),  # ~3 triggers per board second: the run spans > 1 wrap
        ("dc_offset_direction=inverted&dc_offset_gain=1.04&dc_offset_error_adc=-20", 300, 500.0, 8001),
        ("record_extra_samples=6", 300, 500.0, 8007),
        ("send_stop=false", 300, 500.0, 8001),
    ],
)
def test_a_run_survives_the_fault_with_nothing_lost(
    tmp_path: Path, query: str, events: int, rate_hz: float, samples: int
) -> None:
    engine = RunEngine(_config(tmp_path, query, events, rate_hz))
    engine.start()
    assert engine.wait(timeout_s=90)
    status = engine.status()
    c = status.counters
    assert c.read >= events and c.written == c.read and c.lost_total == 0
    with open_run_file(status.path) as f:
        assert f.attrs["complete"]
        n = events_in(f)
        assert n == c.written and f["events/waveform"].shape == (n, 1, samples)
        stamps = f["events/timestamp_ns"][:].astype(np.int64)
        assert np.all(np.diff(stamps) > 0) and np.all(
            np.diff(f["events/trigger_id"][:].astype(np.int64)) == 1
        )
        digitizer = f["digitizer"].attrs
        assert (
            digitizer["record_length_samples"] == samples
            and digitizer["record_length_readback_samples"] == 8001
        )
        assert (
            abs(digitizer["ch0_baseline_adc"] - 921) <= 6
            and digitizer["ch0_dc_offset_source"] == "baseline_adc"
        )
        assert digitizer["timestamp_wrap_ns"] == WRAP_NS
        if rate_hz < 10:
            assert stamps[-1] > WRAP_NS  # unwrapped: the HDF5 timestamps run past the tag's period
        baseline = f["events/baseline"][:, 0]
        assert np.all(np.abs(baseline - digitizer["ch0_baseline_adc"]) < 3)  # the online analysis saw it too
