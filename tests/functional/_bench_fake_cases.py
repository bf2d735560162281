"""Deliberately broken benchmark case bodies, imported by the harness's child processes.

Each one misbehaves in a way the harness must catch and report: wrong bytes from a
real download, a stray file beside a right one, a short upload, a missing library, a hang.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from typing import Any

import requests

from resumable_media._bench.model import CaseContext, CaseUnavailable


def corrupt_download(ctx: CaseContext) -> dict[str, Any]:
    """Download the object for real, then flip one byte of the file it wrote."""
    start = time.perf_counter()
    body = bytearray(requests.get(ctx.media_url(), timeout=30).content)
    body[len(body) // 2] ^= 0x01
    with open(ctx.dest_path, "wb") as out:
        out.write(body)
    return {"seconds": time.perf_counter() - start}


def leftover_journal(ctx: CaseContext) -> dict[str, Any]:
    """Download the right bytes, but leave a stray journal beside the destination."""
    start = time.perf_counter()
    body = requests.get(ctx.media_url(), timeout=30).content
    with open(ctx.dest_path, "wb") as out:
        out.write(body)
    with open(ctx.dest_path + ".journal", "w") as journal:
        journal.write("{}")
    return {"seconds": time.perf_counter() - start}


def short_upload(ctx: CaseContext) -> dict[str, Any]:
    """Upload all but the last byte of the source with a real media upload."""
    with open(ctx.source_path, "rb") as source:
        data = source.read()[:-1]
    start = time.perf_counter()
    name = urllib.parse.quote(ctx.upload_name, safe="")
    response = requests.post(
        f"{ctx.endpoint}/upload/storage/v1/b/{ctx.bucket}/o?uploadType=media&name={name}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    response.raise_for_status()
    return {"seconds": time.perf_counter() - start}


def missing_library(ctx: CaseContext) -> dict[str, Any]:
    """Behave like a case whose module has not landed yet."""
    raise CaseUnavailable("fakelib is not installed")


def hang(ctx: CaseContext) -> dict[str, Any]:
    """Never finish (the harness must time out and kill it)."""
    time.sleep(3600)
    return {"seconds": 3600.0}


def _flip_one_byte(path: str, offset: int = 100) -> None:
    with open(path, "r+b") as stream:
        stream.seek(offset)
        byte = stream.read(1)
        stream.seek(offset)
        stream.write(bytes([byte[0] ^ 0x01]))


def obstore_corrupt_many_download(ctx: CaseContext) -> dict[str, Any]:
    """A peer that writes wrong bytes: obstore's real many-object download, then one file of
    the many is changed by one bit."""
    from resumable_media._bench.peers import obstore_download

    result = obstore_download(ctx, concurrency="8")
    _flip_one_byte(os.path.join(ctx.dest_path, ctx.names[len(ctx.names) // 2]))
    return result


def obstore_missing_many_download(ctx: CaseContext) -> dict[str, Any]:
    """obstore's real many-object download, then the last file goes missing."""
    from resumable_media._bench.peers import obstore_download

    result = obstore_download(ctx, concurrency="8")
    os.unlink(os.path.join(ctx.dest_path, ctx.names[-1]))
    return result


def obstore_corrupt_many_upload(ctx: CaseContext) -> dict[str, Any]:
    """A peer that stores wrong bytes: obstore's real many-file upload, then one object is
    replaced by the same file with one bit changed."""
    import obstore
    from obstore.store import GCSStore

    from resumable_media._bench.peers import obstore_upload

    result = obstore_upload(ctx, concurrency="8")
    name = ctx.names[0]
    with open(os.path.join(ctx.source_dir, name), "rb") as source:
        data = bytearray(source.read())
    data[100] ^= 0x01
    store = GCSStore(
        ctx.bucket,
        base_url=ctx.endpoint,
        bearer_token="loopback-test",
        client_options={"allow_http": True},
    )
    obstore.put(store, f"{ctx.upload_name}/{name}", bytes(data))
    return result
