"""Fixtures of the reliability suite: the environment, a session, and the matrix report.

Invariants: retries are jitter-free through ``FAST_RETRY`` itself (``jitter_s=0``), never by
patching; the fault-matrix table is printed once at the end of the session, whenever the
matrix ran.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rel_kinds import Env
from rel_support import DATA, FAST_RETRY, MATRIX_REPORT, TIMEOUT


@pytest.fixture
def env(gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path) -> Env:
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
