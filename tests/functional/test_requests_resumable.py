"""ResumableUpload against the loopback server: chunks, unknown sizes, checksums, recovery."""

from __future__ import annotations

import http
import io
import os
import re
import urllib.parse
from typing import Any

import pytest
from _requests_support import FAST, no_jitter, session_for  # noqa: F401

import resumable_media
from resumable_media import checksums, common
from resumable_media.requests import ResumableUpload
from support import wait_for_records

CHUNK = resumable_media.UPLOAD_CHUNK_SIZE


@pytest.fixture
def upload_url(gcs_server: Any, gcs_bucket: str) -> str:
    return f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable"


def test_bad_chunk_size_before_any_request(gcs_server: Any, upload_url: str) -> None:
    gcs_server.clear_requests()
    with pytest.raises(ValueError, match=r"^256\.0 KB must divide chunk size$"):
        ResumableUpload(upload_url, 1024)
    with pytest.raises(ValueError):
        ResumableUpload(upload_url, CHUNK + 1)
    assert gcs_server.requests == []


def test_chunks_then_final(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    data = os.urandom(2 * CHUNK + 1000)
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK, headers={"x-goog-meta-k": "v"})
    assert [upload.total_bytes] == [None]  # a list: mypy keeps the property unnarrowed
    with pytest.raises(ValueError, match=re.escape("This upload has not been initiated.")):
        upload.transmit_next_chunk(session)
    stream = io.BytesIO(data)
    gcs_server.clear_requests()
    response = upload.initiate(session, stream, {"name": "r"}, "text/plain")
    assert response.status_code == 200
    assert upload.resumable_url == response.headers["Location"]
    assert upload.total_bytes == len(data)
    initiate = gcs_server.wait_for_requests(1)[-1]
    assert initiate.headers["content-type"] == "application/json; charset=UTF-8"
    assert initiate.headers["x-upload-content-type"] == "text/plain"
    assert initiate.headers["x-upload-content-length"] == str(len(data))
    with pytest.raises(ValueError, match=re.escape("This upload has already been initiated.")):
        upload.initiate(session, stream, {"name": "r"}, "text/plain")
    for expected in (1, 2):
        response = upload.transmit_next_chunk(session)
        assert response.status_code == http.HTTPStatus.PERMANENT_REDIRECT
        assert upload.bytes_uploaded == expected * CHUNK and not upload.finished
    response = upload.transmit_next_chunk(session)
    assert response.status_code == 200 and upload.finished
    assert upload.bytes_uploaded == upload.total_bytes == len(data)
    assert response.json()["name"] == "r"
    assert gcs_server.object_bytes(gcs_bucket, "r") == data
    chunk_puts = [r for r in gcs_server.wait_for_requests(4) if r.method == "PUT"]
    assert [r.headers["content-range"] for r in chunk_puts] == [
        f"bytes 0-{CHUNK - 1}/{len(data)}",
        f"bytes {CHUNK}-{2 * CHUNK - 1}/{len(data)}",
        f"bytes {2 * CHUNK}-{len(data) - 1}/{len(data)}",
    ]
    assert all(r.headers["x-goog-meta-k"] == "v" for r in chunk_puts)
    with pytest.raises(ValueError, match=re.escape("Upload has finished.")):
        upload.transmit_next_chunk(session)


def test_stream_must_be_at_beginning(gcs_server: Any, upload_url: str) -> None:
    stream = io.BytesIO(b"abc")
    stream.read(1)
    with pytest.raises(ValueError, match=re.escape("Stream must be at beginning.")):
        ResumableUpload(upload_url, CHUNK).initiate(
            session_for(gcs_server), stream, {"name": "x"}, "text/plain"
        )


@pytest.mark.parametrize("size", [2 * CHUNK, 1000, 0])
def test_unknown_size(gcs_server: Any, gcs_bucket: str, upload_url: str, size: int) -> None:
    data = os.urandom(size)
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK)
    upload.initiate(session, io.BytesIO(data), {"name": "u"}, "text/plain", stream_final=False)
    gcs_server.clear_requests()
    upload.transmit(session)
    assert upload.finished and upload.total_bytes is None
    assert upload.bytes_uploaded == size
    assert gcs_server.object_bytes(gcs_bucket, "u") == data
    # Every PUT of the upload, the last included (a record is written just after its answer).
    logged = gcs_server.wait_for_requests(3 if size == 2 * CHUNK else 1)
    ranges = [r.headers["content-range"] for r in logged if r.method == "PUT"]
    if size == 2 * CHUNK:
        assert ranges == [
            f"bytes 0-{CHUNK - 1}/*",
            f"bytes {CHUNK}-{2 * CHUNK - 1}/*",
            f"bytes */{2 * CHUNK}",
        ]
    elif size == 1000:
        assert ranges == ["bytes 0-999/1000"]
    else:
        assert ranges == ["bytes */0"]


def test_interleaved_writes(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    session = session_for(gcs_server)
    stream = io.BytesIO()
    first, second = os.urandom(CHUNK), os.urandom(500)
    stream.write(first)
    stream.seek(0)
    upload = ResumableUpload(upload_url, CHUNK, checksum="crc32c")
    upload.initiate(session, stream, {"name": "i"}, "text/plain", stream_final=False)
    upload.transmit_next_chunk(session)
    position = stream.tell()
    stream.write(second)
    stream.seek(position)
    upload.transmit_next_chunk(session)
    assert upload.finished
    assert gcs_server.object_bytes(gcs_bucket, "i") == first + second


@pytest.mark.parametrize("checksum", ["md5", "crc32c", "auto"])
def test_final_chunk_carries_checksum(
    gcs_server: Any, gcs_bucket: str, upload_url: str, checksum: common.Checksum
) -> None:
    data = os.urandom(CHUNK + 7)
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK, checksum=checksum)
    upload.initiate(session, io.BytesIO(data), {"name": "c"}, "text/plain")
    gcs_server.clear_requests()
    upload.transmit(session)
    first, last = [r for r in gcs_server.wait_for_requests(3) if r.method == "PUT"]
    assert "x-goog-hash" not in first.headers
    name, _, value = last.headers["x-goog-hash"].partition("=")
    hasher = checksums.new_hasher(name)
    hasher.update(data)
    assert value == hasher.b64digest()


def test_wrong_final_checksum_rejected(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK, checksum="crc32c")
    upload.initiate(session, io.BytesIO(b"hello"), {"name": "w"}, "text/plain")
    # A hasher that already saw other bytes: the x-goog-hash sent is wrong.
    upload._checksum_object = checksums.new_hasher("crc32c")
    upload._checksum_object.update(b"tamper")
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.transmit_next_chunk(session)
    assert info.value.args[1] == 400
    assert upload.invalid and not upload.finished
    assert not gcs_server.has_object(gcs_bucket, "w")


def test_server_checksum_differs_is_data_corruption(
    gcs_server: Any, gcs_bucket: str, upload_url: str
) -> None:
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK, checksum="crc32c")
    upload.initiate(session, io.BytesIO(b"hello"), {"name": "w"}, "text/plain")
    upload._checksum_object = checksums.new_hasher("crc32c")
    upload._checksum_object.update(b"tamper")
    upload._bytes_checksummed = -6  # the hash is then incomplete: no x-goog-hash is sent
    with pytest.raises(resumable_media.DataCorruption) as info:
        upload.transmit_next_chunk(session)
    local = checksums.crc32c_to_b64(checksums.crc32c(b"tamperhello"))
    remote = checksums.crc32c_to_b64(checksums.crc32c(b"hello"))
    assert info.value.args == (
        f"The computed ``CRC32C`` checksum, ``{local}``, and the checksum reported by the "
        f"remote host, ``{remote}``, did not match.",
    )
    assert upload.finished  # the object exists; the caller decides whether to delete it


@pytest.mark.parametrize(
    "fault", ["return-503-after-256K", "return-reset-connection", "return-503"]
)
def test_auto_recovery(gcs_server: Any, gcs_bucket: str, upload_url: str, fault: str) -> None:
    data = os.urandom(2 * CHUNK + 12345)
    upload = ResumableUpload(upload_url, 2 * CHUNK, checksum="crc32c", auto_recover=True)
    upload._retry_strategy = FAST
    upload.initiate(session_for(gcs_server), io.BytesIO(data), {"name": "a"}, "text/plain")
    faulty = session_for(gcs_server, {"storage.objects.insert": [fault]})
    response = upload.transmit(faulty)
    assert response.status_code == 200 and upload.finished
    assert gcs_server.object_bytes(gcs_bucket, "a") == data
    assert response.json()["crc32c"] == checksums.crc32c_to_b64(checksums.crc32c(data))


def test_partial_persist_without_auto_recover_needs_recover(
    gcs_server: Any, gcs_bucket: str, upload_url: str
) -> None:
    data = os.urandom(2 * CHUNK + 10)
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, 2 * CHUNK, retry=None)
    stream = io.BytesIO(data)
    upload.initiate(session, stream, {"name": "p"}, "text/plain")
    faulty = session_for(gcs_server, {"storage.objects.insert": ["return-503-after-256K"]})
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.transmit_next_chunk(faulty)
    assert info.value.args[1] == 503
    assert not upload.invalid  # a retryable status leaves the upload usable (upstream #324)
    response = upload.recover(session, timeout=(5, 5))
    assert response.status_code == 308
    assert upload.bytes_uploaded == CHUNK == stream.tell()
    upload.transmit(session)
    assert gcs_server.object_bytes(gcs_bucket, "p") == data


def test_stream_out_of_step(gcs_server: Any, upload_url: str) -> None:
    session = session_for(gcs_server)
    stream = io.BytesIO(os.urandom(2 * CHUNK))
    upload = ResumableUpload(upload_url, CHUNK)
    upload.initiate(session, stream, {"name": "s"}, "text/plain")
    stream.seek(10)
    with pytest.raises(ValueError) as info:
        upload.transmit_next_chunk(session)
    assert str(info.value) == (
        "Bytes stream is in unexpected state. The local stream has had 10 bytes read from it "
        "while 0 bytes have already been updated (they should match)."
    )


def test_invalid_after_400_then_recover(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    session = session_for(gcs_server)
    stream = io.BytesIO(os.urandom(CHUNK + 5))
    upload = ResumableUpload(upload_url, CHUNK)
    upload.initiate(session, stream, {"name": "v"}, "text/plain")
    faulty = session_for(gcs_server, {"storage.objects.insert": ["return-400"]})
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.transmit_next_chunk(faulty)
    assert info.value.args == (
        "Request failed with status code",
        400,
        "Expected one of",
        http.HTTPStatus.OK,
        http.HTTPStatus.PERMANENT_REDIRECT,
    )
    assert upload.invalid
    with pytest.raises(ValueError, match=re.escape("Upload is in an invalid state.")):
        upload.transmit_next_chunk(session)
    gcs_server.clear_requests()
    upload.recover(session)
    queries = wait_for_records(
        gcs_server, lambda r: r.method == "PUT" and r.headers.get("content-range") == "bytes */*"
    )
    assert len(queries) == 1  # the recovery asked the server once what it has
    assert (upload.invalid, upload.bytes_uploaded) == (False, 0)
    upload.transmit(session)
    assert gcs_server.object_bytes(gcs_bucket, "v") == stream.getvalue()


def test_recover_after_completion_is_invalid_response(gcs_server: Any, upload_url: str) -> None:
    session = session_for(gcs_server)
    upload = ResumableUpload(upload_url, CHUNK)
    upload.initiate(session, io.BytesIO(b"done"), {"name": "d"}, "text/plain")
    upload.transmit(session)
    with pytest.raises(resumable_media.InvalidResponse) as info:
        upload.recover(session)
    assert info.value.args[1] == 200


def test_initiate_retried_on_503(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    faulty = session_for(gcs_server, {"storage.objects.insert": ["return-503", "return-503"]})
    upload = ResumableUpload(upload_url, CHUNK, retry=FAST)
    upload.initiate(faulty, io.BytesIO(b"x" * 10), {"name": "n"}, "text/plain")
    upload.transmit(session_for(gcs_server))
    assert gcs_server.object_bytes(gcs_bucket, "n") == b"x" * 10


def test_signed_url_initiate_headers(gcs_server: Any, gcs_bucket: str, upload_url: str) -> None:
    signed = upload_url + "&X-Goog-Signature=abc"
    upload = ResumableUpload(signed, CHUNK)
    spec = upload._prepare_initiate_request(0, {"name": "s"}, "text/plain", 5)
    assert spec.headers == {"content-type": "text/plain", "x-upload-content-length": "5"}
    assert urllib.parse.urlsplit(spec.url).query.endswith("X-Goog-Signature=abc")
