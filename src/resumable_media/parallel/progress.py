"""Progress aggregation: per-chunk byte counts from any process, one rate-limited callback.

Invariants: the total reported never goes backwards (a retried chunk keeps the bytes it
already had); the callback runs only in the parent, at most every ``interval_s`` seconds
plus once at the end, and an exception raised by it propagates to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ProgressCallback", "ProgressTracker"]

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(bytes_done, total)``."""


class ProgressTracker:
    """Sums per-chunk progress and calls the user's callback at a bounded rate.

    Args:
        callback: ``progress(bytes_done, total)``, or None.
        total: The transfer size, or None when unknown.
        interval_s: Minimum seconds between calls (0.2 s gives 5 calls a second).
    """

    def __init__(
        self, callback: ProgressCallback | None, total: int | None, interval_s: float = 0.2
    ) -> None:
        self.callback = callback
        self.total = total
        self.interval_s = interval_s
        self._per_chunk: dict[int, int] = {}
        self._sum = 0
        self._next_call = 0.0

    @property
    def bytes_done(self) -> int:
        """int: Bytes done across all chunks."""
        return self._sum

    def set(self, index: int, done: int) -> None:
        """Record that chunk ``index`` has ``done`` bytes (ignored if smaller than before)."""
        previous = self._per_chunk.get(index, 0)
        if done > previous:
            self._per_chunk[index] = done
            self._sum += done - previous

    def add(self, count: int) -> None:
        """Record ``count`` more bytes for a single-stream transfer."""
        self._sum += count

    def tick(self, *, force: bool = False) -> None:
        """Call the callback if ``interval_s`` has passed (or ``force``)."""
        if self.callback is None:
            return
        now = time.monotonic()
        if force or now >= self._next_call:
            self._next_call = now + self.interval_s
            self.callback(self._sum, self.total)
