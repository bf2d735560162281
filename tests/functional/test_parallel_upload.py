"""PipelinedUpload and ParallelUpload against the loopback server."""

from __future__ import annotations

import io
import os
import subprocess
from typing import Any

import pytest

from resumable_media import InvalidResponse, RetryStrategy, checksums, transports
from resumable_media.parallel import ParallelUpload, PipelinedUpload
from support import DiesAfter, logged_requests, resumable_url

CHUNK = 256 * 1024
FAST_RETRY = RetryStrategy(max_retries=6, initial_delay=0.01, max_sleep=0.05, jitter_s=0)


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK, 3 * CHUNK + 11])
def test_pipelined_from_path(gcs_server, gcs_bucket, tmp_path, size):
    data = os.urandom(size)
    source = tmp_path / "src"
    source.write_bytes(data)
    calls: list[tuple[int, int | None]] = []
    session = transports.anonymous()()
    with session:
        result = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket), CHUNK, checksum="both"
        ).transmit(
            session,
            source,
            {"name": "obj"},
            "application/octet-stream",
            progress=lambda done, total: calls.append((done, total)),
        )
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data
    assert result.verified and result.bytes == size
    assert result.crc32c == checksums.crc32c_to_b64(checksums.crc32c(data))
    assert result.response is not None and int(result.response["size"]) == size
    assert calls[-1] == (size, size)


@pytest.mark.parametrize("size", [0, 2 * CHUNK, 2 * CHUNK + 5])
def test_pipelined_from_pipe_of_unknown_size(gcs_server, gcs_bucket, tmp_path, size):
    data = os.urandom(size)
    source = tmp_path / "src"
    source.write_bytes(data)
    gcs_server.clear_requests()
    with subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        session = transports.anonymous()()
        with session:
            result = PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
                session, proc.stdout, {"name": "piped"}, "text/plain"
            )
    assert gcs_server.object_bytes(gcs_bucket, "piped") == data
    assert result.verified and result.bytes == size
    ranges = [
        r.headers.get("content-range") for r in logged_requests(gcs_server) if r.method == "PUT"
    ]
    if size and size % CHUNK == 0:
        assert ranges[-1] == f"bytes */{size}"  # ended exactly on a chunk boundary
    assert all(value.endswith("/*") for value in ranges[:-1])


def test_pipelined_recovers_from_faults(gcs_server, gcs_bucket):
    data = os.urandom(4 * CHUNK + 99)
    test_id = gcs_server.create_retry_test(
        {"storage.objects.insert": ["return-503-after-256K", "return-reset-connection"]}
    )
    stream = io.BufferedReader(io.BytesIO(data))  # read once: recovery must use the buffers
    session = transports.anonymous()()
    with session:
        result = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket),
            2 * CHUNK,
            headers={"x-retry-test-id": test_id},
            retry=FAST_RETRY,
        ).transmit(session, stream, {"name": "faulty"}, "application/octet-stream")
    assert gcs_server.object_bytes(gcs_bucket, "faulty") == data
    assert result.verified
    assert gcs_server.retry_test(test_id)["completed"]


def test_pipelined_rejects_bad_chunk_size_and_text_streams():
    with pytest.raises(ValueError, match=r"256\.0 KB must divide chunk size"):
        PipelinedUpload("http://127.0.0.1:1/", 1000)
    with pytest.raises(TypeError, match="binary stream"):
        PipelinedUpload("http://127.0.0.1:1/", CHUNK).transmit(
            None,  # type: ignore[arg-type]
            io.StringIO("text"),
            {"name": "x"},
            "text/plain",
        )


@pytest.mark.parametrize(
    ("size", "processes"), [(0, 0), (CHUNK + 1, 0), (7 * CHUNK + 3, 0), (5 * CHUNK, 2)]
)
def test_parallel_upload_round_trip(gcs_server, gcs_bucket, tmp_path, size, processes):
    data = os.urandom(size)
    source = tmp_path / "src"
    source.write_bytes(data)
    url = f"{gcs_server.endpoint}/{gcs_bucket}/dir/obj"
    result = ParallelUpload(url, source, part_size=CHUNK, processes=processes).transmit(
        transports.anonymous(), "application/octet-stream", {"k": "v"}
    )
    assert gcs_server.object_bytes(gcs_bucket, "dir/obj") == data
    assert result.verified and result.bytes == size
    assert result.crc32c == checksums.crc32c_to_b64(checksums.crc32c(data))


def test_parallel_upload_aborts_on_failure(gcs_server, gcs_bucket, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(6 * CHUNK))
    test_id = gcs_server.create_retry_test({"storage.objects.insert": ["return-400-after-10K"]})
    url = f"{gcs_server.endpoint}/{gcs_bucket}/aborted"
    gcs_server.clear_requests()
    upload = ParallelUpload(url, source, part_size=CHUNK, headers={"x-retry-test-id": test_id})
    with pytest.raises(InvalidResponse):
        upload.transmit(transports.anonymous(), "application/octet-stream")
    assert not gcs_server.has_object(gcs_bucket, "aborted")
    deletes = [r for r in logged_requests(gcs_server) if r.method == "DELETE"]
    assert len(deletes) == 1 and "uploadId=" in deletes[0].path and deletes[0].status == 204


@pytest.mark.parametrize("size", [CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7, 9 * CHUNK])
def test_pipelined_single_request_round_trip(gcs_server, gcs_bucket, tmp_path, size):
    data = os.urandom(size)
    source = tmp_path / "src"
    source.write_bytes(data)
    gcs_server.clear_requests()
    with transports.anonymous()() as session:
        result = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket), CHUNK, checksum="both", single_request=True
        ).transmit(session, source, {"name": "obj"}, "application/octet-stream")
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data
    assert result.verified and result.bytes == size
    puts = [r for r in logged_requests(gcs_server) if r.method == "PUT"]
    whole_chunks_before_last = (size - 1) // CHUNK
    # One streamed PUT for the bulk (when there are at least two chunks to stream) + the last.
    assert len(puts) == (2 if whole_chunks_before_last >= 2 else whole_chunks_before_last + 1)
    assert "x-goog-hash" in puts[-1].headers
    assert all("x-goog-hash" not in put.headers for put in puts[:-1])


@pytest.mark.parametrize(
    "faults",
    [
        ["return-503-after-256K"],
        ["return-503-after-1024K", "return-reset-connection"],
        ["return-503-after-512K", "return-503"],
    ],
)
def test_pipelined_single_request_falls_back_to_chunks_after_a_fault(
    gcs_server, gcs_bucket, tmp_path, faults
):
    data = os.urandom(10 * CHUNK + 3)
    source = tmp_path / "src"
    source.write_bytes(data)
    # The first fault cuts the streamed PUT (the initiation carries no body); the next one
    # hits the status query or the chunk after it.
    test_id = gcs_server.create_retry_test({"storage.objects.insert": faults})
    with transports.anonymous()() as session:
        result = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket),
            CHUNK,
            headers={"x-retry-test-id": test_id},
            retry=FAST_RETRY,
            single_request=True,
        ).transmit(session, source, {"name": "obj"}, "application/octet-stream")
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data
    assert result.verified
    assert gcs_server.retry_test(test_id)["completed"]


def test_pipelined_single_request_source_failure_is_raised(gcs_server, gcs_bucket, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(10 * CHUNK))
    stream = DiesAfter(source, 4 * CHUNK)  # fails in the middle of the streamed PUT
    with transports.anonymous()() as session, pytest.raises(OSError, match="simulated"):
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK, single_request=True).transmit(
            session, stream, {"name": "obj"}, "application/octet-stream"
        )
    stream.close()
    assert not gcs_server.has_object(gcs_bucket, "obj")


@pytest.mark.parametrize("spelling", ["custom_metadata", "metadata"])
def test_parallel_upload_custom_metadata(gcs_server, gcs_bucket, tmp_path, spelling):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(3 * CHUNK))
    url = f"{gcs_server.endpoint}/{gcs_bucket}/custom"
    upload = ParallelUpload(url, source, part_size=CHUNK, processes=0)
    custom: dict[str, Any] = {spelling: {"k": "v"}}
    upload.transmit(transports.anonymous(), "text/plain", **custom)
    with transports.anonymous()() as session:
        resource = session.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/custom").json()
    assert resource["metadata"] == {"k": "v"}
    assert resource["contentType"] == "text/plain"


def test_parallel_upload_custom_metadata_once(gcs_server, gcs_bucket, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(b"x")
    upload = ParallelUpload(f"{gcs_server.endpoint}/{gcs_bucket}/twice", source, processes=0)
    with pytest.raises(TypeError, match="pass custom_metadata="):
        upload.transmit(transports.anonymous(), "text/plain", {"a": "1"}, custom_metadata={})
    assert not gcs_server.has_object(gcs_bucket, "twice")
