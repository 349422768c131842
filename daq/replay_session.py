"""A replay's session: its configuration from the source, the playing board, slow-control playback and engine.

The DT5751 simulator plays the recorded events with their trigger times (simulators.dt5751_replay); the
run's slow-control series, if any, are played by the NDT1470 and Lake Shore simulators. Configuration:
--config FILE, else the configuration stored in the run file, else the defaults. The digitizer's record
geometry, channels and polarity always come from the source, the instruments are always simulated (a
replay never touches hardware), nothing is cooled or biased, and interlocks only log. Pre-flight
(daq.preflight) checks the analysis regions against the replayed records and a --output folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from analysis.wavedump_data import default_regions
from daq.config import ConfigError, RunConfig, load_config, parse_config
from daq.digitizer_urls import open_digitizer
from daq.engine import RunEngine
from daq.instruments import SlowControl
from daq.preflight import PreflightError, check_analysis, check_output
from daq.writer import ReplayOrigin
from simulators.dt5751_replay import ReplayAcquisition
from simulators.replay_runfile import RunFileSource
from simulators.replay_source import ReplaySource
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
    try:
        check_analysis(config, n)
    except PreflightError as exc:
        raise PreflightError(
            f"analysis regions do not fit the replayed records of {n} samples ({g.description}): {exc}, or give "
            "a --config whose analysis regions lie within the replayed record"
        ) from None
    return config


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
    check_output(config)  # a --output folder: writable, with the free space the writer needs
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
