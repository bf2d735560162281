"""Download / RawDownload / ChunkedDownload / RawChunkedDownload against the loopback server."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http
import io
import logging
import os
import re
import urllib.parse
from typing import Any

import pytest
import requests
from _requests_support import FAST, no_jitter, session_for  # noqa: F401

import resumable_media
from resumable_media import checksums, common
from resumable_media.requests import (
    ChunkedDownload,
    Download,
    RawChunkedDownload,
    RawDownload,
)


def _media_url(server: Any, bucket: str, name: str) -> str:
    quoted = urllib.parse.quote(name, safe="")
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{quoted}?alt=media"


@pytest.fixture
def blob(gcs_server: Any, gcs_bucket: str) -> tuple[str, bytes]:
    data = os.urandom(1024 * 1024 + 4321)
    gcs_server.put_object(gcs_bucket, "dir/blob one", data)
    return _media_url(gcs_server, gcs_bucket, "dir/blob one"), data


def _crc_b64(data: bytes) -> str:
    return checksums.crc32c_to_b64(checksums.crc32c(data))


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("checksum", ["md5", "crc32c", "auto", None])
def test_full_download_into_stream(
    gcs_server: Any, blob: tuple[str, bytes], checksum: common.Checksum
) -> None:
    url, data = blob
    stream = io.BytesIO()
    download = Download(url, stream=stream, checksum=checksum)
    response = download.consume(session_for(gcs_server))
    assert response.status_code == 200
    assert download.finished
    assert stream.getvalue() == data
    assert download.bytes_downloaded == len(data)
    with pytest.raises(RuntimeError):
        _ = response.content
    with pytest.raises(ValueError, match=re.escape("A download can only be used once.")):
        download.consume(session_for(gcs_server))


def test_download_without_stream_leaves_body_on_response(
    gcs_server: Any, blob: tuple[str, bytes]
) -> None:
    url, data = blob
    download = Download(url)
    response = download.consume(session_for(gcs_server))
    assert response.content == data
    assert response.headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize(
    ("start", "end", "piece"),
    [
        (1024, 16386, slice(1024, 16387)),
        (None, 8191, slice(0, 8192)),
        (-256, None, slice(-256, None)),
        (262144, None, slice(262144, None)),
    ],
)
@pytest.mark.parametrize("cls", [Download, RawDownload])
def test_partial_download(
    gcs_server: Any,
    blob: tuple[str, bytes],
    cls: type[Download],
    start: int | None,
    end: int | None,
    piece: slice,
) -> None:
    url, data = blob
    stream = io.BytesIO()
    gcs_server.clear_requests()
    response = cls(url, stream=stream, start=start, end=end).consume(session_for(gcs_server))
    assert response.status_code == 206
    assert stream.getvalue() == data[piece]
    sent_range = gcs_server.wait_for_requests(1)[-1].headers["range"]
    assert sent_range.startswith("bytes=")


def test_missing_object_is_invalid_response(gcs_server: Any, gcs_bucket: str) -> None:
    download = Download(_media_url(gcs_server, gcs_bucket, "nope"), stream=io.BytesIO())
    with pytest.raises(resumable_media.InvalidResponse) as info:
        download.consume(session_for(gcs_server))
    assert info.value.args == (
        "Request failed with status code",
        404,
        "Expected one of",
        http.HTTPStatus.OK,
        http.HTTPStatus.PARTIAL_CONTENT,
    )
    assert info.value.response.status_code == 404
    assert download.finished


def test_corrupted_body_raises_data_corruption(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, data = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-corrupted-data"]})
    download = Download(url, stream=io.BytesIO(), checksum="md5")
    with pytest.raises(resumable_media.DataCorruption) as info:
        download.consume(session)
    corrupted = bytes([data[0] ^ 0xFF]) + data[1:]
    expected = (
        f"Checksum mismatch while downloading:\n\n  {url}\n\n"
        f"The X-Goog-Hash header indicated an MD5 checksum of:\n\n  {_md5_b64(data)}\n\n"
        f"but the actual MD5 checksum of the downloaded contents was:\n\n  {_md5_b64(corrupted)}\n"
        f"\nThe X-Goog-Stored-Content-Length is {len(data)}. "
        "The X-Goog-Stored-Content-Encoding is identity.\n\n"
        f"The download request read {len(data)} bytes of data.\n"
        "If the download was incomplete, please check the network connection and restart "
        "the download.\n"
    )
    assert info.value.args == (expected,)
    assert info.value.response.status_code == 200


def test_broken_stream_resumes_pinned_and_verified(
    gcs_server: Any, blob: tuple[str, bytes]
) -> None:
    url, data = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-broken-stream-after-256K"]})
    stream = io.BytesIO()
    download = Download(url, stream=stream, checksum="crc32c")
    download._retry_strategy = FAST
    gcs_server.clear_requests()
    response = download.consume(session)
    assert stream.getvalue() == data
    assert response.status_code == 206
    first, second = gcs_server.wait_for_requests(2)[-2:]
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=262144-"
    generation = urllib.parse.parse_qs(urllib.parse.urlsplit(second.path).query)["generation"]
    assert int(generation[0]) == download._object_generation


def test_resumed_download_is_still_checksum_verified(
    gcs_server: Any, blob: tuple[str, bytes]
) -> None:
    url, _ = blob
    session = session_for(
        gcs_server,
        {"storage.objects.get": ["return-broken-stream-after-256K", "return-corrupted-data"]},
    )
    download = Download(url, stream=io.BytesIO(), checksum="crc32c", retry=FAST)
    with pytest.raises(resumable_media.DataCorruption, match="CRC32C checksum"):
        download.consume(session)


def test_retryable_status_is_retried(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, data = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-503", "return-429"]})
    stream = io.BytesIO()
    Download(url, stream=stream, retry=FAST).consume(session)
    assert stream.getvalue() == data


def test_retries_exhausted_reraises(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, _ = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-503", "return-503"]})
    download = Download(url, stream=io.BytesIO())
    download._retry_strategy = resumable_media.RetryStrategy(max_retries=1, initial_delay=0.01)
    with pytest.raises(resumable_media.InvalidResponse) as info:
        download.consume(session)
    assert info.value.args[1] == 503


def test_retry_none_is_single_attempt(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, _ = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-reset-connection"]})
    with pytest.raises(requests.exceptions.ConnectionError):
        Download(url, stream=io.BytesIO(), retry=None).consume(session)


def test_gzip_object(gcs_server: Any, gcs_bucket: str) -> None:
    plain = b"gzip me please " * 50000
    stored = gzip.compress(plain)
    gcs_server.put_object(gcs_bucket, "z", stored, content_encoding="gzip")
    url = _media_url(gcs_server, gcs_bucket, "z")
    session = session_for(gcs_server)
    decoded = io.BytesIO()
    Download(url, stream=decoded, checksum="crc32c").consume(session)
    assert decoded.getvalue() == plain
    raw = io.BytesIO()
    RawDownload(url, stream=raw, checksum="md5").consume(session)
    assert raw.getvalue() == stored
    chunked = io.BytesIO()
    download = RawChunkedDownload(url, 64 * 1024, chunked)
    while not download.finished:
        download.consume_next_chunk(session)
    assert chunked.getvalue() == stored
    # ChunkedDownload reads response.content, which the transport decoded (as upstream):
    # the decoded body disagrees with content-length.
    decoded_chunks = ChunkedDownload(url, 64 * 1024, io.BytesIO())
    with pytest.raises(resumable_media.InvalidResponse) as info:
        decoded_chunks.consume_next_chunk(session)
    assert info.value.args[0] == "Response is different size than content-length"
    assert decoded_chunks.invalid


def test_missing_checksum_logs_info(
    gcs_server: Any, blob: tuple[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    url, data = blob

    class NoHash(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            response = super().request(*args, **kwargs)
            del response.headers["x-goog-hash"]
            return response

    caplog.set_level(logging.INFO)
    stream = io.BytesIO()
    Download(url, stream=stream, checksum="md5").consume(NoHash())
    assert stream.getvalue() == data
    assert f"No MD5 checksum was returned from the service while downloading {url}" in caplog.text


@pytest.mark.parametrize("cls", [ChunkedDownload, RawChunkedDownload])
def test_chunked_download(gcs_server: Any, blob: tuple[str, bytes], cls: type) -> None:
    url, data = blob
    stream = io.BytesIO()
    chunk = 256 * 1024
    download = cls(url, chunk, stream)
    # (a list, so mypy does not narrow the property for the rest of the test)
    assert [download.bytes_downloaded, download.total_bytes] == [0, None]
    response = download.consume_next_chunk(session_for(gcs_server))
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-{chunk - 1}/{len(data)}"
    assert len(response.content) == chunk
    assert download.total_bytes == len(data) and not download.finished
    while not download.finished:
        response = download.consume_next_chunk(session_for(gcs_server))
    assert len(response.content) < chunk
    assert download.bytes_downloaded == download.total_bytes == len(data)
    assert stream.getvalue() == data
    with pytest.raises(ValueError, match=re.escape("Download has finished.")):
        download.consume_next_chunk(session_for(gcs_server))


def test_chunked_download_start_end(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, data = blob
    stream = io.BytesIO()
    download = ChunkedDownload(url, 100000, stream, start=5000, end=400000)
    count = 0
    while not download.finished:
        download.consume_next_chunk(session_for(gcs_server))
        count += 1
    assert count == 4
    assert stream.getvalue() == data[5000:400001]


def test_chunked_whole_object_corruption_detected(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, _ = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-corrupted-data"]})
    download = ChunkedDownload(url, 512 * 1024, io.BytesIO(), checksum="crc32c")
    with pytest.raises(resumable_media.DataCorruption, match="Checksum mismatch"):
        while not download.finished:
            download.consume_next_chunk(session)
    assert download.invalid


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize("stream_cls", [io.BytesIO, _Unseekable])
def test_chunked_broken_chunk_retried_without_duplicates(
    gcs_server: Any, blob: tuple[str, bytes], stream_cls: type[io.BytesIO]
) -> None:
    url, data = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-broken-stream-after-256K"]})
    stream = stream_cls()
    download = ChunkedDownload(url, 1024 * 1024, stream, retry=FAST)
    while not download.finished:
        download.consume_next_chunk(session)
    assert stream.getvalue() == data


def test_chunked_empty_object(gcs_server: Any, gcs_bucket: str) -> None:
    gcs_server.put_object(gcs_bucket, "empty", b"")
    stream = io.BytesIO()
    download = ChunkedDownload(_media_url(gcs_server, gcs_bucket, "empty"), 1024, stream)
    response = download.consume_next_chunk(session_for(gcs_server))
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"
    assert download.finished and stream.getvalue() == b""


def test_chunked_404_makes_invalid(gcs_server: Any, gcs_bucket: str) -> None:
    download = ChunkedDownload(_media_url(gcs_server, gcs_bucket, "nope"), 1024, io.BytesIO())
    with pytest.raises(resumable_media.InvalidResponse) as info:
        download.consume_next_chunk(session_for(gcs_server))
    assert info.value.args[:2] == ("Request failed with status code", 404)
    assert download.invalid
    with pytest.raises(ValueError, match=re.escape("Download is invalid and cannot be re-used.")):
        download.consume_next_chunk(session_for(gcs_server))


def test_chunked_retryable_exhausted_stays_valid(gcs_server: Any, blob: tuple[str, bytes]) -> None:
    url, _ = blob
    session = session_for(gcs_server, {"storage.objects.get": ["return-503"]})
    download = ChunkedDownload(url, 1024, io.BytesIO(), retry=None)
    with pytest.raises(resumable_media.InvalidResponse):
        download.consume_next_chunk(session)
    assert not download.invalid


def test_chunked_negative_start() -> None:
    with pytest.raises(ValueError, match="starting value cannot be negative"):
        ChunkedDownload("http://127.0.0.1:1/x", 1024, io.BytesIO(), start=-1)


def test_stalled_read_times_out_and_resumes(gcs_server: Any, gcs_bucket: str) -> None:
    # Reads are 1 MiB: a stall after 1.5 MiB leaves one whole piece written.
    data = os.urandom(3 * 1024 * 1024)
    gcs_server.put_object(gcs_bucket, "stall", data)
    url = _media_url(gcs_server, gcs_bucket, "stall")
    session = session_for(gcs_server, {"storage.objects.get": ["stall-for-2s-after-1536K"]})
    stream = io.BytesIO()
    download = Download(url, stream=stream, checksum="crc32c", retry=FAST)
    gcs_server.clear_requests()
    download.consume(session, timeout=(5, 0.3))
    assert stream.getvalue() == data
    first, resumed = gcs_server.wait_for_requests(2)[:2]
    assert "range" not in first.headers
    assert resumed.headers["range"] == "bytes=1048576-"


def test_transcoded_gzip_download_restarts_from_zero(gcs_server: Any, gcs_bucket: str) -> None:
    plain = os.urandom(200_000) * 3
    gcs_server.put_object(gcs_bucket, "t", gzip.compress(plain), content_encoding="gzip")
    url = _media_url(gcs_server, gcs_bucket, "t")
    session = session_for(gcs_server, {"storage.objects.get": ["return-broken-stream-after-256K"]})
    stream = io.BytesIO()
    download = Download(url, stream=stream, headers={"accept-encoding": "identity"}, retry=FAST)
    gcs_server.clear_requests()
    response = download.consume(session)
    assert "content-encoding" not in response.headers
    assert stream.getvalue() == plain
    gets = [r for r in gcs_server.wait_for_requests(2) if r.method == "GET"]
    assert len(gets) == 2 and "range" not in gets[1].headers  # Range is ignored when transcoding


class _ReadOnlyRaw:
    """A raw stream with ``read`` but no ``readinto`` (some transports' responses)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def read(self, amount: int, decode_content: bool = False) -> bytes:
        data: bytes = self._raw.read(amount, decode_content=decode_content)
        return data


class _ReadOnlyTransport(requests.Session):
    def __init__(self, keep_raw: bool) -> None:
        super().__init__()
        self._keep_raw = keep_raw

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        if self._keep_raw:
            response.raw = _ReadOnlyRaw(response.raw)
            return response
        return _NoRawResponse(response)


class _NoRawResponse:
    """A response-like object with only status, headers, iter_content, content, close."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.iter_content = response.iter_content
        self.close = response.close
        self._response = response

    @property
    def content(self) -> bytes:
        return self._response.content


@pytest.mark.parametrize("keep_raw", [True, False])
def test_transports_without_readinto(blob: tuple[str, bytes], keep_raw: bool) -> None:
    url, data = blob
    stream = io.BytesIO()
    Download(url, stream=stream, checksum="crc32c").consume(_ReadOnlyTransport(keep_raw))
    assert stream.getvalue() == data
    chunked = io.BytesIO()
    download = ChunkedDownload(url, 300_000, chunked)
    while not download.finished:
        download.consume_next_chunk(_ReadOnlyTransport(keep_raw))
    assert chunked.getvalue() == data
