"""google-cloud-storage (a client nobody here wrote) against the loopback server."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import transfer_manager

from resumable_media.testing import GCSServer

MIB = 1 << 20


@pytest.fixture
def client(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[storage.Client]:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    client = storage.Client(project="test-project", credentials=AnonymousCredentials())
    yield client
    client.close()  # release its pooled connections (no ResourceWarning at GC time)


@pytest.fixture
def source(tmp_path: pathlib.Path) -> tuple[pathlib.Path, bytes]:
    data = os.urandom(3 * MIB + 12345)
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    return path, data


def test_multipart_upload_and_checked_download(
    client: storage.Client,
    gcs_server: GCSServer,
    gcs_bucket: str,
    source: tuple[pathlib.Path, bytes],
    tmp_path: pathlib.Path,
) -> None:
    path, data = source
    blob = client.bucket(gcs_bucket).blob("gcs/multipart.bin")
    blob.upload_from_filename(str(path), content_type="application/x-test", checksum="crc32c")
    assert gcs_server.object_bytes(gcs_bucket, "gcs/multipart.bin") == data
    assert blob.size == len(data) and blob.content_type == "application/x-test"
    out = tmp_path / "down.bin"
    for checksum in ("md5", "crc32c"):
        client.bucket(gcs_bucket).blob("gcs/multipart.bin").download_to_filename(
            str(out), checksum=checksum
        )
        assert out.read_bytes() == data


def test_resumable_upload_small_chunks(
    client: storage.Client,
    gcs_server: GCSServer,
    gcs_bucket: str,
    source: tuple[pathlib.Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, data = source
    # The client only switches to resumable uploads above 8 MiB; keep the test data small.
    monkeypatch.setattr(storage.blob, "_MAX_MULTIPART_SIZE", MIB)
    blob = client.bucket(gcs_bucket).blob("gcs/resumable.bin", chunk_size=256 * 1024)
    blob.metadata = {"origin": "interop"}
    gcs_server.clear_requests()
    blob.upload_from_filename(str(path), checksum="crc32c")
    assert gcs_server.object_bytes(gcs_bucket, "gcs/resumable.bin") == data
    puts = [r for r in gcs_server.requests if r.method == "PUT"]
    assert len(puts) == -(-len(data) // (256 * 1024))  # really chunked
    assert all(r.status == 308 for r in puts[:-1]) and puts[-1].status == 200
    reloaded = client.bucket(gcs_bucket).get_blob("gcs/resumable.bin")
    assert reloaded is not None and reloaded.metadata == {"origin": "interop"}
    assert reloaded.size == len(data)


def test_download_detects_corruption(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    from google.resumable_media.common import DataCorruption

    data = os.urandom(MIB)
    gcs_server.put_object(gcs_bucket, "gcs/corrupt.bin", data)
    blob = client.bucket(gcs_bucket).blob("gcs/corrupt.bin")
    blob._get_transport(client).headers["x-goog-emulator-instructions"] = "return-corrupted-data"
    try:
        with pytest.raises(DataCorruption):
            blob.download_to_filename(str(tmp_path / "bad.bin"), checksum="md5")
    finally:
        del blob._get_transport(client).headers["x-goog-emulator-instructions"]


def test_transfer_manager_download_chunks_concurrently(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(5 * MIB + 777)
    gcs_server.put_object(gcs_bucket, "gcs/tm-down.bin", data)
    blob = client.bucket(gcs_bucket).blob("gcs/tm-down.bin")
    out = tmp_path / "tm.bin"
    transfer_manager.download_chunks_concurrently(
        blob, str(out), chunk_size=MIB, max_workers=4, worker_type=transfer_manager.THREAD
    )
    assert out.read_bytes() == data
    ranged = [r for r in gcs_server.requests if r.headers.get("range")]
    assert len(ranged) >= 6


def test_transfer_manager_upload_chunks_concurrently(
    client: storage.Client,
    gcs_server: GCSServer,
    gcs_bucket: str,
    source: tuple[pathlib.Path, bytes],
) -> None:
    path, data = source
    blob = client.bucket(gcs_bucket).blob("gcs/tm-up.bin")
    transfer_manager.upload_chunks_concurrently(
        str(path), blob, chunk_size=MIB, max_workers=4, worker_type=transfer_manager.THREAD
    )
    assert gcs_server.object_bytes(gcs_bucket, "gcs/tm-up.bin") == data
    reloaded = client.bucket(gcs_bucket).get_blob("gcs/tm-up.bin")
    assert reloaded is not None and reloaded.size == len(data) and reloaded.md5_hash is None


def test_gzip_object_download(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    import gzip

    raw = os.urandom(200_000) * 3
    gcs_server.put_object(
        gcs_bucket,
        "gcs/z.txt",
        gzip.compress(raw),
        content_type="text/plain",
        content_encoding="gzip",
    )
    out = tmp_path / "z.txt"
    client.bucket(gcs_bucket).blob("gcs/z.txt").download_to_filename(str(out), checksum="crc32c")
    assert out.read_bytes() == raw
    client.bucket(gcs_bucket).blob("gcs/z.txt").download_to_filename(str(out), raw_download=True)
    assert gzip.decompress(out.read_bytes()) == raw
