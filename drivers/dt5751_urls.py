"""Open a DT5751's FELib root node from its URL: `dig1://` built in, other schemes registered by the caller.

Drivers never import simulators: the program registers the simulator's opener for `sim://` (daq/
digitizer_urls.py), and tests may register it in a fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.dt5751_errors import DigitizerError, FelibNotAvailableError
from drivers.felib_types import ErrorCode, FelibError, FelibNode

SIM_HINT = (
    "To run without the board, use the simulator: set digitizer.url to 'sim://dt5751' (config/run.yaml)."
)


@dataclass(frozen=True)
class UrlOpener:
    """How to open one URL scheme: open(url, **options) -> root node; the exception types its calls raise."""

    open: Callable[..., FelibNode]
    error_types: tuple[type[BaseException], ...]
    description: str


_OPENERS: dict[str, UrlOpener] = {}
_LOCK = threading.Lock()


def register_url_scheme(
    scheme: str,
    opener: Callable[..., FelibNode],
    error_types: tuple[type[BaseException], ...] = (FelibError,),
    description: str = "",
) -> None:
    """Make `scheme://` URLs open through `opener(url, **options)` (e.g. sim:// for the simulator).

    scheme: lower-case letters, not `dig1` (the real board is built in). Registering again replaces it.
    """
    key = scheme.lower()
    if key == "dig1":
        raise ValueError("dig1:// is the real board's scheme and cannot be replaced")
    with _LOCK:
        _OPENERS[key] = UrlOpener(opener, error_types, description or f"{key}://")


def unregister_url_scheme(scheme: str) -> None:
    """Forget the opener of `scheme://` (nothing happens if there is none)."""
    with _LOCK:
        _OPENERS.pop(scheme.lower(), None)


def registered_schemes() -> tuple[str, ...]:
    """The URL schemes that open a DT5751: dig1 and the registered ones."""
    with _LOCK:
        return ("dig1", *sorted(_OPENERS))


def _open_real_board(url: str) -> tuple[FelibNode, tuple[type[BaseException], ...]]:
    try:
        from caen_felib import device, error  # imported only when a real board is opened
    except ImportError as exc:
        raise FelibNotAvailableError(
            f"Cannot open the DT5751 at {url}: the Python package caen-felib is not installed ({exc}). "
            f"Install it with `pip install caen-felib==1.4.0` and CAEN's FELib and Dig1 libraries. {SIM_HINT}"
        ) from exc
    except (RuntimeError, OSError) as exc:
        cause = exc.__cause__ or exc  # caen_felib wraps the loader's OSError, which names the file
        raise FelibNotAvailableError(
            f"Cannot open the DT5751 at {url}: the native library libCAEN_FELib.so (CAEN FELib) was not found "
            f"({cause}). Install CAEN FELib, CAEN Dig1, CAENDigitizer and CAENComm from caen.it. {SIM_HINT}"
        ) from exc
    try:
        root = device.connect(url)
    except error.Error as exc:
        code = ErrorCode(int(exc.code))
        if code is ErrorCode.DEVICE_LIBRARY_NOT_AVAILABLE:
            raise FelibNotAvailableError(
                f"Cannot open the DT5751 at {url}: CAEN FELib cannot load libCAEN_Dig1.so "
                f"(the Dig1 library for x751 boards): {exc}. Install CAEN Dig1. {SIM_HINT}",
                code,
            ) from exc
        raise DigitizerError(
            f"Cannot open the DT5751 at {url}: {code.name} ({exc}). Check the URL (link_num, conet_node), "
            f"that the board is powered and its USB/optical cable connected, and that no other program "
            f"(WaveDump, CoMPASS) holds it.",
            code,
        ) from exc
    return root, (error.Error, FelibError)


def connect_node(url: str, **options: Any) -> tuple[FelibNode, tuple[type[BaseException], ...]]:
    """Open the root node for `url` and return it with the exception types its calls raise.

    url: `dig1://caen.internal/usb?link_num=0` (real board) or a registered scheme (`sim://dt5751?seed=1`).
    options: keyword options of the registered opener (the simulator's physics, clock); not for dig1://.
    Raises FelibNotAvailableError without CAEN's libraries, DigitizerError for anything else.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "dig1":
        if options:
            raise ValueError(f"options {sorted(options)} given for the real board at {url}")
        return _open_real_board(url)
    with _LOCK:
        opener = _OPENERS.get(scheme)
    if opener is None:
        hint = (
            " No opener is registered for sim://: the program registers the simulator in daq "
            "(daq.digitizer_urls.register_simulated_dt5751()); call it first."
            if scheme == "sim"
            else ""
        )
        raise DigitizerError(
            f"Unsupported DT5751 URL {url!r}: use dig1://caen.internal/usb?link_num=0 (USB), "
            f"dig1://caen.internal/optical_link?link_num=0&conet_node=0 (optical) or sim://dt5751 (simulator)."
            f"{hint}"
        )
    try:
        return opener.open(url, **options), opener.error_types
    except opener.error_types as exc:
        code = getattr(exc, "code", None)
        raise DigitizerError(
            f"Cannot open the {opener.description} DT5751 at {url}: {exc}",
            ErrorCode(int(code)) if code is not None else None,
        ) from exc
