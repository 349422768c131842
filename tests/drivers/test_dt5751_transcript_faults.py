"""The DT5751 driver against FELib transcripts of a real board's quirks: DC offset search, time tag, record length, no STOP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers import DigitizerError, DigitizerSettings, ErrorCode
from drivers.timestamps import wrap_period_ns
from tests.drivers.felib_transcript import Step
from tests.drivers.test_dt5751_transcript import (
    RECLEN_READ_BACK,
    _board,
    _configure_steps,
    _explicit,
    _finish_steps,
    _identity,
    _measurement,
    _setup_steps,
)

WRAP_NS = wrap_period_ns(extended=False)  # 2^31 x 8 ns


@pytest.mark.parametrize(
    ("direction", "levels", "solved"),
    [
        ("wavedump", (716, 307), "10.0"),  # high offset -> low baseline: 30 + (921 - 716.25) / -10.225 = 9.98
        (
            "inverted",
            (307, 716),
            "90.0",
        ),  # high offset -> high baseline: 30 + (921 - 307.25) / 10.225 = 90.02
    ],
)
def test_dc_offset_is_solved_from_two_measurements_and_verified_by_a_third(
    direction: str, levels: tuple[int, int], solved: str
) -> None:
    steps = _identity() + _setup_steps()
    steps += _measurement(2, levels[0], "30.0") + _measurement(2, levels[1], "70.0")
    steps += _measurement(2, 921, solved) + _finish_steps("891", offset=f"{float(solved):.3f}")
    board, transcript = _board(steps)
    effective = board.configure(DigitizerSettings(baseline_triggers=2))  # target: 90 % of 1023 = 921
    transcript.assert_done()
    ch0 = effective.channels[0]
    slope = (levels[1] - levels[0]) / 40.0
    assert ch0.dc_offset_slope_adc_per_pct == pytest.approx(slope)
    assert (ch0.dc_offset_source, ch0.baseline_target_adc, ch0.dc_offset_pct) == (
        "baseline_adc",
        921,
        float(solved),
    )
    assert ch0.baseline_adc == pytest.approx(921.25) and ch0.threshold_absolute_adc == 891
    attrs = effective.as_attrs()
    assert attrs["ch0_dc_offset_slope_adc_per_pct"] == pytest.approx(slope) and math.isnan(
        attrs["ch1_baseline_target_adc"]
    )


def test_a_baseline_the_solved_offset_misses_is_refused_naming_the_channel() -> None:
    steps = _identity() + _setup_steps() + _measurement(2, 716, "30.0") + _measurement(2, 307, "70.0")
    steps += _measurement(2, 880, "10.0")  # the DAC is not linear: 41 ADC short
    board, transcript = _board(steps)
    with pytest.raises(
        DigitizerError, match=r"channel 0: DC offset 10.0 % should put the baseline at 921 ADC .* 880.3"
    ):
        board.configure(DigitizerSettings(baseline_triggers=2))
    transcript.assert_done()


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (
            (500, 300),
            r"channel 0: baseline_adc 921 cannot be reached: .* -5.00 ADC/% .* range is about 150-650 ADC",
        ),
        ((520, 510), r"channel 0: the baseline moved from 520.3 to 510.3 ADC .* does not act on this input"),
    ],
)
def test_a_target_out_of_reach_or_a_dead_offset_is_refused(levels: tuple[int, int], message: str) -> None:
    steps = (
        _identity() + _setup_steps() + _measurement(2, levels[0], "30.0") + _measurement(2, levels[1], "70.0")
    )
    board, transcript = _board(steps)
    with pytest.raises(DigitizerError, match=message):
        board.configure(DigitizerSettings(baseline_triggers=2))
    transcript.assert_done()


def test_an_explicit_offset_putting_negative_pulses_near_the_0_rail_is_refused() -> None:
    steps = _identity() + _setup_steps() + _measurement(2, 123, "88.0")  # WaveDump direction: 88 % is LOW
    board, transcript = _board(steps)
    with pytest.raises(DigitizerError, match=r"channel 0: the baseline sits at 123.3 ADC, 123 ADC from the 0 rail.*"
                       r"pulse_range_adc = 512.*dc_offset_pct = 88 overrides baseline_adc"):  # fmt: skip
        board.configure(_explicit(baseline_triggers=2))
    transcript.assert_done()


def test_the_extended_time_tag_is_enabled_where_the_board_has_it() -> None:
    steps = _identity() + _setup_steps(extended=True) + _measurement(2, 900, "88.0") + _finish_steps("870")
    board, transcript = _board(steps)
    effective = board.configure(_explicit(baseline_triggers=2))
    transcript.assert_done()
    assert effective.extended_time_tag and effective.timestamp_wrap_ns == 8 << 48


def test_the_record_length_the_board_delivers_is_adopted() -> None:
    delivered = RECLEN_READ_BACK + 7  # RECLEN reads back 8001, the records hold 8008 samples
    steps = _identity() + _setup_steps() + _measurement(2, 900, "88.0", size=delivered) + _finish_steps("870")
    steps += [
        Step("cmd", "/cmd/CLEARDATA"),
        Step("cmd", "/cmd/ARMACQUISITION"),
        Step("register", "0x8104", reply=0b100),
    ]
    pulse = np.full(delivered, 900, dtype=np.uint16)
    pulse[-1] = 700  # the last sample, beyond the read-back length, arrives too
    event = {
        "WAVEFORM": {0: pulse},
        "WAVEFORM_SIZE": [delivered, 0, 0, 0],
        "BOARD_FAIL": False,
        "EVENT_SIZE": 1,
    }
    steps += [
        Step("read", "/endpoint/scope", reply={**event, "TRIGGER_ID": 0, "TIMESTAMP_NS": 8}),
        Step("read", "/endpoint/scope", error=ErrorCode.TIMEOUT),
        Step("register", "0x8104", reply=0b100),
    ]
    board, transcript = _board(steps)
    effective = board.configure(_explicit(baseline_triggers=2))
    assert (effective.record_length_samples, effective.record_length_readback_samples) == (
        delivered,
        RECLEN_READ_BACK,
    )
    assert (
        effective.record_length_requested_samples == 8000
        and effective.pre_trigger_samples == delivered - 6400
    )
    board.arm()
    batch = board.read_batch(5, max_wait_s=0.5)
    transcript.assert_done()
    assert batch.waveforms.shape == (1, 1, delivered) and batch.waveforms[0, 0, -1] == 700


def _run_steps(events: list[dict[str, object]]) -> list[Step]:
    pulse = np.full(RECLEN_READ_BACK, 900, dtype=np.uint16)
    base = {
        "WAVEFORM": {0: pulse},
        "WAVEFORM_SIZE": [RECLEN_READ_BACK, 0, 0, 0],
        "BOARD_FAIL": False,
        "EVENT_SIZE": 1,
    }
    steps = _identity() + _configure_steps(2, 900, threshold="870")
    steps += [Step("cmd", "/cmd/CLEARDATA"), Step("cmd", "/cmd/ARMACQUISITION")]
    return steps + [Step("read", "/endpoint/scope", reply={**base, **e}) for e in events]


def test_a_wrapping_time_tag_is_unwrapped_within_and_across_batches() -> None:
    raw = [WRAP_NS - 16, WRAP_NS - 8, 0, 8, WRAP_NS - 8, 24]  # wraps inside batch 1 and inside batch 2
    reads = [Step("read", "/endpoint/scope", reply=step.reply) for step in _run_steps(
        [{"TRIGGER_ID": i, "TIMESTAMP_NS": t} for i, t in enumerate(raw)])[-len(raw):]]  # fmt: skip
    running = Step("register", "0x8104", reply=0b100)
    steps = _run_steps([]) + [running, *reads[:4], running, running, *reads[4:], running]
    board, transcript = _board(steps)
    board.configure(_explicit(baseline_triggers=2))
    board.arm()
    first = board.read_batch(4, max_wait_s=1.0)
    second = board.read_batch(2, max_wait_s=1.0)
    transcript.assert_done()
    stamps = np.concatenate([first.timestamp_ns, second.timestamp_ns]).astype(np.int64)
    assert list(stamps) == [
        WRAP_NS - 16,
        WRAP_NS - 8,
        WRAP_NS,
        WRAP_NS + 8,
        2 * WRAP_NS - 8,
        2 * WRAP_NS + 24,
    ]


@pytest.mark.parametrize(
    ("status_after_disarm", "end"),
    [
        (0b0000, "EMPTY"),
        (0b1000, ""),
    ],  # stopped and empty: the run ends; an event still in memory: it does not
)
def test_without_stop_the_status_register_ends_the_run(status_after_disarm: int, end: str) -> None:
    steps = _run_steps([])
    steps += [
        Step("cmd", "/cmd/DISARMACQUISITION"),
        Step("read", "/endpoint/scope", error=ErrorCode.TIMEOUT),  # no STOP from this endpoint
        Step("register", "0x8104", reply=status_after_disarm),
    ]
    if status_after_disarm == 0:
        steps.append(Step("read", "/endpoint/scope", error=ErrorCode.TIMEOUT))  # one confirming read
    board, transcript = _board(steps)
    board.configure(_explicit(baseline_triggers=2))
    board.arm()
    board.disarm()
    batch = board.read_batch(10, max_wait_s=0.05)
    transcript.assert_done()
    assert batch.end_of_run == bool(end) and board.end_signal == end
