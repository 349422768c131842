"""Parameters of the simulated test stand's physics (PHYSICS.md section 2.9, the paper preset)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.csi_crystal import MODEL_MAX_K, MODEL_MIN_K

ChannelSource = Literal["crystal", "noise", "dark"]


class PhysicsSettings(BaseModel):
    """What the simulated crystal, PMT, source and front end do; defaults reproduce the paper at 77 K.

    Units are in the names. Ranges are the plausible ones of PHYSICS.md, wide enough to test the
    analysis away from the paper's values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=20250101, ge=0)
    # rates
    rate_hz: float = Field(default=500.0, gt=0.0, le=1.0e6, description="Am-241 interactions in the crystal")
    pace: Literal["realtime", "max"] = "realtime"
    environment_rate_hz: float = Field(default=1.0, ge=0.0)
    muon_rate_hz: float = Field(default=0.07, ge=0.0)
    # crystal
    light_yield_pe_per_kev: float = Field(
        default=35.2, gt=0.0, le=200.0, description="LY at 77 K, Qspe-equivalent"
    )
    sigma_intrinsic_rel: float = Field(default=0.0182, ge=0.0, le=0.2)
    temperature_k: float = Field(default=77.0, ge=MODEL_MIN_K, le=MODEL_MAX_K, description="K, 2.5-350 K")
    surface_factor: float = Field(default=1.0, gt=0.0, le=2.0, description="1.0 polished, 0.65 ground")
    shape_factor: float = Field(default=1.0, gt=0.0, le=2.0, description="1.0 cube, 0.97 cylinder")
    decay_ns: tuple[float, ...] = (25.0, 250.0, 1000.0)
    decay_fraction: tuple[float, ...] = (0.05, 0.15, 0.80)
    # PMT
    q_spe_adc_ns: float = Field(default=32.5, gt=0.0, le=500.0)
    sigma_spe_adc_ns: float = Field(default=10.37, ge=0.0, le=500.0)
    spe_tau_ns: float = Field(default=2.2, ge=0.5, le=10.0)
    tts_sigma_ns: float = Field(default=3.8, ge=0.0, le=20.0)
    dark_rate_hz: float = Field(default=100.0, ge=0.0, le=1.0e6)
    afterpulse_probability: float = Field(default=0.0, ge=0.0, le=0.2, description="per PE")
    afterpulse_delay_ns: float = Field(default=600.0, ge=0.0)
    afterpulse_delay_sigma_ns: float = Field(default=100.0, ge=0.0)
    afterpulse_max_pe: int = Field(default=3, ge=1, le=10)
    low_charge_fraction: float = Field(default=0.0, ge=0.0, le=0.5)
    low_charge_mean_rel: float = Field(default=0.2, gt=0.0, le=1.0)
    # source
    k_escape_fraction: float = Field(default=0.15, ge=0.0, le=0.5)
    l_escape_fraction: float = Field(default=0.001, ge=0.0, le=0.1)
    sum_fraction: float = Field(default=0.02, ge=0.0, le=0.1)
    other_xray_fraction: float = Field(default=0.05, ge=0.0, le=0.5)
    line_transmission: tuple[float, ...] = Field(
        default=(1.0,) * 9,
        description="capsule and wrapping, per Am-241 line in the order of am241_source.LINES",
    )
    nonproportionality_per_decade: float = Field(
        default=0.0, ge=-0.1, le=0.1, description="LY(E) = LY (1 + d log10(E / 59.54 keV)); 0 = proportional"
    )
    ac_coupling_tau_ns: float | None = Field(
        default=None,
        gt=0,
        description="None: DC-coupled; else the RC of an AC coupling (undershoot), ~17000 ns",
    )
    # front end
    # 0.8 ADC rms: a DT5751 on the stand's long cable (0.7-0.9 plausible); PHYSICS.md's 0.6 is the quiet end
    noise_rms_adc: float = Field(default=0.8, ge=0.0, le=20.0)
    pedestal_offsets_adc: tuple[float, float, float, float] = (2.3, -1.7, 0.8, -3.1)
    channel_sources: tuple[ChannelSource, ChannelSource, ChannelSource, ChannelSource] = (
        "crystal",
        "noise",
        "noise",
        "noise",
    )
    memory_events: int | None = Field(
        default=None, ge=1, description="board event memory; None = 1.8 MS/ch / record length, power of two"
    )

    @model_validator(mode="after")
    def _check(self) -> PhysicsSettings:
        if len(self.decay_ns) != len(self.decay_fraction) or not self.decay_ns:
            raise ValueError("decay_ns and decay_fraction need the same, non-zero number of components")
        if any(t <= 0 for t in self.decay_ns) or any(f < 0 for f in self.decay_fraction):
            raise ValueError("decay_ns must be > 0 and decay_fraction >= 0")
        if abs(sum(self.decay_fraction) - 1.0) > 1e-6:
            raise ValueError(f"decay_fraction must sum to 1, not {sum(self.decay_fraction):.6f}")
        if self.channel_sources.count("crystal") > 1:
            raise ValueError("only one channel can see the crystal (channel_sources has 'crystal' twice)")
        if len(self.line_transmission) != 9 or any(not 0.0 <= t <= 1.0 for t in self.line_transmission):
            raise ValueError("line_transmission needs 9 factors between 0 and 1, one per Am-241 line")
        if self.k_escape_fraction + self.l_escape_fraction + self.sum_fraction > 1.0:
            raise ValueError("k_escape + l_escape + sum fractions of 59.54 keV events exceed 1")
        return self

    @property
    def crystal_channel(self) -> int | None:
        """The board channel the PMT is plugged into, or None."""
        return self.channel_sources.index("crystal") if "crystal" in self.channel_sources else None
