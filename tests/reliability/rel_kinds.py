"""Transfer kinds of the reliability suite, each judged the same way against the loopback server.

Invariants: every kind moves one object through exactly one public entry point (a
``resumable_media.requests`` class, an accelerator class, or the ``resumable-media cp``
command in a subprocess), carrying the caller's extra headers (``x-retry-test-id``) on every
request it makes; :func:`run_cell` never trusts the library's own verdict alone -- it compares
the bytes at the destination (local file, stream or stored object) with the source and
with the server's CRC32C, and looks for leftovers (temp files, partial objects).
The module is shared by ``benchmarks/soak.py``; it imports no pytest.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import subprocess
import sys
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests

from resumable_media import checksums, common, transports
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload
from resumable_media.requests import (
    ChunkedDownload,
    Download,
    MultipartUpload,
    RawDownload,
    ResumableUpload,
    SimpleUpload,
    _send,
)

CHUNK = 512 * 1024
"""Chunk / part size of the chunked kinds: several requests per 2 MiB object."""

DOCUMENTED: tuple[type[BaseException], ...] = (
    common.InvalidResponse,
    common.DataCorruption,
    *_send.CONNECTION_ERROR_CLASSES,
)
"""Exceptions a failed transfer may raise (api-compat §1.2, §2.2)."""

DOWNLOADS = ("Download", "RawDownload", "ChunkedDownload", "ParallelDownload", "cp↓", "cp↓accel")
UPLOADS = (
    "SimpleUpload",
    "MultipartUpload",
    "ResumableUpload",
    "PipelinedUpload",
    "ParallelUpload",
    "cp↑",
    "cp↑accel",
)
KINDS = DOWNLOADS + UPLOADS
CLI_KINDS = ("cp↓", "cp↓accel", "cp↑", "cp↑accel")


@dataclasses.dataclass
class Env:
    """Where and how a cell runs."""

    endpoint: str
    bucket: str
    workdir: pathlib.Path
    retry: common.RetryStrategy
    timeout: tuple[float, float]
    server: Any = None  # a GCSServer when in-process (faster object set-up)
    # Builds every transport a transfer uses (picklable for the accelerator): the soak
    # passes one that injects faults into random requests.
    transport_factory: Callable[[], Any] = dataclasses.field(default_factory=transports.anonymous)

    def media_url(self, name: str) -> str:
        quoted = urllib.parse.quote(name, safe="")
        return f"{self.endpoint}/download/storage/v1/b/{self.bucket}/o/{quoted}?alt=media"

    def upload_url(self, kind: str, name: str | None = None) -> str:
        url = f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o?uploadType={kind}"
        if name is not None:
            url += "&name=" + urllib.parse.quote(name, safe="")
        return url

    def xml_url(self, name: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{urllib.parse.quote(name, safe='/')}"

    def object_url(self, name: str) -> str:
        quoted = urllib.parse.quote(name, safe="")
        return f"{self.endpoint}/storage/v1/b/{self.bucket}/o/{quoted}"


@dataclasses.dataclass
class Outcome:
    """The verdict of one cell.

    status: ``ok`` (exact bytes, checksum verified), ``failed`` (a documented exception and
    nothing left behind), ``CORRUPT`` (success reported, or data left, with wrong bytes) or
    ``BAD`` (an undocumented exception, leftovers, or a wrong verdict).
    """

    status: str
    detail: str = ""
    error: str = ""
    unconsumed: int = 0  # Retry Test instructions still queued after the transfer


def crc_b64(data: bytes) -> str:
    """The base64 CRC32C of ``data``, as GCS reports it."""
    return checksums.crc32c_to_b64(checksums.crc32c(data))


# ----------------------------------------------------------------------------- object access


def put_object(env: Env, name: str, data: bytes) -> None:
    """Store ``data`` as ``name`` (in-process server when available, else over HTTP)."""
    if env.server is not None:
        env.server.put_object(env.bucket, name, data)
        return
    response = requests.post(env.upload_url("media", name), data=data, timeout=60)
    response.raise_for_status()


def stored_object(env: Env, name: str) -> tuple[bytes, dict[str, Any]] | None:
    """The live object's bytes and resource, or None when there is none (no faults applied)."""
    response = requests.get(env.object_url(name), timeout=60)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    resource = response.json()
    body = requests.get(env.media_url(name), timeout=60)
    body.raise_for_status()
    return body.content, resource


# ----------------------------------------------------------------------------- the kinds


def _stream_download(
    cls: type[Download] | type[RawDownload],
) -> Callable[[Env, str, dict[str, str]], bytes]:
    def run(env: Env, name: str, headers: dict[str, str]) -> bytes:
        stream = io.BytesIO()
        download = cls(
            env.media_url(name), stream=stream, checksum="crc32c", headers=headers, retry=env.retry
        )
        with env.transport_factory() as session:
            download.consume(session, timeout=env.timeout)
        return stream.getvalue()

    return run


def _chunked_download(env: Env, name: str, headers: dict[str, str]) -> bytes:
    stream = io.BytesIO()
    download = ChunkedDownload(
        env.media_url(name), CHUNK, stream, headers=headers, checksum="crc32c", retry=env.retry
    )
    with env.transport_factory() as session:
        while not download.finished:
            download.consume_next_chunk(session, timeout=env.timeout)
    return stream.getvalue()


def _parallel_download(env: Env, name: str, headers: dict[str, str]) -> bytes:
    destination = env.workdir / f"{name}.out"
    download = ParallelDownload(
        env.media_url(name),
        destination,
        chunk_size=CHUNK,
        processes=0,
        threads_per_process=3,
        headers=headers,
        retry=env.retry,
        timeout=env.timeout,
    )
    result = download.consume(env.transport_factory)
    if not result.verified:
        raise AssertionError(f"ParallelDownload returned verified=False: {result}")
    return destination.read_bytes()


def _simple_upload(env: Env, name: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    upload = SimpleUpload(env.upload_url("media", name), headers=headers, retry=env.retry)
    with env.transport_factory() as session:
        response = upload.transmit(session, data, "application/octet-stream", timeout=env.timeout)
    resource: dict[str, Any] = response.json()
    return resource


def _multipart_upload(env: Env, name: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    upload = MultipartUpload(
        env.upload_url("multipart"), headers=headers, checksum="crc32c", retry=env.retry
    )
    with env.transport_factory() as session:
        response = upload.transmit(
            session, data, {"name": name}, "application/octet-stream", timeout=env.timeout
        )
    resource: dict[str, Any] = response.json()
    return resource


def _resumable_upload(env: Env, name: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    upload = ResumableUpload(
        env.upload_url("resumable"),
        CHUNK,
        checksum="crc32c",
        headers=headers,
        retry=env.retry,
        auto_recover=True,
    )
    with env.transport_factory() as session:
        upload.initiate(
            session,
            io.BytesIO(data),
            {"name": name},
            "application/octet-stream",
            timeout=env.timeout,
        )
        response = upload.transmit(session, timeout=env.timeout)
    if not upload.finished or upload.bytes_uploaded != len(data):
        raise AssertionError(f"upload not finished: {upload.bytes_uploaded} of {len(data)}")
    resource: dict[str, Any] = response.json()
    return resource


def _pipelined_upload(env: Env, name: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    upload = PipelinedUpload(
        env.upload_url("resumable"),
        CHUNK,
        checksum="crc32c",
        headers=headers,
        retry=env.retry,
        timeout=env.timeout,
    )
    with env.transport_factory() as session:
        result = upload.transmit(
            session, io.BytesIO(data), {"name": name}, "application/octet-stream"
        )
    if not result.verified or result.response is None:
        raise AssertionError(f"PipelinedUpload returned verified=False: {result}")
    return result.response


def _parallel_upload(env: Env, name: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    source = env.workdir / f"{name}.src"
    source.write_bytes(data)
    upload = ParallelUpload(
        env.xml_url(name),
        source,
        part_size=CHUNK,
        processes=0,
        threads_per_process=3,
        headers=headers,
        retry=env.retry,
        timeout=env.timeout,
    )
    result = upload.transmit(env.transport_factory, "application/octet-stream")
    if not result.verified:
        raise AssertionError(f"ParallelUpload returned verified=False: {result}")
    return {"crc32c": result.crc32c, "size": str(result.bytes)}


DOWNLOAD_RUNNERS: dict[str, Callable[[Env, str, dict[str, str]], bytes]] = {
    "Download": _stream_download(Download),
    "RawDownload": _stream_download(RawDownload),
    "ChunkedDownload": _chunked_download,
    "ParallelDownload": _parallel_download,
}
UPLOAD_RUNNERS: dict[str, Callable[[Env, str, bytes, dict[str, str]], dict[str, Any]]] = {
    "SimpleUpload": _simple_upload,
    "MultipartUpload": _multipart_upload,
    "ResumableUpload": _resumable_upload,
    "PipelinedUpload": _pipelined_upload,
    "ParallelUpload": _parallel_upload,
}


# ----------------------------------------------------------------------------- the CLI


def cli_command(env: Env, kind: str, name: str, headers: dict[str, str]) -> list[str]:
    """The ``resumable-media cp`` argv for a CLI kind."""
    argv = [sys.executable, "-m", "resumable_media", "cp", "--endpoint", env.endpoint, "-q"]
    argv += ["--json"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    if kind.endswith("accel"):
        argv += ["--chunk-size", str(CHUNK)]
    gs = f"gs://{env.bucket}/{name}"
    local = str(env.workdir / f"{name}.{'out' if kind.startswith('cp↓') else 'src'}")
    return [*argv, gs, local] if kind.startswith("cp↓") else [*argv, local, gs]


def run_cli(env: Env, kind: str, name: str, headers: dict[str, str], timeout_s: float = 120) -> Any:
    """Run one cp; return the CompletedProcess."""
    return subprocess.run(
        cli_command(env, kind, name, headers),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


# ----------------------------------------------------------------------------- judging


def _leftovers(env: Env, name: str, keep: set[str]) -> list[str]:
    return sorted(
        p.name for p in env.workdir.iterdir() if p.name.startswith(name) and p.name not in keep
    ) + sorted(p.name for p in env.workdir.iterdir() if p.name.startswith(f".{name}"))


def _judge_download(
    env: Env, kind: str, name: str, data: bytes, run: Callable[[], bytes]
) -> Outcome:
    destination = env.workdir / f"{name}.out"
    try:
        got = run()
    except DOCUMENTED as exc:
        if destination.exists():
            wrong = destination.read_bytes() != data
            return Outcome(
                "CORRUPT" if wrong else "BAD", "destination written on failure", _err(exc)
            )
        # ParallelDownload keeps its partial file + journal for resume after a transient
        # (connection) failure, as documented; after any other failure nothing may remain.
        resumable = isinstance(exc, _send.CONNECTION_ERROR_CLASSES)
        extra = [
            n
            for n in _leftovers(env, name, set())
            if not (resumable and n.endswith((".rmpart", ".rmpart.journal")))
        ]
        if extra:
            return Outcome("BAD", f"leftovers {extra}", _err(exc))
        return Outcome("failed", type(exc).__name__, _err(exc))
    except Exception as exc:
        return Outcome("BAD", f"undocumented {type(exc).__name__}", _err(exc))
    if got != data:
        return Outcome("CORRUPT", f"{len(got)} bytes returned, {len(data)} expected")
    leftovers = _leftovers(env, name, {f"{name}.out"})
    if leftovers:
        return Outcome("BAD", f"leftovers {leftovers}")
    return Outcome("ok", f"{len(got)} B, crc32c {crc_b64(got)}")


def _judge_upload(env: Env, name: str, data: bytes, run: Callable[[], dict[str, Any]]) -> Outcome:
    try:
        resource = run()
    except DOCUMENTED as exc:
        stored = stored_object(env, name)
        if stored is None:
            return Outcome("failed", type(exc).__name__, _err(exc))
        if stored[0] != data:
            return Outcome("CORRUPT", "failed upload left a wrong object", _err(exc))
        return Outcome("failed", f"{type(exc).__name__} (object complete)", _err(exc))
    except Exception as exc:
        return Outcome("BAD", f"undocumented {type(exc).__name__}", _err(exc))
    stored = stored_object(env, name)
    if stored is None:
        return Outcome("CORRUPT", "success reported but no object exists")
    body, server_resource = stored
    if body != data:
        return Outcome("CORRUPT", f"object holds {len(body)} bytes, {len(data)} sent")
    expected = crc_b64(data)
    if server_resource.get("crc32c") != expected or resource.get("crc32c") != expected:
        return Outcome("CORRUPT", f"crc32c {resource.get('crc32c')} != {expected}")
    return Outcome("ok", f"{len(body)} B, crc32c {expected}")


def _judge_cli(env: Env, kind: str, name: str, data: bytes, proc: Any) -> Outcome:
    download = kind.startswith("cp↓")
    detail = (proc.stderr or "").strip().splitlines()
    last = detail[-1] if detail else ""
    if proc.returncode == 0:
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        if not lines or lines[-1].get("status") != "ok":
            return Outcome("BAD", f"exit 0 without an ok summary: {proc.stdout[-300:]}")
        if download:
            destination = env.workdir / f"{name}.out"
            got = destination.read_bytes() if destination.exists() else None
            if got != data:
                return Outcome("CORRUPT", "cp reported success with wrong/missing file")
        else:
            stored = stored_object(env, name)
            if stored is None or stored[0] != data:
                return Outcome("CORRUPT", "cp reported success with wrong/missing object")
        leftovers = _leftovers(env, name, {f"{name}.out", f"{name}.src"})
        if leftovers:
            return Outcome("BAD", f"leftovers {leftovers}")
        return Outcome("ok", f"exit 0, crc32c {lines[-1].get('crc32c')}")
    if proc.returncode != 1:
        return Outcome("BAD", f"exit {proc.returncode}", last)
    if download:
        destination = env.workdir / f"{name}.out"
        if destination.exists():
            return Outcome("CORRUPT", "failed cp left a destination file", last)
    else:
        stored = stored_object(env, name)
        if stored is not None and stored[0] != data:
            return Outcome("CORRUPT", "failed cp left a wrong object", last)
    return Outcome("failed", "exit 1", last)


def _err(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.replace("\n", " ")[:300]


def run_cell(
    env: Env,
    kind: str,
    name: str,
    data: bytes,
    instructions: dict[str, list[str]] | None,
    create_test: Callable[[dict[str, list[str]]], str],
) -> Outcome:
    """Run ``kind`` on an object of ``data`` under ``instructions``; judge the outcome.

    Args:
        env: The server and settings.
        kind: One of :data:`KINDS`.
        name: A fresh object name (also the local file prefix).
        data: The object bytes.
        instructions: Retry Test instructions (None: no faults).
        create_test: Registers instructions, returns the test id.

    Returns:
        The verdict.
    """
    download = kind in DOWNLOADS
    if download:
        put_object(env, name, data)
    else:
        (env.workdir / f"{name}.src").write_bytes(data)
    headers: dict[str, str] = {}
    if instructions:
        headers["x-retry-test-id"] = create_test(instructions)
    try:
        if kind in CLI_KINDS:
            return _judge_cli(env, kind, name, data, run_cli(env, kind, name, headers))
        if download:
            runner = DOWNLOAD_RUNNERS[kind]
            return _judge_download(env, kind, name, data, lambda: runner(env, name, headers))
        uploader = UPLOAD_RUNNERS[kind]
        return _judge_upload(env, name, data, lambda: uploader(env, name, data, headers))
    except Exception:
        return Outcome("BAD", "harness error", traceback.format_exc()[-500:])
