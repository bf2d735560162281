"""google-cloud-storage (a client nobody here wrote) against the loopback server."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
from google.api_core.exceptions import Conflict, NotFound
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import transfer_manager

from resumable_media.testing import GCSServer
from support import wait_for_records

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
    chunks = -(-len(data) // (256 * 1024))
    puts = wait_for_records(gcs_server, lambda r: r.method == "PUT", count=chunks)
    assert len(puts) == chunks  # really chunked
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


# -- the JSON API a migration touches ------------------------------------------------------
def test_bucket_delete_really_deletes(client: storage.Client) -> None:
    bucket = client.create_bucket("gcs-doomed-bucket")
    bucket.blob("x").upload_from_string(b"1")
    with pytest.raises(Conflict):
        bucket.delete()
    assert client.lookup_bucket("gcs-doomed-bucket") is not None
    bucket.delete(force=True)
    assert client.lookup_bucket("gcs-doomed-bucket") is None
    with pytest.raises(NotFound):
        client.get_bucket("gcs-doomed-bucket")


def test_bucket_labels_and_listing(client: storage.Client) -> None:
    bucket = client.create_bucket("gcs-labelled-bucket")
    bucket.labels = {"team": "backup"}
    bucket.versioning_enabled = True
    bucket.patch()
    again = client.get_bucket("gcs-labelled-bucket")
    assert again.labels == {"team": "backup"} and again.versioning_enabled
    assert "gcs-labelled-bucket" in [b.name for b in client.list_buckets(prefix="gcs-labelled")]
    again.delete()


def test_blob_patch_copy_blob_and_multi_call_rewrite(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    bucket = client.bucket(gcs_bucket)
    data = os.urandom(40 * MIB)
    blob = bucket.blob("mig/src.bin")
    blob.upload_from_string(data, content_type="application/x-src")
    blob.metadata = {"owner": "nightly"}
    blob.patch()
    fetched = bucket.get_blob("mig/src.bin")
    assert fetched is not None
    assert fetched.metadata == {"owner": "nightly"} and fetched.metageneration == 2
    assert fetched.generation == blob.generation

    copied = bucket.copy_blob(fetched, bucket, "mig/copy.bin")
    assert copied.crc32c == fetched.crc32c and copied.metadata == {"owner": "nightly"}
    assert gcs_server.object_bytes(gcs_bucket, "mig/copy.bin") == data

    other = client.create_bucket("gcs-rewrite-target")
    token, done_bytes, total = other.blob("mig/whole.bin").rewrite(fetched)
    assert token is None and done_bytes == total == len(data)

    gcs_server.rewrite_bytes_per_call = MIB
    try:
        stepped = other.blob("mig/stepped.bin")
        token, calls = None, 0
        while True:
            token, done_bytes, total = stepped.rewrite(fetched, token=token)
            calls += 1
            assert (token is None) == (done_bytes == total)
            if token is None:
                break
            assert not gcs_server.has_object("gcs-rewrite-target", "mig/stepped.bin")
    finally:
        gcs_server.rewrite_bytes_per_call = None
    assert calls == 40 and done_bytes == total == len(data)
    assert gcs_server.object_bytes("gcs-rewrite-target", "mig/stepped.bin") == data
    final = other.get_blob("mig/stepped.bin")
    assert final is not None and final.metadata == {"owner": "nightly"}
    assert final.crc32c == fetched.crc32c and final.md5_hash == fetched.md5_hash


def test_acl_iam_and_notification_round_trips(
    client: storage.Client, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    bucket = client.get_bucket(gcs_bucket)
    bucket.acl.user("reader@example.com").grant_read()
    bucket.acl.save()
    reloaded = client.get_bucket(gcs_bucket)
    reloaded.acl.reload()
    assert "READER" in reloaded.acl.user("reader@example.com").get_roles()

    blob = bucket.blob("acl/object")
    blob.upload_from_string(b"x")
    blob.acl.user("owner@example.com").grant_owner()
    blob.acl.save()
    blob.acl.reload()
    assert "OWNER" in blob.acl.user("owner@example.com").get_roles()

    policy = bucket.get_iam_policy(requested_policy_version=1)
    policy["roles/storage.objectViewer"] = {"allUsers"}
    bucket.set_iam_policy(policy)
    again = bucket.get_iam_policy()
    assert again["roles/storage.objectViewer"] == {"allUsers"}
    wanted = ["storage.objects.get", "storage.objects.list"]
    assert bucket.test_iam_permissions(wanted) == wanted

    notification = bucket.notification(topic_name="nightly", topic_project="my-project")
    notification.create()
    assert notification.notification_id
    assert [n.notification_id for n in bucket.list_notifications()] == [
        notification.notification_id
    ]
    assert notification.exists()
    notification.delete()
    assert not notification.exists()
