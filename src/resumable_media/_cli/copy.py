"""``cp``: turning SRC/DST into per-object jobs and running them, concurrently for ``-r``.

Invariants: planning never touches the destination; every object ends as exactly
one success or one failure report (naming the object and the reason); large
objects run one at a time in the main thread (the accelerator is parallel
itself and sees Ctrl-C there), small ones in a bounded thread pool; on Ctrl-C the
pool is told to stop and the caller removes :data:`~transfer.TEMP_FILES`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import mimetypes
import os
import pathlib
import queue
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from resumable_media._cli.progress import ProgressBar
from resumable_media._objects.client import PreconditionFailed, Storage, TransferError
from resumable_media._objects.localerrors import DeviceFull, FullDevices, local_error
from resumable_media._objects.transfer import (
    TEMP_FILES,
    CopyOptions,
    CopyResult,
    Interrupted,
    commit_pending,
    download_object,
    rewrite_object,
    skipped_result,
    upload_file,
)
from resumable_media._objects.urls import GsUrl
from resumable_media.bulk.jobs import Action, EngineSpec, Job, JobResult, Status, StorageSpec

if TYPE_CHECKING:  # manifest.py imports this module; the executors load only for --dask
    from resumable_media._cli.manifest import CpManifest
    from resumable_media.bulk.executors import Executor

__all__ = ["DEFAULT_JOBS", "CopyJob", "Reporter", "UsageError", "names", "run_jobs", "run_jobs_on"]


DEFAULT_JOBS = 8
"""``cp -j``: small objects copied at once.  Measured on 2 cores over loopback
(benchmarks/bench_small_files.py, 2,000 x 64 KiB): downloads peak at 4 (821/s; 8: 696/s,
16: 628/s, 32: 488/s: client CPU per object grows with threads), uploads at 8-16; 8 stays
the default because real endpoints' latency needs more requests in flight than loopback."""

NO_CLOBBER_PROBE = 1 << 20
"""With ``-n``, uploads above this size look for the destination before sending."""


class UsageError(Exception):
    """The command line cannot work as given (exit code 2)."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class CopyJob:
    """One object to copy: a download (``url`` → ``path``), an upload (``path`` → ``url``)
    or, when ``source`` is set, a server-side rewrite (``source`` → ``url``)."""

    download: bool
    url: GsUrl
    path: pathlib.Path
    size: int
    meta: dict[str, Any] | None = None
    source: GsUrl | None = None


class Reporter:
    """Writes per-object outcomes: ``--json`` lines on stdout, messages on stderr.

    Args:
        json_lines: Print one JSON summary per object on stdout.
        quiet: Suppress success messages on stderr (errors are always shown).
        bar: The progress bar to clear before writing a message.
    """

    def __init__(
        self,
        *,
        json_lines: bool,
        quiet: bool,
        bar: ProgressBar | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.quiet = quiet
        self.bar = bar
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.failures = 0
        self._lock = threading.Lock()

    def _message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.close()
        self.err.write(text + "\n")
        self.err.flush()

    def success(self, result: CopyResult) -> None:
        """Report a finished copy."""
        with self._lock:
            if self.json_lines:
                self.out.write(json.dumps(result.as_json()) + "\n")
                self.out.flush()
            elif result.skipped:
                if not self.quiet:
                    self._message(
                        f"skipped {result.source} -> {result.destination}: {result.skipped}"
                    )
            elif not self.quiet:
                moved = result.bytes_transferred
                rate = moved / result.seconds / 2**20 if result.seconds else 0.0
                resumed = f", resumed: {moved} sent this run" if result.resumed else ""
                self._message(
                    f"copied {result.source} -> {result.destination} "
                    f"({result.bytes} bytes{resumed}, {result.seconds:.2f} s, {rate:.1f} MiB/s)"
                )

    def failure(
        self, source: str, destination: str, error: TransferError, *, quietly: bool = False
    ) -> None:
        """Report a failed copy; the message names the object and the reason.

        Args:
            quietly: Count it (and write its ``--json`` line) without a stderr line, for
                failures that one summary line explains.
        """
        with self._lock:
            self.failures += 1
            if not quietly:
                self._message(f"error: {error.target}: {error.reason}")
            if self.json_lines:
                line = {
                    "status": "error",
                    "source": source,
                    "destination": destination,
                    "error": f"{error.target}: {error.reason}",
                }
                self.out.write(json.dumps(line) + "\n")
                self.out.flush()

    def error_line(self, text: str) -> None:
        """An ``error:`` line on stderr that is not about one object (always shown)."""
        with self._lock:
            self._message(f"error: {text}")

    def note(self, text: str) -> None:
        """An informational line on stderr (suppressed by ``--quiet``)."""
        if not self.quiet:
            with self._lock:
                self._message(text)


def _content_type(path: pathlib.Path, option: str | None) -> str:
    if option:
        return option
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _run_one(
    storage: Storage,
    job: CopyJob,
    options: CopyOptions,
    cancel: threading.Event,
    bar: ProgressBar,
    manifest: CpManifest | None,
    full: FullDevices,
    directories: _Directories,
) -> CopyResult:
    if cancel.is_set():
        raise Interrupted("interrupted")
    progress = bar.callback(job)
    source, destination = names(job)
    if manifest is not None:
        recorded = manifest.done(storage, job)
        if recorded is not None:
            bar.finish(job, job.size)
            return recorded
    try:
        if job.source is not None:
            result = rewrite_object(
                storage, job.source, job.url, options, meta=job.meta, progress=progress
            )
        elif job.download:
            if options.no_clobber and os.path.lexists(job.path):
                result = skipped_result(source, destination)
            else:
                full.check(job.path, str(job.url))
                directories.make(job.path)
                result = download_object(
                    storage,
                    job.url,
                    job.path,
                    options,
                    meta=job.meta,
                    cancel=cancel,
                    progress=progress,
                )
        elif options.no_clobber and job.size > NO_CLOBBER_PROBE and storage.stat(job.url):
            # A larger upload asks first, so that its bytes are not sent only to be refused
            # (the server checks ifGenerationMatch=0 when the body has arrived).
            result = skipped_result(source, destination)
        else:
            content_type = _content_type(job.path, options.content_type)
            before = job.path.stat().st_mtime_ns
            result = upload_file(
                storage, job.path, job.url, options, content_type, progress=progress
            )
            result = dataclasses.replace(result, mtime_ns=before)
    except PreconditionFailed:
        if not options.no_clobber:
            raise
        result = skipped_result(source, destination)
    bar.finish(job, job.size)
    return result


def names(job: CopyJob) -> tuple[str, str]:
    """The (source, destination) of ``job`` as the user sees them."""
    if job.source is not None:
        return str(job.source), str(job.url)
    return (str(job.url), str(job.path)) if job.download else (str(job.path), str(job.url))


def _record(
    reporter: Reporter,
    job: CopyJob,
    outcome: CopyResult | BaseException,
    manifest: CpManifest | None,
    full: FullDevices,
) -> None:
    if isinstance(outcome, TransferError):
        error = outcome
    elif isinstance(outcome, OSError):
        path = job.path if job.source is None else pathlib.Path(str(job.url))
        error = local_error(outcome, path, target=str(job.url), reading=not job.download)
    elif isinstance(outcome, BaseException):
        raise outcome
    else:
        reporter.success(outcome)
        if manifest is not None:
            manifest.record(job, outcome, None)
        return
    # One line for the first download that found its device full; the others are counted.
    quietly = isinstance(error, DeviceFull) or not full.record(error)
    reporter.failure(*names(job), error, quietly=quietly)
    if manifest is not None:
        manifest.record(job, None, error)


DURABLE_BATCH = 512
"""Finished small downloads made durable (one ``syncfs``) and then reported together."""


class _Directories:
    """Local parent directories already created by this run (one ``mkdir`` each)."""

    def __init__(self) -> None:
        self._made: set[pathlib.Path] = set()

    def make(self, path: pathlib.Path) -> None:
        parent = path.parent
        if parent not in self._made:
            parent.mkdir(parents=True, exist_ok=True)
            self._made.add(parent)


_Outcome = tuple[CopyJob, "CopyResult | BaseException"]


class _Recorder:
    """Records outcomes in the main thread; deferred-fsync downloads wait for a durable pass."""

    def __init__(self, reporter: Reporter, manifest: CpManifest | None, full: FullDevices) -> None:
        self.reporter = reporter
        self.manifest = manifest
        self.full = full
        self.waiting: list[tuple[CopyJob, CopyResult]] = []

    def add(self, job: CopyJob, outcome: CopyResult | BaseException) -> None:
        if isinstance(outcome, Interrupted):
            return
        if isinstance(outcome, BaseException):
            _record(self.reporter, job, outcome, self.manifest, self.full)
        elif job.download and outcome.method == "single" and not outcome.skipped:
            self.waiting.append((job, outcome))
            if len(self.waiting) >= DURABLE_BATCH:
                self.flush()
        else:
            _record(self.reporter, job, outcome, self.manifest, self.full)

    def flush(self) -> None:
        """Make the waiting downloads durable, then report them (or fail them all)."""
        waiting, self.waiting = self.waiting, []
        if not waiting:
            return
        try:
            failed = commit_pending([result for _, result in waiting])
        except OSError as exc:
            for job, result in waiting:
                if result.pending is not None:
                    TEMP_FILES.discard(result.pending)
                    with contextlib.suppress(OSError):
                        os.unlink(result.pending)
                _record(self.reporter, job, exc, self.manifest, self.full)
            return
        for index, (job, result) in enumerate(waiting):
            outcome = failed.get(index, dataclasses.replace(result, pending=None))
            _record(self.reporter, job, outcome, self.manifest, self.full)


def run_jobs(
    storage: Storage,
    jobs: list[CopyJob],
    options: CopyOptions,
    *,
    reporter: Reporter,
    bar: ProgressBar,
    cancel: threading.Event,
    concurrency: int,
    manifest: CpManifest | None = None,
) -> None:
    """Copy every job; failures are reported (and recorded in ``manifest``), not raised.

    Small objects run on ``concurrency`` worker threads that take the next job from a shared
    iterator (no future per object); large ones one at a time on this thread.  Small
    downloads are not fsynced one by one: each batch of finished, verified temp files is
    made durable in one pass, then renamed into place, then the renames are made durable
    (:func:`commit_pending`), before any of them is reported or recorded; after a crash a
    destination is either untouched or complete.

    Raises:
        KeyboardInterrupt: On Ctrl-C, after telling workers to stop.
    """
    # The accelerator is parallel itself: large transfers go one at a time; rewrites move
    # no bytes here, so any number of them share the pool.
    large = [j for j in jobs if j.source is None and j.size > options.chunk_size]
    small = [j for j in jobs if j.source is not None or j.size <= options.chunk_size]
    full = FullDevices()
    directories = _Directories()
    deferred = dataclasses.replace(options, defer_fsync=True)
    recorder = _Recorder(reporter, manifest, full)
    finished: queue.SimpleQueue[_Outcome | None] = queue.SimpleQueue()
    feed = iter(small)
    feed_lock = threading.Lock()

    def attempt(job: CopyJob, settings: CopyOptions) -> _Outcome:
        try:
            return job, _run_one(storage, job, settings, cancel, bar, manifest, full, directories)
        except Exception as exc:  # recorded (or, if unexpected, raised) by this thread
            return job, exc

    def work() -> None:
        try:
            while not cancel.is_set():
                with feed_lock:
                    job = next(feed, None)
                if job is None:
                    return
                finished.put(attempt(job, deferred))
        finally:
            finished.put(None)

    workers = [
        threading.Thread(target=work, name=f"cp-{n}", daemon=True)
        for n in range(min(max(1, concurrency), len(small)))
    ]
    try:
        for worker in workers:
            worker.start()
        for job in large:
            recorder.add(*attempt(job, options))
            recorder.flush()
        running = len(workers)
        while running:
            try:
                item = finished.get(timeout=0.2)
            except queue.Empty:
                recorder.flush()  # the workers are busy: report what is done meanwhile
                continue
            if item is None:
                running -= 1
            else:
                recorder.add(*item)
        recorder.flush()
    except BaseException:
        cancel.set()
        raise
    if cancel.is_set():
        raise KeyboardInterrupt
    for line in full.summary():
        reporter.error_line(line)


def _bulk_job(job: CopyJob, options: CopyOptions) -> Job:
    """The bulk engine's picklable job for ``job`` (local paths made absolute for workers)."""
    meta = job.meta or {}
    generation = int(meta["generation"]) if meta.get("generation") else None
    posix: tuple[tuple[str, str], ...] = ()
    if job.source is not None:
        action, source, destination = Action.REWRITE, str(job.source), str(job.url)
    elif job.download:
        action, source, destination = Action.DOWNLOAD, str(job.url), os.path.abspath(job.path)
        custom = meta.get("metadata") or {}
        posix = tuple(
            (key, str(value)) for key, value in custom.items() if key.startswith("goog-reserved-")
        )
    else:
        action, source, destination = Action.UPLOAD, os.path.abspath(job.path), str(job.url)
        generation = None
    return Job(
        action=action,
        source=source,
        destination=destination,
        size=job.size,
        crc32c=meta.get("crc32c"),
        md5=meta.get("md5Hash"),
        source_generation=generation,
        if_generation_match=options.if_generation_match,
        posix=posix,
    )


def _failure_of(result: JobResult) -> TransferError:
    text = result.error or "failed"
    for target in (result.source, result.destination):
        if target and text.startswith(f"{target}: "):
            return TransferError(target, text[len(target) + 2 :])
    target, _, reason = text.partition(": ")
    return TransferError(target, reason) if reason else TransferError(result.source, text)


def run_jobs_on(
    executor: Executor,
    storage: Storage,
    jobs: list[CopyJob],
    options: CopyOptions,
    *,
    reporter: Reporter,
    bar: ProgressBar,
    manifest: CpManifest | None = None,
) -> None:
    """Copy every job on a bulk executor (``--dask``): the bulk engine runs each one.

    Outcomes are reported and recorded here as :func:`run_jobs` reports them; a job the
    manifest records as done (and still in place) is not sent.
    """
    engine = EngineSpec(
        storage=StorageSpec.from_storage(storage),
        chunk_size=options.chunk_size,
        checksum=options.checksum,
        no_clobber=options.no_clobber,
        preserve=options.preserve,
        content_type=options.content_type,
    )
    full = FullDevices()
    sent: dict[tuple[str, str], CopyJob] = {}

    def specs() -> Iterator[Job]:
        for job in jobs:
            if manifest is not None:
                try:
                    recorded = manifest.done(storage, job)
                except TransferError as exc:
                    _record(reporter, job, exc, manifest, full)
                    continue
                if recorded is not None:
                    bar.finish(job, job.size)
                    _record(reporter, job, recorded, manifest, full)
                    continue
            spec = _bulk_job(job, options)
            sent[(spec.source, spec.destination)] = job
            yield spec

    for result in executor.map(engine, specs()):
        job = sent.pop((result.source, result.destination))
        bar.finish(job, job.size)
        if result.status is Status.FAILED:
            _record(reporter, job, _failure_of(result), manifest, full)
            continue
        source, destination = names(job)
        if result.status is Status.SKIPPED:
            _record(reporter, job, skipped_result(source, destination), manifest, full)
            continue
        copied = CopyResult(
            source=source,
            destination=destination,
            bytes=result.size,
            seconds=result.seconds,
            method=f"bulk-{result.action.value}",
            crc32c=result.crc32c,
            md5=result.md5,
            generation=result.generation,
            verified=bool(result.crc32c and options.checksum),
            mtime_ns=result.mtime_ns,
        )
        _record(reporter, job, copied, manifest, full)
