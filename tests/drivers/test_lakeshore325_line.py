"""The Lake Shore 325's line: settings and their validation, spacing from the last character, GPIB backend."""

from __future__ import annotations

import ctypes

import pytest
from pyvisa import constants

from daq.config import ConfigError, CryostatSection, load_config
from drivers.lakeshore325 import LakeShore325, LakeShoreBackendError, LineSettings
from drivers.lakeshore325_link import check_gpib_backend
from simulators.lakeshore325 import LakeShore325Simulator
from simulators.line_servers import TcpServer
from tests.drivers.visa_transcript import VisaTranscript


class FakeTime:
    """A clock that only moves when the driver sleeps (or a test says so); the sleeps are recorded."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.mark.parametrize(
    ("resource", "line", "char_s"),
    [
        ("ASRL/dev/ttyUSB0::INSTR", LineSettings(), 10 / 9600),  # 7O1: 10 bits a character, ~1.04 ms
        ("ASRL/dev/ttyUSB0::INSTR", LineSettings(baud_rate=57600), 10 / 57600),
        ("ASRL/dev/ttyUSB0::INSTR", LineSettings(data_bits=8, parity="none", stop_bits=2), 11 / 9600),
        ("GPIB0::12::INSTR", LineSettings(), 0.0),  # no serial line: 50 ms from write()
    ],
)
def test_the_50_ms_gap_is_counted_from_the_last_character_on_the_wire(
    resource: str, line: LineSettings, char_s: float
) -> None:
    fake = FakeTime()
    inst = VisaTranscript([("SETP 1,77.000", None), ("*ESR?", "000"), ("SETP? 1", "+077.000")])
    ls = LakeShore325(resource, open_instrument=inst, line=line, clock=fake.clock, sleep=fake.sleep)
    # connect: *IDN? (reply in), *CLS (a command: 6 characters with CR LF on the wire), *ESR?
    assert fake.sleeps == pytest.approx([0.05, 0.05 + 6 * char_s])
    fake.sleeps.clear()
    ls.loop(1).setpoint_k = 77.0  # 'SETP 1,77.000' + CR LF: 15 characters
    assert fake.sleeps == pytest.approx([0.05, 0.05 + 15 * char_s, 0.05])
    inst.assert_done()


def test_no_wait_when_the_gap_has_already_passed() -> None:
    fake = FakeTime()
    inst = VisaTranscript([("KRDG? A", "+077.000")])
    ls = LakeShore325("ASRL/dev/ttyUSB0::INSTR", open_instrument=inst, clock=fake.clock, sleep=fake.sleep)
    fake.sleeps.clear()
    fake.t += 1.0
    assert ls.temperature_k("A") == 77.0 and fake.sleeps == []


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"baud_rate": 300}, "baud rate must be one of 9600, 19200, 38400, 57600"),
        ({"baud_rate": 1200}, "not 1200"),
        ({"data_bits": 6}, "data bits must be 7"),
        ({"parity": "mark"}, "parity must be odd"),
        ({"stop_bits": 3}, "stop bits must be 1"),
        ({"read_termination": "\r\r"}, "read_termination must be CR LF"),
    ],
)
def test_line_settings_are_validated(settings: dict, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        LineSettings(**settings)


def test_the_line_settings_reach_the_visa_resource() -> None:
    sim = LakeShore325Simulator(clock=lambda: 0.0)
    line = LineSettings(baud_rate=19200, read_termination="\r\n", write_termination="\r\n")
    with TcpServer(sim) as server, LakeShore325(f"ASRLsocket://{server.address}::INSTR", line=line) as ls:
        inst = ls.link.inst
        assert (inst.baud_rate, inst.data_bits, inst.parity, inst.read_termination) == (
            19200, 7, constants.Parity.odd, "\r\n"
        )  # fmt: skip
        assert ls.identify().startswith("LSCI,MODEL325")


def test_the_config_carries_the_325s_line_defaults_and_refuses_other_baud_rates(tmp_path) -> None:
    serial = CryostatSection().serial
    assert (serial.baud_rate, serial.data_bits, serial.parity, serial.stop_bits) == (9600, 7, "odd", 1)
    assert serial.read_termination == serial.write_termination == "\r\n"
    assert LineSettings(**serial.model_dump()) == LineSettings()
    path = tmp_path / "lab.yaml"
    path.write_text("cryostat:\n  simulate: false\n  serial:\n    baud_rate: 1200\n")
    with pytest.raises(ConfigError, match="baud_rate"):
        load_config(path)
    path.write_text('cryostat:\n  serial:\n    baud_rate: 57600\n    read_termination: "\\n"\n')
    assert load_config(path).cryostat.serial.baud_rate == 57600


def _has_libgpib() -> bool:
    try:
        ctypes.CDLL("libgpib.so.0")
    except OSError:
        return False
    return True


def test_gpib_without_the_library_says_what_to_install() -> None:
    with pytest.raises(LakeShoreBackendError, match="no GPIB library .*Install linux-gpib"):
        check_gpib_backend("GPIB0::12::INSTR", libraries=("libno-such-gpib.so.0",))


@pytest.mark.skipif(_has_libgpib(), reason="linux-gpib's library is installed here")
def test_opening_a_gpib_resource_here_fails_with_that_message_before_pyvisa_is_asked() -> None:
    with pytest.raises(LakeShoreBackendError, match=r"GPIB0::12::INSTR is a GPIB resource.*linux-gpib"):
        LakeShore325("GPIB0::12::INSTR")
