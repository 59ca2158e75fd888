"""Capped exponential backoff with jitter: one policy for every reconnect and retry.

Used by the forwarder (upstream retries, store retries) and the Pinduoduo message client
(reconnects, resubmits). Delays double from ``initial_s`` per consecutive failure up to
``max_s``, each jittered by +-``jitter`` (never above the cap) so that many boxes do not
retry in step; ``reset()`` after a success starts again from ``initial_s``.
"""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential backoff with +-``jitter`` (fraction) around each step.

    Args:
        initial_s: the first delay.
        max_s: the cap; no delay is longer.
        jitter: each delay is ``base * uniform(1 - jitter, 1 + jitter)``, capped.
        rng: the random source (tests pass a seeded one).
    """

    def __init__(self, initial_s: float, max_s: float, *, jitter: float = 0.25,
                 rng: random.Random | None = None) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def base_s(self) -> float:
        """The un-jittered delay the next failure gets."""
        return min(self.max_s, self.initial_s * 2.0 ** min(self.failures, 64))

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """Count one failure and return how long to wait before the next attempt.

        Args:
            retry_after_s: the peer's own ``Retry-After``: honoured (the delay is at least
                that), still capped at ``max_s``.
        """
        base = self.base_s()
        self.failures += 1
        delay = base * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return float(min(self.max_s, delay))

    def reset(self) -> None:
        """Back to ``initial_s`` (after a success)."""
        self.failures = 0


__all__ = ["Backoff"]
