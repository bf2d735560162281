"""The engine: idempotent jobs (generation preconditions), executors, and deletions withheld
after a listing page fails midway (Retry Test API)."""

from __future__ import annotations

import os
import pathlib

import pytest

from resumable_media import bulk
from resumable_media.bulk.engine import commit
from resumable_media.testing import GCSServer


def _engine(server: GCSServer) -> bulk.EngineSpec:
    return bulk.EngineSpec(storage=bulk.StorageSpec.from_storage(bulk.connect(server.endpoint)))


def _upload_job(path: pathlib.Path, url: str, generation: int = 0) -> bulk.Job:
    return bulk.Job(
        action=bulk.Action.UPLOAD,
        source=str(path),
        destination=url,
        size=path.stat().st_size,
        if_generation_match=generation,
    )


def test_upload_job_run_twice_writes_once(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"payload")
    job = _upload_job(source, f"gs://{gcs_bucket}/f")
    engine = _engine(gcs_server)
    first = bulk.run_job(engine, job)
    assert first.status is bulk.Status.COPIED and first.generation
    again = bulk.run_job(engine, job)  # a worker died after finishing it: it runs again
    assert again.status is bulk.Status.COPIED
    assert again.generation == first.generation  # no second write: the 412 was recognised
    assert gcs_server.object_bytes(gcs_bucket, "f") == b"payload"


def test_upload_never_overwrites_a_destination_changed_since_planning(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"mine")
    job = _upload_job(source, f"gs://{gcs_bucket}/f")  # planned while f was absent
    gcs_server.put_object(gcs_bucket, "f", b"someone else's")
    result = bulk.run_job(_engine(gcs_server), job)
    assert result.status is bulk.Status.FAILED
    assert result.error and "changed since it was listed" in result.error
    assert gcs_server.object_bytes(gcs_bucket, "f") == b"someone else's"


def test_delete_job_keeps_a_new_generation_and_is_idempotent(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    old = gcs_server.put_object(gcs_bucket, "d", b"old")
    job = bulk.Job(
        action=bulk.Action.DELETE,
        source="",
        destination=f"gs://{gcs_bucket}/d",
        size=3,
        if_generation_match=int(old["generation"]),
    )
    gcs_server.put_object(gcs_bucket, "d", b"new")
    engine = _engine(gcs_server)
    assert bulk.run_job(engine, job).status is bulk.Status.FAILED
    assert gcs_server.object_bytes(gcs_bucket, "d") == b"new"
    fresh = gcs_server.put_object(gcs_bucket, "e", b"x")
    job = bulk.Job(
        action=bulk.Action.DELETE,
        source="",
        destination=f"gs://{gcs_bucket}/e",
        size=1,
        if_generation_match=int(fresh["generation"]),
    )
    assert bulk.run_job(engine, job).status is bulk.Status.DELETED
    assert bulk.run_job(engine, job).status is bulk.Status.DELETED  # already gone: fine
    assert not gcs_server.has_object(gcs_bucket, "e")


def test_source_listing_failing_midway_deletes_nothing(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    for i in range(6):
        gcs_server.put_object(gcs_bucket, f"src/{i}", b"s")
    for name in ("0", "1", "x-extra", "y-extra"):
        (tmp_path / name).write_bytes(b"s" if len(name) == 1 else b"only here")
    storage = bulk.connect(gcs_server.endpoint)
    plan = bulk.Plan(f"gs://{gcs_bucket}/src", str(tmp_path), storage, delete=True, page_size=2)
    seen: list[bulk.JobResult] = []

    def after_first_page(result: bulk.JobResult) -> None:
        seen.append(result)
        if len(seen) == 1:
            # From now on every listing page of this thread's session fails (non-retryable).
            test_id = gcs_server.create_retry_test({"storage.objects.list": ["return-400"] * 5})
            storage.session().headers["x-retry-test-id"] = test_id

    summary = bulk.execute(plan, bulk.ThreadExecutor(1), on_result=after_first_page)
    assert summary.skipped >= 1 and summary.listing_errors
    assert "failed" in summary.listing_errors[0]
    assert summary.deleted == 0 and summary.deletions_withheld >= 2
    assert (tmp_path / "x-extra").read_bytes() == b"only here"
    assert (tmp_path / "y-extra").exists()
    assert not summary.ok


def _tree(gcs_server: GCSServer, bucket: str, count: int) -> dict[str, bytes]:
    blobs = {f"t/d{i % 3}/f{i}.bin": bytes([i]) * (1000 + i) for i in range(count)}
    for name, data in blobs.items():
        gcs_server.put_object(bucket, name, data)
    return blobs


def _fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the fsync calls of this process (the copies still run for real)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_a_threaded_sync_makes_downloads_durable_in_batches(
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blobs = _tree(gcs_server, gcs_bucket, 40)
    fsyncs = _fsyncs(monkeypatch)
    destination = tmp_path / "out"  # missing: the downloads create their directories
    storage = bulk.connect(gcs_server.endpoint)
    plan = bulk.Plan(f"gs://{gcs_bucket}/t", str(destination), storage)
    seen: list[bulk.JobResult] = []

    def on_result(result: bulk.JobResult) -> None:
        # Reported only once in place: the file is there, whole, and no temp file remains.
        assert result.pending is None
        assert (
            pathlib.Path(result.destination).read_bytes()
            == blobs["t/" + pathlib.Path(result.destination).relative_to(destination).as_posix()]
        )
        seen.append(result)

    summary = bulk.execute(plan, bulk.ThreadExecutor(4), on_result=on_result)
    assert summary.ok and summary.copied == 40
    assert len(seen) == 40
    assert fsyncs == []  # no fsync per file: one durability pass per batch instead
    got = {p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()}
    assert got == {name[2:] for name in blobs}
    assert not [p for p in destination.rglob(".*") if p.is_file()]


def test_a_process_sync_commits_each_shard_before_returning_it(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    blobs = _tree(gcs_server, gcs_bucket, 24)
    destination = tmp_path / "out"
    storage = bulk.connect(gcs_server.endpoint)
    plan = bulk.Plan(f"gs://{gcs_bucket}/t", str(destination), storage)
    results: list[bulk.JobResult] = []
    summary = bulk.execute(plan, bulk.ProcessExecutor(2, shard_size=5), on_result=results.append)
    assert summary.ok and summary.copied == 24
    assert all(r.pending is None and r.inode for r in results)
    for name, data in blobs.items():
        assert (destination / name[2:]).read_bytes() == data
    assert not [p for p in destination.rglob(".*") if p.is_file()]


def test_run_job_alone_puts_a_download_in_place_at_once(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    put = gcs_server.put_object(gcs_bucket, "one.bin", b"z" * 5000)
    job = bulk.Job(
        action=bulk.Action.DOWNLOAD,
        source=f"gs://{gcs_bucket}/one.bin",
        destination=str(tmp_path / "new" / "dir" / "one.bin"),
        size=5000,
        crc32c=put["crc32c"],
        source_generation=int(put["generation"]),
    )
    result = bulk.run_job(_engine(gcs_server), job)
    assert result.status is bulk.Status.COPIED and result.pending is None
    assert (tmp_path / "new" / "dir" / "one.bin").read_bytes() == b"z" * 5000
    deferred = bulk.run_job(_engine(gcs_server), job, defer_durability=True)
    assert deferred.pending is not None and os.path.exists(deferred.pending)
    [final] = commit([deferred])
    assert final.pending is None and final.status is bulk.Status.COPIED
    assert not os.path.exists(deferred.pending)
    assert os.listdir(tmp_path / "new" / "dir") == ["one.bin"]
