"""Reader for CAEN WaveDump 3.x runs: WaveDumpConfig.txt and the per-channel waveN.dat / waveN.txt files.

File formats: shared/docs/DIGITIZER.md section 3. Samples per event always come from each event's own header
(word 0 of the binary header, `Record Length:` in ASCII), never from RECORD_LENGTH, which the board rounds.
A file that ends inside an event is read up to its last complete event and the cut event is reported
(TruncatedEvent), never padded. Events may change size inside a file: chunks then split where they do.

Trigger time tag: CAEN's standard firmware stores a 31-bit counter with bit 31 as roll-over flag; the x751 tick
is 8 ns. DIGITIZER.md marks both [U], so they are parameters (ttt_bits=31, ttt_tick_ns=8). Rollovers are undone
by counting decreases, so a gap longer than one period (2^31 x 8 ns = 17.2 s) between two events goes unseen.
The board's event counter is 24 bits wide and is unwrapped the same way.

Pulse polarity: when the configuration has neither PULSE_POLARITY nor the legacy TRIGGER_EDGE (RISING = positive,
FALLING = negative), the default is "positive", WaveDump's own default (SetDefaultConfiguration in WDconfig.c),
which the real DT5751 SiPM run (positive pulses, no polarity key) confirms. Values use the lower-case literals of
drivers.dt5751_settings ("negative", "positive").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from itertools import islice
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from drivers.event_batch import EventBatch

log = logging.getLogger(__name__)

Polarity = Literal["negative", "positive"]
CONFIG_FILE_NAME = "WaveDumpConfig.txt"
HEADER_BYTES = 24  # 6 x uint32: size, board id, pattern, channel, event counter, trigger time tag
TTT_BITS_X751 = 31
TTT_TICK_NS_X751 = 8
EVENT_COUNTER_BITS = 24
_MAX_CHANNELS = 64  # a header whose channel word is beyond this is not a header
_ASCII_LABELS = ("Record Length", "BoardID", "Channel", "Event Number", "Pattern", "Trigger Time Stamp")
_ASCII_HEADER_LINES = 7  # the six above and "DC offset (DAC)"
_WAVE_FILE = re.compile(r"wave_?(\d+)\.(dat|txt)", re.IGNORECASE)
_COMMENT = re.compile(r"(^|\s)#.*$")
_SECTION = re.compile(r"\[\s*([A-Za-z0-9_ ]*?)\s*\]")
_KEY_VALUE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s+(\S.*)")
T = TypeVar("T")


class WaveDumpError(ValueError):
    """A WaveDump file or configuration that cannot be read as it is; the message names the file."""


# ---------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class WaveDumpConfig:
    """A parsed WaveDumpConfig.txt. Per-channel maps cover channels 0..n-1 (n_channels, or more if sections say so).

    sections: every key as written (upper-cased), by section ("COMMON", "0", "1", ...), known keys or not.
    record_length / post_trigger_pct: None when the file does not set them. output_format and header default to
    WaveDump's defaults (ASCII, no header). enabled_channels: all unless ENABLE_INPUT NO (WaveDump's default).
    baseline_level_pct (BASELINE_LEVEL or legacy BASELINE_SHIFT, 0-100), dc_offset_pct (legacy DC_OFFSET,
    -50..50) and trigger_threshold_adc hold only the channels where a value is set.
    polarity_explicit: a PULSE_POLARITY or TRIGGER_EDGE key was present; otherwise pulse_polarity is the default.
    """

    path: Path
    sections: Mapping[str, Mapping[str, str]]
    record_length: int | None
    post_trigger_pct: int | None
    output_format: Literal["BINARY", "ASCII"]
    header: bool
    enabled_channels: tuple[int, ...]
    pulse_polarity: Mapping[int, Polarity]
    polarity_explicit: bool
    baseline_level_pct: Mapping[int, float]
    dc_offset_pct: Mapping[int, float]
    trigger_threshold_adc: Mapping[int, int]
    write_registers: tuple[str, ...]
    default_polarity: Polarity = "positive"

    def value(self, key: str, channel: int | None = None) -> str | None:
        """Return the raw value of key for channel (its section first, then COMMON), None if unset."""
        own = self.sections.get(str(channel), {}) if channel is not None else {}
        return own.get(key.upper(), self.sections.get("COMMON", {}).get(key.upper()))

    def polarity(self, channel: int) -> Polarity:
        """Return the pulse polarity of any channel, including ones beyond the per-channel maps."""
        if channel in self.pulse_polarity:
            return self.pulse_polarity[channel]
        return _polarity_of(lambda key: self.value(key, channel), self.default_polarity)


def _polarity_of(get: Callable[[str], str | None], default: Polarity) -> Polarity:
    pulse, edge = get("PULSE_POLARITY"), get("TRIGGER_EDGE")
    if pulse is not None:
        return "positive" if pulse.upper() == "POSITIVE" else "negative"
    if edge is not None:
        return "positive" if edge.upper() == "RISING" else "negative"
    return default


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.upper() not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text.upper()

    return parse


def _number(kind: Callable[[str], T], lo: float, hi: float) -> Callable[[str], T]:
    def parse(text: str) -> T:
        value = kind(text)  # ValueError names the text
        if not lo <= value <= hi:  # type: ignore[operator]
            raise ValueError(f"expected {lo:g} to {hi:g}")
        return value

    return parse


_PARSERS: dict[str, Callable[[str], object]] = {
    "RECORD_LENGTH": _number(int, 1, 2**31),
    "POST_TRIGGER": _number(int, 0, 100),
    "OUTPUT_FILE_FORMAT": _choice("BINARY", "ASCII"),
    "OUTPUT_FILE_HEADER": _choice("YES", "NO"),
    "ENABLE_INPUT": _choice("YES", "NO"),
    "PULSE_POLARITY": _choice("POSITIVE", "NEGATIVE"),
    "TRIGGER_EDGE": _choice("RISING", "FALLING"),
    "BASELINE_LEVEL": _number(float, 0, 100),
    "BASELINE_SHIFT": _number(float, 0, 100),
    "DC_OFFSET": _number(float, -50, 50),
    "TRIGGER_THRESHOLD": _number(int, 0, 65535),
}


def parse_wavedump_config(
    path: str | Path, *, n_channels: int = 4, default_polarity: Polarity = "positive"
) -> WaveDumpConfig:
    """Parse a WaveDumpConfig.txt.

    n_channels: channels the per-channel maps cover at least (4 on the DT5751). default_polarity: used when no
    PULSE_POLARITY/TRIGGER_EDGE applies (WaveDump's own default is positive).
    Syntax: `#` comments, `KEY value` lines, [COMMON] then [0], [1] ... sections, lines between @OFF and @ON
    skipped, keys case-insensitive. As in WaveDump, a COMMON line replaces what earlier channel sections set.
    Raises WaveDumpError naming file and line for a malformed line or an invalid value of a known key.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise WaveDumpError(f"Cannot read the WaveDump configuration {path}: {exc}") from exc
    raw: dict[str, dict[str, tuple[str, int]]] = {"COMMON": {}}
    write_registers: list[str] = []
    section, skipping = "COMMON", False
    for line_no, text in enumerate(lines, 1):
        line = _COMMENT.sub("", text).strip()
        if line.upper() in ("@OFF", "@ON"):
            skipping = line.upper() == "@OFF"
            continue
        if skipping or not line:
            continue
        if line.startswith("["):
            match = _SECTION.fullmatch(line)
            if match is None or not match.group(1):
                raise _config_error(
                    path, line_no, f"malformed section header {line!r}; write [COMMON] or [<ch>]"
                )
            section = match.group(1).upper()
            raw.setdefault(section, {})
            continue
        match = _KEY_VALUE.fullmatch(line)
        if match is None:
            raise _config_error(path, line_no, f"expected 'KEY value', found {line!r}")
        key, value = match.group(1).upper(), " ".join(match.group(2).split())
        if key == "WRITE_REGISTER":
            write_registers.append(value)
            continue
        if key in _PARSERS:
            try:
                _PARSERS[key](value)
            except ValueError as exc:
                raise _config_error(path, line_no, f"{key} {value!r} is not valid ({exc})") from None
        if section == "COMMON":
            for entries in raw.values():
                entries.pop(key, None)
        raw[section][key] = (value, line_no)

    sections = {name: {k: v for k, (v, _) in entries.items()} for name, entries in raw.items()}
    channel_sections = [int(name) for name in sections if name.isdigit()]
    channels = range(max([n_channels, *(ch + 1 for ch in channel_sections)]))

    def get(key: str, ch: int | None = None) -> str | None:
        own = sections.get(str(ch), {}) if ch is not None else {}
        return own.get(key, sections["COMMON"].get(key))

    def per_channel(parse: Callable[[str], T], *keys: str) -> dict[int, T]:
        found: dict[int, T] = {}
        for ch in channels:
            text = next((v for v in (get(key, ch) for key in keys) if v is not None), None)
            if text is not None:
                found[ch] = parse(text)
        return found

    record_length, post_trigger = get("RECORD_LENGTH"), get("POST_TRIGGER")
    return WaveDumpConfig(
        path=path,
        sections=sections,
        record_length=int(record_length) if record_length is not None else None,
        post_trigger_pct=int(post_trigger) if post_trigger is not None else None,
        output_format="BINARY" if (get("OUTPUT_FILE_FORMAT") or "").upper() == "BINARY" else "ASCII",
        header=(get("OUTPUT_FILE_HEADER") or "NO").upper() == "YES",
        enabled_channels=tuple(ch for ch in channels if (get("ENABLE_INPUT", ch) or "YES").upper() == "YES"),
        pulse_polarity={
            ch: _polarity_of(lambda key, ch=ch: get(key, ch), default_polarity) for ch in channels
        },
        polarity_explicit=any(k in s for s in sections.values() for k in ("PULSE_POLARITY", "TRIGGER_EDGE")),
        baseline_level_pct=per_channel(float, "BASELINE_LEVEL", "BASELINE_SHIFT"),
        dc_offset_pct=per_channel(float, "DC_OFFSET"),
        trigger_threshold_adc=per_channel(int, "TRIGGER_THRESHOLD"),
        write_registers=tuple(write_registers),
        default_polarity=default_polarity,
    )


def _config_error(path: Path, line_no: int, what: str) -> WaveDumpError:
    return WaveDumpError(f"{path}, line {line_no}: {what}. Fix the line or put it between @OFF and @ON.")


# ---------------------------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class TruncatedEvent:
    """An event cut short at the end of a file: skipped, never padded.

    event_index: index of the cut event in its file (= number of complete events before it).
    present_bytes: bytes of it in the file; expected_bytes: its full size, None when unknown (cut header, ASCII).
    """

    path: Path
    event_index: int
    offset_bytes: int
    present_bytes: int
    expected_bytes: int | None
    message: str


@dataclass(frozen=True)
class _FileChunk:
    """Consecutive events of one channel file, all with the same number of samples."""

    samples: NDArray[np.uint16]  # (n, n_samples)
    counter: NDArray[np.uint64]  # event counter, rollovers undone
    ttt: NDArray[np.uint32]  # raw trigger time tag
    ticks: NDArray[np.uint64]  # trigger time tag, rollovers undone

    def __len__(self) -> int:
        return int(self.counter.size)

    def take(self, index: slice | NDArray[np.bool_]) -> _FileChunk:
        return _FileChunk(self.samples[index], self.counter[index], self.ttt[index], self.ticks[index])


class _Unwrap:
    """Undo the rollovers of a counter `bits` wide, across successive chunks: each decrease is one rollover."""

    def __init__(self, bits: int) -> None:
        self._modulus, self._last, self._offset = 1 << bits, -1, 0

    def __call__(self, raw: NDArray[np.uint32]) -> NDArray[np.uint64]:
        values = raw.astype(np.int64) & (self._modulus - 1)
        wraps = np.cumsum(values < np.concatenate(([self._last], values[:-1])))
        unwrapped = values + self._offset + wraps * self._modulus
        if values.size:
            self._last, self._offset = int(values[-1]), self._offset + int(wraps[-1]) * self._modulus
        return unwrapped.astype(np.uint64)


class _WaveFile:
    """One waveN.dat / waveN.txt, read in chunks; channel and board id come from its headers."""

    def __init__(
        self, path: Path, binary: bool, header: bool, record_length: int | None, ttt_bits: int
    ) -> None:
        self.path, self.binary, self.header, self.record_length = path, binary, header, record_length
        self.board_id: int | None = None
        self.channel: int | None = None if header else _channel_from_name(path)
        self.truncation: TruncatedEvent | None = None
        self._counter, self._ticks, self._last_counter = _Unwrap(EVENT_COUNTER_BITS), _Unwrap(ttt_bits), -1
        if not header and record_length is None:
            raise WaveDumpError(
                f"{path} has no event headers (OUTPUT_FILE_HEADER NO), so its events cannot be split without the "
                f"record length. Pass record_length=<samples per event> (the board may round RECORD_LENGTH: a "
                f"DT5751 asked for 400 wrote 406), or record with OUTPUT_FILE_HEADER YES."
            )

    def chunks(self, chunk_events: int) -> Iterator[_FileChunk]:
        if not self.header:
            read = self._binary_bare if self.binary else self._ascii_bare
        else:
            read = self._binary_headed if self.binary else self._ascii_headed
        for first, samples, counter, ttt in read(chunk_events):
            if not self.header:
                index = np.arange(first, first + len(samples), dtype=np.uint64)
                yield _FileChunk(samples, index, np.zeros(len(samples), np.uint32), np.zeros_like(index))
                continue
            unwrapped = self._counter(counter)
            previous = np.concatenate(([self._last_counter], unwrapped[:-1].astype(np.int64)))
            repeats = np.flatnonzero(unwrapped.astype(np.int64) == previous)
            if repeats.size:
                raise WaveDumpError(
                    f"{self.path}: event {first + int(repeats[0])} repeats event counter {int(counter[repeats[0]])}; "
                    f"the file mixes two runs or is damaged. Split it at that event."
                )
            self._last_counter = int(unwrapped[-1])
            yield _FileChunk(samples, unwrapped, ttt, self._ticks(ttt))

    def _identify(self, channel: int, board_id: int, where: str) -> None:
        if self.channel is None:
            self.channel, self.board_id = channel, board_id
        elif (channel, board_id) != (self.channel, self.board_id):
            raise WaveDumpError(
                f"{self.path}: {where} says channel {channel} of board {board_id}, but the file began with channel "
                f"{self.channel} of board {self.board_id}. WaveDump writes one channel per file: the file is damaged."
            )

    def _truncated(self, index: int, offset: int, present: int, expected: int | None, unit: str) -> None:
        of = f"{present} of {expected} bytes" if expected is not None else f"{present} bytes, {unit}"
        message = (
            f"{self.path}: event {index} (at byte {offset}) is cut short ({of}); it was skipped and the {index} "
            f"complete events before it were read. WaveDump probably stopped while writing it."
        )
        self.truncation = TruncatedEvent(self.path, index, offset, present, expected, message)
        log.warning(message)

    def _binary_headed(self, chunk_events: int) -> Iterator[tuple[int, NDArray, NDArray, NDArray]]:
        file_bytes, offset, index = self.path.stat().st_size, 0, 0
        with self.path.open("rb") as f:
            while offset < file_bytes:
                remaining = file_bytes - offset
                if remaining < HEADER_BYTES:
                    self._truncated(index, offset, remaining, None, "less than its 24-byte header")
                    break
                f.seek(offset)
                words = np.frombuffer(f.read(HEADER_BYTES), "<u4")
                size = self._checked_size(words, offset)
                if remaining < size:
                    self._truncated(index, offset, remaining, size, "")
                    break
                count = min(chunk_events, remaining // size)
                f.seek(offset)
                dtype = np.dtype([("head", "<u4", (6,)), ("samples", "<u2", ((size - HEADER_BYTES) // 2,))])
                events = np.frombuffer(f.read(count * size), dtype)
                changed = np.flatnonzero(events["head"][:, 0] != size)  # a size change ends the chunk there
                count = int(changed[0]) if changed.size else count
                head = events["head"][:count]
                self._identify(int(head[0, 3]), int(head[0, 1]), f"the header at byte {offset}")
                odd = np.flatnonzero((head[:, 3] != head[0, 3]) | (head[:, 1] != head[0, 1]))
                if odd.size:
                    where = f"the header at byte {offset + int(odd[0]) * size}"
                    self._identify(int(head[odd[0], 3]), int(head[odd[0], 1]), where)
                yield index, events["samples"][:count], head[:, 4], head[:, 5]
                offset, index = offset + count * size, index + count

    def _checked_size(self, words: NDArray[np.uint32], offset: int) -> int:
        size, channel = int(words[0]), int(words[3])
        problem = None
        if size <= HEADER_BYTES:
            problem = f"event size {size} bytes is not more than the 24-byte header"
        elif size % 2:
            problem = f"event size {size} bytes is odd, but samples are 2 bytes each"
        elif channel >= _MAX_CHANNELS:
            problem = f"channel word {channel} is not a channel number"
        if problem is not None:
            raise WaveDumpError(
                f"{self.path}: the event header at byte {offset} is invalid: {problem}. If the file was written "
                f"with OUTPUT_FILE_HEADER NO, pass header=False and record_length=<samples>; else it is damaged."
            )
        return size

    def _binary_bare(self, chunk_events: int) -> Iterator[tuple[int, NDArray, NDArray, NDArray]]:
        assert self.record_length is not None
        event_bytes = 2 * self.record_length
        file_bytes = self.path.stat().st_size
        n_events = file_bytes // event_bytes
        with self.path.open("rb") as f:
            for first in range(0, n_events, chunk_events):
                count = min(chunk_events, n_events - first)
                samples = np.frombuffer(f.read(count * event_bytes), "<u2").reshape(count, self.record_length)
                yield first, samples, np.empty(0), np.empty(0)
        if file_bytes % event_bytes:
            self._truncated(n_events, n_events * event_bytes, file_bytes % event_bytes, event_bytes, "")

    def _ascii_headed(self, chunk_events: int) -> Iterator[tuple[int, NDArray, NDArray, NDArray]]:
        file_bytes, line_no, index = self.path.stat().st_size, 0, 0
        waves: list[NDArray[np.uint16]] = []
        heads: list[tuple[int, int]] = []
        with self.path.open("rb") as f:
            while True:
                offset = f.tell()
                lines = list(islice(f, _ASCII_HEADER_LINES))
                if not any(line.strip() for line in lines):
                    break
                if len(lines) < _ASCII_HEADER_LINES or not lines[-1].endswith(b"\n"):
                    self._truncated(index, offset, file_bytes - offset, None, "its header is incomplete")
                    break
                n, board, channel, counter, _, ttt = (
                    self._header_value(line, label, line_no + k + 1)
                    for k, (line, label) in enumerate(zip(lines, _ASCII_LABELS, strict=False))
                )
                self._identify(channel, board, f"line {line_no + 3}")
                if n < 1:
                    raise WaveDumpError(
                        f"{self.path}, line {line_no + 1}: 'Record Length: {n}' announces no samples."
                    )
                data = list(islice(f, n))
                if len(data) < n or (n and not data[-1].endswith(b"\n")):
                    self._truncated(
                        index, offset, file_bytes - offset, None, f"{len(data)} of {n} sample lines"
                    )
                    break
                if waves and (len(waves) == chunk_events or waves[0].size != n):
                    yield index - len(waves), np.stack(waves), *np.array(heads, np.uint32).T
                    waves, heads = [], []
                waves.append(self._ascii_samples(data, line_no + _ASCII_HEADER_LINES + 1))
                heads.append((counter, ttt))
                line_no, index = line_no + _ASCII_HEADER_LINES + n, index + 1
        if waves:
            yield index - len(waves), np.stack(waves), *np.array(heads, np.uint32).T

    def _header_value(self, line: bytes, label: str, line_no: int) -> int:
        name, _, value = line.decode("latin-1").partition(":")
        try:
            if name.strip().lower() != label.lower():
                raise ValueError
            return int(value.strip(), 16 if label == "Pattern" else 10)
        except ValueError:
            raise WaveDumpError(
                f"{self.path}, line {line_no}: expected '{label}: <number>', found {line.strip()!r}. If the file has "
                f"no event headers (OUTPUT_FILE_HEADER NO), pass header=False and record_length=<samples>."
            ) from None

    def _ascii_samples(self, lines: list[bytes], first_line_no: int) -> NDArray[np.uint16]:
        tokens = b"".join(lines).split()
        try:
            if len(tokens) != len(lines):
                raise ValueError
            values = np.array(tokens).astype(np.int64)
            if values.size and (values.min() < 0 or values.max() > 65535):
                raise ValueError
        except ValueError:
            bad = next(
                (k for k, line in enumerate(lines) if not line.strip().isdigit() or int(line) > 65535), 0
            )
            raise WaveDumpError(
                f"{self.path}, line {first_line_no + bad}: expected one sample value 0-65535, found "
                f"{lines[bad].strip()!r}. The file is damaged or is not a WaveDump ASCII file."
            ) from None
        return values.astype(np.uint16)

    def _ascii_bare(self, chunk_events: int) -> Iterator[tuple[int, NDArray, NDArray, NDArray]]:
        assert self.record_length is not None
        n, file_bytes, index = self.record_length, self.path.stat().st_size, 0
        with self.path.open("rb") as f:
            while True:
                offset = f.tell()
                lines = list(islice(f, n * chunk_events))
                complete = (len(lines) - (1 if lines and not lines[-1].endswith(b"\n") else 0)) // n
                if complete:
                    samples = self._ascii_samples(lines[: complete * n], index * n + 1)
                    yield index, samples.reshape(complete, n), np.empty(0), np.empty(0)
                if complete * n < len(lines):
                    start = offset + sum(len(line) for line in lines[: complete * n])
                    rest = len(lines) - complete * n
                    self._truncated(
                        index + complete, start, file_bytes - start, None, f"{rest} of {n} sample lines"
                    )
                index += complete
                if len(lines) < n * chunk_events:
                    return


def _channel_from_name(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    if not digits:
        raise WaveDumpError(
            f"{path} has no event headers, so its channel must come from its name: name it waveN."
        )
    return int(digits[-1])


# -------------------------------------------------------------------------------------- a run of channels


@dataclass(frozen=True)
class WaveDumpData:
    """Events of a WaveDump run (or one chunk of it), the channel files merged by event counter.

    waveforms: (n, channels, samples) int16 raw ADC counts (0-1023 on the DT5751), converted from WaveDump's
    uint16 (values above 32767 raise). event_counter: board event counter, 24-bit rollovers undone (uint64).
    trigger_time_tag: raw header word (uint32). timestamp_ns: trigger time tag with rollovers undone x tick, ns
    since the acquisition start. Without headers: event_counter is the position in the file and both times are 0.
    truncations / missing_events: for a chunk, what was found while reading it; open_wavedump gathers all.
    missing_events[ch]: event counters seen in other channel files but not in this one (those events dropped).
    A chunk may hold zero events when it carries only reports.
    """

    waveforms: NDArray[np.int16]
    event_counter: NDArray[np.uint64]
    trigger_time_tag: NDArray[np.uint32]
    timestamp_ns: NDArray[np.uint64]
    channels: tuple[int, ...]
    board_id: int | None
    pulse_polarity: Mapping[int, Polarity]
    paths: tuple[Path, ...]
    config: WaveDumpConfig | None
    truncations: tuple[TruncatedEvent, ...] = ()
    missing_events: Mapping[int, NDArray[np.uint64]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.waveforms.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per record."""
        return int(self.waveforms.shape[2])

    def to_event_batch(self, previous_counter: int = -1) -> EventBatch:
        """Return the events as an EventBatch (trigger_id = event counter modulo 2^32).

        previous_counter: event counter of the event before this chunk (-1 at the start of the run); counter
        gaps since it are reported as lost_triggers, like the DT5751 driver does.
        """
        lost = int(self.event_counter[-1]) - previous_counter - len(self) if len(self) else 0
        return EventBatch(
            waveforms=self.waveforms,
            timestamp_ns=self.timestamp_ns,
            trigger_id=(self.event_counter & 0xFFFFFFFF).astype(np.uint32),
            channels=self.channels,
            lost_triggers=lost,
            event_size_bytes=np.full(
                len(self), len(self.channels) * (HEADER_BYTES + 2 * self.n_samples), np.uint64
            ),
        )


def iter_wavedump(
    path: str | Path,
    *,
    chunk_events: int = 4096,
    record_length: int | None = None,
    header: bool | None = None,
    ttt_bits: int = TTT_BITS_X751,
    ttt_tick_ns: int = TTT_TICK_NS_X751,
) -> Iterator[WaveDumpData]:
    """Yield a WaveDump run in chunks of at most chunk_events events (each chunk has one record length).

    path: a folder with wave*.dat or wave*.txt (and WaveDumpConfig.txt if present), or one such file.
    record_length: samples per event, needed only for files without headers; else RECORD_LENGTH from the config
    is used, with a warning. header: None = from the config (ASCII: from the file itself; binary without config:
    assumed). ttt_bits / ttt_tick_ns: trigger time tag width (1-32) and tick (ns), x751 defaults.
    Raises WaveDumpError (naming the file) on unreadable or inconsistent input, ValueError on bad arguments.
    """
    if chunk_events < 1 or not 1 <= ttt_bits <= 32 or ttt_tick_ns <= 0:
        raise ValueError(
            f"need chunk_events >= 1, ttt_bits 1-32, ttt_tick_ns > 0; got {chunk_events}, "
            f"{ttt_bits}, {ttt_tick_ns}"
        )
    config, files = _open_files(Path(path), record_length, header, ttt_bits)
    iters = [f.chunks(chunk_events) for f in files]
    pending: list[_FileChunk | None] = [None] * len(files)
    reported: set[Path] = set()
    order: list[int] | None = None
    while True:
        for i, it in enumerate(iters):
            while pending[i] is None or not len(pending[i]):  # type: ignore[arg-type]
                pending[i] = next(it, None)
                if pending[i] is None:  # this file is exhausted
                    break
        if order is None:
            order = _channel_order(files, config)
        truncations = tuple(f.truncation for f in files if f.truncation and f.path not in reported)
        reported.update(t.path for t in truncations)
        ready = [c for c in pending if c is not None]
        if not ready:
            if truncations:
                yield _build(files, order, [], {}, truncations, config, ttt_tick_ns)
            return
        # Events up to the smallest last counter are complete in every file; an exhausted file has none left.
        limit = min(int(c.counter[-1]) for c in ready) if len(ready) == len(files) else np.iinfo(np.int64).max
        taken: list[_FileChunk | None] = []
        for i, chunk in enumerate(pending):
            cut = int(np.searchsorted(chunk.counter, limit, side="right")) if chunk is not None else 0
            taken.append(chunk.take(slice(0, cut)) if chunk is not None else None)
            pending[i] = chunk.take(slice(cut, None)) if chunk is not None else None
        counters = [c.counter if c is not None else np.zeros(0, np.uint64) for c in taken]
        common = reduce(np.intersect1d, counters)
        seen = reduce(np.union1d, counters)
        missing = {int(files[i].channel or 0): np.setdiff1d(seen, c) for i, c in enumerate(counters)}
        missing = {ch: m for ch, m in missing.items() if m.size}
        for ch, m in missing.items():
            log.warning(
                "WaveDump channel %d lacks %d event(s) that other channels have (first: event counter %d); "
                "they are dropped.",
                ch,
                m.size,
                int(m[0]),
            )
        kept: list[_FileChunk] = []
        if common.size:  # then every file took events: keep those all of them have
            kept = [
                c if len(c) == common.size else c.take(np.isin(c.counter, common))
                for c in taken
                if c is not None
            ]
        if kept or missing or truncations:
            yield _build(files, order, kept, missing, truncations, config, ttt_tick_ns)


def _build(
    files: list[_WaveFile],
    order: list[int],
    chunks: list[_FileChunk],
    missing: dict[int, NDArray[np.uint64]],
    truncations: tuple[TruncatedEvent | None, ...],
    config: WaveDumpConfig | None,
    tick_ns: int,
) -> WaveDumpData:
    channels = tuple(files[i].channel or 0 for i in order)
    if chunks:
        chunks = [chunks[i] for i in order]
        lengths = {c.samples.shape[1] for c in chunks}
        if len(lengths) > 1:
            raise WaveDumpError(
                f"Channel files {[str(files[i].path) for i in order]} hold different numbers of "
                f"samples {sorted(lengths)} for the same events; they are not from one run."
            )
        first = chunks[0]
        for i, chunk in zip(order, chunks, strict=True):
            if not np.array_equal(chunk.ttt, first.ttt):
                raise WaveDumpError(
                    f"{files[i].path} and {files[order[0]].path} give different trigger time tags for the same event "
                    f"counters: the files are from different runs. Keep one run per folder."
                )
            if chunk.samples.size and int(chunk.samples.max()) > np.iinfo(np.int16).max:
                raise WaveDumpError(
                    f"{files[i].path}: sample values above 32767 do not fit the int16 waveforms "
                    f"of this program; this is not 10- or 14-bit digitizer data."
                )
        waveforms = np.empty((len(first), len(chunks), first.samples.shape[1]), np.int16)
        for j, chunk in enumerate(chunks):
            waveforms[:, j, :] = chunk.samples  # values checked above: the cast cannot wrap
        counter, ttt, ticks = first.counter, first.ttt, first.ticks
    else:
        waveforms = np.zeros((0, len(channels), 0), np.int16)
        counter, ttt, ticks = np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.uint64)
    return WaveDumpData(
        waveforms=waveforms,
        event_counter=counter,
        trigger_time_tag=ttt,
        timestamp_ns=ticks * np.uint64(tick_ns),
        channels=channels,
        board_id=files[order[0]].board_id,
        pulse_polarity={ch: config.polarity(ch) if config else "positive" for ch in channels},
        paths=tuple(files[i].path for i in order),
        config=config,
        truncations=tuple(t for t in truncations if t is not None),
        missing_events=missing,
    )


def _channel_order(files: list[_WaveFile], config: WaveDumpConfig | None) -> list[int]:
    for f in files:
        if f.channel is None:  # no complete event: take the channel from the name
            f.channel = _channel_from_name(f.path)
        if config is not None and f.channel not in config.enabled_channels:
            log.warning(
                "%s holds channel %d, which %s does not enable: is it the configuration of this run?",
                f.path,
                f.channel,
                config.path,
            )
    channels = [f.channel for f in files]
    if len(set(channels)) < len(channels):
        raise WaveDumpError(
            f"Files {[str(f.path) for f in files]} hold channels {channels}: a channel appears "
            f"twice. Keep one run per folder or open the files one by one."
        )
    boards = {f.board_id for f in files if f.board_id is not None}
    if len(boards) > 1:
        raise WaveDumpError(
            f"Files {[str(f.path) for f in files]} come from boards {sorted(boards)}; open the "
            f"files of each board separately."
        )
    return sorted(range(len(files)), key=lambda i: channels[i])


def _open_files(
    path: Path, record_length: int | None, header: bool | None, ttt_bits: int
) -> tuple[WaveDumpConfig | None, list[_WaveFile]]:
    if not path.exists():
        raise WaveDumpError(f"{path} does not exist: give a WaveDump run folder or one of its wave files.")
    folder = path if path.is_dir() else path.parent
    config_path = next((p for p in folder.iterdir() if p.name.lower() == CONFIG_FILE_NAME.lower()), None)
    config = parse_wavedump_config(config_path) if config_path else None
    if path.is_dir():
        found = sorted(
            (p for p in path.iterdir() if _WAVE_FILE.fullmatch(p.name)), key=lambda p: p.name.lower()
        )
        kinds = {p.suffix.lower() for p in found}
        if len(kinds) > 1:
            if config is None:
                raise WaveDumpError(
                    f"{path} holds both wave*.dat and wave*.txt and no {CONFIG_FILE_NAME} says "
                    f"which is the run: open one file, or remove the other kind."
                )
            kinds = {".dat" if config.output_format == "BINARY" else ".txt"}
            found = [p for p in found if p.suffix.lower() in kinds]
        if not found:
            raise WaveDumpError(
                f"{path} holds no wave<N>.dat or wave<N>.txt file: is it a WaveDump run folder?"
            )
        paths = found
    else:
        paths = [path]
    files = []
    for p in paths:
        suffix = p.suffix.lower()
        if suffix in (".dat", ".txt"):
            binary = suffix == ".dat"
        else:
            binary = config is None or config.output_format == "BINARY"
        has_header = header
        if has_header is None and not binary:
            with p.open("rb") as f:
                has_header = f.readline().lower().startswith(b"record length")
        if has_header is None:
            has_header = config.header if config is not None else True
        length = record_length
        if not has_header and length is None and config is not None and config.record_length is not None:
            length = config.record_length
            log.warning(
                "%s has no event headers: splitting it with RECORD_LENGTH %d from %s. The board may round "
                "it (a DT5751 asked for 400 wrote 406): if the waveforms look shifted, pass record_length.",
                p,
                length,
                config.path,
            )
        files.append(_WaveFile(p, binary, has_header, length, ttt_bits))
    if config is not None and not config.polarity_explicit:
        log.info("%s sets no PULSE_POLARITY: WaveDump programs positive then.", config.path)
    return config, files


def open_wavedump(
    path: str | Path,
    *,
    record_length: int | None = None,
    header: bool | None = None,
    ttt_bits: int = TTT_BITS_X751,
    ttt_tick_ns: int = TTT_TICK_NS_X751,
) -> WaveDumpData:
    """Read a whole WaveDump run (folder or one file) into memory; arguments as for iter_wavedump.

    Raises WaveDumpError also when the record length changes inside the run (read it with iter_wavedump).
    """
    chunks = list(
        iter_wavedump(
            path,
            chunk_events=4096,
            record_length=record_length,
            header=header,
            ttt_bits=ttt_bits,
            ttt_tick_ns=ttt_tick_ns,
        )
    )
    if not chunks:
        raise WaveDumpError(f"{path} holds no complete event.")
    full = [c for c in chunks if len(c)]
    lengths = sorted({c.n_samples for c in full})
    if len(lengths) > 1:
        raise WaveDumpError(
            f"{path}: the record length changes during the run ({lengths} samples); read it with "
            f"iter_wavedump, whose chunks each have one record length."
        )
    missing: dict[int, list[NDArray[np.uint64]]] = {}
    for chunk in chunks:
        for ch, m in chunk.missing_events.items():
            missing.setdefault(ch, []).append(m)
    parts = full or chunks[:1]
    return replace(
        chunks[0],
        waveforms=np.concatenate([c.waveforms for c in parts]),
        event_counter=np.concatenate([c.event_counter for c in parts]),
        trigger_time_tag=np.concatenate([c.trigger_time_tag for c in parts]),
        timestamp_ns=np.concatenate([c.timestamp_ns for c in parts]),
        truncations=tuple(t for c in chunks for t in c.truncations),
        missing_events={ch: np.concatenate(m) for ch, m in missing.items()},
    )


def iter_event_batches(
    path: str | Path,
    *,
    chunk_events: int = 1024,
    record_length: int | None = None,
    header: bool | None = None,
    ttt_bits: int = TTT_BITS_X751,
    ttt_tick_ns: int = TTT_TICK_NS_X751,
) -> Iterator[EventBatch]:
    """Yield a WaveDump run as EventBatch objects of at most chunk_events events; the last has end_of_run set.

    Arguments as for iter_wavedump. lost_triggers counts event-counter gaps, including events dropped because a
    channel file lacks them. Truncations and missing events are logged as warnings.
    """
    previous, held = -1, None
    chunks = iter_wavedump(
        path,
        chunk_events=chunk_events,
        record_length=record_length,
        header=header,
        ttt_bits=ttt_bits,
        ttt_tick_ns=ttt_tick_ns,
    )
    for chunk in chunks:
        if not len(chunk):
            continue
        if held is not None:
            yield held
        held = chunk.to_event_batch(previous)
        previous = int(chunk.event_counter[-1])
    if held is not None:
        held.end_of_run = True
        yield held
