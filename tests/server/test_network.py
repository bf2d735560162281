"""The shaped network of the loopback server: latency before each response, rate caps.

Only ``test_wan_single_stream_rate`` measures a rate, because the rate is the feature: under
``wan`` a 40 MiB stream takes ~0.84 s where loopback needs a few tens of ms, so shaping is
the bottleneck by more than 10x, and the token bucket cannot run ahead of its cap. The other
tests assert lower bounds on time only (what shaping guarantees), never speeds.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from resumable_media.testing import PRESETS, GCSServer, NetworkProfile
from resumable_media.testing.network import BURST_S, TokenBucket

MIB = 1 << 20


def _connect(server: GCSServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", urlsplit(server.endpoint).port, timeout=60)


def _timed_download(server: GCSServer, bucket: str, name: str, size: int) -> float:
    """Seconds from the response head to the last body byte (the stream's own rate)."""
    conn = _connect(server)
    try:
        conn.request("GET", f"/download/storage/v1/b/{bucket}/o/{name}?alt=media")
        resp = conn.getresponse()
        began = time.perf_counter()
        buf = memoryview(bytearray(MIB))
        got = 0
        while n := resp.readinto(buf):
            got += n
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    assert resp.status == 200 and got == size
    return elapsed


def test_presets() -> None:
    assert PRESETS["lan"] == NetworkProfile(0.0002)
    assert PRESETS["region"] == NetworkProfile(0.002, 200e6, 1.5e9)
    assert PRESETS["wan"] == NetworkProfile(0.030, 50e6, 1e9)
    with pytest.raises(ValueError, match="unknown network profile 'moon'; choose one of lan"):
        GCSServer(network="moon")


def test_token_bucket_books_time_at_its_rate() -> None:
    bucket = TokenBucket(100e6)
    waits = [bucket.delay(MIB) for _ in range(100)]  # 100 MiB booked at once
    # The last piece may go when 100 MiB at 100 MB/s have passed, less the burst credit.
    assert waits[-1] == pytest.approx(100 * MIB / 100e6 - BURST_S, abs=0.01)
    assert waits == sorted(waits)


def test_wan_single_stream_rate() -> None:
    size = 40 * MIB
    with GCSServer(network="wan") as server:
        server.put_object("net", "obj", os.urandom(size))
        elapsed = _timed_download(server, "net", "obj", size)
        rate = size / elapsed
        print(f"wan single stream: {rate / 1e6:.2f} MB/s")
        assert rate == pytest.approx(50e6, rel=0.10), f"{rate / 1e6:.1f} MB/s"
        conn = _connect(server)
        try:
            began = time.perf_counter()
            conn.request(
                "POST",
                "/upload/storage/v1/b/net/o?uploadType=media&name=up",
                body=os.urandom(10 * MIB),
            )
            resp = conn.getresponse()
            resp.read()
            upload_s = time.perf_counter() - began
        finally:
            conn.close()
        assert resp.status == 200
        # Uploads are capped too: 10 MiB at 50 MB/s cannot take less than ~0.2 s.
        assert upload_s >= 10 * MIB / 50e6 - BURST_S


def test_latency_before_every_response() -> None:
    profile = NetworkProfile(latency_s=0.05)
    with GCSServer(network=profile) as server:
        server.create_bucket("lat")
        conn = _connect(server)
        try:
            for _ in range(3):
                began = time.perf_counter()
                conn.request("GET", "/storage/v1/b/lat")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200
                assert time.perf_counter() - began >= 0.05
        finally:
            conn.close()


def test_total_cap_is_shared_by_connections() -> None:
    # Two streams, each allowed 200 MB/s alone, share a 40 MB/s total.
    size = 8 * MIB
    profile = NetworkProfile(0.0, 200e6, 40e6)
    with GCSServer(network=profile) as server:
        for name in ("a", "b"):
            server.put_object("tot", name, os.urandom(size))
        times: list[float] = []
        threads = [
            threading.Thread(
                target=lambda n=name: times.append(_timed_download(server, "tot", n, size))
            )
            for name in ("a", "b")
        ]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    assert len(times) == 2
    assert elapsed >= 2 * size / 40e6 - 2 * BURST_S


@pytest.mark.parametrize(
    "argv",
    [["-m", "resumable_media.testing"], ["-m", "resumable_media", "serve", "--quiet"]],
)
def test_serve_takes_network_option(argv: list[str]) -> None:
    with subprocess.Popen(
        [sys.executable, *argv, "--network", "wan"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            parts = urlsplit(proc.stdout.readline().strip())
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            began = time.perf_counter()
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"OK"
            assert time.perf_counter() - began >= 0.03
            conn.close()
        finally:
            proc.terminate()
