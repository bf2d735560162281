"""Progress aggregation: per-chunk byte counts from any process, one rate-limited callback.

Invariants: the total reported never goes backwards (a retried chunk keeps the bytes it
already had); the callback runs only in the parent, never concurrently with itself, at
most every ``interval_s`` seconds plus once at the end, and an exception raised by it
propagates to the caller (from ``ticking`` at the latest when its block exits).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

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
        self._lock = threading.Lock()

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
        with self._lock:
            now = time.monotonic()
            if force or now >= self._next_call:
                self._next_call = now + self.interval_s
                self.callback(self._sum, self.total)

    @contextlib.contextmanager
    def ticking(self) -> Iterator[None]:
        """Keep calling the callback from a helper thread while the block runs.

        Used where the caller's thread may block in one long read or send (single-stream
        downloads, uploads), so the callback still comes at least 4 times a second.

        Raises:
            Exception: Whatever the callback raised on the helper thread.
        """
        if self.callback is None:
            yield
            return
        stop = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            while not stop.wait(self.interval_s / 2):
                try:
                    self.tick()
                except BaseException as exc:
                    failures.append(exc)
                    return

        thread = threading.Thread(target=run, name="resumable-media-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]
