"""File-like objects over one Cloud Storage object: a read-ahead reader and a streaming writer.

Invariants:
- ``ObjectReader`` holds at most ``window`` chunks (fetched or in flight), so its memory is
  ``window x chunk_size`` whatever the object's size; chunks come from ranged GETs pinned
  to the generation the first response reported, each ``Content-Range`` checked.
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
import io
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from resumable_media import checksums, common
from resumable_media._protocol.ranged import RangedRead, add_generation
from resumable_media._transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Retrying,
    as_transport,
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
    __slots__ = ("crc", "data")

    def __init__(self, data: bytearray | memoryview, crc: int) -> None:
        self.data = data
        self.crc = crc


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

    Raises:
        InvalidResponse: The first request failed (e.g. 404).
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
    ) -> None:
        super().__init__()
        if chunk_size <= 0 or window <= 0:
            raise ValueError("chunk_size and window must be positive")
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
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._threads = max(1, min(threads or 2, window))
        self._crc = 0
        self._crc_position = 0
        self._failed: BaseException | None = None
        self.verified = False
        try:
            first = self._probe(media_url)
        except BaseException:
            self._sessions.close()
            raise
        self._url = add_generation(media_url, self.generation)
        if first is not None:
            future: concurrent.futures.Future[_Fetched] = concurrent.futures.Future()
            future.set_result(first)
            self._pending[0] = future

    # ------------------------------------------------------------ the object's facts

    size: int
    """int: The object's size in bytes."""

    generation: int | None
    """The generation every read is pinned to."""

    crc32c: str | None
    """The object's CRC32C (base64) as the server reported it, or None."""

    def _probe(self, url: str) -> _Fetched | None:
        """The first ranged GET: learn size, generation and hash, keep chunk 0."""

        def attempt() -> tuple[RangedRead, Any, _Fetched | None]:
            ranged = RangedRead(url, 0, self.chunk_size - 1, headers=self.headers, probe=True)
            response = self._send(ranged)
            try:
                status = ranged.process_headers(response, response.status_code, response.headers)
                if status == 416:  # an empty object has no byte 0
                    return ranged, response, None
                if status == 200:  # the range ignored: read only as far as the first chunk
                    length = int(response.headers.get("content-length", "-1"))
                    if length < 0:
                        raise common.InvalidResponse(
                            response, f"{self.name}: the server did not say how large it is"
                        )
                    buffer = bytearray(min(length, self.chunk_size))
                    got = read_exactly(response, memoryview(buffer))
                    if got != len(buffer):
                        raise ConnectionError(
                            f"{self.name}: the first read ended after {got} bytes"
                        )
                    ranged.total = length
                    return ranged, response, _Fetched(buffer, checksums.crc32c(buffer))
                return ranged, response, self._receive(ranged, response, None)
            finally:
                response.close()

        ranged, response, first = Retrying(self.retry, what="first read").call(attempt)
        assert ranged.total is not None
        self.size = ranged.total
        self.generation = ranged.generation
        self.crc32c = checksums.parse_goog_hash(response.headers.get("x-goog-hash")).get("crc32c")
        if first is None:
            self._check_end()
        return first

    def _send(self, ranged: RangedRead) -> Any:
        spec = ranged.prepare()
        return self._sessions.get().request(
            spec.method, spec.url, headers=spec.headers, timeout=self.timeout, stream=True
        )

    def _receive(self, ranged: RangedRead, response: Any, into: memoryview | None) -> _Fetched:
        """Read a judged 206's body (the whole range) into a new buffer or ``into``."""
        buffer: bytearray | memoryview = bytearray(ranged.length) if into is None else into
        view = memoryview(buffer)
        ranged.feed(view[: read_exactly(response, view)])
        if ranged.remaining:
            raise ConnectionError(f"{self.name}: {ranged.cut_short()}")
        return _Fetched(buffer, ranged.crc)

    def _fetch(self, index: int, into: memoryview | None = None) -> _Fetched:
        """Fetch chunk ``index`` into a new buffer, or into ``into`` (its exact length)."""
        start = index * self.chunk_size
        last = min(start + self.chunk_size, self.size) - 1

        def attempt() -> _Fetched:
            # Judged by the core's ranged-read rules: a 206 for exactly these bytes of
            # an object of the size and generation the first read saw.
            ranged = RangedRead(
                self._url,
                start,
                last,
                total=self.size,
                generation=self.generation,
                headers=self.headers,
            )
            response = self._send(ranged)
            try:
                ranged.process_headers(response, response.status_code, response.headers)
                return self._receive(ranged, response, into)
            finally:
                response.close()

        return Retrying(self.retry, what=f"chunk {index}").call(attempt)

    # ------------------------------------------------------------ read-ahead

    def _schedule(self, index: int) -> None:
        count = -(-self.size // self.chunk_size)
        for stale in [i for i in self._pending if i < index or i >= index + self.window]:
            self._pending.pop(stale).cancel()
        for wanted in range(index, min(index + self.window, count)):
            if wanted not in self._pending:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self._threads, thread_name_prefix="resumable-media-readahead"
                    )
                self._pending[wanted] = self._executor.submit(self._fetch, wanted)

    def _chunk(self, index: int) -> _Fetched:
        """Chunk ``index`` (its bytes folded into the running CRC when read in order)."""
        self._schedule(index)
        future = self._pending[index]
        fetched = future.result()
        start = index * self.chunk_size
        if self.checksum is not None and self._crc_position == start:
            self._crc = checksums.crc32c_combine(self._crc, fetched.crc, len(fetched.data))
            self._crc_position = start + len(fetched.data)
            self._check_end()
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

    def readinto(self, buffer: Any) -> int:
        self._checkClosed()
        if self._failed is not None:
            raise self._failed
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._position < self.size:
            index, offset = divmod(self._position, self.chunk_size)
            data = self._chunk(index).data
            count = min(len(view) - filled, len(data) - offset)
            view[filled : filled + count] = memoryview(data)[offset : offset + count]
            filled += count
            self._position += count
            if offset + count == len(data):
                self._pending.pop(index, None)
        return filled

    def readall(self) -> bytes:
        """The rest of the object, fetched straight into the result (no copy).

        The result is a ``bytes`` object owned by an ``io.BytesIO`` whose buffer the ranged
        GETs fill through ``getbuffer()``; ``getvalue()`` then hands that same object over
        (CPython does not copy an unshared, exactly sized buffer; elsewhere it is one copy).
        """
        self._checkClosed()
        if self._failed is not None:
            raise self._failed
        remaining = self.size - self._position
        if remaining <= 0:
            return b""
        result = io.BytesIO(bytes(remaining))
        view = result.getbuffer()
        try:
            self._fill_all(view)
        finally:
            view.release()
        return result.getvalue()

    def _fill_all(self, view: memoryview) -> None:
        """Fill ``view`` with everything from the position on, ``threads`` GETs at a time."""
        base = self._position
        index, offset = divmod(base, self.chunk_size)
        if offset:  # the rest of a partly read chunk
            data = self._chunk(index).data
            view[: len(data) - offset] = memoryview(data)[offset:]
            self._pending.pop(index, None)
            index += 1
        count = -(-self.size // self.chunk_size)
        futures: dict[int, concurrent.futures.Future[_Fetched]] = {}
        for i in range(index, count):
            start = i * self.chunk_size
            piece = view[start - base : min(start + self.chunk_size, self.size) - base]
            ready = self._pending.pop(i, None)
            if ready is not None and ready.done() and not ready.cancelled():
                piece[:] = ready.result().data  # already fetched ahead
                futures[i] = ready
                continue
            if ready is not None:
                ready.cancel()
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._threads, thread_name_prefix="resumable-media-readahead"
                )
            futures[i] = self._executor.submit(self._fetch, i, piece)
        try:
            for i in range(index, count):
                fetched = futures[i].result()
                start = i * self.chunk_size
                if self.checksum is not None and self._crc_position == start:
                    self._crc = checksums.crc32c_combine(self._crc, fetched.crc, len(fetched.data))
                    self._crc_position = start + len(fetched.data)
                    self._check_end()
                self._position = start + len(fetched.data)
        except BaseException:
            for future in futures.values():
                future.cancel()
            concurrent.futures.wait(futures.values())  # nothing may write into view later
            raise

    def iter_chunks(self) -> Any:
        """Yield the rest of the object chunk by chunk (memoryviews, valid until the next).

        Raises:
            DataCorruption: Before the last chunk, when the whole object does not verify.
        """
        while self._position < self.size:
            index, offset = divmod(self._position, self.chunk_size)
            data = self._chunk(index).data
            self._pending.pop(index, None)
            self._position += len(data) - offset
            yield memoryview(data)[offset:]

    def close(self) -> None:
        if self.closed:
            return
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._sessions.close()
        super().close()


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
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
    if_generation_match: int | None = None,
    buffer_size: int = io.DEFAULT_BUFFER_SIZE,
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
) -> Any:
    """Open ``gs://bucket/name`` as a binary file, for reading or for writing.

    ``"rb"`` returns an ``io.BufferedReader`` over an :class:`ObjectReader`: parallel
    read-ahead (``window`` chunks of ``chunk_size``), ``seek``/``tell``, and CRC32C checked
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
