# The bodies of the benchmark cases: each performs exactly one transfer.
#
# Invariants: these run inside a fresh child process (see child.py), one call per
# process; every library is imported lazily inside the case so a missing or
# half-written module becomes CaseUnavailable, never an import error of the
# harness; only the transfer itself (plus closing the destination file) is
# inside the timed region, for wall time and for the CPU time of the whole
# process tree (workers included); peers and ours with the same API share one body, so
# both sides do exactly the same calls. Correctness of the bytes is checked by
# the parent, independently of what the client claims.
"""Case bodies for the transfer benchmark (curl, google-resumable-media,
google-cloud-storage transfer_manager and resumable-media)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import time
from typing import Any

from resumable_media._bench.model import MIB, CaseContext, CaseUnavailable
from resumable_media._bench.rss import tree_cpu_seconds

__all__ = [
    "CHUNKED_DOWNLOAD_SIZE",
    "RESUMABLE_CHUNK_SIZE",
    "chunked_download",
    "curl_download",
    "curl_upload",
    "parallel_download",
    "parallel_upload",
    "pipelined_upload",
    "resumable_upload",
    "stream_download",
    "tm_download",
    "tm_upload",
]

CHUNKED_DOWNLOAD_SIZE = 32 * MIB
"""Chunk size of the ChunkedDownload cases (the issue's 32 MiB)."""

RESUMABLE_CHUNK_SIZE = 8 * MIB
"""Chunk size of the resumable and pipelined upload cases (the issue's 8 MiB)."""

_CONTENT_TYPE = "application/octet-stream"


def _import(module: str, *names: str) -> Any:
    """Import ``module`` and check it has ``names``; CaseUnavailable otherwise."""
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise CaseUnavailable(f"{module} cannot be imported ({exc})") from exc
    missing = [name for name in names if not hasattr(imported, name)]
    if missing:
        raise CaseUnavailable(f"{module} has no {', '.join(missing)} yet")
    return imported


def _session() -> Any:
    requests = _import("requests", "Session")
    return requests.Session()


class _Stopwatch:
    """Times the with-block: wall seconds, and CPU seconds of this whole process tree."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def __enter__(self) -> _Stopwatch:
        self._cpu = tree_cpu_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = tree_cpu_seconds() - self._cpu

    def result(self, detail: str = "") -> dict[str, Any]:
        """The measurements as a case body returns them."""
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "detail": detail}


# -- downloads ---------------------------------------------------------------------------


def _curl_binary() -> str:
    """The curl executable; CaseUnavailable when there is none."""
    curl = shutil.which("curl")
    if curl is None:
        raise CaseUnavailable("the curl binary is not on PATH")
    return curl


def _run_curl(curl: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run curl quietly (errors still shown, HTTP errors fail) with ``args``."""
    return subprocess.run(
        [curl, "--silent", "--show-error", "--fail", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _check_curl(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"curl exited with {proc.returncode}: {proc.stderr.strip()}")


def curl_download(ctx: CaseContext) -> dict[str, Any]:
    """``curl -o FILE`` of the object (the curl binary, a new connection)."""
    curl = _curl_binary()
    with _Stopwatch() as watch:
        proc = _run_curl(curl, "--output", ctx.dest_path, ctx.media_url())
    _check_curl(proc)
    return watch.result()


def curl_upload(ctx: CaseContext) -> dict[str, Any]:
    """Start a resumable session, then ``curl -T FILE`` it in one PUT (no client hashing).

    This is the upload ceiling the other cases are read against: a C client that sends the
    whole file in a single request, so what remains is the loopback and the server.
    """
    curl = _curl_binary()
    session = _session()
    with _Stopwatch() as watch:
        started = session.post(
            ctx.resumable_url(),
            json={"name": ctx.upload_name},
            headers={"x-upload-content-type": _CONTENT_TYPE},
            timeout=60,
        )
        started.raise_for_status()
        proc = _run_curl(
            curl,
            "--output",
            os.devnull,
            "--upload-file",
            ctx.source_path,
            started.headers["location"],
        )
    _check_curl(proc)
    return watch.result()


def stream_download(ctx: CaseContext, *, module: str, checksum: str) -> dict[str, Any]:
    """``module.Download(url, stream=file, checksum=checksum).consume(session)``.

    Args:
        ctx: The run's context.
        module: ``google.resumable_media.requests`` or ``resumable_media.requests``.
        checksum: ``crc32c`` or ``md5``.
    """
    media = _import(module, "Download")
    session = _session()
    with _Stopwatch() as watch, open(ctx.dest_path, "wb") as stream:
        download = media.Download(ctx.media_url(), stream=stream, checksum=checksum)
        download.consume(session)
    return watch.result()


def chunked_download(ctx: CaseContext, *, module: str) -> dict[str, Any]:
    """``module.ChunkedDownload`` with 32 MiB chunks into a file, chunk by chunk.

    Args:
        ctx: The run's context.
        module: ``google.resumable_media.requests`` or ``resumable_media.requests``.
    """
    media = _import(module, "ChunkedDownload")
    session = _session()
    with _Stopwatch() as watch, open(ctx.dest_path, "wb") as stream:
        download = media.ChunkedDownload(ctx.media_url(), CHUNKED_DOWNLOAD_SIZE, stream)
        while not download.finished:
            download.consume_next_chunk(session)
    return watch.result()


def _storage_blob(ctx: CaseContext, name: str) -> tuple[Any, Any]:
    """Return (transfer_manager module, blob) for a google-cloud-storage client on the server."""
    storage = _import("google.cloud.storage", "Client")
    manager = _import("google.cloud.storage.transfer_manager", "download_chunks_concurrently")
    credentials = _import("google.auth.credentials", "AnonymousCredentials")
    # The documented way to point the client (and its worker processes) at an emulator.
    os.environ["STORAGE_EMULATOR_HOST"] = ctx.endpoint
    client = storage.Client(project="bench", credentials=credentials.AnonymousCredentials())
    return manager, client.bucket(ctx.bucket).blob(name)


def tm_download(ctx: CaseContext) -> dict[str, Any]:
    """google-cloud-storage ``transfer_manager.download_chunks_concurrently``, its defaults."""
    manager, blob = _storage_blob(ctx, ctx.object_name)
    with _Stopwatch() as watch:
        manager.download_chunks_concurrently(blob, ctx.dest_path)
    return watch.result()


def parallel_download(ctx: CaseContext) -> dict[str, Any]:
    """resumable_media.parallel ``ParallelDownload`` (defaults) with ``transports.anonymous()``."""
    parallel = _import("resumable_media.parallel", "ParallelDownload")
    transports = _import("resumable_media.transports", "anonymous")
    download = parallel.ParallelDownload(ctx.media_url(), ctx.dest_path)
    with _Stopwatch() as watch:
        result = download.consume(transports.anonymous())
    return watch.result(f"verified={result.verified}")


# -- uploads -----------------------------------------------------------------------------


def resumable_upload(ctx: CaseContext, *, module: str) -> dict[str, Any]:
    """``module.ResumableUpload`` with 8 MiB chunks and crc32c, chunk by chunk.

    Args:
        ctx: The run's context.
        module: ``google.resumable_media.requests`` or ``resumable_media.requests``.
    """
    media = _import(module, "ResumableUpload")
    session = _session()
    upload = media.ResumableUpload(ctx.resumable_url(), RESUMABLE_CHUNK_SIZE, checksum="crc32c")
    with _Stopwatch() as watch, open(ctx.source_path, "rb") as stream:
        upload.initiate(session, stream, {"name": ctx.upload_name}, _CONTENT_TYPE)
        while not upload.finished:
            upload.transmit_next_chunk(session)
    return watch.result()


def pipelined_upload(ctx: CaseContext, *, single_request: str = "no") -> dict[str, Any]:
    """resumable_media.parallel ``PipelinedUpload``, 8 MiB chunks, crc32c.

    Args:
        ctx: The run's context.
        single_request: "yes" streams all but the last chunk in one PUT.
    """
    parallel = _import("resumable_media.parallel", "PipelinedUpload")
    session = _session()
    upload = parallel.PipelinedUpload(
        ctx.resumable_url(), RESUMABLE_CHUNK_SIZE, single_request=single_request == "yes"
    )
    with _Stopwatch() as watch:
        result = upload.transmit(session, ctx.source_path, {"name": ctx.upload_name}, _CONTENT_TYPE)
    return watch.result(f"verified={result.verified}")


def tm_upload(ctx: CaseContext) -> dict[str, Any]:
    """google-cloud-storage ``transfer_manager.upload_chunks_concurrently``, its defaults."""
    manager, blob = _storage_blob(ctx, ctx.upload_name)
    with _Stopwatch() as watch:
        manager.upload_chunks_concurrently(ctx.source_path, blob)
    return watch.result()


def parallel_upload(ctx: CaseContext) -> dict[str, Any]:
    """resumable_media.parallel ``ParallelUpload`` (defaults) with ``transports.anonymous()``."""
    parallel = _import("resumable_media.parallel", "ParallelUpload")
    transports = _import("resumable_media.transports", "anonymous")
    upload = parallel.ParallelUpload(ctx.xml_url(), ctx.source_path)
    with _Stopwatch() as watch:
        result = upload.transmit(transports.anonymous(), _CONTENT_TYPE)
    return watch.result(f"verified={result.verified}")
