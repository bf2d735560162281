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
from typing import BinaryIO, Protocol

import google_crc32c

from .exchange import BufferPool
from .faults import Fault
from .store import Hashes, StoreError

POOL = BufferPool()
PIPELINE_DEPTH = 3


@dataclasses.dataclass
class Window:
    """Which body bytes to keep: discard ``skip`` bytes, then keep up to ``keep`` bytes."""

    skip: int = 0
    keep: int | None = None  # None = everything to the end of the body


class BodySource(Protocol):
    """What ``pump`` reads: a request body (``exchange.Body``) or the rest of one."""

    @property
    def length(self) -> int | None:
        """Bytes still to come, when known."""

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as the body allows; 0 at its end."""


@dataclasses.dataclass
class Tail:
    """The last ``size`` bytes of a pumped body, held back from the file and the hashes.

    A multipart upload's media part is followed by its closing boundary; holding the body's
    tail back lets the media bytes be written and hashed once, as they arrive, and the
    boundary be found in ``data`` afterwards.
    """

    size: int
    data: bytes = b""


def pump(
    body: BodySource,
    out: BinaryIO,
    hashes: Hashes | None,
    window: Window,
    fault: Fault | None,
    tail: Tail | None = None,
) -> int:
    """Copy the kept window of the request body into ``out`` while hashing it (unless
    ``hashes`` is None: resumable chunks are hashed later, from the file).

    The remainder of the body (after the window, or after an upload fault's cut) is left unread
    for the caller to drain. Bodies larger than one buffer are pipelined: this thread receives,
    writes and takes the CRC32C while a helper thread runs MD5 over the previous pieces (recv,
    write, MD5 and large CRC32C calls all release the GIL). With ``tail``, the last
    ``tail.size`` kept bytes are neither written nor hashed but left in ``tail.data``. Returns
    the number of bytes written.

    Raises:
        ClientGone: the client disconnected or sent a malformed body.
    """
    stop: int | None = None if window.keep is None else window.skip + window.keep
    stall_at: int | None = None
    if fault is not None and fault.kind == "stall":
        stall_at = fault.after_bytes
    if fault is not None and fault.kind == "status_after":
        stop = fault.after_bytes if stop is None else min(stop, fault.after_bytes)
    expected = body.length if stop is None else stop
    cut = _Cut(window.skip, stop, stall_at, fault, tail)
    if hashes is None or (expected is not None and expected <= POOL.size):
        return _pump_loop(body, out, cut, None if hashes is None else hashes.update)
    return _pump_pipelined(body, out, hashes, cut)


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


@dataclasses.dataclass
class _Cut:
    """Where ``pump`` starts keeping, stops, stalls, and how much of the end it holds back."""

    skip: int
    stop: int | None
    stall_at: int | None
    fault: Fault | None
    tail: Tail | None


class _Emitter:
    """Writes and hashes kept pieces, holding back the last ``tail.size`` bytes if asked."""

    def __init__(
        self, out: BinaryIO, take: Callable[[memoryview], None] | None, tail: Tail | None
    ) -> None:
        self._out = out
        self._take = take
        self._hold = 0 if tail is None else tail.size
        self.held = bytearray()
        self.written = 0

    def _emit(self, piece: memoryview) -> None:
        if piece:
            self._out.write(piece)
            if self._take is not None:
                self._take(piece)
            self.written += len(piece)

    def feed(self, piece: memoryview) -> None:
        """Write and hash ``piece``, except what must stay held back."""
        if not self._hold:
            self._emit(piece)
            return
        if len(piece) >= self._hold:
            if self.held:
                self._emit(memoryview(bytes(self.held)))
            self._emit(piece[: len(piece) - self._hold])
            self.held = bytearray(piece[len(piece) - self._hold :])
            return
        self.held += piece
        extra = len(self.held) - self._hold
        if extra > 0:
            self._emit(memoryview(bytes(self.held[:extra])))
            del self.held[:extra]


def _pump_loop(
    body: BodySource, out: BinaryIO, cut: _Cut, take: Callable[[memoryview], None] | None
) -> int:
    """Receive the body into a pooled buffer, write the kept window and hand each kept piece
    to ``take`` (the hashing); stalls where the fault says. Returns the bytes written."""
    buf = POOL.get()
    view = memoryview(buf)
    emitter = _Emitter(out, take, cut.tail)
    stop, stall_at, fault = cut.stop, cut.stall_at, cut.fault
    pos = 0
    try:
        while stop is None or pos < stop:
            stall_at = _maybe_stall(pos, stall_at, fault)
            n = body.readinto(view[: _next_read(pos, len(view), stop, stall_at)])
            if not n:
                break
            lo = max(0, cut.skip - pos)
            if lo < n:
                emitter.feed(view[lo:n])
            pos += n
        _maybe_stall(pos, stall_at, fault)
        if cut.tail is not None:
            cut.tail.data = bytes(emitter.held)
        return emitter.written
    finally:
        view.release()
        POOL.put(buf)


def _pump_pipelined(body: BodySource, out: BinaryIO, hashes: Hashes, cut: _Cut) -> int:
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
        kept = _pump_loop(body, out, cut, take)
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
            raise StoreError(400, f"Invalid x-goog-hash header: {value}")
        digest = digest.strip()
        try:
            base64.b64decode(digest, validate=True)
        except ValueError as exc:
            raise StoreError(400, f"Invalid x-goog-hash header: {value}") from exc
        if key.strip().lower() == "crc32c":
            crc = digest
        elif key.strip().lower() == "md5":
            md5 = digest
    return crc, md5
