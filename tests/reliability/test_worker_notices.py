"""A retry inside a worker process reaches the parent's loggers (and so the command's notices)."""

from __future__ import annotations

import logging
import os
import pathlib
import threading

import pytest
from rel_liar import Reply, Request, serve_forwarding

from resumable_media import common, transports
from resumable_media.parallel import ParallelDownload

CHUNK = 256 * 1024


def _unchanged(request: Request, status: int, headers: dict[str, str], body: bytes):
    return status, headers, body


def test_a_worker_process_retry_is_logged_in_the_parent(
    gcs_server, gcs_bucket, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(6 * CHUNK)
    gcs_server.put_object(gcs_bucket, "obj", data)
    refused: list[str] = []
    lock = threading.Lock()

    def refuse_two_later_ranges(request: Request) -> Reply | None:
        # The parent reads the first range itself; the later ones run in the worker process.
        if request.method == "GET" and not request.headers.get("range", "").startswith("bytes=0-"):
            with lock:
                if len(refused) < 2:
                    refused.append(request.headers.get("range", ""))
                    return Reply(503, {"content-type": "text/plain"}, b"busy")
        return None

    destination = tmp_path / "copy.bin"
    with (
        caplog.at_level(logging.WARNING, logger="resumable_media"),
        serve_forwarding(gcs_server.endpoint, _unchanged, refuse_two_later_ranges) as liar,
    ):
        download = ParallelDownload(
            f"{liar.endpoint}/download/storage/v1/b/{gcs_bucket}/o/obj?alt=media",
            destination,
            chunk_size=CHUNK,
            processes=1,
            threads_per_process=3,
            retry=common.RetryStrategy(max_retries=5, initial_delay=0.01, jitter_s=0),
        )
        download.consume(transports.anonymous())
    assert destination.read_bytes() == data
    assert len(refused) == 2
    notices = [r for r in caplog.records if getattr(r, "rm_retry", None) is not None]
    from_workers = [r for r in notices if r.processName != "MainProcess"]
    assert len(from_workers) == 2, [(r.processName, r.getMessage()) for r in notices]
    assert all(r.rm_retry.reason == "HTTP 503" for r in from_workers)  # type: ignore[attr-defined]
    assert all(r.rm_retry.origin == liar.endpoint for r in from_workers)  # type: ignore[attr-defined]
