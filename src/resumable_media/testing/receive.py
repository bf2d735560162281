"""Request-body intake for uploads: large reusable buffers, disk writes, hashing, upload faults.

Invariants: body bytes are read with ``readinto`` into pooled 4 MiB buffers and written
straight to the destination file; only the kept window of the body is written and hashed; a
client that vanishes mid-body raises ``ClientGone`` and the caller discards whatever this request
wrote. Hash checks compare base64 digests and produce the exact GCS 400 messages.
"""

from __future__ import annotations

import base64
import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

import google_crc32c

from .exchange import BufferPool, Exchange
from .faults import Fault
from .store import Hashes, StoreError

POOL = BufferPool()
PIPELINE_DEPTH = 3


@dataclasses.dataclass
class Window:
    """Which body bytes to keep: discard ``skip`` bytes, then keep up to ``keep`` bytes."""

    skip: int = 0
    keep: int | None = None  # None = everything to the end of the body


def pump(
    ex: Exchange, out: BinaryIO, hashes: Hashes | None, window: Window, fault: Fault | None
) -> int:
    """Copy the kept window of the request body into ``out`` while hashing it (unless
    ``hashes`` is None: resumable chunks are hashed later, from the file).

    The remainder of the body (after the window, or after an upload fault's cut) is left unread
    for the caller to drain. Bodies larger than one buffer are pipelined: this thread receives,
    writes and takes the CRC32C while a helper thread runs MD5 over the previous pieces (recv,
    write, MD5 and large CRC32C calls all release the GIL). Returns the number of bytes kept.

    Raises:
        ClientGone: the client disconnected or sent a malformed body.
    """
    stop: int | None = None if window.keep is None else window.skip + window.keep
    stall_at: int | None = None
    if fault is not None and fault.kind == "stall":
        stall_at = fault.after_bytes
    if fault is not None and fault.kind == "status_after":
        stop = fault.after_bytes if stop is None else min(stop, fault.after_bytes)
    expected = ex.body.length if stop is None else stop
    if hashes is None or (expected is not None and expected <= POOL.size):
        return _pump_serial(ex, out, hashes, window.skip, stop, stall_at, fault)
    return _pump_pipelined(ex, out, hashes, window.skip, stop, stall_at, fault)


def _next_read(pos: int, size: int, stop: int | None, stall_at: int | None) -> int:
    want = size if stop is None else min(size, stop - pos)
    if stall_at is not None and pos < stall_at:
        want = min(want, stall_at - pos)
    return want


def _maybe_stall(pos: int, stall_at: int | None, fault: Fault | None) -> int | None:
    """Sleep once the body position reaches the stall point; returns the new stall point."""
    if stall_at is not None and fault is not None and pos >= stall_at:
        time.sleep(fault.stall_s)
        return None
    return stall_at


def _pump_loop(
    ex: Exchange,
    out: BinaryIO,
    skip: int,
    stop: int | None,
    stall_at: int | None,
    fault: Fault | None,
    take: Callable[[memoryview], None] | None,
) -> int:
    """Receive the body into a pooled buffer, write the kept window and hand each kept piece
    to ``take`` (the hashing); stalls where the fault says. Returns the bytes kept."""
    buf = POOL.get()
    view = memoryview(buf)
    kept = pos = 0
    try:
        while stop is None or pos < stop:
            stall_at = _maybe_stall(pos, stall_at, fault)
            n = ex.body.readinto(view[: _next_read(pos, len(view), stop, stall_at)])
            if not n:
                break
            lo = max(0, skip - pos)
            if lo < n:
                out.write(view[lo:n])
                if take is not None:
                    take(view[lo:n])
                kept += n - lo
            pos += n
        _maybe_stall(pos, stall_at, fault)
        return kept
    finally:
        view.release()
        POOL.put(buf)


def _pump_serial(
    ex: Exchange,
    out: BinaryIO,
    hashes: Hashes | None,
    skip: int,
    stop: int | None,
    stall_at: int | None,
    fault: Fault | None,
) -> int:
    take = None if hashes is None else hashes.update
    return _pump_loop(ex, out, skip, stop, stall_at, fault, take)


def _pump_pipelined(
    ex: Exchange,
    out: BinaryIO,
    hashes: Hashes,
    skip: int,
    stop: int | None,
    stall_at: int | None,
    fault: Fault | None,
) -> int:
    # This thread receives, writes and takes the CRC32C of an immutable copy (google-crc32c
    # needs bytes); a helper thread runs MD5, the slowest step, over those copies.
    md5 = hashes.md5
    backlog: queue.Queue[bytes | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
    failure: list[BaseException] = []

    def md5_worker() -> None:
        while (data := backlog.get()) is not None:
            try:
                md5.update(data)
            except BaseException as exc:  # surfaced by the receiving thread
                failure.append(exc)

    def take(piece: memoryview) -> None:
        data = bytes(piece)
        hashes.crc = google_crc32c.extend(hashes.crc, data)
        hashes.size += len(data)
        if md5 is not None:
            backlog.put(data)

    worker = threading.Thread(target=md5_worker, name="upload-md5", daemon=True)
    if md5 is not None:
        worker.start()
    try:
        kept = _pump_loop(ex, out, skip, stop, stall_at, fault, take)
    finally:
        if md5 is not None:
            backlog.put(None)
            worker.join()
    if failure:
        raise failure[0]
    return kept


def check_hashes(hashes: Hashes, crc32c: str | None, md5: str | None) -> None:
    """Compare client-provided digests with the computed ones.

    Raises:
        StoreError: 400 with the GCS message naming the digest that was sent.
    """
    if crc32c is not None and crc32c != hashes.crc_b64():
        raise StoreError(
            400, f'Provided CRC32C "{crc32c}" doesn\'t match calculated CRC32C "{hashes.crc_b64()}"'
        )
    if md5 is not None:
        calculated = hashes.md5_b64()
        if calculated is not None and md5 != calculated:
            raise StoreError(
                400, f'Provided MD5 hash "{md5}" doesn\'t match calculated MD5 hash "{calculated}"'
            )


def parse_goog_hash(value: str | None) -> tuple[str | None, str | None]:
    """Split an ``x-goog-hash`` request header into (crc32c, md5) base64 values.

    Raises:
        StoreError: 400 when the header is malformed.
    """
    crc = md5 = None
    if not value:
        return None, None
    for item in value.split(","):
        key, sep, digest = item.strip().partition("=")
        if not sep:
            raise StoreError(400, f"Invalid x-goog-hash header: {value!r}")
        digest = digest.strip()
        try:
            base64.b64decode(digest, validate=True)
        except ValueError as exc:
            raise StoreError(400, f"Invalid x-goog-hash header: {value!r}") from exc
        if key.strip().lower() == "crc32c":
            crc = digest
        elif key.strip().lower() == "md5":
            md5 = digest
    return crc, md5
