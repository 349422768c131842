"""The Lake Shore 325 driver against message transcripts from the manual (INSTRUMENTS.md 2.2-2.7)."""

from __future__ import annotations

import pytest

from drivers.lakeshore325 import (
    LakeShore325,
    LakeShoreError,
    LakeShoreProtocolError,
    LakeShoreReadbackError,
    LakeShoreRejectedError,
    LakeShoreTimeoutError,
    ReadingStatus,
)
from drivers.lakeshore325_params import TABLE
from tests.drivers.visa_transcript import Late, VisaTranscript


def _ls(pairs: list, resource: str = "GPIB0::12::INSTR") -> tuple[LakeShore325, VisaTranscript]:
    inst = VisaTranscript(pairs)
    ls = LakeShore325(resource, open_instrument=inst, min_interval_s=0.0, sleep=lambda s: None)
    return ls, inst


def test_readings_and_identity() -> None:
    ls, inst = _ls([
        ("*IDN?", "LSCI,MODEL325,1234567,1.0/1.0"),
        ("KRDG? A", "+077.350"),
        ("SRDG? A", "+1.02440"),
        ("RDGST? A", "000"),
        ("KRDG? B", "+077.500"),
        ("SRDG? B", "+1.02400"),
        ("RDGST? B", "144"),
    ])  # fmt: skip
    assert ls.identify().startswith("LSCI,MODEL325")
    a = ls.read("A")
    assert a.temperature_k == 77.35 and a.sensor_units == pytest.approx(1.0244) and a.valid
    b = ls.input("B").read()
    assert b.status == ReadingStatus.TEMP_UNDER | ReadingStatus.UNITS_OVER and not b.valid
    inst.assert_done()
    assert inst.flushes >= 9  # the input is flushed before every query


def test_each_setting_is_checked_with_esr_and_read_back() -> None:
    ls, inst = _ls([
        ("SETP 1,77.000", None), ("*ESR?", "000"), ("SETP? 1", "+077.000"),
        ("RANGE 1,2", None), ("*ESR?", "000"), ("RANGE? 1", "2"),
        ("PID 1,50.0,20.0,0.0", None), ("*ESR?", "000"), ("PID? 1", "+0050.0,+0020.0,+0000.0"),
        ("RAMP 1,1,2.0", None), ("*ESR?", "000"), ("RAMP? 1", "1,+002.0"),
        ("CSET 1,A,1,0,2", None), ("*ESR?", "000"), ("CSET? 1", "A,1,0,2"),
        ("CMODE 1,1", None), ("*ESR?", "000"), ("CMODE? 1", "1"),
        ("MOUT 1,22.45", None), ("*ESR?", "000"), ("MOUT? 1", "+022.450"),
        ("HTRRES 1,1", None), ("*ESR?", "000"), ("HTRRES? 1", "1"),
        ("INTYPE A,0,0", None), ("*ESR?", "000"), ("INTYPE? A", "0,0"),
        ("INCRV A,6", None), ("*ESR?", "000"), ("INCRV? A", "06"),
        ("SETP? 1", "+077.000"), ("RANGE? 1", "2"), ("HTR? 1", "087.0"), ("PID? 1", "+0050.0,+0020.0,+0000.0"),
        ("RAMP? 1", "1,+002.0"), ("RAMPST? 1", "1"), ("CSET? 1", "A,1,0,2"), ("CMODE? 1", "1"),
        ("MOUT? 1", "+022.450"), ("INTYPE? A", "0,0"), ("INCRV? A", "06"),
    ])  # fmt: skip
    ls.set_setpoint_k(1, 77)
    ls.set_heater_range(1, 2)
    ls.set_pid(1, 50, 20, 0)
    ls.set_ramp(1, True, 2)
    ls.set_control_setup(1, "A", 1, False, 2)
    ls.set_control_mode(1, 1)
    ls.loop(1).manual_output_pct = 22.45
    ls.set_heater_resistance(1, 1)
    ls.input("A").sensor_type = (0, 0)
    ls.set_input_curve("A", 6)
    assert ls.setpoint_k(1) == 77.0 and ls.heater_range(1) == 2 and ls.heater_output_pct(1) == 87.0
    assert ls.pid(1) == (50.0, 20.0, 0.0) and ls.ramp(1) == (True, 2.0) and ls.ramping(1)
    assert ls.control_setup(1) == ("A", 1, 0, 2) and ls.control_mode(1) == 1
    assert ls.manual_output_pct(1) == 22.45 and ls.input_type("A") == (0, 0) and ls.input_curve("A") == 6
    inst.assert_done()


@pytest.mark.parametrize(
    ("name", "channel", "value", "message", "readback", "shown"),
    [
        ("setpoint_k", 1, 400.0, "SETP 1,400.000", "+300.000", "sent 400.000 K, read back 300.000 K"),
        ("pid", 1, (50, 20, 0), "PID 1,50.0,20.0,0.0", "+0050.0,+0002.0,+0000.0", "read back p=50.0, i=2.0"),
        ("heater_range", 1, 2, "RANGE 1,2", "1", "sent 2, read back 1"),
        ("control_setup", 1, ("B", 1, 0, 2), "CSET 1,B,1,0,2", "A,1,0,2", "sent input=B"),
        ("curve", "B", 21, "INCRV B,21", "06", "sent 21, read back 6"),
        ("ramp", 2, (True, 5.0), "RAMP 2,1,5.0", "1,+001.0", "rate_k_per_min=1.0"),
    ],
)
def test_a_setting_that_reads_back_different_raises_naming_it(
    name: str, channel: int | str, value: object, message: str, readback: str, shown: str
) -> None:
    query = f"{TABLE[name].query} {channel}"
    ls, inst = _ls([(message, None), ("*ESR?", "000"), (query, readback)])
    with pytest.raises(LakeShoreReadbackError, match=shown) as caught:
        ls.set(name, channel, value)
    assert caught.value.parameter == name and caught.value.command == message
    inst.assert_done()


@pytest.mark.parametrize(
    ("name", "channel", "value", "complaint"),
    [
        ("setpoint_k", 1, 1500.5, "setpoint_k must be within 0-1500 K"),
        ("setpoint_k", 1, -1.0, "within 0-1500 K"),
        ("ramp", 1, (True, 0.05), "enabled ramp needs a rate of 0.1-100"),
        ("ramp", 1, (True, 101), "rate_k_per_min must be within 0-100"),
        ("pid", 1, (0.05, 20, 0), "pid.p must be within 0.1-1000"),
        ("pid", 1, (50, 1001, 0), "pid.i must be within 0.1-1000"),
        ("pid", 1, (50, 20, 201), "pid.d must be within 0-200"),
        ("pid", 1, (50, 20), "takes 3 values"),
        ("heater_range", 1, 3, "must be one of 0, 1, 2"),
        ("heater_range", 2, 2, "must be one of 0, 1 here"),
        ("manual_output_pct", 1, 100.5, "within 0-100 %"),
        ("control_setup", 1, ("C", 1, 0, 2), "must be input A or B"),
        ("control_mode", 1, 7, "one of 1, 2, 3, 4, 5, 6"),
        ("curve", "A", 36, "within 0-35"),
        ("heater_output_pct", 1, 50.0, "read-only"),
        ("setpoint_k", 3, 77.0, "loop must be 1 or 2"),
        ("curve", "C", 6, "input must be A or B"),
    ],
)
def test_ranges_are_enforced_before_anything_is_sent(
    name: str, channel: int | str, value: object, complaint: str
) -> None:
    ls, inst = _ls([])
    with pytest.raises(ValueError, match=complaint):
        ls.set(name, channel, value)
    inst.assert_done()  # nothing beyond the connect sequence went out


@pytest.mark.parametrize(
    ("esr", "kind"), [("016", "execution error"), ("032", "command error"), ("048", "command")]
)
def test_rejected_commands_raise(esr: str, kind: str) -> None:
    ls, inst = _ls([("RANGE 2,1", None), ("*ESR?", esr)])
    with pytest.raises(LakeShoreRejectedError, match=f"rejected 'RANGE 2,1': {kind}"):
        ls.loop(2).heater_range = 1
    inst.assert_done()


def test_silence_is_a_timeout_and_bad_arguments_are_refused_locally() -> None:
    ls, inst = _ls([("KRDG? A", "")])
    with pytest.raises(LakeShoreTimeoutError, match=r"did not answer 'KRDG\? A'"):
        ls.temperature_k("A")
    with pytest.raises(ValueError, match="input must be A or B"):
        ls.temperature_k("C")
    with pytest.raises(ValueError, match="loop must be 1 or 2"):
        ls.setpoint_k(3)
    with pytest.raises(ValueError, match="at most 64 characters"):
        ls.command("X" * 65)
    inst.assert_done()


def test_a_different_instrument_is_refused() -> None:
    ls, inst = _ls([("*IDN?", "LSCI,MODEL331S,1234,1.0")])
    with pytest.raises(LakeShoreError, match="not a Lake Shore 325"):
        ls.identify()
    inst.assert_done()


def test_a_late_reply_is_dropped_by_the_resync_and_never_answers_the_next_query() -> None:
    """KRDG? A's reply arrives after the timeout: KRDG? B must still get B's value, SETP? a setpoint."""
    ls, inst = _ls([
        ("KRDG? A", Late("+077.350")),
        ("*IDN?", "LSCI,MODEL325,1234567,1.0/1.0"),  # resync: the late A line arrives first and is dropped
        ("KRDG? B", "+120.000"),
        ("SETP? 1", "+077.000"),
    ])  # fmt: skip
    with pytest.raises(LakeShoreTimeoutError):
        _ = ls.input("A").temperature_k
    assert ls.input("B").temperature_k == 120.0
    assert ls.loop(1).setpoint_k == 77.0
    assert (ls.link.timeouts, ls.link.resyncs, ls.link.stale_lines) == (
        1,
        2,
        1,
    )  # 2: the connect's and this one
    inst.assert_done()


@pytest.mark.parametrize(
    ("query", "reply", "call"),
    [
        ("CSET? 1", "+077.000", lambda ls: ls.loop(1).control_setup),  # a temperature where 4 fields belong
        ("SETP? 1", "A,1,0,2", lambda ls: ls.loop(1).setpoint_k),
        ("RANGE? 1", "+077.350", lambda ls: ls.loop(1).heater_range),
        ("RANGE? 2", "2", lambda ls: ls.loop(2).heater_range),  # loop 2 has no range 2
        ("KRDG? A", "#~?%", lambda ls: ls.input("A").temperature_k),  # garbage
        ("RAMPST? 1", "LSCI,MODEL325,1234567,1.0/1.0", lambda ls: ls.loop(1).ramping),
    ],
)
def test_a_reply_of_the_wrong_shape_raises_and_resyncs(query: str, reply: str, call) -> None:
    ls, inst = _ls([(query, reply), ("*IDN?", "LSCI,MODEL325,1234567,1.0/1.0"), ("HTR? 1", "050.0")])
    with pytest.raises(LakeShoreProtocolError, match="was not used") as caught:
        call(ls)
    assert caught.value.reply == reply and caught.value.command == query
    assert ls.loop(1).heater_output_pct == 50.0
    assert ls.link.protocol_errors == 1
    inst.assert_done()


def test_an_esr_reply_that_is_not_a_register_is_a_protocol_error() -> None:
    ls, inst = _ls([("CMODE 1,1", None), ("*ESR?", "+077.350"), ("*IDN?", "LSCI,MODEL325,1,1")])
    with pytest.raises(LakeShoreProtocolError, match=r"answered '\*ESR\?' with '\+077.350'"):
        ls.set_control_mode(1, 1)
    ls.link.resync()
    inst.assert_done()


def test_the_resync_gives_up_with_a_clear_error_when_the_instrument_stays_silent() -> None:
    ls, inst = _ls([("KRDG? A", ""), ("*IDN?", ""), ("*IDN?", "LSCI,MODEL325,1,1"), ("KRDG? A", "+077.000")])
    with pytest.raises(LakeShoreTimeoutError, match=r"'KRDG\? A'"):
        ls.temperature_k("A")
    with pytest.raises(LakeShoreTimeoutError, match="while resynchronising"):
        ls.temperature_k("A")
    assert ls.temperature_k("A") == 77.0  # back when the 325 answers again
    inst.assert_done()


def test_every_table_parameter_has_its_channel_attribute() -> None:
    from drivers.lakeshore325 import ControlLoop, TemperatureInput

    for name, param in TABLE.items():
        owner = {"loop": ControlLoop, "input": TemperatureInput}.get(param.scope)
        if owner is not None:
            assert getattr(owner, name).name == name, name
