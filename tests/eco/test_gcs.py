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


def _xml_requests(server: GCSServer, bucket: str, name: str) -> list[Any]:
    return [r for r in server.requests if r.path.startswith(f"/{bucket}/{name}")]


def test_large_upload_blob_goes_in_parallel_parts_and_keeps_metadata(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(5 * MIB + 321)
    path = tmp_path / "big.json"
    path.write_bytes(data)
    blob = client.bucket(gcs_bucket).blob("dir/big.json")
    blob.metadata = {"origin": "eco", "run": "7"}
    gcs_server.clear_requests()
    result = gcs.upload_blob(blob, path, part_size=MIB, parallel_threshold=MIB, processes=0)
    assert gcs_server.object_bytes(gcs_bucket, "dir/big.json") == data
    assert result.verified and result.bytes == len(data)
    parts = records(gcs_server, lambda r: r.method == "PUT" and "partNumber=" in r.path, 6)
    assert len(parts) == 6  # five whole MiB parts and the tail
    assert not [r for r in gcs_server.requests if "uploadType=resumable" in r.path]
    stored = client.bucket(gcs_bucket).get_blob("dir/big.json")
    assert stored is not None
    assert stored.content_type == "application/json"  # guessed from the filename
    assert stored.metadata == {"origin": "eco", "run": "7"}
    assert blob.generation == stored.generation == result.generation
    assert blob.crc32c == stored.crc32c == result.crc32c and blob.size == len(data)


def test_parallel_upload_blob_round_trips_csek_and_user_project(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(3 * MIB + 5)
    path = tmp_path / "secret.bin"
    path.write_bytes(data)
    bucket = client.bucket(gcs_bucket, user_project="billing-project")
    blob = bucket.blob("secret.bin", encryption_key=KEY)
    gcs_server.clear_requests()
    result = gcs.upload_blob(blob, path, part_size=MIB, parallel_threshold=MIB, processes=0)
    assert result.verified
    sent = records(gcs_server, lambda r: r.method == "HEAD" and "secret.bin" in r.path, 1)
    assert sent
    xml = _xml_requests(gcs_server, gcs_bucket, "secret.bin")
    assert {r.method for r in xml} == {"POST", "PUT", "HEAD"}  # initiate, parts, complete
    assert len([r for r in xml if "partNumber=" in r.path]) == 4
    digest = base64.b64encode(hashlib.sha256(KEY).digest()).decode()
    for record in xml:
        assert record.headers["x-goog-encryption-algorithm"] == "AES256"
        assert record.headers["x-goog-encryption-key"] == base64.b64encode(KEY).decode()
        assert record.headers["x-goog-encryption-key-sha256"] == digest
        assert record.headers["x-goog-user-project"] == "billing-project"
    # google-cloud-storage reads it back with the same key.
    again = client.bucket(gcs_bucket).blob("secret.bin", encryption_key=KEY)
    assert again.download_as_bytes(checksum="crc32c") == data


def test_upload_blob_falls_back_where_xml_multipart_cannot_carry_the_request(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(2 * MIB))
    bucket = client.bucket(gcs_bucket)

    def blocker(blob: Any, **options: Any) -> str | None:
        metadata = dict(blob._get_writable_metadata())
        metadata["contentType"] = blob.content_type or "application/octet-stream"
        return gcs.parallel_upload_blocker(blob, metadata, threshold=MIB, **options)

    plain = bucket.blob("f.bin")
    assert blocker(plain, filename=str(path)) is None
    assert blocker(plain, filename=str(path), checksum="md5") is not None
    assert blocker(plain, filename=None) == "the source is a stream"
    assert "precondition" in str(
        blocker(plain, filename=str(path), preconditions=[("ifGenerationMatch", "0")])
    )
    assert blocker(plain, filename=str(path), predefined_acl="publicRead") is not None
    kms = bucket.blob("f.bin", kms_key_name="projects/p/locations/l/keyRings/r/cryptoKeys/k")
    assert "KMS" in str(blocker(kms, filename=str(path)))
    cached = bucket.blob("f.bin")
    cached.cache_control = "no-cache"
    assert "cacheControl" in str(blocker(cached, filename=str(path)))
    accented = bucket.blob("f.bin")
    accented.metadata = {"city": "Zürich"}
    assert "ASCII" in str(blocker(accented, filename=str(path)))
    # A fallback still delivers everything: cache control and non-ASCII metadata.
    gcs_server.clear_requests()
    accented.cache_control = "no-cache"
    gcs.upload_blob(accented, path, parallel_threshold=MIB, processes=0)
    assert not [r for r in gcs_server.requests if "partNumber=" in r.path]
    stored = bucket.get_blob("f.bin")
    assert stored is not None
    assert stored.metadata == {"city": "Zürich"} and stored.cache_control == "no-cache"


def test_large_upload_blob_precondition_failure_leaves_the_old_object(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    old = gcs_server.put_object(gcs_bucket, "kept.bin", b"the old object")
    path = tmp_path / "kept.bin"
    path.write_bytes(os.urandom(3 * MIB))
    blob = client.bucket(gcs_bucket).blob("kept.bin")
    for generation in (0, 1):
        with pytest.raises(api_exceptions.PreconditionFailed, match=r"kept\.bin"):
            gcs.upload_blob(
                blob, path, parallel_threshold=MIB, processes=0, if_generation_match=generation
            )
    assert gcs_server.object_bytes(gcs_bucket, "kept.bin") == b"the old object"
    stored = client.bucket(gcs_bucket).get_blob("kept.bin")
    assert stored is not None and stored.generation == int(old["generation"])
    with pytest.raises(api_exceptions.PreconditionFailed, match=r"absent\.bin"):
        gcs.upload_blob(
            client.bucket(gcs_bucket).blob("absent.bin"),
            path,
            parallel_threshold=MIB,
            if_generation_match=5,
        )
    assert client.bucket(gcs_bucket).get_blob("absent.bin") is None
    # The matching generation replaces it (and that went through the JSON API).
    result = gcs.upload_blob(
        blob, path, parallel_threshold=MIB, if_generation_match=int(old["generation"])
    )
    assert result.verified and gcs_server.object_bytes(gcs_bucket, "kept.bin") == path.read_bytes()


def test_refused_parallel_part_creates_no_object(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "refused.bin"
    path.write_bytes(os.urandom(3 * MIB))
    test_id = gcs_server.create_retry_test({"storage.objects.insert": ["return-400-after-256K"]})
    client._extra_headers = {"x-retry-test-id": test_id}
    with pytest.raises(api_exceptions.BadRequest, match=r"refused\.bin"):
        gcs.upload_blob(
            client.bucket(gcs_bucket).blob("refused.bin"),
            path,
            part_size=MIB,
            parallel_threshold=MIB,
            processes=0,
        )
    client._extra_headers = {}
    assert client.bucket(gcs_bucket).get_blob("refused.bin") is None
    aborts = records(gcs_server, lambda r: r.method == "DELETE" and "uploadId=" in r.path, 1)
    assert len(aborts) == 1
