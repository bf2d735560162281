"""PipelinedUpload continuing an interrupted session (``resumable_url=``) on the loopback server."""

from __future__ import annotations

import os

import pytest
import requests

from resumable_media import InvalidResponse, checksums, transports
from resumable_media.parallel import PipelinedUpload
from support import DiesAfter, logged_requests, resumable_url

CHUNK = 256 * 1024
SIZE = 8 * CHUNK + 1234


def _interrupted_session(gcs_server, gcs_bucket, source, limit: int) -> str:
    sessions: list[str] = []
    stream = DiesAfter(source, limit)
    with transports.anonymous()() as session, pytest.raises(OSError, match="simulated"):
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK, checksum="both").transmit(
            session, stream, {"name": "obj"}, "application/octet-stream", on_session=sessions.append
        )
    stream.close()
    assert len(sessions) == 1
    return sessions[0]


def _put_ranges(gcs_server) -> list[str]:
    return [
        r.headers.get("content-range", "")
        for r in logged_requests(gcs_server)
        if r.method == "PUT" and r.headers.get("content-range", "").startswith("bytes ")
    ]


@pytest.mark.parametrize("checksum", ["crc32c", "md5", "both"])
def test_resume_sends_only_what_the_server_lacks(gcs_server, gcs_bucket, tmp_path, checksum):
    data = os.urandom(SIZE)
    source = tmp_path / "src"
    source.write_bytes(data)
    url = _interrupted_session(gcs_server, gcs_bucket, source, 5 * CHUNK + 100)
    assert not gcs_server.has_object(gcs_bucket, "obj")
    status = requests.put(url, headers={"content-range": "bytes */*"}, timeout=10)
    assert status.status_code == 308
    persisted = int(status.headers["range"].rsplit("-", 1)[1]) + 1
    assert persisted >= 4 * CHUNK  # what the first run got acknowledged before it died
    gcs_server.clear_requests()
    calls: list[tuple[int, int | None]] = []
    with transports.anonymous()() as session:
        result = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket), CHUNK, checksum=checksum
        ).transmit(
            session,
            source,
            {"name": "obj"},
            "application/octet-stream",
            resumable_url=url,
            progress=lambda done, total: calls.append((done, total)),
        )
    assert gcs_server.object_bytes(gcs_bucket, "obj") == data
    assert result.verified and result.bytes == SIZE
    assert result.crc32c == checksums.crc32c_to_b64(checksums.crc32c(data))
    ranges = [r for r in _put_ranges(gcs_server) if not r.startswith("bytes */")]
    # Only the bytes after those the server persisted went out again.
    assert ranges and ranges[0].startswith(f"bytes {persisted}-"), ranges
    assert calls[0][0] >= persisted and calls[-1] == (SIZE, SIZE)
    assert not any(r.method == "POST" for r in logged_requests(gcs_server))  # no new session


def test_resume_of_a_finished_session_verifies_without_sending(gcs_server, gcs_bucket, tmp_path):
    data = os.urandom(3 * CHUNK)
    source = tmp_path / "src"
    source.write_bytes(data)
    sessions: list[str] = []
    with transports.anonymous()() as session:
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
            session, source, {"name": "obj"}, "application/octet-stream", on_session=sessions.append
        )
        logged_requests(gcs_server)  # the first upload's last record lands after its answer
        gcs_server.clear_requests()
        result = PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
            session, source, {"name": "obj"}, "application/octet-stream", resumable_url=sessions[0]
        )
    assert result.verified and result.bytes == len(data)
    assert _put_ranges(gcs_server) == ["bytes */*"]  # one status query, no data


def test_resume_with_another_file_fails_instead_of_storing_a_mix(gcs_server, gcs_bucket, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(SIZE))
    url = _interrupted_session(gcs_server, gcs_bucket, source, 5 * CHUNK)
    source.write_bytes(os.urandom(SIZE))  # the file changed between the runs
    with transports.anonymous()() as session, pytest.raises(InvalidResponse) as caught:
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
            session, source, {"name": "obj"}, "application/octet-stream", resumable_url=url
        )
    assert caught.value.response is not None and caught.value.response.status_code == 400
    assert not gcs_server.has_object(gcs_bucket, "obj")


def test_resume_of_a_cancelled_session_is_a_404(gcs_server, gcs_bucket, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(SIZE))
    url = _interrupted_session(gcs_server, gcs_bucket, source, 3 * CHUNK)
    assert requests.delete(url, timeout=10).status_code in (499, 204)
    with transports.anonymous()() as session, pytest.raises(InvalidResponse) as caught:
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK, retry=None).transmit(
            session, source, {"name": "obj"}, "application/octet-stream", resumable_url=url
        )
    assert caught.value.response.status_code in (404, 410)


def test_resume_needs_a_seekable_source(gcs_server, gcs_bucket):
    read_end, write_end = os.pipe()
    os.close(write_end)
    with open(read_end, "rb") as pipe, pytest.raises(ValueError, match="seekable"):
        PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
            requests.Session(), pipe, {"name": "obj"}, "x/y", resumable_url="http://unused"
        )
