"""resumable_media.fsspec: the gcsx filesystem against the loopback server, and real consumers."""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Iterator

import fsspec
import pytest
from _eco_support import records
from fsspec.callbacks import Callback

from resumable_media import common
from resumable_media import fsspec as rm_fsspec
from resumable_media.testing import GCSServer

MIB = 1 << 20


@pytest.fixture
def fs(
    gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[rm_fsspec.GCSXFileSystem]:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    yield rm_fsspec.GCSXFileSystem(chunk_size=MIB, skip_instance_cache=True)


def test_registered_by_entry_point() -> None:
    assert fsspec.get_filesystem_class("gcsx") is rm_fsspec.GCSXFileSystem


def test_ls_info_cat_ranges(
    fs: rm_fsspec.GCSXFileSystem, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(3 * MIB + 7)
    gcs_server.put_object(gcs_bucket, "d/a.bin", data, content_type="application/x-a")
    gcs_server.put_object(gcs_bucket, "d/sub/b.txt", b"hello")
    assert fs.ls(f"gcsx://{gcs_bucket}/d", detail=False) == [
        f"{gcs_bucket}/d/a.bin",
        f"{gcs_bucket}/d/sub",
    ]
    info = fs.info(f"{gcs_bucket}/d/a.bin")
    assert info["type"] == "file" and info["size"] == len(data)
    assert info["contentType"] == "application/x-a" and info["crc32c"]
    assert fs.info(f"{gcs_bucket}/d/sub")["type"] == "directory"
    assert fs.info(gcs_bucket)["type"] == "directory"
    assert fs.find(f"{gcs_bucket}/d") == [f"{gcs_bucket}/d/a.bin", f"{gcs_bucket}/d/sub/b.txt"]
    assert fs.cat_file(f"{gcs_bucket}/d/a.bin") == data
    assert fs.cat_file(f"{gcs_bucket}/d/a.bin", start=10, end=20) == data[10:20]
    assert fs.cat_file(f"{gcs_bucket}/d/a.bin", start=-5) == data[-5:]
    assert fs.cat_file(f"{gcs_bucket}/d/a.bin", start=MIB, end=-1) == data[MIB:-1]
    assert fs.cat_file(f"{gcs_bucket}/d/a.bin", start=50, end=50) == b""
    assert fs.cat(f"gcsx://{gcs_bucket}/d/sub/b.txt") == b"hello"
    assert fs.modified(f"{gcs_bucket}/d/a.bin").tzinfo is not None
    assert fs.created(f"{gcs_bucket}/d/a.bin") <= fs.modified(f"{gcs_bucket}/d/a.bin")
    with pytest.raises(NotImplementedError, match="transactions"), fs.transaction:
        fs.open(f"{gcs_bucket}/d/t.bin", "wb")
    with pytest.raises(FileNotFoundError, match="nothing"):
        fs.info(f"{gcs_bucket}/nothing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{gcs_bucket}/nothing")


def test_put_get_cp_rm(
    fs: rm_fsspec.GCSXFileSystem,
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(4 * MIB + 1)
    local = tmp_path / "up.bin"
    local.write_bytes(data)
    monkeypatch.setattr(rm_fsspec, "PARALLEL_UPLOAD_THRESHOLD", 2 * MIB)
    gcs_server.clear_requests()
    fs.put(str(local), f"{gcs_bucket}/p/up.bin")
    assert gcs_server.object_bytes(gcs_bucket, "p/up.bin") == data
    parts = records(gcs_server, lambda r: "partNumber=" in r.path and gcs_bucket in r.path, 5)
    assert len(parts) == 5  # the XML multipart upload, one part per chunk
    fs.get(f"{gcs_bucket}/p/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == data
    gcs_server.clear_requests()
    fs.cp_file(f"{gcs_bucket}/p/up.bin", f"{gcs_bucket}/p/copy.bin")
    assert gcs_server.object_bytes(gcs_bucket, "p/copy.bin") == data
    assert records(gcs_server, lambda r: "/rewriteTo/" in r.path and gcs_bucket in r.path, 1)
    assert gcs_server.media_bytes_sent_for(gcs_bucket) >= 0
    fs.rm(f"{gcs_bucket}/p", recursive=True)
    assert not gcs_server.has_object(gcs_bucket, "p/up.bin")
    assert not gcs_server.has_object(gcs_bucket, "p/copy.bin")
    with pytest.raises(FileNotFoundError):
        fs.rm_file(f"{gcs_bucket}/p/up.bin")


def test_corrupted_get_leaves_no_file(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    from resumable_media import transports
    from resumable_media._objects.client import HeaderedFactory

    gcs_server.put_object(gcs_bucket, "bad.bin", os.urandom(3 * MIB))
    test_id = gcs_server.create_retry_test({"storage.objects.get": ["return-corrupted-data"]})
    factory = HeaderedFactory(transports.anonymous(), {"x-retry-test-id": test_id})
    fs = rm_fsspec.GCSXFileSystem(
        endpoint=gcs_server.endpoint, transport=factory, chunk_size=MIB, skip_instance_cache=True
    )
    with pytest.raises(common.DataCorruption):
        fs.get(f"{gcs_bucket}/bad.bin", str(tmp_path / "bad.bin"))
    assert os.listdir(tmp_path) == []


def test_mkdir_makes_buckets_and_pipe_create(
    fs: rm_fsspec.GCSXFileSystem, gcs_server: GCSServer
) -> None:
    fs.mkdir("eco-new-bucket")
    assert "eco-new-bucket" in fs.ls("", detail=False)
    with pytest.raises(FileExistsError):
        fs.mkdir("eco-new-bucket")
    fs.makedirs("eco-new-bucket/a/b", exist_ok=True)
    fs.pipe_file("eco-new-bucket/a/b/c", b"1", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file("eco-new-bucket/a/b/c", b"2", mode="create")
    assert fs.cat_file("eco-new-bucket/a/b/c") == b"1"
    fs.rm("eco-new-bucket/a", recursive=True)
    fs.rmdir("eco-new-bucket")
    assert "eco-new-bucket" not in fs.ls("", detail=False)


def test_fsspec_callback_sees_bytes(
    fs: rm_fsspec.GCSXFileSystem, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(3 * MIB)
    gcs_server.put_object(gcs_bucket, "cb.bin", data)

    class Recorder(Callback):  # type: ignore[misc]
        pass

    recorder = Recorder()
    fs.get_file(f"{gcs_bucket}/cb.bin", str(tmp_path / "cb.bin"), callback=recorder)
    assert recorder.size == len(data) and recorder.value == len(data)
    up = Recorder()
    fs.put_file(str(tmp_path / "cb.bin"), f"{gcs_bucket}/cb2.bin", callback=up)
    assert up.size == len(data) and up.value == len(data)


def test_register_gs_is_explicit(gcs_server: GCSServer, gcs_bucket: str) -> None:
    registry_module = importlib.import_module("fsspec.registry")

    registry = registry_module

    before = {p: registry._registry.get(p) for p in ("gs", "gcs")}
    try:
        rm_fsspec.register_gs()
        assert fsspec.get_filesystem_class("gs") is rm_fsspec.GCSXFileSystem
        fs = fsspec.filesystem("gs", endpoint=gcs_server.endpoint, skip_instance_cache=True)
        fs.pipe_file(f"gs://{gcs_bucket}/via-gs", b"ok")
        assert gcs_server.object_bytes(gcs_bucket, "via-gs") == b"ok"
    finally:
        for protocol, cls in before.items():
            registry._registry.pop(protocol, None)
            if cls is not None:
                registry._registry[protocol] = cls


def test_pandas_and_pyarrow_read_parquet(
    gcs_server: GCSServer, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pd = pytest.importorskip("pandas")
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    frame = pd.DataFrame({"a": range(50_000), "b": [f"row {i}" for i in range(50_000)]})
    options = {"endpoint": gcs_server.endpoint, "skip_instance_cache": True}
    frame.to_parquet(f"gcsx://{gcs_bucket}/t.parquet", storage_options=options)
    assert gcs_server.has_object(gcs_bucket, "t.parquet")
    back = pd.read_parquet(f"gcsx://{gcs_bucket}/t.parquet", storage_options=options)
    pd.testing.assert_frame_equal(back, frame)
    fs = rm_fsspec.GCSXFileSystem(endpoint=gcs_server.endpoint, skip_instance_cache=True)
    table = pq.read_table(f"{gcs_bucket}/t.parquet", filesystem=fs, columns=["b"])
    assert table.column("b").to_pylist()[-1] == "row 49999"


def test_dask_dataframe_round_trip(gcs_server: GCSServer, gcs_bucket: str) -> None:
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    import dask

    frame = pd.DataFrame({"x": range(20_000), "y": [i * 0.5 for i in range(20_000)]})
    options = {"endpoint": gcs_server.endpoint}
    with dask.config.set(scheduler="threads"):
        dd.from_pandas(frame, npartitions=4).to_parquet(
            f"gcsx://{gcs_bucket}/ddf", storage_options=options, write_index=False
        )
        back = dd.read_parquet(f"gcsx://{gcs_bucket}/ddf", storage_options=options).compute()
    assert len([n for n in gcs_server.requests if "ddf" in n.path]) > 0
    pd.testing.assert_frame_equal(back.sort_values("x").reset_index(drop=True), frame)
