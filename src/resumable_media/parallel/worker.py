"""What a worker thread does with one job: a ranged GET into the temporary file, or one MPU part.

Invariants:
- Body bytes are read in ``READ_SIZE`` steps (through ``http.client``'s copy-free
  ``readinto`` when the transport is requests/urllib3) and each step is CRC32C'd while
  still hot, before it counts as done.  With ``write_mode="pwrite"`` a step lands in the
  thread's reused buffer and is ``pwrite``-n into place; with ``"mmap"`` it lands straight
  in the mapped slice of the temporary file.
- Every response is checked before a byte is kept: status 206, ``Content-Range`` exactly
  the range asked for (start, end and object size), and the pinned generation.
- A failing range resumes from the bytes already received, under the job's RetryStrategy;
  the backoff restarts whenever an attempt made progress.  Non-retryable errors propagate.
- Workers talk to the parent only through ``report(message_tuple)``; messages hold only
  ints, strings and ``ChunkError`` (never exceptions or responses), so they always pickle.
- Each thread builds its own transport from the pickled factory and keeps it for reuse.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import ranges
from resumable_media._transport import (
    READ_SIZE,
    InProcess,
    Retrying,
    TransportSource,
    body_reader,
    build_transport,
    is_retryable_error,
)
from resumable_media.parallel.plan import ChunkError, PartJob, RangeJob
from resumable_media.parallel.sink import map_range

__all__ = [
    "Cancelled",
    "Report",
    "check_range_response",
    "close_transports",
    "fetch_range",
    "flatten_error",
    "require_ok",
    "run_job",
    "send_part",
    "transport_for",
]

_LOGGER = logging.getLogger(__name__)

Report = Callable[[tuple[Any, ...]], None]
"""Posts one message tuple to the parent: ``(kind, transfer_id, index, ...)``."""

PROGRESS_INTERVAL_S = 0.1
"""float: Minimum seconds between progress messages of one job."""

_local = threading.local()
_MAX_TRANSPORTS = 4


class Cancelled(Exception):
    """The transfer this job belongs to was cancelled (a sibling failed, or Ctrl-C)."""


def transport_for(source: TransportSource) -> Any:
    """Return this thread's transport for a job's transport source, building it on first use.

    Args:
        source: ``pickle.dumps`` of a zero-argument transport factory, or an
            :class:`~resumable_media._transport.InProcess` handle (threads of this process).

    Returns:
        A requests-compatible transport, reused by later jobs on this thread (a caller's
        session is returned as is and never closed here).
    """
    if isinstance(source, InProcess) and source.transport is not None:
        return source.transport
    cache: dict[TransportSource, Any] | None = getattr(_local, "transports", None)
    if cache is None:
        cache = _local.transports = {}
    transport = cache.get(source)
    if transport is None:
        if len(cache) >= _MAX_TRANSPORTS:
            _key, old = cache.popitem()
            close = getattr(old, "close", None)
            if close is not None:
                close()
        if isinstance(source, InProcess):
            assert source.factory is not None
            transport = build_transport(source.factory)
        else:
            transport = build_transport(pickle.loads(source))
        cache[source] = transport
    return transport


def close_transports() -> None:
    """Close this thread's cached transports (their keep-alive connections)."""
    cache: dict[TransportSource, Any] = getattr(_local, "transports", None) or {}
    while cache:
        _key, transport = cache.popitem()
        close = getattr(transport, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                _LOGGER.debug("closing a transport raised", exc_info=True)


def flatten_error(exc: BaseException) -> ChunkError:
    """Reduce an exception to picklable strings.

    Args:
        exc: The failure.

    Returns:
        Its kind, message and (for HTTP failures) status.
    """
    if isinstance(exc, common.InvalidResponse):
        status = getattr(exc.response, "status_code", None)
        text = " ".join(str(arg) for arg in exc.args)
        return ChunkError("InvalidResponse", text, status if isinstance(status, int) else None)
    if isinstance(exc, common.DataCorruption):
        return ChunkError("DataCorruption", " ".join(str(arg) for arg in exc.args))
    if is_retryable_error(exc):
        return ChunkError("ConnectionError", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return ChunkError("OSError", f"{type(exc).__name__}: {exc}")
    return ChunkError("Error", f"{type(exc).__name__}: {exc}")


def _sleep_unless_cancelled(seconds: float, cancelled: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if cancelled():
            raise Cancelled
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.05))


def _close(response: Any) -> None:
    try:
        response.close()
    except Exception:  # closing a broken connection may itself fail
        _LOGGER.debug("closing a failed response raised", exc_info=True)


def _release(response: Any) -> None:
    """Return a fully read response's connection to the pool (keep-alive)."""
    raw = response.raw
    try:
        raw.drain_conn()
        raw.release_conn()
    except Exception:
        _close(response)


def require_ok(response: Any, accepted: tuple[int, ...] = (http.client.OK,)) -> Any:
    """Return ``response`` if its status is in ``accepted``; else raise InvalidResponse.

    The exception carries the first 500 characters of the body (the XML API explains its
    refusals there), after the upstream ``('Request failed with status code', status,
    'Expected one of', 200)`` layout.
    """
    if response.status_code not in accepted:
        raise common.InvalidResponse(
            response,
            "Request failed with status code",
            response.status_code,
            "Expected one of",
            200,
            response.text[:500],
        )
    return response


def check_range_response(
    response: Any, first: int, last: int, total: int | None, generation: int | None
) -> ranges.ContentRange:
    """Check a ranged GET's response against what was asked.

    Args:
        response: The streamed response.
        first: First byte asked for.
        last: Last byte asked for (inclusive).
        total: The object size the response must report, or None when not yet known.
        generation: The generation the response must report, or None.

    Returns:
        The parsed ``Content-Range``.

    Raises:
        InvalidResponse: A status other than 206, a ``Content-Range`` that differs from the
            request, or another generation (the object changed).
    """
    status = response.status_code
    if status != http.client.PARTIAL_CONTENT:
        raise common.InvalidResponse(
            response, "Request failed with status code", status, "Expected one of", 206
        )
    header = response.headers.get("content-range")
    try:
        received = ranges.parse_content_range(header or "")
    except ValueError:
        raise common.InvalidResponse(
            response, f"206 response without a valid Content-Range: {header!r}"
        ) from None
    size = received.total if total is None else total
    expected_last = last if size is None else min(last, size - 1)
    if received.start != first or received.end != expected_last or received.total != size:
        raise common.InvalidResponse(
            response,
            f"Content-Range {header!r} does not match the requested range "
            f"bytes={first}-{last} of a {total}-byte object",
        )
    got = response.headers.get("x-goog-generation")
    if generation is not None and got is not None and int(got) != generation:
        raise common.InvalidResponse(
            response, f"the object changed during the download: generation {got} != {generation}"
        )
    return received


class _MappedTarget:
    """Body bytes are read straight into the mapped slice of the temporary file."""

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def window(self, position: int, size: int) -> memoryview:
        return self._view[position : position + size]

    def keep(self, position: int, data: memoryview) -> None:
        """Nothing to do: the bytes are already in the file's pages."""


class _WrittenTarget:
    """Body bytes are read into this thread's reused buffer, then ``pwrite``-n into place."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._offset = offset
        buffer: memoryview | None = getattr(_local, "buffer", None)
        if buffer is None:
            buffer = _local.buffer = memoryview(bytearray(READ_SIZE))
        self._buffer = buffer

    def window(self, position: int, size: int) -> memoryview:
        return self._buffer[:size]

    def keep(self, position: int, data: memoryview) -> None:
        offset = self._offset + position
        while data:
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written


@contextlib.contextmanager
def _chunk_target(job: RangeJob) -> Iterator[_MappedTarget | _WrittenTarget]:
    """Where one chunk's body goes, according to ``job.write_mode``."""
    if job.write_mode == "mmap":
        with map_range(job.path, job.offset, job.length) as view:
            yield _MappedTarget(view)
        return
    fd = os.open(job.path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        yield _WrittenTarget(fd, job.offset)
    finally:
        os.close(fd)


class _Received:
    """How far one chunk got: bytes in place and their running CRC32C."""

    __slots__ = ("crc", "position")

    def __init__(self, position: int, crc: int) -> None:
        self.position = position
        self.crc = crc


def _open_range(transport: Any, job: RangeJob, position: int) -> Any:
    """Send the ranged GET for the rest of the chunk and check its headers."""
    first = job.start + position
    last = job.start + job.length - 1
    headers = dict(job.headers)
    headers["range"] = f"bytes={first}-{last}"
    response = transport.request("GET", job.url, headers=headers, stream=True, timeout=job.timeout)
    try:
        check_range_response(response, first, last, job.total, job.generation)
    except BaseException:
        _close(response)
        raise
    return response


def _read_range(
    response: Any,
    job: RangeJob,
    target: _MappedTarget | _WrittenTarget,
    received: _Received,
    report: Report,
    cancelled: Callable[[], bool],
) -> None:
    """Read the body into place in ``READ_SIZE`` steps, hashing each step while hot."""
    readinto = body_reader(response)
    last_report = time.monotonic()
    while received.position < job.length:
        if cancelled():
            raise Cancelled
        position = received.position
        window = target.window(position, min(READ_SIZE, job.length - position))
        count = readinto(window)
        if not count:
            raise ConnectionError(
                f"the response for bytes {job.start}-{job.start + job.length - 1} "
                f"ended after {position} of {job.length} bytes"
            )
        with window[:count] as piece:
            received.crc = checksums.crc32c(piece, received.crc)
            target.keep(position, piece)
        window.release()
        received.position = position + count
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            report(("progress", job.transfer_id, job.index, received.position, received.crc))


def fetch_range(
    transport: Any,
    job: RangeJob,
    report: Report,
    cancelled: Callable[[], bool],
    response: Any = None,
) -> tuple[int, int]:
    """Fetch one chunk into its place in the temporary file, resuming after failures.

    Args:
        transport: The thread's transport.
        job: The chunk to fetch.
        report: Posts progress messages to the parent.
        cancelled: Polled between reads; True aborts with ``Cancelled``.
        response: An already-open, already-checked response whose body starts at
            ``job.start + job.done`` (the parent's first request), or None.

    Returns:
        ``(bytes_done, crc32c)`` for the whole chunk.
    """
    received = _Received(job.done, job.crc)
    if received.position >= job.length:
        if response is not None:
            _close(response)
        return received.position, received.crc

    def before_retry(_number: int, _error: BaseException, _delay: float) -> None:
        report(("progress", job.transfer_id, job.index, received.position, received.crc))

    retrying = Retrying(
        job.retry,
        progress_resets_backoff=True,
        sleep=lambda seconds: _sleep_unless_cancelled(seconds, cancelled),
        on_retry=before_retry,
        what=f"chunk {job.index}",
    )
    with _chunk_target(job) as target:
        while True:
            attempt_start = received.position
            try:
                if response is None:
                    response = _open_range(transport, job, received.position)
                _read_range(response, job, target, received, report, cancelled)
                _release(response)
                return received.position, received.crc
            except Exception as exc:
                if response is not None:
                    _close(response)
                response = None
                if isinstance(exc, Cancelled) or not retrying.backoff(
                    exc, progressed=received.position > attempt_start
                ):
                    raise


def send_part(transport: Any, job: PartJob, cancelled: Callable[[], bool]) -> tuple[str, int]:
    """PUT one multipart-upload part straight from the mapped source file.

    Args:
        transport: The thread's transport.
        job: The part to send.
        cancelled: Polled between attempts.

    Returns:
        ``(etag, crc32c_of_the_part)``.

    Raises:
        InvalidResponse: A non-200 answer (after retries for retryable ones).
        DataCorruption: The server's part hash differs from the local one.
    """
    mapping = (
        map_range(job.path, job.offset, job.length, writable=False)
        if job.length
        else contextlib.nullcontext(memoryview(b""))
    )
    with mapping as view:
        crc = checksums.crc32c(view)
        crc_b64 = checksums.crc32c_to_b64(crc)
        headers = dict(job.headers)
        headers["x-goog-hash"] = f"crc32c={crc_b64}"
        headers["content-length"] = str(job.length)

        def attempt() -> Any:
            if cancelled():
                raise Cancelled
            response = transport.request(
                "PUT", job.url, data=view, headers=headers, timeout=job.timeout
            )
            return require_ok(response)

        response = Retrying(
            job.retry,
            sleep=lambda seconds: _sleep_unless_cancelled(seconds, cancelled),
            what=f"part {job.index + 1}",
        ).call(attempt)
    echoed = checksums.parse_goog_hash(response.headers.get("x-goog-hash")).get("crc32c")
    if echoed is not None and echoed != crc_b64:
        raise common.DataCorruption(
            response, f"part {job.index + 1}: server CRC32C {echoed} != local {crc_b64}"
        )
    etag = response.headers.get("etag")
    if not etag:
        raise common.InvalidResponse(response, f"part {job.index + 1}: response has no ETag")
    return str(etag), crc


def run_job(
    job: RangeJob | PartJob,
    report: Report,
    cancelled: Callable[[], bool],
    *,
    transport: Any = None,
    response: Any = None,
) -> None:
    """Run one job and post exactly one final message: done, cancelled or error.

    Args:
        job: The job.
        report: Posts messages to the parent.
        cancelled: Whether the job's transfer was cancelled.
        transport: The transport to use (default: this thread's, built from the factory).
        response: For a range job, an already-checked open response for its first bytes.
    """
    try:
        if cancelled():
            if response is not None:
                _close(response)
            raise Cancelled
        if transport is None:
            transport = transport_for(job.factory)
        if isinstance(job, RangeJob):
            done, crc = fetch_range(transport, job, report, cancelled, response)
            report(("done", job.transfer_id, job.index, done, crc, None))
        else:
            etag, crc = send_part(transport, job, cancelled)
            report(("done", job.transfer_id, job.index, job.length, crc, etag))
    except Cancelled:
        report(("cancelled", job.transfer_id, job.index))
    except BaseException as exc:
        _LOGGER.debug("job %d failed", job.index, exc_info=True)
        report(("error", job.transfer_id, job.index, flatten_error(exc)))
