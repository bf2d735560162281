"""Shared data for the peer-client interop tests: a small object and a 40 MiB one."""

from __future__ import annotations

import os
import pathlib

import pytest

SMALL = 1000
LARGE = 40 << 20


@pytest.fixture(scope="session")
def payloads() -> dict[str, bytes]:
    """``small.bin`` (1,000 bytes) and ``large.bin`` (40 MiB), random, shared by the session."""
    return {"small.bin": os.urandom(SMALL), "large.bin": os.urandom(LARGE)}


@pytest.fixture
def payload_dir(tmp_path: pathlib.Path, payloads: dict[str, bytes]) -> pathlib.Path:
    """A directory holding the payloads as files."""
    source = tmp_path / "source"
    source.mkdir()
    for name, data in payloads.items():
        (source / name).write_bytes(data)
    return source
