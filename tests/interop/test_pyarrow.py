"""pyarrow's GcsFileSystem (C++, google-cloud-cpp over the JSON API) against the server.

pyarrow keeps directories as marker objects (``name/`` with metadata ``arrow/gcsfs:
directory``), as on GCS: a recursive listing yields only objects and markers, so
``copy_files`` recreates a tree's directories only where markers exist. A tree written by
another tool has none, and copying it down fails with FileNotFoundError on GCS as on this
server (pyarrow opens ``sub/b.txt`` before any ``sub`` was created). The tree here is written
by pyarrow itself, then copied back down.

The server runs in its own process here: some pyarrow calls (``open_input_file``,
``read_at``) hold the GIL while they wait for the network, which would starve an in-process
server's threads.
"""

from __future__ import annotations

import datetime
import itertools
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pyarrow.fs as pafs  # type: ignore[import-untyped]
import pytest
import requests

_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A loopback server in a child process; its endpoint URL."""
    with subprocess.Popen(
        [sys.executable, "-m", "resumable_media.testing"], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"pyarrow-{next(_buckets)}"
    resp = requests.post(f"{endpoint}/storage/v1/b?project=p", json={"name": name}, timeout=10)
    assert resp.status_code == 200, resp.text
    return name


def stored(endpoint: str, bucket: str, name: str) -> bytes:
    """The object's bytes as the server serves them to another client."""
    url = f"{endpoint}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.content


def _fs(endpoint: str) -> pafs.GcsFileSystem:
    return pafs.GcsFileSystem(
        anonymous=True,
        endpoint_override=urlsplit(endpoint).netloc,
        scheme="http",
        retry_time_limit=datetime.timedelta(seconds=5),
    )


def test_pyarrow_streams_and_listing(
    endpoint: str, bucket: str, payloads: dict[str, bytes]
) -> None:
    fs = _fs(endpoint)
    for name, data in payloads.items():
        with fs.open_output_stream(f"{bucket}/pa/{name}") as out:
            out.write(data)
        assert stored(endpoint, bucket, f"pa/{name}") == data
    for name, data in payloads.items():
        with fs.open_input_stream(f"{bucket}/pa/{name}") as src:
            assert src.read() == data
    with fs.open_input_file(f"{bucket}/pa/large.bin") as src:
        assert src.read_at(1000, 5 << 20) == payloads["large.bin"][5 << 20 : (5 << 20) + 1000]
    infos = fs.get_file_info(pafs.FileSelector(f"{bucket}/pa", recursive=True))
    assert sorted((i.path, i.size) for i in infos) == sorted(
        (f"{bucket}/pa/{n}", len(d)) for n, d in payloads.items()
    )


def test_pyarrow_copy_files_tree(
    endpoint: str, bucket: str, payload_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (payload_dir / "sub").mkdir()
    (payload_dir / "sub" / "deeper.txt").write_bytes(b"in a subdirectory")
    fs = _fs(endpoint)
    local = pafs.LocalFileSystem()
    pafs.copy_files(
        str(payload_dir), f"{bucket}/tree", source_filesystem=local, destination_filesystem=fs
    )
    assert stored(endpoint, bucket, "tree/sub/deeper.txt") == b"in a subdirectory"
    down = tmp_path / "down"
    pafs.copy_files(f"{bucket}/tree", str(down), source_filesystem=fs, destination_filesystem=local)
    expected = {p.relative_to(payload_dir): p.read_bytes() for p in payload_dir.rglob("*.*")}
    got = {p.relative_to(down): p.read_bytes() for p in down.rglob("*.*")}
    assert got == expected and len(got) == 3
