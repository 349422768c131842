"""`daq replay SOURCE`: play a run file or WaveDump data through the simulated test stand and the normal pipeline.

The DT5751 simulator plays the recorded events with their trigger times (simulators.dt5751_replay); the
run's slow-control series, if any, are played by the NDT1470 and Lake Shore simulators. Online analysis,
histograms and progress are those of `daq run`; with --output a new run file holds the reprocessed
results and names (and links) its source.

Configuration: --config FILE, else the configuration stored in the run file, else the defaults. The
digitizer's record geometry, channels and polarity always come from the source, the instruments are
always simulated (a replay never touches hardware), nothing is cooled or biased, and interlocks only log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import yaml

from analysis.pulses import PulseSettings
from analysis.wavedump_data import default_regions
from daq.config import ConfigError, RunConfig, load_config, parse_config, parse_speed
from daq.digitizer_urls import open_digitizer
from daq.engine import RunEngine
from daq.instruments import SlowControl
from daq.run_command import acquire, stop_on_signals
from daq.writer import ReplayOrigin
from simulators.dt5751_replay import ReplayAcquisition
from simulators.replay_runfile import RunFileSource
from simulators.replay_source import ReplaySource, open_replay_source
from simulators.slow_replay import ReplayClock, SeriesPlayback


def base_config(source: ReplaySource, config_path: str | None) -> tuple[RunConfig, bool]:
    """The configuration to start from, and whether its analysis section applies as it is.

    --config FILE wins; a run file's stored configuration comes next; otherwise the defaults, whose
    analysis regions are then set from the record geometry.
    """
    if config_path is not None:
        return load_config(config_path), True
    if isinstance(source, RunFileSource):
        stored = source.stored_config_yaml
        try:
            return parse_config(yaml.safe_load(stored), f"{source.path} (stored configuration)"), True
        except (ConfigError, yaml.YAMLError) as exc:
            source.notes.add(f"its stored configuration does not validate ({exc}); the defaults are used")
    return RunConfig(), False


def replay_config(
    source: ReplaySource,
    base: RunConfig,
    analysis_applies: bool,
    output_dir: str | None,
    events: int | None,
    speed: float | None,
) -> RunConfig:
    """`base` made into the configuration of a replay of `source` (see the module's docstring)."""
    g = source.geometry
    data = base.model_dump()
    old_channels = data["digitizer"]["channels"]
    data["digitizer"].update(
        url="sim://dt5751",
        record_length_samples=g.record_length_samples,
        post_trigger_samples=g.post_trigger_samples,
        polarity=g.polarity,
        start_mode="sw",
        external_trigger=False,
        crystal_channel=g.crystal_channel,
        channels={
            ch: {
                "enabled": True,
                "dc_offset_pct": g.dc_offset_pct.get(ch) if g.dc_offset_pct.get(ch) is not None else 50.0,
                "self_trigger": ch == g.crystal_channel,  # recorded events play while a trigger is enabled
                "threshold_adc": old_channels.get(ch, {}).get("threshold_adc", 30),
            }
            for ch in g.channels
        },
    )
    n = g.record_length_samples
    if not analysis_applies:
        baseline, signal = default_regions(n, n - g.post_trigger_samples)
        data["analysis"].update(
            baseline_samples=baseline, signal_samples=signal, spe_window_ns=(n - max(n // 8, 1), n)
        )
    data["run"].update(
        output_dir=output_dir or data["run"]["output_dir"],
        write_file=output_dir is not None,
        events=events,
        duration_s=None,
        comment=f"replay of {g.description}",
        slow_control=source.slow is not None,
    )
    scale = speed or 1.0
    data["cryostat"].update(
        simulate=True, cooldown_before_run=False, interlock_action="ignore", time_scale=min(scale, 1e5)
    )
    data["hv"].update(
        simulate=True,
        on_before_run=False,
        safe_state="keep",
        interlock_action="ignore",
        time_scale=min(scale, 1e5),
    )
    if source.slow is not None and len(source.slow.hv):
        data["hv"]["channel"] = int(source.slow.hv[0]["channel"])
    try:
        config = RunConfig.model_validate(data)
    except Exception as exc:  # noqa: BLE001 - pydantic's message names the field
        raise ConfigError(f"the replay of {g.description} cannot use this configuration: {exc}") from None
    _check_regions(config, n)
    return config


def _check_regions(config: RunConfig, n_samples: int) -> None:
    a = config.analysis
    try:
        PulseSettings(
            baseline_start=a.baseline_samples[0],
            baseline_stop=a.baseline_samples[1],
            signal_start=a.signal_samples[0],
            signal_stop=a.signal_samples[1],
        ).checked(n_samples)
    except ValueError as exc:
        raise ConfigError(
            f"analysis regions do not fit the replayed records of {n_samples} samples: {exc}. Give a --config "
            f"whose analysis.baseline_samples and signal_samples lie within the record"
        ) from None


@dataclass
class Replay:
    """A prepared replay: the engine to start, and what plays behind it. close() when the engine is done."""

    source: ReplaySource
    config: RunConfig
    acquisition: ReplayAcquisition
    engine: RunEngine
    slow: SlowControl | None

    def close(self) -> None:
        if self.slow is not None:
            self.slow.close()
        self.source.close()


def prepare_replay(
    source: ReplaySource,
    config_path: str | None = None,
    speed: float | None = None,
    output_dir: str | None = None,
    events: int | None = None,
) -> Replay:
    """Configuration, playing board, slow-control playback and engine of a replay of `source` (not started).

    speed: None as fast as possible, else a factor of real time. Raises ConfigError, InstrumentError.
    """
    base, analysis_applies = base_config(source, config_path)
    config = replay_config(source, base, analysis_applies, output_dir, events, speed)
    position = ReplayClock()
    origin = ReplayOrigin(source.path, time.time())  # board time 0 of the replay's timeline
    acquisition = ReplayAcquisition(source, speed, position=position)
    made: dict[str, RunEngine] = {}

    def timeline(playback: SeriesPlayback) -> Callable[[], float | None]:
        """Stamps for the readings of `playback`: the time the new file gives the events played now."""

        def now() -> float | None:
            if playback.now() is None:
                return None  # nothing recorded yet (a run followed from its start)
            offset_ns = made["engine"].readout.time_offset_ns if "engine" in made else 0
            return origin.started_at_unix_s + (acquisition.board_time_ns() + offset_ns) * 1e-9

        return now

    slow = None
    s = source.slow
    if s is not None:
        hv = SeriesPlayback(lambda: s.hv, s.started_at_unix_s, position, config.hv.channel)
        temperature = SeriesPlayback(lambda: s.temperature, s.started_at_unix_s, position)
        slow = SlowControl(
            config, hv=s.live or len(s.hv) > 0, cryostat=s.live or len(s.temperature) > 0, hv_playback=hv,
            temperature_playback=temperature, hv_clock=timeline(hv), temperature_clock=timeline(temperature),
        )  # fmt: skip
    try:
        engine = RunEngine(
            config,
            open_board=lambda: open_digitizer("sim://dt5751", replay=acquisition),
            slow=slow,
            replay=origin,
        )
    except BaseException:
        if slow is not None:
            slow.close()
        raise
    made["engine"] = engine
    acquisition.on_end = lambda: engine.request_stop("end of the replayed data")
    source.notes.listen(lambda text: engine.ctx.note(text, None))  # logged by the source already
    return Replay(source, config, acquisition, engine, slow)


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
    speed_x = parse_speed(speed)
    source = open_replay_source(source_path, record_length=record_length, header=header)
    try:
        session = prepare_replay(source, config_path, speed_x, output_dir, events)
    except BaseException:
        source.close()
        raise
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
