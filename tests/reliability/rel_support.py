"""Settings shared by the reliability tests: fast retries, timeouts, the matrix report.

Invariants: FAST_RETRY sleeps ~10-50 ms per retry and has no jitter (``jitter_s=0``, which
also holds in worker processes), so faults cost no wall time; MATRIX_REPORT is one shared dict
(this module is imported once per session by both conftest and the tests).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from resumable_media import RetryStrategy

FAST_RETRY = RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=6, jitter_s=0)
"""Enough retries for every single fault, each wait ~10-50 ms."""

TIMEOUT = (10.0, 1.0)
"""(connect, read) seconds: a 2 s stall becomes a read timeout, retried and resumed."""

DATA = bytes(range(256)) * 4096
"""The 1 MiB object of the bad-input tests (stored as ``obj`` by the ``env`` fixture)."""

MATRIX_REPORT: dict[str, Any] = {}
"""Filled by test_fault_matrix: ``table`` (str) once the matrix has run."""


def cp(endpoint: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``resumable-media cp --endpoint ENDPOINT ARGS...`` and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "resumable_media", "cp", "--endpoint", endpoint, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
