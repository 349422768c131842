"""The checks of `daq doctor` that look at this machine: Python stack, CAEN libraries, VISA, serial, disk, numba.

Each check returns Check lines: `ok`, `missing` (something the configuration needs, with the fix),
`warning` (works, but look at it) or `info` (absent and not needed by this configuration).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "missing", "warning", "info"]

CAEN_DOWNLOAD = (
    "download the Linux packages from CAEN's website https://www.caen.it/ (free login), install each with "
    "the script its README names (as root), then run `sudo ldconfig`"
)
# (soname stem, CAEN package, what it does); libCAEN_Dig1 loads the three below it.
CAEN_LIBRARIES = (
    ("CAEN_FELib", "CAEN FELib", "the library caen-felib loads"),
    ("CAEN_Dig1", "CAEN Dig1", "FELib's plugin for dig1:// boards (x751)"),
    ("CAENDigitizer", "CAENDigitizer", "needed by CAEN Dig1"),
    ("CAENComm", "CAENComm", "needed by CAENDigitizer"),
    ("CAENVME", "CAENVMELib", "needed by CAENComm"),
)
FELIB_PACKAGE_VERSION = "1.4.0"  # the version the driver was checked against (pyproject's hardware extra)
PYTHON_MIN = (3, 11)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    status: Status
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The printed line: status, name, detail, and the fix after an arrow."""
        text = f"{self.status:<8} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text


def absent(needed: bool, name: str, detail: str, fix: str, why_not: str) -> Check:
    """`missing` when the configuration needs it, else `info` saying why it is not needed."""
    if needed:
        return Check("missing", name, detail, fix)
    return Check("info", name, f"{detail}; not needed ({why_not})", fix)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_stack() -> list[Check]:
    """Python, numpy, numba, h5py with its HDF5, hdf5plugin, pydantic, pyserial."""
    checks = []
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= PYTHON_MIN:
        checks.append(Check("ok", "Python", f"{version} ({sys.executable})"))
    else:
        checks.append(
            Check("missing", "Python", version, "use Python >= 3.11 (caen-felib needs enum.StrEnum)")
        )
    for dist in ("numpy", "numba", "hdf5plugin", "pydantic", "pyserial"):
        v = _version(dist)
        if v is None:
            checks.append(Check("missing", dist, "not installed", "pip install -e . in the project's venv"))
        else:
            checks.append(Check("ok", dist, v))
    try:
        import h5py

        checks.append(Check("ok", "h5py", f"{h5py.version.version} (HDF5 {h5py.version.hdf5_version})"))
    except ImportError as exc:
        checks.append(
            Check("missing", "h5py", f"cannot import ({exc})", "pip install -e . in the project's venv")
        )
    return checks


def _load(stem: str) -> tuple[str | None, str]:
    """(the library's path or None, what went wrong): found as caen_felib finds it, dlopen of lib<stem>.so."""
    found = ctypes.util.find_library(stem)
    try:
        ctypes.CDLL(f"lib{stem}.so")
    except OSError as exc:
        if found:
            return None, f"{found} is known to the linker but does not load ({exc})"
        return None, "not found by the dynamic linker (ldconfig, LD_LIBRARY_PATH)"
    return found or f"lib{stem}.so", ""


def caen_libraries(needed: bool, why_not: str) -> list[Check]:
    """caen-felib (package and version), the CAEN native libraries and libCAEN_FELib's own version."""
    checks = []
    package = _version("caen-felib")
    if package is None:
        checks.append(
            absent(
                needed,
                "caen-felib",
                "the Python package is not installed",
                f"pip install -e '.[hardware]' (caen-felib {FELIB_PACKAGE_VERSION})",
                why_not,
            )
        )
    elif package != FELIB_PACKAGE_VERSION:
        checks.append(
            Check(
                "warning",
                "caen-felib",
                f"{package} installed; the driver was checked against {FELIB_PACKAGE_VERSION}",
                f"pip install caen-felib=={FELIB_PACKAGE_VERSION}",
            )
        )
    else:
        checks.append(Check("ok", "caen-felib", package))
    for stem, product, role in CAEN_LIBRARIES:
        name = f"lib{stem}.so"
        path, problem = _load(stem)
        if path is None:
            fix = f"install {product}: {CAEN_DOWNLOAD}" if needed else ""  # not needed: FELib's line says it
            if stem in ("CAEN_FELib", "CAEN_Dig1"):
                fix = f"install the CAEN FELib and CAEN Dig1 packages (and CAENDigitizer, CAENComm, CAENVMELib): {CAEN_DOWNLOAD}"
            checks.append(absent(needed, f"{name} ({product})", f"{problem}; {role}", fix, why_not))
            continue
        detail = path
        if stem == "CAEN_FELib":
            detail += f", version {_felib_version()}"
        checks.append(Check("ok", f"{name} ({product})", detail))
    return checks


def _felib_version() -> str:
    try:
        import caen_felib  # loads libCAEN_FELib.so, which is known to be there

        return str(caen_felib.lib.version)
    except Exception as exc:  # noqa: BLE001 - the version is a detail: say why it is unknown
        return f"unknown ({exc})"


def caen_link_driver(url: str) -> list[Check]:
    """The kernel driver for the board's link: CAENUSBdrvB (USB) or a3818 (optical), from /proc/modules."""
    path = url.split("://", 1)[-1].split("?", 1)[0].lower()
    wanted = {"usb": "CAENUSBdrvB", "optical_link": "a3818", "usb_a4818": "a4818"}
    module = next((m for link, m in wanted.items() if path.endswith("/" + link)), None)
    if module is None:
        return []
    try:
        loaded = Path("/proc/modules").read_text()
    except OSError as exc:
        return [
            Check(
                "warning", f"kernel driver {module}", f"cannot read /proc/modules ({exc})", "check with lsmod"
            )
        ]
    if any(line.split(" ", 1)[0].lower() == module.lower() for line in loaded.splitlines()):
        return [Check("ok", f"kernel driver {module}", "loaded")]
    return [
        Check(
            "warning",
            f"kernel driver {module}",
            f"not loaded; the board's link ({path}) needs it",
            f"install CAEN's {module} driver package from https://www.caen.it/ (make; sudo make install) and reboot "
            "or modprobe it",
        )
    ]


def _quiet(fn: Callable[[], object]) -> tuple[object | None, str]:
    """Call fn with pyvisa-py's discovery warnings silenced; return (result, error text)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(), ""
        except Exception as exc:  # noqa: BLE001 - any backend failure is reported as a line
            return None, " ".join(str(exc).split()) or type(exc).__name__


def visa(needed: bool, gpib_needed: bool, why_not: str) -> list[Check]:
    """pyvisa, its pyvisa-py and NI-VISA backends with the resources each lists, and the GPIB backend."""
    checks = []
    if _version("pyvisa") is None or _version("pyvisa-py") is None:
        return [
            absent(
                needed,
                "pyvisa",
                "pyvisa or pyvisa-py is not installed",
                "pip install -e . in the project's venv",
                why_not,
            )
        ]
    import pyvisa

    checks.append(Check("ok", "pyvisa", f"{pyvisa.__version__}, pyvisa-py {_version('pyvisa-py')}"))
    resources, error = _quiet(lambda: pyvisa.ResourceManager("@py").list_resources("?*"))
    if error:
        checks.append(Check("warning", "VISA resources (pyvisa-py)", f"listing failed: {error}"))
    else:
        listed = ", ".join(resources) if resources else "none"  # type: ignore[arg-type]
        checks.append(Check("ok", "VISA resources (pyvisa-py)", listed))
    ivi, error = _quiet(lambda: pyvisa.ResourceManager("@ivi").list_resources("?*"))
    if error:
        checks.append(
            Check("info", "NI-VISA (@ivi)", "not installed; not needed (pyvisa-py is the backend used)")
        )
    else:
        checks.append(Check("ok", "NI-VISA (@ivi)", ", ".join(ivi) if ivi else "installed, no resources"))  # type: ignore[arg-type]
    checks.append(_gpib(gpib_needed))
    return checks


def _gpib(needed: bool) -> Check:
    ctypes_backend = _version("gpib-ctypes")
    linux_gpib = importlib.util.find_spec("gpib") is not None  # linux-gpib's own Python binding
    library = ctypes.util.find_library("gpib")
    fix = (
        "build and install linux-gpib (kernel modules and libgpib.so; https://linux-gpib.sourceforge.io), configure "
        "/etc/gpib.conf for the adapter, run gpib_config, and pip install gpib-ctypes"
    )
    parts = [
        f"gpib-ctypes {ctypes_backend}" if ctypes_backend else "gpib-ctypes not installed",
        "linux-gpib Python binding present" if linux_gpib else "no linux-gpib Python binding",
        f"libgpib {library}" if library else "libgpib.so not found",
    ]
    usable = bool(library) and (bool(ctypes_backend) or linux_gpib)
    if usable:
        return Check("ok", "GPIB backend", "; ".join(parts))
    return absent(needed, "GPIB backend", "; ".join(parts), fix, "the Lake Shore is not on a GPIB resource")


def serial_port_checks(configured: dict[str, str]) -> list[Check]:
    """Every serial port (list_ports) with read/write permission; configured ports {device: use} must open.

    configured: the device paths the configuration uses on real instruments, e.g. {'/dev/ttyACM0': 'hv.port'}.
    """
    from serial.tools import list_ports

    checks = []
    ports = {p.device: p for p in list_ports.comports()}
    for device in sorted(ports):
        p = ports[device]
        about = ", ".join(x for x in (p.description, p.hwid) if x and x != "n/a") or "no description"
        use = f" ({configured[device]})" if device in configured else ""
        checks.append(_port_access(device, f"serial port {device}{use}", about, device in configured))
    for device, use in sorted(configured.items()):
        if device in ports:
            continue
        if os.path.exists(device):
            checks.append(
                _port_access(device, f"serial port {device} ({use})", "not listed by pyserial", True)
            )
        else:
            checks.append(
                Check(
                    "missing",
                    f"serial port {device} ({use})",
                    "does not exist",
                    f"plug the instrument in and look for its device (ls /dev/ttyUSB* /dev/ttyACM*, dmesg | tail), "
                    f"then set {use} in the configuration",
                )
            )
    if not ports and not configured:
        checks.append(Check("info", "serial ports", "none found"))
    return checks


def _port_access(device: str, name: str, about: str, needed: bool) -> Check:
    if os.access(device, os.R_OK | os.W_OK):
        return Check("ok", name, f"{about}; read/write allowed")
    try:
        group = grp.getgrgid(os.stat(device).st_gid).gr_name
    except (OSError, KeyError):
        group = "dialout"
    fix = f"sudo usermod -aG {group} $USER, then log out and in again (check with: id)"
    status: Status = "missing" if needed else "warning"
    return Check(status, name, f"{about}; no read/write permission (owned by group {group})", fix)


def disk_space(output_dir: str | Path, min_free_mb: float) -> Check:
    """Free space where run files go, against writer.min_free_disk_mb; the directory must be writable."""
    target = Path(output_dir).absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    name = f"disk at {output_dir}"
    if not os.access(existing, os.W_OK):
        return Check(
            "missing", name, f"{existing} is not writable", "choose run.output_dir on a writable disk"
        )
    free_mb = shutil.disk_usage(existing).free / 1e6
    created = "" if existing == target else f" (created at the first run under {existing})"
    detail = f"{free_mb:,.0f} MB free, writer.min_free_disk_mb {min_free_mb:g}{created}"
    if free_mb < min_free_mb:
        return Check("missing", name, detail, "free space, or point run.output_dir at a larger disk")
    return Check("ok", name, detail)


def numba_cache(kernel_file: Path) -> Check:
    """Where numba caches the compiled kernels of `kernel_file` (the first writable of its locators)."""
    from numba.core import caching

    locators = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
    for cls in locators:
        locator = cls.from_function(numba_cache, str(kernel_file))
        if locator is None:
            continue
        try:
            locator.ensure_cache_path()
        except OSError:
            continue
        return Check("ok", "numba cache", f"{locator.get_cache_path()} is writable")
    return Check(
        "warning",
        "numba cache",
        "no writable cache directory: the kernels are compiled again at every start (seconds of CPU)",
        "set NUMBA_CACHE_DIR to a writable directory",
    )
