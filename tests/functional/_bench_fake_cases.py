"""Deliberately broken benchmark case bodies, imported by the harness's child processes.

Each one misbehaves in a way the harness must catch and report: wrong bytes from a
real download, a stray file beside a right one, a short upload, a missing library, a hang.
"""

from __future__ import annotations

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
