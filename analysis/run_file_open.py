"""Open an HDF5 run file for reading without hanging, or say in one line why it cannot be read.

A plain read-only open comes first. SWMR is used only when HDF5 says the file is open for writing (a run
being recorded, or one killed mid-run), and then with a bounded number of metadata read attempts: HDF5's
default of 100 attempts, each retried with growing pauses, made a damaged file hang a reader for minutes
without reacting to Ctrl-C. Before HDF5 sees the file, its size is checked against the end-of-file
address in the superblock, so a truncated file is reported at once. A file of a format newer than
this program knows (analysis.run_schema) is refused in one line.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the bitshuffle/LZ4 filter for reading
from h5py import h5f, h5p

from analysis.run_schema import NewerFormatError, check_format_version

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SWMR_READ_ATTEMPTS = 20  # HDF5's default for SWMR readers is 100, with pauses between them
LIVE_RECHECK_S = 1.0  # a file written right now may be briefly shorter than its superblock says
_OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_WRITE_ACCESS_FLAGS = 0x01 | 0x04  # superblock v2/3: open for writing, open for SWMR writing


class UnreadableRunFile(OSError):
    """The file cannot be read as a run file; the message (one line) names it, says what is wrong and what to do."""


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line (HDF5's messages carry line breaks)."""
    return " ".join(str(exc).split())


def check_file(path: Path) -> None:
    """Raise UnreadableRunFile if `path` is missing, empty, not HDF5, or shorter than its superblock says."""
    if not path.exists():
        raise UnreadableRunFile(f"{path}: no such run file")
    if path.is_dir():
        raise UnreadableRunFile(f"{path}: a folder, not a run file (give run_NNNNNN.h5 files)")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableRunFile(
            f"{path}: empty file (0 bytes): not a run file; the program that created it wrote nothing"
        )
    superblock = _read_superblock(path, size)
    if superblock is None:
        raise UnreadableRunFile(f"{path}: cannot be opened as an HDF5 run file ({_what_it_is(path)})")
    stored_eof, flags = superblock
    deadline = time.monotonic() + LIVE_RECHECK_S
    while stored_eof > size and flags & _WRITE_ACCESS_FLAGS and time.monotonic() < deadline:
        time.sleep(0.1)  # a writer may be between allocating and writing: look again briefly
        size = path.stat().st_size
        stored_eof, flags = _read_superblock(path, size) or (stored_eof, flags)
    if stored_eof > size:
        raise UnreadableRunFile(
            f"{path}: file is truncated (expected {stored_eof} bytes, found {size}): the run was killed while "
            f"writing, the disk filled up, or the copy is incomplete; copy it again from the original"
        )


def open_for_reading(path: str | Path) -> h5py.File:
    """Open `path` read-only: plainly if it is closed, with bounded SWMR reads if it is being written.

    Raises UnreadableRunFile (one line naming the file) for a missing, empty, foreign, truncated or
    damaged file, or one of a format newer than this program reads.
    """
    p = Path(path)
    check_file(p)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        if "already open for write" not in str(exc):
            raise UnreadableRunFile(f"{p}: damaged HDF5 file, cannot be opened ({one_line(exc)})") from None
        try:  # being written, or killed while written: its consistency flags are still set
            f = _open_swmr(p)
        except (OSError, RuntimeError) as exc:
            raise UnreadableRunFile(
                f"{p}: the file is marked as being written and cannot be opened ({one_line(exc)}); if no run "
                f"is writing it, it is damaged"
            ) from None
    try:
        len(f)  # the root group is read lazily: a damaged one shows here, not in the first lookup
    except (OSError, RuntimeError, KeyError) as exc:
        f.close()
        raise UnreadableRunFile(
            f"{p}: damaged HDF5 file, its root group cannot be read ({one_line(exc)})"
        ) from None
    try:
        check_format_version(f, p)
    except NewerFormatError as exc:
        f.close()
        raise UnreadableRunFile(str(exc)) from None
    return f


def _open_swmr(path: Path) -> h5py.File:
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    fapl.set_fclose_degree(h5f.CLOSE_STRONG)
    _limit_read_attempts(fapl)
    fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY | h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _limit_read_attempts(fapl: h5p.PropFAID) -> None:
    """Set H5Pset_metadata_read_attempts on `fapl` (h5py has no call for it): through h5py's own libhdf5."""
    setter = _read_attempts_setter()
    if setter is None or setter(fapl.id, SWMR_READ_ATTEMPTS) < 0:
        log.debug("HDF5's metadata read attempts could not be limited; SWMR reads keep HDF5's default")


def _read_attempts_setter() -> Callable[[int, int], int] | None:
    libs = Path(h5py.__file__).resolve().parent.parent / "h5py.libs"
    candidates = sorted(libs.glob("libhdf5-*.so*")) if libs.is_dir() else []
    try:
        lib = ctypes.CDLL(str(candidates[0])) if candidates else ctypes.CDLL(None)  # wheel, or linked in
        setter = lib.H5Pset_metadata_read_attempts
    except (OSError, AttributeError):
        return None
    setter.argtypes = [ctypes.c_int64, ctypes.c_uint]
    setter.restype = ctypes.c_int
    return setter


def _read_superblock(path: Path, size: int) -> tuple[int, int] | None:
    """(stored end of file less the base address, as HDF5 compares it with the size; consistency flags).

    None if the file has no HDF5 signature (at 0, 512, 1024, ... bytes).
    """
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            head = f.read(96)
            if head.startswith(HDF5_SIGNATURE):
                return _superblock_fields(head, offset)
            offset = 512 if offset == 0 else offset * 2
    return None


def _superblock_fields(head: bytes, offset: int) -> tuple[int, int]:
    version = head[8]
    if version >= 2:  # v2/v3: sizes at 9-10, flags at 11, then base, extension, EOF addresses
        n = head[9]
        base, eof = _address(head, 12, n), _address(head, 12 + 2 * n, n)
        return eof - base, head[11]
    n = head[13]  # v0/v1: sizes at 13-14, flags at 20-23, (v1: 4 more bytes), then base, free space, EOF
    start = 24 if version == 0 else 28
    base, eof = _address(head, start, n), _address(head, start + 2 * n, n)
    return eof - base, struct.unpack_from("<I", head, 20)[0]


def _address(head: bytes, at: int, n: int) -> int:
    return int.from_bytes(head[at : at + n], "little") if len(head) >= at + n else 0


def _what_it_is(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(512)
    for signature, kind in _OTHER_FORMATS:
        if head.startswith(signature):
            return f"it is {kind}"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "no HDF5 signature: unknown or damaged binary data"
    return "no HDF5 signature: it is text"
