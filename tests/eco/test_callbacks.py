"""One progress signature, progress(bytes_done, total), and its tqdm and fsspec adapters."""

from __future__ import annotations

import io
import os
import pathlib

import pytest
from fsspec.callbacks import DEFAULT_CALLBACK, Callback, NoOpCallback

import resumable_media
from resumable_media import callbacks, gcs
from resumable_media.parallel import ParallelDownload
from resumable_media.testing import GCSServer

MIB = 1 << 20


def test_tqdm_bar_follows_a_blob_download(
    client: object, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    pytest.importorskip("tqdm")
    data = os.urandom(3 * MIB + 1)
    gcs_server.put_object(gcs_bucket, "t.bin", data)
    blob = client.bucket(gcs_bucket).blob("t.bin")  # type: ignore[attr-defined]
    sink = io.StringIO()
    with callbacks.tqdm_progress(desc="t.bin", file=sink, mininterval=0) as bar:
        gcs.download_blob(blob, tmp_path / "t.bin", chunk_size=MIB, progress=bar)
        assert bar.bar.total == len(data) and bar.bar.n == len(data)
    assert "t.bin" in sink.getvalue()


def test_tqdm_bar_with_unknown_total(gcs_server: GCSServer, gcs_bucket: str) -> None:
    pytest.importorskip("tqdm")
    sink = io.StringIO()
    with (
        callbacks.tqdm_progress(file=sink) as bar,
        resumable_media.open(
            f"gs://{gcs_bucket}/u.bin", "wb", endpoint=gcs_server.endpoint, progress=bar
        ) as f,
    ):
        f.write(b"x" * 300_000)
    assert bar.bar.n == 300_000 and bar.bar.total is None


def test_fsspec_callback_adapter_on_a_parallel_download(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    from resumable_media import transports

    data = os.urandom(2 * MIB + 5)
    gcs_server.put_object(gcs_bucket, "f.bin", data)
    recorder = Callback()
    download = ParallelDownload(
        f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/f.bin?alt=media",
        tmp_path / "f.bin",
        chunk_size=MIB,
    )
    download.consume(transports.anonymous(), progress=callbacks.from_fsspec(recorder))
    assert recorder.size == len(data) and recorder.value == len(data)


def test_noop_callbacks_cost_nothing() -> None:
    assert callbacks.from_fsspec(None) is None
    assert callbacks.from_fsspec(DEFAULT_CALLBACK) is None
    assert callbacks.from_fsspec(NoOpCallback()) is None


def test_tqdm_missing_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        callbacks.tqdm_progress()


def _xml_url(server: GCSServer, bucket: str, name: str) -> str:
    return f"{server.endpoint}/{bucket}/{name}"


@pytest.mark.parametrize("processes", [0, 1])
def test_parallel_upload_reports_acknowledged_parts(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path, processes: int
) -> None:
    from resumable_media import transports
    from resumable_media.parallel import ParallelUpload

    data = os.urandom(6 * MIB + 7)
    path = tmp_path / "p.bin"
    path.write_bytes(data)
    seen: list[tuple[int, int | None]] = []
    upload = ParallelUpload(
        _xml_url(gcs_server, gcs_bucket, "p.bin"),
        path,
        part_size=MIB,
        processes=processes,
        threads_per_process=2,
    )
    result = upload.transmit(
        transports.anonymous(),
        "application/octet-stream",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.verified and gcs_server.object_bytes(gcs_bucket, "p.bin") == data
    assert seen and seen[-1] == (len(data), len(data))
    assert all(total == len(data) for _, total in seen)
    dones = [done for done, _ in seen]
    assert dones == sorted(dones)
    # Whole parts only: every count is a number of MiB parts, or all of them.
    assert all(done % MIB == 0 or done == len(data) for done in dones)


def test_single_part_upload_reports_its_end(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    from resumable_media import transports
    from resumable_media.parallel import ParallelUpload

    path = tmp_path / "one.bin"
    path.write_bytes(b"z" * 1000)
    seen: list[tuple[int, int | None]] = []
    ParallelUpload(_xml_url(gcs_server, gcs_bucket, "one.bin"), path, processes=0).transmit(
        transports.anonymous(), "text/plain", progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (1000, 1000)


def test_tqdm_bar_follows_a_parallel_blob_upload(
    client: object, gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    pytest.importorskip("tqdm")
    data = os.urandom(4 * MIB + 3)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    blob = client.bucket(gcs_bucket).blob("up.bin")  # type: ignore[attr-defined]
    sink = io.StringIO()
    gcs_server.clear_requests()
    with callbacks.tqdm_progress(desc="up.bin", file=sink, mininterval=0) as bar:
        gcs.upload_blob(
            blob, path, part_size=MIB, parallel_threshold=MIB, processes=0, progress=bar
        )
        assert bar.bar.total == len(data) and bar.bar.n == len(data)
    assert [r for r in gcs_server.requests if "partNumber=" in r.path]  # the parallel path
    assert "up.bin" in sink.getvalue()


def test_fsspec_callback_on_a_parallel_put(
    gcs_server: GCSServer,
    gcs_bucket: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resumable_media.fsspec as gcsx

    monkeypatch.setattr(gcsx, "PARALLEL_UPLOAD_THRESHOLD", MIB)
    data = os.urandom(3 * MIB + 9)
    path = tmp_path / "put.bin"
    path.write_bytes(data)
    fs = gcsx.GCSXFileSystem(endpoint=gcs_server.endpoint, chunk_size=MIB, skip_instance_cache=True)
    values: list[int] = []

    class Recorder(Callback):  # type: ignore[misc]
        def call(self, *args: object, **kwargs: object) -> None:
            values.append(self.value)

    recorder = Recorder()
    gcs_server.clear_requests()
    fs.put_file(str(path), f"{gcs_bucket}/put.bin", callback=recorder)
    assert gcs_server.object_bytes(gcs_bucket, "put.bin") == data
    assert [r for r in gcs_server.requests if "partNumber=" in r.path]
    assert recorder.size == len(data) and recorder.value == len(data)
    assert values == sorted(values) and values[-1] == len(data)
