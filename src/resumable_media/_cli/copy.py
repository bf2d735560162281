"""``cp``: turning SRC/DST into per-object jobs and running them, concurrently for ``-r``.

Invariants: planning never touches the destination; every object ends as exactly
one success or one failure report (naming the object and the reason); large
objects run one at a time in the main thread (the accelerator is parallel
itself and sees Ctrl-C there), small ones in a bounded thread pool; on Ctrl-C the
pool is told to stop and the caller removes :data:`~transfer.TEMP_FILES`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import mimetypes
import os
import pathlib
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from resumable_media._cli.client import PreconditionFailed, Storage, TransferError
from resumable_media._cli.localerrors import DeviceFull, FullDevices, local_error
from resumable_media._cli.progress import ProgressBar
from resumable_media._cli.transfer import (
    CopyOptions,
    CopyResult,
    Interrupted,
    download_object,
    rewrite_object,
    skipped_result,
    upload_file,
)
from resumable_media._cli.urls import GsUrl

if TYPE_CHECKING:  # manifest.py imports this module
    from resumable_media._cli.manifest import CpManifest

__all__ = ["CopyJob", "Reporter", "UsageError", "names", "run_jobs"]


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
                job.path.parent.mkdir(parents=True, exist_ok=True)
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
    run: concurrent.futures.Future[CopyResult],
    manifest: CpManifest | None,
    full: FullDevices,
) -> None:
    try:
        result = run.result()
    except TransferError as exc:
        error = exc
    except OSError as exc:
        path = job.path if job.source is None else pathlib.Path(str(job.url))
        error = local_error(exc, path, target=str(job.url), reading=not job.download)
    else:
        reporter.success(result)
        if manifest is not None:
            manifest.record(job, result, None)
        return
    # One line for the first download that found its device full; the others are counted.
    quietly = isinstance(error, DeviceFull) or not full.record(error)
    reporter.failure(*names(job), error, quietly=quietly)
    if manifest is not None:
        manifest.record(job, None, error)


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

    Raises:
        KeyboardInterrupt: On Ctrl-C, after telling workers to stop.
    """
    # The accelerator is parallel itself: large transfers go one at a time; rewrites move
    # no bytes here, so any number of them share the pool.
    large = [j for j in jobs if j.source is None and j.size > options.chunk_size]
    small = [j for j in jobs if j.source is not None or j.size <= options.chunk_size]
    workers = max(1, concurrency)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    full = FullDevices()
    # At most a few jobs per worker are submitted at a time (a feeder thread waits for room),
    # so a tree of a million objects does not hold a million futures.
    room = threading.BoundedSemaphore(workers * 4)
    finished: queue.SimpleQueue[tuple[CopyJob, concurrent.futures.Future[CopyResult]]]
    finished = queue.SimpleQueue()
    fed = threading.Event()
    submitted = 0

    def on_done(job: CopyJob) -> Callable[[concurrent.futures.Future[CopyResult]], None]:
        def done(run: concurrent.futures.Future[CopyResult]) -> None:
            room.release()
            finished.put((job, run))

        return done

    def feed() -> None:
        nonlocal submitted
        try:
            for job in small:
                while not room.acquire(timeout=0.2):
                    if cancel.is_set():
                        return
                if cancel.is_set():
                    room.release()
                    return
                try:
                    run = pool.submit(_run_one, storage, job, options, cancel, bar, manifest, full)
                except RuntimeError:  # the pool was shut down (Ctrl-C)
                    room.release()
                    return
                submitted += 1
                run.add_done_callback(on_done(job))
        finally:
            fed.set()

    feeder = threading.Thread(target=feed, name="cp-feeder", daemon=True)
    try:
        feeder.start()
        for job in large:
            done: concurrent.futures.Future[CopyResult] = concurrent.futures.Future()
            try:
                done.set_result(_run_one(storage, job, options, cancel, bar, manifest, full))
            except (TransferError, OSError) as exc:
                done.set_exception(exc)
            _record(reporter, job, done, manifest, full)
        recorded = 0
        # ``submitted`` is final once ``fed`` is set (checked first).
        while not (fed.is_set() and recorded == submitted):
            try:
                job, run = finished.get(timeout=0.2)
            except queue.Empty:
                continue
            _record(reporter, job, run, manifest, full)
            recorded += 1
    except BaseException:
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for line in full.summary():
        reporter.error_line(line)
