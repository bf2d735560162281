"""``cp --manifest FILE``: the bulk engine's ledger, written and trusted by ``cp``.

Invariants: one line per object once its outcome is final (the ledger's own guarantee);
a rerun skips an object only when the ledger records it done *and* the destination still
matches the record now (size, CRC32C and generation of the Cloud Storage side, the local
file's mtime); for a gs→gs copy the destination must also still hold the source's CRC32C.
"""

from __future__ import annotations

import os
import threading

from resumable_media._cli.copy import CopyJob, names
from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.transfer import CopyResult, skipped_result
from resumable_media._objects.urls import is_gs_url
from resumable_media.bulk.jobs import Action, JobResult, Status
from resumable_media.bulk.ledger import Ledger

__all__ = ["CpManifest"]

_DONE = "the manifest records it copied and the destination still matches"


def _action(job: CopyJob) -> Action:
    if job.source is not None:
        return Action.REWRITE
    return Action.DOWNLOAD if job.download else Action.UPLOAD


def _action_of(source: str, destination: str) -> Action:
    if not is_gs_url(source):
        return Action.UPLOAD
    return Action.REWRITE if is_gs_url(destination) else Action.DOWNLOAD


def _mtime(path: os.PathLike[str] | str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class CpManifest:
    """The ``--manifest`` of one ``cp`` run.

    Args:
        path: The JSON-lines file (created when missing; earlier runs are read back).
    """

    def __init__(self, path: str) -> None:
        self.ledger = Ledger(path)
        self._lock = threading.Lock()

    def done(self, storage: Storage, job: CopyJob) -> CopyResult | None:
        """A skipped result when the ledger has this copy done and it is still in place.

        Raises:
            TransferError: When the destination's metadata cannot be read.
        """
        source, destination = names(job)
        if self.ledger.lookup(source, destination) is None:
            return None
        if job.download:
            meta = job.meta or {}
            mtime = _mtime(job.path)
            if mtime is None:
                return None
        else:
            found = storage.stat(job.url)
            if found is None:
                return None
            meta = found
            mtime = None if job.source is not None else _mtime(job.path)
            if job.source is not None and (job.meta or {}).get("crc32c") != meta.get("crc32c"):
                return None
        generation = int(meta["generation"]) if meta.get("generation") else None
        crc32c = meta.get("crc32c")
        if not self.ledger.still_done(
            source,
            destination,
            size=int(meta.get("size", -1)),
            crc32c=crc32c,
            generation=generation,
            mtime_ns=mtime,
        ):
            return None
        return skipped_result(
            source,
            destination,
            _DONE,
            bytes=int(meta.get("size", 0)),
            crc32c=crc32c,
            md5=meta.get("md5Hash"),
            generation=generation,
            verified=True,
            mtime_ns=mtime,
        )

    def record(self, job: CopyJob, result: CopyResult | None, error: TransferError | None) -> None:
        """Append the final outcome of ``job``."""
        source, destination = names(job)
        if result is not None:
            mtime = result.mtime_ns
            if mtime is None and job.download:
                mtime = _mtime(job.path)
            line = JobResult(
                source=source,
                destination=destination,
                action=_action(job),
                status=Status.SKIPPED if result.skipped else Status.COPIED,
                size=result.bytes if not result.skipped else max(job.size, 0),
                crc32c=result.crc32c,
                md5=result.md5,
                generation=result.generation,
                seconds=result.seconds,
                mtime_ns=mtime,
            )
        else:
            line = JobResult(
                source=source,
                destination=destination,
                action=_action(job),
                status=Status.FAILED,
                size=max(job.size, 0),
                error=f"{error.target}: {error.reason}" if error else "failed",
            )
        with self._lock:
            self.ledger.record(line)

    def refused(self, error: TransferError, destination: str) -> None:
        """Append a source that failed before any job existed (e.g. no such file)."""
        line = JobResult(
            source=error.target,
            destination=destination,
            action=_action_of(error.target, destination),
            status=Status.FAILED,
            size=0,
            error=f"{error.target}: {error.reason}",
        )
        with self._lock:
            self.ledger.record(line)

    def close(self) -> None:
        """Flush the ledger to disk."""
        self.ledger.close()
