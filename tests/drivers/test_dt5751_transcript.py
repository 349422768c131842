"""The DT5751 driver against a transcript of FELib calls: which parameters get which strings, in which order."""

from __future__ import annotations

import numpy as np
import pytest

from drivers import (
    ChannelSettings,
    DigitizerError,
    DigitizerLinkError,
    DigitizerSettings,
    Dt5751,
    ErrorCode,
    FelibError,
)
from tests.drivers.felib_transcript import Step, Transcript, TranscriptNode

RECLEN_READ_BACK = 8001  # the x751 rounds 8000 up to a multiple of 7


def _identity() -> list[Step]:
    return [
        Step("get", "/par/MODELNAME", reply="DT5751"),
        Step("get", "/par/SERIALNUM", reply="1234"),
        Step("get", "/par/NUMCH", reply="4"),
    ]


def _baseline_event(i: int, level: int, size: int = RECLEN_READ_BACK) -> dict[str, object]:
    samples = np.full(size, level, dtype=np.uint16)
    samples[::4] += 1  # baseline level + 0.25 on average, rms sqrt(0.25 * 0.75)
    return {
        "TIMESTAMP_NS": 1000 * i,
        "TRIGGER_ID": i,
        "WAVEFORM": {0: samples},
        "WAVEFORM_SIZE": [size, 0, 0, 0],
        "BOARD_FAIL": False,
        "EVENT_SIZE": 10688,
    }


def _setup_steps(edge: str = "FALL", extended: bool = False) -> list[Step]:
    """RESET to the data format: the settings, the extended time tag, channels, calibration, read-backs."""
    steps = [
        Step("cmd", "/cmd/RESET"),
        Step("get", "/par/ADC_SAMPLRATE", reply="1000.000"),
        Step("set", "/par/RECLEN", "8000"),
        Step("set", "/par/POSTTRG", "6400"),
        Step("set", "/par/STARTMODE", "START_MODE_SW"),
        Step("set", "/par/TRG_SW_ENABLE", "TRUE"),
        Step("set", "/par/TRG_EXT_ENABLE", "FALSE"),
        Step("set", "/par/IOLEVEL", "FPIOTYPE_NIM"),
        Step("set", "/par/TRG_COUNT_ALL", "TRUE"),
        Step("set", "/par/SELF_TRIGGER_EDGE", edge),
    ]
    if extended:
        steps += [
            Step("set", "/par/EXTRAS_OPT", "EXTRAS_OPT_TT48"),
            Step("get", "/par/EXTRAS_OPT", reply="EXTRAS_OPT_TT48"),
        ]
    else:  # a board without the parameter refuses it
        steps.append(Step("set", "/par/EXTRAS_OPT", "EXTRAS_OPT_TT48", error=ErrorCode.INVALID_PARAM))
    for ch in range(4):
        steps += [
            Step("set", f"/ch/{ch}/par/CH_ENABLED", "TRUE" if ch == 0 else "FALSE"),
            Step("set", f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", "FALSE"),
            Step("set", f"/ch/{ch}/par/CH_OUT_PROPAGATE", "FALSE"),
        ]
    steps += [
        Step("cmd", "/cmd/CALIBRATEADC"),
        Step("get", "/par/RECLEN", reply=str(RECLEN_READ_BACK)),
        Step("get", "/par/RECLEN/maxvalue", reply="1.79999e+06"),
        Step("children", "/endpoint", reply=["par", "scope", "raw"]),
        Step("set", "/endpoint/par/ACTIVEENDPOINT", "scope"),
        Step("node", "/endpoint/scope"),
        Step(
            "format",
            "/endpoint/scope",
            [
                {"name": "TIMESTAMP_NS", "type": "U64"},
                {"name": "TRIGGER_ID", "type": "U32"},
                {"name": "WAVEFORM", "type": "U16", "dim": 2, "shape": [4, 1_799_990 + 64]},
                {"name": "WAVEFORM_SIZE", "type": "SIZE_T", "dim": 1, "shape": [4]},
                {"name": "BOARD_FAIL", "type": "BOOL"},
                {"name": "EVENT_SIZE", "type": "SIZE_T"},
            ],
        ),
    ]
    return steps


def _measurement(
    n_baseline: int, level: int, offset: str, read_back: str | None = None, size: int = RECLEN_READ_BACK
) -> list[Step]:
    """One baseline measurement of channel 0 at DC offset `offset`: set, read back, n software triggers."""
    return [
        Step("set", "/ch/0/par/CH_DCOFFSET", offset),
        Step("get", "/ch/0/par/CH_DCOFFSET", reply=read_back or f"{float(offset):.3f}"),
        Step("cmd", "/cmd/CLEARDATA"),
        Step("cmd", "/cmd/ARMACQUISITION"),
        *[Step("cmd", "/cmd/SENDSWTRIGGER") for _ in range(n_baseline)],
        Step("register", "0x8104", reply=0b1100),  # run + event ready
        *[Step("read", "/endpoint/scope", reply=_baseline_event(i, level, size)) for i in range(n_baseline)],
        Step("register", "0x8104", reply=0b1100),
        Step("cmd", "/cmd/DISARMACQUISITION"),
        Step("read", "/endpoint/scope", error=ErrorCode.STOP),
        Step("cmd", "/cmd/CLEARDATA"),
    ]


def _finish_steps(threshold: str, edge: str = "FALL", offset: str = "88.000") -> list[Step]:
    steps = [
        Step("set", "/ch/0/par/CH_THRESHOLD", threshold),
        Step("set", "/ch/0/par/CH_TRG_GLOBAL_GEN", "TRUE"),
        Step("set", "/par/STARTMODE", "START_MODE_SW"),
        Step("get", "/par/ADC_SAMPLRATE", reply="1000.000"),
    ]
    for ch in range(4):
        steps += [
            Step("get", f"/ch/{ch}/par/CH_ENABLED", reply="TRUE" if ch == 0 else "FALSE"),
            Step("get", f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", reply="TRUE" if ch == 0 else "FALSE"),
            Step("get", f"/ch/{ch}/par/CH_DCOFFSET", reply=offset if ch == 0 else "50.000"),
            Step("get", f"/ch/{ch}/par/CH_THRESHOLD", reply=threshold if ch == 0 else "0"),
        ]
    steps += [
        Step("get", "/par/RECLEN", reply=str(RECLEN_READ_BACK)),
        Step("get", "/par/ROC_FWVER", reply="04.25"),
        Step("get", "/par/AMC_FWVER", reply="00.16"),
        Step("get", "/par/ADC_NBIT", reply="10"),
        Step("get", "/par/POSTTRG", reply="6400"),
        Step("get", "/par/STARTMODE", reply="START_MODE_SW"),
        Step("get", "/par/SELF_TRIGGER_EDGE", reply=edge),
        Step("get", "/par/TRG_COUNT_ALL", reply="TRUE"),
        Step("get", "/par/TRG_EXT_ENABLE", reply="FALSE"),
    ]
    return steps


def _configure_steps(n_baseline: int, level: int, threshold: str, edge: str = "FALL") -> list[Step]:
    """configure() of channel 0 with an explicit DC offset of 88 %: one baseline measurement."""
    return _setup_steps(edge) + _measurement(n_baseline, level, "88.0") + _finish_steps(threshold, edge)


def _explicit(**settings: object) -> DigitizerSettings:
    channel = ChannelSettings(self_trigger=True, dc_offset_pct=88.0)
    return DigitizerSettings(channels={0: channel}, **settings)


def _board(steps: list[Step]) -> tuple[Dt5751, Transcript]:
    transcript = Transcript(steps)
    board = Dt5751(TranscriptNode(transcript), "dig1://transcript", (FelibError,), sleep=lambda s: None)
    return board, transcript


def test_configure_sends_the_documented_sequence_and_converts_the_threshold() -> None:
    board, transcript = _board(_identity() + _configure_steps(4, 900, threshold="870"))  # 900.25 - 30
    effective = board.configure(_explicit(baseline_triggers=4))
    transcript.assert_done()
    assert effective.record_length_samples == RECLEN_READ_BACK
    assert effective.pre_trigger_samples == RECLEN_READ_BACK - 6400
    ch0 = effective.channels[0]
    assert ch0.baseline_adc == pytest.approx(900.25, abs=1e-3)
    assert ch0.baseline_rms_adc == pytest.approx(np.sqrt(0.25 * 0.75), rel=1e-3)
    assert ch0.threshold_absolute_adc == 870
    assert ch0.threshold_relative_adc == 30
    assert effective.enabled_channels == (0,)
    assert effective.as_attrs()["ch0_threshold_absolute_adc"] == 870


def test_positive_polarity_sets_rising_edge_and_threshold_above_baseline() -> None:
    board, transcript = _board(_identity() + _configure_steps(2, 100, threshold="130", edge="RISE"))
    board.configure(_explicit(baseline_triggers=2, polarity="positive"))
    transcript.assert_done()


def test_run_reads_events_counts_trigger_id_gaps_and_ends_on_stop() -> None:
    steps = _identity() + _configure_steps(2, 900, threshold="870")
    pulse = np.full(RECLEN_READ_BACK, 900, dtype=np.uint16)
    pulse[1601:1700] = 850
    event = {
        "WAVEFORM": {0: pulse},
        "WAVEFORM_SIZE": [RECLEN_READ_BACK, 0, 0, 0],
        "BOARD_FAIL": False,
        "EVENT_SIZE": 1,
    }
    steps += [
        Step("cmd", "/cmd/CLEARDATA"),
        Step("cmd", "/cmd/ARMACQUISITION"),
        Step("register", "0x8104", reply=0b100),  # running, nothing yet
        Step("read", "/endpoint/scope", reply={**event, "TRIGGER_ID": 0, "TIMESTAMP_NS": 10}),
        Step("read", "/endpoint/scope", reply={**event, "TRIGGER_ID": 1, "TIMESTAMP_NS": 20}),
        Step("read", "/endpoint/scope", reply={**event, "TRIGGER_ID": 5, "TIMESTAMP_NS": 30}),  # 3 lost
        Step("read", "/endpoint/scope", error=ErrorCode.TIMEOUT),
        Step("register", "0x8104", reply=0b10100),  # run + event full
        Step("cmd", "/cmd/DISARMACQUISITION"),
        Step("read", "/endpoint/scope", reply={**event, "TRIGGER_ID": 6, "TIMESTAMP_NS": 40}),
        Step("read", "/endpoint/scope", error=ErrorCode.STOP),
    ]
    board, transcript = _board(steps)
    board.configure(_explicit(baseline_triggers=2))
    board.arm()
    batch = board.read_batch(10, max_wait_s=1.0)
    assert len(batch) == 3 and batch.lost_triggers == 3 and batch.memory_full_seen and not batch.end_of_run
    assert batch.waveforms.dtype == np.int16 and batch.waveforms.shape == (3, 1, RECLEN_READ_BACK)
    assert batch.waveforms[0, 0, 1650] == 850
    assert list(batch.trigger_id) == [0, 1, 5] and list(batch.timestamp_ns) == [10, 20, 30]
    board.disarm()
    last = board.read_batch(10, max_wait_s=1.0)
    assert len(last) == 1 and last.end_of_run and last.lost_triggers == 0
    transcript.assert_done()
    assert board.lost_triggers_total == 3 and board.events_read_total == 4


def test_trigger_id_wraps_at_24_bits() -> None:
    board, _ = _board(_identity() + _configure_steps(2, 900, threshold="870"))
    board.configure(_explicit(baseline_triggers=2))
    reader = board._reader
    assert reader is not None
    reader._last_trigger_id = (1 << 24) - 2
    assert reader._count_gap((1 << 24) - 1) == 0
    assert reader._count_gap(1) == 1  # 0 was lost across the wrap


def test_communication_error_while_reading_is_a_link_fault() -> None:
    steps = _identity() + _configure_steps(2, 900, threshold="870")
    steps += [
        Step("cmd", "/cmd/CLEARDATA"),
        Step("cmd", "/cmd/ARMACQUISITION"),
        Step("register", "0x8104", reply=0b100),
        Step("read", "/endpoint/scope", error=ErrorCode.COMMUNICATION_ERROR),
    ]
    board, transcript = _board(steps)
    board.configure(_explicit(baseline_triggers=2))
    board.arm()
    with pytest.raises(DigitizerLinkError, match="link to the board is lost.*cable"):
        board.read_batch(10)
    transcript.assert_done()


def test_refused_value_names_parameter_value_and_allowed_range() -> None:
    steps = _identity() + [
        Step("cmd", "/cmd/RESET"),
        Step("get", "/par/ADC_SAMPLRATE", reply="1000"),
        Step("set", "/par/RECLEN", "8000", error=ErrorCode.INVALID_PARAM),
        Step("get", "/par/RECLEN/minvalue", reply="14"),
        Step("get", "/par/RECLEN/maxvalue", reply="1799994"),
        Step("get", "/par/RECLEN/allowedvalues", error=ErrorCode.INVALID_PARAM),
    ]
    board, transcript = _board(steps)
    with pytest.raises(DigitizerError, match=r"refused /par/RECLEN = '8000'.*minvalue 14, maxvalue 1799994"):
        board.configure(DigitizerSettings(channels={0: ChannelSettings(self_trigger=True)}))
    transcript.assert_done()


def test_missing_scope_endpoint_says_which_firmware_is_needed() -> None:
    steps = _configure_steps(1, 900, "870")
    cut = next(i for i, step in enumerate(steps) if step.kind == "children")
    steps = _identity() + steps[:cut] + [Step("children", "/endpoint", reply=["par", "dpppsd", "raw"])]
    board, transcript = _board(steps)
    with pytest.raises(DigitizerError, match="no scope endpoint.*standard"):
        board.configure(_explicit(baseline_triggers=1))
    transcript.assert_done()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"BOARD_FAIL": True}, "BOARD_FAIL in event 0"),
        (
            {"WAVEFORM_SIZE": [4000, 0, 0, 0]},
            "sent 4000 samples on channel 0 where its earlier records of this configuration had 8001",
        ),
    ],
)
def test_board_failure_and_short_records_stop_the_run(event: dict, message: str) -> None:
    steps = _identity() + _configure_steps(2, 900, threshold="870")
    good = _baseline_event(0, 900)
    steps += [Step("cmd", "/cmd/CLEARDATA"), Step("cmd", "/cmd/ARMACQUISITION"),
              Step("register", "0x8104", reply=0b100),
              Step("read", "/endpoint/scope", reply={**good, **event})]  # fmt: skip
    board, transcript = _board(steps)
    board.configure(_explicit(baseline_triggers=2))
    board.arm()
    with pytest.raises(DigitizerError, match=message):
        board.read_batch(10)
    transcript.assert_done()
