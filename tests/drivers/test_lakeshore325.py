"""The Lake Shore 325 driver against message transcripts from the manual (INSTRUMENTS.md 2.2-2.7)."""

from __future__ import annotations

import pytest

from drivers.lakeshore325 import (
    LakeShore325,
    LakeShoreError,
    LakeShoreRejectedError,
    LakeShoreTimeoutError,
    ReadingStatus,
)


class VisaTranscript:
    """A VISA instrument that expects exactly these messages in order: (written, reply or None for a command)."""

    def __init__(self, pairs: list[tuple[str, str | None]]) -> None:
        self.pairs = [("*CLS", None), ("*ESR?", "000"), *pairs]  # what the driver sends on connect
        self.used = 0

    def __call__(self, resource: str, timeout_s: float) -> VisaTranscript:
        return self

    def _take(self, message: str, is_query: bool) -> str | None:
        assert self.used < len(self.pairs), f"unexpected {message!r}"
        sent, reply = self.pairs[self.used]
        self.used += 1
        assert message == sent, f"sent {message!r}, transcript expects {sent!r}"
        assert (reply is not None) == is_query, f"{message!r}: query/command mismatch"
        return reply

    def write(self, message: str) -> None:
        self._take(message, False)

    def query(self, message: str) -> str:
        reply = self._take(message, True)
        if reply == "":
            raise TimeoutError("VI_ERROR_TMO")  # the 325 stays silent
        return reply + "\r\n"

    def close(self) -> None:
        pass

    def assert_done(self) -> None:
        assert self.used == len(self.pairs), f"{len(self.pairs) - self.used} transcript messages unused"


def _ls(pairs: list[tuple[str, str | None]]) -> tuple[LakeShore325, VisaTranscript]:
    inst = VisaTranscript(pairs)
    return LakeShore325("GPIB0::12::INSTR", open_instrument=inst, min_interval_s=0.0), inst


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
    b = ls.read("B")
    assert b.status == ReadingStatus.TEMP_UNDER | ReadingStatus.UNITS_OVER and not b.valid
    inst.assert_done()


def test_settings_are_checked_with_esr() -> None:
    ls, inst = _ls([
        ("SETP 1,77.000", None), ("*ESR?", "000"),
        ("RANGE 1,2", None), ("*ESR?", "000"),
        ("PID 1,50,20,0", None), ("*ESR?", "000"),
        ("RAMP 1,1,2", None), ("*ESR?", "000"),
        ("CSET 1,A,1,0,2", None), ("*ESR?", "000"),
        ("CMODE 1,1", None), ("*ESR?", "000"),
        ("MOUT 1,22.45", None), ("*ESR?", "000"),
        ("HTRRES 1,1", None), ("*ESR?", "000"),
        ("INTYPE A,0,0", None), ("*ESR?", "000"),
        ("INCRV A,6", None), ("*ESR?", "000"),
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
    ls.set_manual_output_pct(1, 22.45)
    ls.set_heater_resistance(1, 1)
    ls.set_input_type("A", 0)
    ls.set_input_curve("A", 6)
    assert ls.setpoint_k(1) == 77.0 and ls.heater_range(1) == 2 and ls.heater_output_pct(1) == 87.0
    assert ls.pid(1) == (50.0, 20.0, 0.0) and ls.ramp(1) == (True, 2.0) and ls.ramping(1)
    assert ls.control_setup(1) == ("A", 1, 0, 2) and ls.control_mode(1) == 1
    assert ls.manual_output_pct(1) == 22.45 and ls.input_type("A") == (0, 0) and ls.input_curve("A") == 6
    inst.assert_done()


@pytest.mark.parametrize(
    ("esr", "kind"), [("016", "execution error"), ("032", "command error"), ("048", "command")]
)
def test_rejected_commands_raise(esr: str, kind: str) -> None:
    ls, inst = _ls([("RANGE 1,7", None), ("*ESR?", esr)])
    with pytest.raises(LakeShoreRejectedError, match=f"rejected 'RANGE 1,7': {kind}"):
        ls.set_heater_range(1, 7)
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
