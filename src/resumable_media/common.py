"""Constants, exceptions and the retry policy shared by every transfer.

Invariants: the names, values and exception ``args`` layouts here match
google-resumable-media 2.11 exactly (downstream code and tests rely on them).
Nothing in this module performs I/O.
"""

from __future__ import annotations

import html
import http.client
import json
import re
from typing import Any, Literal

__all__ = [
    "MAX_CUMULATIVE_RETRY",
    "MAX_SLEEP",
    "PERMANENT_REDIRECT",
    "RETRYABLE",
    "TOO_MANY_REQUESTS",
    "UPLOAD_CHUNK_SIZE",
    "Checksum",
    "DataCorruption",
    "InvalidResponse",
    "RetryStrategy",
]

Checksum = Literal["md5", "crc32c", "auto", "both", None]
"""Every value a ``checksum=`` argument of this package may take: ``"auto"`` is CRC32C with a
fast CRC32C backend, else MD5; ``"both"`` (uploads through ``PipelinedUpload`` only) sends
and checks both; None checks nothing.  A class that takes fewer (a download takes no
``"both"``, a multipart upload no ``"md5"``) raises ``ValueError`` for the rest."""

UPLOAD_CHUNK_SIZE = 262144
"""int: Resumable-upload chunk sizes must be a multiple of this (256 KiB)."""

PERMANENT_REDIRECT = http.client.PERMANENT_REDIRECT
"""int: 308, the status GCS uses for "resumable upload incomplete"."""

TOO_MANY_REQUESTS = http.client.TOO_MANY_REQUESTS
"""int: 429, rate limited."""

MAX_SLEEP = 64.0
"""float: The largest single backoff sleep, in seconds."""

MAX_CUMULATIVE_RETRY = 600.0
"""float: Default total time, in seconds, that may be spent sleeping between retries."""

RETRYABLE = (
    http.client.TOO_MANY_REQUESTS,
    http.client.REQUEST_TIMEOUT,
    http.client.INTERNAL_SERVER_ERROR,
    http.client.BAD_GATEWAY,
    http.client.SERVICE_UNAVAILABLE,
    http.client.GATEWAY_TIMEOUT,
)
"""tuple: HTTP status codes that are retried."""


class InvalidResponse(Exception):
    """The server answered with a status or headers the protocol does not allow.

    Args:
        response: The HTTP response that caused the failure (transport specific).
        args: Further positional details, kept in ``args`` in the upstream layout,
            e.g. ``('Request failed with status code', 503, 'Expected one of', 200)``.
    """

    def __init__(self, response: Any, *args: Any) -> None:
        super().__init__(*args)
        self.response = response

    def __str__(self) -> str:
        """Upstream's text, then the server's own reason when it gave one.

        ``args`` keep upstream's layout; only the text adds, for an answer of 400 or more
        whose body has been read, what the server said (a JSON ``error.message`` or an XML
        ``<Message>``), e.g. ``('Request failed with status code', 400, 'Expected one of',
        200): the server said: Invalid argument.``
        """
        text = super().__str__()
        reason = server_reason(self.response)
        if reason and reason not in text:
            return f"{text}: the server said: {reason}"
        return text


_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)
_REASON_LIMIT = 300


def server_reason(response: Any) -> str | None:
    """What the server said about a failed request, from a body already read.

    Never reads a body itself (a streamed one may be a whole object): a ``requests``
    response counts only once its content was consumed; other objects (a worker's
    summary) by their ``text``.

    Returns:
        The JSON API's ``error.message``, the XML API's ``<Message>``, or None.
    """
    status = getattr(response, "status_code", None)
    if not isinstance(status, int) or status < 400:
        return None
    if getattr(response, "_content", True) is False:  # a requests body not read yet
        return None
    try:
        text = response.text
    except Exception:
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    reason: str | None = None
    try:
        payload = json.loads(text)
        message = payload["error"]["message"]
        reason = str(message)
    except (ValueError, KeyError, TypeError):
        found = _XML_MESSAGE.search(text)
        if found:
            reason = html.unescape(found.group(1))
    if not reason:
        return None
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


class DataCorruption(Exception):
    """The bytes received or stored do not match the checksum the other side reported.

    Args:
        response: The HTTP response whose body (or reported hash) did not verify.
        args: The human-readable message (a single string).
    """

    def __init__(self, response: Any, *args: Any) -> None:
        super().__init__(*args)
        self.response = response


class RetryStrategy:
    """How many times, and how long, a failed request may be retried.

    The wait before retry ``n`` is ``min(initial_delay * multiplier**(n-1), max_sleep)``
    plus up to one second of jitter.  By default retries stop once the total
    sleep would exceed :data:`MAX_CUMULATIVE_RETRY` seconds.

    Args:
        max_sleep: The largest single wait, in seconds.
        max_cumulative_retry: The total sleep budget in seconds.  Mutually
            exclusive with ``max_retries``.
        max_retries: The number of retries allowed (``0`` means one attempt).
        initial_delay: The first wait, in seconds, before jitter.
        multiplier: The factor by which each wait grows.
        jitter_s: The most random jitter added to each wait, in seconds (0 disables
            it; tests use 0 instead of patching the random source).
        deadline_s: Give up once a run of consecutive failures of one operation would
            last longer than this many seconds, whatever the other limits allow (None:
            no wall-clock limit).

    Raises:
        ValueError: If both ``max_cumulative_retry`` and ``max_retries`` are given.
    """

    def __init__(
        self,
        max_sleep: float = MAX_SLEEP,
        max_cumulative_retry: float | None = None,
        max_retries: int | None = None,
        initial_delay: float = 1.0,
        multiplier: float = 2.0,
        *,
        jitter_s: float = 1.0,
        deadline_s: float | None = None,
    ) -> None:
        if max_cumulative_retry is not None and max_retries is not None:
            raise ValueError(
                "At most one of `max_cumulative_retry` and `max_retries` can be specified."
            )
        if max_cumulative_retry is None and max_retries is None:
            max_cumulative_retry = MAX_CUMULATIVE_RETRY
        self.max_sleep = max_sleep
        self.max_cumulative_retry = max_cumulative_retry
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.multiplier = multiplier
        self.jitter_s = jitter_s
        self.deadline_s = deadline_s

    def retry_allowed(self, total_sleep: float, num_retries: int) -> bool:
        """Whether one more retry is allowed.

        Args:
            total_sleep: Total seconds slept so far, including the upcoming wait.
            num_retries: Retries made so far, including the upcoming one.

        Returns:
            True if the retry may go ahead.
        """
        if self.max_cumulative_retry is None:
            assert self.max_retries is not None
            return num_retries <= self.max_retries
        return total_sleep <= self.max_cumulative_retry

    def __repr__(self) -> str:
        return (
            f"RetryStrategy(max_sleep={self.max_sleep!r}, "
            f"max_cumulative_retry={self.max_cumulative_retry!r}, "
            f"max_retries={self.max_retries!r}, initial_delay={self.initial_delay!r}, "
            f"multiplier={self.multiplier!r})"
        )
