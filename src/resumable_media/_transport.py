"""The transport seam: what a transport is, sending one request, reading a body, retrying.

Invariants:
- The only module that talks to a transport object.  ``Transport`` is anything with
  ``request(method, url, data=, headers=, timeout=, [stream=])`` returning a
  ``requests.Response``-like object; a ``TransportFactory`` is a picklable zero-argument
  callable that builds one (one per worker thread or process).
- Bodies are read as *stored* bytes (never decoded by the transport) when the response
  exposes urllib3's ``raw``, in pieces of at most :data:`READ_SIZE`; every piece read is
  returned exactly once, so a caller that accounts for each piece can resume after a
  mid-body failure.  Responses without ``raw.readinto`` fall back to ``raw.read`` and then
  to ``iter_content`` (decoded by the transport; see :func:`body_is_decoded`).
- :class:`Retrying` is the one retry loop of the package: a failure is retried only if
  :func:`is_retryable_error` says so (the connection-error classes of
  google-resumable-media 2.11 and ``InvalidResponse`` with a status in
  ``common.RETRYABLE``), waits follow :class:`~resumable_media._protocol.retry.Backoff`,
  and every retry is logged at WARNING with a :class:`RetryNotice` (the status or the
  failure in words, and the origin ``scheme://host:port``: never a path, query, header
  or body, which may carry credentials or session ids).
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import pickle
import random
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar, cast

import requests
import requests.exceptions
import urllib3.exceptions
import urllib3.response

from resumable_media import common
from resumable_media._protocol.request import RequestSpec
from resumable_media._protocol.retry import Backoff, RandInt

__all__ = [
    "CONNECTION_ERROR_CLASSES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "READ_SIZE",
    "ChunkBuffer",
    "InProcess",
    "OnRetry",
    "RetryNotice",
    "Retrying",
    "Timeout",
    "Transport",
    "TransportFactory",
    "TransportSource",
    "as_transport",
    "body_is_decoded",
    "body_reader",
    "build_transport",
    "close_quietly",
    "describe_error",
    "failed_origin",
    "is_retryable_error",
    "is_session",
    "iter_body",
    "mark_consumed",
    "own_retry",
    "read_exactly",
    "round_trip",
    "send",
    "transport_source",
    "wait_and_retry",
]

_LOGGER = logging.getLogger(__name__)

Timeout = float | tuple[float, float] | None
"""Seconds to wait: one number for connect and read, a ``(connect, read)`` pair, or None
(no limit).  Every class of the package accepts this one type."""

DEFAULT_TIMEOUT: tuple[float, float] = (61, 60)
"""The (connect, read) timeout every I/O method uses unless told otherwise."""

DEFAULT_RETRY = common.RetryStrategy()
"""The default of every ``retry=`` parameter: "the default strategy" (about 10 minutes of
retries).  It is a sentinel, never handed out: :func:`own_retry` turns it into a fresh
strategy; ``retry=None`` means a single attempt everywhere."""

OnRetry = Callable[[int, BaseException, float], None]
"""``on_retry(retry_number, error, delay_s)``: called before sleeping for a retry
(``retry_number`` counts from 1; the error carries the response for HTTP failures)."""

_T = TypeVar("_T")


class Transport(Protocol):
    """What the package needs from a transport (``requests.Session``, ``AuthorizedSession``)."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send one HTTP request and return a ``requests.Response``-like object."""


class TransportFactory(Protocol):
    """A picklable zero-argument callable returning a new :class:`Transport`.

    See :mod:`resumable_media.transports` (``anonymous()``, ``google_default()``).
    """

    def __call__(self) -> Transport:
        """Build a transport (called once per worker thread)."""


@dataclasses.dataclass(frozen=True, eq=False)
class InProcess:
    """A transport source for jobs that never leave this process (``processes=0``).

    Attributes:
        transport: A session used as is by every thread (never closed here), or None.
        factory: An unpicklable factory (a lambda, a closure) called once per thread.
    """

    transport: Any = None
    factory: Callable[[], Any] | None = None


TransportSource = bytes | InProcess
"""What a job carries to find its transport: a pickled factory (any pool), or an
:class:`InProcess` handle (threads of this process only)."""


def is_session(obj: object) -> bool:
    """Whether ``obj`` looks like a transport (has a callable ``request``)."""
    return callable(getattr(obj, "request", None))


def transport_source(obj: object, *, processes: int, owner: str) -> TransportSource:
    """Turn the caller's transport argument into what jobs carry, or say what to pass.

    Args:
        obj: A transport factory (picklable zero-argument callable) or a session.
        processes: Worker processes the transfer may use (0: threads of this process).
        owner: The class name, for the messages.

    Returns:
        The pickled factory when it pickles, else an :class:`InProcess` handle.

    Raises:
        TypeError: A session or unpicklable factory with ``processes > 0``, or an object
            that is neither a factory nor a session.
    """
    if is_session(obj):
        if processes > 0:
            raise TypeError(
                f"{owner} with processes={processes} runs workers in other processes, which "
                f"cannot share a {type(obj).__name__}: pass a picklable transport factory "
                "(resumable_media.transports.anonymous() or google_default()), or "
                "processes=0 to use this session in this process"
            )
        return InProcess(transport=obj)
    if not callable(obj):
        raise TypeError(
            f"{owner} needs a transport factory (a picklable zero-argument callable such as "
            "resumable_media.transports.anonymous()) or a session (an object with "
            f".request(), e.g. requests.Session); got a {type(obj).__name__}"
        )
    try:
        return pickle.dumps(obj)
    except Exception as exc:
        if processes == 0:
            return InProcess(factory=obj)
        raise TypeError(
            f"{owner} with processes={processes} needs a picklable transport factory (a "
            "module-level function or class instance, e.g. resumable_media.transports."
            f"anonymous()); a {type(obj).__name__} cannot be pickled ({type(exc).__name__})"
        ) from None


def build_transport(factory: Callable[[], Any]) -> Transport:
    """Call a transport factory and check that it returned a session.

    Raises:
        TypeError: The factory returned something without ``.request()``.
    """
    transport = factory()
    if not is_session(transport):
        raise TypeError(
            f"the transport factory returned a {type(transport).__name__}, not a session "
            "(an object with .request(), e.g. requests.Session)"
        )
    return cast("Transport", transport)


def as_transport(obj: object, *, owner: str) -> tuple[Transport, bool]:
    """The transport for work done on the calling thread: a session as is, or a new one
    from a factory.

    Args:
        obj: A session or a transport factory.
        owner: The class name, for the message.

    Returns:
        ``(transport, owned)``: ``owned`` is True when it was built here (close it after).

    Raises:
        TypeError: ``obj`` is neither.
    """
    if is_session(obj):
        return cast("Transport", obj), False
    if callable(obj):
        return build_transport(obj), True
    raise TypeError(
        f"{owner} needs a session (an object with .request(), e.g. requests.Session) or a "
        f"transport factory (e.g. resumable_media.transports.anonymous()); got a "
        f"{type(obj).__name__}"
    )


def close_quietly(obj: object) -> None:
    """Close a response or transport, if it has ``close``; a failure is only logged (closing
    a broken connection may itself fail, and the caller's own error matters more)."""
    close = getattr(obj, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        _LOGGER.debug("closing a %s raised", type(obj).__name__, exc_info=True)


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
        if status is None:
            status = getattr(exc, "status", None)
        return status in common.RETRYABLE
    return isinstance(exc, CONNECTION_ERROR_CLASSES)


def describe_error(exc: BaseException) -> str:
    """A short, credential-free description of a failure, in words.

    ``HTTP 503`` for an answer; for a connection that failed, what happened to it
    ("connection refused", "connection reset", "timed out", "host name not found",
    "connection closed mid-response", "TLS error"); the class name otherwise.
    """
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is None:
        status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    return _connection_words(exc) or type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it (``__cause__``/``__context__``, urllib3's ``reason``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (
            getattr(item, "reason", None),
            item.__cause__,
            item.__context__,
            *(a for a in getattr(item, "args", ()) if isinstance(a, BaseException)),
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _connection_words(exc: BaseException) -> str | None:
    causes = list(_causes(exc))
    # The operating system's error, where there is one, says it best; urllib3's classes
    # are a fallback (its NewConnectionError is, historically, a ConnectTimeoutError).
    for item in causes:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
        if isinstance(item, BrokenPipeError | ConnectionAbortedError):
            return "connection closed by the server"
        if isinstance(item, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return "host name not found"
        if isinstance(item, ssl.SSLError | urllib3.exceptions.SSLError):
            return "TLS error"
        if isinstance(item, TimeoutError):
            return "timed out"
    for item in causes:
        if isinstance(item, urllib3.exceptions.TimeoutError | requests.exceptions.Timeout):
            return "timed out"
        if isinstance(
            item,
            http.client.IncompleteRead
            | requests.exceptions.ChunkedEncodingError
            | urllib3.exceptions.ProtocolError,
        ):
            return "connection closed mid-response"
    return None


def failed_origin(exc: BaseException) -> str | None:
    """``scheme://host[:port]`` of the request that failed, when the error knows it.

    Only the origin: never a path, query, user name or password (a session URL or a
    signed URL is a credential).
    """
    for item in _causes(exc):
        for holder in (getattr(item, "request", None), getattr(item, "response", None)):
            url = getattr(holder, "url", None)
            if isinstance(url, str) and "://" in url:
                parts = urllib.parse.urlsplit(url)
                host = parts.hostname or ""
                if ":" in host:
                    host = f"[{host}]"
                port = f":{parts.port}" if parts.port else ""
                return f"{parts.scheme}://{host}{port}"
        pool = getattr(item, "pool", None)
        if pool is not None and getattr(pool, "host", None):
            scheme = getattr(pool, "scheme", "http")
            port = f":{pool.port}" if getattr(pool, "port", None) else ""
            return f"{scheme}://{pool.host}{port}"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class RetryNotice:
    """What a retry log record carries (``record.rm_retry``), for a front end to show.

    Attributes:
        origin: ``scheme://host[:port]`` that failed, when known.
        reason: The failure in words (see :func:`describe_error`).
        retry: This retry's number within the current run of failures (1 = first).
        delay_s: The wait before the next attempt.
        deadline_s: How long a run of failures may last, if limited.
        giving_up: True on the last record, when no further attempt follows.
    """

    origin: str | None
    reason: str
    retry: int
    delay_s: float
    deadline_s: float | None
    giving_up: bool = False


class Retrying:
    """The retry loop: decides, logs and sleeps between the attempts of one operation.

    Either hand it the whole attempt (:meth:`call`), or call :meth:`backoff` from your own
    loop's ``except`` block (for loops whose attempts resume where the last one stopped).

    Args:
        strategy: The policy; None means exactly one attempt.
        progress_resets_backoff: When an attempt made progress (``progressed=True``, or
            the ``progress`` counter of :meth:`call` moved), the next failure starts a
            fresh backoff (waits and budget) and a fresh deadline: the outage it waits
            for is a new one.
        sleep: How to wait (tests pass a recorder; workers a cancellable sleep).
        rng: The jitter source (``randint``); the strategy's ``jitter_s`` scales it.
        on_retry: Called as ``on_retry(retry_number, error, delay_s)`` before each wait.
        deadline_s: Give up once a run of consecutive failures would last longer than
            this many seconds (default: the strategy's ``deadline_s``; None: no limit).
        what: What is retried, for the log line (e.g. ``"chunk 3"``).
    """

    def __init__(
        self,
        strategy: common.RetryStrategy | None,
        *,
        progress_resets_backoff: bool = False,
        sleep: Callable[[float], object] = time.sleep,
        rng: RandInt = random,
        on_retry: OnRetry | None = None,
        deadline_s: float | None = None,
        what: str = "request",
    ) -> None:
        self.strategy = strategy
        self.progress_resets_backoff = progress_resets_backoff
        self._sleep = sleep
        self._rng = rng
        self._on_retry = on_retry
        if deadline_s is None and strategy is not None:
            deadline_s = getattr(strategy, "deadline_s", None)
        self.deadline_s = deadline_s
        self.what = what
        self.retries = 0
        self._backoff: Backoff | None = None
        self._run_began = 0.0

    def backoff(
        self, exc: BaseException, *, progressed: bool = False, retryable: bool | None = None
    ) -> bool:
        """After a failed attempt: wait and return True if another attempt may follow.

        Args:
            exc: The failure.
            progressed: Whether the failed attempt made progress (see
                ``progress_resets_backoff``).
            retryable: Overrides :func:`is_retryable_error` (e.g. an accepted request
                that achieved nothing, retried within the budget).

        Returns:
            True after sleeping; False when the caller must re-raise ``exc`` (not
            retryable, no strategy, budget or deadline exhausted).
        """
        if self.strategy is None:
            return False
        if not (is_retryable_error(exc) if retryable is None else retryable):
            return False
        now = time.monotonic()
        if progressed:
            self.made_progress()
        if self._backoff is None:
            self._backoff = Backoff(self.strategy, self._rng)
            self._run_began = now
        wait = self._backoff.next_wait()
        if wait is None:
            return False
        reason, origin = describe_error(exc), failed_origin(exc)
        where = f" ({origin})" if origin else ""
        if self.deadline_s is not None and now + wait - self._run_began > self.deadline_s:
            notice = RetryNotice(origin, reason, self.retries + 1, 0.0, self.deadline_s, True)
            _LOGGER.warning(
                "%s%s: %s; giving up: retrying would exceed the %.0f s retry deadline",
                self.what,
                where,
                reason,
                self.deadline_s,
                extra={"rm_retry": notice},
            )
            return False
        self.retries += 1
        notice = RetryNotice(origin, reason, self._backoff.num_retries, wait, self.deadline_s)
        _LOGGER.warning(
            "%s%s: %s; retry %d in %.2f s",
            self.what,
            where,
            reason,
            self.retries,
            wait,
            extra={"rm_retry": notice},
        )
        if self._on_retry is not None:
            self._on_retry(self.retries, exc, wait)
        self._sleep(wait)
        return True

    def made_progress(self) -> None:
        """Record that the operation moved forward: with ``progress_resets_backoff`` the
        next failure starts a fresh backoff and deadline."""
        if self.progress_resets_backoff:
            self._backoff = None

    def call(self, func: Callable[[], _T], *, progress: Callable[[], int] | None = None) -> _T:
        """Call ``func`` until it succeeds, a non-retryable error occurs, or retries run out.

        Args:
            func: One attempt; it raises on failure.
            progress: A counter read before and after each attempt; when it grew, the
                attempt counts as progress (see ``progress_resets_backoff``).

        Returns:
            Whatever ``func`` returned on its successful attempt.

        Raises:
            Exception: The first non-retryable error, or the last retryable error
                once the strategy forbids another retry.
        """
        while True:
            before = progress() if progress is not None else 0
            try:
                return func()
            except Exception as exc:
                moved = progress is not None and progress() > before
                if not self.backoff(exc, progressed=moved):
                    raise


def wait_and_retry(
    func: Callable[[], _T],
    retry_strategy: common.RetryStrategy | None,
    sleep: Callable[[float], object] = time.sleep,
) -> _T:
    """``Retrying(retry_strategy, sleep=sleep).call(func)`` (the seed layer's spelling)."""
    return Retrying(retry_strategy, sleep=sleep).call(func)


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

    return Retrying(retry_strategy).call(attempt)


# -- body reading ------------------------------------------------------------------

READ_SIZE = 1024 * 1024
"""Bytes per read call: large enough that Python overhead is negligible, small
enough to stay in cache while it is hashed."""


def body_is_decoded(response: Any) -> bool:
    """Whether :func:`body_reader` will return transport-decoded bytes for ``response``.

    Args:
        response: A ``requests.Response``-like object.

    Returns:
        True when the response has no usable ``raw`` stream (the fallback path).
    """
    raw = getattr(response, "raw", None)
    return not (hasattr(raw, "readinto") or hasattr(raw, "read"))


def _direct(raw: Any) -> Callable[[memoryview], int] | None:
    # urllib3's readinto reads into a fresh bytes object and copies; the
    # http.client response underneath fills our buffer directly.  Only used
    # while urllib3 has buffered nothing of the body itself.
    fp = getattr(raw, "_fp", None)
    if not isinstance(raw, urllib3.response.HTTPResponse):
        return None
    if not isinstance(fp, http.client.HTTPResponse) or raw.closed:
        return None
    if getattr(raw, "_fp_bytes_read", 0) or len(getattr(raw, "_decoded_buffer", ())):
        return None

    def readinto(view: memoryview) -> int:
        try:
            count = fp.readinto(view)
        except TimeoutError as exc:
            raise requests.exceptions.ReadTimeout(f"Read timed out: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise urllib3.exceptions.ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        if not count and len(view):
            # http.client reports a body cut short as a plain end of data.
            missing = getattr(fp, "length", None)
            if missing:
                raise urllib3.exceptions.ProtocolError(
                    f"Connection broken: {missing} more bytes expected",
                    http.client.IncompleteRead(b"", missing),
                )
            raw.release_conn()
        return count

    return readinto


def body_reader(response: Any) -> Callable[[memoryview], int]:
    """A ``readinto``-like function over the response body (stored bytes when possible).

    Args:
        response: A streamed (``stream=True``) ``requests.Response``-like object.

    Returns:
        ``read(view) -> count``: fills up to ``len(view)`` bytes; 0 at the end of
        the body.
    """
    raw = getattr(response, "raw", None)
    direct = _direct(raw)
    if direct is not None:
        return direct
    readinto = getattr(raw, "readinto", None)
    if readinto is not None:
        return cast("Callable[[memoryview], int]", readinto)
    pieces = _fallback_pieces(response, raw)
    pending = memoryview(b"")

    def read(view: memoryview) -> int:
        nonlocal pending
        if not pending:
            pending = memoryview(next(pieces, b""))
        count = min(len(view), len(pending))
        view[:count] = pending[:count]
        pending = pending[count:]
        return count

    return read


def _fallback_pieces(response: Any, raw: Any) -> Iterator[bytes]:
    read = getattr(raw, "read", None)
    if read is None:
        yield from (data for data in response.iter_content(chunk_size=READ_SIZE) if data)
        return
    while True:
        try:
            data = read(READ_SIZE, decode_content=False)
        except TypeError:
            data = read(READ_SIZE)
        if not data:
            return
        yield data


def iter_body(response: Any, buffer: bytearray) -> Iterator[memoryview]:
    """Yield the body in pieces of up to ``len(buffer)`` bytes.

    Each yielded view aliases ``buffer`` and is valid until the next iteration.

    Args:
        response: A streamed (``stream=True``) ``requests.Response``-like object.
        buffer: The reusable buffer.

    Yields:
        Views of the bytes read.
    """
    read = body_reader(response)
    view = memoryview(buffer)
    while True:
        count = read(view)
        if not count:
            return
        yield view[:count]


def read_exactly(response: Any, view: memoryview) -> int:
    """Fill ``view`` from the body, reading in :data:`READ_SIZE` steps.

    Args:
        response: A streamed ``requests.Response``-like object.
        view: Where to put the bytes.

    Returns:
        The number of bytes read (less than ``len(view)`` only at end of body).
    """
    read = body_reader(response)
    filled = 0
    total = len(view)
    while filled < total:
        count = read(view[filled : min(filled + READ_SIZE, total)])
        if not count:
            break
        filled += count
    return filled


def mark_consumed(response: Any) -> None:
    """Mark a streamed response's content as consumed (as iterating it would).

    Args:
        response: The response whose body was read through ``raw``.
    """
    if hasattr(response, "_content_consumed"):
        response._content_consumed = True


class ChunkBuffer:
    """A reusable chunk buffer whose contents can be lent to a response lazily.

    ``response.content`` of a chunk response copies the chunk out of the buffer the
    first time it is asked for, as long as the buffer has not been refilled since;
    after that it raises instead of returning another chunk's bytes.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self.fills = 0

    def view(self, size: int) -> memoryview:
        """Return a writable view of ``size`` bytes, invalidating earlier loans.

        Args:
            size: The number of bytes needed.

        Returns:
            The view (aliases the buffer).
        """
        if len(self._data) < size:
            self._data = bytearray(size)
        self.fills += 1
        return memoryview(self._data)[:size]

    def lend(self, response: Any, length: int) -> None:
        """Make ``response.content`` return the first ``length`` bytes of the buffer.

        Args:
            response: A ``requests.Response`` (other objects are left alone).
            length: The chunk length.
        """
        if type(response) is not requests.Response:
            return
        response.__class__ = _ChunkResponse
        response.__dict__["_rm_loan"] = (self, self.fills, length)


class _ChunkResponse(requests.Response):
    """A response whose body was read into a :class:`ChunkBuffer`."""

    @property
    def content(self) -> bytes:
        """bytes: The chunk, copied out of the shared buffer on first access."""
        loan = self.__dict__.pop("_rm_loan", None)
        if loan is not None:
            owner, fills, length = loan
            if owner.fills != fills:
                raise RuntimeError(
                    "The content of this chunk response is no longer available: a later "
                    "chunk reused its buffer.  Read the bytes from the download's stream."
                )
            self._content = bytes(owner._data[:length])
        return super().content
