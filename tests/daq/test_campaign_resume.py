"""`daq campaign` killed with SIGKILL in the middle of a step: `--resume` redoes that step under a new run
number and finishes the rest; every step's run is complete and no step is done twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from daq.campaign_journal import read_journal
from tests.daq.test_campaign_run import complete, daq, wait_for, write_scan


@pytest.mark.timeout(600)  # three short campaigns in subprocesses: 1.5-3 minutes on a loaded machine
def test_a_campaign_killed_mid_step_resumes_without_redoing_a_finished_step(tmp_path: Path) -> None:
    # step 80K is long (40,000 events, seconds even at the simulator's full speed) so the kill lands inside its
    # run whatever the machine's speed: with 2,000 events it could finish within the poll before the kill
    steps = [{"name": "77K", "temperature_k": 77}, {"name": "80K", "temperature_k": 80, "events": 40_000},
             {"name": "84K", "temperature_k": 84}]  # fmt: skip
    scan_path = write_scan(tmp_path, steps)
    runs = tmp_path / "campaign/runs"
    journal_path = tmp_path / "campaign/journal.jsonl"
    process = daq("campaign", "--config", str(scan_path))
    wait_for(runs / "run_000002.h5", 240, process)  # step 80K's run has begun
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    killed, _ = read_journal(journal_path)
    assert [r.step for r in killed] == ["77K"]
    # a fresh start over the journal is refused; --resume continues
    refused = daq("campaign", "--config", str(scan_path))
    output = refused.communicate(timeout=120)[0]
    assert refused.returncode == 2 and "--resume" in output, output
    resumed = daq("campaign", "--config", str(scan_path), "--resume")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "resuming: 1 step(s) already finished (77K), 2 to go" in output
    records, _ = read_journal(journal_path)
    assert [(r.step, r.status) for r in records] == [("77K", "done"), ("80K", "done"), ("84K", "done")]
    assert [r.run_file for r in records] == ["runs/run_000001.h5", "runs/run_000003.h5", "runs/run_000004.h5"]
    assert all(complete(tmp_path / "campaign" / r.run_file) for r in records)
    assert sorted(p.name for p in runs.glob("run_*.h5")) == [f"run_00000{n}.h5" for n in (1, 2, 3, 4)]
    assert not complete(runs / "run_000002.h5")  # the killed run: kept, never overwritten, never counted
    assert "LY/LY(77K)" in output
