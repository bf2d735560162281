"""What the command says on stderr while the library retries, and its other warnings.

Invariants:
- The first retry of a run prints one line at once, naming the origin, the failure in
  words and how long the command keeps trying; after that, at most one line every
  :data:`REPEAT_S` seconds, however many threads retry.  ``--quiet`` prints none of them.
- Other library warnings are printed as one ``warning:`` line each (never a traceback).
- Lines never hold a path, query or header: the library's records carry only the origin
  (``scheme://host:port``) of a failed request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

from resumable_media._transport import RetryNotice

__all__ = ["REPEAT_S", "NoticeHandler", "format_duration", "install"]

REPEAT_S = 30.0
"""The least time between two retry lines after the first."""


def format_duration(seconds: float) -> str:
    """``45 s``, ``10 min``, ``1 h 30 min``: a retry budget in words."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


_BROKEN = ("connection closed mid-response", "connection reset", "connection closed by the server")


def _problem(notice: RetryNotice) -> str:
    origin = notice.origin or "the server"
    if notice.reason.startswith("HTTP "):
        return f"{origin} answered {notice.reason}"
    if notice.reason in _BROKEN:  # it was reached: the transfer broke off
        return f"{origin}: {notice.reason}"
    return f"cannot reach {origin} ({notice.reason})"


class NoticeHandler(logging.Handler):
    """A logging handler for the ``resumable_media`` logger that writes the notices.

    Args:
        stream: Where lines go (stderr); looked up at each write when None.
        clock: Monotonic seconds (tests pass a fake).
        quiet: Print neither retry lines nor warnings, only errors (``--quiet``).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        super().__init__(logging.WARNING)
        self._stream = stream
        self._clock = clock
        self._quiet = quiet
        self._lock_lines = threading.Lock()
        self._last_line: float | None = None
        self._first_failure: float | None = None

    def _write(self, line: str) -> None:
        import sys

        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` as a notice, rate-limited when it is a retry."""
        try:
            notice = getattr(record, "rm_retry", None)
            if isinstance(notice, RetryNotice):
                line = self._retry_line(notice)
            elif record.levelno >= logging.ERROR or not self._quiet:
                line = f"warning: {record.getMessage()}"
            else:
                line = None
            if line is not None:
                self._write(line)
        except Exception:  # a notice must never break a transfer
            self.handleError(record)

    def _retry_line(self, notice: RetryNotice) -> str | None:
        if self._quiet or notice.giving_up:
            return None  # the command's own error line says what failed, once
        now = self._clock()
        with self._lock_lines:
            if self._last_line is None:
                self._last_line = self._first_failure = now
                budget = (
                    f"retrying for up to {format_duration(notice.deadline_s)} (--retry-deadline)"
                    if notice.deadline_s is not None
                    else "retrying"
                )
                return f"{_problem(notice)}; {budget}"
            if now - self._last_line < REPEAT_S:
                return None
            self._last_line = now
            since = format_duration(now - (self._first_failure or now))
        return f"still retrying: {_problem(notice)}; first failure {since} ago"


def install(*, quiet: bool) -> NoticeHandler:
    """Attach a :class:`NoticeHandler` to the ``resumable_media`` logger (once)."""
    logger = logging.getLogger("resumable_media")
    for handler in logger.handlers:
        if isinstance(handler, NoticeHandler):
            logger.removeHandler(handler)
    handler = NoticeHandler(quiet=quiet)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return handler
