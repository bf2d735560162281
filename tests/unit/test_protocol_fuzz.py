"""Hypothesis: arbitrary responses only ever raise documented exceptions, and never loop."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumable_media import common
from resumable_media._protocol import checks
from resumable_media._protocol.chunked import ChunkedDownloadProtocol
from resumable_media._protocol.download import DownloadProtocol
from resumable_media._protocol.resumable import ResumableUploadProtocol

URL = "https://h.example/o?alt=media"
DOCUMENTED = (ValueError, ConnectionError, common.InvalidResponse, common.DataCorruption)

_b64 = st.text("ABCDEFabcdef0123456789+/", min_size=0, max_size=12).map(lambda s: s + "==")
_hash_part = st.tuples(st.sampled_from(["md5", "crc32c", "MD5", " md5", "sha1", ""]), _b64).map(
    lambda t: f"{t[0]}={t[1]}"
)
hash_headers = st.one_of(
    st.text(max_size=40), st.lists(_hash_part, max_size=4).map(lambda parts: ",".join(parts))
)

ints = st.integers(min_value=0, max_value=5000)
content_ranges = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.tuples(ints, ints, st.one_of(ints, st.just("*"))).map(
        lambda t: f"bytes {t[0]}-{t[1]}/{t[2]}"
    ),
    st.just("bytes */0"),
)
statuses = st.sampled_from([200, 206, 308, 400, 404, 416, 429, 500, 503])


@given(header=hash_headers, name=st.sampled_from(["md5", "crc32c"]))
def test_goog_hash_lookup_total(header: str, name: str) -> None:
    try:
        value = checks.expected_download_checksum(None, {"x-goog-hash": header}, name, URL)
    except common.InvalidResponse as exc:
        assert exc.args[0] == f"X-Goog-Hash header had multiple ``{name}`` values."
        assert len(exc.args[2]) > 1
        return
    if value is not None:
        assert f"={value}" in header


@st.composite
def chunk_responses(draw: Any) -> tuple[int, dict[str, str], bytes]:
    status = draw(statuses)
    headers: dict[str, str] = {}
    value = draw(content_ranges)
    if value is not None:
        headers["content-range"] = value
    if draw(st.booleans()):
        headers["content-length"] = str(draw(ints))
    if draw(st.booleans()):
        headers["x-goog-hash"] = draw(hash_headers)
    body = b"x" * draw(st.integers(min_value=0, max_value=300))
    return status, headers, body


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    responses=st.lists(chunk_responses(), min_size=1, max_size=12),
    chunk=st.integers(min_value=1, max_value=400),
    end=st.one_of(st.none(), ints),
)
def test_chunked_download_random_responses(
    responses: list[tuple[int, dict[str, str], bytes]], chunk: int, end: int | None
) -> None:
    download = ChunkedDownloadProtocol(URL, chunk, end=end, checksum="crc32c")
    previous = 0
    for status, headers, body in responses:
        try:
            download._prepare_request()
        except ValueError:
            assert download.finished or download.invalid
            return
        try:
            expected = download.process_response(None, status, headers)
            download.process_body(None, body[:expected] if expected else b"")
        except DOCUMENTED:
            pass
        assert download.bytes_downloaded >= previous
        previous = download.bytes_downloaded


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    responses=st.lists(chunk_responses(), min_size=1, max_size=6),
    checksum=st.sampled_from(["md5", "crc32c", None]),
)
def test_download_random_responses(
    responses: list[tuple[int, dict[str, str], bytes]], checksum: common.Checksum
) -> None:
    download = DownloadProtocol(URL, checksum=checksum)
    first = download._prepare_request()
    for status, headers, body in responses:
        download.prepare_attempt(first)
        try:
            download.process_response(None, status, headers)
            download.feed(body)
            download.flush()
            download.finish(None)
        except DOCUMENTED:
            continue


@st.composite
def upload_responses(draw: Any) -> tuple[int, dict[str, str], bytes]:
    status = draw(statuses)
    headers: dict[str, str] = {}
    choice = draw(st.integers(0, 3))
    if choice == 1:
        headers["range"] = f"bytes=0-{draw(st.integers(0, 3 * common.UPLOAD_CHUNK_SIZE))}"
    elif choice == 2:
        headers["range"] = draw(st.text(max_size=15))
    body = draw(st.sampled_from([b"", b"{}", b'{"md5Hash": "AAAAAAAAAAAAAAAAAAAAAA=="}', b"[1]"]))
    return status, headers, body


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    responses=st.lists(upload_responses(), min_size=1, max_size=10),
    total=st.one_of(st.none(), st.integers(0, 3 * common.UPLOAD_CHUNK_SIZE)),
    auto=st.booleans(),
)
def test_resumable_upload_random_responses(
    responses: list[tuple[int, dict[str, str], bytes]], total: int | None, auto: bool
) -> None:
    upload = ResumableUploadProtocol("https://h.example/u", common.UPLOAD_CHUNK_SIZE, "md5")
    upload._auto_recover = auto
    upload._prepare_initiate_request(0, {}, "a/b", total)
    upload._process_initiate_response(None, 200, {"location": "https://h.example/s"})
    size = total if total is not None else 2 * common.UPLOAD_CHUNK_SIZE + 7
    data = bytes(size)
    for status, headers, body in responses:
        position = upload.bytes_uploaded
        try:
            count = upload.next_read_size(position)
            upload._prepare_chunk_request(position, data[position : position + count])
            upload._process_chunk_response(None, status, headers, body)
        except DOCUMENTED:
            if upload.invalid:
                with contextlib.suppress(*DOCUMENTED):
                    upload._process_recover_response(None, 308, {})
        if upload.finished:
            return
        assert upload.bytes_uploaded >= 0
