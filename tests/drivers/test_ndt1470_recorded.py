"""The NDT1470 driver replaying replies recorded from real CAEN units of the same protocol family.

Source: github.com/acolijn/XAMS-SC (a xenon TPC's slow control), `tests/test_caen_protocol.py`
("every string below was captured from the real supplies on 17 September 2026", two DT1470ET
units: serial 19198 with firmware 1.08 and serial 79 with firmware 1.04) and
`docs/drivers/caen.md` (the VMON and SET exchange of channel 2). The reply bytes are theirs; the
request bytes are ours (the driver sends CH before PAR and one decimal in VSET, which the same
protocol accepts). Their malformed cases are kept as replies that must never become a value.
"""

from __future__ import annotations

import pytest

from drivers.ndt1470 import ChannelStatus, Ndt1470, Ndt1470Error, Ndt1470ProtocolError, Ndt1470TimeoutError
from tests.drivers.ndt1470_transcript import SerialTranscript, mon, set_ok


def _hv(pairs: list[tuple[bytes, bytes | None]]) -> tuple[Ndt1470, SerialTranscript]:
    port = SerialTranscript(pairs)
    return Ndt1470("/dev/ttyACM0", open_port=port, max_voltage_v=3000), port


def test_identity_of_two_dt1470et_units() -> None:
    hv, port = _hv([
        mon("BDNAME", "DT1470ET", ch=None), mon("BDSNUM", "19198", ch=None), mon("BDFREL", "1.08", ch=None),
        mon("BDNCH", "4", ch=None),
        mon("BDSNUM", "79", ch=None),  # the firmware 1.04 unit: not zero padded
    ])  # fmt: skip
    assert hv.board_value("BDNAME") == "DT1470ET" and hv.board_value("BDSNUM") == "19198"
    assert hv.board_value("BDFREL") == "1.08" and hv.board_value("BDNCH") == 4
    assert hv.board_value("BDSNUM") == "79"
    port.assert_done()


def test_channel_readings_as_recorded() -> None:
    hv, port = _hv([
        mon("VSET", "0700.0"), mon("VMON", "0000.0"), mon("IMON", "000.000"),  # IMON in the LOW range
        mon("STAT", "01024"),  # every channel of both units, outputs off: DIS (the enable switch)
        mon("POL", "-"), mon("POL", "+", ch=1),
        mon("VMON", "2249.8", ch=2),
        set_ok("VSET", "2300.0", ch=2), mon("VSET", "2300.0", ch=2),  # the recorded 'CMD:OK', then our read-back
    ])  # fmt: skip
    assert hv.get(0, "VSET") == 700.0 and hv.get(0, "VMON") == 0.0 and hv.get(0, "IMON") == 0.0
    assert hv.status(0) == ChannelStatus.DIS
    assert hv.get(0, "POL") == "-" and hv.get(1, "POL") == "+"
    assert hv.get(2, "VMON") == 2249.8
    hv.set(2, "VSET", 2300)
    port.assert_done()


@pytest.mark.parametrize(
    "reply",
    [b"#BD:00,CMD:OK,VAL:\r\n", b"BD:00,CMD:OK,VAL:19198\r\n", b"#BD:00,CMD:OK,VAL\r\n", b"#BD:00,CM\r\n",
     b"\x00\xff\x13\r\n", b"#BD:00,CMD:OK\r\n", b"   \r\n"],
)  # fmt: skip
def test_their_malformed_replies_never_become_a_value(reply: bytes) -> None:
    hv, port = _hv([(b"$BD:00,CMD:MON,PAR:BDSNUM\r\n", reply)])
    with pytest.raises((Ndt1470ProtocolError, Ndt1470TimeoutError)):  # a blank line is no reply at all
        hv.board_value("BDSNUM")
    port.assert_done()


def test_their_error_reply_with_a_value_is_an_error() -> None:
    hv, port = _hv([(b"$BD:00,CMD:MON,CH:0,PAR:VMON\r\n", b"#BD:00,CMD:ERR,VAL:0000.0\r\n")])
    with pytest.raises(Ndt1470Error, match="refused CMD:MON,CH:0,PAR:VMON: CMD:ERR"):
        hv.get(0, "VMON")
    port.assert_done()
