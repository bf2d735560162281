"""A file that changes while it is uploaded never becomes an object that claims to be it.

Each upload kind is run with the source rewritten at ten seeded moments (1 MiB, same size,
in the part already sent or in the part not yet sent) and grown at one more. A moment is
the k-th data request of the upload: the test's session rewrites the file just before it
sends that request, so every moment is exact and repeatable. Outcomes allowed:

- ``SourceChanged``, and no object (the session cancelled, the multipart upload aborted);
- success, only when the change came after the last byte was read (the final request of a
  resumable upload), with an object whose bytes are the file as it was read.
"""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from resumable_media import SourceChanged
from resumable_media.parallel import ParallelUpload, PipelinedUpload
from resumable_media.testing import GCSServer
from support import logged_requests, resumable_url

CHUNK = 256 * 1024
SIZE = 16 * CHUNK + 1000  # 17 data requests for the resumable upload
MIB = 1 << 20


class TamperingSession(requests.Session):
    """A real session that rewrites (or grows) ``path`` just before its k-th data request."""

    def __init__(self, path: pathlib.Path, k: int, *, at: int, grow: bool = False) -> None:
        super().__init__()
        self.path, self.k, self.at, self.grow = path, k, at, grow
        self.seen = 0
        self.fired_before: str | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        if method == "PUT" and ("upload_id=" in text or "uploadId=" in text):
            self.seen += 1
            if self.seen == self.k:
                self.fired_before = str(kwargs.get("headers", {}).get("content-range", ""))
                with open(self.path, "r+b") as handle:
                    if self.grow:
                        handle.seek(0, os.SEEK_END)
                        handle.write(b"grown" * 1000)
                    else:
                        handle.seek(self.at)
                        handle.write(os.urandom(min(MIB, SIZE - self.at)))
        return super().request(method, url, *args, **kwargs)


def _moments(seed: int, requests_total: int) -> list[tuple[int, int]]:
    """Ten (k, offset) moments: the k-th data request, the rewrite offset (sent or not)."""
    rng = random.Random(seed)
    return [
        (rng.randint(1, requests_total), rng.choice([0, SIZE // 2, SIZE - MIB])) for _ in range(10)
    ]


def _source(tmp_path: pathlib.Path, name: str) -> tuple[pathlib.Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def _no_object_or_original(
    server: GCSServer, bucket: str, name: str, original: bytes, raised: bool
) -> None:
    if raised:
        assert not server.has_object(bucket, name), "a changed source left an object behind"
    else:
        assert server.object_bytes(bucket, name) == original


@pytest.mark.parametrize("single_request", [False, True], ids=["by-chunk", "single-request"])
def test_pipelined_upload_of_a_changing_file(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path, single_request: bool
) -> None:
    total = -(-SIZE // CHUNK)
    outcomes = []
    for i, (k, at) in enumerate(_moments(11, 2 if single_request else total)):
        path, original = _source(tmp_path, f"p{i}")
        session = TamperingSession(path, k, at=at)
        upload = PipelinedUpload(
            resumable_url(gcs_server, gcs_bucket), CHUNK, single_request=single_request
        )
        name = f"pipelined-{single_request}-{i}"
        try:
            with open(path, "rb") as stream:
                result = upload.transmit(session, stream, {"name": name}, "text/plain")
        except SourceChanged as exc:
            assert str(path) in str(exc) and "nothing was written" in str(exc)
            _no_object_or_original(gcs_server, gcs_bucket, name, original, True)
            # The session was cancelled, so nothing can finalize it later.
            deletes = [r for r in logged_requests(gcs_server) if r.method == "DELETE"]
            assert any("upload_id=" in r.path and r.status == 499 for r in deletes)
            assert upload.resumable_url is not None
            assert requests.put(upload.resumable_url, data=b"", timeout=10).status_code == 404
            outcomes.append("changed")
            continue
        # Success is only right when nothing was changed before the last byte was read:
        # the change came with the final request, after the check.
        assert session.fired_before is not None and "/" in session.fired_before
        assert not session.fired_before.endswith("/*"), session.fired_before
        assert result.verified
        _no_object_or_original(gcs_server, gcs_bucket, name, original, False)
        outcomes.append("after the last read")
    assert outcomes.count("changed") >= 5, outcomes  # the seeds do exercise the check


def test_pipelined_upload_of_a_growing_file(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    path, _original = _source(tmp_path, "grows")
    session = TamperingSession(path, 3, at=0, grow=True)
    upload = PipelinedUpload(resumable_url(gcs_server, gcs_bucket), CHUNK)
    with pytest.raises(SourceChanged, match="its size went from"):
        upload.transmit(session, str(path), {"name": "grows"}, "text/plain")
    assert not gcs_server.has_object(gcs_bucket, "grows")


@pytest.mark.parametrize("seed", [5, 6])
def test_parallel_upload_of_a_changing_file(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path, seed: int
) -> None:
    parts = -(-SIZE // (4 * CHUNK))
    for i, (k, at) in enumerate(_moments(seed, parts)):
        path, original = _source(tmp_path, f"x{i}")
        name = f"xml-{seed}-{i}"
        session = TamperingSession(path, k, at=at)
        upload = ParallelUpload(
            f"{gcs_server.endpoint}/{gcs_bucket}/{name}", path, part_size=4 * CHUNK, processes=0
        )
        with pytest.raises(SourceChanged, match="nothing was written"):
            upload.transmit(session, "application/octet-stream")
        assert not gcs_server.has_object(gcs_bucket, name)
        assert path.read_bytes() != original  # the change did happen


def test_cp_of_a_file_changed_mid_upload_exits_1_and_writes_nothing(
    gcs_server: GCSServer, gcs_bucket: str, tmp_path: pathlib.Path
) -> None:
    """The command, end to end: the upload stalls at 1 MiB; the file is rewritten then."""
    path, _original = _source(tmp_path, "report.bin")
    test_id = gcs_server.create_retry_test({"storage.objects.insert": ["stall-for-4s-after-64K"]})
    gcs_server.clear_requests()
    url = f"gs://{gcs_bucket}/report.bin"
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env["RESUMABLE_MEDIA_STATE_DIR"] = str(tmp_path / "state")
    argv = [sys.executable, "-m", "resumable_media", "cp", "--endpoint", gcs_server.endpoint]
    argv += ["-H", f"x-retry-test-id: {test_id}", "--chunk-size", "256KiB", str(path), url]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env) as proc:
        deadline = time.monotonic() + 30
        while not any(r.method == "POST" for r in gcs_server.requests):  # the session began
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
        time.sleep(0.5)  # inside the 4 s stall of the first chunk
        with open(path, "r+b") as handle:
            handle.seek(SIZE // 2)
            handle.write(b"\0" * 4096)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert stderr.strip() == (
        f"error: {path}: changed while it was being uploaded (it was modified); nothing was "
        f"written to {url}; upload it again once nothing is writing it"
    )
    assert not gcs_server.has_object(gcs_bucket, "report.bin")
