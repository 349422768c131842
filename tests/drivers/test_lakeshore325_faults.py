"""The Lake Shore 325 driver survives the simulator's reply faults over a real TCP socket through pyvisa-py.

Each fault (late, split, garbage, missing reply, clamped setpoint) gives a typed error or no error,
and the next query gets its own answer: KRDG? B after a late KRDG? A returns input B's value.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.lakeshore325 import (
    LakeShore325,
    LakeShoreProtocolError,
    LakeShoreReadbackError,
    LakeShoreTimeoutError,
)
from simulators.lakeshore325 import LakeShore325Simulator, LakeShoreOptions
from simulators.lakeshore325_faults import FaultTcpServer

TIMEOUT_S = 0.3
LATE_S = 0.5  # after the driver's timeout, well within the resync's three timeouts
PLATE_K, CRYSTAL_K, SETPOINT_K = 80.0, 120.0, 293.0


@pytest.fixture(params=["asrl", "socket"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[LakeShore325, LakeShore325Simulator]]:
    """The driver on the simulator, as ASRLsocket (the lab's serial code path, 7O1) or a TCPIP raw socket."""
    sim = LakeShore325Simulator(LakeShoreOptions(noise_k=0.0, seed=3), clock=lambda: 0.0)
    sim.model.plate_k, sim.model.crystal_k = PLATE_K, CRYSTAL_K
    with FaultTcpServer(sim) as server:
        resource = (
            f"ASRLsocket://{server.address}::INSTR"
            if request.param == "asrl"
            else f"TCPIP0::127.0.0.1::{server.port}::SOCKET"
        )
        with LakeShore325(resource, timeout_s=TIMEOUT_S) as ls:
            yield ls, sim


def _in_step(ls: LakeShore325) -> None:
    """Every answer is its own question's: B's temperature, A's, the setpoint, loop 1's control setup."""
    assert ls.input("B").temperature_k == pytest.approx(CRYSTAL_K)
    assert ls.input("A").temperature_k == pytest.approx(PLATE_K)
    assert ls.loop(1).setpoint_k == pytest.approx(SETPOINT_K)
    assert ls.loop(1).control_setup == ("A", 1, 0, 2)


def test_a_late_reading_is_a_timeout_and_the_next_query_gets_its_own_answer(rig) -> None:
    ls, sim = rig
    sim.faults.inject("late", match="KRDG? A", delay_s=LATE_S)
    with pytest.raises(LakeShoreTimeoutError, match=r"did not answer 'KRDG\? A' within 0.3 s"):
        _ = ls.input("A").temperature_k
    assert ls.input("B").temperature_k == pytest.approx(CRYSTAL_K)  # not A's late 80 K
    assert ls.link.stale_lines == 1  # the late line was read and dropped, not used
    _in_step(ls)
    assert sim.faults.applied == [("late", "KRDG? A")]


def test_a_late_setpoint_never_answers_a_later_query(rig) -> None:
    ls, sim = rig
    sim.faults.inject("late", match="SETP?", delay_s=LATE_S)
    with pytest.raises(LakeShoreTimeoutError):
        _ = ls.loop(1).setpoint_k
    assert ls.loop(1).control_setup == ("A", 1, 0, 2)
    _in_step(ls)


def test_a_split_reply_with_a_short_pause_is_read_whole(rig) -> None:
    ls, sim = rig
    sim.faults.inject("split", match="KRDG? B", delay_s=0.05, split_at=3)
    assert ls.input("B").temperature_k == pytest.approx(CRYSTAL_K)
    assert sim.faults.applied == [("split", "KRDG? B")] and ls.link.timeouts == 0


def test_a_split_reply_whose_tail_comes_after_the_timeout_is_never_taken_as_an_answer(rig) -> None:
    ls, sim = rig
    sim.faults.inject("split", match="KRDG? B", delay_s=LATE_S, split_at=3)  # '+12' ... '0.000'
    with pytest.raises(LakeShoreTimeoutError):
        _ = ls.input("B").temperature_k
    assert ls.input("A").temperature_k == pytest.approx(PLATE_K)  # not 0.0 from the tail '0.000'
    _in_step(ls)


def test_garbage_is_a_protocol_error_naming_the_reply(rig) -> None:
    ls, sim = rig
    sim.faults.inject("garbage", match="CSET?")
    with pytest.raises(LakeShoreProtocolError, match=r"answered 'CSET\? 1' with '#~\?%"):
        _ = ls.loop(1).control_setup
    assert ls.link.protocol_errors == 1
    _in_step(ls)


def test_a_missing_reply_is_a_timeout_and_the_link_recovers(rig) -> None:
    ls, sim = rig
    sim.faults.inject("silence", match="RANGE?", count=2)
    for _ in range(2):
        with pytest.raises(LakeShoreTimeoutError, match=r"'RANGE\? 1'"):
            _ = ls.loop(1).heater_range
    assert ls.loop(1).heater_range == 0
    _in_step(ls)


def test_a_late_esr_fails_the_command_and_the_next_one_works(rig) -> None:
    ls, sim = rig
    sim.faults.inject("late", match="*ESR?", delay_s=LATE_S)
    with pytest.raises(LakeShoreTimeoutError, match=r"'\*ESR\?'"):
        ls.loop(1).heater_range = 1
    ls.loop(1).heater_range = 2
    assert ls.loop(1).heater_range == 2
    _in_step(ls)


def test_a_clamped_setpoint_is_caught_by_its_read_back(rig) -> None:
    ls, sim = rig
    sim.options.setpoint_limit_k = 300.0
    with pytest.raises(LakeShoreReadbackError, match="sent 350.000 K, read back 300.000 K") as caught:
        ls.loop(1).setpoint_k = 350.0
    assert (caught.value.parameter, caught.value.sent, caught.value.read) == ("setpoint_k", 350.0, 300.0)
    ls.loop(1).setpoint_k = 77.0  # within the limit: accepted and verified
    assert sim.loops[1].target_k == 77.0
