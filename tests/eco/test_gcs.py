"""resumable_media.gcs: google-cloud-storage 3.x Blobs through the accelerator."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pathlib
import urllib.parse
from typing import Any

import pytest
from _eco_support import records
from google.api_core import exceptions as api_exceptions
from google.cloud import storage

from resumable_media import common, gcs, transports
from resumable_media.testing import GCSServer

MIB = 1 << 20
KEY = bytes(range(32))


def _query(path: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)


def test_download_blob_in_parallel_ranges(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(5 * MIB + 123)
    gcs_server.put_object(gcs_bucket, "big.bin", data)
    gcs_server.clear_requests()
    out = tmp_path / "big.bin"
    seen: list[tuple[int, int | None]] = []
    result = gcs.download_blob(
        client.bucket(gcs_bucket).blob("big.bin"),
        out,
        chunk_size=MIB,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert out.read_bytes() == data
    assert result.verified and result.bytes == len(data)
    ranged = records(gcs_server, lambda r: bool(r.headers.get("range")) and gcs_bucket in r.path, 6)
    assert len(ranged) == 6
    assert seen[-1] == (len(data), len(data))
    loaded = client.bucket(gcs_bucket).get_blob("big.bin")  # its media_link is used
    assert loaded is not None and loaded.media_link
    os.unlink(out)
    assert gcs.download_blob(loaded, out, chunk_size=MIB).generation == loaded.generation
    assert out.read_bytes() == data


def test_download_honours_generation_user_project_and_csek(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    old = os.urandom(3 * MIB)
    first = gcs_server.put_object(gcs_bucket, "gen.bin", old)
    bucket = client.bucket(gcs_bucket, user_project="billing-project")
    blob = bucket.blob("gen.bin", generation=int(first["generation"]), encryption_key=KEY)
    gcs_server.clear_requests()
    gcs.download_blob(blob, tmp_path / "old.bin", chunk_size=MIB)
    assert (tmp_path / "old.bin").read_bytes() == old
    media = records(gcs_server, lambda r: "alt=media" in r.path and gcs_bucket in r.path, 3)
    assert len(media) == 3
    digest = base64.b64encode(hashlib.sha256(KEY).digest()).decode()
    for record in media:
        query = _query(record.path)
        assert query["generation"] == [first["generation"]]
        assert query["userProject"] == ["billing-project"]
        assert record.headers["x-goog-encryption-algorithm"] == "AES256"
        assert record.headers["x-goog-encryption-key"] == base64.b64encode(KEY).decode()
        assert record.headers["x-goog-encryption-key-sha256"] == digest


def test_download_precondition_and_missing_object_raise_api_errors(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    resource = gcs_server.put_object(gcs_bucket, "pre.bin", b"x" * 1000)
    blob = client.bucket(gcs_bucket).blob("pre.bin")
    out = tmp_path / "pre.bin"
    with pytest.raises(api_exceptions.PreconditionFailed, match=r"pre\.bin"):
        gcs.download_blob(blob, out, if_generation_match=int(resource["generation"]) + 1)
    assert not out.exists()
    gcs.download_blob(blob, out, if_generation_match=int(resource["generation"]))
    assert out.read_bytes() == b"x" * 1000
    with pytest.raises(api_exceptions.NotFound, match=r"missing\.bin"):
        gcs.download_blob(client.bucket(gcs_bucket).blob("missing.bin"), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(TypeError, match="if_generation_matches"):
        gcs.download_blob(blob, out, if_generation_matches=1)


def test_corrupted_download_raises_and_leaves_no_file(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "bad.bin", os.urandom(3 * MIB))
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    client._extra_headers = {"x-retry-test-id": test_id}
    out = tmp_path / "bad.bin"
    with pytest.raises(common.DataCorruption):
        gcs.download_blob(client.bucket(gcs_bucket).blob("bad.bin"), out, chunk_size=MIB)
    assert sorted(os.listdir(tmp_path)) == []


def test_download_into_stream_and_buffer(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * MIB + 5)
    gcs_server.put_object(gcs_bucket, "s.bin", data)
    blob = client.bucket(gcs_bucket).blob("s.bin")
    stream = io.BytesIO()
    result = gcs.download_blob(blob, stream, chunk_size=MIB)
    assert stream.getvalue() == data and result.verified
    buffer = bytearray(len(data))
    assert gcs.download_blob(blob, buffer, chunk_size=MIB).verified
    assert buffer == data
    with pytest.raises(ValueError, match="holds 10 bytes"):
        gcs.download_blob(blob, bytearray(10), chunk_size=MIB)


def test_corrupted_stream_download_raises_before_the_end(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * MIB)
    gcs_server.put_object(gcs_bucket, "bads.bin", data)
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    client._extra_headers = {"x-retry-test-id": test_id}
    stream = io.BytesIO()
    with pytest.raises(common.DataCorruption, match=r"bads\.bin"):
        gcs.download_blob(client.bucket(gcs_bucket).blob("bads.bin"), stream, chunk_size=MIB)
    assert len(stream.getvalue()) < len(data)  # the last chunk never reached the stream


def test_upload_blob_carries_metadata_kms_csek_and_preconditions(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(2 * MIB + 17)
    path = tmp_path / "up.csv"
    path.write_bytes(data)
    bucket = client.bucket(gcs_bucket, user_project="billing-project")
    kms = "projects/p/locations/l/keyRings/r/cryptoKeys/k"
    blob = bucket.blob("up.csv", encryption_key=KEY)
    blob.metadata = {"origin": "eco"}
    blob.cache_control = "no-cache"
    blob._properties["kmsKeyName"] = kms  # as Blob(kms_key_name=) sets it
    gcs_server.clear_requests()
    result = gcs.upload_blob(blob, path, chunk_size=MIB, if_generation_match=0)
    assert result.verified and gcs_server.object_bytes(gcs_bucket, "up.csv") == data
    assert blob.generation == result.generation and blob.crc32c == result.crc32c
    start = next(r for r in gcs_server.requests if r.method == "POST")
    query = _query(start.path)
    assert query["uploadType"] == ["resumable"]
    assert query["userProject"] == ["billing-project"]
    assert query["kmsKeyName"] == [kms]
    assert query["ifGenerationMatch"] == ["0"]
    assert all(
        r.headers.get("x-goog-encryption-key") == base64.b64encode(KEY).decode()
        for r in gcs_server.requests
        if r.method in ("POST", "PUT")
    )
    stored = client.bucket(gcs_bucket).get_blob("up.csv")
    assert stored is not None
    assert stored.content_type == "text/csv"  # guessed from the filename, as the client does
    assert stored.metadata == {"origin": "eco"} and stored.cache_control == "no-cache"
    with pytest.raises(api_exceptions.PreconditionFailed, match=r"up\.csv"):
        gcs.upload_blob(bucket.blob("up.csv"), path, if_generation_match=0)
    assert gcs_server.object_bytes(gcs_bucket, "up.csv") == data


def test_upload_blob_from_a_pipe_like_stream(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * MIB + 1)

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, view: Any) -> int:
            return self._data.readinto(memoryview(view)[:100_000])

    blob = client.bucket(gcs_bucket).blob("pipe.bin")
    blob.content_type = "application/x-pipe"
    result = gcs.upload_blob(blob, Pipe(), chunk_size=MIB)
    assert result.verified and gcs_server.object_bytes(gcs_bucket, "pipe.bin") == data
    assert client.bucket(gcs_bucket).get_blob("pipe.bin").content_type == "application/x-pipe"  # type: ignore[union-attr]


def test_many(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    bucket = client.bucket(gcs_bucket)
    payloads = {f"many/{i}.bin": os.urandom(100_000 + i) for i in range(5)}
    sources = []
    for name, payload in payloads.items():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(payload)
        sources.append((bucket.blob(name), path))
    results = gcs.upload_many(sources, max_workers=3)
    assert all(r.verified for r in results)  # type: ignore[union-attr]
    for name, payload in payloads.items():
        assert gcs_server.object_bytes(gcs_bucket, name) == payload
    pairs: list[tuple[Any, Any]] = [
        (bucket.blob(n), tmp_path / f"d{i}") for i, n in enumerate(payloads)
    ]
    pairs.append((bucket.blob("many/missing"), tmp_path / "missing"))
    results = gcs.download_many(pairs, max_workers=3)
    assert isinstance(results[-1], api_exceptions.NotFound)
    for i, payload in enumerate(payloads.values()):
        assert (tmp_path / f"d{i}").read_bytes() == payload
    with pytest.raises(api_exceptions.NotFound):
        gcs.download_many(pairs, raise_exception=True)


def test_factories_follow_the_client() -> None:
    from google.auth.credentials import AnonymousCredentials

    anonymous = storage.Client(project="p", credentials=AnonymousCredentials())
    assert gcs.client_factory(anonymous) == transports.anonymous()
    anonymous.close()

    class Token:  # stands for service-account credentials (picklable, module-free)
        pass

    fake = type("C", (), {"_credentials": Token(), "_extra_headers": {"x-a": "1"}})()
    factory = gcs.client_factory(fake)
    assert isinstance(factory, gcs.CredentialsFactory)
    assert factory.headers == (("x-a", "1"),)


def test_client_credentials_authorize_every_request(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth.credentials

    class Token(google.auth.credentials.Credentials):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.token = "token-from-the-client"

        def refresh(self, request: Any) -> None:
            self.token = "token-from-the-client"

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    authed = storage.Client(
        project="p", credentials=Token(), client_options={"api_endpoint": gcs_server.endpoint}
    )
    factory = gcs.client_factory(authed)
    assert isinstance(factory, gcs.CredentialsFactory)
    data = os.urandom(2 * MIB + 1)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    blob = authed.bucket(gcs_bucket).blob("authed.bin")
    gcs_server.clear_requests()
    gcs.upload_blob(blob, path, chunk_size=MIB)
    gcs.download_blob(blob, tmp_path / "b.bin", chunk_size=MIB)
    assert (tmp_path / "b.bin").read_bytes() == data
    records = gcs_server.wait_for_requests(6)
    assert records and all(
        r.headers.get("authorization") == "Bearer token-from-the-client" for r in records
    )
    authed.close()
