"""The NDT1470 simulator over a real pty and a TCP socket, driven by the real driver, on an injected clock."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from drivers.ndt1470 import (
    BoardAlarm,
    ChannelStatus,
    Ndt1470,
    Ndt1470LocalModeError,
    Ndt1470ProtocolError,
    Ndt1470RangeError,
    Ndt1470TimeoutError,
    Ndt1470TripError,
    Ndt1470ValueError,
)
from simulators.chunked_line_servers import ChunkedTcpServer
from simulators.line_servers import PtyServer, TcpServer
from simulators.ndt1470 import Ndt1470Options, Ndt1470Simulator
from simulators.ndt1470_faults import GARBAGE


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[Ndt1470, Ndt1470Simulator, Clock]]:
    clock = Clock()
    sim = Ndt1470Simulator(Ndt1470Options(board=2), clock=clock)
    server = PtyServer(sim) if request.param == "pty" else TcpServer(sim)
    with server:
        url = server.path if request.param == "pty" else f"socket://{server.address}"
        with Ndt1470(url, board=2, timeout_s=0.5) as hv:
            yield hv, sim, clock


def test_identity_and_defaults(rig) -> None:
    hv, _, _ = rig
    assert hv.board_value("BDNAME") == "NDT1470" and hv.board_value("BDNCH") == 4
    assert hv.board_value("BDCTR") == "REMOTE" and hv.board_value("BDILK") == "NO"
    assert hv.get_all("POL") == ["-"] * 4
    assert hv.status(0) == ChannelStatus(0)


def test_ramp_up_at_rup_then_down_at_rdw(rig) -> None:
    hv, _, clock = rig
    hv.set(0, "RUP", 100)
    hv.set(0, "RDW", 250)
    hv.set_voltage_v(0, -1500)
    hv.on(0)
    clock.t += 5.0
    mid = hv.read_channel(0)
    assert mid.vmon_v == pytest.approx(500.0, abs=1.0) and ChannelStatus.RUP in mid.status
    final = hv.wait_for_ramp(0, timeout_s=60, sleep=clock.sleep, clock=clock)
    assert final.vmon_v == pytest.approx(1500.0) and final.status == ChannelStatus.ON
    assert final.imon_ua == pytest.approx(100.0, abs=0.5)  # 1500 V into the 15 MOhm divider
    hv.off(0)
    clock.t += 2.0
    assert hv.get(0, "VMON") == pytest.approx(1000.0, abs=1.0) and ChannelStatus.RDW in hv.status(0)
    hv.wait_for_ramp(0, timeout_s=60, sleep=clock.sleep, clock=clock)
    assert hv.get(0, "VMON") == 0.0


def test_over_current_trips_after_trip_seconds_mid_ramp(rig) -> None:
    hv, sim, clock = rig
    hv.set(1, "ISET", 50)
    hv.set(1, "TRIP", 3)
    hv.set(1, "VSET", 1500)
    hv.on(1)
    clock.t += 10.0  # 500 V: 33 uA
    sim.inject_current_ua(1, 40.0)  # now 73 uA > 50 uA
    clock.t += 2.0
    assert ChannelStatus.OVC in hv.status(1)
    with pytest.raises(Ndt1470TripError, match="channel 1 stopped while ramping: .*TRIP"):
        hv.wait_for_ramp(1, timeout_s=60, sleep=clock.sleep, clock=clock)
    assert hv.board_value("BDALARM") == BoardAlarm.CH1
    clock.t += 60.0
    assert hv.get(1, "VMON") == 0.0  # ramped down (PDWN RAMP)
    hv.clear_alarm()
    assert hv.board_value("BDALARM") == BoardAlarm(0) and ChannelStatus.TRIP not in hv.status(1)


def test_the_next_on_clears_the_trip_and_its_alarm_bit(rig) -> None:
    hv, sim, clock = rig
    for ch in (0, 1):
        hv.set(ch, "TRIP", 0.5)
        hv.set(ch, "VSET", 300)
        hv.on(ch)
    clock.t += 10.0
    sim.inject_current_ua(0, 500.0)
    sim.inject_current_ua(1, 500.0)
    clock.t += 1.0
    assert hv.board_value("BDALARM") == BoardAlarm.CH0 | BoardAlarm.CH1
    sim.inject_current_ua(0, 0.0)
    hv.on(0)
    assert hv.board_value("BDALARM") == BoardAlarm.CH1  # channel 1's alarm stays until its own ON or BDCLR
    assert ChannelStatus.TRIP not in hv.status(0) and ChannelStatus.TRIP in hv.status(1)
    sim.inject_current_ua(1, 0.0)
    hv.on(4)  # all channels at once: every alarm bit of a channel that comes on is cleared
    assert hv.board_value("BDALARM") == BoardAlarm(0)


def test_front_panel_switch_off_in_remote_is_dis_and_keeps_the_channel_off(rig) -> None:
    hv, sim, clock = rig
    hv.set(2, "VSET", 600)
    hv.on(2)
    clock.t += 20.0
    sim.set_disabled(2, True)
    clock.t += 20.0
    status = hv.status(2)
    assert ChannelStatus.DIS in status and ChannelStatus.ON not in status and hv.get(2, "VMON") == 0.0
    hv.on(2)  # acknowledged, but the switch wins
    assert ChannelStatus.ON not in hv.status(2)
    sim.set_disabled(2, False)
    hv.on(2)
    assert ChannelStatus.ON in hv.status(2) and ChannelStatus.DIS not in hv.status(2)


def test_kill_power_down_drops_at_once(rig) -> None:
    hv, sim, clock = rig
    hv.set(2, "PDWN", "KILL")
    hv.set(2, "TRIP", 0)
    hv.set(2, "VSET", 1000)
    hv.on(2)
    clock.t += 30.0
    sim.inject_current_ua(2, 500.0)
    clock.t += 0.2
    assert hv.get(2, "VMON") == 0.0 and ChannelStatus.TRIP in hv.status(2)


def test_local_mode_refuses_every_set_but_answers_mon(rig) -> None:
    hv, sim, _ = rig
    sim.set_local(True)
    with pytest.raises(Ndt1470LocalModeError, match="LOCAL mode"):
        hv.on(0)
    assert hv.board_value("BDCTR") == "LOCAL" and hv.get(0, "VSET") == 0.0


def test_interlock_and_front_panel_kill(rig) -> None:
    hv, sim, clock = rig
    hv.set(3, "VSET", 800)
    hv.on(3)
    clock.t += 5.0
    sim.set_interlock(True)
    clock.t += 0.1
    assert ChannelStatus.ILK in hv.status(3) and ChannelStatus.ON not in hv.status(3)
    assert hv.board_value("BDILK") == "YES"
    sim.set_interlock(False)
    hv.on(0)
    sim.kill(0)
    assert ChannelStatus.KILL in hv.status(0)


def test_values_out_of_range_and_above_maxv(rig) -> None:
    hv, _, _ = rig
    hv.max_voltage_v = 9000  # the driver's own limit out of the way: its table still refuses
    with pytest.raises(Ndt1470RangeError, match="VSET 8500 V is outside 0-8000 V; refused before sending"):
        hv.set(0, "VSET", 8500)
    with pytest.raises(Ndt1470RangeError, match="RUP 0 V/s is outside 1-500"):
        hv.set(0, "RUP", 0)
    with pytest.raises(Ndt1470ValueError):  # the unit refuses too, when asked past the driver
        hv.request("CMD:SET,CH:0,PAR:VSET,VAL:8500.0")
    hv.set(0, "MAXV", 1000)
    with pytest.raises(Ndt1470ValueError):
        hv.set(0, "VSET", 1200)  # above MAXV: refused by the unit (the simulator's default)
    with pytest.raises(Ndt1470ValueError):
        hv.request("CMD:SET,CH:0,PAR:RUP,VAL:0")
    assert hv.get(0, "VSET") == 0.0 and hv.get(0, "RUP") == 50.0


def test_silence_for_another_board_and_garbled_or_dropped_replies(rig) -> None:
    hv, sim, _ = rig
    hv.board = 5
    with pytest.raises(Ndt1470TimeoutError, match="board 05"):
        hv.get(0, "VMON")
    hv.board = 2
    sim.garble_replies = 1
    with pytest.raises(Ndt1470ProtocolError):
        hv.get(0, "VMON")
    sim.drop_replies = 1
    with pytest.raises(Ndt1470TimeoutError):
        hv.get(0, "VMON")
    assert hv.get(0, "VMON") == 0.0  # the link recovers


def test_lf_cr_acks_firmware_option() -> None:
    sim = Ndt1470Simulator(Ndt1470Options(set_ack_lf_cr=True))
    with PtyServer(sim) as server, Ndt1470(server.path, timeout_s=0.5) as hv:
        hv.set(0, "VSET", 100)
        assert hv.get(0, "VSET") == 100.0
        hv.on(0)
        assert ChannelStatus.ON in hv.status(0)


def test_injected_faults_hit_only_the_requests_they_name_and_only_count_times() -> None:
    sim = Ndt1470Simulator(Ndt1470Options(), clock=Clock())
    mon_vset, set_vset = "$BD:00,CMD:MON,CH:0,PAR:VSET", "$BD:00,CMD:SET,CH:0,PAR:VSET,VAL:{}"
    sim.inject("silence", on="SET", par="VSET", count=2)
    assert sim.handle(mon_vset) == "#BD:00,CMD:OK,VAL:0000.0"  # a MON is not hit
    assert sim.handle(set_vset.format("100.0")) is None and sim.handle(set_vset.format("200.0")) is None
    assert sim.channels[0].vset_v == 200.0  # silent, but taken (apply=True)
    assert sim.handle(set_vset.format("300.0")) == "#BD:00,CMD:OK" and sim.faults.pending() == 0
    sim.inject("garbage", on="MON")
    assert sim.handle(mon_vset) == GARBAGE and sim.handle(mon_vset) == "#BD:00,CMD:OK,VAL:0300.0"
    sim.inject("late", on="SET", apply=False)  # acknowledged (late), but lost
    assert sim.handle(set_vset.format("400.0")) == "#BD:00,CMD:OK" and sim.channels[0].vset_v == 300.0
    sim.handle("$BD:00,CMD:SET,CH:0,PAR:MAXV,VAL:1000")
    assert sim.handle(set_vset.format("1200.0")) == "#BD:00,VAL:ERR"  # above MAXV: refused by default
    sim.inject("clamp", on="SET", par="VSET")
    assert sim.handle(set_vset.format("1200.0")) == "#BD:00,CMD:OK" and sim.channels[0].vset_v == 1000.0
    sim.inject("split", on="MON", delay_s=0.25)
    assert sim.handle(mon_vset) == "#BD:00,CMD:OK,VAL:1000.0" and sim.take_split() == 0.25
    assert sim.take_split() is None  # asked once per reply
    with pytest.raises(ValueError, match="count >= 1"):
        sim.inject("late", count=0)


def test_a_split_reply_reaches_a_client_in_two_chunks() -> None:
    sim = Ndt1470Simulator(Ndt1470Options())
    with ChunkedTcpServer(sim) as server, socket.create_connection(("127.0.0.1", server.port)) as conn:
        sim.inject("split", on="MON", delay_s=0.3)
        conn.sendall(b"$BD:00,CMD:MON,PAR:BDNAME\r\n")
        conn.settimeout(5.0)
        first = conn.recv(100)
        rest = b""
        while not rest.endswith(b"\r\n"):
            rest += conn.recv(100)
    assert first + rest == b"#BD:00,CMD:OK,VAL:NDT1470\r\n" and first and b"\n" not in first  # cut mid-line
