"""Helpers shared by the accelerator's functional tests."""

from __future__ import annotations

import time
from typing import Any


def logged_requests(server: Any) -> list[Any]:
    """The server's request log once it stops growing (it logs just after answering)."""
    previous = -1
    deadline = time.monotonic() + 3
    records = server.requests
    while len(records) != previous and time.monotonic() < deadline:
        previous = len(records)
        time.sleep(0.1)
        records = server.requests
    return records
