"""The one backoff policy of the forwarder and the Pinduoduo client."""

from __future__ import annotations

import random

import pytest

from gateway._backoff import Backoff


def test_backoff_doubles_to_the_cap_with_bounded_jitter_and_resets():
    backoff = Backoff(1.0, 60.0, rng=random.Random(7))
    bases, delays = [], []
    for _ in range(10):
        bases.append(backoff.base_s())
        delays.append(backoff.next_delay())
    assert bases == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(0.75 * b <= d <= min(60.0, 1.25 * b) for b, d in zip(bases, delays, strict=True))
    assert len(set(delays)) > 5  # jittered, not a fixed sequence
    backoff.reset()
    assert backoff.base_s() == 1.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_retry_after_is_honoured_up_to_the_cap():
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next_delay() for _ in range(7)]
    assert 0.75 <= delays[0] <= 1.25 and 1.5 <= delays[1] <= 2.5
    assert all(d <= 8.0 for d in delays) and delays[-1] >= 6.0
    backoff.reset()
    assert backoff.next_delay(5.0) >= 5.0  # Retry-After honoured
    assert backoff.next_delay(120.0) == 8.0  # and capped
