"""Which transports ChunkedDownload asks to stream: only an exact ``requests.Session`` or
google-auth ``AuthorizedSession`` (whose ``request`` behaves the same either way); any
other transport, a Session subclass included, gets upstream's exact call."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
import requests.adapters
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

from resumable_media.requests import ChunkedDownload, RawChunkedDownload
from resumable_media.testing import GCSServer

DATA = bytes(range(256)) * 1000


class _Adapter(requests.adapters.HTTPAdapter):
    """Records the ``stream`` each request was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[bool] = []

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        self.streams.append(stream)
        return super().send(request, stream=stream, **kwargs)


class _Subclass(requests.Session):
    pass


@pytest.mark.parametrize(
    ("make", "streams"),
    [
        (requests.Session, True),
        (lambda: AuthorizedSession(AnonymousCredentials()), True),
        (_Subclass, False),
    ],
    ids=["Session", "AuthorizedSession", "Session-subclass"],
)
@pytest.mark.parametrize("cls", [ChunkedDownload, RawChunkedDownload])
def test_who_is_asked_to_stream(
    gcs_server: GCSServer, gcs_bucket: str, make: Any, streams: bool, cls: Any
) -> None:
    gcs_server.put_object(gcs_bucket, "o", DATA)
    url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/o?alt=media"
    adapter = _Adapter()
    with make() as session:
        session.mount("http://", adapter)
        out = io.BytesIO()
        download = cls(url, 100_000, out)
        responses = []
        while not download.finished:
            responses.append(download.consume_next_chunk(session))
    assert out.getvalue() == DATA
    assert b"".join(r.content for r in responses) == DATA
    expected = True if cls is RawChunkedDownload else streams
    assert adapter.streams == [expected] * len(responses)
    assert all(type(r) is requests.Response for r in responses)
