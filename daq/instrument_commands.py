"""`daq sim`, `daq cooldown` and `daq hv`: serve a simulator standalone, cool the cryostat, drive the HV."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from daq.config import load_config
from daq.instruments import SlowControl
from daq.sequences import cooldown, hv_off, hv_on
from simulators.lakeshore325 import LakeShore325Simulator
from simulators.line_servers import PtyServer, TcpServer
from simulators.ndt1470 import Ndt1470Simulator


def throttled_printer(out: TextIO, every_s: float = 0.0) -> Callable[[str], None]:
    """A progress callback that prints an indented line at most every `every_s` seconds."""
    last = [0.0]

    def show(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            print("  " + text, file=out, flush=True)
            last[0] = now

    return show


def serve_simulator(kind: str, pty: bool, port: int, time_scale: float, out: TextIO | None = None) -> int:
    """Serve one simulator until Ctrl-C or SIGTERM, printing where clients connect."""
    out = out or sys.stdout
    if kind == "ndt1470":
        handler: Ndt1470Simulator | LakeShore325Simulator = Ndt1470Simulator(time_scale=time_scale)
    else:
        handler = LakeShore325Simulator(time_scale=time_scale)
        if pty:
            raise ValueError("the Lake Shore 325 simulator serves TCP only (a pty cannot do 7O1): use --port")
    server = PtyServer(handler) if pty else TcpServer(handler, port=port)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, f: done.set())
    with server:
        if isinstance(server, PtyServer):
            print(
                f"{kind} simulator on {server.path} (time scale {time_scale:g}); Ctrl-C stops it",
                file=out,
                flush=True,
            )
        else:
            where = (
                f"socket://{server.address}" if kind == "ndt1470" else f"ASRLsocket://{server.address}::INSTR"
            )
            print(
                f"{kind} simulator on {where} (time scale {time_scale:g}); Ctrl-C stops it",
                file=out,
                flush=True,
            )
        done.wait()
    return 0


def run_cooldown(config_path: str, to_k: float | None, out: TextIO | None = None) -> int:
    """Cool (or warm) the stage to to_k (default the configured setpoint) and wait until it is stable."""
    out = out or sys.stdout
    config = load_config(config_path)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    with SlowControl(config, hv=False) as slow:
        assert slow.cryostat is not None
        target = config.cryostat.setpoint_k if to_k is None else to_k
        print(
            f"cooling the stage to {target:g} K (Ctrl-C stops waiting; the controller keeps control)",
            file=out,
        )
        reading = cooldown(
            slow.cryostat, config.cryostat, target, progress=throttled_printer(out), should_stop=stop.is_set,
        )  # fmt: skip
        print(f"stable: stage {reading.stage_k:.3f} K, crystal {reading.crystal_k:.3f} K, "
              f"heater {reading.heater_pct:.1f} %", file=out)  # fmt: skip
    return 0


def run_hv(config_path: str, action: str, voltage_v: float | None, out: TextIO | None = None) -> int:
    """status, on (to the configured or given voltage), off, or set V (and switch on) on the PMT channel."""
    out = out or sys.stdout
    config = load_config(config_path)
    data = config.model_dump()
    data["hv"]["safe_state"] = "keep"  # this command leaves the channel as it asked
    config = type(config).model_validate(data)
    with SlowControl(config, cryostat=False) as slow:
        assert slow.hv is not None
        hv = slow.hv
        show = throttled_printer(out, every_s=1.0)
        if action == "status":
            reading = hv.wait_for_reading(5.0)
            if reading is None:
                raise RuntimeError(f"NDT1470 gave no reading: {hv.error}")
        elif action == "off":
            reading = hv_off(hv, config.hv, show)
        else:
            reading = hv_on(hv, config.hv, voltage_v if action == "set" else None, show)
        print(f"HV channel {reading.channel}: VSET {reading.vset_v:g} V, VMON {reading.vmon_v:g} V, "
              f"IMON {reading.imon_ua:g} uA, {reading.flags}", file=out)  # fmt: skip
    return 0
