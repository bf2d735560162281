"""Helpers shared by the ecosystem tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from resumable_media.testing import GCSServer
from resumable_media.testing.exchange import RequestRecord


def records(
    server: GCSServer, match: Callable[[RequestRecord], bool], count: int, timeout_s: float = 5.0
) -> list[RequestRecord]:
    """The logged requests that ``match``, once at least ``count`` of them are logged.

    A request is logged just after its response was sent, so the client can be ahead of
    the log (and a late record of an earlier test may arrive first).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in server.requests if match(r)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)
