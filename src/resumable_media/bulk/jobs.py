"""The plain data that crosses process boundaries: job specs, results, and the engine's spec.

Invariants:
- Everything here is a frozen, slotted, keyword-only dataclass of plain values, so jobs
  pickle cheaply to thread, process and Dask executors.  A job describes one object; it
  never carries object bytes.
- Every job is idempotent: copies carry a generation precondition on the destination (the
  generation seen at plan time, or 0 when it was absent) and downloads/rewrites pin the
  source generation, so running a job twice (a worker died after finishing it) either
  repeats the same outcome or finds the destination already equal and reports success.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from resumable_media import common
from resumable_media._objects.client import Storage
from resumable_media._objects.urls import Endpoint

__all__ = ["Action", "EngineSpec", "Job", "JobResult", "Status", "StorageSpec"]


class Action(str, enum.Enum):
    """What a job does."""

    UPLOAD = "upload"
    DOWNLOAD = "download"
    REWRITE = "rewrite"
    DELETE = "delete"


class Status(str, enum.Enum):
    """A job's outcome, as the ledger records it."""

    COPIED = "copied"
    SKIPPED = "skipped"
    FAILED = "failed"
    DELETED = "deleted"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One object to copy or delete.

    Attributes:
        action: What to do.
        source: Local path or ``gs://`` URL of the source (``""`` for a delete).
        destination: Local path or ``gs://`` URL of the destination.
        size: Bytes of the source (of the destination for a delete).
        crc32c: Source CRC32C when known (objects; local files once hashed).
        md5: Source MD5 when known.
        source_generation: The source object's generation at plan time (pinned).
        if_generation_match: The destination object's generation at plan time, 0 when it
            was absent (a precondition; for a delete, the generation to delete).
        mtime_ns: Local side's modification time at plan time (local deletes check it).
        posix: A download's ``goog-reserved-*`` custom metadata (mtime, mode), which
            ``preserve`` restores on the local file.
    """

    action: Action
    source: str
    destination: str
    size: int
    crc32c: str | None = None
    md5: str | None = None
    source_generation: int | None = None
    if_generation_match: int | None = None
    mtime_ns: int | None = None
    posix: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """The outcome of one object: one ledger line.

    Attributes:
        source: As in the job (``""`` for a delete).
        destination: As in the job.
        action: The job's action.
        status: copied, skipped, failed or deleted.
        size: Bytes of the object.
        crc32c: CRC32C of the copied bytes (or of the matching object when skipped).
        md5: MD5 when known.
        generation: The object's generation on the Cloud Storage side of the copy
            (destination for uploads and rewrites, source for downloads).
        error: Why it failed (names the object and what to do), else None.
        seconds: Time the job took.
        mtime_ns: The local file's mtime after the job (uploads: before reading it).
        inode: The local file's inode (for the checksum cache; not in the ledger).
        pending: A download's verified temp file still to be made durable and renamed
            onto ``destination`` (:func:`~resumable_media.bulk.engine.commit`); None once
            it is in place.  Not in the ledger: a result is recorded only once committed.
    """

    source: str
    destination: str
    action: Action
    status: Status
    size: int
    crc32c: str | None = None
    md5: str | None = None
    generation: int | None = None
    error: str | None = None
    seconds: float = 0.0
    mtime_ns: int | None = None
    inode: int | None = None
    pending: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The ledger / ``--json`` line of this result."""
        return {
            "source": self.source,
            "destination": self.destination,
            "action": self.action.value,
            "status": self.status.value,
            "size": self.size,
            "crc32c": self.crc32c,
            "md5": self.md5,
            "generation": self.generation,
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "mtime_ns": self.mtime_ns,
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StorageSpec:
    """How a worker builds its own :class:`Storage` (transports from a picklable factory).

    Attributes:
        endpoint: Where requests go.
        headers: Extra headers for every request (e.g. ``x-retry-test-id``).
        factory: A picklable zero-argument transport factory, or None for the endpoint's
            default (anonymous for emulators, Google default credentials otherwise).
        retry: Retry policy of metadata, listing and transfer requests.
        key: Identifies this spec in a worker's cache of built storages.
    """

    endpoint: Endpoint
    headers: tuple[tuple[str, str], ...] = ()
    factory: Callable[[], Any] | None = None
    retry: common.RetryStrategy | None = None
    key: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_storage(cls, storage: Storage) -> StorageSpec:
        """The spec that rebuilds ``storage`` in another process."""
        return cls(
            endpoint=storage.endpoint,
            headers=tuple(storage.factory.headers.items()),
            factory=storage.factory.inner,
            retry=storage.retry,
        )

    def build(self) -> Storage:
        """A new :class:`Storage` (one transport per thread, built lazily)."""
        headers: Mapping[str, str] = dict(self.headers)
        return Storage(self.endpoint, headers, retry=self.retry, factory=self.factory)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EngineSpec:
    """Everything a worker needs besides the job: transports and copy settings.

    Attributes:
        storage: How to build transports.
        chunk_size: Objects larger than this go through the accelerator (in-process).
        checksum: ``crc32c``, ``md5`` or None (end-to-end verification of each copy).
        no_clobber: Leave existing destinations alone (``cp -n``): an upload or rewrite
            is sent with ``ifGenerationMatch=0`` and a download skips an existing file;
            either way the job reports ``skipped``.
        preserve: Keep the local mtime in the object's metadata, and restore it (and the
            mode) on download, as gsutil's ``-P`` does.
        content_type: The uploads' content type (None: guessed from each file's name).
    """

    storage: StorageSpec
    chunk_size: int = 32 * 2**20
    checksum: common.Checksum = "crc32c"
    no_clobber: bool = False
    preserve: bool = False
    content_type: str | None = None
