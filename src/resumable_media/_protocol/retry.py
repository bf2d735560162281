"""Backoff arithmetic for the retry loop: how long to wait, and whether to retry at all.

Invariants: no clock and no sleeping here; the driver sleeps for the value returned.
The wait sequence follows google-resumable-media 2.11 exactly: the base wait starts
at ``initial_delay`` and is multiplied by ``multiplier`` each time (capped at
``max_sleep``), plus 0-``jitter_s`` (1 s by default) of jitter in millisecond steps;
``retry_allowed`` is asked with totals that already include the upcoming retry.
"""

from __future__ import annotations

import random
from typing import Protocol

from resumable_media.common import RetryStrategy

__all__ = ["Backoff", "RandInt"]


class RandInt(Protocol):
    """A source of jitter: the :mod:`random` module, or a seeded ``random.Random``."""

    def randint(self, a: int, b: int) -> int:
        """Return an integer in ``[a, b]``."""


class Backoff:
    """The state of one retry loop: retries made and seconds slept so far.

    Args:
        strategy: The retry policy.
        rng: A source of ``randint`` (the :mod:`random` module by default);
            tests pass a seeded ``random.Random``.
    """

    def __init__(self, strategy: RetryStrategy, rng: RandInt = random) -> None:
        self.strategy = strategy
        self._rng = rng
        self._base_wait = strategy.initial_delay / strategy.multiplier
        self.num_retries = 0
        self.total_sleep = 0.0

    def next_wait(self) -> float | None:
        """Account for one more retry and return how long to wait before it.

        Returns:
            The seconds to sleep before retrying, or None when the strategy
            forbids another retry (the caller should re-raise its last error).
        """
        strategy = self.strategy
        self._base_wait = min(strategy.multiplier * self._base_wait, strategy.max_sleep)
        steps = round(getattr(strategy, "jitter_s", 1.0) * 1000)
        wait = self._base_wait + (self._rng.randint(0, steps) / 1000.0 if steps > 0 else 0.0)
        self.num_retries += 1
        self.total_sleep += wait
        if not strategy.retry_allowed(self.total_sleep, self.num_retries):
            return None
        return wait
