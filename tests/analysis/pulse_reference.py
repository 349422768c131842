"""A plain-Python reference of the paper's pulse reconstruction (PHYSICS.md 1.2), written for clarity, not speed."""

from __future__ import annotations

import math


def reference_pulses(
    raw: list[int],
    baseline: tuple[int, int] = (0, 1400),
    signal: tuple[int, int] = (1400, 8000),
    n_sigma: float = 5.0,
    ddof: int = 0,
    polarity: int = -1,
    count_boundaries: bool = True,
) -> dict[str, object]:
    """Return mu, sigma, total_q, integral_q and the list of peaks (q, ts, te) of one waveform."""
    bl = raw[baseline[0] : baseline[1]]
    mu = sum(bl) / len(bl)
    sigma = math.sqrt(sum((v - mu) ** 2 for v in bl) / (len(bl) - ddof))

    def x(i: int) -> float:
        return (mu - raw[i]) if polarity < 0 else (raw[i] - mu)

    peaks = []
    lowest = signal[0]  # no sample belongs to two peaks
    i = signal[0]
    while i < signal[1]:
        if x(i) >= n_sigma * sigma and x(i) > 0:
            ts = i
            while ts > lowest and x(ts) > 0:  # back to the first sample with x <= 0
                ts -= 1
            te = i
            while te < signal[1] - 1 and x(te) > 0:  # forward to the first sample with x <= 0
                te += 1
            inside = range(ts, te + 1)
            if not count_boundaries:  # leave out TS and TE when they are the samples with x <= 0
                inside = [k for k in inside if not (k in (ts, te) and x(k) <= 0)]
            peaks.append((sum(x(k) for k in inside), ts, te))
            lowest = te + 1
            i = te + 1
        else:
            i += 1
    integral = sum(x(k) for k in range(signal[0], signal[1]))  # every sample of the region, no threshold
    return {
        "mu": mu,
        "sigma": sigma,
        "total_q": sum(p[0] for p in peaks),
        "integral_q": integral,
        "peaks": peaks,
    }
