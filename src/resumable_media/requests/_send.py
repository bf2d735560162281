"""Sending one protocol request through a requests-compatible transport, and the retry loop.

Invariants: the only place where the requests layer sleeps.  A failure is retried
only if :func:`is_retryable_error` says so (the connection-error classes of
google-resumable-media 2.11 and ``InvalidResponse`` with a status in
``common.RETRYABLE``); everything else propagates at once, unchanged.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests.exceptions
import urllib3.exceptions

from resumable_media import common
from resumable_media._protocol.request import RequestSpec
from resumable_media._protocol.retry import Backoff

__all__ = [
    "CONNECTION_ERROR_CLASSES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "Timeout",
    "Transport",
    "is_retryable_error",
    "own_retry",
    "round_trip",
    "send",
    "wait_and_retry",
]

_LOGGER = logging.getLogger(__name__)

Timeout = float | tuple[float, float] | None
DEFAULT_TIMEOUT: tuple[float, float] = (61, 60)
"""The (connect, read) timeout every I/O method uses unless told otherwise."""

DEFAULT_RETRY = common.RetryStrategy()
"""The retry policy transfers start with (about 10 minutes of retries); never handed out."""


def own_retry(retry: common.RetryStrategy | None) -> common.RetryStrategy | None:
    """The strategy a transfer keeps: a fresh default for ``DEFAULT_RETRY``, else ``retry``.

    Each transfer gets its own default object (as upstream does), so code that tweaks
    ``transfer._retry_strategy.max_retries`` in place changes that transfer only.
    """
    return common.RetryStrategy() if retry is DEFAULT_RETRY else retry


CONNECTION_ERROR_CLASSES: tuple[type[BaseException], ...] = (
    http.client.BadStatusLine,
    http.client.IncompleteRead,
    http.client.ResponseNotReady,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.PoolError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.SSLError,
    urllib3.exceptions.TimeoutError,
    ConnectionError,
)
"""Exceptions that mean "the connection failed"; always retryable."""

_T = TypeVar("_T")


class Transport(Protocol):
    """What the requests layer needs from a transport (``requests.Session`` and friends)."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send one HTTP request and return a ``requests.Response``-like object."""


def is_retryable_error(exc: BaseException) -> bool:
    """Whether a failure should be retried.

    Args:
        exc: The exception raised by one attempt.

    Returns:
        True for connection-level failures and for ``InvalidResponse`` whose
        response status is in ``common.RETRYABLE``.
    """
    if isinstance(exc, common.InvalidResponse):
        status = getattr(exc.response, "status_code", None)
        return status in common.RETRYABLE
    return isinstance(exc, CONNECTION_ERROR_CLASSES)


def wait_and_retry(
    func: Callable[[], _T],
    retry_strategy: common.RetryStrategy | None,
    sleep: Callable[[float], object] = time.sleep,
) -> _T:
    """Call ``func`` until it succeeds, a non-retryable error occurs, or retries run out.

    Args:
        func: One attempt; it raises on failure.
        retry_strategy: The policy; None means exactly one attempt.
        sleep: The function used to wait (tests pass a recorder).

    Returns:
        Whatever ``func`` returned on its successful attempt.

    Raises:
        Exception: The first non-retryable error, or the last retryable error
            once the strategy forbids another retry.
    """
    if retry_strategy is None:
        return func()
    backoff = Backoff(retry_strategy)
    while True:
        try:
            return func()
        except Exception as exc:
            if not is_retryable_error(exc):
                raise
            wait = backoff.next_wait()
            if wait is None:
                raise
            _LOGGER.debug(
                "retry %d after %s: sleeping %.3f s", backoff.num_retries, type(exc).__name__, wait
            )
        sleep(wait)


def send(transport: Transport, spec: RequestSpec, timeout: Timeout, *, stream: bool = False) -> Any:
    """Send one request description through ``transport``.

    Args:
        transport: A requests-compatible transport.
        spec: The request to send.
        timeout: The (connect, read) timeout or a single number.
        stream: Whether to pass ``stream=True`` (the body is read by the caller).

    Returns:
        The transport's response object.
    """
    if stream:
        return transport.request(
            spec.method,
            spec.url,
            data=spec.body,
            headers=spec.headers,
            timeout=timeout,
            stream=True,
        )
    return transport.request(
        spec.method, spec.url, data=spec.body, headers=spec.headers, timeout=timeout
    )


def round_trip(
    transport: Transport,
    spec: RequestSpec,
    timeout: Timeout,
    process: Callable[[Any], object],
    retry_strategy: common.RetryStrategy | None,
) -> Any:
    """Send ``spec`` and hand each response to ``process``, retrying as the policy allows.

    Args:
        transport: A requests-compatible transport.
        spec: The request, re-sent unchanged on every attempt.
        timeout: (connect, read) seconds, or one number.
        process: Interprets a response; raises to reject it.
        retry_strategy: The policy; None means one attempt.

    Returns:
        The accepted response.
    """

    def attempt() -> Any:
        response = send(transport, spec, timeout)
        process(response)
        return response

    return wait_and_retry(attempt, retry_strategy)
