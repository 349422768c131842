"""The simulated DT5751's FELib node interface: names, strings, errors, commands, endpoint, TIMEOUT/STOP."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.felib_types import ErrorCode, FelibError
from simulators import board_of, connect
from simulators.dt5751_faults import Dt5751Faults
from simulators.felib_tree import NodeType

FORMAT = [
    {"name": "TIMESTAMP_NS", "type": "U64"},
    {"name": "TRIGGER_ID", "type": "U32"},
    {"name": "WAVEFORM", "type": "U16", "dim": 2, "shape": [4, 8100]},
    {"name": "WAVEFORM_SIZE", "type": "SIZE_T", "dim": 1, "shape": [4]},
]


def _code(exc: pytest.ExceptionInfo[FelibError]) -> ErrorCode:
    return exc.value.code


@pytest.fixture
def dig():
    with connect("sim://dt5751?seed=3&pace=max") as root:
        yield root


def _ready(dig, reclen: str = "8000") -> tuple:
    dig.set_value("/par/RECLEN", reclen)
    dig.set_value("/par/POSTTRG", "6400")
    dig.set_value("/ch/1..3/par/CH_ENABLED", "FALSE")
    dig.set_value("/ch/0/par/CH_DCOFFSET", "12")  # WaveDump direction: 12 % puts the baseline near 900
    dig.set_value("/ch/0/par/CH_THRESHOLD", "870")
    dig.set_value("/ch/0/par/CH_TRG_GLOBAL_GEN", "TRUE")
    dig.set_value("/par/SELF_TRIGGER_EDGE", "FALL")
    dig.send_command("/cmd/CALIBRATEADC")
    dig.set_value("/endpoint/par/ACTIVEENDPOINT", "scope")
    ep = dig.get_node("/endpoint/scope")
    return ep, ep.set_read_data_format(FORMAT)


def test_names_are_case_insensitive_and_values_are_formatted_strings(dig) -> None:
    assert dig.get_value("/par/modelname") == "DT5751"
    assert dig.par.NUMCH.value == "4"
    dig.par.reclen.value = "8000"
    assert dig.get_value("/par/RECLEN") == "8001"  # rounded up to a multiple of 7 samples
    dig.set_value("/ch/2/par/ch_dcoffset", "12.34")
    assert dig.get_value("/ch/2/par/CH_DCOFFSET") == "12.300"
    assert dig.ch[2].par.CH_DCOFFSET.value == "12.300"
    assert dig["ch/2/par"].get_value("CH_DCOFFSET/") == "12.300"
    assert dig.get_value("/par/RECLEN/maxvalue") == "1.79999e+06"
    assert dig.get_node("/par/RECLEN").type is NodeType.PARAMETER
    assert [n.name for n in dig.endpoint] == ["par", "scope", "raw"]


def test_range_syntax_sets_several_channels(dig) -> None:
    dig.set_value("/ch/0..3/par/CH_THRESHOLD", "500")
    assert [dig.get_value(f"/ch/{c}/par/CH_THRESHOLD") for c in range(4)] == ["500"] * 4


def test_values_must_be_strings_and_nodes_are_not_assignable(dig) -> None:
    with pytest.raises(AttributeError, match="encode"):
        dig.set_value("/par/RECLEN", 8000)
    with pytest.raises(AttributeError, match=r"\.value"):
        dig.par.RECLEN = "8000"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("/par/NOSUCH", "1", "not found"),
        ("/ch/7/par/CH_THRESHOLD", "1", "not found"),
        ("/par/RECLEN", "abc", "not a number"),
        ("/par/RECLEN", "2000000", "out of range"),
        ("/ch/0/par/CH_THRESHOLD", "1024", "out of range"),
        ("/par/STARTMODE", "START_MODE_NOW", "allowed START_MODE_SW"),
        ("/par/MODELNAME", "X", "read-only"),
        ("/cmd/ARMACQUISITION", "1", "not a parameter"),
    ],
)
def test_bad_names_and_values_raise_invalid_param(dig, path: str, value: str, message: str) -> None:
    with pytest.raises(FelibError, match=message) as exc:
        dig.set_value(path, value)
    assert _code(exc) is ErrorCode.INVALID_PARAM
    assert exc.value.func == "CAEN_FELib_SetValue"


def test_parameters_not_settable_in_run_are_refused_while_armed(dig) -> None:
    _ready(dig)
    dig.send_command("/cmd/ARMACQUISITION")
    with pytest.raises(FelibError, match="while the acquisition is armed") as exc:
        dig.set_value("/par/RECLEN", "1000")
    assert _code(exc) is ErrorCode.COMMAND_ERROR
    dig.set_value("/ch/0/par/CH_THRESHOLD", "860")  # thresholds may change in a run
    with pytest.raises(FelibError, match="already armed"):
        dig.send_command("/cmd/ARMACQUISITION")


def test_read_fills_the_callers_arrays_then_stop_once_then_timeout(dig) -> None:
    ep, data = _ready(dig)
    fields = {f.name: f.value for f in data}
    dig.send_command("/cmd/ARMACQUISITION")
    ids = []
    for _ in range(3):
        ep.read_data(100, data)
        ids.append(int(fields["TRIGGER_ID"]))
        assert list(fields["WAVEFORM_SIZE"]) == [8001, 0, 0, 0]
        assert fields["WAVEFORM"][0, 1601] <= 870 < fields["WAVEFORM"][0, 1600]
    assert ids == [0, 1, 2]
    wf_buffer = fields["WAVEFORM"]
    ep.read_data(100, data)
    assert fields["WAVEFORM"] is wf_buffer  # FELib overwrites the same arrays every call
    dig.send_command("/cmd/DISARMACQUISITION")
    codes = []
    for _ in range(40):
        try:
            ep.read_data(0, data)
        except FelibError as exc:
            codes.append(exc.code)
            if len(codes) == 2:
                break
    assert codes == [ErrorCode.STOP, ErrorCode.TIMEOUT]


def test_software_trigger_records_the_baseline_and_calibration_matters(dig) -> None:
    ep, data = _ready(dig)
    fields = {f.name: f.value for f in data}
    dig.set_value("/ch/0/par/CH_TRG_GLOBAL_GEN", "FALSE")
    dig.send_command("/cmd/ARMACQUISITION")
    with pytest.raises(FelibError) as exc:
        ep.read_data(10, data)  # no trigger source: nothing comes
    assert _code(exc) is ErrorCode.TIMEOUT
    dig.send_command("/cmd/SENDSWTRIGGER")
    ep.read_data(10, data)
    calibrated = fields["WAVEFORM"][0, :8001].astype(float)
    assert abs(np.median(calibrated) - (Dt5751Faults().baseline_adc(12.0, 1023) + 2.3)) < 1.0
    dig.send_command("/cmd/DISARMACQUISITION")
    dig.send_command("/cmd/RESET")  # back to defaults, and no longer calibrated
    dig.set_value("/ch/1..3/par/CH_ENABLED", "FALSE")
    dig.set_value("/ch/0/par/CH_DCOFFSET", "12")
    dig.set_value("/par/RECLEN", "8000")
    dig.set_value("/endpoint/par/ACTIVEENDPOINT", "scope")
    data = ep.set_read_data_format(FORMAT)
    fields = {f.name: f.value for f in data}
    dig.send_command("/cmd/ARMACQUISITION")
    dig.send_command("/cmd/SENDSWTRIGGER")
    ep.read_data(10, data)
    raw = fields["WAVEFORM"][0, :8001].astype(float)
    assert raw[1::2].mean() - raw[0::2].mean() == pytest.approx(8.0, abs=0.2)  # interleaved-ADC offset


def test_endpoint_requires_scope_and_a_valid_format(dig) -> None:
    ep = dig.get_node("/endpoint/scope")
    with pytest.raises(FelibError, match="unknown field"):
        ep.set_read_data_format([{"name": "CHARGE", "type": "U16"}])
    with pytest.raises(FelibError, match="dimension 2"):
        ep.set_read_data_format([{"name": "WAVEFORM", "type": "U16", "dim": 1, "shape": [8000]}])
    data = ep.set_read_data_format(FORMAT)
    dig.send_command("/cmd/ARMACQUISITION")
    with pytest.raises(FelibError, match="ACTIVEENDPOINT") as exc:
        ep.read_data(10, data)
    assert _code(exc) is ErrorCode.COMMAND_ERROR
    with pytest.raises(FelibError) as exc:
        dig.get_node("/endpoint/raw").set_read_data_format([{"name": "DATA", "type": "U8"}])
    assert _code(exc) is ErrorCode.NOT_IMPLEMENTED


def test_status_register_and_device_tree(dig) -> None:
    assert dig.get_user_register(0x8104) == 0
    _ready(dig)
    dig.send_command("/cmd/ARMACQUISITION")
    assert dig.get_user_register(0x8104) & 0b100
    tree = dig.get_device_tree()
    assert tree["par"]["reclen"]["value"]["value"] == "8001"
    assert tree["par"]["reclen"]["setinrun"]["value"] == "FALSE"
    assert tree["ch"]["0"]["par"]["ch_threshold"]["maxvalue"]["value"] == "1023"


def test_closed_or_faulty_device_raises(dig) -> None:
    board_of(dig).tree.fault = ErrorCode.COMMUNICATION_ERROR
    with pytest.raises(FelibError) as exc:
        dig.get_value("/par/RECLEN")
    assert _code(exc) is ErrorCode.COMMUNICATION_ERROR
    board_of(dig).tree.fault = None
    dig.close()
    with pytest.raises(FelibError) as exc:
        dig.get_value("/par/RECLEN")
    assert _code(exc) is ErrorCode.INVALID_HANDLE


def test_same_seed_same_waveforms_other_seed_other_waveforms() -> None:
    def first_records(seed: int) -> np.ndarray:
        with connect(f"sim://dt5751?seed={seed}&pace=max") as root:
            ep, data = _ready(root)
            root.send_command("/cmd/ARMACQUISITION")
            out = []
            for _ in range(20):
                ep.read_data(100, data)
                out.append(data[2].value[0, :8001].copy())
            return np.array(out)

    a, b, c = first_records(9), first_records(9), first_records(10)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(("direction", "sign"), [("wavedump", -1.0), ("inverted", 1.0)])
def test_the_dc_offset_moves_the_baseline_in_the_chosen_direction_with_a_gain_error(
    direction: str, sign: float
) -> None:
    url = f"sim://dt5751?seed=3&pace=max&dc_offset_direction={direction}&dc_offset_gain=0.95&dc_offset_error_adc=-9"
    with connect(url) as root:
        board = board_of(root)
        levels = []
        for pct in ("20", "80"):
            root.set_value("/ch/0/par/CH_DCOFFSET", pct)
            levels.append(board.board_setup().baseline_adc[0])
    assert (levels[1] - levels[0]) / 60.0 == pytest.approx(sign * 1023 / 100 * 0.95)
    assert sum(levels) / 2 == pytest.approx(511.5 - 9 + 2.3)  # the DAC's offset error and the pedestal


def _timestamps(url: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    with connect(url) as root:
        ep, data = _ready(root, reclen="1000")
        root.set_value("/par/POSTTRG", "800")
        fields = {f.name: f for f in ep.set_read_data_format([*FORMAT, {"name": "TIMESTAMP", "type": "U64"}])}
        root.send_command("/cmd/ARMACQUISITION")
        ns, ticks = [], []
        for _ in range(n):
            ep.read_data(1000, tuple(fields.values()))
            ns.append(int(fields["TIMESTAMP_NS"].value))
            ticks.append(int(fields["TIMESTAMP"].value))
        return np.array(ns), np.array(ticks)


def test_the_time_tag_wraps_at_31_bits_of_8_ns_unless_disabled() -> None:
    base = "sim://dt5751?seed=4&pace=max&rate_hz=3"  # ~4 triggers/s of board time: 120 events span > 17.18 s
    wrapped, ticks = _timestamps(base, 120)
    plain, _ = _timestamps(base + "&timestamp_wrap=false", 120)
    period = 8 << 31
    assert plain[-1] > period and np.all(np.diff(plain) > 0)
    assert np.array_equal(wrapped, plain % period) and np.array_equal(ticks, wrapped // 8)
    assert np.count_nonzero(np.diff(wrapped.astype(np.int64)) < 0) == plain[-1] // period


def test_extended_time_tag_exists_on_demand_and_is_reset_by_reset() -> None:
    with connect("sim://dt5751?has_extended_time_tag=true") as root:
        assert root.get_value("/par/EXTRAS_OPT") == "EXTRAS_OPT_NONE"
        root.set_value("/par/EXTRAS_OPT", "EXTRAS_OPT_TT48")
        assert root.get_value("/par/EXTRAS_OPT") == "EXTRAS_OPT_TT48"
        root.send_command("/cmd/RESET")
        assert root.get_value("/par/EXTRAS_OPT") == "EXTRAS_OPT_NONE"
    with connect("sim://dt5751") as root, pytest.raises(FelibError, match="not found") as exc:
        root.set_value("/par/EXTRAS_OPT", "EXTRAS_OPT_TT48")
    assert _code(exc) is ErrorCode.INVALID_PARAM


def test_an_odd_record_length_is_delivered_beyond_the_read_back() -> None:
    with connect("sim://dt5751?seed=3&pace=max&record_extra_samples=6") as root:
        ep, data = _ready(root, reclen="400")
        root.set_value("/par/POSTTRG", "300")
        assert root.get_value("/par/RECLEN") == "406"  # 400 rounded up to a multiple of 7 ...
        root.send_command("/cmd/ARMACQUISITION")
        ep.read_data(100, data)
        assert list(data[3].value) == [412, 0, 0, 0]  # ... and 6 samples more in every record


def test_a_board_without_stop_only_times_out_after_the_disarm() -> None:
    with connect("sim://dt5751?seed=3&pace=max&send_stop=false") as root:
        ep, data = _ready(root)
        root.send_command("/cmd/ARMACQUISITION")
        ep.read_data(100, data)
        root.send_command("/cmd/DISARMACQUISITION")
        left = len(board_of(root).acquisition.fifo)  # max pace makes a few records at once
        for _ in range(left):
            ep.read_data(0, data)  # what is in memory is still read ...
        for _ in range(3):  # ... then TIMEOUT, never STOP
            with pytest.raises(FelibError) as exc:
                ep.read_data(0, data)
            assert _code(exc) is ErrorCode.TIMEOUT
        assert root.get_user_register(0x8104) == 0  # stopped, memory empty
