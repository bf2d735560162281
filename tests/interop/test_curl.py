"""curl (a client nobody here wrote) against the loopback server."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from resumable_media.testing import GCSServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
Q = 256 * 1024


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, check=False
    )


def test_curl_ranged_download(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(2 << 20)
    gcs_server.put_object(gcs_bucket, "curl/obj", data)
    out = tmp_path / "part.bin"
    url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/curl%2Fobj?alt=media"
    done = curl("-r", "1000-200999", "-o", str(out), "-D", "-", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 206")
    assert f"Content-Range: bytes 1000-200999/{len(data)}" in done.stdout
    assert out.read_bytes() == data[1000:201000]
    whole = curl("-o", str(out), "-w", "%{http_code}", url)
    assert whole.stdout == "200" and out.read_bytes() == data


def test_curl_broken_stream_is_detected(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    gcs_server.put_object(gcs_bucket, "curl/cut", os.urandom(1 << 20))
    test_id = gcs_server.create_retry_test(
        {"storage.objects.get": ["return-broken-stream-after-256K"]}
    )
    url = f"{gcs_server.endpoint}/download/storage/v1/b/{gcs_bucket}/o/curl%2Fcut?alt=media"
    done = curl("-o", str(tmp_path / "cut.bin"), "-H", f"x-retry-test-id: {test_id}", url)
    assert done.returncode == 18  # CURLE_PARTIAL_FILE
    assert (tmp_path / "cut.bin").stat().st_size == Q


def test_curl_resumable_upload(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    data = os.urandom(2 * Q + 5000)
    chunks = [data[:Q], data[Q : 2 * Q], data[2 * Q :]]
    init = curl(
        "-X", "POST", "-D", "-", "-o", "/dev/null",
        "-H", "Content-Type: application/json",
        "-H", "X-Upload-Content-Type: text/plain",
        "--data-binary", '{"name": "curl/up"}',
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    match = re.search(r"^Location: (\S+)\r?$", init.stdout, re.MULTILINE | re.IGNORECASE)
    assert match
    location = match[1]
    offset = 0
    for i, chunk in enumerate(chunks):
        piece = tmp_path / f"chunk{i}"
        piece.write_bytes(chunk)
        total = str(len(data)) if i == len(chunks) - 1 else "*"
        last = offset + len(chunk) - 1
        done = curl(
            "-X", "PUT", "-D", "-", "-o", str(tmp_path / "body"),
            "-H", f"Content-Range: bytes {offset}-{last}/{total}",
            "--data-binary", f"@{piece}", location,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        if i < len(chunks) - 1:
            assert done.stdout.startswith("HTTP/1.1 308")
            assert f"Range: bytes=0-{last}" in done.stdout
        else:
            assert done.stdout.startswith("HTTP/1.1 200")
        offset += len(chunk)
    assert gcs_server.object_bytes(gcs_bucket, "curl/up") == data
    assert '"contentType": "text/plain"' in (tmp_path / "body").read_text()
