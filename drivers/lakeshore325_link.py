"""The wire to a Lake Shore 325: opening the VISA resource, spacing messages, keeping the reply stream in step.

The 325 answers only queries, one line each, in order, and stays silent on errors. A reply that
comes after the timeout (or the tail of a split one) would otherwise be read as the answer to the
next query, and every later answer would be one question behind. So: the input is flushed before
each query; after a timeout or a reply that does not fit its query the link is marked stale, and
the next exchange first resynchronises: it sends *IDN? and discards every line before the reply
that has *IDN?'s shape (the 325 is half duplex and answers in order, so all of them are stale).
Messages are spaced by the manual's 50 ms counted from the last character on the wire.
"""

from __future__ import annotations

import ctypes
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from drivers.lakeshore325_errors import (
    LakeShoreBackendError,
    LakeShoreError,
    LakeShoreProtocolError,
    LakeShoreTimeoutError,
)
from drivers.lakeshore325_params import IDN_SHAPE, ReplyShapeError

T = TypeVar("T")
MIN_INTERVAL_S = 0.05  # manual 6.2: 50 ms after the last character, at most 20 messages per second
RESYNC_MAX_STALE_LINES = 8
RESYNC_TIMEOUTS = 3  # timeouts a resync waits for *IDN?'s reply behind a late one
BAUD_RATES = (9600, 19200, 38400, 57600)  # Model 325 manual, table 6-6
_TERMINATORS = ("\r\n", "\n", "\r")
_GPIB_LIBRARIES = ("libgpib.so.0", "gpib-32.so", "gpib-32.dll")


@dataclass(frozen=True)
class LineSettings:
    """Serial line settings; the 325's are fixed at 7 data bits, odd parity, 1 stop bit, CR LF (table 6-6).

    baud_rate: 9600, 19200, 38400 or 57600 (front panel). Raises ValueError on anything else.
    """

    baud_rate: int = 9600
    data_bits: int = 7
    parity: str = "odd"
    stop_bits: int = 1
    read_termination: str = "\r\n"
    write_termination: str = "\r\n"

    def __post_init__(self) -> None:
        if self.baud_rate not in BAUD_RATES:
            rates = ", ".join(map(str, BAUD_RATES))
            raise ValueError(
                f"Lake Shore 325 baud rate must be one of {rates} (front panel), not {self.baud_rate}"
            )
        if self.data_bits not in (7, 8):
            raise ValueError(f"Lake Shore 325 data bits must be 7 (the 325's) or 8, not {self.data_bits}")
        if self.parity not in ("odd", "even", "none"):
            raise ValueError(
                f"Lake Shore 325 parity must be odd (the 325's), even or none, not {self.parity!r}"
            )
        if self.stop_bits not in (1, 2):
            raise ValueError(f"Lake Shore 325 stop bits must be 1 (the 325's) or 2, not {self.stop_bits}")
        for name in ("read_termination", "write_termination"):
            if getattr(self, name) not in _TERMINATORS:
                raise ValueError(
                    f"Lake Shore 325 {name} must be CR LF (the 325's), LF or CR, not {getattr(self, name)!r}"
                )

    @property
    def bits_per_char(self) -> int:
        """Start, data, parity and stop bits of one character: 10 for 7O1."""
        return 1 + self.data_bits + (self.parity != "none") + self.stop_bits

    def wire_time_s(self, n_chars: int) -> float:
        """Time `n_chars` characters take on the line, s (1.04 ms each at 7O1 9600 baud)."""
        return n_chars * self.bits_per_char / self.baud_rate


def check_gpib_backend(resource: str, libraries: tuple[str, ...] = _GPIB_LIBRARIES) -> None:
    """Raise LakeShoreBackendError naming what to install unless pyvisa-py can open GPIB resources here."""
    python_side = any(importlib.util.find_spec(m) is not None for m in ("gpib_ctypes", "gpib"))
    for name in libraries:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        if python_side:
            return
        break
    else:
        raise LakeShoreBackendError(
            f"Lake Shore 325: {resource} is a GPIB resource, but no GPIB library ({', '.join(libraries[:2])}) "
            f"is installed. Install linux-gpib (its kernel module and libgpib, https://linux-gpib.sourceforge.io) "
            f"and load the adapter's driver, or connect the 325's RS-232 port (ASRL/dev/ttyUSB0::INSTR).",
            resource,
        )
    raise LakeShoreBackendError(
        f"Lake Shore 325: {resource} is a GPIB resource and libgpib is installed, but neither gpib-ctypes nor "
        f"linux-gpib's Python binding is: pip install -e '.[hardware]' (it brings gpib-ctypes).",
        resource,
    )


def open_resource(resource: str, timeout_s: float, line: LineSettings | None = None) -> Any:
    """Open a VISA resource with pyvisa-py, set up for the 325 (line settings on ASRL resources; terminators)."""
    import pyvisa
    from pyvisa import constants

    line = line or LineSettings()
    if resource.upper().startswith("GPIB"):
        check_gpib_backend(resource)
    try:
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(resource)
    except Exception as exc:  # noqa: BLE001 - pyvisa raises several kinds; all mean "cannot open"
        raise LakeShoreError(
            f"Lake Shore 325: cannot open {resource}: {exc}. Check cryostat.resource in the configuration "
            f"(ASRL/dev/ttyUSB0::INSTR, GPIB0::12::INSTR) or run the simulator (daq sim lakeshore325).",
            resource,
        ) from exc
    inst.timeout = int(timeout_s * 1000)
    inst.read_termination = line.read_termination
    inst.write_termination = line.write_termination
    if resource.upper().startswith("ASRL"):
        inst.baud_rate = line.baud_rate
        inst.data_bits = line.data_bits
        inst.parity = {
            "odd": constants.Parity.odd,
            "even": constants.Parity.even,
            "none": constants.Parity.none,
        }[line.parity]
        inst.stop_bits = constants.StopBits.one if line.stop_bits == 1 else constants.StopBits.two
    return inst


def _is_timeout(exc: BaseException) -> bool:
    from pyvisa import constants, errors

    return isinstance(exc, errors.VisaIOError) and exc.error_code == constants.StatusCode.error_timeout


class Link:
    """One connection to a 325: spaced messages, flushed input, replies checked and the stream kept in step."""

    def __init__(
        self,
        inst: Any,
        resource: str,
        timeout_s: float,
        line: LineSettings,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inst = inst
        self.resource = resource
        self.timeout_s = timeout_s
        self.line = line
        self.min_interval_s = min_interval_s
        self._serial = resource.upper().startswith("ASRL")
        self._clock, self._sleep = clock, sleep
        self._free_at = 0.0  # when the next message may start
        self.stale = True  # resynchronise before the first exchange: a previous session may have left a reply
        self.timeouts = 0
        self.protocol_errors = 0
        self.resyncs = 0
        self.stale_lines = 0  # lines discarded while resynchronising

    # ---- timing ----

    def _space(self) -> None:
        wait = self._free_at - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _sent(self, message: str) -> None:
        """Note a write: the line is busy until its last character is out, then 50 ms more."""
        on_wire = (
            self.line.wire_time_s(len(message) + len(self.line.write_termination)) if self._serial else 0.0
        )
        self._free_at = self._clock() + on_wire + self.min_interval_s

    def _received(self) -> None:
        self._free_at = self._clock() + self.min_interval_s  # the reply's last character has arrived

    # ---- input ----

    def _discard_input(self) -> None:
        from pyvisa import constants

        try:
            self.inst.flush(constants.BufferOperation.discard_read_buffer)
        except Exception:  # noqa: BLE001 - not every backend flushes (GPIB); the resync still keeps us in step
            pass

    def _read(self, message: str) -> str:
        try:
            return str(self.inst.read())
        except Exception as exc:  # noqa: BLE001 - VisaIOError on timeout, OSError on a lost socket
            self.stale = True
            if _is_timeout(exc):
                self.timeouts += 1
                raise LakeShoreTimeoutError(
                    f"Lake Shore 325 ({self.resource}) did not answer {message!r} within {self.timeout_s:g} s. "
                    f"It stays silent on a bad query; otherwise check the address, cable and baud rate.",
                    message,
                ) from exc
            raise LakeShoreError(f"Lake Shore 325 ({self.resource}): reading the reply to {message!r} failed: "
                                 f"{exc}. Check the cable or connection.", message) from exc  # fmt: skip
        finally:
            self._received()

    def write(self, message: str) -> None:
        """Send one message (a command: the 325 never replies to it)."""
        if self.stale:
            self.resync()
        self._space()
        try:
            self.inst.write(message)
        except Exception as exc:  # noqa: BLE001
            raise LakeShoreError(f"Lake Shore 325 ({self.resource}): sending {message!r} failed: {exc}. "
                                 f"Check the cable or connection.", message) from exc  # fmt: skip
        self._sent(message)

    def ask(self, message: str, check: Callable[[str], T]) -> T:
        """Send a query and return check(reply); a reply check() refuses raises LakeShoreProtocolError.

        check raises ReplyShapeError when the line does not fit the query. Either error, or a
        timeout, leaves the link stale: the next exchange resynchronises first.
        """
        if self.stale:
            self.resync()
        self._discard_input()
        self.write(message)
        reply = self._read(message).strip()
        try:
            return check(reply)
        except ReplyShapeError as exc:
            self.stale = True
            self.protocol_errors += 1
            raise LakeShoreProtocolError(
                f"Lake Shore 325 ({self.resource}) answered {message!r} with {reply!r}: {exc}. The reply was not "
                f"used; the stream is resynchronised before the next message.",
                message,
                reply,
            ) from exc

    def resync(self) -> None:
        """Bring the reply stream back in step: *IDN?, then drop every line before *IDN?'s reply."""
        self.resyncs += 1
        self.stale = False  # write() below must not recurse
        self._discard_input()
        self.write("*IDN?")
        waits = stale = 0
        line = ""
        while stale < RESYNC_MAX_STALE_LINES:
            try:
                line = self._read("*IDN?").strip()
            except LakeShoreTimeoutError as exc:
                waits += 1  # a late reply ahead of ours holds the 325 up: wait a few timeouts for it
                if waits < RESYNC_TIMEOUTS:
                    continue
                raise LakeShoreTimeoutError(
                    f"Lake Shore 325 ({self.resource}) did not answer *IDN? within {waits * self.timeout_s:g} s "
                    f"while resynchronising after a late, missing or garbled reply. Check the cable, the power "
                    f"and the baud rate.",
                    "*IDN?",
                ) from exc
            if IDN_SHAPE.match(line):
                self.stale = False
                return
            stale += 1
            self.stale_lines += 1
        self.stale = True
        raise LakeShoreProtocolError(
            f"Lake Shore 325 ({self.resource}): {RESYNC_MAX_STALE_LINES} lines without an *IDN? reply while "
            f"resynchronising; the last was {line!r}. Check that the resource is a Lake Shore 325 and the "
            f"line settings (7O1, CR LF).",
            "*IDN?",
            line,
        )

    def close(self) -> None:
        self.inst.close()
