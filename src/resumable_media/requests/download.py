"""Download, RawDownload, ChunkedDownload and RawChunkedDownload over a requests transport.

Invariants:
- Each class is its protocol object plus ``consume``/``consume_next_chunk``, which
  send through the transport inside the retry loop; the protocol decides everything.
- Bodies are read as stored bytes with ``readinto`` in 1 MiB pieces into one reused
  buffer, hashed as they arrive, and written once to the caller's stream.
- A chunk is written to the stream only after it has been read completely, so a
  retried chunk never leaves a partial copy behind.
- What a caller or a transport can see matches google-resumable-media 2.11: the
  keyword arguments of each ``transport.request`` call, the class hierarchy
  (``RawDownload`` is not a ``Download``, ``RawChunkedDownload`` not a
  ``ChunkedDownload``), a broken body raises ``requests``' ``ChunkedEncodingError``,
  and every chunk response keeps its ``content``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import http.client
import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import IO, Any

import requests.exceptions
import urllib3.exceptions

from resumable_media import checksums, common
from resumable_media._protocol.chunked import ChunkedDownloadProtocol
from resumable_media._protocol.download import DownloadProtocol
from resumable_media._protocol.request import RequestSpec
from resumable_media.requests import _body
from resumable_media.requests._compose import FromProtocol
from resumable_media.requests._send import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    own_retry,
    send,
    wait_and_retry,
)

__all__ = ["ChunkedDownload", "Download", "RawChunkedDownload", "RawDownload"]

_LOGGER = logging.getLogger(__name__)

_TRANSCODE_REWIND_FAILED = (
    "Incomplete download for:\n{}\n"
    "Error writing to stream while handling a gzip-compressed file download.\n"
    "Please restart the download.\n"
)


def _upstream_errors(
    read: Callable[[memoryview], int], *, as_requests: bool
) -> Callable[[memoryview], int]:
    """Raise body-read failures as google-resumable-media's callers see them.

    ``Download`` and ``ChunkedDownload`` read through ``requests``, which turns urllib3's
    ``ProtocolError`` into ``ChunkedEncodingError`` and a read timeout into
    ``requests.exceptions.ConnectionError`` (``as_requests=True``); the ``Raw*`` classes
    read ``response.raw`` directly, so urllib3's own exceptions reach the caller.  An
    incomplete body is described as urllib3 describes it
    (``IncompleteRead(<read> bytes read, <left> more expected)``).
    """
    received = 0

    def wrapped(view: memoryview) -> int:
        nonlocal received
        try:
            count = read(view)
        except urllib3.exceptions.ProtocolError as exc:
            cause = exc.args[1] if len(exc.args) > 1 else None
            error = exc
            if isinstance(cause, http.client.IncompleteRead) and not isinstance(
                cause, urllib3.exceptions.IncompleteRead
            ):
                left = cause.expected if cause.expected is not None else 0
                incomplete = urllib3.exceptions.IncompleteRead(received, left)
                error = urllib3.exceptions.ProtocolError(
                    f"Connection broken: {incomplete!r}", incomplete
                )
            if as_requests:
                raise requests.exceptions.ChunkedEncodingError(error) from exc
            if error is exc:
                raise
            raise error from exc
        except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
            timeout = exc
            if not isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                timeout = urllib3.exceptions.ReadTimeoutError(None, None, "Read timed out.")  # type: ignore[arg-type]
            if as_requests:
                raise requests.exceptions.ConnectionError(timeout) from exc
            raise timeout from exc
        received += count
        return count

    return wrapped


def _read_error_body(response: Any) -> None:
    """Read a rejected response's body, so ``exc.response.content`` holds it (as when the
    transport reads bodies itself) and its connection goes back to the pool."""
    with contextlib.suppress(Exception):
        _ = response.content


class _SingleDownload:
    """The machinery shared by :class:`Download` and :class:`RawDownload` (private).

    The two public classes are siblings, as in google-resumable-media, so
    ``isinstance(raw, Download)`` is False.  They drive a
    :class:`~resumable_media._protocol.download.DownloadProtocol` (composed, not
    inherited: the core's ``feed``/``flush``/``finish`` are not public here).
    """

    _decode_body = True

    def __init__(
        self,
        media_url: str,
        stream: IO[bytes] | None = None,
        start: int | None = None,
        end: int | None = None,
        headers: dict[str, Any] | None = None,
        checksum: common.Checksum = "md5",
        *,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        self._protocol = DownloadProtocol(
            media_url, start, end, headers, checksum, decode=self._decode_body
        )
        self._stream = stream
        self._retry_strategy = own_retry(retry)

    # The seed's attributes, read from the protocol object (documented there).
    media_url = FromProtocol[str]("media_url")
    start = FromProtocol[int | None]("start")
    end = FromProtocol[int | None]("end")
    checksum = FromProtocol[common.Checksum]("checksum")
    finished = FromProtocol[bool]("finished")
    bytes_downloaded = FromProtocol[int]("bytes_downloaded")
    _headers = FromProtocol[dict[str, Any]]("_headers")
    _object_generation = FromProtocol[int | None]("_object_generation")

    def _prepare_request(self) -> RequestSpec:
        """Upstream's name: the first request (the download is single use)."""
        return self._protocol._prepare_request()

    def consume(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Download the bytes, into the stream when one was given.

        Args:
            transport: A requests-compatible transport (``requests.Session``,
                ``AuthorizedSession``, …).
            timeout: (connect, read) seconds, or one number, per request.

        Returns:
            The last HTTP response (a 206 when the download was resumed).

        Raises:
            ValueError: If the download was already used.
            InvalidResponse: For an unexpected status (after retries for retryable ones).
            DataCorruption: If the whole-object checksum does not match.
            requests.exceptions.ChunkedEncodingError: If the body broke off and the
                retries ran out.
        """
        protocol = self._protocol
        first = self._prepare_request()
        origin = 0
        if self._stream is not None:
            with contextlib.suppress(Exception):
                origin = self._stream.tell()
        buffers = _read_buffers(3 if self._stream is not None else 0)

        def attempt() -> Any:
            spec = protocol.prepare_attempt(first)
            # As upstream: Download streams only into a stream; RawDownload always.
            streaming = self._stream is not None or not self._decode_body
            response = send(transport, spec, timeout, stream=streaming)
            try:
                rewind = protocol.process_response(response, response.status_code, response.headers)
            except common.InvalidResponse:
                _read_error_body(response)
                raise
            try:
                if self._stream is None:
                    self._check_in_memory(response)
                else:
                    self._write_body(response, rewind, buffers, origin)
            except BaseException:
                response.close()
                raise
            return response

        return wait_and_retry(attempt, self._retry_strategy)

    def _check_in_memory(self, response: Any) -> None:
        # Without a stream the transport holds the body; verify it when it is the
        # stored form (not decoded by the transport).
        if not self._decode_body or response.headers.get("content-encoding"):
            return
        protocol = self._protocol
        protocol.feed(response.content)
        try:
            protocol.finish(response)
        except ConnectionError:
            # The retry must fetch the whole body again: the caller reads it from
            # the response, so a ranged resume would hand them only the tail.
            protocol._restart_body()
            raise

    def _write_body(
        self, response: Any, rewind: bool, buffers: list[bytearray], origin: int
    ) -> None:
        stream, protocol = self._stream, self._protocol
        assert stream is not None
        if rewind:
            try:
                stream.seek(origin)
            except Exception as exc:
                raise Exception(_TRANSCODE_REWIND_FAILED.format(self.media_url)) from exc
            with contextlib.suppress(Exception):
                stream.truncate()  # best effort: the full body overwrites the rest anyway
        write = stream.write
        if _body.body_is_decoded(response):
            protocol._decoder = None
        read = _upstream_errors(_body.body_reader(response), as_requests=self._decode_body)
        hasher = protocol.running_hash
        if hasher is not None and hasher.name == "md5":
            _read_hashing_aside(read, hasher, protocol.feed, write, buffers)
        else:
            view = memoryview(buffers[0])
            while count := read(view):
                for piece in protocol.feed(view[:count]):
                    write(piece)
        for piece in protocol.flush():
            write(piece)
        _body.mark_consumed(response)
        protocol.finish(response)


_THREAD_BUFFERS = threading.local()


def _read_buffers(count: int) -> list[bytearray]:
    """``count`` read buffers of ``READ_SIZE``, kept per thread and reused by its downloads.

    A download uses its buffers only while it runs on its thread; allocating (and zeroing)
    3 MiB per call was most of the CPU of a small object's download.
    """
    kept: list[bytearray] | None = getattr(_THREAD_BUFFERS, "buffers", None)
    if kept is None:
        kept = _THREAD_BUFFERS.buffers = []
    while len(kept) < count:
        kept.append(bytearray(_body.READ_SIZE))
    return kept[:count]


def _read_hashing_aside(
    read: Callable[[memoryview], int],
    hasher: checksums.Hasher,
    feed: Callable[..., list[bytes | memoryview]],
    write: Callable[[Any], object],
    buffers: list[bytearray],
) -> None:
    """Read and write on this thread while one worker hashes each piece, in order.

    MD5 runs at about a third of loopback speed; hashing on a second thread
    (hashlib releases the GIL) overlaps it with receiving.  A buffer is reused
    only after its hash job is done, and every piece read is hashed before this
    returns or raises, so the running hash always matches the bytes fed.
    """
    views = [memoryview(buffer) for buffer in buffers]
    pending: collections.deque[concurrent.futures.Future[None]] = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rm-hash") as pool:
        try:
            for turn in itertools.count():
                if len(pending) == len(views):
                    pending.popleft().result()
                view = views[turn % len(views)]
                count = read(view)
                if not count:
                    return
                piece = view[:count]
                pending.append(pool.submit(hasher.update, piece))
                for out in feed(piece, hashed=True):
                    write(out)
        finally:
            for job in pending:
                job.result()


class Download(_SingleDownload):
    """Download an object (or a byte range of it) in one streaming GET, resuming on failure.

    Bodies stored with ``Content-Encoding: gzip`` are decoded into the stream while the
    checksum is computed over the stored (compressed) bytes.

    Args:
        media_url: The media URL, e.g. ``…/download/storage/v1/b/{bucket}/o/{name}?alt=media``.
        stream: A writable binary stream for the body; None leaves the body on the
            response (``response.content``).
        start: The first byte (negative: the last ``-start`` bytes), or None.
        end: The last byte (inclusive), or None.
        headers: Extra request headers (the dict is updated with ``range``).
        checksum: "md5" (default), "crc32c", "auto" or None.
        retry: The retry policy; None makes a single attempt.

    Raises:
        ValueError: If ``checksum`` is not an accepted value.
    """

    _decode_body = True


class RawDownload(_SingleDownload):
    """Like :class:`Download`, but writes the body exactly as stored (never decoded).

    Args:
        media_url: The media URL.
        stream: A writable binary stream, or None.
        start: The first byte, or None.
        end: The last byte (inclusive), or None.
        headers: Extra request headers.
        checksum: "md5" (default), "crc32c", "auto" or None.
        retry: The retry policy; None makes a single attempt.
    """

    _decode_body = False


def _known_session(transport: object) -> bool:
    """Whether ``transport`` is exactly ``requests.Session`` or google-auth's
    ``AuthorizedSession``: transports whose ``request`` is known to take ``stream=`` and
    to behave identically with it, so nothing can observe that keyword (subclasses and
    other objects get upstream's exact call)."""
    cls = type(transport)
    if cls is requests.Session:
        return True
    return cls.__qualname__ == "AuthorizedSession" and (
        cls.__module__ == "google.auth.transport.requests"
    )


class _LentChunk:
    """Stands in for ``response.raw`` once a chunk has been read into the download's buffer.

    ``response.content`` (and ``iter_content``) read ``raw.stream``, which copies the
    chunk out of the buffer the first time it is asked for; until then no copy is made.
    While the response is alive and has not read its content, the download does not
    reuse that buffer (it allocates another), so the bytes stay this chunk's.  Every
    other attribute is the original urllib3 response's.
    """

    def __init__(self, response: Any, buffer: bytearray, length: int) -> None:
        self._rm_raw = response.raw
        self._rm_response = weakref.ref(response)
        self._rm_buffer: bytearray | None = buffer
        self._rm_length = length

    def _take(self) -> bytes:
        buffer, self._rm_buffer = self._rm_buffer, None
        if buffer is None:
            return b""
        data = bytes(memoryview(buffer)[: self._rm_length])
        response = self._rm_response()
        if response is not None:
            response._content = data  # so content stays readable after iter_content
        return data

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Any:
        """Yield the chunk once, whatever ``amt`` (it is already complete)."""
        data = self._take()
        if data:
            yield data

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        """Return the whole chunk on the first call, then ``b""``."""
        return self._take()

    def holds(self, buffer: bytearray) -> bool:
        """Whether this chunk still needs ``buffer`` (its content was not read yet)."""
        return self._rm_buffer is buffer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_rm_"):  # not set up (e.g. a copy): never recurse
            raise AttributeError(name)
        return getattr(self._rm_raw, name)


class _Chunked:
    """The machinery shared by :class:`ChunkedDownload` and :class:`RawChunkedDownload`
    (private; the public classes are siblings, as in google-resumable-media).

    It drives a :class:`~resumable_media._protocol.chunked.ChunkedDownloadProtocol`
    (composed, not inherited: the core's calls are not part of the public surface).
    """

    _stream_always = False

    def __init__(
        self,
        media_url: str,
        chunk_size: int,
        stream: IO[bytes],
        start: int = 0,
        end: int | None = None,
        headers: dict[str, Any] | None = None,
        *,
        checksum: common.Checksum = "auto",
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
    ) -> None:
        self._protocol = ChunkedDownloadProtocol(
            media_url, chunk_size, start, end, headers, checksum
        )
        self._stream = stream
        self._retry_strategy = own_retry(retry)
        # Up to two chunk buffers, each with the response (if any) that may still read it:
        # the usual ``response = download.consume_next_chunk(t)`` loop keeps the previous
        # response alive during the next call, so two buffers alternate without copies.
        self._buffers: list[tuple[bytearray, weakref.ref[_LentChunk] | None]] = []
        self._buffer = bytearray()
        self._streamed = False

    # The seed's attributes, read from the protocol object (documented there).
    media_url = FromProtocol[str]("media_url")
    chunk_size = FromProtocol[int]("chunk_size")
    start = FromProtocol[int | None]("start")
    end = FromProtocol[int | None]("end")
    checksum = FromProtocol[common.Checksum]("checksum")
    finished = FromProtocol[bool]("finished")
    invalid = FromProtocol[bool]("invalid")
    bytes_downloaded = FromProtocol[int]("bytes_downloaded")
    total_bytes = FromProtocol[int | None]("total_bytes")
    _headers = FromProtocol[dict[str, Any]]("_headers")

    def _prepare_request(self) -> RequestSpec:
        """Upstream's name: the next chunk's request (see the protocol object)."""
        return self._protocol._prepare_request()

    def _make_invalid(self) -> None:
        self._protocol._make_invalid()

    def _process_response(self, response: Any) -> None:
        """Upstream's name: judge a chunk the transport has read (``content``) and write it."""
        protocol = self._protocol
        expected = protocol.process_response(response, response.status_code, response.headers)
        if not expected:
            return  # the empty object's 416: its body is an error text
        body = response.content
        hasher = protocol.chunk_hasher()
        if hasher is not None:
            hasher.update(body)
        protocol.process_body(response, body, hasher)
        self._stream.write(body)

    def consume_next_chunk(self, transport: Transport, timeout: Timeout = DEFAULT_TIMEOUT) -> Any:
        """Download the next chunk and append it to the stream.

        Args:
            transport: A requests-compatible transport.
            timeout: (connect, read) seconds, or one number, per request.

        Returns:
            The HTTP response for the chunk; its ``content`` is the chunk.

        Raises:
            ValueError: If the download has finished or is invalid.
            InvalidResponse: For an unexpected status or inconsistent headers.
            DataCorruption: If a whole-object run's checksum does not match.
        """
        spec = self._prepare_request()
        stream = self._stream_always or _known_session(transport)
        return wait_and_retry(
            lambda: self._attempt(transport, spec, timeout, stream), self._retry_strategy
        )

    def _attempt(self, transport: Transport, spec: Any, timeout: Timeout, stream: bool) -> Any:
        response = send(transport, spec, timeout, stream=stream)
        if stream and self._reads_raw(response):
            return self._read_streamed(response)
        # The transport has read (and decoded) the body: use it as upstream does.
        self._process_response(response)
        return response

    def _reads_raw(self, response: Any) -> bool:
        """Whether this chunk's body is read from ``raw`` here (else from ``content``)."""
        return True

    def _read_streamed(self, response: Any) -> Any:
        self._streamed = _seekable(self._stream)
        origin = self._stream.tell() if self._streamed else 0
        protocol = self._protocol
        try:
            expected = protocol.process_response(response, response.status_code, response.headers)
        except common.InvalidResponse:
            _read_error_body(response)
            raise
        if not expected:
            return response  # the empty object's 416: its body stays readable, as upstream
        try:
            hasher = protocol.chunk_hasher()
            view = self._read_chunk(response, expected, hasher)
            protocol.process_body(response, view, hasher)
        except BaseException:
            response.close()
            if self._streamed:  # leave no partial chunk behind
                self._stream.seek(origin)
                self._stream.truncate()
            raise
        if not self._streamed:
            self._stream.write(view)
        if hasattr(response, "_content_consumed") and hasattr(response, "raw"):
            lent = _LentChunk(response, self._buffer, len(view))
            response.raw = lent
            response._content = False
            response._content_consumed = False
            self._buffers = [
                (buffer, weakref.ref(lent) if buffer is self._buffer else borrower)
                for buffer, borrower in self._buffers
            ]
        return response

    def _chunk_view(self, size: int) -> memoryview:
        """A buffer of ``size`` bytes that no live, unread chunk response still needs."""
        for index, (buffer, borrower) in enumerate(self._buffers):
            lent = borrower() if borrower is not None else None
            if lent is None or not lent.holds(buffer):
                if len(buffer) < size:
                    buffer = bytearray(size)
                self._buffers[index] = (buffer, None)
                break
        else:
            buffer = bytearray(size)
            if len(self._buffers) < 2:
                self._buffers.append((buffer, None))
        self._buffer = buffer
        return memoryview(buffer)[:size]

    def _read_chunk(
        self, response: Any, expected: int, hasher: checksums.Hasher | None
    ) -> memoryview:
        """Read one chunk into the chunk buffer, hashing each piece while it is hot.

        On a seekable stream each piece is also written at once (a failed attempt
        rewinds the stream to where the chunk began); otherwise the chunk is written
        only once it is complete.
        """
        # One spare byte reveals a body longer than announced.
        view = self._chunk_view(expected + 1)
        read = _upstream_errors(_body.body_reader(response), as_requests=not self._stream_always)
        filled = 0
        while filled < len(view):
            count = read(view[filled : min(filled + _body.READ_SIZE, len(view))])
            if not count:
                break
            piece = view[filled : filled + count]
            if hasher is not None:
                hasher.update(piece)
            if self._streamed:
                self._stream.write(piece[: max(expected - filled, 0)])
            filled += count
        return view[:filled]


class ChunkedDownload(_Chunked):
    """Download an object in consecutive ranged GETs of ``chunk_size`` bytes.

    Each chunk is what google-resumable-media makes of it: ``response.content`` as the
    transport decoded it (a ``Content-Encoding: gzip`` chunk therefore fails the length
    check, as upstream; use :class:`RawChunkedDownload` for the stored bytes), and every
    returned response keeps its ``content``.  A custom transport receives upstream's
    exact call (no ``stream=`` keyword).  A plain ``requests.Session`` or an
    ``AuthorizedSession``, which behave identically either way, are asked to stream,
    and an unencoded body is then read with ``readinto`` into a reused buffer and written
    to the stream from there; ``content`` is copied out only if it is read.  A run that
    covers the whole object (``start=0``, ``end=None``) is checked against the server's
    checksum at the end.

    Args:
        media_url: The media URL.
        chunk_size: Bytes per request.
        stream: A writable binary stream that receives the chunks in order.
        start: The first byte (>= 0).
        end: The last byte (inclusive), or None.
        headers: Extra request headers (the dict is updated with ``range``).
        checksum: "auto" (default), "md5", "crc32c" or None (whole-object runs only).
        retry: The retry policy; None makes a single attempt.

    Raises:
        ValueError: If ``start`` is negative.
    """

    def _reads_raw(self, response: Any) -> bool:
        # An encoded body is decoded by requests, as upstream; so is one a response hook
        # already read, or a response without urllib3's raw stream.
        encoding = (response.headers.get("content-encoding") or "identity").lower()
        return (
            encoding == "identity"
            and getattr(response, "_content", None) is False
            and not getattr(response, "_content_consumed", True)
            and not _body.body_is_decoded(response)
        )


class RawChunkedDownload(_Chunked):
    """Download an object in consecutive ranged GETs, writing the bytes as stored.

    The body is read through ``response.raw`` with ``readinto`` into a reused buffer,
    hashed while hot and written to the stream from that buffer; the returned
    response's ``content`` is the chunk, copied out of the buffer only if it is read
    (the buffer is not reused while an unread response is alive).

    Args:
        media_url: The media URL.
        chunk_size: Bytes per request.
        stream: A writable binary stream.
        start: The first byte (>= 0).
        end: The last byte (inclusive), or None.
        headers: Extra request headers.
        checksum: "auto" (default), "md5", "crc32c" or None.
        retry: The retry policy; None makes a single attempt.
    """

    _stream_always = True


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False
