"""``Storage``'s object operations against the loopback server (the bulk engine uses them too)."""

from __future__ import annotations

import pytest

from resumable_media import common
from resumable_media._objects.client import PreconditionFailed, Storage, TransferError
from resumable_media._objects.urls import Endpoint, GsUrl
from resumable_media.testing import GCSServer


def _storage(server: GCSServer) -> Storage:
    return Storage(
        Endpoint(server.endpoint, authenticated=False),
        {},
        retry=common.RetryStrategy(max_retries=1),
    )


def test_stat_returns_the_resource_or_none(gcs_server: GCSServer, gcs_bucket: str) -> None:
    put = gcs_server.put_object(gcs_bucket, "a b#c", b"12345", metadata={"k": "v"})
    storage = _storage(gcs_server)
    meta = storage.stat(GsUrl(gcs_bucket, "a b#c"))
    assert meta is not None
    assert meta["size"] == "5"
    assert meta["generation"] == put["generation"]
    assert meta["metadata"] == {"k": "v"}
    assert storage.stat(GsUrl(gcs_bucket, "missing")) is None
    with pytest.raises(TransferError) as err:
        storage.metadata(GsUrl(gcs_bucket, "missing"))
    assert err.value.status == 404
    assert err.value.target == f"gs://{gcs_bucket}/missing"


def test_delete_honours_the_generation_precondition(gcs_server: GCSServer, gcs_bucket: str) -> None:
    put = gcs_server.put_object(gcs_bucket, "victim", b"data")
    storage = _storage(gcs_server)
    url = GsUrl(gcs_bucket, "victim")
    with pytest.raises(PreconditionFailed) as err:
        storage.delete(url, if_generation_match=int(put["generation"]) + 1)
    assert err.value.status == 412
    assert gcs_server.has_object(gcs_bucket, "victim")
    assert storage.delete(url, if_generation_match=int(put["generation"])) is True
    assert not gcs_server.has_object(gcs_bucket, "victim")
    assert storage.delete(url) is False


def test_list_pages_streams_pages_with_prefixes(gcs_server: GCSServer, gcs_bucket: str) -> None:
    for name in ("d/a", "d/b", "d/c", "d/sub/x", "d/sub/y", "dz"):
        gcs_server.put_object(gcs_bucket, name, b"x")
    storage = _storage(gcs_server)
    pages = list(storage.list_pages(gcs_bucket, "d/", delimiter="/", page_size=2))
    assert len(pages) >= 2
    names = [item["name"] for page in pages for item in page.items]
    prefixes = [p for page in pages for p in page.prefixes]
    assert names == ["d/a", "d/b", "d/c"]
    assert prefixes == ["d/sub/"]
    flat = [item["name"] for item in storage.iter_objects(gcs_bucket, "d", page_size=2)]
    assert flat == ["d/a", "d/b", "d/c", "d/sub/x", "d/sub/y", "dz"]
