"""The checks of `daq doctor` that talk to the configured instruments: DT5751, NDT1470, Lake Shore 325 identities.

Simulated instruments are started as a run starts them and asked the same questions, so the
doctor exercises the driver code a run uses. Nothing is set: the HV is left as it is on close.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from daq.config import DigitizerSection, RunConfig
from daq.doctor_checks import Check

DIGITIZER_TIMEOUT_S = 20.0  # a real FELib open over USB takes a few seconds
REPLY_TIMEOUT_S = 10.0
_IDENTITY = ("MODELNAME", "SERIALNUM", "FWTYPE", "ROC_FWVER", "AMC_FWVER")


def _in_thread(fn: Callable[[], Any], timeout_s: float) -> tuple[Any, BaseException | None, bool]:
    """Run fn on its own thread (FELib: open and close on one thread); return (result, error, finished)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    worker = threading.Thread(target=target, name="doctor-digitizer", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return None, None, False
    return box.get("result"), box.get("error"), True


def _read_digitizer(url: str) -> dict[str, str]:
    from daq.digitizer_urls import connect_digitizer_node

    root, _errors = connect_digitizer_node(url)
    try:
        identity = {}
        for name in _IDENTITY:
            try:
                identity[name] = str(root.get_value(f"/par/{name}"))
            except Exception:  # noqa: BLE001, S112 - a parameter this board lacks is left out
                continue
        try:
            identity["Dig1 library"] = str(root.get_impl_lib_version())
        except Exception:  # noqa: BLE001 - FELib < 1.3 has no such call
            pass
        return identity
    finally:
        root.close()


def digitizer_identity(section: DigitizerSection) -> Check:
    """Open the configured digitizer, read model, serial, firmware and library version, close it."""
    from drivers import DigitizerError

    name = f"DT5751 {section.url}"
    identity, error, finished = _in_thread(lambda: _read_digitizer(section.url), DIGITIZER_TIMEOUT_S)
    if not finished:
        return Check(
            "missing",
            name,
            f"no answer within {DIGITIZER_TIMEOUT_S:g} s",
            "check the board's power and cable, and that no other program (WaveDump, CoMPASS) holds it",
        )
    if isinstance(error, DigitizerError):
        return Check("missing", name, str(error))
    if error is not None:
        return Check(
            "missing", name, f"{type(error).__name__}: {error}", "run daq scope --url URL -v for details"
        )
    detail = ", ".join(f"{k} {v}" for k, v in identity.items())
    if "751" not in identity.get("MODELNAME", ""):
        return Check("warning", name, detail, "the driver's settings are for a DT5751; check digitizer.url")
    return Check("ok", name, detail)


@contextmanager
def _quiet_loop_logs() -> Iterator[None]:
    """Silence the instrument loops' own logging: the doctor reports each failure once, as a line.

    (Also the loop's note that the HV is left as it is: the doctor sets hv.safe_state keep.)
    """
    loggers = [logging.getLogger(name) for name in ("daq.instruments", "daq.slowcontrol")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _hv_identity(hv: Any, channel: int) -> str:
    names = [f"{n} {hv.board_value(n)}" for n in ("BDNAME", "BDNCH", "BDFREL", "BDSNUM")]
    vmon = hv.get(channel, "VMON")
    return ", ".join(names) + f"; channel {channel} VMON {vmon} V"


def slow_control_identities(config: RunConfig) -> list[Check]:
    """Open the NDT1470 and the Lake Shore 325 of `config` as a run does, read their identities, close."""
    from daq.instruments import SlowControl

    keep = config.model_copy(update={"hv": config.hv.model_copy(update={"safe_state": "keep"})})
    checks = []
    jobs: list[tuple[str, bool, Callable[[SlowControl], Any]]] = [
        (
            f"NDT1470 {'simulator' if config.hv.simulate else config.hv.port}",
            True,
            lambda slow: slow.hv.submit(lambda hv: _hv_identity(hv, config.hv.channel)),
        ),
        (
            f"Lake Shore 325 {'simulator' if config.cryostat.simulate else config.cryostat.resource}",
            False,
            lambda slow: slow.cryostat.submit(lambda ls: ls.identify()),
        ),
    ]
    for name, is_hv, ask in jobs:
        with _quiet_loop_logs():
            try:
                with SlowControl(keep, hv=is_hv, cryostat=not is_hv) as slow:
                    detail = str(ask(slow).result(REPLY_TIMEOUT_S))
            except Exception as exc:  # noqa: BLE001 - every failure is the instrument's line in the report
                checks.append(Check("missing", name, " ".join(str(exc).split()) or type(exc).__name__))
                continue
        checks.append(Check("ok", name, detail))
    return checks
