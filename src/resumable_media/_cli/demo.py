"""``demo``: the end-to-end showcase on a loopback server, with no credentials or network.

Invariants: everything happens under one temp directory and one embedded server,
both removed in ``finally`` (also on failure and Ctrl-C); success (exit 0) is
reported only when the downloaded bytes equal the source bytes and the CRC32C of
source, server object and download all agree.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any

from resumable_media import checksums
from resumable_media._cli.progress import ProgressBar
from resumable_media._objects.transfer import TEMP_FILES
from resumable_media._objects.units import format_size
from resumable_media._objects.urls import Endpoint, GsUrl

__all__ = ["make_test_file", "run_demo"]

_BUCKET = "resumable-media-demo"
_BLOCK = 4 << 20


def make_test_file(path: pathlib.Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path`` quickly; return their CRC32C (base64).

    One random block is written at a different rotation each time, so the file is
    not periodic at block granularity yet costs only a memcpy per block.
    """
    seed = memoryview(os.urandom(_BLOCK))
    crc = 0
    written = 0
    with path.open("wb") as stream:
        step = 0
        while written < size:
            cut = (step * 7919 * 4096 + step) % _BLOCK
            for piece in (seed[cut:], seed[:cut]):
                piece = piece[: size - written]
                stream.write(piece)
                crc = checksums.crc32c(piece, crc)
                written += len(piece)
            step += 1
    return checksums.crc32c_to_b64(crc)


def _file_crc32c(path: pathlib.Path) -> str:
    crc = 0
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with path.open("rb") as stream:
        while count := stream.readinto(buffer):
            crc = checksums.crc32c(view[:count], crc)
    return checksums.crc32c_to_b64(crc)


def _same_bytes(a: pathlib.Path, b: pathlib.Path) -> bool:
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(_BLOCK), right.read(_BLOCK)
            if x != y:
                return False
            if not x:
                return True


def _row(step: str, seconds: float, size: int | None, detail: str) -> dict[str, Any]:
    rate = size / seconds / 2**20 if size and seconds > 0 else None
    return {"step": step, "seconds": round(seconds, 3), "mib_per_s": rate, "detail": detail}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'step':<28}{'seconds':>9}{'MiB/s':>10}  detail"]
    for r in rows:
        rate = f"{r['mib_per_s']:.1f}" if r["mib_per_s"] else "-"
        lines.append(f"{r['step']:<28}{r['seconds']:>9.2f}{rate:>10}  {r['detail']}")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace, *, show_progress: bool) -> int:
    """Run the demo; return 0 when everything verified, 1 otherwise."""
    from resumable_media import transports
    from resumable_media.parallel import ParallelDownload, PipelinedUpload
    from resumable_media.testing import GCSServer

    size: int = args.size
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="resumable-media-demo-"))
    TEMP_FILES.add(str(workdir))
    server = GCSServer(host="127.0.0.1", port=0, root=str(workdir / "server"))
    rows: list[dict[str, Any]] = []
    try:
        server.start()
        server.create_bucket(_BUCKET)
        endpoint = Endpoint(server.endpoint, authenticated=False)
        url = GsUrl(_BUCKET, "demo/test file ✓.bin")
        if not args.quiet:
            sys.stderr.write(
                f"demo: {format_size(size)} through a loopback GCS server at {server.endpoint}\n"
            )
        source, target = workdir / "source.bin", workdir / "downloaded.bin"

        started = time.monotonic()
        source_crc = make_test_file(source, size)
        rows.append(_row("write test file", time.monotonic() - started, size, source_crc))

        factory = transports.anonymous()
        bar = ProgressBar(size, enabled=show_progress)
        upload = PipelinedUpload(
            endpoint.upload_url(_BUCKET, "resumable"), args.chunk_size, checksum="crc32c"
        )
        started = time.monotonic()
        with source.open("rb") as stream:
            up = upload.transmit(
                factory(),
                stream,
                {"name": url.name},
                "application/octet-stream",
                progress=bar.callback("up"),
            )
        bar.close()
        server_crc = (up.response or {}).get("crc32c")
        rows.append(
            _row("upload (PipelinedUpload)", time.monotonic() - started, size, f"{server_crc}")
        )

        kwargs: dict[str, Any] = {}
        if args.threads is not None:
            kwargs["threads_per_process"] = args.threads
        generation = up.generation
        download = ParallelDownload(
            endpoint.media_url(url, generation),
            str(target),
            chunk_size=args.chunk_size,
            processes=args.processes,
            checksum="crc32c",
            resume=False,
            **kwargs,
        )
        bar = ProgressBar(size, enabled=show_progress)
        started = time.monotonic()
        down = download.consume(factory, progress=bar.callback("down"))
        bar.close()
        rows.append(
            _row("download (ParallelDownload)", time.monotonic() - started, size, f"{down.crc32c}")
        )

        started = time.monotonic()
        target_crc = _file_crc32c(target)
        same = _same_bytes(source, target)
        ok = same and source_crc == server_crc == target_crc == down.crc32c
        verdict = "OK" if ok else "MISMATCH"
        rows.append(
            _row(
                "verify (bytes + crc32c)",
                time.monotonic() - started,
                None,
                f"{verdict}: bytes {'equal' if same else 'differ'}, crc32c source={source_crc} "
                f"server={server_crc} download={target_crc}",
            )
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        TEMP_FILES.discard(str(workdir))
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_table(rows))
        print(f"result: {verdict} ({format_size(size)}, crc32c backend {checksums.implementation})")
    return 0 if ok else 1
