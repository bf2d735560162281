"""Fixtures of the reliability suite: fast retries, a work directory, and the matrix report.

Invariants: the retry policy used by in-process transfers sleeps ~10 ms (no 0-1 s
jitter) so that faults cost no wall time; the fault-matrix table is printed once at the
end of the session, whenever the matrix ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from resumable_media import RetryStrategy
from resumable_media._protocol import retry as retry_module

FAST_RETRY = RetryStrategy(initial_delay=0.01, max_sleep=0.05, max_retries=6)
"""Enough retries for every single fault, each wait ~10-50 ms."""

TIMEOUT = (10.0, 1.0)
"""(connect, read) seconds: a 2 s stall becomes a read timeout, retried and resumed."""

MATRIX_REPORT: dict[str, Any] = {}
"""Filled by test_fault_matrix: ``table`` (str) once the matrix has run."""


class NoJitter:
    """A ``randint`` source that always answers the low end (no jitter)."""

    def randint(self, a: int, b: int) -> int:
        return a


@pytest.fixture(scope="session")
def no_jitter() -> Iterator[None]:
    """Remove upstream's 0-1 s retry jitter for transfers running in this process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retry_module.Backoff.__init__, "__defaults__", (NoJitter(),))
        yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix after the run (pytest hook)."""
    table = MATRIX_REPORT.get("table")
    if table:
        terminalreporter.write_sep("=", "reliability fault matrix")
        terminalreporter.write_line(table)
