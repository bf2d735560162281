"""File-like objects over one Cloud Storage object: a read-ahead reader and a streaming writer.

Invariants:
- ``ObjectReader`` holds at most ``window`` chunk buffers (fetched, in flight or kept for
  reuse), so its memory is ``window x chunk_size`` whatever the object's size (``read()``
  of everything fills the caller's result instead); chunks come from ranged GETs pinned to
  the generation given or reported by the first response's headers, each
  ``Content-Range`` checked, and the first window of GETs starts at once.
- The reader folds each chunk's CRC32C in order while it is read sequentially from byte 0;
  the last chunk is checked against the object's CRC32C *before* any of its bytes are
  returned, so a corrupted object raises ``DataCorruption`` instead of reaching a clean
  EOF.  After a ``seek`` away from the sequential position nothing can be verified
  (``verified`` stays False), as with any ranged read.
- ``ObjectWriter`` feeds a ``PipelinedUpload`` (resumable, size unknown) through a bounded
  pipe: ``write`` blocks once ``2 x chunk_size`` bytes wait, so memory is bounded.  Only
  ``close`` finalizes the object, with ``x-goog-hash`` on the final request; a failure (or
  an exception inside a ``with`` block) cancels the session, so no object claiming to be
  the data is created.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import io
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from resumable_media import checksums, common
from resumable_media._protocol.ranged import RangedRead, add_generation, url_generation
from resumable_media._transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    READ_SIZE,
    Retrying,
    as_transport,
    body_reader,
    close_quietly,
    is_session,
    own_retry,
    read_exactly,
)
from resumable_media.parallel.plan import TransferResult
from resumable_media.parallel.progress import ProgressCallback, ProgressTracker

if TYPE_CHECKING:
    from resumable_media._objects.urls import Endpoint

__all__ = [
    "DEFAULT_READ_CHUNK",
    "DEFAULT_WINDOW",
    "ObjectReader",
    "ObjectWriter",
    "download_to_stream",
    "resolve_transport",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_READ_CHUNK = 8 * 2**20
"""int: Bytes per ranged GET of the reader."""

DEFAULT_WINDOW = 4
"""int: Chunks the reader keeps fetched or in flight ahead of the read position."""


class _Fetched:
    """One fetched chunk: its bytes, their CRC32C, and the pooled buffer under them."""

    __slots__ = ("buffer", "crc", "data")

    def __init__(self, data: memoryview, crc: int, buffer: bytearray | None) -> None:
        self.data = data
        self.crc = crc
        self.buffer = buffer


class _Stopped(Exception):
    """The reader was closed while a chunk was being fetched."""


def _release(response: Any) -> None:
    """Return a fully read response's connection to its pool (keep-alive), else close it."""
    raw = getattr(response, "raw", None)
    try:
        raw.drain_conn()  # type: ignore[union-attr]
        raw.release_conn()  # type: ignore[union-attr]
    except Exception:
        close_quietly(response)


class _Sessions:
    """One transport per thread, from a factory, or one shared session."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._local = threading.local()
        self._owned: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        if is_session(self._source):
            return self._source
        session = getattr(self._local, "session", None)
        if session is None:
            session, _owned = as_transport(self._source, owner="resumable_media.open")
            self._local.session = session
            with self._lock:
                self._owned.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            owned, self._owned = self._owned, []
        for session in owned:
            try:
                session.close()
            except Exception:
                _LOGGER.debug("closing a reader session raised", exc_info=True)


def _object_name(url: str) -> str:
    """``gs://bucket/name`` of a media URL, for messages (never the query string)."""
    import urllib.parse

    path = urllib.parse.urlsplit(url).path
    marker = "/b/"
    if marker in path:
        bucket, _, rest = path.split(marker, 1)[1].partition("/o/")
        return f"gs://{urllib.parse.unquote(bucket)}/{urllib.parse.unquote(rest)}"
    return urllib.parse.unquote(path)


class ObjectReader(io.RawIOBase):
    """A seekable raw reader of one object with parallel read-ahead.

    Wrap it in ``io.BufferedReader`` (``resumable_media.open`` does) for line and small
    reads.

    Start-up: with ``size`` and a generation (``generation``, or one in the URL) given, the
    constructor sends nothing and the first read starts its whole window of ranged GETs at
    once (a missing object then fails on that read).  Otherwise the constructor sends the
    first GET (bytes of chunk 0) and returns as soon as its headers have told the size,
    generation and CRC32C; that chunk's body is read in the background, so the first read
    releases the rest of the window at once instead of after the body.

    Memory: at most ``window`` chunk buffers (``window x chunk_size`` bytes) are fetched, in
    flight or kept for reuse; a seek abandons the chunks in flight, whose buffers are freed
    when they finish.  ``read()``/``readall()`` and a ``readinto`` of a large buffer fetch
    whole chunks straight into the caller's memory, ``threads`` at a time.

    Args:
        media_url: The object's media URL (``…/o/NAME?alt=media``).
        transport: A transport factory (one session per fetching thread) or a session.
        headers: Extra headers for every request (e.g. encryption-key headers).
        chunk_size: Bytes per ranged GET.
        window: Chunks fetched ahead (memory: ``window x chunk_size``).
        threads: Concurrent GETs (at most ``window``).
        checksum: "crc32c" (default) or None.
        retry: The retry policy (default: a fresh default strategy; None: one attempt).
        timeout: The (connect, read) timeout.
        size: The object's size, when known (e.g. from a listing).
        generation: The object's generation, when known (every read is pinned to it).
        crc32c: The object's CRC32C (base64), when known; otherwise the one the responses
            report (``x-goog-hash``).

    Raises:
        InvalidResponse: The first request failed (e.g. 404); only when it is sent here.
    """

    def __init__(
        self,
        media_url: str,
        transport: Any,
        *,
        headers: dict[str, str] | None = None,
        chunk_size: int = DEFAULT_READ_CHUNK,
        window: int = DEFAULT_WINDOW,
        threads: int | None = None,
        checksum: common.Checksum = "crc32c",
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        size: int | None = None,
        generation: int | None = None,
        crc32c: str | None = None,
    ) -> None:
        super().__init__()
        if chunk_size <= 0 or window <= 0:
            raise ValueError("chunk_size and window must be positive")
        if size is not None and size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        if checksum not in ("crc32c", "auto", None):
            raise ValueError(f"the reader checks crc32c or nothing, not {checksum}")
        self.name = _object_name(media_url)
        self.chunk_size = chunk_size
        self.window = window
        self.checksum = checksum
        self.headers = dict(headers or {})
        self.retry = own_retry(retry)
        self.timeout = timeout
        self._sessions = _Sessions(transport)
        self._position = 0
        self._pending: collections.OrderedDict[int, concurrent.futures.Future[_Fetched]] = (
            collections.OrderedDict()
        )
        self._free: list[bytearray] = []  # buffers of consumed chunks, for the next ones
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._threads = max(1, min(threads or 2, window))
        self._crc = 0
        self._crc_position = 0
        self._failed: BaseException | None = None
        self._stopping = False
        self.verified = False
        if generation is None:
            generation = url_generation(media_url)
        if size is not None and generation is not None:
            self.size = size
            self.generation = generation
            self.crc32c = crc32c
            self._url = add_generation(media_url, generation)
            if size == 0:
                with contextlib.suppress(common.DataCorruption):  # raised by the first read
                    self._check_end()
            return
        try:
            self._probe(media_url, crc32c)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ the object's facts

    size: int
    """int: The object's size in bytes."""

    generation: int | None
    """The generation every read is pinned to."""

    crc32c: str | None
    """The object's CRC32C (base64) as given or as the server reported it, or None."""

    def _probe(self, url: str, crc32c: str | None) -> None:
        """The first ranged GET: learn size, generation and hash from its headers; its body
        (chunk 0) is read by a fetching thread."""

        def attempt() -> tuple[RangedRead, Any, int]:
            ranged = RangedRead(url, 0, self.chunk_size - 1, headers=self.headers, probe=True)
            response = self._send(ranged)
            try:
                status = ranged.process_headers(response, response.status_code, response.headers)
            except BaseException:
                close_quietly(response)
                raise
            return ranged, response, status

        ranged, response, status = Retrying(self.retry, what="first read").call(attempt)
        try:
            hashes = checksums.parse_goog_hash(response.headers.get("x-goog-hash"))
            self.crc32c = crc32c or hashes.get("crc32c")
            self.generation = ranged.generation
            if status == 200:  # the range ignored: the whole object follows
                length = int(response.headers.get("content-length", "-1"))
                if length < 0:
                    raise common.InvalidResponse(
                        response, f"{self.name}: the server did not say how large it is"
                    )
                self.size = length
            else:
                assert ranged.total is not None
                self.size = ranged.total
            self._url = add_generation(url, self.generation)
        except BaseException:
            close_quietly(response)
            raise
        if status == 416 or self.size == 0:  # an empty object has no byte 0
            close_quietly(response)
            self._check_end()
        elif status == 200:
            try:
                self._pending[0] = _done(self._first_of_whole(response))
            finally:
                close_quietly(response)
        else:
            self._pending[0] = self._submit(0, (ranged, response))

    def _first_of_whole(self, response: Any) -> _Fetched:
        """Chunk 0 of a 200 (the server ignored the range): read as far as its end only."""
        buffer = bytearray(min(self.size, self.chunk_size))
        got = read_exactly(response, memoryview(buffer))
        if got != len(buffer):
            raise ConnectionError(f"{self.name}: the first read ended after {got} bytes")
        return _Fetched(memoryview(buffer), checksums.crc32c(buffer), buffer)

    def _send(self, ranged: RangedRead) -> Any:
        spec = ranged.prepare()
        return self._sessions.get().request(
            spec.method, spec.url, headers=spec.headers, timeout=self.timeout, stream=True
        )

    def _submit(
        self,
        index: int,
        opened: tuple[RangedRead, Any] | None = None,
        into: memoryview | None = None,
    ) -> concurrent.futures.Future[_Fetched]:
        """Start fetching chunk ``index`` into ``into`` (its exact length), else into a
        pooled buffer (taken here, in the reading thread, or allocated by the fetching
        thread, where zeroing it overlaps the other fetches)."""
        buffer = None
        if into is None and self._free:
            buffer = self._free.pop()
            into = self._place(index, buffer)
        future = self._pool().submit(self._fetch, index, into, buffer, opened)
        future.pooled = buffer  # type: ignore[attr-defined]
        future.opened = opened  # type: ignore[attr-defined]
        return future

    @staticmethod
    def _cancel(future: concurrent.futures.Future[_Fetched]) -> bool:
        """Cancel a fetch that has not started (closing the response it was handed)."""
        if not future.cancel():
            return False
        opened = getattr(future, "opened", None)
        if opened is not None:
            close_quietly(opened[1])
        return True

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The fetching threads, all started before the first fetch is queued: a thread
        started while others already fetch waits for the GIL (about 50 ms each on a busy
        2-core machine), which delayed the last GETs of the first window."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self._threads, thread_name_prefix="resumable-media-readahead"
            )
            concurrent.futures.wait([self._executor.submit(int) for _ in range(self._threads)])
        return self._executor

    def _place(self, index: int, buffer: bytearray) -> memoryview:
        """The part of a pooled ``buffer`` that chunk ``index`` fills."""
        start = index * self.chunk_size
        return memoryview(buffer)[: min(start + self.chunk_size, self.size) - start]

    def _fetch(
        self,
        index: int,
        into: memoryview | None,
        buffer: bytearray | None,
        opened: tuple[RangedRead, Any] | None,
    ) -> _Fetched:
        """Fetch chunk ``index`` into ``into``, else into a new pooled buffer, resuming
        after a failure from the first byte missing (``opened``: the first read's judged
        response for chunk 0)."""
        if into is None:
            buffer = bytearray(min(self.chunk_size, self.size))
            into = self._place(index, buffer)
        if opened is not None:
            ranged, response = opened
        else:
            start = index * self.chunk_size
            ranged = RangedRead(
                self._url,
                start,
                start + len(into) - 1,
                total=self.size,
                generation=self.generation,
                headers=self.headers,
            )
            response = None
        retrying = Retrying(self.retry, progress_resets_backoff=True, what=f"chunk {index}")
        while True:
            before = ranged.received
            try:
                if response is None:
                    response = self._send(ranged)
                    # Judged by the core's ranged-read rules: a 206 for exactly the bytes
                    # missing, of an object of the size and generation already known.
                    status = ranged.process_headers(
                        response, response.status_code, response.headers
                    )
                    if status != 206:
                        raise common.InvalidResponse(
                            response,
                            f"{self.name}: HTTP {status} to a ranged read of chunk {index}",
                        )
                    if self.crc32c is None:
                        hashes = checksums.parse_goog_hash(response.headers.get("x-goog-hash"))
                        self.crc32c = hashes.get("crc32c")
                self._read_body(response, ranged, into)
                _release(response)
                return _Fetched(into, ranged.crc, buffer)
            except Exception as exc:
                if response is not None:
                    close_quietly(response)
                    response = None
                if self._stopping or not retrying.backoff(exc, progressed=ranged.received > before):
                    raise

    def _read_body(self, response: Any, ranged: RangedRead, into: memoryview) -> None:
        """Read the rest of the range into place, CRC32C-ing each step while it is hot."""
        read = body_reader(response)
        while ranged.remaining:
            if self._stopping:
                raise _Stopped(f"{self.name}: the reader was closed")
            at = ranged.received
            step = into[at : at + min(READ_SIZE, ranged.remaining)]
            count = read(step)
            if not count:
                raise ranged.cut_short()
            ranged.feed(step[:count])

    # ------------------------------------------------------------ read-ahead

    def _count(self) -> int:
        return -(-self.size // self.chunk_size)

    def _recycle(self, fetched: _Fetched) -> None:
        """Keep a consumed chunk's buffer for a later chunk (within the window)."""
        if fetched.buffer is not None and len(self._free) + len(self._pending) < self.window:
            self._free.append(fetched.buffer)

    def _drop(self, future: concurrent.futures.Future[_Fetched]) -> None:
        """Abandon a chunk: cancel it if it has not started; reuse its buffer if possible."""
        pooled: bytearray | None = getattr(future, "pooled", None)
        if self._cancel(future):
            if pooled is not None and len(self._free) < self.window:
                self._free.append(pooled)
        elif future.done() and future.exception() is None:
            self._recycle(future.result())

    def _schedule(self, index: int) -> None:
        for stale in [i for i in self._pending if i < index or i >= index + self.window]:
            self._drop(self._pending.pop(stale))
        for wanted in range(index, min(index + self.window, self._count())):
            if wanted not in self._pending:
                self._pending[wanted] = self._submit(wanted)

    def _read_ahead(self, index: int) -> None:
        """Start the chunks from ``index`` on that fit in the window (after a ``_fill``)."""
        for wanted in range(index, min(index + self.window, self._count())):
            if len(self._pending) >= self.window:
                return
            if wanted not in self._pending:
                self._pending[wanted] = self._submit(wanted)

    def _fold(self, index: int, fetched: _Fetched) -> None:
        """Fold chunk ``index`` into the running CRC32C when it is the next in order."""
        start = index * self.chunk_size
        if self.checksum is not None and self._crc_position == start:
            self._crc = checksums.crc32c_combine(self._crc, fetched.crc, len(fetched.data))
            self._crc_position = start + len(fetched.data)
            self._check_end()

    def _chunk(self, index: int) -> _Fetched:
        """Chunk ``index``, its window scheduled (folded into the CRC32C when in order)."""
        self._schedule(index)
        fetched = self._pending[index].result()
        self._fold(index, fetched)
        return fetched

    def _check_end(self) -> None:
        if self._crc_position != self.size or self.checksum is None or self.crc32c is None:
            return
        local = checksums.crc32c_to_b64(self._crc)
        if local != self.crc32c:
            error = common.DataCorruption(
                None,
                f"{self.name}: the bytes read have CRC32C {local} but the object's is "
                f"{self.crc32c}; the data is corrupt (read it again)",
            )
            self._failed = error
            raise error
        self.verified = True

    # ------------------------------------------------------------ RawIOBase

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._position + offset
        elif whence == os.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise OSError(22, f"{self.name}: cannot seek to {target}, before the start")
        self._position = target
        return target

    def _ready(self) -> None:
        self._checkClosed()
        if self._failed is not None:
            raise self._failed

    def readinto(self, buffer: Any) -> int:
        self._ready()
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self._position))
        if wanted >= self.chunk_size:  # whole chunks go straight into the caller's buffer
            return self._fill(view[:wanted])
        filled = 0
        while filled < wanted:
            index, offset = divmod(self._position, self.chunk_size)
            fetched = self._chunk(index)
            count = min(wanted - filled, len(fetched.data) - offset)
            view[filled : filled + count] = fetched.data[offset : offset + count]
            filled += count
            self._position += count
            if offset + count == len(fetched.data):
                self._pending.pop(index, None)
                self._recycle(fetched)
        return filled

    def readall(self) -> bytes:
        """The rest of the object, fetched straight into the result (no copy).

        The result is a ``bytes`` object owned by an ``io.BytesIO`` whose buffer the ranged
        GETs fill through ``getbuffer()``; ``getvalue()`` then hands that same object over
        (CPython does not copy an unshared, exactly sized buffer; elsewhere it is one copy).
        Chunks already fetched ahead are copied in; the others land in place.
        """
        self._ready()
        remaining = self.size - self._position
        if remaining <= 0:
            return b""
        result = io.BytesIO(bytes(remaining))
        view = result.getbuffer()
        try:
            self._fill(view)
        finally:
            view.release()
        return result.getvalue()

    def _fill(self, view: memoryview) -> int:
        """Fill ``view`` (at most the rest of the object) from the position on.

        Whole chunks not yet fetched are fetched into their place in ``view``, ``threads``
        at a time; chunks already fetched or in flight, and the partial chunks at either
        end, are copied from the read-ahead buffers (a partial last chunk stays there for
        the next read).
        """
        base = self._position
        end = base + len(view)
        size = self.chunk_size
        plan: list[tuple[int, concurrent.futures.Future[_Fetched], memoryview, int, bool]] = []
        for index in range(base // size, (end - 1) // size + 1):
            first, last = index * size, min((index + 1) * size, self.size)
            low, high = max(base, first), min(end, last)
            place = view[low - base : high - base]
            whole = low == first and high == last
            future = self._pending.get(index)
            started = future is not None and getattr(future, "opened", None) is not None
            if whole and future is not None and not started and self._cancel(future):
                self._drop(self._pending.pop(index))
                future = None
            if whole and future is None:
                plan.append((index, self._submit(index, into=place), place, 0, True))
                continue
            if future is None:
                future = self._pending[index] = self._submit(index)
            plan.append((index, future, place, low - first, False))
        self._read_ahead((end - 1) // size + 1)
        try:
            for index, future, place, offset, direct in plan:
                fetched = future.result()
                if not direct:
                    place[:] = fetched.data[offset : offset + len(place)]
                self._fold(index, fetched)
                self._position = index * size + offset + len(place)
                if not direct and offset + len(place) == len(fetched.data):
                    self._pending.pop(index, None)
                    self._recycle(fetched)
        except BaseException:
            placed = [future for _, future, _, _, direct in plan if direct]
            for future in placed:
                self._cancel(future)
            concurrent.futures.wait(placed)  # nothing may write into view later
            raise
        return len(view)

    def iter_chunks(self) -> Any:
        """Yield the rest of the object chunk by chunk (memoryviews, valid until the next:
        the buffer is then reused).

        Raises:
            DataCorruption: Before the last chunk, when the whole object does not verify.
        """
        self._ready()
        while self._position < self.size:
            index, offset = divmod(self._position, self.chunk_size)
            fetched = self._chunk(index)
            self._pending.pop(index, None)
            self._position += len(fetched.data) - offset
            yield fetched.data[offset:]
            self._recycle(fetched)

    def close(self) -> None:
        if self.closed:
            return
        self._stopping = True
        for future in self._pending.values():
            self._cancel(future)
        self._pending.clear()
        self._free.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._sessions.close()
        super().close()


def _done(fetched: _Fetched) -> concurrent.futures.Future[_Fetched]:
    future: concurrent.futures.Future[_Fetched] = concurrent.futures.Future()
    future.set_result(fetched)
    return future


def download_to_stream(
    media_url: str,
    target: Any,
    transport: Any,
    *,
    headers: dict[str, str] | None = None,
    chunk_size: int = DEFAULT_READ_CHUNK,
    threads: int | None = None,
    checksum: common.Checksum = "crc32c",
    start: int | None = None,
    end: int | None = None,
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
) -> TransferResult:
    """Copy an object into a writable binary stream, or into a writable buffer.

    The stream receives bytes in order (a pipe works) and at most
    ``max(4, threads) x chunk_size`` bytes are held.  A buffer (bytearray, memoryview,
    mmap) must be at least as long as the range.

    Returns:
        The result (``verified`` when the whole object was read and its CRC32C matched).

    Raises:
        DataCorruption: The object does not verify; the last chunk was not written.
        ValueError: A buffer too small, or a target that is neither stream nor buffer.
    """
    if checksum not in ("crc32c", "auto", None):
        checksum = "crc32c"
    began = time.monotonic()
    from resumable_media.parallel.sink import StreamSink

    sink = StreamSink(target)
    reader = ObjectReader(
        media_url,
        transport,
        headers=headers,
        chunk_size=chunk_size,
        window=max(DEFAULT_WINDOW, threads or 2),
        threads=threads,
        checksum=checksum,
        retry=retry,
    )
    with reader:
        first = start or 0
        last = reader.size - 1 if end is None else min(end, reader.size - 1)
        total = max(0, last - first + 1)
        sink.open(total)
        tracker = ProgressTracker(progress, total)
        reader.seek(first)
        done = 0
        for piece in reader.iter_chunks():
            take = min(len(piece), total - done)
            if take <= 0:
                break
            sink.write(done, piece[:take])
            done += take
            tracker.set(0, done)
            tracker.tick()
        tracker.tick(force=True)
        sink.commit()
        seconds = max(time.monotonic() - began, 1e-9)
        full = first == 0 and last == reader.size - 1
        return TransferResult(
            bytes=done,
            seconds=seconds,
            throughput=done / seconds,
            crc32c=checksums.crc32c_to_b64(reader._crc) if full and reader.verified else None,
            md5=None,
            verified=full and reader.verified,
            generation=reader.generation,
        )


class _Pipe:
    """A bounded byte pipe between ``write`` (the user's thread) and the upload's reader."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pieces: collections.deque[bytes] = collections.deque()
        self._held = 0
        self._eof = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def put(self, data: bytes) -> None:
        with self._cond:
            while self._held >= self._limit and self._error is None and not self._eof:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._pieces.append(data)
            self._held += len(data)
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._eof = True
            if error is not None and self._error is None:
                self._error = error
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The consumer stopped: wake a blocked ``put`` with ``error``."""
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def readinto(self, view: memoryview) -> int:
        with self._cond:
            while not self._pieces and not self._eof:
                self._cond.wait()
            if self._error is not None and self._eof:
                raise self._error
            filled = 0
            while self._pieces and filled < len(view):
                piece = self._pieces[0]
                count = min(len(piece), len(view) - filled)
                view[filled : filled + count] = piece[:count]
                filled += count
                if count == len(piece):
                    self._pieces.popleft()
                else:
                    self._pieces[0] = piece[count:]
                self._held -= count
            self._cond.notify_all()
            return filled

    def seekable(self) -> bool:
        return False


class _Cancelled(Exception):
    """The writer was closed after an error: its upload must not complete."""


class ObjectWriter(io.RawIOBase):
    """A write-only stream uploading to one object (pipelined resumable, size unknown).

    Args:
        upload: A configured ``PipelinedUpload``.
        transport: A session or transport factory.
        metadata: The object resource (at least ``name``).
        content_type: The object's content type.
        name: ``gs://bucket/name``, for messages.
        progress: ``progress(bytes_acknowledged, None)``.
        object_url: The object's JSON API URL: when the upload was finalized but does not
            verify (``DataCorruption``), an object there whose size or CRC32C differs from
            what was written is deleted (pinned to its generation), so none claims to be
            the data.
    """

    def __init__(
        self,
        upload: Any,
        transport: Any,
        metadata: dict[str, Any],
        content_type: str,
        *,
        name: str,
        progress: ProgressCallback | None = None,
        object_url: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self._object_url = object_url
        self._crc = 0
        self._upload = upload
        self._transport = transport
        self._pipe = _Pipe(2 * upload.chunk_size)
        self._written = 0
        self.result: TransferResult | None = None
        self._error: BaseException | None = None
        self._aborted = False

        def run() -> None:
            try:
                self.result = upload.transmit(
                    transport, self._pipe, metadata, content_type, progress=progress
                )
            except BaseException as exc:
                self._error = exc
                self._pipe.fail(exc)

        self._thread = threading.Thread(target=run, name="resumable-media-writer", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        self._checkClosed()
        if self._error is not None:
            raise self._error
        piece = bytes(data)
        if piece:
            self._crc = checksums.crc32c(piece, self._crc)
            self._pipe.put(piece)
            self._written += len(piece)
        return len(piece)

    def abort(self) -> None:
        """Stop without creating the object (the session is cancelled)."""
        if self.closed:
            return
        self._aborted = True
        self._pipe.finish(_Cancelled(f"{self.name}: the upload was abandoned"))
        self._thread.join()
        self._cancel_session()
        super().close()

    def _cancel_session(self) -> None:
        """Cancel the resumable session (DELETE), so it can never be completed."""
        url = getattr(self._upload, "resumable_url", None)
        if url is None:
            return
        try:
            session, owned = as_transport(self._transport, owner="ObjectWriter")
            try:
                session.request("DELETE", url, headers=dict(self._upload.headers), timeout=10)
            finally:
                if owned:
                    session.close()  # type: ignore[attr-defined]
        except Exception:
            _LOGGER.debug("cancelling the upload session failed", exc_info=True)

    def __del__(self) -> None:
        # Never finalize on garbage collection: an unclosed writer may hold partial data.
        if not getattr(self, "closed", True):
            self.abort()

    def close(self) -> None:
        """Finish the upload: the object exists only if this returns.

        Raises:
            DataCorruption: The stored object does not match what was written.
            InvalidResponse: The server refused the upload.
        """
        if self.closed:
            return
        self._pipe.finish()
        self._thread.join()
        super().close()
        if self._error is not None:
            self._cancel_session()
            if isinstance(self._error, common.DataCorruption):
                self._discard_mismatch()
            raise self._error

    def _discard_mismatch(self) -> None:
        """Delete a finalized object that is not what was written (its generation pinned)."""
        if self._object_url is None:
            return
        try:
            session, owned = as_transport(self._transport, owner="ObjectWriter")
            try:
                headers = dict(self._upload.headers)
                response = session.request(
                    "GET", self._object_url, headers=headers, timeout=DEFAULT_TIMEOUT
                )
                if response.status_code != 200:
                    return
                resource = response.json()
                same = int(resource.get("size", -1)) == self._written and resource.get(
                    "crc32c"
                ) == checksums.crc32c_to_b64(self._crc)
                if same:
                    return
                _LOGGER.warning("%s: deleting the stored object, which does not verify", self.name)
                separator = "&" if "?" in self._object_url else "?"
                url = f"{self._object_url}{separator}ifGenerationMatch={resource['generation']}"
                session.request("DELETE", url, headers=headers, timeout=DEFAULT_TIMEOUT)
            finally:
                if owned:
                    session.close()  # type: ignore[attr-defined]
        except Exception:
            _LOGGER.warning("%s: could not check or delete the stored object", self.name)

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:
            self.abort()
        else:
            self.close()


def resolve_transport(endpoint: str | None, transport: Any) -> tuple[Endpoint, Any]:
    """The endpoint (``endpoint``, else ``STORAGE_EMULATOR_HOST``, else Cloud Storage) and
    the transport for it (``transport``, else anonymous for an emulator and Application
    Default Credentials for Cloud Storage): one rule for ``open`` and ``gcsx``.

    Raises:
        ValueError: An endpoint that is not an http(s) URL.
    """
    from resumable_media import transports
    from resumable_media._objects.urls import resolve_endpoint

    where = resolve_endpoint(endpoint)
    if transport is None:
        transport = transports.google_default() if where.authenticated else transports.anonymous()
    return where, transport


def open_url(
    url: str,
    mode: str = "rb",
    *,
    endpoint: str | None = None,
    transport: Any = None,
    chunk_size: int | None = None,
    window: int = DEFAULT_WINDOW,
    threads: int | None = None,
    checksum: common.Checksum = "crc32c",
    headers: dict[str, str] | None = None,
    generation: int | None = None,
    size: int | None = None,
    crc32c: str | None = None,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
    if_generation_match: int | None = None,
    buffer_size: int = io.DEFAULT_BUFFER_SIZE,
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
) -> Any:
    """Open ``gs://bucket/name`` as a binary file, for reading or for writing.

    ``"rb"`` returns an ``io.BufferedReader`` over an :class:`ObjectReader`: parallel
    read-ahead (``window`` chunks of ``chunk_size``: at most ``window x chunk_size`` bytes
    held; ``read()`` of everything lands in the result directly), ``seek``/``tell``, and
    CRC32C checked
    when the object is read through from byte 0 (``f.raw.verified``; ``DataCorruption``
    before the last bytes otherwise).  ``"wb"`` returns an :class:`ObjectWriter`: a
    streaming pipelined resumable upload of unknown size, finalized (and its CRC32C checked
    by the server and here) by ``close``; leaving a ``with`` block by an exception cancels
    it, so no object is created.

    Args:
        url: ``gs://bucket/object/name``.
        mode: ``"rb"`` or ``"wb"``.
        endpoint: The JSON API base URL (default: ``STORAGE_EMULATOR_HOST``, else Cloud
            Storage with Application Default Credentials).
        transport: A transport factory or session (default: from the endpoint).
        chunk_size: Bytes per ranged GET (reads, 8 MiB) or per upload request (writes,
            16 MiB; a multiple of 256 KiB).
        window: Read-ahead chunks (reads).
        threads: Concurrent GETs (reads).
        checksum: "crc32c" (default) or None.
        headers: Extra headers for every request (e.g. encryption-key headers).
        generation: Read this generation (reads).
        size: The object's size, when known (reads): with ``generation`` too, nothing is
            sent until the first read, which starts its whole window of GETs at once (a
            missing object then fails there, not here).
        crc32c: The object's CRC32C (base64), when known (reads; default: the one the
            server reports).
        content_type: The new object's content type (writes).
        metadata: The new object's custom metadata (writes).
        if_generation_match: Write only if the live generation is this (0: only if the
            object does not exist).
        buffer_size: The BufferedReader's buffer (reads).
        progress: ``progress(bytes_done, total_or_None)`` (writes).
        retry: The retry policy (default: a fresh default strategy; None: one attempt).

    Returns:
        A binary file object.

    Raises:
        ValueError: Another mode, or a URL that is not ``gs://bucket/name``.
        InvalidResponse: Opening for reading failed (e.g. HTTP 404).
    """
    from resumable_media._objects.urls import GsUrl, parse_gs_url

    target: GsUrl = parse_gs_url(url)
    if not target.name:
        raise ValueError(f"{url} names a bucket, not an object")
    where, transport = resolve_transport(endpoint, transport)
    if mode in ("rb", "br"):
        raw = ObjectReader(
            where.media_url(target, generation),
            transport,
            headers=headers,
            chunk_size=chunk_size or DEFAULT_READ_CHUNK,
            window=window,
            threads=threads,
            checksum=checksum,
            retry=retry,
            size=size,
            generation=generation,
            crc32c=crc32c,
        )
        return io.BufferedReader(raw, buffer_size)
    if mode in ("wb", "bw"):
        from resumable_media.parallel import PipelinedUpload

        extra: dict[str, str | int] = {}
        if if_generation_match is not None:
            extra["ifGenerationMatch"] = if_generation_match
        upload = PipelinedUpload(
            where.upload_url(target.bucket, "resumable", extra),
            chunk_size or 16 * 2**20,
            checksum=checksum,
            headers=headers,
            retry=retry,
        )
        resource: dict[str, Any] = {"name": target.name, "contentType": content_type}
        if metadata:
            resource["metadata"] = dict(metadata)
        return ObjectWriter(
            upload,
            transport,
            resource,
            content_type,
            name=str(target),
            progress=progress,
            object_url=where.object_url(target),
        )
    raise ValueError(
        f"mode must be rb or wb, not {mode} (for text, wrap the binary file in io.TextIOWrapper)"
    )
