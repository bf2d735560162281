"""What a worker thread does with one job: a ranged GET into the temporary file, or one MPU part.

Invariants:
- Body bytes are read in ``READ_SIZE`` steps (through ``http.client``'s copy-free
  ``readinto`` when the transport is requests/urllib3) and each step is CRC32C'd while
  still hot, before it counts as done.  With ``write_mode="pwrite"`` a step lands in the
  thread's reused buffer and is ``pwrite``-n into place; with ``"mmap"`` it lands straight
  in the mapped slice of the temporary file.
- Every response is judged by the core's :class:`~resumable_media._protocol.ranged.RangedRead`
  before a byte is kept (status 206, ``Content-Range`` exactly the range asked for, the
  object size and the pinned generation); this module only moves bytes.
- A failing range resumes from the bytes already received, under the job's RetryStrategy;
  the backoff restarts whenever an attempt made progress.  Non-retryable errors propagate.
- Workers talk to the parent only through ``report(message)``, with the frozen dataclasses
  of :mod:`~resumable_media.parallel.messages` (failures as a picklable ``RemoteError``).
- Each thread builds its own transport from the pickled factory and keeps it for reuse.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from resumable_media import checksums
from resumable_media._protocol.ranged import RangedRead
from resumable_media._protocol.xml_mpu import XMLMPUPartProtocol
from resumable_media._transport import (
    READ_SIZE,
    InProcess,
    Retrying,
    Timeout,
    TransportSource,
    body_reader,
    build_transport,
    close_quietly,
    send,
)
from resumable_media.parallel.messages import (
    JobCancelled,
    JobDone,
    JobFailed,
    JobMessage,
    JobProgress,
    RemoteError,
)
from resumable_media.parallel.plan import PartJob, RangeJob
from resumable_media.parallel.sink import map_range

__all__ = [
    "Cancelled",
    "Report",
    "close_transports",
    "fetch_range",
    "job_range",
    "run_job",
    "send_part",
    "transport_for",
]

_LOGGER = logging.getLogger(__name__)

Report = Callable[[JobMessage], None]
"""Posts one message to the parent."""

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
            close_quietly(cache.popitem()[1])
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
        close_quietly(cache.popitem()[1])


def _progress(job: RangeJob, ranged: RangedRead) -> JobProgress:
    return JobProgress(
        transfer_id=job.transfer_id, index=job.index, done=ranged.received, crc=ranged.crc
    )


def _sleep_unless_cancelled(seconds: float, cancelled: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if cancelled():
            raise Cancelled
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.05))


def _release(response: Any) -> None:
    """Return a fully read response's connection to the pool (keep-alive)."""
    raw = response.raw
    try:
        raw.drain_conn()
        raw.release_conn()
    except Exception:
        close_quietly(response)


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


def _open_range(transport: Any, ranged: RangedRead, timeout: Timeout) -> Any:
    """Send the ranged GET for the rest of the chunk and have its headers judged."""
    response = send(transport, ranged.prepare(), timeout, stream=True)
    try:
        ranged.process_headers(response, response.status_code, response.headers)
    except BaseException:
        close_quietly(response)
        raise
    return response


def _read_range(
    response: Any,
    job: RangeJob,
    target: _MappedTarget | _WrittenTarget,
    ranged: RangedRead,
    report: Report,
    cancelled: Callable[[], bool],
) -> None:
    """Read the body into place in ``READ_SIZE`` steps, hashing each step while hot."""
    readinto = body_reader(response)
    last_report = time.monotonic()
    while ranged.remaining > 0:
        if cancelled():
            raise Cancelled
        position = ranged.received
        window = target.window(position, min(READ_SIZE, ranged.remaining))
        count = readinto(window)
        if not count:
            raise ranged.cut_short()
        with window[:count] as piece:
            ranged.feed(piece)
            target.keep(position, piece)
        window.release()
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            report(_progress(job, ranged))


def job_range(job: RangeJob) -> RangedRead:
    """The ranged read of one chunk job, resumed from the bytes it already has."""
    return RangedRead(
        job.url,
        job.start,
        job.start + job.length - 1,
        total=job.total,
        generation=job.generation,
        headers=job.headers,
        received=job.done,
        crc=job.crc,
    )


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
    ranged = job_range(job)
    if ranged.remaining <= 0:
        if response is not None:
            close_quietly(response)
        return ranged.received, ranged.crc
    if response is not None:
        ranged.adopt()

    def before_retry(_number: int, _error: BaseException, _delay: float) -> None:
        report(_progress(job, ranged))

    retrying = Retrying(
        job.retry,
        progress_resets_backoff=True,
        sleep=lambda seconds: _sleep_unless_cancelled(seconds, cancelled),
        on_retry=before_retry,
        what=f"chunk {job.index}",
    )
    with _chunk_target(job) as target:
        while True:
            attempt_start = ranged.received
            try:
                if response is None:
                    response = _open_range(transport, ranged, job.timeout)
                _read_range(response, job, target, ranged, report, cancelled)
                _release(response)
                return ranged.received, ranged.crc
            except Exception as exc:
                if response is not None:
                    close_quietly(response)
                response = None
                if isinstance(exc, Cancelled) or not retrying.backoff(
                    exc, progressed=ranged.received > attempt_start
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
        InvalidResponse: A non-200 answer (after retries for retryable ones), or no ETag.
        DataCorruption: The server rejected the part's digest, or reported another hash.
    """
    mapping = (
        map_range(job.path, job.offset, job.length, writable=False)
        if job.length
        else contextlib.nullcontext(memoryview(b""))
    )
    part = XMLMPUPartProtocol(
        job.url,
        job.upload_id,
        job.path,
        job.offset,
        job.offset + job.length,
        job.index + 1,
        {**dict(job.headers), "content-length": str(job.length)},
        checksum="crc32c",
    )
    with mapping as view:
        spec = part._prepare_upload_request(view)

        def attempt() -> Any:
            if cancelled():
                raise Cancelled
            response = send(transport, spec, job.timeout)
            part._process_upload_response(
                response, response.status_code, response.headers, response.content
            )
            return response

        Retrying(
            job.retry,
            sleep=lambda seconds: _sleep_unless_cancelled(seconds, cancelled),
            what=f"part {job.index + 1}",
        ).call(attempt)
    assert part.etag is not None and part.local_checksum is not None
    return str(part.etag), checksums.crc32c_from_b64(part.local_checksum)


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
                close_quietly(response)
            raise Cancelled
        if transport is None:
            transport = transport_for(job.factory)
        if isinstance(job, RangeJob):
            done, crc = fetch_range(transport, job, report, cancelled, response)
            report(JobDone(transfer_id=job.transfer_id, index=job.index, done=done, crc=crc))
        else:
            etag, crc = send_part(transport, job, cancelled)
            report(
                JobDone(
                    transfer_id=job.transfer_id,
                    index=job.index,
                    done=job.length,
                    crc=crc,
                    etag=etag,
                )
            )
    except Cancelled:
        report(JobCancelled(transfer_id=job.transfer_id, index=job.index))
    except BaseException as exc:
        _LOGGER.debug("job %d failed", job.index, exc_info=True)
        error = RemoteError.of(exc)
        report(JobFailed(transfer_id=job.transfer_id, index=job.index, error=error))
