# Case bodies for the peers that are whole tools of their own (obstore, pyarrow, gcsfs,
# rclone, gsutil, google-cloud-storage Blob and transfer_manager's many-object calls,
# curl with many URLs) and for our `cp` command, each for one object or many.
#
# Invariants: as in transfers.py -- one call per fresh child process, libraries and
# binaries looked up lazily (missing -> CaseUnavailable with one line saying what to
# install), only the transfer timed (wall and the CPU of the whole process tree, so a
# CLI's own processes count); every tool is used as its documentation says a user
# would, at its default settings unless the case's options say otherwise (the label
# names any setting we chose). A many-object download writes ``dest_path/<name>`` for
# every name, a many-object upload creates ``upload_name/<name>``; the parent checks it.
"""Case bodies for the native and CLI peers, and for the ``resumable-media cp`` command."""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from resumable_media._bench.model import CaseContext, CaseUnavailable, parse_size
from resumable_media._bench.transfers import _import, _Stopwatch, _storage_blob

__all__ = [
    "curl_many_download",
    "curl_many_upload",
    "gcs_blob_download",
    "gcs_blob_upload",
    "gcsfs_download",
    "gcsfs_upload",
    "gsutil_download",
    "gsutil_upload",
    "obstore_download",
    "obstore_upload",
    "ours_bulk_download",
    "ours_bulk_upload",
    "ours_cp_download",
    "ours_cp_upload",
    "pyarrow_download",
    "pyarrow_upload",
    "rclone_download",
    "rclone_upload",
    "tm_many_download",
    "tm_many_upload",
]

_TOOL_TIMEOUT_S = 3600.0


def _binary(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CaseUnavailable(f"the {name} binary is not on PATH ({hint})")
    return found


def _run(command: list[str], *, env: dict[str, str] | None = None, stdin: str = "") -> None:
    """Run a tool to completion; RuntimeError with the end of its output if it fails.

    The output goes to a file, not a pipe: a grandchild a wrapper script leaves behind (the
    Cloud SDK's gsutil does) cannot hold the run open by keeping a pipe's end.
    """
    with tempfile.TemporaryFile(dir=os.getcwd()) as output:
        proc = subprocess.run(
            command,
            input=stdin.encode(),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=_TOOL_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace").strip()[-1500:]
            name = Path(command[0]).name
            raise RuntimeError(f"{name} exited with {proc.returncode}: {tail}")


def _gs(ctx: CaseContext, name: str) -> str:
    return f"gs://{ctx.bucket}/{name}"


def _local_pairs(ctx: CaseContext) -> list[tuple[str, str]]:
    """(object key, local download path) of every object a download case reads."""
    if not ctx.many:
        return [(ctx.object_name, ctx.dest_path)]
    return [(ctx.prefix + name, os.path.join(ctx.dest_path, name)) for name in ctx.names]


def _upload_pairs(ctx: CaseContext) -> list[tuple[str, str]]:
    """(local source path, object key) of every file an upload case sends."""
    if not ctx.many:
        return [(ctx.source_path, ctx.upload_name)]
    return [(os.path.join(ctx.source_dir, name), f"{ctx.upload_name}/{name}") for name in ctx.names]


def _prepare_dest(ctx: CaseContext) -> None:
    if ctx.many:
        os.makedirs(ctx.dest_path, exist_ok=True)


# -- ours: the resumable-media command ---------------------------------------------------


def _ours_cp(args: list[str]) -> None:
    _import("resumable_media.cli", "main")
    _run([sys.executable, "-m", "resumable_media", "cp", "-q", *args])


def ours_cp_download(ctx: CaseContext) -> dict[str, Any]:
    """``resumable-media cp`` (``cp -r`` for many objects) at its defaults, a fresh process."""
    source = _gs(ctx, ctx.prefix) if ctx.many else _gs(ctx, ctx.object_name)
    args = ["--endpoint", ctx.endpoint, *(["-r"] if ctx.many else []), source, ctx.dest_path]
    with _Stopwatch() as watch:
        _ours_cp(args)
    return watch.result()


def ours_cp_upload(ctx: CaseContext) -> dict[str, Any]:
    """``resumable-media cp`` (``cp -r 'DIR/*' gs://.../prefix/`` for many) at its defaults.

    The wildcard puts DIR's files straight under the prefix (gsutil's naming would make
    ``prefix/DIR/…`` of ``cp -r DIR``); the command expands it itself, not the shell.
    """
    if ctx.many:
        pattern = os.path.join(ctx.source_dir, "*")
        args = ["--endpoint", ctx.endpoint, "-r", pattern, _gs(ctx, ctx.upload_name + "/")]
    else:
        args = ["--endpoint", ctx.endpoint, ctx.source_path, _gs(ctx, ctx.upload_name)]
    with _Stopwatch() as watch:
        _ours_cp(args)
    return watch.result()


def _ours_bulk(ctx: CaseContext, source: str, destination: str, workers: str) -> dict[str, Any]:
    bulk = _import("resumable_media.bulk", "Plan", "ThreadExecutor", "execute", "connect")
    storage = bulk.connect(ctx.endpoint)
    with _Stopwatch() as watch:
        summary = bulk.execute(
            bulk.Plan(source, destination, storage), bulk.ThreadExecutor(int(workers))
        )
    if summary.failed:
        raise RuntimeError(f"{summary.failed} objects failed: {'; '.join(summary.failures)}")
    return watch.result()


def ours_bulk_download(ctx: CaseContext, *, workers: str = "8") -> dict[str, Any]:
    """``resumable_media.bulk``: ``execute(Plan(gs://prefix, DIR), ThreadExecutor(8))``, in
    this process (the library path of ``cp -r``/``sync``, without interpreter start-up)."""
    _prepare_dest(ctx)
    return _ours_bulk(ctx, _gs(ctx, ctx.prefix), ctx.dest_path, workers)


def ours_bulk_upload(ctx: CaseContext, *, workers: str = "8") -> dict[str, Any]:
    """``resumable_media.bulk``: ``execute(Plan(DIR, gs://prefix/), ThreadExecutor(8))``."""
    return _ours_bulk(ctx, ctx.source_dir, _gs(ctx, ctx.upload_name + "/"), workers)


# -- obstore (Rust object_store, XML API) ------------------------------------------------


def _obstore(ctx: CaseContext) -> tuple[Any, Any]:
    obstore = _import("obstore", "put_async", "get_range_async", "head_async", "get_async")
    stores = _import("obstore.store", "GCSStore")
    # A static bearer token stands in for credentials: the loopback server checks none.
    store = stores.GCSStore(
        ctx.bucket,
        base_url=ctx.endpoint,
        bearer_token="loopback-bench",
        client_options={"allow_http": True},
    )
    return obstore, store


async def _bounded(limit: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def obstore_download(
    ctx: CaseContext, *, chunk: str = "32MiB", concurrency: str = "4"
) -> dict[str, Any]:
    """obstore: one object as concurrent ranged GETs (``chunk`` x ``concurrency``) written with
    ``os.pwrite``, after a HEAD for the size; many objects as concurrent ``get_async``.

    Args:
        ctx: The run's context.
        chunk: Range size of the single-object download.
        concurrency: Ranges (or objects) in flight at once.
    """
    obstore, store = _obstore(ctx)
    step, limit = parse_size(chunk), int(concurrency)
    _prepare_dest(ctx)

    async def one_object() -> None:
        size = int((await obstore.head_async(store, ctx.object_name))["size"])
        fd = os.open(ctx.dest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:

            def part(start: int) -> Callable[[], Awaitable[None]]:
                async def fetch() -> None:
                    end = min(start + step, size)
                    data = await obstore.get_range_async(
                        store, ctx.object_name, start=start, end=end
                    )
                    os.pwrite(fd, memoryview(data), start)

                return fetch

            await _bounded(limit, [part(start) for start in range(0, size, step)])
        finally:
            os.close(fd)

    async def many_objects() -> None:
        def job(key: str, path: str) -> Callable[[], Awaitable[None]]:
            async def fetch() -> None:
                result = await obstore.get_async(store, key)
                data = await result.bytes_async()
                with open(path, "wb") as out:
                    out.write(memoryview(data))

            return fetch

        await _bounded(limit, [job(key, path) for key, path in _local_pairs(ctx)])

    with _Stopwatch() as watch:
        asyncio.run(many_objects() if ctx.many else one_object())
    return watch.result()


def obstore_upload(ctx: CaseContext, *, concurrency: str = "8") -> dict[str, Any]:
    """obstore ``put`` of the file path (its defaults: multipart above 5 MiB, 12 parts in
    flight); many files as concurrent ``put_async`` calls, ``concurrency`` at a time."""
    obstore, store = _obstore(ctx)
    pairs = _upload_pairs(ctx)

    async def upload() -> None:
        def job(path: str, key: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                await obstore.put_async(store, key, Path(path))

            return send

        await _bounded(int(concurrency), [job(path, key) for path, key in pairs])

    with _Stopwatch() as watch:
        asyncio.run(upload())
    return watch.result()


# -- pyarrow GcsFileSystem (C++, google-cloud-cpp) ---------------------------------------


def _pyarrow(ctx: CaseContext) -> tuple[Any, Any, Any]:
    pafs = _import("pyarrow.fs", "GcsFileSystem", "copy_files", "LocalFileSystem")
    gcs = pafs.GcsFileSystem(
        anonymous=True,
        endpoint_override=urllib.parse.urlsplit(ctx.endpoint).netloc,
        scheme="http",
        retry_time_limit=datetime.timedelta(seconds=15),
    )
    return pafs, gcs, pafs.LocalFileSystem()


def pyarrow_download(ctx: CaseContext) -> dict[str, Any]:
    """pyarrow ``fs.copy_files`` from GcsFileSystem to the local disk (its defaults)."""
    pafs, gcs, local = _pyarrow(ctx)
    source = f"{ctx.bucket}/{ctx.prefix.rstrip('/') if ctx.many else ctx.object_name}"
    _prepare_dest(ctx)
    with _Stopwatch() as watch:
        pafs.copy_files(source, ctx.dest_path, source_filesystem=gcs, destination_filesystem=local)
    return watch.result()


def pyarrow_upload(ctx: CaseContext) -> dict[str, Any]:
    """pyarrow ``fs.copy_files`` from the local disk to GcsFileSystem (its defaults)."""
    pafs, gcs, local = _pyarrow(ctx)
    source = ctx.source_dir if ctx.many else ctx.source_path
    with _Stopwatch() as watch:
        pafs.copy_files(
            source,
            f"{ctx.bucket}/{ctx.upload_name}",
            source_filesystem=local,
            destination_filesystem=gcs,
        )
    return watch.result()


# -- gcsfs (fsspec, aiohttp) -------------------------------------------------------------


def _gcsfs(ctx: CaseContext) -> Any:
    # gcsfs.core directly: the package's default class first asks the Storage Control gRPC
    # API for the bucket type, which an HTTP endpoint cannot answer.
    core = _import("gcsfs.core", "GCSFileSystem")
    return core.GCSFileSystem(endpoint_url=ctx.endpoint, token="anon", skip_instance_cache=True)


def gcsfs_download(ctx: CaseContext) -> dict[str, Any]:
    """gcsfs ``fs.get`` (a list of objects at once for many; its default batching)."""
    fs = _gcsfs(ctx)
    pairs = _local_pairs(ctx)
    _prepare_dest(ctx)
    remote = [f"{ctx.bucket}/{key}" for key, _ in pairs]
    local = [path for _, path in pairs]
    with _Stopwatch() as watch:
        if ctx.many:
            fs.get(remote, local)
        else:
            fs.get(remote[0], local[0])
    return watch.result()


def gcsfs_upload(ctx: CaseContext) -> dict[str, Any]:
    """gcsfs ``fs.put`` (a list of files at once for many; its default batching)."""
    fs = _gcsfs(ctx)
    pairs = _upload_pairs(ctx)
    local = [path for path, _ in pairs]
    remote = [f"{ctx.bucket}/{key}" for _, key in pairs]
    with _Stopwatch() as watch:
        if ctx.many:
            fs.put(local, remote)
        else:
            fs.put(local[0], remote[0])
    return watch.result()


# -- rclone (Go, JSON API) ---------------------------------------------------------------


def _rclone(ctx: CaseContext, *args: str) -> None:
    rclone = _binary("rclone", "apt-get install rclone")
    env = {
        **os.environ,
        "RCLONE_CONFIG_BENCH_TYPE": "google cloud storage",
        "RCLONE_CONFIG_BENCH_ENDPOINT": f"{ctx.endpoint}/storage/v1/",
        "RCLONE_CONFIG_BENCH_ANONYMOUS": "true",
        "RCLONE_CONFIG_BENCH_BUCKET_POLICY_ONLY": "true",
    }
    _run([rclone, "--config", os.devnull, "--retries", "1", *args], env=env)


def rclone_download(ctx: CaseContext, *, transfers: str = "") -> dict[str, Any]:
    """``rclone copyto`` of one object (its defaults: 4 streams above 256 MiB), or
    ``rclone copy`` of the prefix with ``--transfers`` objects in flight."""
    if ctx.many:
        args = ["copy", f"bench:{ctx.bucket}/{ctx.prefix.rstrip('/')}", ctx.dest_path]
        args += ["--transfers", transfers] if transfers else []
    else:
        args = ["copyto", f"bench:{ctx.bucket}/{ctx.object_name}", ctx.dest_path]
    with _Stopwatch() as watch:
        _rclone(ctx, *args)
    return watch.result()


def rclone_upload(ctx: CaseContext, *, transfers: str = "") -> dict[str, Any]:
    """``rclone copyto`` of one file (GCS uploads are one stream), or ``rclone copy`` of the
    directory with ``--transfers`` files in flight."""
    if ctx.many:
        args = ["copy", ctx.source_dir, f"bench:{ctx.bucket}/{ctx.upload_name}"]
        args += ["--transfers", transfers] if transfers else []
    else:
        args = ["copyto", ctx.source_path, f"bench:{ctx.bucket}/{ctx.upload_name}"]
    with _Stopwatch() as watch:
        _rclone(ctx, *args)
    return watch.result()


# -- gsutil (boto/apitools, JSON API over HTTPS) -----------------------------------------


def _gsutil(ctx: CaseContext, args: list[str], stdin: str = "") -> None:
    gsutil = os.environ.get("GSUTIL") or _binary("gsutil", "pip install gsutil, or the Cloud SDK")
    if not ctx.tls_endpoint:
        raise CaseUnavailable("gsutil speaks only HTTPS, and no TLS listener was started")
    port = ctx.tls_endpoint.rsplit(":", 1)[1]
    with tempfile.TemporaryDirectory(prefix="gsutil-home-", dir=os.getcwd()) as home:
        boto = Path(home) / "boto.cfg"
        boto.write_text(
            "[Credentials]\n"
            f"gs_json_host = 127.0.0.1\ngs_json_port = {port}\n"
            f"gs_host = 127.0.0.1\ngs_port = {port}\n"
            "[Boto]\nhttps_validate_certificates = False\nnum_retries = 1\nmax_retry_delay = 1\n"
            "[GSUtil]\nprefer_api = json\ndefault_project_id = bench\n"
            f"state_dir = {Path(home) / 'state'}\n"
        )
        env = {
            **os.environ,
            "BOTO_CONFIG": str(boto),
            "BOTO_PATH": str(boto),
            "CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL": "false",
            "HOME": home,
            "NO_GCE_CHECK": "True",
        }
        _run([gsutil, *args], env=env, stdin=stdin)


def gsutil_download(ctx: CaseContext) -> dict[str, Any]:
    """``gsutil cp`` of one object, or ``gsutil -m cp -I DIR`` of many (its defaults)."""
    _prepare_dest(ctx)
    with _Stopwatch() as watch:
        if ctx.many:
            urls = "".join(_gs(ctx, key) + "\n" for key, _ in _local_pairs(ctx))
            _gsutil(ctx, ["-m", "-q", "cp", "-I", ctx.dest_path + "/"], stdin=urls)
        else:
            _gsutil(ctx, ["-q", "cp", _gs(ctx, ctx.object_name), ctx.dest_path])
    return watch.result()


def gsutil_upload(ctx: CaseContext) -> dict[str, Any]:
    """``gsutil cp`` of one file, or ``gsutil -m cp -I gs://.../prefix/`` of many."""
    with _Stopwatch() as watch:
        if ctx.many:
            files = "".join(path + "\n" for path, _ in _upload_pairs(ctx))
            target = _gs(ctx, ctx.upload_name + "/")
            _gsutil(ctx, ["-m", "-q", "cp", "-I", target], stdin=files)
        else:
            _gsutil(ctx, ["-q", "cp", ctx.source_path, _gs(ctx, ctx.upload_name)])
    return watch.result()


# -- google-cloud-storage ----------------------------------------------------------------


def gcs_blob_download(ctx: CaseContext) -> dict[str, Any]:
    """google-cloud-storage ``Blob.download_to_filename`` (its defaults)."""
    _, blob = _storage_blob(ctx, ctx.object_name)
    with _Stopwatch() as watch:
        blob.download_to_filename(ctx.dest_path)
    return watch.result()


def gcs_blob_upload(ctx: CaseContext) -> dict[str, Any]:
    """google-cloud-storage ``Blob.upload_from_filename`` (its defaults)."""
    _, blob = _storage_blob(ctx, ctx.upload_name)
    with _Stopwatch() as watch:
        blob.upload_from_filename(ctx.source_path)
    return watch.result()


def tm_many_download(ctx: CaseContext) -> dict[str, Any]:
    """transfer_manager ``download_many_to_path`` (its defaults: 8 worker processes)."""
    manager, blob = _storage_blob(ctx, ctx.object_name)
    _prepare_dest(ctx)
    with _Stopwatch() as watch:
        manager.download_many_to_path(
            blob.bucket,
            list(ctx.names),
            destination_directory=ctx.dest_path,
            blob_name_prefix=ctx.prefix,
            raise_exception=True,
        )
    return watch.result()


def tm_many_upload(ctx: CaseContext) -> dict[str, Any]:
    """transfer_manager ``upload_many_from_filenames`` (its defaults: 8 worker processes)."""
    manager, blob = _storage_blob(ctx, ctx.upload_name)
    with _Stopwatch() as watch:
        manager.upload_many_from_filenames(
            blob.bucket,
            list(ctx.names),
            source_directory=ctx.source_dir,
            blob_name_prefix=ctx.upload_name + "/",
            raise_exception=True,
        )
    return watch.result()


# -- curl with many URLs -----------------------------------------------------------------


def _curl_config(lines: list[str]) -> str:
    path = os.path.join(os.getcwd(), f"curl-{os.getpid()}.cfg")
    with open(path, "w", encoding="utf-8") as config:
        config.write("\n".join(lines) + "\n")
    return path


def _curl_many(config_lines: list[str], parallel: str) -> dict[str, Any]:
    curl = _binary("curl", "apt-get install curl")
    config = _curl_config(config_lines)
    command = [curl, "--silent", "--show-error", "--fail", "--parallel"]
    command += ["--parallel-max", parallel, "--config", config]
    try:
        with _Stopwatch() as watch:
            _run(command)
    finally:
        os.unlink(config)
    return watch.result()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def curl_many_download(ctx: CaseContext, *, parallel: str = "8") -> dict[str, Any]:
    """One ``curl --parallel`` for every object (JSON API media GETs), ``parallel`` at once."""
    _prepare_dest(ctx)
    lines: list[str] = []
    for key, path in _local_pairs(ctx):
        name = urllib.parse.quote(key, safe="")
        url = f"{ctx.endpoint}/download/storage/v1/b/{ctx.bucket}/o/{name}?alt=media"
        lines += [f"url = {_quote(url)}", f"output = {_quote(path)}"]
    return _curl_many(lines, parallel)


def curl_many_upload(ctx: CaseContext, *, parallel: str = "8") -> dict[str, Any]:
    """One ``curl --parallel`` uploading every file as an XML API PUT, ``parallel`` at once."""
    lines: list[str] = []
    for path, key in _upload_pairs(ctx):
        url = f"{ctx.endpoint}/{ctx.bucket}/{urllib.parse.quote(key, safe='/')}"
        lines += [f"url = {_quote(url)}", f"upload-file = {_quote(path)}"]
    return _curl_many(lines, parallel)
