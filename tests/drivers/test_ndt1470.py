"""The NDT1470 driver against byte transcripts taken from the protocol manual (INSTRUMENTS.md 1.2-1.7)."""

from __future__ import annotations

import pytest

from drivers.ndt1470 import (
    CHANNEL_PARAMS,
    BoardAlarm,
    ChannelStatus,
    Ndt1470,
    Ndt1470ChannelError,
    Ndt1470CommandError,
    Ndt1470Error,
    Ndt1470LocalModeError,
    Ndt1470ParameterError,
    Ndt1470ProtocolError,
    Ndt1470RangeError,
    Ndt1470SafetyError,
    Ndt1470TimeoutError,
    Ndt1470TripError,
    Ndt1470ValueError,
)
from simulators.line_servers import PtyServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator
from tests.drivers.ndt1470_transcript import SerialTranscript, mon, set_ok


def _hv(pairs: list[tuple[bytes, bytes | None]], **kw: object) -> tuple[Ndt1470, SerialTranscript]:
    port = SerialTranscript(pairs)
    return Ndt1470("/dev/ttyACM0", open_port=port, **kw), port


def test_port_settings_are_9600_8n1_xonxoff_and_exclusive() -> None:
    _, port = _hv([])
    assert port.settings == {"url": "/dev/ttyACM0", "baudrate": 9600, "bytesize": 8, "parity": "N",
                             "stopbits": 1, "xonxoff": True, "timeout": 1.0, "exclusive": True}  # fmt: skip


def test_a_port_held_by_another_program_is_refused() -> None:
    sim = Ndt1470Simulator(Ndt1470Options())
    with PtyServer(sim) as server, Ndt1470(server.path) as first:
        assert first.board_value("BDNAME") == "NDT1470"
        with pytest.raises(Ndt1470Error, match=f"cannot open {server.path}.*no other program holds it"):
            Ndt1470(server.path)


def test_manual_examples() -> None:
    hv, port = _hv([
        (b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", b"#BD:00,CMD:OK,VAL:1499.8\r\n"),
        (b"$BD:00,CMD:MON,CH:4,PAR:VMON\r\n", b"#BD:00,CMD:OK,VAL:1499.8;0000.0;0000.0;0000.0\r\n"),
        (b"$BD:00,CMD:SET,CH:0,PAR:VSET,VAL:1500.0\r\n", b"#BD:00,CMD:OK\r\n"),
        (b"$BD:00,CMD:MON,CH:0,PAR:VSET\r\n", b"#BD:00,CMD:OK,VAL:1500.0\r\n"),  # every SET is read back
        (b"$BD:00,CMD:SET,CH:0,PAR:ON\r\n", b"#BD:00,CMD:OK\r\n"),
        (b"$BD:00,CMD:MON,PAR:BDNAME\r\n", b"#BD:00,CMD:OK,VAL:NDT1470\r\n"),
    ])  # fmt: skip
    assert hv.get(0, "VMON") == 1499.8
    assert hv.get_all("VMON") == [1499.8, 0.0, 0.0, 0.0]
    hv.set(0, "VSET", 1500)
    hv.on(0)
    assert hv.board_value("BDNAME") == "NDT1470"
    port.assert_done()


def test_every_parameter_is_formatted_with_its_resolution_and_read_back() -> None:
    hv, port = _hv([
        set_ok("ISET", "200.00", ch=1, board=3), mon("ISET", "0200.00", ch=1, board=3),
        set_ok("MAXV", "1700", ch=1, board=3), mon("MAXV", "1700", ch=1, board=3),
        set_ok("RUP", "25", ch=1, board=3), mon("RUP", "025", ch=1, board=3),
        set_ok("RDW", "50", ch=1, board=3), mon("RDW", "050", ch=1, board=3),
        set_ok("TRIP", "2.5", ch=1, board=3), mon("TRIP", "0002.5", ch=1, board=3),
        set_ok("PDWN", "KILL", ch=1, board=3), mon("PDWN", "KILL", ch=1, board=3),
        set_ok("IMRANGE", "LOW", ch=1, board=3), mon("IMRANGE", "LOW", ch=1, board=3),
        set_ok("OFF", None, ch=4, board=3),  # ON/OFF: read back only when the acknowledgement is missing
        set_ok("BDILKM", "OPEN", ch=None, board=3), mon("BDILKM", "OPEN", ch=None, board=3),
        set_ok("BDCLR", None, ch=None, board=3),
    ], board=3)  # fmt: skip
    hv.set(1, "ISET", 200)
    hv.set(1, "MAXV", 1700)
    hv.set(1, "RUP", 25)
    hv.set(1, "RDW", 50)
    hv.set(1, "TRIP", 2.5)
    hv.set(1, "PDWN", "KILL")
    hv.set(1, "IMRANGE", "LOW")
    hv.off(4)
    hv.set_interlock_mode("OPEN")
    hv.clear_alarm()
    port.assert_done()


def test_zero_padded_replies_are_decimal_and_status_bits_are_named() -> None:
    hv, port = _hv([
        (b"$BD:00,CMD:MON,CH:2,PAR:STAT\r\n", b"#BD:00,CMD:OK,VAL:02048\r\n"),
        (b"$BD:00,CMD:MON,CH:2,PAR:STAT\r\n", b"#BD:00,CMD:OK,VAL:00131\r\n"),
        (b"$BD:00,CMD:MON,PAR:BDALARM\r\n", b"#BD:00,CMD:OK,VAL:00017\r\n"),
        (b"$BD:00,CMD:MON,CH:2,PAR:ISET\r\n", b"#BD:00,CMD:OK,VAL:0200.00\r\n"),
        (b"$BD:00,CMD:MON,CH:2,PAR:RUP\r\n", b"#BD:00,CMD:OK,VAL:050\r\n"),
        (b"$BD:00,CMD:MON,CH:4,PAR:POL\r\n", b"#BD:00,CMD:OK,VAL:-;-;+;-;\r\n"),  # trailing ';'
    ])  # fmt: skip
    assert hv.status(2) == ChannelStatus.KILL  # 2048, not octal 1064
    assert hv.status(2) == ChannelStatus.ON | ChannelStatus.RUP | ChannelStatus.TRIP
    assert hv.board_value("BDALARM") == BoardAlarm.CH0 | BoardAlarm.PWFAIL
    assert hv.get(2, "ISET") == 200.0 and hv.get(2, "RUP") == 50.0
    assert hv.get_all("POL") == ["-", "-", "+", "-"]
    port.assert_done()


def test_lf_cr_acks_and_a_leading_cr_are_accepted() -> None:
    hv, port = _hv([
        (b"$BD:00,CMD:SET,CH:0,PAR:ON\r\n", b"#BD:00,CMD:OK\n"),  # the CR follows after the LF
        (b"$BD:00,CMD:MON,CH:0,PAR:VSET\r\n", b"\r#BD:00,CMD:OK,VAL:1500.0\r\n"),
    ])  # fmt: skip
    hv.on(0)
    assert hv.get(0, "VSET") == 1500.0
    port.assert_done()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"#BD:00,CMD:ERR\r\n", Ndt1470CommandError),
        (b"#BD:00,CH:ERR\r\n", Ndt1470ChannelError),
        (b"#BD:00,PAR:ERR\r\n", Ndt1470ParameterError),
        (b"#BD:00,VAL:ERR\r\n", Ndt1470ValueError),
        (b"#BD:00,LOC:ERR\r\n", Ndt1470LocalModeError),
    ],
)
def test_every_error_reply_raises_its_typed_error_naming_the_command(reply: bytes, error: type) -> None:
    hv, port = _hv([(b"$BD:00,CMD:SET,CH:0,PAR:VSET,VAL:1500.0\r\n", reply)])
    with pytest.raises(error, match=r"refused CMD:SET,CH:0,PAR:VSET,VAL:1500.0") as info:
        hv.set(0, "VSET", 1500.0)
    assert info.value.command == "CMD:SET,CH:0,PAR:VSET,VAL:1500.0"
    if error is Ndt1470LocalModeError:
        assert "LOCAL mode" in str(info.value)
    port.assert_done()


@pytest.mark.parametrize(
    "reply",
    [b"garbage\r\n", b"#BD:00,CMD:O", b"#BD:01,CMD:OK,VAL:1.0\r\n", b"#BD:00,CMD:OK,VAL:1.0,EXTRA\r\n",
     b"#BD:00,CMD:OK,VAL:abc\r\n", b"#BD:00,CMD:OK\r\n"],
)  # fmt: skip
def test_garbage_partial_lines_and_wrong_board_are_protocol_errors(reply: bytes) -> None:
    hv, port = _hv([(b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", reply)])
    with pytest.raises(Ndt1470ProtocolError, match="CMD:MON,CH:0,PAR:VMON|VMON"):
        hv.get(0, "VMON")
    port.assert_done()


def test_silence_is_a_timeout_error_never_a_default() -> None:
    hv, port = _hv([(b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", None)])
    with pytest.raises(Ndt1470TimeoutError, match=r"did not answer CMD:MON,CH:0,PAR:VMON.*board address"):
        hv.get(0, "VMON")
    port.assert_done()


def test_unsafe_requests_are_refused_before_sending() -> None:
    hv, port = _hv([(b"$BD:00,CMD:MON,CH:0,PAR:POL\r\n", b"#BD:00,CMD:OK,VAL:-\r\n")], max_voltage_v=1600)
    with pytest.raises(Ndt1470SafetyError, match=r"VSET 1700 V refused before sending.*0-1600"):
        hv.set(0, "VSET", 1700)
    with pytest.raises(Ndt1470SafetyError, match=r"asked for \+1500 V but its polarity switch is '-'"):
        hv.set_voltage_v(0, 1500)
    with pytest.raises(ValueError, match="channel must be 0-3"):
        hv.get(5, "VMON")
    with pytest.raises(ValueError, match="read-only"):
        hv.set(0, "VMON", 1)
    port.assert_done()


def _reading(vset: str, vmon: str, stat: str) -> list[tuple[bytes, bytes]]:
    out = []
    for par, val in (("VSET", vset), ("VMON", vmon), ("ISET", "0200.00"), ("IMON", "0100.00"), ("STAT", stat),
                     ("POL", "-")):  # fmt: skip
        out.append((f"$BD:00,CMD:MON,CH:0,PAR:{par}\r\n".encode(), f"#BD:00,CMD:OK,VAL:{val}\r\n".encode()))
    return out


def test_wait_for_ramp_follows_the_status_bits_and_stops_on_a_trip() -> None:
    hv, port = _hv(_reading("1500.0", "0750.0", "00003") + _reading("1500.0", "1500.0", "00001"))
    reading = hv.wait_for_ramp(0, timeout_s=10, sleep=lambda s: None)
    assert reading.vmon_v == 1500.0 and reading.flags == "ON"
    port.assert_done()
    hv, port = _hv(_reading("1500.0", "0900.0", "00003") + _reading("1500.0", "0000.0", "00128"))
    with pytest.raises(Ndt1470TripError, match=r"channel 0 stopped while ramping: TRIP"):
        hv.wait_for_ramp(0, timeout_s=10, sleep=lambda s: None)
    port.assert_done()


def test_other_thread_is_refused() -> None:
    import threading

    hv, _ = _hv([])
    errors: list[BaseException] = []

    def call() -> None:
        try:
            hv.get(0, "VMON")
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    t.join()
    assert errors and "owned by the thread that opened it" in str(errors[0])
    assert issubclass(Ndt1470TimeoutError, Ndt1470Error)


def test_wait_for_ramp_reports_a_trip_that_came_before_the_first_reading() -> None:
    hv, port = _hv(_reading("1500.0", "0000.0", "00128"))
    with pytest.raises(Ndt1470TripError, match="TRIP"):
        hv.wait_for_ramp(0, timeout_s=10, sleep=lambda s: None)
    port.assert_done()


def test_ranges_choices_and_read_only_are_enforced_from_the_table_before_anything_is_sent() -> None:
    hv, port = _hv(
        [], max_voltage_v=9000
    )  # VSET: the driver's limit out of the way, the table's 0-8000 V stays
    for name, param in CHANNEL_PARAMS.items():
        if param.low is not None and param.high is not None:
            for bad in (param.low - 1, param.high + 1, float("nan")):
                with pytest.raises(Ndt1470SafetyError, match=f"{name} .*refused before sending"):
                    hv.set(0, name, bad)
        elif param.choices:
            with pytest.raises(Ndt1470RangeError, match=f"{name} must be one of"):
                hv.set(0, name, "MAYBE")
        elif not param.settable:
            with pytest.raises(Ndt1470RangeError, match="read-only"):
                hv.set(0, name, 1)
    with pytest.raises(Ndt1470RangeError, match="no channel parameter 'VOLTS'"):
        hv.set(0, "VOLTS", 1)
    with pytest.raises(Ndt1470RangeError, match="cannot be read"):
        hv.get(0, "ON")
    with pytest.raises(Ndt1470SafetyError, match="VSET -1 V refused before sending"):
        hv.set(0, "VSET", -1)
    assert {n for n, p in CHANNEL_PARAMS.items() if p.settable} == {
        "VSET", "ISET", "MAXV", "RUP", "RDW", "TRIP", "PDWN", "IMRANGE", "ON", "OFF"}  # fmt: skip
    port.assert_done()  # nothing was written


def test_channel_objects_use_the_same_table() -> None:
    hv, port = _hv([
        set_ok("VSET", "1500.0", ch=1), mon("VSET", "1500.0", ch=1),
        mon("VMON", "1499.8", ch=1),
        set_ok("RUP", "20", ch=1), mon("RUP", "020", ch=1),
        set_ok("PDWN", "KILL", ch=1), mon("PDWN", "KILL", ch=1),
        mon("STAT", "00001", ch=1),
        mon("POL", "-", ch=1),
        set_ok("ON", None, ch=1),
    ])  # fmt: skip
    ch = hv.channel(1)
    ch.vset_v = 1500
    assert ch.vmon_v == 1499.8
    ch.ramp_up_v_per_s = 20
    ch.set("PDWN", "KILL")
    assert ch.status == ChannelStatus.ON and ch.polarity == "-"
    with pytest.raises(Ndt1470RangeError, match="read-only"):
        ch.polarity = "+"
    ch.on()
    assert "0-500 V/s" not in (type(ch).vset_v.__doc__ or "") and "1-500 V/s" in (
        type(ch).ramp_up_v_per_s.__doc__ or ""
    )
    with pytest.raises(ValueError, match="channel must be 0-3"):
        hv.channel(4)
    port.assert_done()


def test_a_reply_of_another_shape_is_never_the_answer_and_the_next_request_is_in_step() -> None:
    hv, port = _hv([
        # a stale SET acknowledgement, then this MON's own reply: the OK is refused, the resync eats the value
        (b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", b"#BD:00,CMD:OK\r\n#BD:00,CMD:OK,VAL:1499.8\r\n"),
        mon("IMON", "0100.00"),
        (b"$BD:00,CMD:MON,CH:0,PAR:IMON\r\n", b"#BD:00,CMD:OK,VAL:1499.8\r\n"),  # a VMON-shaped value
        (b"$BD:00,CMD:MON,CH:4,PAR:VMON\r\n", b"#BD:00,CMD:OK,VAL:1499.8\r\n"),  # one value for four
        (b"$BD:00,CMD:MON,CH:0,PAR:STAT\r\n", b"#BD:00,CMD:OK,VAL:00001;00000;00000;00000\r\n"),
        (b"$BD:00,CMD:SET,CH:0,PAR:OFF\r\n", b"#BD:00,CMD:OK,VAL:0000.0\r\n"),  # a MON reply to a SET
        mon("STAT", "00000"),  # ... so OFF is confirmed by reading STAT back
        mon("VMON", "0000.0"),
    ])  # fmt: skip
    with pytest.raises(Ndt1470ProtocolError, match="a MON is answered with a value, not a bare CMD:OK"):
        hv.get(0, "VMON")
    assert hv.get(0, "IMON") == 100.0
    with pytest.raises(
        Ndt1470ProtocolError, match=r"'1499.8' is not a IMON value, so it is another command's"
    ):
        hv.get(0, "IMON")
    with pytest.raises(Ndt1470ProtocolError, match="1 values where 4 were asked"):
        hv.get_all("VMON")
    with pytest.raises(Ndt1470ProtocolError, match="4 values where 1 were asked"):
        hv.status(0)
    hv.off(0)
    assert hv.get(0, "VMON") == 0.0
    port.assert_done()


def test_a_stale_reply_of_a_timed_out_request_is_set_aside() -> None:
    hv, port = _hv([
        (b"$BD:00,CMD:SET,CH:0,PAR:ON\r\n", None),  # the acknowledgement does not come in time ...
        mon("STAT", "00003"),  # ... the read-back shows the channel on: confirmed
        (b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", None),
        (b"$BD:00,CMD:MON,CH:0,PAR:STAT\r\n", b"#BD:00,CMD:OK,VAL:0750.0\r\n#BD:00,CMD:OK,VAL:00003\r\n"),
    ], late_reply_s=0.0)  # fmt: skip
    hv.on(0)
    with pytest.raises(Ndt1470TimeoutError):
        hv.get(0, "VMON")
    assert hv.status(0) == ChannelStatus.ON | ChannelStatus.RUP  # VMON's late '0750.0' set aside
    port.assert_done()
