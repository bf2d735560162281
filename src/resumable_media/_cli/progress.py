"""A one-line progress bar on stderr: bytes, rate, ETA, and object counts for ``-r``.

Invariants: draws only when enabled (stderr is a terminal and not ``--quiet``);
redraws at most every ``interval_s`` seconds; thread-safe (several transfers
report into one bar); ``close()`` erases the line so later messages start clean.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from resumable_media._objects.units import format_size

__all__ = ["ProgressBar", "format_eta"]


def format_eta(seconds: float | None) -> str:
    """Format a remaining time as ``m:ss`` / ``h:mm:ss`` (``--:--`` when unknown)."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds > 360000:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Aggregate progress of one or more transfers and draw it on a terminal.

    Args:
        total_bytes: Bytes expected overall, or None when unknown.
        total_objects: Objects expected (shown for recursive copies when > 1).
        enabled: Whether to draw at all.
        stream: Where to draw (default ``sys.stderr``).
        interval_s: Minimum time between redraws.
    """

    def __init__(
        self,
        total_bytes: int | None,
        total_objects: int = 1,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        interval_s: float = 0.2,
    ) -> None:
        self.total_bytes = total_bytes
        self.total_objects = total_objects
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._done_bytes = 0
        self._live: dict[object, int] = {}
        self._objects_done = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._width = 0

    @property
    def bytes_done(self) -> int:
        """Bytes finished plus bytes reported by transfers still running."""
        with self._lock:
            return self._done_bytes + sum(self._live.values())

    def callback(self, key: object) -> _Callback:
        """Return a ``progress(bytes_done, total)`` callable for one transfer."""
        return _Callback(self, key)

    def update(self, key: object, bytes_done: int) -> None:
        """Record that transfer ``key`` has moved ``bytes_done`` bytes so far."""
        with self._lock:
            self._live[key] = bytes_done
        self._maybe_draw()

    def finish(self, key: object, size: int) -> None:
        """Record that transfer ``key`` is over, having moved ``size`` bytes."""
        with self._lock:
            self._live.pop(key, None)
            self._done_bytes += size
            self._objects_done += 1
        self._maybe_draw(force=True)

    def render(self, now: float | None = None) -> str:
        """Return the bar's text (without drawing it)."""
        now = time.monotonic() if now is None else now
        done = self.bytes_done
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        parts = []
        if self.total_bytes:
            fraction = min(done / self.total_bytes, 1.0)
            filled = int(fraction * 20)
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {fraction * 100:5.1f}%")
            parts.append(f"{format_size(done)} / {format_size(self.total_bytes)}")
            eta = (self.total_bytes - done) / rate if rate > 0 else None
        else:
            parts.append(format_size(done))
            eta = None
        parts.append(f"{format_size(rate)}/s")
        parts.append(f"ETA {format_eta(eta)}")
        if self.total_objects > 1:
            parts.append(f"{self._objects_done}/{self.total_objects} objects")
        return "  ".join(parts)

    def _maybe_draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_draw < self._interval_s:
                return
            self._last_draw = now
        text = self.render(now)
        with self._lock:
            pad = max(self._width - len(text), 0)
            self._width = len(text)
            self._stream.write("\r" + text + " " * pad)
            self._stream.flush()

    def close(self) -> None:
        """Erase the bar (when one was drawn)."""
        if self.enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


class _Callback:
    """``progress(bytes_done, total)`` adapter bound to one transfer of a bar."""

    def __init__(self, bar: ProgressBar, key: object) -> None:
        self._bar = bar
        self._key = key

    def __call__(self, bytes_done: int, total: int | None = None) -> None:
        self._bar.update(self._key, bytes_done)
