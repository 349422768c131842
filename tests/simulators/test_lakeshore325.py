"""The Lake Shore 325 simulator over a loopback TCP socket through pyvisa-py, and its thermal model."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from drivers.lakeshore325 import LakeShore325, LakeShoreRejectedError, LakeShoreTimeoutError, ReadingStatus
from simulators.cryostat_thermal import CryostatModel, ThermalSettings
from simulators.lakeshore325 import CME, EXE, PON, LakeShore325Simulator, dt670_volts
from simulators.line_servers import TcpServer


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig() -> Iterator[tuple[LakeShore325, LakeShore325Simulator, Clock]]:
    clock = Clock()
    sim = LakeShore325Simulator(clock=clock)
    with TcpServer(sim) as server, LakeShore325(f"ASRLsocket://{server.address}::INSTR", timeout_s=0.3) as ls:
        yield ls, sim, clock


def test_cooldown_reaches_and_holds_77K_without_saturating_the_heater(rig) -> None:
    ls, sim, clock = rig
    assert ls.identify().startswith("LSCI,MODEL325")
    assert ls.temperature_k("A") == pytest.approx(293.0, abs=0.05)
    ls.set_control_setup(1, "A", 1, False, 2)
    ls.set_pid(1, 50, 20, 0)
    ls.set_setpoint_k(1, 77.0)
    ls.set_heater_range(1, 2)
    crossed_at = None
    for minute in range(1, 4 * 60 + 1):  # four simulated hours, looked at every minute
        clock.t = 60.0 * minute
        sim.advance()
        t = sim.model.plate_k
        if crossed_at is None and t < 77.5:
            crossed_at = minute
    assert crossed_at is not None and 45 <= crossed_at <= 75  # about 1 h (INSTRUMENTS.md 2.9)
    readings = []
    for second in range(0, 600, 30):  # the last ten minutes of the hold
        clock.t = 4 * 3600 + second
        readings.append(ls.temperature_k("A"))
    assert max(abs(r - 77.0) for r in readings) < 0.1
    heater = ls.heater_output_pct(1)
    assert 70 < heater < 95  # holding, not saturated: 21.8 W of the 25 W range
    assert sim.model.head_k == pytest.approx(33.5, abs=0.5)
    assert ls.temperature_k("B") == pytest.approx(77.0, abs=0.1)  # the crystal follows
    assert sim.too_fast == 0  # the driver keeps to 20 messages per second


def test_setpoint_ramp_walks_at_its_rate(rig) -> None:
    ls, sim, clock = rig
    ls.set_ramp(1, True, 2.0)  # K/min
    ls.set_setpoint_k(1, 283.0)
    assert ls.ramping(1) and ls.setpoint_k(1) == 283.0  # SETP? gives the target
    clock.t = 150.0  # 2.5 min: the working setpoint walked 5 K down from 293 K
    sim.advance()
    assert sim.loops[1].setpoint_k == pytest.approx(288.0, abs=0.05)
    clock.t = 400.0
    assert not ls.ramping(1)


def test_rejected_commands_and_silent_queries(rig) -> None:
    ls, sim, _ = rig
    with pytest.raises(LakeShoreRejectedError, match="execution error"):
        ls.set_heater_range(1, 5)
    with pytest.raises(LakeShoreRejectedError, match="command error"):
        ls.command("FROB 1,2")
    with pytest.raises(LakeShoreTimeoutError):
        ls.query("KRDG? C")  # bad parameter: no reply
    assert ls.query("*ESR?") == f"{EXE:03d}"  # ... and EXE set, read and cleared
    assert ls.query("*ESR?") == "000"


def test_wire_rules_chaining_length_and_spaces() -> None:
    sim = LakeShore325Simulator(clock=Clock())
    assert sim.handle("*ESR?") == f"{PON:03d}"
    assert (
        sim.handle("RANGE 1, 2 ; SETP 1, 77.0;SETP? 1") == "+077.000"
    )  # spaces accepted, last query answered
    assert sim.handle("SETP? 1;RANGE 1,0") is None and sim.handle("*ESR?") == f"{CME:03d}"
    assert sim.handle("SETP 1,77.0;" + "RANGE 1,2;" * 6) is None  # over 64 characters: ignored
    assert sim.handle("*ESR?") == f"{CME:03d}" and sim.handle("RANGE? 1") == "2"


def test_sensor_units_status_and_an_open_sensor(rig) -> None:
    ls, sim, _ = rig
    assert ls.sensor_units("A") == pytest.approx(dt670_volts(293.0), abs=1e-4)
    assert dt670_volts(77.35) == pytest.approx(1.024, abs=0.002)
    assert ls.reading_status("A") == ReadingStatus(0)
    sim.set_open_sensor("B", True)
    assert ls.reading_status("B") == ReadingStatus.INVALID | ReadingStatus.UNITS_OVER


def test_a_warm_up_to_a_setpoint_with_the_cooler_off(rig) -> None:
    ls, sim, clock = rig
    ls.set_setpoint_k(1, 77.0)
    ls.set_heater_range(1, 2)
    clock.t = 3 * 3600.0
    assert ls.temperature_k("A") == pytest.approx(77.0, abs=0.1)
    sim.set_cooler(False)
    ls.set_ramp(1, True, 5.0)
    ls.set_setpoint_k(1, 150.0)
    clock.t += 3600.0
    assert ls.temperature_k("A") == pytest.approx(150.0, abs=0.5)


def test_third_party_client_over_a_plain_socket(rig) -> None:
    _, sim, _ = rig
    with TcpServer(sim) as server, socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as s:
        s.sendall(b"*IDN?\r\n")
        deadline = time.monotonic() + 1.0
        data = b""
        while not data.endswith(b"\r\n") and time.monotonic() < deadline:
            data += s.recv(100)
        assert data.startswith(b"LSCI,MODEL325,")


@pytest.mark.parametrize(
    ("settings", "expected_h"),
    [  # INSTRUMENTS.md 2.9's model results: plate < 77 K, crystal < 77 K, plate < 10 K, plate < 4.5 K
        ({}, (0.99, 1.35, 1.76, 1.87)),
        ({"g_link_w_per_k": 5.0}, (0.75, 1.09, 1.26, 1.50)),
        ({"stage2_scale": 0.5}, (1.74, 2.06, 2.57, 2.66)),
    ],
)
def test_free_cooldown_times_of_the_thermal_model(
    settings: dict[str, float], expected_h: tuple[float, ...]
) -> None:
    model = CryostatModel(ThermalSettings(**settings))
    crossed: dict[str, float] = {}
    for minute in range(1, 4 * 60 + 1):  # four hours, cold head on, heater off
        model.step(60.0, 0.0)
        for name, below in (("plate 77", model.plate_k < 77), ("crystal 77", model.crystal_k < 77),
                            ("plate 10", model.plate_k < 10), ("plate 4.5", model.plate_k < 4.5)):  # fmt: skip
            if below:
                crossed.setdefault(name, minute / 60)
    got = tuple(crossed[name] for name in ("plate 77", "crystal 77", "plate 10", "plate 4.5"))
    assert got == pytest.approx(expected_h, abs=0.02)  # minute resolution
    assert model.plate_k == pytest.approx(2.8, abs=0.05)  # the cold head's floor


def test_the_model_is_stable_with_one_second_steps_at_the_cold_heads_floor() -> None:
    """Explicit steps would need ~0.02 s here (copper's heat capacity at 3 K); the implicit one takes 1 s."""
    model = CryostatModel(ThermalSettings(g_link_w_per_k=5.0))
    model.shield_k, model.head_k, model.plate_k, model.crystal_k = 40.0, 3.0, 3.5, 4.0
    for _ in range(2000):
        model._advance(1.0, 0.0)
        assert 1.0 <= model.head_k <= 4.0 and 1.0 <= model.plate_k <= 4.0 and 1.0 <= model.crystal_k <= 4.0
    assert model.plate_k == pytest.approx(2.8, abs=0.05) and model.crystal_k == pytest.approx(2.8, abs=0.1)
    model._advance(1.0, 2.5)  # the Low range's full 2.5 W: warms, no overshoot or oscillation
    assert 2.8 < model.plate_k < 10.0
