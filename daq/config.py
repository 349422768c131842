"""Run configuration: YAML validated by pydantic models that refuse unknown keys, before any instrument is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers import ChannelSettings, DigitizerSettings
from simulators.physics_settings import PhysicsSettings


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message names file, field, value, rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Strict):
    """Where and how long: stop after `events` or `duration_s`, whichever comes first (None: no limit)."""

    output_dir: str = "runs"
    run_number: int | None = Field(default=None, ge=1, le=999_999)  # None: the next free number in output_dir
    events: int | None = Field(default=10_000, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    comment: str = ""
    slow_control: bool = True  # poll the HV and the cryostat during the run (logged in /slow, interlocks)
    write_file: bool = True  # false: online analysis and histograms only, no run file (e.g. a quick replay)


class DigitizerSection(DigitizerSettings):
    """The DT5751: the driver's settings, plus where it is and how the readout batches its events.

    url: dig1://... for the board, sim://dt5751 for the simulator.
    """

    url: str = "sim://dt5751"
    crystal_channel: int = Field(default=0, ge=0, le=3)
    batch_events: int = Field(default=256, ge=1, le=4096)
    batch_wait_s: float = Field(default=0.1, gt=0, le=10)

    def settings(self) -> DigitizerSettings:
        """The driver's settings object (this section without its own keys)."""
        return DigitizerSettings.model_validate(self.model_dump(include=set(DigitizerSettings.model_fields)))

    @model_validator(mode="after")
    def _check_crystal(self) -> DigitizerSection:
        if not self.channels.get(self.crystal_channel, ChannelSettings(enabled=False)).enabled:
            raise ValueError(f"crystal_channel {self.crystal_channel} is not an enabled channel")
        return self

    @property
    def simulated(self) -> bool:
        return self.url.lower().startswith("sim://")


class AnalysisSection(_Strict):
    """Online pulse analysis (PHYSICS.md 1.2) and live histograms; regions are sample indices, end exclusive."""

    baseline_samples: tuple[int, int] = (0, 1400)
    signal_samples: tuple[int, int] = (1400, 8000)
    threshold_sigma: float = Field(default=5.0, gt=0, le=100)
    baseline_ddof: int = Field(default=0, ge=0, le=1)
    # "excluded": TS and TE (the samples with x <= 0 that end a peak) stay out of PeakQ. The literal
    # reading of the paper counts them ("counted"), which biases every PeakQ by about -0.85 ADC*ns
    # and the fitted Qspe by -3 % (PHYSICS.md 2.8); the paper's own 32.50 matches "excluded".
    peak_boundaries: Literal["excluded", "counted"] = "excluded"
    spe_window_ns: tuple[int, int] = (7000, 8000)
    q_spe_adc_ns: float = Field(default=32.5, gt=0)
    spe_max_adc_ns: float = Field(default=200.0, gt=0)
    spe_bin_adc_ns: float = Field(default=2.0, gt=0)
    npe_max: float = Field(default=4000.0, gt=0)
    npe_bin: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> AnalysisSection:
        for name in ("baseline_samples", "signal_samples", "spe_window_ns"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi:
                raise ValueError(f"{name} must be [start, stop) with 0 <= start < stop, not [{lo}, {hi})")
        return self


class WriterSection(_Strict):
    """The HDF5 run file."""

    compression: Literal["bitshuffle-lz4", "gzip", "none"] = "bitshuffle-lz4"
    chunk_events: int = Field(default=16, ge=1, le=4096)
    flush_interval_s: float = Field(default=1.0, gt=0, le=1.0)
    min_free_disk_mb: float = Field(default=500.0, ge=0)


class PipelineSection(_Strict):
    """Bounded queues between readout, analysis and writer; a full queue blocks up to put_timeout_s, then drops."""

    analysis_queue_batches: int = Field(default=32, ge=1, le=10_000)
    writer_queue_batches: int = Field(default=32, ge=1, le=10_000)
    put_timeout_s: float = Field(default=2.0, gt=0, le=60)


class CryostatSerial(_Strict):
    """The Lake Shore 325's serial line (ASRL resources; GPIB and sockets ignore the line settings).

    The 325 runs 7 data bits, odd parity, 1 stop bit, CR LF; its baud rate is chosen on the front panel.
    """

    baud_rate: Literal[9600, 19200, 38400, 57600] = 9600
    data_bits: Literal[7, 8] = 7
    parity: Literal["odd", "even", "none"] = "odd"
    stop_bits: Literal[1, 2] = 1
    read_termination: Literal["\r\n", "\n", "\r"] = "\r\n"
    write_termination: Literal["\r\n", "\n", "\r"] = "\r\n"


class CryostatSection(_Strict):
    """The Lake Shore 325 holding the crystal's copper stage (input A) with the crystal on input B.

    simulate: serve the simulator on a loopback port and talk to it through the same driver.
    interlock_band_k: during a run, input A outside setpoint +- band triggers interlock_action.
    """

    simulate: bool = True
    resource: str = "ASRL/dev/ttyUSB0::INSTR"
    serial: CryostatSerial = CryostatSerial()
    setpoint_k: float = Field(default=77.0, gt=0, le=350)
    ramp_k_per_min: float = Field(default=2.0, ge=0, le=100)
    heater_range: int = Field(default=2, ge=1, le=2)
    pid: tuple[float, float, float] = (50.0, 20.0, 0.0)
    stable_band_k: float = Field(default=0.1, gt=0)
    crystal_band_k: float = Field(
        default=0.5, gt=0, description="the crystal (input B) must be this close too"
    )
    stable_hold_s: float = Field(default=300.0, ge=0)
    cooldown_timeout_s: float = Field(default=6 * 3600.0, gt=0)
    poll_period_s: float = Field(default=1.0, ge=0.2, le=60)
    cooldown_before_run: bool = False
    interlock_band_k: float = Field(default=1.0, gt=0)
    interlock_action: Literal["stop", "pause", "ignore"] = "stop"
    time_scale: float = Field(
        default=1.0, gt=0, le=1e5, description="simulator only: simulated seconds per second"
    )


class HvSection(_Strict):
    """The NDT1470 channel biasing the PMT; voltage_v is signed (the channel's polarity switch must match)."""

    simulate: bool = True
    port: str = "/dev/ttyACM0"
    board: int = Field(default=0, ge=0, le=31)
    channel: int = Field(default=0, ge=0, le=3)
    voltage_v: float = Field(default=-1500.0, ge=-2000, le=2000)
    max_voltage_v: float = Field(
        default=1600.0, gt=0, le=8000, description="no |VSET| above this is ever sent"
    )
    current_limit_ua: float = Field(default=200.0, gt=0, le=3000)
    ramp_up_v_per_s: float = Field(default=50.0, ge=1, le=500)
    ramp_down_v_per_s: float = Field(default=50.0, ge=1, le=500)
    trip_s: float = Field(default=1.0, ge=0, le=1000)
    ramp_timeout_s: float = Field(default=300.0, gt=0)
    poll_period_s: float = Field(default=1.0, ge=0.2, le=60)
    on_before_run: bool = False
    safe_state: Literal["ramp_down", "keep"] = "ramp_down"
    interlock_action: Literal["stop", "pause", "ignore"] = "stop"
    time_scale: float = Field(
        default=1.0, gt=0, le=1e5, description="simulator only: simulated seconds per second"
    )

    @model_validator(mode="after")
    def _check(self) -> HvSection:
        if abs(self.voltage_v) > self.max_voltage_v:
            raise ValueError(f"voltage_v {self.voltage_v:g} V exceeds max_voltage_v {self.max_voltage_v:g} V")
        return self


class RunConfig(_Strict):
    """The whole run configuration (config/run.yaml)."""

    run: RunSection = RunSection()
    digitizer: DigitizerSection = DigitizerSection()
    simulation: PhysicsSettings = PhysicsSettings()
    analysis: AnalysisSection = AnalysisSection()
    writer: WriterSection = WriterSection()
    pipeline: PipelineSection = PipelineSection()
    cryostat: CryostatSection = CryostatSection()
    hv: HvSection = HvSection()


def parse_sim_rate(text: str) -> float | None:
    """The value of --sim-rate: a rate in Hz (> 0), or None for 'max'; raise ConfigError otherwise."""
    if text == "max":
        return None
    try:
        rate_hz = float(text)
    except ValueError:
        raise ConfigError(f"--sim-rate must be a rate in Hz or 'max', not {text!r}") from None
    if not rate_hz > 0:
        raise ConfigError(f"--sim-rate must be a positive rate in Hz or 'max', not {text!r}")
    return rate_hz


def parse_speed(text: str) -> float | None:
    """The value of --speed: 'max' (None: as fast as possible), 'realtime' (1.0) or a factor N > 0."""
    word = text.strip().lower()
    if word == "max":
        return None
    if word == "realtime":
        return 1.0
    try:
        factor = float(word.removeprefix("x").removesuffix("x"))
    except ValueError:
        raise ConfigError(
            f"--speed must be max, realtime or a factor such as 4 or 0.5, not {text!r}"
        ) from None
    if not 0 < factor <= 1e6:
        raise ConfigError(f"--speed factor must be above 0 (and at most 1e6), not {text!r}")
    return factor


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where `loc` points (walking RunConfig's models, through dicts of models)."""
    model: Any = RunConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) is dict and args and parts:
            parts.pop(0)  # the dict key, e.g. a channel number
            annotation = args[1]
        model = annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(tuple(error["loc"][:-1]))
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc}' (value {error['input']!r}){hint}"
    if kind == "missing":
        return f"'{loc}' is required but missing"
    where = f"'{loc}'" if loc else "the file"
    return f"{where} = {error['input']!r} is not allowed: {error['msg']}"


def parse_config(data: Any, source: str = "<config>") -> RunConfig:
    """Validate already-loaded YAML data; raise ConfigError naming `source`, the field and the rule."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections (run, digitizer, ...)")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run configuration; raise ConfigError with one clear message."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: configuration file not found; without --config daq uses ./config/run.yaml or the simulated "
            f"stand shipped with the package, and daq config init DIR writes editable copies"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(p))


def config_yaml(config: RunConfig) -> str:
    """The validated configuration as YAML (stored in every run file)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
