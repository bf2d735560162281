"""The requests classes over google-auth's AuthorizedSession (anonymous credentials)."""

from __future__ import annotations

import io
import os
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

from resumable_media.requests import ChunkedDownload, Download, MultipartUpload, ResumableUpload


def test_authorized_session_round_trip(gcs_server: Any, gcs_bucket: str) -> None:
    transport = AuthorizedSession(AnonymousCredentials())
    data = os.urandom(600_000)
    base = f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o"
    upload = ResumableUpload(base + "?uploadType=resumable", 256 * 1024, checksum="auto")
    upload.initiate(transport, io.BytesIO(data), {"name": "auth"}, "application/octet-stream")
    response = upload.transmit(transport, timeout=(5, 30))
    assert response.status_code == 200 and upload.bytes_uploaded == len(data)
    media_url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/auth?alt=media"
    stream = io.BytesIO()
    Download(media_url, stream=stream, checksum="auto").consume(transport, timeout=30)
    assert stream.getvalue() == data
    chunked = io.BytesIO()
    download = ChunkedDownload(media_url, 256 * 1024, chunked)
    while not download.finished:
        download.consume_next_chunk(transport, timeout=(5, 30))
    assert chunked.getvalue() == data
    multipart = MultipartUpload(base + "?uploadType=multipart", checksum="crc32c")
    multipart.transmit(transport, b"small", {"name": "auth2"}, "text/plain")
    assert gcs_server.object_bytes(gcs_bucket, "auth2") == b"small"
