"""Unit tests of the download protocol objects, fed plain statuses, headers and bytes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http
import re
from typing import Any

import pytest

from resumable_media import checksums, common
from resumable_media._protocol.chunked import ChunkedDownloadProtocol
from resumable_media._protocol.download import DownloadProtocol, add_generation

URL = "https://storage.example/download/storage/v1/b/bkt/o/obj?alt=media"
DATA = bytes(range(256)) * 40


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _crc(data: bytes) -> str:
    return checksums.crc32c_to_b64(checksums.crc32c(data))


def _full_headers(data: bytes = DATA, /, **extra: str) -> dict[str, str]:
    headers = {
        "content-length": str(len(data)),
        "x-goog-hash": f"crc32c={_crc(data)},md5={_md5(data)}",
        "x-goog-generation": "1700",
        "x-goog-stored-content-length": str(len(data)),
        "x-goog-stored-content-encoding": "identity",
    }
    headers.update(extra)
    return headers


def test_first_request_and_single_use() -> None:
    headers: dict[str, Any] = {"x-extra": "1"}
    download = DownloadProtocol(URL, start=10, end=20, headers=headers)
    spec = download._prepare_request()
    assert (spec.method, spec.url, spec.body) == ("GET", URL, None)
    assert spec.headers is headers and headers["range"] == "bytes=10-20"
    with pytest.raises(common.InvalidResponse):
        download.process_response(object(), 404, {})
    with pytest.raises(ValueError, match=re.escape("A download can only be used once.")):
        download._prepare_request()


def test_status_error_layout_and_finished() -> None:
    download = DownloadProtocol(URL)
    download._prepare_request()
    with pytest.raises(common.InvalidResponse) as info:
        download.process_response("resp", 503, {})
    assert info.value.args == (
        "Request failed with status code",
        503,
        "Expected one of",
        http.HTTPStatus.OK,
        http.HTTPStatus.PARTIAL_CONTENT,
    )
    assert info.value.response == "resp"
    assert download.finished


@pytest.mark.parametrize("checksum", ["md5", "crc32c", "auto", None])
def test_full_body_verified(checksum: common.Checksum) -> None:
    download = DownloadProtocol(URL, checksum=checksum)
    download._prepare_request()
    download.process_response(None, 200, _full_headers())
    out = b"".join(bytes(piece) for piece in download.feed(DATA[:1000]))
    out += b"".join(bytes(piece) for piece in download.feed(DATA[1000:]))
    download.finish(None)
    assert out == DATA and download.bytes_downloaded == len(DATA)


def test_bad_checksum_name() -> None:
    with pytest.raises(ValueError, match=re.escape("checksum must be ``'md5'``, ``'crc32c'``")):
        DownloadProtocol(URL, checksum="sha1")  # type: ignore[arg-type]


def test_mismatch_message_exact() -> None:
    download = DownloadProtocol(URL, checksum="crc32c")
    download._prepare_request()
    download.process_response("r", 200, _full_headers())
    bad = b"X" + DATA[1:]
    download.feed(bad)
    with pytest.raises(common.DataCorruption) as info:
        download.finish("r")
    assert info.value.args == (
        f"Checksum mismatch while downloading:\n\n  {URL}\n\n"
        f"The X-Goog-Hash header indicated an CRC32C checksum of:\n\n  {_crc(DATA)}\n\n"
        f"but the actual CRC32C checksum of the downloaded contents was:\n\n  {_crc(bad)}\n"
        f"\nThe X-Goog-Stored-Content-Length is {len(DATA)}. "
        "The X-Goog-Stored-Content-Encoding is identity.\n\n"
        f"The download request read {len(DATA)} bytes of data.\n"
        "If the download was incomplete, please check the network connection and restart "
        "the download.\n",
    )


def test_short_body_is_connection_error_then_resume_verifies() -> None:
    headers: dict[str, Any] = {}
    download = DownloadProtocol(URL, headers=headers, checksum="md5")
    first = download._prepare_request()
    assert download.prepare_attempt(first) is first
    download.process_response(None, 200, _full_headers())
    download.feed(DATA[:3000])
    with pytest.raises(ConnectionError, match="read 3000 bytes"):
        download.finish(None)
    resumed = download.prepare_attempt(first)
    assert headers["range"] == "bytes=3000-"
    assert "generation=1700" in resumed.url and "alt=media" in resumed.url
    tail = DATA[3000:]
    download.process_response(
        None,
        206,
        _full_headers(
            **{"content-range": f"bytes 3000-{len(DATA) - 1}/{len(DATA)}"},
            **{"content-length": str(len(tail))},
        ),
    )
    download.feed(tail)
    download.finish(None)  # verified over both attempts


def test_resumed_corruption_detected() -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = download._prepare_request()
    download.process_response(None, 200, _full_headers())
    download.feed(DATA[:100])
    download.prepare_attempt(first)
    download.process_response(
        None, 206, _full_headers(**{"content-range": f"bytes 100-{len(DATA) - 1}/{len(DATA)}"})
    )
    download.feed(b"\0" + DATA[101:])
    with pytest.raises(common.DataCorruption):
        download.finish(None)


def test_ranged_download_not_verified_but_full_range_is() -> None:
    partial = DownloadProtocol(URL, start=5, end=9)
    partial._prepare_request()
    partial.process_response(None, 206, _full_headers(**{"content-range": "bytes 5-9/10240"}))
    partial.feed(b"wrong")
    partial.finish(None)  # not the whole object: nothing to compare
    whole = DownloadProtocol(URL, start=0)
    whole._prepare_request()
    whole.process_response(
        None, 206, _full_headers(**{"content-range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}"})
    )
    whole.feed(b"\1" + DATA[1:])
    with pytest.raises(common.DataCorruption):
        whole.finish(None)


def test_suffix_range_resumes_from_absolute_offset() -> None:
    headers: dict[str, Any] = {}
    download = DownloadProtocol(URL, start=-500, headers=headers)
    first = download._prepare_request()
    assert headers["range"] == "bytes=-500"
    download.process_response(None, 206, {"content-range": "bytes 9740-10239/10240"})
    download.feed(b"x" * 200)
    download.prepare_attempt(first)
    assert headers["range"] == "bytes=9940-"


def test_generation_from_url_not_duplicated() -> None:
    url = URL + "&generation=55"
    download = DownloadProtocol(url)
    first = download._prepare_request()
    download.process_response(None, 200, {"x-goog-generation": "99"})
    download.feed(b"abc")
    assert download.prepare_attempt(first).url == url
    assert download._object_generation == 55
    assert add_generation("http://h/p?a=1", 7) == "http://h/p?a=1&generation=7"


def test_duplicate_hash_values() -> None:
    download = DownloadProtocol(URL, checksum="md5")
    download._prepare_request()
    header = "md5=AAAAAAAAAAAAAAAAAAAAAA==,md5=BBBBBBBBBBBBBBBBBBBBBB=="
    with pytest.raises(common.InvalidResponse) as info:
        download.process_response(None, 200, {"x-goog-hash": header})
    assert info.value.args == (
        "X-Goog-Hash header had multiple ``md5`` values.",
        header,
        ["AAAAAAAAAAAAAAAAAAAAAA==", "BBBBBBBBBBBBBBBBBBBBBB=="],
    )


def test_gzip_decoded_while_compressed_bytes_hashed() -> None:
    plain = b"hello gzip " * 5000
    stored = gzip.compress(plain)
    headers = _full_headers(stored, **{"content-encoding": "gzip"})
    headers["x-goog-stored-content-encoding"] = "gzip"
    download = DownloadProtocol(URL, checksum="crc32c")
    download._prepare_request()
    assert not download.process_response(None, 200, headers)
    out = b""
    for i in range(0, len(stored), 333):
        out += b"".join(bytes(p) for p in download.feed(stored[i : i + 333]))
    out += b"".join(bytes(p) for p in download.flush())
    download.finish(None)
    assert out == plain
    raw = DownloadProtocol(URL, checksum="crc32c", decode=False)
    raw._prepare_request()
    raw.process_response(None, 200, headers)
    assert b"".join(bytes(p) for p in raw.feed(stored)) == stored
    raw.finish(None)


def test_transcoded_response_restarts_and_skips_check() -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = download._prepare_request()
    download.process_response(None, 200, _full_headers())
    download.feed(DATA[:10])
    download.prepare_attempt(first)
    transcoded = {"x-goog-stored-content-encoding": "gzip", "x-goog-hash": "md5=" + _md5(b"z")}
    assert download.process_response(None, 200, transcoded) is True
    assert download.bytes_downloaded == 0
    download.feed(b"plain text")
    download.finish(None)  # a transcoded body cannot be compared with the stored hash


def _chunk_headers(start: int, end: int, total: int, **extra: str) -> dict[str, str]:
    headers = {
        "content-range": f"bytes {start}-{end}/{total}",
        "content-length": str(end - start + 1),
    }
    headers.update(extra)
    return headers


def test_chunked_ranges_and_finish() -> None:
    headers: dict[str, Any] = {}
    download = ChunkedDownloadProtocol(URL, 4096, headers=headers)
    total = len(DATA)
    offset = 0
    while not download.finished:
        spec = download._prepare_request()
        assert spec.headers is headers
        start, _, end = headers["range"].removeprefix("bytes=").partition("-")
        assert int(start) == offset
        end_i = min(int(end), total - 1)
        length = download.process_response(None, 206, _chunk_headers(offset, end_i, total))
        download.process_body(None, DATA[offset : offset + length])
        offset += length
    assert download.bytes_downloaded == download.total_bytes == total
    with pytest.raises(ValueError, match=re.escape("Download has finished.")):
        download._prepare_request()


def test_chunked_empty_object_and_errors() -> None:
    empty = ChunkedDownloadProtocol(URL, 10)
    empty._prepare_request()
    assert empty.process_response(None, 416, {"content-range": "bytes */0"}) == 0
    assert empty.finished
    bad = ChunkedDownloadProtocol(URL, 10)
    bad._prepare_request()
    with pytest.raises(common.InvalidResponse) as info:
        bad.process_response(None, 206, {"content-range": "bytes 0-9", "content-length": "10"})
    assert info.value.args == (
        "Unexpected content-range header",
        "bytes 0-9",
        'Expected to be of the form "bytes {start}-{end}/{total}"',
    )
    assert bad.invalid
    with pytest.raises(ValueError, match=re.escape("Download is invalid and cannot be re-used.")):
        bad._prepare_request()
    short = ChunkedDownloadProtocol(URL, 10)
    short._prepare_request()
    short.process_response(None, 206, _chunk_headers(0, 9, 100))
    with pytest.raises(common.InvalidResponse) as info:
        short.process_body(None, b"12345")
    assert info.value.args == (
        "Response is different size than content-length",
        "Expected",
        10,
        "Received",
        5,
    )
    assert short.invalid


def test_chunked_retryable_status_keeps_valid_and_416_raises() -> None:
    download = ChunkedDownloadProtocol(URL, 10)
    download._prepare_request()
    with pytest.raises(common.InvalidResponse):
        download.process_response(None, 503, {})
    assert not download.invalid
    with pytest.raises(common.InvalidResponse):
        download.process_response(None, 416, {"content-range": "bytes */50"})
    assert download.invalid


def test_chunked_whole_run_checksum() -> None:
    download = ChunkedDownloadProtocol(URL, 6000, checksum="md5")
    header = {"x-goog-hash": f"md5={_md5(DATA)}"}
    download._prepare_request()
    download.process_response(None, 206, _chunk_headers(0, 5999, len(DATA), **header))
    download.process_body(None, DATA[:6000])
    download._prepare_request()
    download.process_response(None, 206, _chunk_headers(6000, len(DATA) - 1, len(DATA), **header))
    with pytest.raises(common.DataCorruption):
        download.process_body(None, b"\0" * (len(DATA) - 6000))
    assert download.invalid


def test_chunked_negative_start() -> None:
    with pytest.raises(ValueError, match="starting value cannot be negative"):
        ChunkedDownloadProtocol(URL, 10, start=-1)


def test_full_answer_to_resume_request_starts_over() -> None:
    download = DownloadProtocol(URL, checksum="crc32c")
    first = download._prepare_request()
    download.process_response(None, 200, _full_headers())
    download.feed(DATA[:500])
    download.prepare_attempt(first)
    # A server that ignores Range answers the resume with the whole object.
    assert download.process_response(None, 200, _full_headers()) is True
    assert download.bytes_downloaded == 0
    download.feed(DATA)
    download.finish(None)
    assert download.bytes_downloaded == len(DATA)


def test_chunked_states_follow_the_transition_table() -> None:
    from resumable_media._protocol.chunked import TRANSITIONS, ChunkedState
    from resumable_media._protocol.ranged import ProtocolStateError

    download = ChunkedDownloadProtocol(URL, 10)

    def state() -> ChunkedState:
        return download.state

    assert state() is ChunkedState.READY
    with pytest.raises(ProtocolStateError, match=re.escape("process_body() is not allowed")):
        download.process_body(None, b"")
    download._prepare_request()
    assert state() is ChunkedState.SENT
    download.process_response(None, 206, _chunk_headers(0, 9, 20))
    assert state() is ChunkedState.RECEIVING
    download.process_body(None, DATA[:10])
    assert state() is ChunkedState.READY
    download._prepare_request()
    with pytest.raises(common.InvalidResponse):
        download.process_response(None, 404, {})
    assert state() is ChunkedState.FAILED and download.invalid
    with pytest.raises(ProtocolStateError, match="in state FAILED"):
        download.process_response(None, 206, _chunk_headers(10, 19, 20))
    # Every state a call may leave is a state.
    assert all(isinstance(s, ChunkedState) for after in TRANSITIONS.values() for s in after)
