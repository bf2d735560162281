"""A finalized upload that fails its check is deleted, or the error says it stays.

A forwarding liar sits between the uploader and the real loopback server: every request
goes through to the server, and only the answer that reports the finished object's CRC32C
is altered (the JSON resource of the last resumable PUT, or the ``x-goog-hash`` of the XML
object request after a multipart completion).  What the uploader then deletes is deleted on
the real server, so the tests see the real outcome: the object gone, kept because another
upload replaced it (412), or kept because the delete failed, each named in the error.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from rel_liar import Reply, Request, serve_forwarding

from resumable_media import DataCorruption, transports
from resumable_media.parallel import ParallelUpload, PipelinedUpload

WRONG_CRC = "AAAAAA=="


def _wrong_resource_crc(request: Request, status: int, headers: dict[str, str], body: bytes):
    if request.method == "PUT" and status == 200 and body.startswith(b"{"):
        resource = json.loads(body)
        if "crc32c" in resource:
            resource["crc32c"] = WRONG_CRC
            body = json.dumps(resource).encode()
    return status, headers, body


def _wrong_hash_header(request: Request, status: int, headers: dict[str, str], body: bytes):
    if (
        request.method in ("GET", "HEAD")
        and "x-goog-hash" in headers
        and "uploadId" not in request.target
    ):
        headers["x-goog-hash"] = f"crc32c={WRONG_CRC}"
    return status, headers, body


def _refuse_object_delete(request: Request) -> Reply | None:
    if request.method == "DELETE" and "uploadId" not in request.target:
        return Reply(503, {"content-type": "application/json"}, b'{"error": {"code": 503}}')
    return None


def _source(tmp_path: pathlib.Path, size: int) -> tuple[pathlib.Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    return path, data


def _pipelined(endpoint: str, bucket: str, path: pathlib.Path) -> BaseException:
    url = f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
    with (
        transports.anonymous()() as session,
        path.open("rb") as stream,
        pytest.raises(DataCorruption) as caught,
    ):
        PipelinedUpload(url, 256 * 1024, checksum="crc32c").transmit(
            session, stream, {"name": "obj"}, "application/octet-stream"
        )
    return caught.value


def _parallel(endpoint: str, bucket: str, path: pathlib.Path) -> BaseException:
    upload = ParallelUpload(f"{endpoint}/{bucket}/obj", path, part_size=256 * 1024, processes=0)
    with pytest.raises(DataCorruption) as caught:
        upload.transmit(transports.anonymous(), "application/octet-stream")
    return caught.value


def test_pipelined_deletes_the_generation_that_failed(gcs_server, gcs_bucket, tmp_path):
    path, _ = _source(tmp_path, 600 * 1024)
    with serve_forwarding(gcs_server.endpoint, _wrong_resource_crc) as liar:
        error = _pipelined(liar.endpoint, gcs_bucket, path)
    assert f"the object gs://{gcs_bucket}/obj it created was deleted" in str(error)
    assert not gcs_server.has_object(gcs_bucket, "obj")
    deletes = [r for r in liar.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and "ifGenerationMatch=" in deletes[0].target


def test_pipelined_keeps_an_object_another_upload_replaced(gcs_server, gcs_bucket, tmp_path):
    path, _ = _source(tmp_path, 300 * 1024)
    newer = b"written by someone else after our upload finished"

    def replace_first(request: Request) -> Reply | None:
        if request.method == "DELETE":  # another upload lands first; the delete goes on
            gcs_server.put_object(gcs_bucket, "obj", newer)
        return None

    with serve_forwarding(gcs_server.endpoint, _wrong_resource_crc, replace_first) as liar:
        error = _pipelined(liar.endpoint, gcs_bucket, path)
    assert "was replaced since by another upload; it was kept" in str(error)
    assert gcs_server.object_bytes(gcs_bucket, "obj") == newer


def test_pipelined_says_the_object_stays_when_the_delete_fails(gcs_server, gcs_bucket, tmp_path):
    path, data = _source(tmp_path, 300 * 1024)
    with serve_forwarding(gcs_server.endpoint, _wrong_resource_crc, _refuse_object_delete) as liar:
        error = _pipelined(liar.endpoint, gcs_bucket, path)
    assert f"the object gs://{gcs_bucket}/obj (generation" in str(error)
    assert "exists and is wrong; delete it" in str(error)
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data  # the bytes the server holds


def test_parallel_upload_deletes_the_generation_that_failed(gcs_server, gcs_bucket, tmp_path):
    path, _ = _source(tmp_path, 700 * 1024)
    with serve_forwarding(gcs_server.endpoint, _wrong_hash_header) as liar:
        error = _parallel(liar.endpoint, gcs_bucket, path)
    assert "was deleted" in str(error)
    assert not gcs_server.has_object(gcs_bucket, "obj")
    deletes = [r for r in liar.requests if r.method == "DELETE" and "uploadId" not in r.target]
    assert len(deletes) == 1


def test_parallel_upload_says_the_object_stays_when_the_delete_fails(
    gcs_server, gcs_bucket, tmp_path
):
    path, data = _source(tmp_path, 700 * 1024)
    with serve_forwarding(gcs_server.endpoint, _wrong_hash_header, _refuse_object_delete) as liar:
        error = _parallel(liar.endpoint, gcs_bucket, path)
    assert "exists and is wrong; delete it" in str(error)
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data
