"""Typed settings of the DT5751 (what we ask for) and its effective settings (what the board reports)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

N_CHANNELS = 4
ADC_MAX = 1023  # 10-bit ADC
DEFAULT_BASELINE_FRACTION = (
    0.9  # of full scale from the rail the pulses run towards: room for the pulse range
)
RAIL_MARGIN_ADC = 16  # a target baseline closer than this to 0 or 1023 would clip its own noise


class ChannelSettings(BaseModel):
    """Settings of one DT5751 input.

    baseline_adc: where the baseline should sit, ADC counts (16-1007); None: digitizer.baseline_adc or
        the polarity's default. The driver finds the DC offset for it by measurement (either direction).
    dc_offset_pct: CH_DCOFFSET, 0-100 %, an explicit override: when set, it wins over any baseline_adc
        (digitizer-wide) and no search is made; setting both on one channel is refused. On a board
        that follows WaveDump a HIGH offset puts the baseline LOW.
    self_trigger: the channel's self-trigger makes the global (acquisition) trigger.
    threshold_adc: self-trigger threshold in ADC counts relative to the measured baseline, 1-1023;
        the driver turns it into the board's absolute level (below the baseline for negative polarity).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    baseline_adc: float | None = Field(default=None, ge=RAIL_MARGIN_ADC, le=ADC_MAX - RAIL_MARGIN_ADC)
    dc_offset_pct: float | None = Field(default=None, ge=0.0, le=100.0)
    self_trigger: bool = False
    threshold_adc: int = Field(default=30, ge=1, le=ADC_MAX)

    @model_validator(mode="after")
    def _one_way(self) -> ChannelSettings:
        if self.baseline_adc is not None and self.dc_offset_pct is not None:
            raise ValueError(
                "give baseline_adc (the driver finds the DC offset) or dc_offset_pct (an explicit override), not both"
            )
        return self


class DigitizerSettings(BaseModel):
    """What the DT5751 is asked to do for a run.

    channels: board channel (0-3) -> its settings; channels not listed are disabled.
    record_length_samples: samples per record, 16-1,800,000 (the board may round it up: read back).
    post_trigger_samples: samples after the trigger, < record_length_samples.
    polarity: pulse polarity; negative = trigger on the falling edge below the baseline.
    start_mode: sw (ARMACQUISITION starts), s_in (front-panel S-IN), first_trg (first trigger).
    baseline_triggers: software triggers taken per baseline measurement at configure time, 1-1000.
    baseline_adc: target baseline of every channel without its own (ADC, 16-1007); None: 90 % of the
        range from the rail the pulses run towards (921 for negative pulses, 102 for positive).
    pulse_range_adc: room the pulses need between the baseline and the rail they run towards, ADC
        (0-1007); a baseline with less is refused (for negative pulses: closer than this to 0).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[int, ChannelSettings] = Field(
        default_factory=lambda: {0: ChannelSettings(self_trigger=True)}
    )
    record_length_samples: int = Field(default=8000, ge=16, le=1_800_000)
    post_trigger_samples: int = Field(default=6400, ge=0)
    polarity: Literal["negative", "positive"] = "negative"
    start_mode: Literal["sw", "s_in", "first_trg"] = "sw"
    external_trigger: bool = False
    io_level: Literal["nim", "ttl"] = "nim"
    baseline_triggers: int = Field(default=16, ge=1, le=1000)
    baseline_adc: float | None = Field(default=None, ge=RAIL_MARGIN_ADC, le=ADC_MAX - RAIL_MARGIN_ADC)
    pulse_range_adc: int = Field(default=512, ge=0, le=ADC_MAX - RAIL_MARGIN_ADC)

    @model_validator(mode="after")
    def _check(self) -> DigitizerSettings:
        bad = [ch for ch in self.channels if not 0 <= ch < N_CHANNELS]
        if bad:
            raise ValueError(
                f"channel numbers {bad} do not exist on the DT5751 (channels 0-{N_CHANNELS - 1})"
            )
        if not any(c.enabled for c in self.channels.values()):
            raise ValueError("no channel is enabled: enable at least one (the crystal is on channel 0)")
        for ch, c in self.channels.items():
            if c.self_trigger and not c.enabled:
                raise ValueError(
                    f"channel {ch} self-triggers but is not enabled: enable it or set self_trigger false"
                )
        for ch, c in self.channels.items():
            target = self.baseline_target_adc(ch)
            if c.enabled and target is not None:
                room = target if self.polarity == "negative" else ADC_MAX - target
                if room < self.pulse_range_adc:
                    raise ValueError(
                        f"channel {ch}: baseline_adc {target:g} leaves {room:g} ADC for {self.polarity} pulses, "
                        f"less than pulse_range_adc {self.pulse_range_adc}: move the baseline away from the "
                        f"{'0' if self.polarity == 'negative' else str(ADC_MAX)} rail or lower pulse_range_adc"
                    )
        if self.post_trigger_samples >= self.record_length_samples:
            raise ValueError(
                f"post_trigger_samples {self.post_trigger_samples} must be below "
                f"record_length_samples {self.record_length_samples}"
            )
        return self

    @property
    def enabled_channels(self) -> tuple[int, ...]:
        """Enabled board channels in ascending order."""
        return tuple(sorted(ch for ch, c in self.channels.items() if c.enabled))

    def baseline_target_adc(self, channel: int) -> float | None:
        """Target baseline of `channel` in ADC, or None when its dc_offset_pct is given explicitly (it wins)."""
        c = self.channels.get(channel)
        if c is None or c.dc_offset_pct is not None:
            return None
        if c.baseline_adc is not None:
            return c.baseline_adc
        if self.baseline_adc is not None:
            return self.baseline_adc
        fraction = (
            DEFAULT_BASELINE_FRACTION if self.polarity == "negative" else 1.0 - DEFAULT_BASELINE_FRACTION
        )
        return float(round(fraction * ADC_MAX))


@dataclass(frozen=True)
class EffectiveChannel:
    """One channel as the board reports it after configuration, with the measured baseline."""

    channel: int
    enabled: bool
    dc_offset_pct: float
    self_trigger: bool
    baseline_adc: float
    baseline_rms_adc: float
    threshold_relative_adc: int
    threshold_absolute_adc: int
    baseline_target_adc: float = math.nan  # nan: dc_offset_pct was given explicitly
    dc_offset_slope_adc_per_pct: float = math.nan  # measured; nan when not searched
    dc_offset_source: str = "dc_offset_pct"  # or "baseline_adc": found by the two-point search


@dataclass(frozen=True)
class EffectiveSettings:
    """The DT5751's settings read back after configuration (stored in every run file)."""

    model: str
    serial: str
    firmware_roc: str
    firmware_amc: str
    adc_bits: int
    sampling_rate_msps: float
    record_length_samples: int
    post_trigger_samples: int
    start_mode: str
    self_trigger_edge: str
    trigger_count_all: bool
    external_trigger: bool
    channels: tuple[EffectiveChannel, ...]
    record_length_requested_samples: int = (
        0  # what was asked (record_length_samples: what the board delivers)
    )
    record_length_readback_samples: int = 0  # what /par/RECLEN reads back
    extended_time_tag: bool = False  # EXTRAS_OPT_TT48 enabled
    timestamp_wrap_ns: int = 0  # period of the board's time tag, unwrapped by the driver

    @property
    def sample_period_ns(self) -> float:
        """Sampling period, ns (1.0 at 1 GS/s)."""
        return 1000.0 / self.sampling_rate_msps

    @property
    def pre_trigger_samples(self) -> int:
        """Samples before the trigger sample."""
        return self.record_length_samples - self.post_trigger_samples

    @property
    def enabled_channels(self) -> tuple[int, ...]:
        """Enabled board channels in ascending order."""
        return tuple(c.channel for c in self.channels if c.enabled)

    def as_attrs(self) -> dict[str, str | int | float | bool]:
        """Flatten to scalar key/value pairs (HDF5 attributes), e.g. ch0_baseline_adc."""
        flat: dict[str, str | int | float | bool] = {}
        for key, value in asdict(self).items():
            if key != "channels":
                flat[key] = value
        for c in self.channels:
            for key, value in asdict(c).items():
                if key != "channel":
                    flat[f"ch{c.channel}_{key}"] = value
        return flat

    def describe(self) -> str:
        """Human-readable summary, one line per item."""
        lines = [
            f"{self.model} serial {self.serial}, firmware ROC {self.firmware_roc} AMC {self.firmware_amc}, "
            f"{self.adc_bits} bit at {self.sampling_rate_msps:g} MS/s",
            f"record {self.record_length_samples} samples (asked {self.record_length_requested_samples}, RECLEN "
            f"reads {self.record_length_readback_samples}), post-trigger {self.post_trigger_samples} "
            f"(trigger at sample {self.pre_trigger_samples}), start {self.start_mode}, edge {self.self_trigger_edge}",
            f"time tag {'48' if self.extended_time_tag else '31'} bit x 8 ns, wraps every "
            f"{self.timestamp_wrap_ns * 1e-9:.6g} s (unwrapped by the driver)",
        ]
        for c in self.channels:
            if c.enabled:
                trig = (
                    f"self-trigger at {c.threshold_absolute_adc} ADC ({c.threshold_relative_adc} from baseline)"
                    if c.self_trigger
                    else "no self-trigger"
                )
                how = (
                    f"found for baseline_adc {c.baseline_target_adc:g} ({c.dc_offset_slope_adc_per_pct:+.2f} ADC/%)"
                    if c.dc_offset_source == "baseline_adc"
                    else "given"
                )
                lines.append(
                    f"ch{c.channel}: DC offset {c.dc_offset_pct:.1f} % {how}, baseline {c.baseline_adc:.2f} ADC "
                    f"(rms {c.baseline_rms_adc:.2f}), {trig}"
                )
        return "\n".join(lines)
