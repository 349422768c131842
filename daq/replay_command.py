"""`daq replay SOURCE`: the command-line front end of a replay (daq.replay_session): progress, summary, exit code.

Online analysis, histograms and progress are those of `daq run`; with --output a new run file holds the
reprocessed results and names (and links) its source.
"""

from __future__ import annotations

import sys
from typing import TextIO

from daq.config import parse_speed
from daq.control_core import ControlCore
from daq.engine import RunEngine
from daq.replay_session import Replay, base_config, prepare_replay, replay_config
from daq.run_command import acquire, stop_on_signals
from simulators.dt5751_replay import ReplayAcquisition

__all__ = ["Replay", "base_config", "prepare_replay", "replay", "replay_config", "replay_summary"]


def replay(
    source_path: str,
    config_path: str | None = None,
    speed: str = "max",
    output_dir: str | None = None,
    events: int | None = None,
    out: TextIO | None = None,
    record_length: int | None = None,
    header: bool | None = None,
) -> int:
    """Replay `source_path`; return 0 for a complete replay, 3 for a faulty one, 2 if it could not start.

    record_length / header: for WaveDump files without event headers.
    """
    out = out or sys.stdout
    session = ControlCore.new_replay(source_path, config_path, parse_speed(speed), output_dir, events,
                                     record_length, header)  # fmt: skip
    source = session.source
    try:
        played = session.acquisition.speed  # a source without time tags plays at max whatever was asked
        speed_text = "max" if played is None else ("realtime" if played == 1.0 else f"x{played:g}")
        print(f"replaying {source.geometry.description} at speed {speed_text} ...", file=out, flush=True)
        with stop_on_signals() as (_, holder):
            holder["engine"] = session.engine
            code = acquire(session.engine, out)
        print(replay_summary(session.acquisition, session.engine), file=out)
        return code
    finally:
        session.close()


def replay_summary(acquisition: ReplayAcquisition, engine: RunEngine) -> str:
    """Lines on what was played: events, recorded and replayed rates, the source's notes."""
    lines = [f"replayed       : {acquisition.played} recorded events"
             + (f", {acquisition.lost_memory_full} lost (memory full)" if acquisition.lost_memory_full else "")]  # fmt: skip
    span_s = acquisition.played_span_ns * 1e-9
    acquired_s = engine.readout.acquired_s
    if acquisition.played > 1 and span_s > 0 and acquired_s > 0:
        recorded = f"recorded {(acquisition.played - 1) / span_s:.1f} Hz over {span_s:.2f} s of board time"
        if acquisition.speed is None:
            lines.append(f"event rate     : {recorded}, replayed as fast as possible in {acquired_s:.2f} s")
        else:
            lines.append(
                f"event rate     : {recorded}, replayed {acquisition.played / acquired_s:.1f} Hz over "
                f"{acquired_s:.2f} s"
            )
    lines += [f"note           : {text}" for text in acquisition.source.notes.messages]
    return "\n".join(lines)
