"""The server over HTTPS (``GCSServer(tls=...)``), and the request spellings gsutil uses."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import requests

from resumable_media.testing import GCSServer


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GCSServer, str]]:
    """A server speaking HTTPS, and the path of its self-signed certificate (for verify=)."""
    where = tmp_path_factory.mktemp("cert")
    key, cert = where / "key.pem", where / "cert.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    out = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [*openssl, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", *out],
        capture_output=True,
        check=True,
    )
    with GCSServer(tls=(cert, key)) as server:
        server.create_bucket("tls")
        yield server, str(cert)


def test_https_round_trip(https_server: tuple[GCSServer, str]) -> None:
    server, cert = https_server
    assert server.endpoint.startswith("https://127.0.0.1:")
    data = os.urandom((3 << 20) + 5)
    with requests.Session() as session:
        session.verify = cert
        base = f"{server.endpoint}/resumable/upload/storage/v1/b/tls/o?uploadType=resumable"
        init = session.post(base, json={"name": "obj"}, verify=cert)
        assert init.status_code == 200, init.text
        location = init.headers["Location"]
        assert location.startswith(f"{base}&upload_id=")  # https, as requested
        done = session.put(location, data=data, verify=cert)
        assert done.status_code == 200, done.text
        media = done.json()["mediaLink"]
        assert media.startswith("https://")
        assert session.get(media, verify=cert).content == data
        part = session.get(media, headers={"Range": "bytes=1000-2999999"}, verify=cert)
        assert part.status_code == 206 and part.content == data[1000:3000000]
    assert server.object_bytes("tls", "obj") == data


def test_single_quoted_boundary(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # apitools (gsutil) writes boundary='...'; GCS takes the quotes off.
    body = (
        b"--==x==\r\nContent-Type: application/json\r\n\r\n"
        b'{"name": "q"}\r\n--==x==\r\nContent-Type: text/plain\r\n\r\nquoted\r\n--==x==--'
    )
    resp = requests.post(
        f"{gcs_server.endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=multipart",
        data=body,
        headers={"Content-Type": "multipart/related; boundary='==x=='"},
    )
    assert resp.status_code == 200, resp.text
    assert gcs_server.object_bytes(gcs_bucket, "q") == b"quoted"


def test_plain_http_to_the_tls_port_fails(https_server: tuple[GCSServer, str]) -> None:
    server, cert = https_server
    with pytest.raises(requests.ConnectionError):
        requests.get(server.endpoint.replace("https://", "http://"), timeout=10)
    # The server keeps serving TLS clients afterwards.
    assert requests.get(server.endpoint, verify=cert, timeout=10).content == b"OK"
