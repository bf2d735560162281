"""Talking to the loopback server in tests: URLs, its request log, fault sessions, retries."""

from __future__ import annotations

import time
from typing import Any

import requests

import resumable_media

__all__ = ["FAST", "logged_requests", "resumable_url", "session_for", "wait_for_records"]

FAST = resumable_media.RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=4, jitter_s=0)
"""Quick retries without jitter: the tests exercise the retry paths, not the waiting."""


def logged_requests(server: Any) -> list[Any]:
    """The server's request log once it stops growing (it logs just after answering)."""
    previous = -1
    deadline = time.monotonic() + 3
    records = server.requests
    while len(records) != previous and time.monotonic() < deadline:
        previous = len(records)
        time.sleep(0.1)
        records = server.requests
    return list(records)


def wait_for_records(
    server: Any, predicate: Any, count: int = 1, timeout_s: float = 5.0
) -> list[Any]:
    """The logged requests that satisfy ``predicate``, once at least ``count`` of them are
    in the log (a record is written just after its answer; another test's late record may
    come in between, so the log is filtered rather than indexed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in server.requests if predicate(r)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def resumable_url(server: Any, bucket: str) -> str:
    """The JSON API URL that starts a resumable upload into ``bucket``."""
    return f"{server.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"


def session_for(server: Any, instructions: dict[str, list[str]] | None = None) -> requests.Session:
    """A session whose requests carry a new Retry Test of ``instructions`` (if any)."""
    session = requests.Session()
    if instructions:
        session.headers["x-retry-test-id"] = server.create_retry_test(instructions)
    return session
