"""`daq doctor [--config FILE]`: what this machine has and reaches for a configuration, one line per check.

Exit code 0 when everything the configuration needs is there (a fully simulated configuration
needs no CAEN library, serial port or VISA instrument), 2 when something it needs is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from daq.config import RunConfig, load_config
from daq.doctor_checks import (
    Check,
    caen_libraries,
    caen_link_driver,
    disk_space,
    numba_cache,
    python_stack,
    serial_port_checks,
    visa,
)

EXIT_OK = 0
EXIT_MISSING = 2
KERNEL_FILE = Path(__file__).resolve().parent.parent / "analysis" / "pulses.py"  # the run's numba kernels


def _asrl_device(resource: str) -> str | None:
    """The device path of a VISA serial resource: 'ASRL/dev/ttyUSB0::INSTR' -> '/dev/ttyUSB0'."""
    text = resource.strip()
    if not text.upper().startswith("ASRL") or text.upper().startswith("ASRLSOCKET"):
        return None
    device = text[4:].split("::", 1)[0]
    return device if device.startswith("/") else None


def _configured_ports(config: RunConfig) -> dict[str, str]:
    ports = {}
    if not config.hv.simulate and not config.hv.port.startswith(("socket://", "rfc2217://", "loop://")):
        ports[config.hv.port] = "hv.port"
    device = None if config.cryostat.simulate else _asrl_device(config.cryostat.resource)
    if device:
        ports[device] = "cryostat.resource"
    return ports


def _environment_checks(config: RunConfig) -> list[Check]:
    url = config.digitizer.url
    real_board = not config.digitizer.simulated
    checks = python_stack()
    checks += caen_libraries(real_board, f"digitizer.url is {url}, the simulator")
    if real_board:
        checks += caen_link_driver(url)
    gpib = not config.cryostat.simulate and config.cryostat.resource.strip().upper().startswith("GPIB")
    checks += visa(
        True, gpib, "the cryostat is simulated"
    )  # the Lake Shore simulator is reached through pyvisa too
    checks += serial_port_checks(_configured_ports(config))
    checks.append(disk_space(config.run.output_dir, config.writer.min_free_disk_mb))
    checks.append(numba_cache(KERNEL_FILE))
    return checks


def _instrument_checks(config: RunConfig) -> list[Check]:
    from daq.doctor_instruments import digitizer_identity, slow_control_identities

    return [digitizer_identity(config.digitizer), *slow_control_identities(config)]


def run_doctor(config_path: str | Path, out: TextIO | None = None) -> int:
    """Print one line per check for the configuration at `config_path`; return 0, or 2 if something needed is missing."""
    out = out or sys.stdout
    checks: list[Check] = []

    def report(found: list[Check]) -> None:
        for check in found:
            print(check.line(), file=out, flush=True)
        checks.extend(found)

    try:
        config = load_config(config_path)
    except (ValueError, OSError) as exc:
        report(
            [
                Check(
                    "missing",
                    f"configuration {config_path}",
                    " ".join(str(exc).split()),
                    "fix the file or give --config",
                )
            ]
        )
        config = None
    if config is not None:
        kinds = (
            f"digitizer {config.digitizer.url}, HV {'simulated' if config.hv.simulate else config.hv.port}, "
            f"cryostat {'simulated' if config.cryostat.simulate else config.cryostat.resource}"
        )
        print(f"daq doctor: {config_path} ({kinds})", file=out, flush=True)
        report(_environment_checks(config))
        report(_instrument_checks(config))
    else:
        report(python_stack())
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warning", "missing", "info")}
    code = EXIT_MISSING if counts["missing"] else EXIT_OK
    verdict = (
        f"{counts['missing']} missing that {config_path} needs: see the fixes above"
        if code
        else f"everything {config_path} needs is here"
    )
    print(
        f"summary: {counts['ok']} ok, {counts['warning']} warning, {counts['missing']} missing, {counts['info']} info; "
        f"{verdict} (exit {code})",
        file=out,
    )
    return code
