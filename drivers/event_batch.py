"""The batch of digitizer events that flows from the readout thread to analysis and the writer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass
class EventBatch:
    """A batch of triggered records, owned by whoever holds it (never a view of FELib's buffers).

    waveforms: (n, channels, samples) int16 raw ADC counts (0-1023 on the 10-bit DT5751).
    timestamp_ns: (n,) uint64 trigger time since the start of the run, ns.
    trigger_id: (n,) uint32 board event counter (counts lost triggers too, TRG_COUNT_ALL).
    channels: board channel number of each row of axis 1.
    lost_triggers: triggers the board counted but could not store (gaps of trigger_id) before
        and between the events of this batch.
    memory_full_seen: the board reported its event memory full while this batch was read.
    end_of_run: the board signalled the end of the run (FELib STOP); no event follows.
    """

    waveforms: NDArray[np.int16]
    timestamp_ns: NDArray[np.uint64]
    trigger_id: NDArray[np.uint32]
    channels: tuple[int, ...]
    lost_triggers: int = 0
    memory_full_seen: bool = False
    end_of_run: bool = False
    event_size_bytes: NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))

    def __len__(self) -> int:
        return int(self.waveforms.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per record."""
        return int(self.waveforms.shape[2])

    @property
    def nbytes(self) -> int:
        """Bytes of raw samples in this batch (2 bytes per sample)."""
        return int(self.waveforms.nbytes)
