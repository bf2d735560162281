"""Media downloads of the loopback server: ranges, GCS headers, transcoding, streaming faults.

Invariants: the body always comes from an already-open file descriptor, so an object replaced
mid-download is still served consistently from the generation named in the headers; normal
traffic goes through ``socket.sendfile`` only, and faults cut, stall or corrupt the stream by
splitting it into sendfile segments, so fault support costs nothing without a fault;
``x-goog-hash`` always describes the whole stored object, on 200 and 206 alike.
"""

from __future__ import annotations

import email.utils
import os
import ssl
import time
import zlib
from collections.abc import Callable
from typing import BinaryIO

from .exchange import Exchange
from .faults import Fault
from .store import StoredObject

TRANSCODE_BLOCK = 1 << 20
SENDFILE_BLOCK = 1 << 30
TLS_BLOCK = 1 << 20


class Unsatisfiable(Exception):
    """The requested range starts at or after the end of the object."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against ``size``.

    Returns:
        ``(start, end)`` inclusive, or None to serve the whole object (no header, a malformed
        header, or several ranges -- all ignored as RFC 9110 allows).

    Raises:
        Unsatisfiable: the range cannot be served (416).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix < 0:
                return None
            if suffix == 0 or size == 0:
                raise Unsatisfiable
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or (end < start and last):
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


def accepts_gzip(value: str | None) -> bool:
    """True when an Accept-Encoding value allows gzip."""
    if not value:
        return False
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def object_headers(obj: StoredObject, etag: str | None = None) -> list[tuple[str, str]]:
    """Headers GCS sends with object media (and XML HEAD) responses."""
    headers = [
        ("Content-Type", obj.meta.content_type),
        ("x-goog-hash", obj.goog_hash()),
        ("x-goog-generation", str(obj.generation)),
        ("x-goog-metageneration", str(obj.metageneration)),
        ("x-goog-stored-content-length", str(obj.size)),
        ("x-goog-stored-content-encoding", obj.meta.content_encoding or "identity"),
        ("x-goog-storage-class", "STANDARD"),
        ("ETag", etag or f'"{obj.etag()}"'),
        ("Last-Modified", email.utils.formatdate(obj.created, usegmt=True)),
        ("Accept-Ranges", "bytes"),
    ]
    if obj.meta.cache_control:
        headers.append(("Cache-Control", obj.meta.cache_control))
    for key, value in (obj.meta.metadata or {}).items():
        headers.append((f"x-goog-meta-{key}", value))
    return headers


def serve_media(
    ex: Exchange,
    obj: StoredObject,
    f: BinaryIO,
    fault: Fault | None,
    count_bytes: Callable[[int, str], None],
    etag: str | None = None,
) -> None:
    """Answer a media GET/HEAD for ``obj`` from its open file ``f``.

    Honours Range, decompressive transcoding and the streaming ``fault``; ``etag`` replaces
    the JSON API's ETag (the XML API's is the MD5); ``count_bytes(n, bucket)`` is told
    every media byte planned or taken back.
    """
    bucket = obj.bucket

    def counted(n: int) -> None:
        count_bytes(n, bucket)

    headers = object_headers(obj, etag)
    encoding = obj.meta.content_encoding
    no_transform = "no-transform" in (obj.meta.cache_control or "").lower()
    if (
        encoding == "gzip"
        and not no_transform
        and not accepts_gzip(ex.headers.get("accept-encoding"))
    ):
        _transcode(ex, f, headers, fault, counted)
        return
    if encoding:
        headers.append(("Content-Encoding", encoding))
    try:
        span = parse_range(ex.headers.get("range"), obj.size)
    except Unsatisfiable:
        ex.error(
            416,
            "Request range not satisfiable",
            "requestedRangeNotSatisfiable",
            [("Content-Range", f"bytes */{obj.size}")],
        )
        return
    ex.finish_body()
    if span is None:
        start, count, status = 0, obj.size, 200
    else:
        start, count, status = span[0], span[1] - span[0] + 1, 206
        headers.append(("Content-Range", f"bytes {span[0]}-{span[1]}/{obj.size}"))
    ex.send_head(status, headers, count)
    if ex.method == "HEAD" or count == 0:
        return
    # Count before sending so observers never see the client ahead of the counters; the
    # shortfall is subtracted when the stream is cut or the client goes away.
    planned = count if fault is None else min(count, max(fault.after_bytes, 1))
    if fault is not None and fault.kind in ("stall", "corrupt"):
        planned = count
    ex.bytes_out += planned
    ex.log_record()
    counted(planned)
    progress = [0]
    try:
        send_file(ex, f, start, count, fault, progress)
    finally:
        if progress[0] != planned:
            ex.bytes_out += progress[0] - planned
            ex.log_record()
            counted(progress[0] - planned)


def _sendfile(ex: Exchange, f: BinaryIO, offset: int, count: int, progress: list[int]) -> int:
    """os.sendfile loop that records progress in ``progress[0]`` as it goes (paced in
    pieces when the server simulates a network)."""
    sock = ex.sock
    out, fd = sock.fileno(), f.fileno()
    link = ex.link
    step = SENDFILE_BLOCK if link is None else link.piece
    tls = isinstance(sock, ssl.SSLSocket)  # bytes must go through TLS, not around it
    if tls:
        step = min(step, TLS_BLOCK)
    done = 0
    while done < count:
        want = min(count - done, step)
        if link is not None:
            link.sending(want)
        if tls:
            block = os.pread(fd, want, offset + done)
            sock.sendall(block)
            n = len(block)
        else:
            n = os.sendfile(out, fd, offset + done, want)
        if n == 0:
            break
        done += n
        progress[0] += n
    return done


def send_file(
    ex: Exchange, f: BinaryIO, offset: int, count: int, fault: Fault | None, progress: list[int]
) -> None:
    """Send ``count`` bytes of ``f`` from ``offset`` (adding to ``progress[0]``), or the
    faulty variant of that stream."""
    if fault is None:
        _sendfile(ex, f, offset, count, progress)
        return
    if fault.kind == "corrupt":
        f.seek(offset)
        ex.sock.sendall(bytes([f.read(1)[0] ^ 0xFF]))
        progress[0] += 1
        _sendfile(ex, f, offset + 1, count - 1, progress)
        return
    cut = min(fault.after_bytes, count)
    sent = _sendfile(ex, f, offset, cut, progress)
    if fault.kind == "stall":
        time.sleep(fault.stall_s)
        _sendfile(ex, f, offset + sent, count - sent, progress)
        return
    if sent >= count and fault.kind == "broken_stream":
        return
    if fault.kind == "status_after":
        ex.reset()
    else:
        ex.close_after()


def _transcode(
    ex: Exchange,
    f: BinaryIO,
    headers: list[tuple[str, str]],
    fault: Fault | None,
    count_bytes: Callable[[int], None],
) -> None:
    """Decompressive transcoding: whole body decompressed, chunked, Range ignored."""
    ex.finish_body()
    headers = [h for h in headers if h[0] != "Accept-Ranges"]
    headers.append(("Transfer-Encoding", "chunked"))
    ex.send_head(200, headers, None)
    if ex.method == "HEAD":
        return
    limit = fault.after_bytes if fault and fault.kind in ("broken_stream", "status_after") else None
    decomp = zlib.decompressobj(wbits=31)
    sent = 0
    while True:
        block = f.read(TRANSCODE_BLOCK)
        if not block:
            break
        data = decomp.decompress(block)
        while decomp.eof and decomp.unused_data:
            rest = decomp.unused_data
            decomp = zlib.decompressobj(wbits=31)
            data += decomp.decompress(rest)
        if limit is not None and sent + len(data) >= limit:
            data = data[: limit - sent]
            ex.write(b"%x\r\n%s\r\n" % (len(data), data) if data else b"")
            count_bytes(len(data))
            ex.close_after()
            return
        if data:
            ex.write(b"%x\r\n%s\r\n" % (len(data), data))
            sent += len(data)
            count_bytes(len(data))
    ex.write(b"0\r\n\r\n")
