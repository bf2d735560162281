"""A URL that does not serve the object's bytes fails loudly and writes nothing."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from resumable_media import InvalidResponse, transports
from resumable_media.parallel import ParallelDownload
from resumable_media.testing import GCSServer

CHUNK = 256 * 1024


def test_metadata_url_is_refused_with_a_hint_and_nothing_written(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "photo.jpg", os.urandom(3 * CHUNK))
    metadata_url = f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}/o/photo.jpg"
    dest = tmp_path / "photo.jpg"
    download = ParallelDownload(metadata_url, dest, chunk_size=CHUNK)
    with pytest.raises(InvalidResponse) as caught:
        download.consume(transports.anonymous())
    message = str(caught.value)
    assert metadata_url in message and "alt=media" in message
    assert list(tmp_path.iterdir()) == [], "nothing may be written, not even a temp file"


def test_an_object_whose_content_is_json_still_downloads(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    body = json.dumps({"rows": list(range(100_000))}).encode()
    gcs_server.put_object(gcs_bucket, "rows.json", body, content_type="application/json")
    url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/rows.json?alt=media"
    dest = tmp_path / "rows.json"
    result = ParallelDownload(url, dest, chunk_size=CHUNK).consume(transports.anonymous())
    assert dest.read_bytes() == body and result.verified
