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
import pathlib
import sys
import threading
from typing import Any, TextIO

from resumable_media._cli.client import Storage, TransferError
from resumable_media._cli.localerrors import DeviceFull, FullDevices, local_error
from resumable_media._cli.paths import UnsafeName, iter_local_files, local_path_for, relative_name
from resumable_media._cli.progress import ProgressBar
from resumable_media._cli.transfer import (
    CopyOptions,
    CopyResult,
    Interrupted,
    download_object,
    upload_file,
)
from resumable_media._cli.urls import GsUrl, is_gs_url, parse_gs_url

__all__ = ["CopyJob", "Reporter", "UsageError", "plan_copy", "run_jobs"]


class UsageError(Exception):
    """The command line cannot work as given (exit code 2)."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class CopyJob:
    """One object to copy: a download (``url`` → ``path``) or an upload (``path`` → ``url``)."""

    download: bool
    url: GsUrl
    path: pathlib.Path
    size: int
    meta: dict[str, Any] | None = None


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


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _single_download(
    storage: Storage, url: GsUrl, dst: str
) -> tuple[list[CopyJob], list[TransferError]]:
    if not url.name or url.name.endswith("/"):
        raise UsageError(f"{url} names a prefix, not an object; use -r to copy a tree")
    path = pathlib.Path(dst)
    if dst.endswith(("/", "\\")) or path.is_dir():
        path = path / _basename(url.name)
    if not path.parent.is_dir():
        return [], [TransferError(str(path), f"directory {path.parent} does not exist")]
    meta = storage.metadata(url)
    return [CopyJob(True, url, path, int(meta.get("size", 0)), meta)], []


def _tree_download(
    storage: Storage, url: GsUrl, dst: str, reporter: Reporter, page_size: int | None
) -> tuple[list[CopyJob], list[TransferError]]:
    root = pathlib.Path(dst)
    if root.exists() and not root.is_dir():
        raise UsageError(f"destination {dst} exists and is not a directory")
    prefix = url.name if not url.name or url.name.endswith("/") else url.name + "/"
    jobs: list[CopyJob] = []
    refused: list[TransferError] = []
    found = False
    for meta in storage.iter_objects(url.bucket, prefix, page_size):
        found = True
        name = str(meta["name"])
        item = GsUrl(url.bucket, name)
        size = int(meta.get("size", 0))
        if name.endswith("/") and size == 0:
            reporter.note(f"skipping {item}: a directory placeholder object")
            continue
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = local_path_for(root, relative_name(name, prefix))
        except UnsafeName as exc:
            refused.append(TransferError(str(item), f"refused, not written: {exc}"))
            continue
        jobs.append(CopyJob(True, item, path, size, meta))
    if not found:
        return [], [TransferError(f"gs://{url.bucket}/{prefix}", "no objects under this prefix")]
    return jobs, refused


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a file name with bytes that are not UTF-8
        return False
    return True


def _uploads(src: str, url: GsUrl, recursive: bool) -> tuple[list[CopyJob], list[TransferError]]:
    path = pathlib.Path(src)
    jobs: list[CopyJob] = []
    refused: list[TransferError] = []
    if path.is_dir():
        if not recursive:
            raise UsageError(f"{src} is a directory; use -r to copy a tree")
        files = [(file, url.child(rel)) for file, rel in iter_local_files(path)]
        if not files:
            return [], [TransferError(src, "no files under this directory")]
    elif not path.exists():
        return [], [TransferError(src, "no such file")]
    else:
        if not url.name or url.name.endswith("/"):
            url = GsUrl(url.bucket, url.name + path.name)
        files = [(path, url)]
    for file, target in files:
        if _valid_name(target.name):
            jobs.append(CopyJob(False, target, file, file.stat().st_size))
        else:
            refused.append(TransferError(str(file), "the name is not valid UTF-8; not uploaded"))
    return jobs, refused


def plan_copy(
    storage: Storage,
    src: str,
    dst: str,
    recursive: bool,
    reporter: Reporter,
    *,
    page_size: int | None = None,
) -> tuple[list[CopyJob], list[TransferError]]:
    """Turn ``cp SRC DST`` into jobs plus the objects already known to fail.

    Raises:
        UsageError: When neither or both sides are ``gs://`` URLs, or the shape is wrong.
        TransferError: When the single source object cannot be found.
    """
    src_gs, dst_gs = is_gs_url(src), is_gs_url(dst)
    if src_gs == dst_gs:
        raise UsageError("exactly one of SRC and DST must be a gs://bucket/object URL")
    try:
        url = parse_gs_url(src if src_gs else dst)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if src_gs:
        if recursive:
            return _tree_download(storage, url, dst, reporter, page_size)
        return _single_download(storage, url, dst)
    return _uploads(src, url, recursive)


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
    full: FullDevices,
) -> CopyResult:
    if cancel.is_set():
        raise Interrupted("interrupted")
    progress = bar.callback(job)
    if job.download:
        full.check(job.path, str(job.url))
        job.path.parent.mkdir(parents=True, exist_ok=True)
        result = download_object(
            storage, job.url, job.path, options, meta=job.meta, cancel=cancel, progress=progress
        )
    else:
        content_type = _content_type(job.path, options.content_type)
        result = upload_file(storage, job.path, job.url, options, content_type, progress=progress)
    bar.finish(job, job.size)
    return result


def _names(job: CopyJob) -> tuple[str, str]:
    return (str(job.url), str(job.path)) if job.download else (str(job.path), str(job.url))


def _record(
    reporter: Reporter,
    job: CopyJob,
    run: concurrent.futures.Future[CopyResult],
    full: FullDevices,
) -> None:
    try:
        reporter.success(run.result())
    except DeviceFull as exc:
        reporter.failure(*_names(job), exc, quietly=True)  # counted; summarised once
    except TransferError as exc:
        reporter.failure(*_names(job), exc, quietly=not full.record(exc))
    except OSError as exc:
        error = local_error(exc, job.path, target=str(job.url), reading=not job.download)
        reporter.failure(*_names(job), error, quietly=not full.record(error))


def run_jobs(
    storage: Storage,
    jobs: list[CopyJob],
    options: CopyOptions,
    *,
    reporter: Reporter,
    bar: ProgressBar,
    cancel: threading.Event,
    concurrency: int,
) -> None:
    """Copy every job; failures are reported, not raised.

    Raises:
        KeyboardInterrupt: On Ctrl-C, after telling workers to stop.
    """
    large = [j for j in jobs if j.size > options.chunk_size]
    small = [j for j in jobs if j.size <= options.chunk_size]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency))
    full = FullDevices()
    try:
        futures = {pool.submit(_run_one, storage, j, options, cancel, bar, full): j for j in small}
        for job in large:
            done: concurrent.futures.Future[CopyResult] = concurrent.futures.Future()
            try:
                done.set_result(_run_one(storage, job, options, cancel, bar, full))
            except (TransferError, OSError) as exc:
                done.set_exception(exc)
            _record(reporter, job, done, full)
        pending = set(futures)
        while pending:
            finished, pending = concurrent.futures.wait(pending, timeout=0.2)
            for run in finished:
                _record(reporter, futures[run], run, full)
    except BaseException:
        cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for line in full.summary():
        reporter.error_line(line)
