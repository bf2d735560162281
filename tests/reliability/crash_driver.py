"""Subprocess driver for the crash-and-resume tests: one transfer, progress on stdout.

Usage: ``crash_driver.py download|upload ENDPOINT BUCKET NAME PATH CHUNK PROCESSES [TEST_ID]``

Prints ``START`` once the transfer object exists, ``P <done> <total>`` from the progress
callback (at least 4 times a second while busy), and finally ``DONE <json>`` with the
TransferResult fields.  The parent kills this process with SIGKILL at a seeded moment.
Invariants: stdout is line-buffered and flushed per line; nothing else is printed there.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.parse
from typing import Any

import requests

from resumable_media import transports
from resumable_media.common import RetryStrategy
from resumable_media.parallel import ParallelDownload, PipelinedUpload


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _progress(done: int, total: int | None) -> None:
    _say(f"P {done} {total if total is not None else -1}")


def _die_inside_journal_save() -> None:
    """Make the process SIGKILL itself between writing a journal's temp file and renaming it
    (an exact crash point: ``RM_CRASH_IN_JOURNAL=1``)."""
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if ".journal" in os.fspath(dst) and os.fspath(src).endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, **kwargs)

    os.replace = replace  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    if os.environ.get("RM_CRASH_IN_JOURNAL") == "1":
        _die_inside_journal_save()
    if "RM_UMASK" in os.environ:  # file-mode tests: make the library's own modes visible
        os.umask(int(os.environ["RM_UMASK"], 8))
    mode, endpoint, bucket, name, path, chunk, processes = argv[:7]
    headers = {"x-retry-test-id": argv[7]} if len(argv) > 7 else {}
    retry = RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=6, jitter_s=0)
    quoted = urllib.parse.quote(name, safe="")
    if mode == "download":
        download = ParallelDownload(
            f"{endpoint}/download/storage/v1/b/{bucket}/o/{quoted}?alt=media",
            path,
            chunk_size=int(chunk),
            processes=int(processes),
            threads_per_process=4,
            headers=headers,
            retry=retry,
        )
        _say("START")
        result = download.consume(transports.anonymous(), progress=_progress)
    else:
        upload = PipelinedUpload(
            f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable",
            int(chunk),
            headers=headers,
            retry=retry,
        )
        # With RM_SESSION_FILE the session URL is kept there, so a rerun after a kill
        # continues the same resumable session instead of starting a new one.
        session_file = os.environ.get("RM_SESSION_FILE")
        stored = None
        if session_file and os.path.exists(session_file):
            with open(session_file, encoding="utf-8") as handle:
                stored = handle.read().strip() or None

        def keep(url: str) -> None:
            if session_file:
                with open(session_file + ".tmp", "w", encoding="utf-8") as handle:
                    handle.write(url)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(session_file + ".tmp", session_file)

        _say("START")
        with requests.Session() as session:
            result = upload.transmit(
                session,
                path,
                {"name": name},
                "application/octet-stream",
                progress=_progress,
                resumable_url=stored,
                on_session=keep,
            )
        if session_file and os.path.exists(session_file):
            os.unlink(session_file)
    _say(
        "DONE "
        + json.dumps(
            {
                "bytes": result.bytes,
                "verified": result.verified,
                "crc32c": result.crc32c,
                "generation": result.generation,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
