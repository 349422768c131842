"""Every numba kernel a run uses is compiled, or loaded from numba's cache, before the board is armed.

A fresh clone has no numba cache: compiling the pulse kernel while the board's memory filled lost
~100 events at the start of README's first run. Losses depend on CPU speed, so the test checks the
cause, deterministically: in a fresh process with an empty NUMBA_CACHE_DIR, no kernel is compiled
(first run) or taken from the cache (second run) after arm().
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, sys, time
import numba.core.event as ev

events = []


class Recorder(ev.Listener):
    def on_start(self, event):
        name = ""
        if event.data is not None and "dispatcher" in event.data:
            name = event.data["dispatcher"].py_func.__qualname__
        events.append((event.kind, name, time.monotonic()))

    def on_end(self, event):
        pass


for kind in ("numba:compile", "numba:compiler_lock"):
    ev.register(kind, Recorder())

from daq.config import RunConfig, load_config
from daq.engine import RunEngine, open_configured_board

data = load_config("config/run.yaml").model_dump()
data["run"].update(output_dir=sys.argv[1], events=200, slow_control=False)
data["simulation"].update(seed=9, rate_hz=500, pace="realtime")
config = RunConfig.model_validate(data)
armed_at = []


class ArmRecorder:
    # the real simulated board; only arm() is noted
    def __init__(self, board):
        self._board = board

    def __getattr__(self, name):
        return getattr(self._board, name)

    def arm(self):
        armed_at.append(time.monotonic())
        self._board.arm()


engine = RunEngine(config, open_board=lambda: ArmRecorder(open_configured_board(config)))
engine.start()
assert engine.wait(timeout_s=300)
status = engine.status()
arm = armed_at[0]
print(json.dumps({
    "state": status.state.value,
    "lost": status.counters.lost_total,
    "compiled_before_arm": sorted({n for k, n, t in events if k == "numba:compile" and t < arm}),
    "after_arm": [(k, n) for k, n, t in events if t > arm],
}))
"""


def _run_fresh_process(tmp_path: Path, cache: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "runs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_kernel_is_compiled_or_loaded_after_the_board_is_armed(tmp_path: Path) -> None:
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    first = _run_fresh_process(tmp_path, cache)  # a fresh clone: everything compiled
    assert first["state"] == "done"
    assert first["after_arm"] == [], first
    compiled = " ".join(first["compiled_before_arm"])
    for kernel in ("analyse", "fill_normal", "add_pulses", "find_crossing", "digitise", "high_pass"):
        assert kernel in compiled, first  # the listener sees them: the test can fail
    second = _run_fresh_process(tmp_path, cache)  # the next run: everything from the cache, before arm too
    assert second["state"] == "done" and second["after_arm"] == [], second
    assert second["compiled_before_arm"] == []  # nothing compiled again
    print(f"events lost at 500 Hz: first run {first['lost']}, second run {second['lost']}")
