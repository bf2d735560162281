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
