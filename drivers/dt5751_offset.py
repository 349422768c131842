"""Place each DT5751 baseline at a target ADC level by measuring it at two DC offsets and solving the line.

The direction of CH_DCOFFSET is not assumed: WaveDump predicts the baseline as 2^N (1 - DAC/65535), so
a high offset puts the baseline LOW, while other boards and firmware may do the opposite; the slope
measured between two offsets (ADC per %) covers both, and any gain or offset error of the DAC. The
offset solved for the target is then verified by a third measurement, and a baseline that leaves the
pulses less than `pulse_range_adc` before the rail they run towards is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from drivers.dt5751_errors import DigitizerError
from drivers.dt5751_settings import ADC_MAX

SEARCH_POINTS_PCT = (30.0, 70.0)  # the two offsets the line is measured at: far from both rails either way
MIN_SLOPE_ADC_PER_PCT = (
    2.0  # nominal |slope| is 10.23 ADC/% (1023 ADC over 100 %); less: the offset does nothing
)
TOLERANCE_ADC = 6.0  # the verified baseline must land this close to the target
OFFSET_STEP_PCT = 0.1  # CH_DCOFFSET increment

Polarity = Literal["negative", "positive"]
# set these DC offsets (channel -> %), measure; return channel -> (baseline, rms) in ADC and the read-back offsets
Measure = Callable[[Mapping[int, float], str], tuple[dict[int, tuple[float, float]], dict[int, float]]]


@dataclass(frozen=True)
class OffsetPlan:
    """What to do for one channel: a target baseline to search for, or an explicit offset."""

    target_adc: float | None  # None: use dc_offset_pct as given
    dc_offset_pct: float | None


@dataclass(frozen=True)
class PlacedBaseline:
    """Where one channel's baseline ended up, and how it was found."""

    dc_offset_pct: float
    baseline_adc: float
    baseline_rms_adc: float
    target_adc: float  # nan when the offset was given explicitly
    slope_adc_per_pct: float  # measured ADC per % of offset; nan when the offset was given explicitly
    source: str  # "baseline_adc" (searched) or "dc_offset_pct" (explicit override)


def solve_offset(
    where: str, ch: int, points: tuple[tuple[float, float], tuple[float, float]], target_adc: float
) -> tuple[float, float]:
    """Return (offset %, slope ADC/%) that puts the baseline of the line through `points` at `target_adc`.

    points: two (offset %, baseline ADC) measurements. Raises DigitizerError naming the channel when
    the offset does not move the baseline or the target lies outside 0-100 %.
    """
    (p1, b1), (p2, b2) = points
    slope = (b2 - b1) / (p2 - p1)
    if not abs(slope) >= MIN_SLOPE_ADC_PER_PCT:
        raise DigitizerError(
            f"{where} channel {ch}: the baseline moved from {b1:.1f} to {b2:.1f} ADC between DC offsets "
            f"{p1:g} and {p2:g} % ({slope:+.2f} ADC/%, expected about +-10): the offset does not act on this "
            f"input. Check the channel's input and CH_DCOFFSET, or set channels.{ch}.dc_offset_pct explicitly."
        )
    pct = p1 + (target_adc - b1) / slope
    if not 0.0 <= pct <= 100.0:
        reachable = sorted((b1 + (0.0 - p1) * slope, b1 + (100.0 - p1) * slope))
        raise DigitizerError(
            f"{where} channel {ch}: baseline_adc {target_adc:g} cannot be reached: the DC offset moves the "
            f"baseline {slope:+.2f} ADC/% and would need {pct:.1f} %; the reachable range is about "
            f"{reachable[0]:.0f}-{reachable[1]:.0f} ADC. Choose a baseline_adc inside it."
        )
    return round(round(pct / OFFSET_STEP_PCT) * OFFSET_STEP_PCT, 1), slope


def check_pulse_room(
    where: str, ch: int, baseline_adc: float, polarity: Polarity, pulse_range_adc: int, fix: str
) -> None:
    """Refuse a baseline closer than `pulse_range_adc` to the rail the pulses run towards (0 for negative)."""
    room = baseline_adc if polarity == "negative" else ADC_MAX - baseline_adc
    if room < pulse_range_adc:
        rail = 0 if polarity == "negative" else ADC_MAX
        raise DigitizerError(
            f"{where} channel {ch}: the baseline sits at {baseline_adc:.1f} ADC, {room:.0f} ADC from the {rail} "
            f"rail, but {polarity} pulses need pulse_range_adc = {pulse_range_adc} ADC of room: they would "
            f"clip. {fix}"
        )


def place_baselines(
    where: str, plans: Mapping[int, OffsetPlan], measure: Measure, polarity: Polarity, pulse_range_adc: int
) -> dict[int, PlacedBaseline]:
    """Find, set and verify each channel's DC offset; return where every baseline ended up.

    measure(offsets, step): sets the offsets, takes software-triggered records, returns the baselines
    and the read-back offsets; `step` names the measurement for its error messages.
    Raises DigitizerError naming the channel when a target cannot be reached or leaves no pulse room.
    """
    search = [ch for ch, plan in plans.items() if plan.target_adc is not None]
    fixed = {ch: float(plan.dc_offset_pct) for ch, plan in plans.items() if plan.target_adc is None}  # type: ignore[arg-type]
    slopes: dict[int, float] = {}
    offsets = dict(fixed)
    if search:
        p1, p2 = SEARCH_POINTS_PCT
        first, read1 = measure({**fixed, **{ch: p1 for ch in search}}, f"at DC offset {p1:g} %")
        second, read2 = measure({**fixed, **{ch: p2 for ch in search}}, f"at DC offset {p2:g} %")
        for ch in search:
            target = plans[ch].target_adc
            assert target is not None
            points = ((read1[ch], first[ch][0]), (read2[ch], second[ch][0]))
            offsets[ch], slopes[ch] = solve_offset(where, ch, points, target)
    final, read_back = measure(offsets, "at the solved DC offsets")
    placed: dict[int, PlacedBaseline] = {}
    for ch, plan in plans.items():
        base, rms = final[ch]
        if plan.target_adc is not None:
            if abs(base - plan.target_adc) > TOLERANCE_ADC:
                raise DigitizerError(
                    f"{where} channel {ch}: DC offset {read_back[ch]:.1f} % should put the baseline at "
                    f"{plan.target_adc:g} ADC ({slopes[ch]:+.2f} ADC/% measured) but it sits at {base:.1f} ADC: "
                    f"the offset does not act linearly or the input drifts. Check the input, or set "
                    f"channels.{ch}.dc_offset_pct explicitly."
                )
            fix = f"Move channels.{ch}.baseline_adc (or digitizer.baseline_adc) away from that rail."
        else:
            fix = (
                f"channels.{ch}.dc_offset_pct = {plan.dc_offset_pct:g} overrides baseline_adc: remove it to let "
                f"the driver place the baseline, or change it (on a WaveDump-like board a HIGH offset puts the "
                f"baseline LOW)."
            )
        check_pulse_room(where, ch, base, polarity, pulse_range_adc, fix)
        placed[ch] = PlacedBaseline(
            dc_offset_pct=read_back[ch],
            baseline_adc=base,
            baseline_rms_adc=rms,
            target_adc=plan.target_adc if plan.target_adc is not None else math.nan,
            slope_adc_per_pct=slopes.get(ch, math.nan),
            source="baseline_adc" if plan.target_adc is not None else "dc_offset_pct",
        )
    return placed
