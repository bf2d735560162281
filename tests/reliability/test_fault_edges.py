"""Fault edges the matrix's 2 MiB objects do not reach: faults on the *final* request.

``return-503-after-512K`` on a final chunk shorter than 512 KiB makes the server persist every
byte of the object and still answer 503 without finalizing it (found by the soak run at a 30 %
fault rate).  The status query then reports everything persisted: the uploader has no bytes
left to send but must still finalize (an empty ``bytes */N`` PUT), not give up.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from rel_kinds import Env
from rel_support import FAST_RETRY, TIMEOUT

from resumable_media.parallel import PipelinedUpload
from resumable_media.requests import ResumableUpload

CHUNK = 256 * 1024


@pytest.mark.parametrize("size", [100_000, CHUNK + 100_000])  # one chunk / a short last chunk
@pytest.mark.parametrize("kind", ["ResumableUpload", "PipelinedUpload"])
def test_final_chunk_fully_persisted_but_not_finalized(
    env: Env, session: requests.Session, kind: str, size: int
) -> None:
    data = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    faults = ["return-503-after-512K"] * (1 + size // CHUNK)  # every chunk, the last included
    headers = {"x-retry-test-id": env.server.create_retry_test({"storage.objects.insert": faults})}
    if kind == "ResumableUpload":
        upload: Any = ResumableUpload(
            env.upload_url("resumable"),
            CHUNK,
            checksum="crc32c",
            headers=headers,
            retry=FAST_RETRY,
            auto_recover=True,
        )
        upload.initiate(session, io.BytesIO(data), {"name": "edge"}, "a/b", timeout=TIMEOUT)
        response = upload.transmit(session, timeout=TIMEOUT)
        assert response.status_code == 200 and upload.finished
    else:
        result = PipelinedUpload(
            env.upload_url("resumable"), CHUNK, headers=headers, retry=FAST_RETRY, timeout=TIMEOUT
        ).transmit(session, io.BytesIO(data), {"name": "edge"}, "a/b")
        assert result.verified
    assert env.server.object_bytes(env.bucket, "edge") == data
    assert env.server.retry_test(headers["x-retry-test-id"])["completed"], "faults never fired"
