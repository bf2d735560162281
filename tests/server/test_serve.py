"""The standalone server (``python -m resumable_media.testing``) and the pytest fixtures."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from resumable_media.testing import GCSServer


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_endpoint_and_stops_on_signal(tmp_path: object, sig: signal.Signals) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "resumable_media.testing", "--port", "0", "--root", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _drive(proc, sig)


def _drive(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        assert (
            requests.post(f"{endpoint}/storage/v1/b?project=p", json={"name": "cli"}).status_code
            == 200
        )
        up = requests.post(
            f"{endpoint}/upload/storage/v1/b/cli/o?uploadType=media&name=x", data=b"served"
        )
        assert up.status_code == 200
        assert requests.get(up.json()["mediaLink"]).content == b"served"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fixtures(gcs_server: GCSServer, gcs_bucket: str) -> None:
    assert gcs_server.endpoint.startswith("http://127.0.0.1:")
    resp = requests.get(f"{gcs_server.endpoint}/storage/v1/b/{gcs_bucket}")
    assert resp.status_code == 200 and resp.json()["name"] == gcs_bucket
    assert gcs_server.has_object(gcs_bucket, "anything") is False


def test_context_manager_and_own_root(tmp_path: object) -> None:
    with requests.Session() as session:
        with GCSServer() as server:
            root = server.root
            server.put_object("b", "x", b"1")
            assert server.object_path("b", "x").read_bytes() == b"1"
            assert session.get(f"{server.endpoint}/storage/v1/b/b").status_code == 200
        assert not root.exists()
        # Neither new connections nor the kept-alive one are served after stop().
        with pytest.raises(requests.ConnectionError):
            session.get(f"{server.endpoint}/storage/v1/b/b", timeout=2)
        with pytest.raises(requests.ConnectionError):
            requests.get(server.endpoint, timeout=2)
