"""Plain data for the accelerator: chunk layouts, job specs, results.

Invariants: everything here is a frozen, slotted dataclass of ints, strings, bytes and
tuples, so it pickles cheaply across process boundaries and never drags a socket,
file or exception object with it.  Ranges are inclusive at both ends (HTTP style);
``offset`` fields are positions in the destination's temporary file.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from resumable_media import _transport
from resumable_media._protocol.ranged import add_generation
from resumable_media.common import RetryStrategy

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
    "DEFAULT_UPLOAD_THREADS",
    "NEAR_CONNECTIONS",
    "NEAR_LATENCY_S",
    "WRITE_MODES",
    "Chunk",
    "PartJob",
    "RangeJob",
    "TransferResult",
    "balanced_part_size",
    "connections_for",
    "first_byte_seconds",
    "pin_generation",
    "plan_chunks",
    "resolve_write_mode",
]

DEFAULT_CONNECTIONS = 32
"""int: Connections a large transfer keeps in flight by default (download and upload).

A real link caps each stream (GCS serves roughly 50-200 MB/s per connection) and charges a
round trip per request, so a parallel transfer is as fast as the connections it keeps
busy: under the ``wan`` profile of ``resumable_media.testing.network`` (30 ms, 50 MB/s per
connection, 1 GB/s in total), 1 GB/s needs at least 20 of them, and more while some wait
out their round trip.  On loopback (``lan``) the thread count itself is nearly free (256 MiB
download, 4 interleaved runs, client CPU: 2 threads x 32 MiB 1.56 s/GiB, 8 x 32 MiB 1.61);
what costs is the number of requests (16 x 16 MiB 2.09, 32 x 8 MiB 2.77 s/GiB), and the
loopback server's own contention: a 256 MiB download took 0.89-1.05 s with 2 x 32 MiB and
1.19-1.46 s with 16 x 16 MiB in the same runs.  Under ``wan`` on the shared 2-core
machine 16, 24 and 32 connections all reached the same CPU-bound 150-300 MB/s; 32 is what a free
machine needs for the 1 GB/s cap, and what the published ``wan`` table measured.
"""

DEFAULT_CHUNK_SIZE = 16 * 2**20
"""int: Default download chunk (one ranged GET per chunk).

Small enough that a 256 MiB object keeps 16 connections busy (800 MB/s under ``wan``), a
384 MiB one all of ``DEFAULT_CONNECTIONS``; large enough that loopback downloads do not pay
for many more requests (see ``DEFAULT_CONNECTIONS``).  The chunk is fixed before the size is
known (the first range doubles as the size probe); ``cp`` knows the size and balances its
chunks with :func:`balanced_part_size` instead.
"""

DEFAULT_PART_SIZE = 32 * 2**20
"""int: The largest default XML multipart-upload part (see :func:`balanced_part_size`).

The same size as transfer_manager's default chunk.  Parts shrink, down to
``MIN_BALANCED_PART``, so that every one of the connections has a part to send.
"""

DEFAULT_UPLOAD_THREADS = DEFAULT_CONNECTIONS
"""int: Default parts in flight for ParallelUpload (see ``DEFAULT_CONNECTIONS``).

Before it was 4 (32 MiB x 4 was the fastest against the loopback server with no latency);
under ``wan`` that is 200 MB/s at most.  On loopback 32 parts of 8 MiB cost 0.59-0.73
client CPU-s/GiB against 0.36-0.49 for 4 x 32 MiB (256 MiB, interleaved runs; the wall
times overlapped within the noise of the shared machine).
"""

DEFAULT_STREAM_THREADS = 8
"""int: Default connections of a ParallelDownload into a stream or buffer, which holds up to
``max(4, threads) x chunk_size`` bytes out of order: 8 x 16 MiB = 128 MiB, the bound it had
with 2 threads of 32 MiB before ``DEFAULT_CONNECTIONS``."""

NEAR_CONNECTIONS = 2
"""int: Connections of a default download whose server answers within ``NEAR_LATENCY_S``.

Concurrency hides round trips; with next to none (loopback, a LAN), more connections only
add contention.  Loopback, 256 MiB, 4 alternating runs, medians: 16 MiB chunks over 8, 4
and 2 connections took 0.92, 0.81 and 0.71 s (32 MiB over 2: 0.67 s); 2 was the default
before ``DEFAULT_CONNECTIONS``.  Uploads use the same rule with the initiate's round trip."""

NEAR_LATENCY_S = 0.005
"""float: A first response's headers (connection set-up included) arriving sooner than this
mark a near server: an emulator, loopback or a LAN.  Cloud Storage's first byte takes tens
of milliseconds even within a region; the loopback server's takes 1-2 ms on an idle
machine, up to ~7 ms on a loaded one (which then gets ``DEFAULT_CONNECTIONS``: harmless)."""


def first_byte_seconds(response: Any) -> float | None:
    """How long a response's headers took to arrive (``requests``' ``elapsed``), if known."""
    elapsed = getattr(response, "elapsed", None)
    seconds = getattr(elapsed, "total_seconds", None)
    return float(seconds()) if callable(seconds) else None


def connections_for(first_byte_s: float | None, default: int) -> int:
    """The connections a default download keeps in flight, given its first round trip.

    Args:
        first_byte_s: Seconds from sending the first ranged GET to its headers (None when
            the transport does not say).
        default: The connections otherwise (``DEFAULT_CONNECTIONS``).

    Returns:
        ``NEAR_CONNECTIONS`` (at most ``default``) for a near server, else ``default``.
    """
    if first_byte_s is not None and 0 <= first_byte_s < NEAR_LATENCY_S:
        return min(NEAR_CONNECTIONS, default)
    return default


MIN_BALANCED_PART = 8 * 2**20
"""int: Parts and chunks are not shrunk below this to feed more connections."""

MAX_IN_FLIGHT_BYTES = 256 * 2**20
"""int: Bytes of parts in flight at once, at most, when parts are balanced (a memory bound:
each upload part is mapped while it is sent, and counts in the RSS: 256 MiB under ``wan``
with 32 x 8 MiB measured 290 MiB peak RSS against 161 MiB for the former 4 x 32 MiB)."""

_GRANULE = 256 * 2**10


def balanced_part_size(size: int, largest: int, connections: int) -> int:
    """The part (or chunk) size that keeps ``connections`` busy over ``size`` bytes.

    Whole rounds: the parts come out the same size and a multiple of ``connections`` in
    number, so the last round does not run on a few connections while the rest idle.  No
    part is larger than ``largest`` nor than ``MAX_IN_FLIGHT_BYTES / connections``, and none
    is made smaller than ``MIN_BALANCED_PART`` (a ``largest`` at or below it is kept as is).

    Examples with a 32 MiB ``largest``: 32 connections, 256 MiB gives 32 x 8 MiB and 1 GiB
    128 x 8 MiB (the memory bound); 24 connections, 256 MiB gives 24 x 10.75 MiB and 1 GiB
    96 x 10.75 MiB (4 rounds); 100 MiB gives 13 x 8 MiB; 8 connections, 256 MiB 8 x 32 MiB.
    """
    if largest <= MIN_BALANCED_PART or size <= 0 or connections <= 1:
        return largest
    bound = -(-max(MIN_BALANCED_PART, MAX_IN_FLIGHT_BYTES // connections) // _GRANULE) * _GRANULE
    ceiling = min(largest, bound)
    rounds = -(-size // (connections * ceiling))
    part = -(-size // (connections * rounds))
    part = -(-part // _GRANULE) * _GRANULE
    return max(MIN_BALANCED_PART, min(ceiling, part))


WRITE_MODES = ("auto", "pwrite", "mmap")
"""tuple[str, ...]: The ways a download worker can put body bytes into the temporary file.

"pwrite" reads each step into a reused buffer, hashes it there and ``pwrite``-s it; "mmap"
reads straight into the mapped slice of the file.  Which is faster depends on how the
kernel gets fresh page-cache memory (1 GiB, 2 threads, loopback, 3-6 alternating runs):

- memory that stays with the guest (no free-page reporting, or reporting held off): pwrite
  0.56-0.78 s, mmap 0.84-0.87 s -- each first store into a shared mapping takes a page
  fault plus ``page_mkwrite``, which costs more than one copy out of a hot buffer;
- a VM guest that hands freed memory back to its host (virtio-balloon free-page
  reporting, e.g. Firecracker microVMs): pwrite 1.5-2.4 s, mmap 0.78-0.88 s -- buffered
  writes into re-faulted host memory are where that cost lands.

"auto" (the default) picks mmap when free-page reporting is active, pwrite otherwise.
"""


def resolve_write_mode(mode: str) -> str:
    """Return the concrete write mode for ``mode`` ("auto" is decided here, per call).

    Raises:
        ValueError: For an unknown mode.
    """
    if mode not in WRITE_MODES:
        raise ValueError(f"write_mode must be one of {WRITE_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    return "mmap" if _free_page_reporting_active() else "pwrite"


_PAGE_REPORTING_ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"
_MAX_REPORTED_ORDER = 10  # blocks above the buddy allocator's largest order are never reported


def _free_page_reporting_active() -> bool:
    try:
        with open(_PAGE_REPORTING_ORDER, encoding="ascii") as handle:
            order = int(handle.read().strip())
    except (OSError, ValueError):
        return False
    return order <= _MAX_REPORTED_ORDER


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """One contiguous piece of a transfer.

    Attributes:
        index: Position in the layout (0-based, in object order).
        start: First object byte of the chunk (inclusive).
        end: Last object byte of the chunk (inclusive).
        offset: Where the chunk starts in the temporary file.
    """

    index: int
    start: int
    end: int
    offset: int

    @property
    def length(self) -> int:
        """int: Number of bytes in the chunk."""
        return self.end - self.start + 1


def plan_chunks(start: int, end: int, chunk_size: int) -> list[Chunk]:
    """Split the inclusive byte range ``[start, end]`` into chunks of ``chunk_size``.

    Args:
        start: First byte wanted.
        end: Last byte wanted (inclusive); ``end == start - 1`` means an empty range.
        chunk_size: Bytes per chunk (the last chunk may be shorter).

    Returns:
        The chunks in order; an empty list for an empty range.

    Raises:
        ValueError: If ``chunk_size`` is not positive or the range is inverted.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if end < start - 1:
        raise ValueError(f"inverted byte range {start}-{end}")
    chunks: list[Chunk] = []
    position = start
    while position <= end:
        last = min(position + chunk_size - 1, end)
        chunks.append(Chunk(index=len(chunks), start=position, end=last, offset=position - start))
        position = last + 1
    return chunks


def pin_generation(url: str, generation: int | None) -> str:
    """``url`` pinned to ``generation`` (None: unchanged): the core's
    :func:`~resumable_media._protocol.download.add_generation`, under the name other
    modules import."""
    return add_generation(url, generation)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RangeJob:
    """A ranged GET whose body lands in ``path`` at ``offset`` (one download chunk).

    Attributes:
        transfer_id: The transfer this job belongs to (for cancellation).
        index: The chunk index.
        url: Media URL (the worker pins ``generation`` into it).
        path: The temporary file (preallocated to its final size).
        offset: Where the chunk starts in ``path``.
        start: First object byte of the chunk.
        length: Bytes in the chunk.
        done: Bytes already present at the start of the chunk (resume).
        crc: CRC32C of those ``done`` bytes.
        total: The object size every ``Content-Range`` must report.
        generation: The generation every response must report, if known.
        headers: Extra request headers.
        factory: Where the worker gets its transport: the pickled factory, or an in-process
            handle (``processes=0`` only).
        retry: The retry policy, or None for a single attempt.
        timeout: Seconds to wait (one number, a (connect, read) pair, or None).
        write_mode: How body bytes reach ``path``: "pwrite" (read into a reused buffer,
            hashed there, written with ``os.pwrite``) or "mmap" (read straight into the
            mapped slice of the file, hashed on the mapped memory).
    """

    transfer_id: int
    index: int
    url: str
    path: str
    offset: int
    start: int
    length: int
    done: int
    crc: int
    total: int
    generation: int | None
    headers: tuple[tuple[str, str], ...]
    factory: _transport.TransportSource
    retry: RetryStrategy | None
    timeout: _transport.Timeout
    write_mode: str = "pwrite"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PartJob:
    """One XML multipart-upload part, read from ``path`` and PUT to ``url``.

    Attributes:
        transfer_id: The transfer this job belongs to (for cancellation).
        index: The part index (part number minus one).
        url: The XML object URL (the part's query is added by the core).
        upload_id: The multipart upload's id.
        path: The source file.
        offset: First byte of the part in the file.
        length: Bytes in the part.
        headers: Extra request headers.
        factory: Where the worker gets its transport: the pickled factory, or an in-process
            handle (``processes=0`` only).
        retry: The retry policy, or None for a single attempt.
        timeout: Seconds to wait (one number, a (connect, read) pair, or None).
    """

    transfer_id: int
    index: int
    url: str
    upload_id: str
    path: str
    offset: int
    length: int
    headers: tuple[tuple[str, str], ...]
    factory: _transport.TransportSource
    retry: RetryStrategy | None
    timeout: _transport.Timeout


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TransferResult:
    """What a finished transfer did.

    Attributes:
        bytes: Size of the object transferred into the destination (or uploaded).  A run
            that resumed an earlier one counts the whole object, including what the earlier
            run already moved, so ``throughput`` overstates that run's own rate.
        seconds: Wall-clock duration.
        throughput: ``bytes / seconds`` (bytes per second).
        crc32c: Base64 CRC32C of the bytes (as GCS shows it), or None.
        md5: Base64 MD5 of the bytes, or None when not computed.
        verified: True when a hash was compared with the server's and matched.
        generation: The object generation, when the server reported one.
        resource: The final object resource (JSON API uploads: ``PipelinedUpload``), else None.
        headers: The final object's response headers, lower-case names (XML API uploads:
            ``ParallelUpload``), else None.
        resumed: True when this run continued an interrupted one (a resume journal, or an
            upload session given as ``resumable_url``).
        moved: Bytes this run itself transferred (less than ``bytes`` after a resume).
    """

    bytes: int
    seconds: float
    throughput: float
    crc32c: str | None
    md5: str | None
    verified: bool
    generation: int | None
    resource: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    resumed: bool = False
    moved: int = -1

    def __post_init__(self) -> None:
        if self.moved < 0:
            object.__setattr__(self, "moved", self.bytes)

    @classmethod
    def since(cls, began: float, *, bytes: int, **fields: Any) -> TransferResult:
        """The result of a transfer that started at ``time.monotonic() == began``
        (``seconds`` and ``throughput`` are measured here)."""
        seconds = max(time.monotonic() - began, 1e-9)
        return cls(bytes=bytes, seconds=seconds, throughput=bytes / seconds, **fields)

    @property
    def response(self) -> dict[str, Any] | None:
        """The ``resource`` when there is one, else the ``headers`` (kept for callers of
        the earlier single field; prefer the typed ones)."""
        return self.resource if self.resource is not None else self.headers


def headers_tuple(
    headers: dict[str, str] | Sequence[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    """Normalise caller headers to a hashable, picklable tuple of pairs.

    Args:
        headers: A mapping, a sequence of pairs, or None.

    Returns:
        The headers as a tuple of ``(name, value)`` pairs.
    """
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple((str(name), str(value)) for name, value in items)
