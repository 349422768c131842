"""Unwrapping the DT5751's trigger time tag: wraps within and across batches, pass-through, reset."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.timestamps import TimestampUnwrapper, wrap_period_ns

PERIOD = wrap_period_ns(extended=False)


def test_the_31_bit_tag_of_8_ns_wraps_every_17_18_s_and_the_extended_one_after_weeks() -> None:
    assert PERIOD == 17_179_869_184 and wrap_period_ns(extended=True) == 8 << 48


def test_wraps_within_and_across_batches_become_monotonic_ns() -> None:
    rng = np.random.default_rng(5)
    truth = np.cumsum(rng.exponential(2e9, 200)).astype(np.uint64)  # ~400 s: ~23 wraps
    raw = truth % np.uint64(PERIOD)
    unwrapper = TimestampUnwrapper(PERIOD)
    parts = np.split(raw, [1, 7, 50, 51, 120])  # batches of 1 to 80 events
    unwrapped = np.concatenate([unwrapper.unwrap(p) for p in parts])
    assert unwrapped.dtype == np.uint64 and np.array_equal(unwrapped, truth)
    assert unwrapper.wraps == int(truth[-1] // np.uint64(PERIOD))


def test_already_monotonic_values_pass_through_and_reset_starts_over() -> None:
    unwrapper = TimestampUnwrapper(PERIOD)
    values = np.array([5, 3 * PERIOD, 3 * PERIOD + 8], dtype=np.uint64)  # a library that unwraps itself
    assert np.array_equal(unwrapper.unwrap(values), values) and unwrapper.wraps == 0
    unwrapper.reset()
    assert list(unwrapper.unwrap(np.array([PERIOD - 8, 0], dtype=np.uint64))) == [PERIOD - 8, PERIOD]
    assert unwrapper.wraps == 1
    unwrapper.reset()
    assert (
        list(unwrapper.unwrap(np.array([16], dtype=np.uint64))) == [16]
        and unwrapper.unwrap(np.zeros(0, np.uint64)).size == 0
    )
    with pytest.raises(ValueError, match="period"):
        TimestampUnwrapper(0)
