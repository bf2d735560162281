"""Helpers shared by the functional tests of the ``resumable_media.requests`` classes.

``FAST`` has no jitter (``jitter_s=0``); ``no_jitter`` is kept as a no-op fixture so modules
that import it keep working.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

import resumable_media

FAST = resumable_media.RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=4, jitter_s=0)
"""Quick retries: the tests exercise the retry paths, not the waiting."""


@pytest.fixture(autouse=True)
def no_jitter() -> None:
    """Nothing to do: ``FAST`` is jitter-free (kept for the modules that import it)."""


def session_for(server: Any, instructions: dict[str, list[str]] | None = None) -> requests.Session:
    """A session whose requests carry a new Retry Test of ``instructions`` (if any)."""
    session = requests.Session()
    if instructions:
        session.headers["x-retry-test-id"] = server.create_retry_test(instructions)
    return session
