"""Replay source: CAEN WaveDump output (analysis.wavedump reads it: headers or not, binary or ASCII, merged channels).

Geometry: the record length of the first events (each event's own header), the polarity from
PULSE_POLARITY / TRIGGER_EDGE of WaveDumpConfig.txt or else from the data, the trigger position measured
on the data (WaveDump moves it away from POST_TRIGGER), and the DC offset from BASELINE_LEVEL (or the
legacy BASELINE_SHIFT, or DC_OFFSET -50..50 + 50). Trigger times: the 31-bit trigger time tag, roll-overs
undone, x 8 ns; event counters modulo 2^24 become the trigger IDs (gaps are lost triggers).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

import numpy as np

from analysis.wavedump import WaveDumpConfig, WaveDumpData, WaveDumpError, iter_wavedump
from analysis.wavedump_data import data_polarity, trigger_position
from simulators.replay_source import (
    TRIGGER_ID_MODULO,
    ReplayChunk,
    ReplayError,
    ReplayGeometry,
    SlowSeries,
    SourceNotes,
)

READ_CHUNK_EVENTS = 1024


class WaveDumpSource:
    """Events of a WaveDump run (folder or one wave file) in order; `read` returns None after the last."""

    def __init__(
        self, path: str | Path, record_length: int | None = None, header: bool | None = None
    ) -> None:
        """record_length / header: for files without event headers (None: from WaveDumpConfig.txt)."""
        self.path = Path(path)
        self.notes = SourceNotes(self.path)
        self.slow: SlowSeries | None = None
        if record_length is not None and record_length < 1:
            raise ReplayError(f"record length must be a positive number of samples, not {record_length}")
        self._chunks: Generator[WaveDumpData] = iter_wavedump(  # lazy: it reads at the first next()
            self.path, chunk_events=READ_CHUNK_EVENTS, record_length=record_length, header=header
        )
        try:
            self._held = self._next_chunk()
            if self._held is None:
                raise ReplayError(f"{self.path}: no complete event in the WaveDump data; nothing to replay")
            self.geometry = self._geometry(self._held)
        except BaseException:
            self.close()
            raise
        self.events_read = 0

    def _next_chunk(self) -> WaveDumpData | None:
        """The next chunk holding events; its reports (truncation, missing events) go to the notes."""
        while True:
            try:
                chunk = next(self._chunks, None)
            except (WaveDumpError, ValueError) as exc:
                message = str(exc)
                if "header" in message:
                    message += " (daq replay: --no-header --record-length N)"
                raise ReplayError(message) from None
            if chunk is None:
                return None
            for cut in chunk.truncations:
                self.notes.add(cut.message)
            for ch, missing in chunk.missing_events.items():
                self.notes.add(f"channel {ch} lacks {missing.size} event(s) the other channels have; dropped")
            if len(chunk):
                return chunk

    def _geometry(self, first: WaveDumpData) -> ReplayGeometry:
        channels = first.channels
        crystal = channels[0]
        cfg = first.config
        if cfg is not None and cfg.polarity_explicit:
            polarity = cfg.polarity(crystal)
        else:
            polarity = "positive" if data_polarity(first.waveforms[:, 0, :]) > 0 else "negative"
            self.notes.add(f"polarity {polarity}: from the data (no PULSE_POLARITY in WaveDumpConfig.txt)")
        n = first.n_samples
        trigger = trigger_position(first.waveforms[:, 0, :], 1 if polarity == "positive" else -1)
        has_time_tags = bool(first.timestamp_ns.any()) or len(first) == 1
        if not has_time_tags:
            self.notes.add("no trigger time tags (files without event headers): played as fast as possible")
        return ReplayGeometry(
            record_length_samples=n,
            post_trigger_samples=min(max(n - trigger, 0), n - 1),
            channels=channels,
            polarity=polarity,
            dc_offset_pct={ch: _dc_offset_pct(cfg, ch) for ch in channels},
            crystal_channel=crystal,
            description=f"WaveDump data {self.path}",
            has_time_tags=has_time_tags,
        )

    def read(self, max_events: int) -> ReplayChunk | None:
        held = self._held
        if held is None or not len(held):
            held = self._held = self._next_chunk()
            if held is None:
                return None
        expected = self.geometry.record_length_samples
        if held.n_samples != expected:
            raise ReplayError(
                f"{self.path}: the record length changes from {expected} to {held.n_samples} samples at event "
                f"counter {int(held.event_counter[0])}; a DT5751 run has one record length: replay the parts "
                f"separately"
            )
        k = min(max_events, len(held))
        chunk = ReplayChunk(
            waveforms=held.waveforms[:k],
            timestamp_ns=held.timestamp_ns[:k],
            trigger_id=(held.event_counter[:k] % TRIGGER_ID_MODULO).astype(np.uint32),
        )
        self._held = _rest(held, k)
        self.events_read += k
        return chunk

    def close(self) -> None:
        self._held = None
        self._chunks.close()  # closes the wave files


def _rest(data: WaveDumpData, k: int) -> WaveDumpData:
    return replace(
        data,
        waveforms=data.waveforms[k:],
        event_counter=data.event_counter[k:],
        trigger_time_tag=data.trigger_time_tag[k:],
        timestamp_ns=data.timestamp_ns[k:],
        truncations=(),
        missing_events={},
    )


def _dc_offset_pct(cfg: WaveDumpConfig | None, channel: int) -> float | None:
    """The channel's DC offset as the DT5751's CH_DCOFFSET percentage (a higher one puts the baseline higher)."""
    if cfg is None:
        return None
    for key, shift in (("BASELINE_LEVEL", 0.0), ("BASELINE_SHIFT", 0.0), ("DC_OFFSET", 50.0)):
        text = cfg.value(key, channel)
        if text is not None:
            try:
                return min(max(float(text.split()[0]) + shift, 0.0), 100.0)
            except ValueError:
                return None
    return None
