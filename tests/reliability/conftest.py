"""Fixtures of the reliability suite: jitter-free retries and the matrix report.

Invariants: ``no_jitter`` removes upstream's 0-1 s retry jitter only for transfers that run
in this process, only while the fixture is active; the fault-matrix table is printed once
at the end of the session, whenever the matrix ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rel_support import MATRIX_REPORT, NoJitter

from resumable_media._protocol import retry as retry_module


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
