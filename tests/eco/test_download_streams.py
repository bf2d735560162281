"""ParallelDownload into a writable stream (pipe, file object) or a writable buffer."""

from __future__ import annotations

import io
import mmap
import os
import pathlib
import threading

import pytest

from resumable_media import common, transports
from resumable_media.parallel import ParallelDownload
from resumable_media.testing import GCSServer

MIB = 1 << 20


def _url(server: GCSServer, bucket: str, name: str) -> str:
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{name}?alt=media"


@pytest.fixture
def data(gcs_server: GCSServer, gcs_bucket: str) -> bytes:
    payload = os.urandom(5 * MIB + 11)
    gcs_server.put_object(gcs_bucket, "s.bin", payload)
    return payload


def test_into_a_pipe_in_order(gcs_server: GCSServer, gcs_bucket: str, data: bytes) -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            while chunk := pipe.read(65536):
                received.extend(chunk)

    thread = threading.Thread(target=drain)
    thread.start()
    with os.fdopen(write_fd, "wb") as pipe:
        result = ParallelDownload(
            _url(gcs_server, gcs_bucket, "s.bin"), pipe, chunk_size=MIB, threads_per_process=3
        ).consume(transports.anonymous())
    thread.join()
    assert bytes(received) == data and result.verified and result.bytes == len(data)


def test_into_a_file_object_and_buffers(
    gcs_server: GCSServer, gcs_bucket: str, data: bytes, tmp_path: pathlib.Path
) -> None:
    url = _url(gcs_server, gcs_bucket, "s.bin")
    path = tmp_path / "out.bin"
    with path.open("wb") as f:
        f.write(b"head")  # written from the stream's position on
        ParallelDownload(url, f, chunk_size=MIB).consume(transports.anonymous())
    assert path.read_bytes() == b"head" + data
    buffer = bytearray(len(data))
    assert ParallelDownload(url, buffer, chunk_size=MIB).consume(transports.anonymous()).verified
    assert buffer == data
    region = mmap.mmap(-1, len(data) + 100)
    view = memoryview(region)
    ParallelDownload(url, view[100:], chunk_size=MIB).consume(transports.anonymous())
    assert region[100:] == data
    view.release()
    region.close()
    part = bytearray(10)
    result = ParallelDownload(url, part, start=5, end=14).consume(transports.anonymous())
    assert part == data[5:15] and not result.verified  # a range cannot be checked


def test_bad_destinations_are_refused(gcs_server: GCSServer, gcs_bucket: str, data: bytes) -> None:
    url = _url(gcs_server, gcs_bucket, "s.bin")
    with pytest.raises(ValueError, match="holds 100 bytes"):
        ParallelDownload(url, bytearray(100)).consume(transports.anonymous())
    with pytest.raises(TypeError, match="text stream"):
        ParallelDownload(url, io.StringIO()).consume(transports.anonymous())
    with pytest.raises(TypeError, match="read-only"):
        ParallelDownload(url, b"immutable").consume(transports.anonymous())
    with pytest.raises(TypeError, match="not a int"):
        ParallelDownload(url, 42).consume(transports.anonymous())


def test_corrupted_object_never_reaches_the_end_of_the_stream(
    gcs_server: GCSServer, gcs_bucket: str, data: bytes
) -> None:
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    out = io.BytesIO()
    download = ParallelDownload(
        _url(gcs_server, gcs_bucket, "s.bin"),
        out,
        chunk_size=MIB,
        headers={"x-retry-test-id": test_id},
    )
    with pytest.raises(common.DataCorruption):
        download.consume(transports.anonymous())
    assert len(out.getvalue()) == len(data) - 11  # the last chunk (11 bytes) was withheld
