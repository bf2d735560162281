"""Importable helpers of the test suite (``from support import …``).

Invariants: importing this package switches nothing on: no fixtures, no monkeypatching,
no global state; every helper is a plain function, class or constant.
"""

from __future__ import annotations

from support.files import DiesAfter
from support.server import FAST, logged_requests, resumable_url, session_for, wait_for_records

__all__ = [
    "FAST",
    "DiesAfter",
    "logged_requests",
    "resumable_url",
    "session_for",
    "wait_for_records",
]
