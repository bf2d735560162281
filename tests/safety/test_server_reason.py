"""A refused request says why, in the server's words, wherever it is raised."""

from __future__ import annotations

import os
import pathlib

import pytest
import requests

from resumable_media import InvalidResponse, transports
from resumable_media.common import server_reason
from resumable_media.parallel import ParallelUpload, PipelinedUpload
from resumable_media.requests import SimpleUpload
from resumable_media.testing import GCSServer
from support import resumable_url


def test_pipelined_upload_refusal_carries_the_servers_reason(
    gcs_server: GCSServer, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(1000))
    upload = PipelinedUpload(resumable_url(gcs_server, "no-such-bucket"), 256 * 1024, retry=None)
    with pytest.raises(InvalidResponse) as caught:
        upload.transmit(transports.anonymous(), str(source), {"name": "a.bin"}, "text/plain")
    exc = caught.value
    assert exc.args[:2] == ("Request failed with status code", 404)  # upstream's layout
    assert str(exc).endswith("the server said: The specified bucket does not exist.")


def test_seed_classes_keep_upstream_args_and_add_the_reason(gcs_server: GCSServer) -> None:
    url = f"{gcs_server.endpoint}/upload/storage/v1/b/no-such-bucket/o?uploadType=media&name=x"
    with pytest.raises(InvalidResponse) as caught:
        SimpleUpload(url).transmit(requests.Session(), b"data", "text/plain")
    exc = caught.value
    assert exc.args == ("Request failed with status code", 404, "Expected one of", 200)
    assert "the server said: The specified bucket does not exist." in str(exc)


def test_xml_multipart_refusal_carries_the_servers_message(
    gcs_server: GCSServer, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "b.bin"
    source.write_bytes(os.urandom(3000))
    upload = ParallelUpload(f"{gcs_server.endpoint}/no-such-bucket/b.bin", source, processes=0)
    with pytest.raises(InvalidResponse) as caught:
        upload.transmit(transports.anonymous(), "application/octet-stream")
    assert "the server said: " in str(caught.value)


JSON_ERROR = '{"error": {"code": 400, "message": "Invalid  argument."}}'
XML_ERROR = "<Error><Code>AccessDenied</Code><Message>No &amp; no</Message></Error>"


class _Answer:
    def __init__(self, status: int, text: str, read: bool = True) -> None:
        self.status_code = status
        self.text = text
        if not read:
            self._content = False


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            _Answer(400, '{"error": {"code": 400, "message": "Invalid  argument."}}'),
            "Invalid argument.",
        ),
        (
            _Answer(403, "<Error><Code>AccessDenied</Code><Message>No &amp; no</Message></Error>"),
            "No & no",
        ),
        (_Answer(200, '{"error": {"message": "not an error"}}'), None),
        (_Answer(500, "plain text"), None),
        (_Answer(400, '{"error": {"message": "streamed"}}', read=False), None),
        (_Answer(400, '{"error": {"message": "' + "x" * 400 + '"}}'), "x" * 299 + "…"),
        (None, None),
    ],
)
def test_server_reason_reads_only_what_was_read(answer: object, reason: str | None) -> None:
    assert server_reason(answer) == reason
