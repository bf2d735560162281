"""Running one job: the same code in a thread, a worker process or a Dask worker.

Invariants:
- Copies go through the command's own per-object code (:func:`upload_file`,
  :func:`download_object`, :meth:`Storage.rewrite`), never a second copy of it; only the
  precondition handling that makes a job idempotent lives here.
- A job never raises for a failure of its object: it returns a ``failed`` result naming
  the object and the reason, so one bad object never stops the others.  Only a user
  interrupt (:class:`Interrupted`, ``KeyboardInterrupt``) propagates.
- A precondition failure (HTTP 412) after a re-run is success when the destination already
  holds the source's bytes (size and CRC32C equal), and a failure otherwise: a destination
  changed by someone else since planning is never overwritten.
- Each process builds its transports once per :class:`StorageSpec` (keyed by ``spec.key``),
  from the spec's picklable factory.
- Durability is batched, never skipped: a small download run with ``defer_durability``
  comes back ``pending`` (verified, in its temp file); :func:`commit` makes a batch of them
  durable in one pass (``syncfs``), renames them into place and makes the renames durable
  before the results are final.  Only final results reach the ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import mimetypes
import os
import pathlib
import threading
import time
from collections.abc import Callable, Sequence

from resumable_media._objects.client import (
    PreconditionFailed,
    Storage,
    TransferError,
    describe_error,
)
from resumable_media._objects.transfer import (
    TEMP_FILES,
    CopyOptions,
    Interrupted,
    commit_files,
    download_object,
    upload_file,
)
from resumable_media._objects.urls import GsUrl, parse_gs_url
from resumable_media.bulk.crccache import file_crc32c
from resumable_media.bulk.jobs import Action, EngineSpec, Job, JobResult, Status, StorageSpec

__all__ = ["commit", "run_job", "run_shard", "storage_for"]

_LOGGER = logging.getLogger(__name__)
_STORAGES: dict[str, Storage] = {}
_STORAGES_LOCK = threading.Lock()
_NEVER = threading.Event()


def storage_for(spec: StorageSpec) -> Storage:
    """This process's :class:`Storage` for ``spec`` (built on first use)."""
    with _STORAGES_LOCK:
        storage = _STORAGES.get(spec.key)
        if storage is None:
            storage = _STORAGES[spec.key] = spec.build()
        return storage


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc`` (its own, or its cause's response's)."""
    current: BaseException | None = exc
    while current is not None:
        status = getattr(current, "status", None)
        if isinstance(status, int):
            return status
        code = getattr(getattr(current, "response", None), "status_code", None)
        if isinstance(code, int):
            return code
        current = current.__cause__
    return None


def _options(engine: EngineSpec, job: Job, defer: bool = False) -> CopyOptions:
    return CopyOptions(
        chunk_size=engine.chunk_size,
        processes=0,  # large objects use the accelerator's threads inside this worker
        threads=None,
        checksum=engine.checksum,
        resume=True,
        if_generation_match=job.if_generation_match,
        content_type=engine.content_type,
        no_clobber=engine.no_clobber,
        preserve=engine.preserve,
        defer_fsync=defer,
        make_parents=True,
    )


def _result(job: Job, status: Status, **fields: object) -> JobResult:
    base: dict[str, object] = {
        "source": job.source,
        "destination": job.destination,
        "action": job.action,
        "status": status,
        "size": job.size,
        "crc32c": job.crc32c,
        "md5": job.md5,
    }
    base.update(fields)
    return JobResult(**base)  # type: ignore[arg-type]


def _already_there(storage: Storage, job: Job, url: GsUrl, crc32c: str | None) -> JobResult:
    """After a 412: success if the destination holds exactly the source, else a failure."""
    current = storage.stat(url)
    same_size = current is not None and int(current.get("size", -1)) == job.size
    if current is not None and same_size and crc32c and current.get("crc32c") == crc32c:
        return _result(
            job,
            Status.COPIED,
            crc32c=crc32c,
            md5=current.get("md5Hash"),
            generation=int(current["generation"]),
        )
    return _result(
        job,
        Status.FAILED,
        error=f"{url}: the destination changed since it was listed (another writer?); "
        "not overwritten; run the sync again to compare afresh",
    )


def _upload(
    storage: Storage, engine: EngineSpec, job: Job, cancel: threading.Event, defer: bool
) -> JobResult:
    path = pathlib.Path(job.source)
    url = parse_gs_url(job.destination)
    before = path.stat()
    content_type = (
        engine.content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    try:
        copied = upload_file(storage, path, url, _options(engine, job), content_type)
    except TransferError as exc:
        if _status(exc) != 412:
            raise
        if engine.no_clobber:
            return _result(job, Status.SKIPPED)
        return _already_there(storage, job, url, file_crc32c(path))
    after = path.stat()
    unchanged = (before.st_size, before.st_mtime_ns, before.st_ino) == (
        after.st_size,
        after.st_mtime_ns,
        after.st_ino,
    )
    return _result(
        job,
        Status.COPIED,
        size=copied.bytes,
        crc32c=copied.crc32c,
        md5=copied.md5,
        generation=copied.generation,
        mtime_ns=before.st_mtime_ns,
        inode=before.st_ino if unchanged else None,
    )


def _download(
    storage: Storage, engine: EngineSpec, job: Job, cancel: threading.Event, defer: bool
) -> JobResult:
    url = parse_gs_url(job.source)
    destination = pathlib.Path(job.destination)
    meta: dict[str, object] = {"size": str(job.size), "crc32c": job.crc32c, "md5Hash": job.md5}
    if job.posix:
        meta["metadata"] = dict(job.posix)
    if job.source_generation is not None:
        meta["generation"] = str(job.source_generation)
    if engine.no_clobber and os.path.lexists(destination):
        return _result(job, Status.SKIPPED)
    if job.size > engine.chunk_size:  # small ones create missing parents themselves
        destination.parent.mkdir(parents=True, exist_ok=True)
    copied = download_object(
        storage, url, destination, _options(engine, job, defer), meta=meta, cancel=cancel
    )
    after = os.stat(copied.pending or destination)  # a rename keeps mtime and inode
    return _result(
        job,
        Status.COPIED,
        crc32c=copied.crc32c,
        md5=copied.md5,
        generation=copied.generation,
        mtime_ns=after.st_mtime_ns,
        inode=after.st_ino,
        pending=copied.pending,
    )


def _rewrite(
    storage: Storage, engine: EngineSpec, job: Job, cancel: threading.Event, defer: bool
) -> JobResult:
    source, destination = parse_gs_url(job.source), parse_gs_url(job.destination)
    try:
        resource = storage.rewrite(
            source,
            destination,
            source_generation=job.source_generation,
            if_generation_match=0 if engine.no_clobber else job.if_generation_match,
        )
    except PreconditionFailed:
        if engine.no_clobber:
            return _result(job, Status.SKIPPED)
        return _already_there(storage, job, destination, job.crc32c)
    if job.crc32c and resource.get("crc32c") != job.crc32c:
        return _result(
            job,
            Status.FAILED,
            error=f"{destination}: the copy's CRC32C {resource.get('crc32c')} is not the "
            f"source's {job.crc32c}; delete it and run the sync again",
        )
    return _result(
        job,
        Status.COPIED,
        crc32c=resource.get("crc32c"),
        md5=resource.get("md5Hash"),
        generation=int(resource["generation"]),
    )


def _delete(
    storage: Storage, engine: EngineSpec, job: Job, cancel: threading.Event, defer: bool
) -> JobResult:
    if job.destination.startswith("gs://"):
        url = parse_gs_url(job.destination)
        try:
            storage.delete(url, if_generation_match=job.if_generation_match)
        except PreconditionFailed:
            return _result(
                job,
                Status.FAILED,
                error=f"{url}: changed since it was listed (a new generation); not deleted",
            )
        return _result(job, Status.DELETED, generation=job.if_generation_match)
    path = pathlib.Path(job.destination)
    try:
        info = path.stat()
    except FileNotFoundError:
        return _result(job, Status.DELETED)  # already gone: a re-run
    if (info.st_size, info.st_mtime_ns) != (job.size, job.mtime_ns):
        return _result(
            job, Status.FAILED, error=f"{path}: changed since it was listed; not deleted"
        )
    path.unlink(missing_ok=True)
    return _result(job, Status.DELETED, mtime_ns=job.mtime_ns)


_RUN: dict[Action, Callable[[Storage, EngineSpec, Job, threading.Event, bool], JobResult]] = {
    Action.UPLOAD: _upload,
    Action.DOWNLOAD: _download,
    Action.REWRITE: _rewrite,
    Action.DELETE: _delete,
}


def run_job(
    engine: EngineSpec,
    job: Job,
    cancel: threading.Event | None = None,
    *,
    defer_durability: bool = False,
) -> JobResult:
    """Run one job; a failure of its object comes back as a ``failed`` result.

    Args:
        engine: Transports and settings.
        job: The object to copy or delete.
        cancel: When set, a running download stops (raises :class:`Interrupted`), and a
            job not yet started does not start.
        defer_durability: A small download comes back ``pending`` (verified, not yet
            durable nor in place): the caller must pass it to :func:`commit` before
            treating it as copied.  Otherwise it is fsynced and renamed here.

    Raises:
        Interrupted: When ``cancel`` was set.
    """
    if cancel is not None and cancel.is_set():
        raise Interrupted
    started = time.monotonic()
    try:
        run = _RUN[job.action]
        result = run(storage_for(engine.storage), engine, job, cancel or _NEVER, defer_durability)
    except (Interrupted, KeyboardInterrupt):
        raise
    except TransferError as exc:
        result = _result(job, Status.FAILED, error=f"{exc.target}: {exc.reason}")
    except OSError as exc:
        target = exc.filename if exc.filename else (job.source or job.destination)
        result = _result(job, Status.FAILED, error=f"{os.fsdecode(target)}: {exc.strerror or exc}")
    except Exception as exc:  # anything else still fails only this object
        _LOGGER.debug("job %s failed", job, exc_info=True)
        result = _result(
            job, Status.FAILED, error=f"{job.source or job.destination}: {describe_error(exc)}"
        )
    return dataclasses.replace(result, seconds=time.monotonic() - started)


def commit(results: Sequence[JobResult]) -> list[JobResult]:
    """Make the ``pending`` downloads among ``results`` durable and put them in place.

    One durability pass for the batch (``syncfs``: data first, then the renames), so that
    after a crash each destination is either untouched or complete.  A result that could
    not be put in place becomes a failure naming its destination; the others lose their
    ``pending``.  Results without ``pending`` come back unchanged, in the same order.
    """
    if not any(result.pending for result in results):
        return list(results)
    try:
        failed = commit_files([(result.pending, result.destination) for result in results])
    except OSError as exc:  # nothing was renamed: every pending download fails
        reason = exc.strerror or str(exc)
        out = []
        for result in results:
            if result.pending is None:
                out.append(result)
                continue
            TEMP_FILES.discard(result.pending)
            with contextlib.suppress(OSError):
                os.unlink(result.pending)
            out.append(_failed_commit(result, f"could not be written out ({reason})"))
        return out
    out = []
    for index, result in enumerate(results):
        error = failed.get(index)
        if result.pending is None:
            out.append(result)
        elif error is None:
            out.append(dataclasses.replace(result, pending=None))
        elif isinstance(error, TransferError):
            out.append(_failed_commit(result, error.reason))
        else:
            out.append(_failed_commit(result, error.strerror or str(error)))
    return out


def _failed_commit(result: JobResult, reason: str) -> JobResult:
    return dataclasses.replace(
        result,
        status=Status.FAILED,
        pending=None,
        error=f"{result.destination}: {reason}; nothing was put in place; fix it and run "
        "the sync again",
    )


def run_shard(engine: EngineSpec, jobs: Sequence[Job]) -> list[JobResult]:
    """Run several jobs one after another (one task of a process or Dask executor); their
    downloads are made durable together at the end (on the worker, where the files are)."""
    results: list[JobResult] = []
    try:
        for job in jobs:
            results.append(run_job(engine, job, defer_durability=True))
    except BaseException:
        discard_pending(results)
        raise
    return commit(results)


def discard_pending(results: Sequence[JobResult]) -> None:
    """Remove the temp files of ``pending`` results that will not be committed."""
    for result in results:
        if result.pending is not None:
            TEMP_FILES.discard(result.pending)
            with contextlib.suppress(OSError):
                os.unlink(result.pending)
