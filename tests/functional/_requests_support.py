"""Helpers shared by the functional tests of the ``resumable_media.requests`` classes.

Importing ``no_jitter`` into a test module activates it there (it is an autouse fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

import resumable_media
from resumable_media._protocol import retry as retry_module
from resumable_media.requests import _send

FAST = resumable_media.RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=4)
"""Quick retries: the tests exercise the retry paths, not the waiting."""


class _NoJitter:
    def randint(self, a: int, b: int) -> int:
        return 0


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The upstream formula adds up to 1 s of jitter per retry; these tests need none."""
    monkeypatch.setattr(_send, "Backoff", lambda s: retry_module.Backoff(s, rng=_NoJitter()))


def session_for(server: Any, instructions: dict[str, list[str]] | None = None) -> requests.Session:
    """A session whose requests carry a new Retry Test of ``instructions`` (if any)."""
    session = requests.Session()
    if instructions:
        session.headers["x-retry-test-id"] = server.create_retry_test(instructions)
    return session
