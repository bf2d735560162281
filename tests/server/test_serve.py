"""The standalone server (``python -m resumable_media.testing``) and the pytest fixtures."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
import requests

from resumable_media.testing import GCSServer, PortInUseError


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


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ["resumable_media.cli", "serve", "--quiet"],
        ["resumable_media.cli", "serve"],
        ["resumable_media.testing"],
    ],
    ids=[
        "resumable-media serve --quiet",
        "resumable-media serve",
        "python -m resumable_media.testing",
    ],
)
def test_serve_on_a_taken_port_says_so_in_one_line_and_exits_2(
    taken_port: int, command: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command, "--port", str(taken_port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: port {taken_port} on 127.0.0.1 is already in use: stop the process that "
        "holds it, or pass another --port (--port 0 picks a free one)\n"
    )


def test_server_on_a_taken_port_raises_and_leaves_no_temp_root(
    taken_port: int, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(PortInUseError) as caught:
        GCSServer(port=taken_port)
    assert caught.value.port == taken_port and caught.value.errno is not None
    assert str(caught.value) == (
        f"port {taken_port} on 127.0.0.1 is already in use: stop the process that holds it, "
        "or choose another port (0 picks a free one)"
    )
    assert list(tmp_path.iterdir()) == []


def test_serve_banner_comes_after_the_bind(taken_port: int) -> None:
    code = (
        "from resumable_media.testing import serve\n"
        f"serve(port={taken_port}, banner='serving until Ctrl-C\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "serving" not in done.stderr
    assert f"port {taken_port} on 127.0.0.1 is already in use" in done.stderr


def test_serve_prints_the_banner_once_bound() -> None:
    code = "from resumable_media.testing import serve\nserve(banner='serving until Ctrl-C\\n')\n"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.readline().startswith("http://127.0.0.1:")
            assert proc.stderr.readline() == "serving until Ctrl-C\n"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
