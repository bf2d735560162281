"""A default ParallelDownload sizes its connections by the first round trip it measures."""

from __future__ import annotations

import logging
import os
import pathlib

import pytest

from resumable_media import transports
from resumable_media.parallel import ParallelDownload
from resumable_media.parallel.plan import (
    DEFAULT_CONNECTIONS,
    NEAR_CONNECTIONS,
    NEAR_LATENCY_S,
    connections_for,
)
from resumable_media.testing import GCSServer

CHUNK = 256 * 1024


def _connections(
    server: GCSServer, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> tuple[int, float]:
    """Download 6 chunks; return the connections the download chose and the round trip it saw."""
    data = os.urandom(6 * CHUNK)
    server.create_bucket("b")
    server.put_object("b", "o", data)
    target = tmp_path / "o.bin"
    with caplog.at_level(logging.DEBUG, logger="resumable_media.parallel.download"):
        ParallelDownload(
            f"{server.endpoint}/download/storage/v1/b/b/o/o?alt=media",
            target,
            chunk_size=CHUNK,
        ).consume(transports.anonymous())
    assert target.read_bytes() == data
    lines = [
        r.getMessage() for r in caplog.records if " connections (first response" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    count, rest = lines[0].split(" connections (first response after ", 1)
    first_byte_ms = float(rest.removesuffix(" ms)"))
    return int(count), first_byte_ms


def test_a_loopback_server_gets_the_near_connections(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with GCSServer() as server:
        count, first_byte_ms = _connections(server, tmp_path, caplog)
    # 1-2 ms on an idle machine (NEAR_CONNECTIONS); a loaded one may take longer.
    assert count == connections_for(first_byte_ms / 1000, DEFAULT_CONNECTIONS)
    if first_byte_ms < NEAR_LATENCY_S * 1000:
        assert count == NEAR_CONNECTIONS


def test_a_distant_server_gets_the_default_connections(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with GCSServer(network="wan") as server:  # 30 ms before each response's first byte
        count, first_byte_ms = _connections(server, tmp_path, caplog)
    assert first_byte_ms >= 30
    assert count == DEFAULT_CONNECTIONS


def test_threads_asked_for_are_kept(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with GCSServer() as server, caplog.at_level(logging.DEBUG):
        data = os.urandom(6 * CHUNK)
        server.create_bucket("b")
        server.put_object("b", "o", data)
        ParallelDownload(
            f"{server.endpoint}/download/storage/v1/b/b/o/o?alt=media",
            tmp_path / "o.bin",
            chunk_size=CHUNK,
            threads_per_process=3,
        ).consume(transports.anonymous())
    assert (tmp_path / "o.bin").read_bytes() == data
    assert not [r for r in caplog.records if "connections (first response" in r.getMessage()]


def test_a_default_parallel_upload_sizes_its_parts_in_flight_by_the_initiate(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    from resumable_media.parallel import ParallelUpload

    data = os.urandom(20 * 2**20)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    with GCSServer() as server, caplog.at_level(logging.DEBUG, logger="resumable_media"):
        server.create_bucket("b")
        ParallelUpload(f"{server.endpoint}/b/up", source).transmit(
            transports.anonymous(), "application/octet-stream"
        )
        assert server.object_bytes("b", "up") == data
    lines = [
        r.getMessage() for r in caplog.records if "parts in flight (initiate" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    count, rest = lines[0].split(" parts in flight (initiate answered after ", 1)
    first_byte_ms = float(rest.removesuffix(" ms)"))
    assert int(count) == connections_for(first_byte_ms / 1000, DEFAULT_CONNECTIONS)
