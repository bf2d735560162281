"""rclone (Go, google-api-go-client over the JSON API) against the loopback server.

rclone's small uploads are multipart bodies whose media part has an empty header block; the
40 MiB upload is a resumable session in chunks; downloads follow the object's ``mediaLink``
and rclone checks each file's MD5 itself. The remote is configured through environment
variables only (anonymous, endpoint pointing at the server). The Debian package ``rclone`` is
installed by ``.ci/run``; outside CI the test is skipped when the binary is absent.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from _bounded import run_bounded

from resumable_media.testing import GCSServer

RCLONE = shutil.which("rclone")
pytestmark = pytest.mark.skipif(
    RCLONE is None and os.environ.get("CI") != "true",
    reason="rclone is not installed (apt-get install rclone); CI installs it",
)


def rclone(server: GCSServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RCLONE_CONFIG_LOOP_TYPE": "google cloud storage",
        "RCLONE_CONFIG_LOOP_ENDPOINT": f"{server.endpoint}/storage/v1/",
        "RCLONE_CONFIG_LOOP_ANONYMOUS": "true",
        "RCLONE_CONFIG_LOOP_BUCKET_POLICY_ONLY": "true",
    }
    assert RCLONE is not None, "rclone is not installed: CI must install the Debian package"
    done = run_bounded(
        [RCLONE, "--config", os.devnull, "--retries", "1", "--low-level-retries", "1", *args],
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_rclone_copy_list_download(
    gcs_server: GCSServer,
    gcs_bucket: str,
    payloads: dict[str, bytes],
    payload_dir: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    for name in payloads:
        rclone(gcs_server, "copyto", str(payload_dir / name), f"loop:{gcs_bucket}/rc/{name}")
    for name, data in payloads.items():
        assert gcs_server.object_bytes(gcs_bucket, f"rc/{name}") == data
    listed = json.loads(rclone(gcs_server, "lsjson", "-R", f"loop:{gcs_bucket}/rc").stdout)
    assert sorted((e["Path"], e["Size"]) for e in listed) == sorted(
        (n, len(d)) for n, d in payloads.items()
    )
    down = tmp_path / "down"
    rclone(gcs_server, "copy", f"loop:{gcs_bucket}/rc", str(down))
    assert {p.name: p.read_bytes() for p in down.iterdir()} == payloads
