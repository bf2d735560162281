"""pytest plugin: the ``gcs_server`` (session) and ``gcs_bucket`` (function) fixtures.

Invariants: one server per test session on an ephemeral loopback port, stopped (and its temp
directory removed) at the end of the session; every ``gcs_bucket`` is a fresh, unique bucket.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from .server import GCSServer

_bucket_counter = itertools.count(1)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """A started loopback GCS server shared by the whole test session."""
    server = GCSServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    """A fresh bucket name, already created on ``gcs_server``."""
    name = f"test-bucket-{next(_bucket_counter)}"
    gcs_server.create_bucket(name)
    return name
