"""What a replay plays: recorded events in chunks, the record geometry, and the slow-control series if any.

Sources: our HDF5 run files (simulators.replay_runfile, also followed while being written) and CAEN
WaveDump output (simulators.replay_wavedump). `open_replay_source(path)` picks the right one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

TRIGGER_ID_MODULO = 1 << 24  # the DT5751's event counter


class ReplayError(ValueError):
    """A replay source cannot be opened or played on; the message names the file and what to do."""


@dataclass(frozen=True)
class ReplayGeometry:
    """How the recorded events were taken: what the replayed DT5751 must be configured for.

    channels: the board channel of each recorded row. dc_offset_pct: per recorded channel (None where
    the source does not say). crystal_channel: the channel the online analysis treats as the crystal.
    """

    record_length_samples: int
    post_trigger_samples: int
    channels: tuple[int, ...]
    polarity: Literal["negative", "positive"]
    dc_offset_pct: dict[int, float | None]
    crystal_channel: int
    description: str
    has_time_tags: bool = True  # False: WaveDump files without headers (every time is 0)


@dataclass
class ReplayChunk:
    """Consecutive recorded events: waveforms (n, channels, samples) int16, board times and event counters."""

    waveforms: NDArray[np.int16]
    timestamp_ns: NDArray[np.uint64]
    trigger_id: NDArray[np.uint32]

    def __len__(self) -> int:
        return int(self.waveforms.shape[0])


@dataclass
class SlowSeries:
    """Slow-control readings recorded with a run (rows of the run file's /slow datasets).

    started_at_unix_s: when the run's board time was 0 (the file's started_at), to align the series
    with the events' timestamps. live: a run still being written, with slow control; it replaces the
    arrays with longer ones as rows come (they may be empty at first).
    """

    started_at_unix_s: float
    temperature: NDArray[np.void] = field(default_factory=lambda: np.zeros(0))
    hv: NDArray[np.void] = field(default_factory=lambda: np.zeros(0))
    live: bool = False

    @property
    def empty(self) -> bool:
        return len(self.temperature) == 0 and len(self.hv) == 0


class SourceNotes:
    """What a source found while reading (a truncated event, missing events, a run that ended badly).

    Each message is logged; listen() hands the ones so far, and every later one, to a listener (the run's /log).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []
        self._listener: Callable[[str], None] | None = None

    def add(self, message: str) -> None:
        text = f"replay of {self.path}: {message}"
        log.warning("%s", text)
        self.messages.append(text)
        if self._listener is not None:
            self._listener(text)

    def listen(self, listener: Callable[[str], None]) -> None:
        self._listener = listener
        for text in self.messages:
            listener(text)


class ReplaySource(Protocol):
    """A recorded run to play through the simulated DT5751."""

    path: Path
    geometry: ReplayGeometry
    slow: SlowSeries | None
    notes: SourceNotes

    def read(self, max_events: int) -> ReplayChunk | None:
        """Up to max_events next events; an empty chunk if none yet (a run still written); None at the end."""
        ...

    def close(self) -> None: ...


def open_replay_source(
    path: str | Path,
    follow: bool | None = None,
    record_length: int | None = None,
    header: bool | None = None,
) -> ReplaySource:
    """Open `path` as a run file (HDF5) or as WaveDump output (folder, wave*.dat, wave*.txt).

    follow: for a run file, keep reading while it is written (None: if it has no end record and was
    modified recently). record_length / header: for WaveDump files without headers (None: from
    WaveDumpConfig.txt). Raises ReplayError for anything that is neither.
    """
    p = Path(path)
    if not p.exists():
        raise ReplayError(f"{p}: no such file or folder to replay (a run_NNNNNN.h5 or a WaveDump run folder)")
    if p.is_file() and _has_hdf5_signature(p):
        from simulators.replay_runfile import RunFileSource

        return RunFileSource(p, follow=follow)
    from analysis.wavedump_data import is_wavedump

    if is_wavedump(p):
        from simulators.replay_wavedump import WaveDumpSource

        return WaveDumpSource(p, record_length, header)
    what = ""
    if p.is_file():
        from analysis.run_file_open import UnreadableRunFile, check_file

        try:
            check_file(p)
        except UnreadableRunFile as exc:  # what the file is instead: empty, an image, text ...
            what = f" ({str(exc).removeprefix(f'{p}: ')})"
    raise ReplayError(
        f"{p}: neither an HDF5 run file nor WaveDump output{what} (a run_NNNNNN.h5, or a folder with "
        f"WaveDumpConfig.txt or wave<N>.dat / wave<N>.txt files); nothing to replay"
    )


def _has_hdf5_signature(path: Path) -> bool:
    """The file starts with HDF5's signature: read here, without asking the library to open it (the run-file
    reader checks it first and says what is wrong with a truncated or damaged one)."""
    from analysis.run_file_open import HDF5_SIGNATURE

    with path.open("rb") as f:
        return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
