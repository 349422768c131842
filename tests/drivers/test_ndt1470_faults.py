"""The real NDT1470 driver over a real pty and TCP socket against the simulator's injected link faults.

Each fault (late reply, late SET acknowledgement with the value taken, split reply, garbage,
silence, a lost SET, a clamped VSET) must end in success confirmed by read-back or in a clear
typed error, and the next command must get its own answer. Delays are a few tenths of a second
around a 0.4 s driver timeout; no assertion is on timing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from drivers.ndt1470 import (
    ChannelStatus,
    Ndt1470,
    Ndt1470ProtocolError,
    Ndt1470ReadbackError,
    Ndt1470TimeoutError,
    Ndt1470UnconfirmedError,
    Ndt1470ValueError,
)
from simulators.chunked_line_servers import ChunkedPtyServer, ChunkedTcpServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator

TIMEOUT_S = 0.4
LATE_S = 0.7  # later than the driver's timeout, within its late-reply window (0.6 s after the timeout)
VERY_LATE_S = 0.65  # later than the timeout plus a 0.05 s window, before the next request's timeout


class Rig:
    """A simulator served on a pty or TCP, and a way to open the driver on it."""

    def __init__(self, sim: Ndt1470Simulator, url: str) -> None:
        self.sim, self.url = sim, url

    def open(self, late_reply_s: float = 0.6) -> Ndt1470:
        return Ndt1470(self.url, timeout_s=TIMEOUT_S, late_reply_s=late_reply_s)


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    sim = Ndt1470Simulator(Ndt1470Options(seed=7), time_scale=0.0)  # frozen: no ramps, values stay put
    server = ChunkedPtyServer(sim) if request.param == "pty" else ChunkedTcpServer(sim)
    with server:
        yield Rig(sim, server.path if request.param == "pty" else f"socket://{server.address}")


def _in_step(hv: Ndt1470, sim: Ndt1470Simulator) -> None:
    """Every kind of answer comes back as its own command's."""
    ch = sim.channels[0]
    assert hv.get(0, "VSET") == pytest.approx(ch.vset_v)
    assert hv.get(0, "ISET") == pytest.approx(ch.iset_ua)
    assert hv.status(0) == ch.status
    assert hv.get(0, "POL") == "-" and hv.board_value("BDNAME") == "NDT1470"
    assert hv.get_all("RUP") == [50.0] * 4
    assert sim.faults.pending() == 0


def test_late_set_acknowledgements_with_the_value_taken_are_confirmed_by_read_back(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with rig.open() as hv:
        rig.sim.inject("late", on="SET", par="VSET", delay_s=LATE_S)
        hv.set_voltage_v(0, -1500)
        assert rig.sim.channels[0].vset_v == 1500.0
        rig.sim.inject("late", on="SET", par="ON", delay_s=LATE_S)
        hv.on(0)
        assert ChannelStatus.ON in hv.status(0)
        rig.sim.inject("late", on="SET", par="OFF", delay_s=LATE_S)
        hv.off(0)
        assert ChannelStatus.ON not in hv.status(0)
        _in_step(hv, rig.sim)
    confirmed = [
        r.getMessage() for r in caplog.records if "had no acknowledgement within 0.4 s" in r.getMessage()
    ]
    assert len(confirmed) == 3 and "VSET reads 1500.0: it took" in confirmed[0]


def test_an_acknowledgement_later_than_the_window_is_not_taken_for_the_read_back(rig: Rig) -> None:
    with rig.open(late_reply_s=0.05) as hv:
        rig.sim.inject("late", on="SET", par="VSET", delay_s=VERY_LATE_S)
        hv.set(0, "VSET", 1200)  # the read-back's MON meets the bare CMD:OK first: set aside, not its answer
        rig.sim.inject("late", on="SET", par="ON", delay_s=VERY_LATE_S)
        hv.on(0)
        _in_step(hv, rig.sim)


def test_a_late_mon_reply_never_answers_the_next_request(rig: Rig) -> None:
    rig.sim.channels[0].vset_v = 1234.5
    with rig.open(late_reply_s=0.05) as hv:
        rig.sim.inject("late", on="MON", par="VSET", delay_s=VERY_LATE_S)
        with pytest.raises(Ndt1470TimeoutError, match="did not answer CMD:MON,CH:0,PAR:VSET"):
            hv.get(0, "VSET")
        assert hv.get(0, "ISET") == 200.0  # '1234.5' arrives first: not an ISET value, set aside as VSET's
        rig.sim.inject("late", on="MON", par="ISET", delay_s=VERY_LATE_S)
        with pytest.raises(Ndt1470TimeoutError):
            hv.get(0, "ISET")
        assert hv.status(0) == ChannelStatus(0)
        _in_step(hv, rig.sim)


def test_a_lost_set_fails_with_a_typed_error_naming_command_channel_and_read_back(rig: Rig) -> None:
    with rig.open() as hv:
        rig.sim.inject("silence", on="SET", par="VSET", apply=False)
        with pytest.raises(Ndt1470UnconfirmedError, match=r"channel 0: CMD:SET,CH:0,PAR:VSET,VAL:1500.0 not "
                           r"confirmed: no acknowledgement within 0.4 s; VSET reads 0.0, so the unit did not take it") as info:  # fmt: skip
            hv.set(0, "VSET", 1500)
        assert (info.value.command, info.value.channel, info.value.sent, info.value.read) == (
            "CMD:SET,CH:0,PAR:VSET,VAL:1500.0", 0, "1500.0", 0.0)  # fmt: skip
        rig.sim.inject(
            "late", on="SET", par="ON", delay_s=LATE_S, apply=False
        )  # acknowledged late, not taken
        with pytest.raises(Ndt1470UnconfirmedError, match=r"PAR:ON not confirmed: .*STAT reads 0"):
            hv.on(0)
        rig.sim.inject("silence", on="SET", par="VSET")  # the reply lost, the value taken
        hv.set(0, "VSET", 1500)
        _in_step(hv, rig.sim)


def test_a_late_refusal_is_the_refusal(rig: Rig) -> None:
    with rig.open() as hv:
        hv.set(0, "MAXV", 1000)
        rig.sim.inject("late", on="SET", par="VSET", delay_s=LATE_S)
        with pytest.raises(
            Ndt1470ValueError, match=r"refused CMD:SET,CH:0,PAR:VSET,VAL:1200.0: VAL:ERR \(a late"
        ):
            hv.set(0, "VSET", 1200)
        _in_step(hv, rig.sim)


def test_split_replies(rig: Rig) -> None:
    rig.sim.channels[0].vset_v = 1500.0
    with rig.open() as hv:
        rig.sim.inject("split", on="MON", par="VSET", delay_s=0.05)  # a pause within the timeout: one line
        assert hv.get(0, "VSET") == 1500.0
        rig.sim.inject("split", on="MON", par="VSET", delay_s=LATE_S)  # the line's end after the timeout
        with pytest.raises(Ndt1470ProtocolError, match="partial reply"):
            hv.get(0, "VSET")
        rig.sim.inject("split", on="SET", par="RUP", delay_s=LATE_S)
        hv.set(0, "RUP", 120)  # a split acknowledgement: confirmed by the read-back
        assert rig.sim.channels[0].rup_v_per_s == 120.0
        rig.sim.channels[0].rup_v_per_s = 50.0
        _in_step(hv, rig.sim)


def test_garbage_and_silence(rig: Rig) -> None:
    with rig.open() as hv:
        rig.sim.inject("garbage", on="MON", par="STAT")
        with pytest.raises(Ndt1470ProtocolError, match="not a reply"):
            hv.status(0)
        rig.sim.inject("silence", on="MON")
        with pytest.raises(Ndt1470TimeoutError):
            hv.get(0, "IMON")
        rig.sim.inject("garbage", on="SET", par="ON")  # a garbled acknowledgement: the read-back decides
        hv.on(0)
        assert rig.sim.channels[0].on
        hv.off(0)
        _in_step(hv, rig.sim)


def test_a_clamped_vset_is_caught_by_the_read_back(rig: Rig) -> None:
    with rig.open() as hv:
        hv.set(0, "MAXV", 1000)
        rig.sim.inject("clamp", on="SET", par="VSET")
        with pytest.raises(
            Ndt1470ReadbackError, match=r"VAL:1200.0 was acknowledged but VSET reads back 1000.0"
        ) as info:
            hv.set(0, "VSET", 1200)
        assert info.value.read == 1000.0 and not isinstance(info.value, Ndt1470UnconfirmedError)
        _in_step(hv, rig.sim)
