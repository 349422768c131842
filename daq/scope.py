"""`daq scope`: configure the digitizer through the driver and print a one-line summary per event."""

from __future__ import annotations

import numpy as np

from daq.config import parse_sim_rate
from daq.digitizer_urls import open_digitizer
from drivers import DigitizerSettings, EventBatch

BASELINE_SAMPLES = 1400  # PHYSICS.md 1.2: baseline region 0-1399
Q_SPE_ADC_NS = 32.5


def _with_rate(url: str, sim_rate: str | None) -> str:
    if sim_rate is None:
        return url
    if not url.lower().startswith("sim://"):
        raise ValueError(f"--sim-rate applies to the simulator only, not to {url}")
    rate_hz = parse_sim_rate(sim_rate)
    option = "pace=max" if rate_hz is None else f"rate_hz={rate_hz:g}"
    return f"{url}{'&' if '?' in url else '?'}{option}"


def event_lines(batch: EventBatch, polarity_sign: int = -1) -> list[str]:
    """One line per event: id, time, baseline and rms, pulse height and a rough charge in PE (ch of row 0)."""
    lines = []
    for i in range(len(batch)):
        wf = batch.waveforms[i, 0].astype(np.float64)
        base = wf[:BASELINE_SAMPLES]
        mu, rms = base.mean(), base.std()
        x = (wf[BASELINE_SAMPLES:] - mu) * polarity_sign
        charge = float(x.sum())
        lines.append(
            f"event {int(batch.trigger_id[i]):7d}  t={batch.timestamp_ns[i] / 1e6:10.3f} ms  "
            f"baseline {mu:7.2f} ADC rms {rms:4.2f}  height {x.max():6.1f} ADC  "
            f"charge {charge:9.0f} ADC*ns (~{charge / Q_SPE_ADC_NS:6.0f} PE)"
        )
    return lines


def print_scope(url: str, n_events: int, sim_rate: str | None = None) -> int:
    """Configure the board at `url` with the default settings, print them and `n_events` event summaries."""
    if n_events < 1:
        raise ValueError(f"--events must be at least 1, not {n_events}")
    with open_digitizer(_with_rate(url, sim_rate)) as board:
        effective = board.configure(DigitizerSettings())
        print(effective.describe())
        board.arm()
        seen = 0
        while seen < n_events:
            batch = board.read_batch(n_events - seen, max_wait_s=1.0)
            for line in event_lines(batch):
                print(line)
            seen += len(batch)
            if batch.end_of_run:
                break
        board.disarm()
        print(f"{seen} events read, {board.lost_triggers_total} triggers lost")
    return 0
