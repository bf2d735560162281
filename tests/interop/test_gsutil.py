"""gsutil (boto/apitools over the JSON API) against the loopback server, over HTTPS.

gsutil always speaks HTTPS to its JSON endpoint, so the server runs with a throwaway
self-signed certificate (``GCSServer(tls=...)``) and gsutil is pointed at it through a boto
config (``gs_json_host``/``gs_json_port``, ``https_validate_certificates = False``), with no
credentials. Its multipart uploads single-quote the boundary, and its resumable uploads use
the ``/resumable/upload/...`` path; both are accepted as GCS accepts them. ``.ci/run``
installs gsutil from PyPI in CI; elsewhere the test is skipped when gsutil is absent.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from _bounded import run_bounded

from resumable_media.testing import GCSServer

GSUTIL = os.environ.get("GSUTIL") or shutil.which("gsutil")
pytestmark = pytest.mark.skipif(
    GSUTIL is None and os.environ.get("CI") != "true",
    reason="gsutil is not installed (pip install gsutil, or the Cloud SDK); CI installs it",
)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    """A server speaking HTTPS with a fresh self-signed certificate."""
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*openssl, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=True,
    )
    with GCSServer(tls=(cert, key)) as server:
        server.create_bucket("gsutil-bucket")
        yield server


def gsutil(server: GCSServer, home: pathlib.Path, *args: str) -> str:
    assert GSUTIL is not None, "gsutil is not installed: CI must install it"
    port = server.endpoint.rsplit(":", 1)[1]
    boto = home / "boto.cfg"
    boto.write_text(
        "[Credentials]\n"
        f"gs_json_host = 127.0.0.1\ngs_json_port = {port}\n"
        f"gs_host = 127.0.0.1\ngs_port = {port}\n"
        "[Boto]\nhttps_validate_certificates = False\nnum_retries = 1\nmax_retry_delay = 1\n"
        "[GSUtil]\nprefer_api = json\ndefault_project_id = loopback\n"
        f"state_dir = {home / 'state'}\n"
    )
    env = {
        **os.environ,
        "BOTO_CONFIG": str(boto),
        "BOTO_PATH": str(boto),
        "CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL": "false",
        "HOME": str(home),
        "NO_GCE_CHECK": "True",
    }
    done = run_bounded([GSUTIL, *args], env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gsutil_cp_ls_cp(
    tls_server: GCSServer,
    payloads: dict[str, bytes],
    payload_dir: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    bucket = "gsutil-bucket"
    # One command each way (gsutil starts slowly): the small file goes as a multipart
    # upload, the 40 MiB one as a resumable upload.
    sources = [str(payload_dir / name) for name in payloads]
    gsutil(tls_server, tmp_path, "cp", *sources, f"gs://{bucket}/gs/")
    for name, data in payloads.items():
        assert tls_server.object_bytes(bucket, f"gs/{name}") == data
    listing = gsutil(tls_server, tmp_path, "ls", "-l", f"gs://{bucket}/gs/")
    for name, data in payloads.items():
        assert f"{len(data)}" in listing and f"gs://{bucket}/gs/{name}" in listing
    down = tmp_path / "down"
    down.mkdir()
    gsutil(tls_server, tmp_path, "cp", *[f"gs://{bucket}/gs/{n}" for n in payloads], str(down))
    assert {p.name: p.read_bytes() for p in down.iterdir()} == payloads
