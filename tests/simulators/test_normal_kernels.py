"""The simulator's Gaussian noise generator (xoshiro256+ ziggurat) is Gaussian, reproducible and independent."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulators.normal_kernels import FN, KN, WN, fill_normal, new_state


def _draw(seed: int, n: int) -> np.ndarray:
    out = np.empty(n, np.float32)
    fill_normal(out, new_state(np.random.default_rng(seed)), KN, WN, FN)
    return out.astype(np.float64)


def test_moments_tails_and_shape_are_gaussian() -> None:
    x = _draw(1, 4_000_000)
    assert x.mean() == pytest.approx(0.0, abs=5 / np.sqrt(x.size))
    assert x.std() == pytest.approx(1.0, abs=5 / np.sqrt(2 * x.size))
    assert stats.kurtosis(x) == pytest.approx(0.0, abs=0.01)
    for k in (1.0, 2.0, 3.0, 4.0):
        expected = 2 * stats.norm.sf(k)
        assert np.mean(np.abs(x) > k) == pytest.approx(expected, abs=5 * np.sqrt(expected / x.size))
    assert stats.kstest(x[:500_000], "norm").pvalue > 0.001
    assert np.abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 5 / np.sqrt(x.size)  # no serial correlation


def test_same_seed_same_stream_different_seed_independent() -> None:
    a, b, c = _draw(7, 100_000), _draw(7, 100_000), _draw(8, 100_000)
    assert np.array_equal(a, b)
    assert np.abs(np.corrcoef(a, c)[0, 1]) < 5 / np.sqrt(a.size)
    state = new_state(np.random.default_rng(3))
    first, second = np.empty(1000, np.float32), np.empty(1000, np.float32)
    fill_normal(first, state, KN, WN, FN)
    fill_normal(second, state, KN, WN, FN)  # the state advances: a call continues the stream
    assert not np.array_equal(first, second)
