"""The parent's own requests for a download: the first ranged GET, single streams, verification.

Invariants:
- ``open_first`` is the only request made before the layout is known: it reads size,
  generation and hashes from a ranged GET's headers (no metadata request) and leaves
  the body unread for whoever fetches that chunk.
- A single stream (gzip-stored objects, servers that ignore ``Range``, empty objects)
  restarts from byte 0 on a retryable failure; it hashes the bytes as served (the stored,
  possibly compressed, bytes) and writes the (decompressed) result to the temp file.
- ``verify`` raises ``DataCorruption`` on any mismatch and never touches files.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import logging
import os
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resumable_media import checksums
from resumable_media._protocol import checks
from resumable_media._protocol.ranged import RangedRead, add_generation, object_facts
from resumable_media._protocol.request import RequestSpec, require_status
from resumable_media._transport import (
    READ_SIZE,
    body_reader,
    close_quietly,
    send,
    wait_and_retry,
)
from resumable_media.parallel.progress import ProgressTracker
from resumable_media.parallel.sink import TempSink

if TYPE_CHECKING:
    from resumable_media.parallel.download import ParallelDownload

__all__ = ["FirstInfo", "Outcome", "Probe", "close", "open_first", "stream_whole", "verify"]

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """The first request's range: chunk ``index``, bytes ``first``-``last`` (inclusive)."""

    index: int
    first: int
    last: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FirstInfo:
    """What the first response revealed about the object."""

    total: int
    generation: int | None
    hashes: dict[str, str]
    encoding: str | None
    whole_stream: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a finished download put in place (before timing is added)."""

    bytes: int
    crc32c: str
    md5: str | None
    verified: bool
    generation: int | None
    resumed_from: int = 0  # bytes an interrupted run had already put in place


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Streamed:
    """What one complete read of the single stream produced."""

    written: int  # bytes written to the file (decompressed when decoding)
    crc: int  # CRC32C of the bytes as served
    md5_b64: str | None  # their MD5 (base64) when asked for


def close(response: Any) -> None:
    """Close a response without reading its body (its connection is dropped)."""
    if response is not None:
        close_quietly(response)


def _judged(response: Any, judge: Callable[[Any], object]) -> Any:
    """``response`` once ``judge`` accepted it; closed when it raised."""
    try:
        judge(response)
    except BaseException:
        close(response)
        raise
    return response


def _get(
    dl: ParallelDownload, transport: Any, spec: RequestSpec, judge: Callable[[Any], object]
) -> Any:
    """Send ``spec`` (retrying as ``dl.retry`` allows) until ``judge`` accepts an answer."""
    return wait_and_retry(
        lambda: _judged(send(transport, spec, dl.timeout, stream=True), judge), dl.retry
    )


def _whole_request(dl: ParallelDownload, generation: int | None) -> RequestSpec:
    url = add_generation(dl.media_url, generation)
    return RequestSpec("GET", url, None, dict(dl.headers))


def _expect_200(response: Any) -> None:
    require_status(response, response.status_code, (200,))


def open_first(dl: ParallelDownload, transport: Any, probe: Probe) -> tuple[Any, FirstInfo]:
    """Send the first ranged GET (with retries) and read the object's facts from its headers.

    Args:
        dl: The download (URL, headers, retry policy, options).
        transport: The parent's transport.
        probe: The range to ask for.

    Returns:
        The open response (None when it was closed, e.g. for gzip objects) and the facts.

    Raises:
        InvalidResponse: A status other than 200/206/416, a bad ``Content-Range``, or a start
            beyond the end of the object.
    """
    ranged = RangedRead(dl.media_url, probe.first, probe.last, headers=dl.headers, probe=True)
    response = _get(
        dl,
        transport,
        ranged.prepare(),
        lambda r: ranged.process_headers(r, r.status_code, r.headers),
    )
    status = response.status_code
    if status == http.client.REQUESTED_RANGE_NOT_SATISFIABLE:
        # An empty object: fetch it whole to learn its generation and hashes.
        close(response)
        response = _get(dl, transport, _whole_request(dl, None), _expect_200)
        return response, _info(response, 0, whole_stream=True)
    if status == http.client.OK:
        length = response.headers.get("content-length")
        return response, _info(response, int(length) if length else -1, whole_stream=True)
    assert ranged.total is not None
    info = _info(response, ranged.total, whole_stream=False)
    if info.encoding == "gzip" and dl.decompress:
        close(response)
        return None, dataclasses.replace(info, whole_stream=True)
    return response, info


def _info(response: Any, total: int, *, whole_stream: bool) -> FirstInfo:
    facts = object_facts(response, response.headers)
    return FirstInfo(
        total=total,
        generation=facts.generation,
        hashes=facts.hashes,
        encoding=facts.encoding,
        whole_stream=whole_stream,
    )


def stream_whole(
    dl: ParallelDownload,
    sink: TempSink,
    transport: Any,
    response: Any,
    info: FirstInfo,
    tracker: ProgressTracker,
) -> Outcome:
    """Download the whole object in one stream (decompressing gzip), verify, and commit.

    Args:
        dl: The download.
        sink: The temporary file.
        transport: The parent's transport.
        response: An open 200 response to start with, or None to send a new request.
        info: The facts from the first response.
        tracker: Progress.

    Returns:
        The result fields.

    Raises:
        ValueError: A byte range was asked of a gzip-stored object (pass ``decompress=False``).
        DataCorruption: The stored bytes do not match the object's hash.
    """
    _require_whole_object(dl, response)
    decode = info.encoding == "gzip" and dl.decompress
    tracker.total = info.total if info.total >= 0 and not decode else None
    sink.open(0, keep_existing=False)
    try:
        streamed = _stream_retrying(dl, sink, transport, response, info, decode, tracker)
        verified = verify(dl, info.hashes, streamed.crc, streamed.md5_b64, full=True)
    except BaseException:
        sink.discard()
        raise
    sink.commit()
    return Outcome(
        bytes=streamed.written,
        crc32c=checksums.crc32c_to_b64(streamed.crc),
        md5=streamed.md5_b64,
        verified=verified,
        generation=info.generation,
    )


def _require_whole_object(dl: ParallelDownload, response: Any) -> None:
    """A single stream cannot serve a byte range: refuse one (closing ``response``)."""
    if dl.start != 0 or dl.end is not None:
        close(response)
        raise ValueError(
            f"{dl.media_url} is served as one stream (gzip-stored or Range unsupported); "
            "byte ranges need decompress=False on a gzip-stored object"
        )


def _stream_retrying(
    dl: ParallelDownload,
    sink: TempSink,
    transport: Any,
    response: Any,
    info: FirstInfo,
    decode: bool,
    tracker: ProgressTracker,
) -> _Streamed:
    """Copy the whole stream into ``sink``, from byte 0 again after a retryable failure.

    ``response`` (an open 200, or None) serves the first attempt; later attempts send the
    whole-object request again, pinned to ``info.generation``.
    """
    spec = _whole_request(dl, info.generation)
    pending = [response] if response is not None else []

    def attempt() -> _Streamed:
        os.ftruncate(sink.fd, 0)
        current = (
            pending.pop()
            if pending
            else _judged(send(transport, spec, dl.timeout, stream=True), _expect_200)
        )
        try:
            return _copy_stream(current, sink.fd, decode, dl.checksum == "md5", tracker)
        except BaseException:
            close(current)
            raise

    with tracker.ticking():
        streamed = wait_and_retry(attempt, dl.retry)
    tracker.tick(force=True)
    return streamed


def _copy_stream(
    response: Any, fd: int, decode: bool, want_md5: bool, tracker: ProgressTracker
) -> _Streamed:
    """Read ``response`` to the end, hashing the bytes as served and writing them (decoded)."""
    decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32) if decode else None
    md5 = hashlib.md5() if want_md5 else None
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    crc = received = written = 0
    readinto = body_reader(response)
    while True:
        count = readinto(view)
        if not count:
            break
        piece = view[:count]
        crc = checksums.crc32c(piece, crc)
        if md5 is not None:
            md5.update(piece)
        received += count
        out: Any = decoder.decompress(piece) if decoder is not None else piece
        written += _write_all(fd, out, written)
        tracker.set(0, received)
        tracker.tick()
    if decoder is not None:
        tail = decoder.flush()
        written += _write_all(fd, tail, written)
        if not decoder.eof:
            raise ConnectionError("the gzip stream ended before its end marker")
    release = getattr(getattr(response, "raw", None), "release_conn", None)
    if release is not None:
        release()
    md5_b64 = None if md5 is None else base64.b64encode(md5.digest()).decode("ascii")
    return _Streamed(written=written, crc=crc, md5_b64=md5_b64)


def _write_all(fd: int, data: Any, offset: int) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def verify(
    dl: ParallelDownload, hashes: dict[str, str], crc: int, md5_b64: str | None, *, full: bool
) -> bool:
    """Compare the computed hashes with the server's (the core's rule).

    Args:
        dl: The download (its URL and checksum choice).
        hashes: The parsed ``x-goog-hash`` of the object.
        crc: The CRC32C of the bytes received.
        md5_b64: Their MD5 (base64) when computed.
        full: Whether the whole object was downloaded (partial ranges cannot be checked).

    Returns:
        True when at least one hash was compared and matched.

    Raises:
        DataCorruption: A hash did not match.
    """
    if dl.checksum is None or not full:
        return False
    local = {"crc32c": checksums.crc32c_to_b64(crc), "md5": md5_b64 or ""}
    return checks.verify_download(dl.media_url, hashes, local, want_md5=dl.checksum == "md5")
