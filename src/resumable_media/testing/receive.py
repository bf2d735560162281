"""Request-body intake for uploads: large reusable buffers, disk writes, hashing, upload faults.

Invariants: body bytes are read with ``readinto`` into pooled multi-MiB buffers and written
straight to the destination file; only the kept window of the body is written and hashed; a
client that vanishes mid-body raises ``ClientGone`` and the caller discards whatever this request
wrote. Hash checks compare base64 digests and produce the exact GCS 400 messages.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import BinaryIO

from .exchange import BufferPool, Exchange
from .faults import Fault
from .store import Hashes, StoreError

POOL = BufferPool()


@dataclasses.dataclass
class Window:
    """Which body bytes to keep: discard ``skip`` bytes, then keep up to ``keep`` bytes."""

    skip: int = 0
    keep: int | None = None  # None = everything to the end of the body


def pump(ex: Exchange, out: BinaryIO, hashes: Hashes, window: Window, fault: Fault | None) -> int:
    """Copy the kept window of the request body into ``out`` while hashing it.

    The remainder of the body (after the window, or after an upload fault's cut) is left unread
    for the caller to drain. Returns the number of bytes kept.

    Raises:
        ClientGone: the client disconnected or sent a malformed body.
    """
    body = ex.body
    buf = POOL.get()
    view = memoryview(buf)
    try:
        stop: int | None = None if window.keep is None else window.skip + window.keep
        stall_at = fault.after_bytes if fault and fault.kind == "stall" else None
        if fault and fault.kind == "status_after":
            stop = fault.after_bytes if stop is None else min(stop, fault.after_bytes)
        kept = 0
        pos = 0
        while stop is None or pos < stop:
            want = len(view) if stop is None else min(len(view), stop - pos)
            if stall_at is not None:
                if pos >= stall_at:
                    time.sleep(fault.stall_s)  # type: ignore[union-attr]
                    stall_at = None
                else:
                    want = min(want, stall_at - pos)
            n = body.readinto(view[:want])
            if not n:
                break
            lo = max(0, window.skip - pos)
            if lo < n:
                piece = view[lo:n]
                out.write(piece)
                hashes.update(piece)
                kept += n - lo
            pos += n
        if stall_at is not None and pos >= stall_at:
            time.sleep(fault.stall_s)  # type: ignore[union-attr]
        return kept
    finally:
        view.release()
        POOL.put(buf)


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
