"""Fixtures of the reliability suite: jitter-free retries and the matrix report.

Invariants: ``no_jitter`` removes upstream's 0-1 s retry jitter only for transfers that run
in this process, only within the modules that use it; the fault-matrix table is printed once
at the end of the session, whenever the matrix ran.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rel_kinds import Env
from rel_support import DATA, FAST_RETRY, MATRIX_REPORT, TIMEOUT, NoJitter

from resumable_media._protocol import retry as retry_module


@pytest.fixture(scope="module")
def no_jitter() -> Iterator[None]:
    """Remove upstream's 0-1 s retry jitter for transfers running in this process (undone
    at the end of each test module, so other suites see the real jitter)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retry_module.Backoff.__init__, "__defaults__", (NoJitter(),))
        yield


@pytest.fixture
def env(gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path, no_jitter: None) -> Env:
    """A fresh bucket holding ``obj`` (:data:`DATA`), fast retries, a work directory."""
    gcs_server.put_object(gcs_bucket, "obj", DATA)
    return Env(gcs_server.endpoint, gcs_bucket, tmp_path, FAST_RETRY, TIMEOUT, gcs_server)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session, closed afterwards."""
    with requests.Session() as s:
        yield s


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix after the run (pytest hook)."""
    table = MATRIX_REPORT.get("table")
    if table:
        terminalreporter.write_sep("=", "reliability fault matrix")
        terminalreporter.write_line(table)
