"""One transport shape: every accelerator class takes a factory or a session, and says what
to pass when it gets something else (real transfers against the loopback server)."""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

import pytest
import requests

from resumable_media import transports
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload
from support import resumable_url

CHUNK = 256 * 1024


def _media_url(server: Any, bucket: str, name: str) -> str:
    return f"{server.endpoint}/download/storage/v1/b/{bucket}/o/{name}?alt=media"


def test_parallel_download_uses_a_session_in_this_process(
    gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(5 * CHUNK + 3)
    gcs_server.put_object(gcs_bucket, "s", data)
    destination = tmp_path / "out"
    with requests.Session() as session:
        result = ParallelDownload(
            _media_url(gcs_server, gcs_bucket, "s"), destination, chunk_size=CHUNK, processes=0
        ).consume(session)
        # The caller's session is used, not closed: it still works afterwards.
        assert session.get(_media_url(gcs_server, gcs_bucket, "s"), timeout=10).content == data
    assert destination.read_bytes() == data and result.verified


def test_parallel_upload_takes_a_session_or_an_unpicklable_factory_in_process(
    gcs_server: Any, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(3 * CHUNK + 1)
    source = tmp_path / "src"
    source.write_bytes(data)
    url = f"{gcs_server.endpoint}/{gcs_bucket}/up"
    with requests.Session() as session:
        ParallelUpload(url, source, part_size=CHUNK, processes=0).transmit(
            session, "application/octet-stream"
        )
    assert gcs_server.object_bytes(gcs_bucket, "up") == data
    built: list[int] = []

    def factory() -> requests.Session:  # a closure: cannot be pickled
        built.append(1)
        return requests.Session()

    ParallelUpload(url, source, part_size=CHUNK, processes=0).transmit(
        factory, "application/octet-stream"
    )
    assert gcs_server.object_bytes(gcs_bucket, "up") == data and built


def test_pipelined_upload_takes_a_factory(gcs_server: Any, gcs_bucket: str) -> None:
    data = os.urandom(2 * CHUNK + 9)

    result = PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK).transmit(
        transports.anonymous(), io.BytesIO(data), {"name": "p"}, "application/octet-stream"
    )
    assert gcs_server.object_bytes(gcs_bucket, "p") == data and result.verified


def test_session_with_processes_says_what_to_pass(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"x" * 10)
    with requests.Session() as session:
        with pytest.raises(TypeError, match=r"processes=1 .*cannot share a Session.*anonymous"):
            ParallelDownload("http://127.0.0.1:9/o", tmp_path / "o", processes=1).consume(session)
        with pytest.raises(TypeError, match=r"processes=2 .*cannot share a Session"):
            ParallelUpload("http://127.0.0.1:9/b/o", source, processes=2).transmit(
                session, "text/plain"
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_unpicklable_factory_with_processes_is_a_clear_type_error(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"x" * 10)
    for run in (
        lambda: ParallelDownload("http://127.0.0.1:9/o", tmp_path / "o", processes=1).consume(
            lambda: requests.Session()
        ),
        lambda: ParallelUpload("http://127.0.0.1:9/b/o", source, processes=1).transmit(
            lambda: requests.Session(), "text/plain"
        ),
    ):
        with pytest.raises(TypeError, match=r"needs a picklable transport factory.*function"):
            run()


@pytest.mark.parametrize("wrong", [42, "http://example.invalid", None])
def test_wrong_object_names_its_type_and_the_expected_one(
    tmp_path: pathlib.Path, wrong: object
) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"x")
    name = type(wrong).__name__
    expected = rf"transport factory .*session.*got a {name}$|session .*transport factory.*{name}$"
    with pytest.raises(TypeError, match=expected):
        ParallelDownload("http://127.0.0.1:9/o", tmp_path / "o").consume(wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=expected):
        ParallelUpload("http://127.0.0.1:9/b/o", source).transmit(wrong, "text/plain")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=expected):
        PipelinedUpload("http://127.0.0.1:9/u", CHUNK).transmit(
            wrong,  # type: ignore[arg-type]
            source,
            {"name": "x"},
            "text/plain",
        )
