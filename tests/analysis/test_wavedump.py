"""WaveDump reader: the real DT5751 file, and synthetic files written here byte by byte with struct."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from analysis.wavedump import (
    WaveDumpError,
    iter_event_batches,
    iter_wavedump,
    open_wavedump,
    parse_wavedump_config,
)
from drivers.event_batch import EventBatch
from tests.shared_data import WAVEDUMP_SIPM, needs_wavedump_sample

REAL = WAVEDUMP_SIPM
needs_real = needs_wavedump_sample


def _event_bytes(samples: list[int], channel: int, counter: int, ttt: int, board: int = 31) -> bytes:
    """One WaveDump binary event: 6 x uint32 LE header (size incl. header, board, pattern, channel, counter, TTT)."""
    head = struct.pack("<6I", 24 + 2 * len(samples), board, 0, channel, counter, ttt)
    return head + struct.pack(f"<{len(samples)}H", *samples)


def _event_text(samples: list[int], channel: int, counter: int, ttt: int, board: int = 31) -> str:
    head = [f"Record Length: {len(samples)}", f"BoardID: {board:2d}", f"Channel: {channel}",
            f"Event Number: {counter}", "Pattern: 0x0000", f"Trigger Time Stamp: {ttt}", "DC offset (DAC): 0x1999"]  # fmt: skip
    return "\n".join(head + [str(s) for s in samples]) + "\n"


def _waves(n: int, n_samples: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1024, size=(n, n_samples)).tolist()


# ---------------------------------------------------------------------------------------------- real data


@needs_real
def test_real_dt5751_file_reads_293_events_of_406_samples_and_reports_the_cut_tail() -> None:
    data = open_wavedump(REAL)
    assert len(data) == 293 and data.waveforms.shape == (293, 1, 406) and data.waveforms.dtype == np.int16
    assert data.channels == (2,) and data.board_id == 31  # channel from the header, not the file name
    assert np.array_equal(data.event_counter, np.arange(293))
    assert data.timestamp_ns[0] == 19571 * 8 and np.all(np.diff(data.timestamp_ns.astype(np.int64)) > 0)
    assert 0 <= data.waveforms.min() and data.waveforms.max() <= 1023
    (cut,) = data.truncations
    assert (cut.event_index, cut.present_bytes, cut.expected_bytes, cut.offset_bytes) == (
        293,
        812,
        836,
        293 * 836,
    )
    assert "wave0.dat" in cut.message and "event 293" in cut.message
    assert data.pulse_polarity == {2: "positive"} and data.missing_events == {}


@needs_real
def test_real_config_is_parsed() -> None:
    cfg = parse_wavedump_config(REAL / "WaveDumpConfig.txt")
    assert (cfg.record_length, cfg.post_trigger_pct, cfg.output_format, cfg.header) == (
        400,
        20,
        "BINARY",
        True,
    )
    assert cfg.enabled_channels == (0,)  # COMMON says NO, [0] says YES
    assert cfg.baseline_level_pct[0] == 10 and cfg.trigger_threshold_adc[0] == 200
    assert (
        cfg.sections["COMMON"]["OPEN"] == "PCI 0 0 0" and cfg.value("channel_trigger") == "ACQUISITION_ONLY"
    )
    assert "DIGITIZER" not in cfg.sections["COMMON"]  # between @OFF and @ON
    assert not cfg.polarity_explicit and cfg.polarity(2) == "positive"


@needs_real
def test_real_file_in_chunks_equals_the_full_read() -> None:
    full = open_wavedump(REAL / "wave0.dat")
    chunks = list(iter_wavedump(REAL / "wave0.dat", chunk_events=50))
    assert [len(c) for c in chunks if len(c)] == [50] * 5 + [43]
    assert np.array_equal(np.concatenate([c.waveforms for c in chunks if len(c)]), full.waveforms)
    assert np.array_equal(np.concatenate([c.timestamp_ns for c in chunks]), full.timestamp_ns)
    assert [t.event_index for c in chunks for t in c.truncations] == [293]
    batches = list(iter_event_batches(REAL, chunk_events=100))
    assert all(isinstance(b, EventBatch) for b in batches) and [len(b) for b in batches] == [100, 100, 93]
    assert [b.end_of_run for b in batches] == [False, False, True] and sum(
        b.lost_triggers for b in batches
    ) == 0
    assert np.array_equal(np.concatenate([b.waveforms for b in batches]), full.waveforms)
    assert batches[0].trigger_id.dtype == np.uint32 and batches[0].channels == (2,)


# -------------------------------------------------------------------------------------------- config syntax


def test_config_syntax_sections_comments_and_legacy_keys(tmp_path: Path) -> None:
    path = tmp_path / "WaveDumpConfig.txt"
    path.write_text(
        "# a comment\n[COMMON]\nrecord_length\t1000   \nPOST_TRIGGER 50 # inline comment\n"
        "OUTPUT_FILE_FORMAT ascii\n@OFF\nRECORD_LENGTH nonsense\n@ON\nTRIGGER_EDGE FALLING\nDC_OFFSET -40\n"
        "WRITE_REGISTER 1080 1 FF\nMY_OWN_KEY  some   value\n[1]\nENABLE_INPUT NO\nPULSE_POLARITY POSITIVE\n"
        "BASELINE_SHIFT 20\n[5]\nTRIGGER_THRESHOLD 30\n"
    )
    cfg = parse_wavedump_config(path)
    assert (cfg.record_length, cfg.post_trigger_pct, cfg.output_format, cfg.header) == (
        1000,
        50,
        "ASCII",
        False,
    )
    assert cfg.enabled_channels == (0, 2, 3, 4, 5)  # channels 0-3, extended to 5 by its section
    assert (
        cfg.pulse_polarity[0] == "negative" and cfg.pulse_polarity[1] == "positive" and cfg.polarity_explicit
    )
    assert (
        cfg.dc_offset_pct[3] == -40
        and cfg.baseline_level_pct == {1: 20.0}
        and cfg.trigger_threshold_adc == {5: 30}
    )
    assert cfg.sections["COMMON"]["MY_OWN_KEY"] == "some value" and cfg.write_registers == ("1080 1 FF",)
    assert cfg.polarity(9) == "negative"  # beyond the maps: COMMON's TRIGGER_EDGE


def test_config_common_line_after_a_channel_section_overrides_it_as_in_wavedump(tmp_path: Path) -> None:
    path = tmp_path / "WaveDumpConfig.txt"
    path.write_text("[0]\nENABLE_INPUT NO\n[COMMON]\nENABLE_INPUT YES\n")
    assert parse_wavedump_config(path).enabled_channels == (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("text", "line"),
    [("[COMMON]\nRECORD_LENGTH 100\nRECORD_LENGTH\n", 3), ("POST_TRIGGER 150\n", 1), ("[0\n", 1),
     ("# ok\nPULSE_POLARITY UP\n", 2), ("OUTPUT_FILE_HEADER = YES\n", 1)],
)  # fmt: skip
def test_config_malformed_line_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "WaveDumpConfig.txt"
    path.write_text(text)
    with pytest.raises(WaveDumpError, match=rf"WaveDumpConfig\.txt, line {line}:"):
        parse_wavedump_config(path)


# -------------------------------------------------------------------------------------------- binary files


def test_two_binary_channels_are_merged_by_event_counter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    waves = {ch: _waves(10, 12, seed=ch) for ch in (0, 1)}
    for ch in (0, 1):
        kept = [k for k in range(10) if not (ch == 1 and k == 4)]  # channel 1 lost event 4
        data = b"".join(_event_bytes(waves[ch][k], ch, k, 1000 + 50 * k) for k in kept)
        (tmp_path / f"wave{ch}.dat").write_bytes(data)
    with caplog.at_level(logging.WARNING):
        data = open_wavedump(tmp_path)
    assert "lacks 1 event" in caplog.text
    assert data.channels == (0, 1) and len(data) == 9 and data.n_samples == 12
    assert list(data.event_counter) == [0, 1, 2, 3, 5, 6, 7, 8, 9] and data.truncations == ()
    assert list(data.missing_events) == [1] and list(data.missing_events[1]) == [4]
    for ch in (0, 1):
        expected = [waves[ch][k] for k in data.event_counter]
        assert np.array_equal(data.waveforms[:, ch, :], expected)
    assert np.array_equal(data.timestamp_ns, (1000 + 50 * data.event_counter.astype(np.int64)) * 8)

    chunks = list(iter_wavedump(tmp_path, chunk_events=3))
    assert np.array_equal(np.concatenate([c.waveforms for c in chunks if len(c)]), data.waveforms)
    assert np.array_equal(np.concatenate([c.event_counter for c in chunks]), data.event_counter)
    batches = list(iter_event_batches(tmp_path, chunk_events=4))
    assert sum(b.lost_triggers for b in batches) == 1 and batches[-1].end_of_run
    assert np.array_equal(
        np.concatenate([b.trigger_id for b in batches]), data.event_counter.astype(np.uint32)
    )


def test_trigger_time_tag_rollovers_are_unwrapped(tmp_path: Path) -> None:
    flag = 1 << 31  # x751: bit 31 is the roll-over flag, the counter has 31 bits
    ttt = [2**31 - 100, 2**31 - 1, flag | 50, flag | 60, 10, 2**31 - 5, flag | 3]
    path = tmp_path / "wave0.dat"
    path.write_bytes(b"".join(_event_bytes([500] * 4, 0, k, t) for k, t in enumerate(ttt)))
    ticks = [2**31 - 100, 2**31 - 1, 2**31 + 50, 2**31 + 60, 2**32 + 10, 2**32 + 2**31 - 5, 3 * 2**31 + 3]
    for chunk_events in (1, 3, 100):
        stamps = np.concatenate([c.timestamp_ns for c in iter_wavedump(path, chunk_events=chunk_events)])
        assert stamps.dtype == np.uint64 and list(stamps) == [8 * t for t in ticks]
    data = open_wavedump(path, ttt_bits=32, ttt_tick_ns=16)  # another board: 32-bit counter, 16 ns
    assert list(data.timestamp_ns) == [16 * t for t in [2**31 - 100, 2**31 - 1, flag | 50, flag | 60, 2**32 + 10,
                                                        2**32 + 2**31 - 5, 2**32 + (flag | 3)]]  # fmt: skip
    assert list(data.trigger_time_tag) == ttt


def test_event_size_may_change_inside_a_file(tmp_path: Path) -> None:
    path = tmp_path / "wave0.dat"
    path.write_bytes(b"".join(_event_bytes([k] * (5 if k < 3 else 8), 0, k, k) for k in range(6)))
    chunks = list(iter_wavedump(path, chunk_events=100))
    assert [(len(c), c.n_samples) for c in chunks] == [(3, 5), (3, 8)]
    with pytest.raises(WaveDumpError, match=r"record length changes.*iter_wavedump"):
        open_wavedump(path)


@pytest.mark.parametrize(
    ("size", "offset", "problem"),
    [(20, 0, "not more than the 24-byte header"), (37, 0, "is odd"), (20, 32, "not more than")],
)
def test_bad_event_size_names_file_and_byte_offset(
    tmp_path: Path, size: int, offset: int, problem: str
) -> None:
    path = tmp_path / "wave0.dat"
    good = _event_bytes([1, 2, 3, 4], 0, 0, 0)  # 32 bytes
    bad = struct.pack("<6I", size, 31, 0, 0, 1, 1) + b"\0" * 16
    path.write_bytes(bad if offset == 0 else good + bad)
    with pytest.raises(WaveDumpError, match=rf"wave0\.dat: the event header at byte {offset} .*{problem}"):
        open_wavedump(path)


def test_truncated_header_and_channel_change_inside_a_file(tmp_path: Path) -> None:
    path = tmp_path / "wave0.dat"
    path.write_bytes(_event_bytes([7] * 3, 0, 0, 0) + _event_bytes([7] * 3, 0, 1, 9)[:10])
    data = open_wavedump(path)
    assert (
        len(data) == 1
        and data.truncations[0].present_bytes == 10
        and data.truncations[0].expected_bytes is None
    )
    path.write_bytes(_event_bytes([7] * 3, 0, 0, 0) + _event_bytes([7] * 3, 1, 1, 9))
    with pytest.raises(WaveDumpError, match=r"wave0\.dat: the header at byte 30 says channel 1"):
        open_wavedump(path)


def test_headerless_binary_needs_a_record_length(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    samples = np.arange(4 * 6 + 3, dtype="<u2")  # four 6-sample events and half of a fifth
    path = tmp_path / "wave3.dat"
    path.write_bytes(samples.tobytes())
    with pytest.raises(WaveDumpError, match=r"wave3\.dat has no event headers.*record_length="):
        open_wavedump(path, header=False)
    data = open_wavedump(path, header=False, record_length=6)
    assert data.channels == (3,) and np.array_equal(data.waveforms[:, 0], samples[:24].reshape(4, 6))
    assert list(data.event_counter) == [0, 1, 2, 3] and not data.timestamp_ns.any()
    (cut,) = data.truncations
    assert (cut.event_index, cut.offset_bytes, cut.present_bytes, cut.expected_bytes) == (4, 48, 6, 12)

    (tmp_path / "WaveDumpConfig.txt").write_text("OUTPUT_FILE_FORMAT BINARY\nOUTPUT_FILE_HEADER NO\n")
    with pytest.raises(WaveDumpError, match=r"wave3\.dat has no event headers"):
        open_wavedump(tmp_path)
    (tmp_path / "WaveDumpConfig.txt").write_text(
        "OUTPUT_FILE_HEADER NO\nOUTPUT_FILE_FORMAT BINARY\nRECORD_LENGTH 6\n"
    )
    with caplog.at_level(logging.WARNING):
        assert len(open_wavedump(tmp_path)) == 4
    assert "may round" in caplog.text


def test_a_headerless_file_read_as_if_it_had_headers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wave0.dat"
    path.write_bytes(
        np.full(400, 45, "<u2").tobytes()
    )  # word 0 = 45 + 45 * 65536: a size, but channel absurd
    with pytest.raises(WaveDumpError, match=r"wave0\.dat.*header=False and record_length"):
        open_wavedump(path)


# --------------------------------------------------------------------------------------------- ASCII files


def test_ascii_with_header_and_a_truncated_last_event(tmp_path: Path) -> None:
    waves = _waves(4, 9, seed=3)
    events = [_event_text(w, 1, 100 + k, 10 * k, board=5) for k, w in enumerate(waves)]
    cut = events[3][: events[3].index("\n", len(events[3]) // 2) + 2]  # ends inside a sample line
    path = tmp_path / "wave1.txt"
    path.write_text("".join(events[:3]) + cut)
    data = open_wavedump(path)
    assert (len(data), data.channels, data.board_id, data.n_samples) == (3, (1,), 5, 9)
    assert np.array_equal(data.waveforms[:, 0], waves[:3]) and list(data.event_counter) == [100, 101, 102]
    assert list(data.trigger_time_tag) == [0, 10, 20] and list(data.timestamp_ns) == [0, 80, 160]
    (trunc,) = data.truncations
    assert trunc.event_index == 3 and trunc.expected_bytes is None and "wave1.txt" in trunc.message
    assert trunc.offset_bytes == len("".join(events[:3])) and trunc.present_bytes == len(cut)
    path.write_text("".join(events))
    full = open_wavedump(path)
    assert len(full) == 4 and full.truncations == ()
    assert np.array_equal(
        np.concatenate([c.waveforms for c in iter_wavedump(path, chunk_events=3)]), full.waveforms
    )


def test_ascii_without_header(tmp_path: Path) -> None:
    waves = _waves(3, 5, seed=4)
    path = tmp_path / "wave2.txt"
    path.write_text("".join(f"{s}\n" for w in waves for s in w) + "17\n4")  # 2 lines of a fourth event
    with pytest.raises(WaveDumpError, match=r"wave2\.txt has no event headers"):
        open_wavedump(path)
    data = open_wavedump(path, record_length=5)
    assert data.channels == (2,) and np.array_equal(data.waveforms[:, 0], waves)
    (cut,) = data.truncations
    assert cut.event_index == 3 and cut.present_bytes == len("17\n4")
    chunks = [c for c in iter_wavedump(path, record_length=5, chunk_events=2) if len(c)]
    assert [len(c) for c in chunks] == [2, 1]


def test_ascii_damaged_sample_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "wave0.txt"
    path.write_text(_event_text([1, 2, 3], 0, 0, 0) + _event_text([4, 5, 3000000], 0, 1, 1))
    with pytest.raises(WaveDumpError, match=r"wave0\.txt, line 20: expected one sample value"):
        open_wavedump(path)
    path.write_text(_event_text([1, 2, 3], 0, 0, 0).replace("BoardID", "Board"))
    with pytest.raises(WaveDumpError, match=r"wave0\.txt, line 2: expected 'BoardID: <number>'"):
        open_wavedump(path)


def test_folder_without_wave_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WaveDumpError, match="holds no wave"):
        open_wavedump(tmp_path)
