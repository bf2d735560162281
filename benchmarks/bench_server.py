"""Benchmark: the loopback GCS server against nginx on the same 1 GiB object.

Download: one streaming GET of the whole object from our server and from nginx (1 worker,
``sendfile on``, serving the very file our server stores), with the same clients (curl to
/dev/null, and a urllib3 ``readinto`` loop into a reused 1 MiB buffer). Upload: a resumable
upload in 8 MiB chunks from raw http.client with bytes payloads, against nginx discarding the
same PUTs (an upper bound: no disk, no hashing). Runs alternate between peers; medians of
``--runs`` runs are reported as a markdown table with ratios.

Small requests: p50/p99 latency of ``--requests`` metadata GETs and of as many 64 KiB media
uploads, each over one kept-alive http.client connection (``--only latency`` runs just these).
A delayed ACK stalling a response shows up here as ~40 ms.

Server CPU (``--only cpu``): the server runs in a process of its own (``python -m
resumable_media.testing``) and its CPU seconds per GiB (user + system, from /proc) are read
around a resumable upload (8 MiB chunks) and a urllib3 download of the object; best of
``--runs``.  CPU time hardly moves with other load on a shared host, where wall-clock rates do,
so it is the figure to compare two versions of the server by.

Usage: python3 benchmarks/bench_server.py [--size-mib 1024] [--runs 5] [--requests 1000]
                                          [--only all|throughput|latency|cpu]
The object lives in a temp dir that is removed at the end; nginx is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import pathlib
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import urllib3

from resumable_media.testing import GCSServer

CHUNK = 8 << 20
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(
    workdir: pathlib.Path, docroot: pathlib.Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    tmp = workdir / "nginx-tmp"
    tmp.mkdir()
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {docroot}/; }}
        location /sink {{ return 308; }}
    }}
}}
"""
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(workdir)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


def curl_download(url: str, size: int) -> float:
    """Seconds for curl to fetch ``url`` (``size`` bytes) into /dev/null."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, got = out.stdout.split()
    if int(float(got)) != size:
        raise RuntimeError(f"curl fetched {got} of {size} bytes from {url}")
    return float(seconds)


def urllib3_download(pool: urllib3.HTTPConnectionPool, path: str, size: int) -> float:
    """Seconds for a urllib3 readinto loop (1 MiB reused buffer) over a kept-alive connection."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    began = time.perf_counter()
    resp = pool.request("GET", path, preload_content=False, decode_content=False)
    got = 0
    while True:
        n = resp.readinto(view)
        if not n:
            break
        got += n
    resp.release_conn()
    elapsed = time.perf_counter() - began
    if got != size or resp.status != 200:
        raise RuntimeError(f"download incomplete: {got} of {size} bytes, status {resp.status}")
    return elapsed


def resumable_upload(endpoint: str, bucket: str, payload: bytes, *, sink_path: str | None) -> float:
    """Seconds for a chunked resumable upload with http.client (bytes payloads, 8 MiB chunks)."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    began = time.perf_counter()
    if sink_path is None:
        conn.request("POST", f"/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name=up")
        resp = conn.getresponse()
        resp.read()
        target = urlsplit(resp.getheader("Location") or "")
        path = f"{target.path}?{target.query}"
    else:
        path = sink_path
    total = len(payload)
    view = memoryview(payload)
    for start in range(0, total, CHUNK):
        end = min(start + CHUNK, total) - 1
        last = end == total - 1
        rng = f"bytes {start}-{end}/{total if last else '*'}"
        conn.request("PUT", path, body=view[start : end + 1], headers={"Content-Range": rng})
        resp = conn.getresponse()
        resp.read()
        expected = 200 if last and sink_path is None else 308
        if resp.status != expected:
            raise RuntimeError(f"unexpected status {resp.status} at {start}")
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


def small_request_latency(
    endpoint: str, bucket: str, count: int, payload_size: int = 64 << 10
) -> dict[str, list[float]]:
    """Seconds per request for ``count`` metadata GETs and ``count`` media uploads of
    ``payload_size`` bytes, each kind over one kept-alive http.client connection."""
    parts = urlsplit(endpoint)
    payload = os.urandom(payload_size)
    results: dict[str, list[float]] = {"metadata GET": [], "64 KiB upload": []}
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    try:
        for i in range(count):
            began = time.perf_counter()
            conn.request("GET", f"/storage/v1/b/{bucket}/o/small")
            resp = conn.getresponse()
            body = resp.read()
            results["metadata GET"].append(time.perf_counter() - began)
            if resp.status != 200 or b'"name"' not in body:
                raise RuntimeError(f"metadata GET {i} answered {resp.status}")
        for i in range(count):
            began = time.perf_counter()
            conn.request(
                "POST",
                f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name=small-{i % 16}",
                body=payload,
                headers={"Content-Type": "application/octet-stream"},
            )
            resp = conn.getresponse()
            resp.read()
            results["64 KiB upload"].append(time.perf_counter() - began)
            if resp.status != 200:
                raise RuntimeError(f"upload {i} answered {resp.status}")
    finally:
        conn.close()
    return results


def percentile(samples: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median_rate(samples: list[float], size: int) -> tuple[float, float]:
    """(median MB/s, best MB/s) from a list of seconds."""
    rates = [size / s / 1e6 for s in samples]
    return statistics.median(rates), max(rates)


def alternate(runs: int, cases: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every case once per round, alternating order between rounds."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            results[name].append(cases[name]())
    return results


def machine_line() -> str:
    """One line describing the machine."""
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"machine: {os.cpu_count()} vCPU {cpu}, Python {sys.version.split()[0]}, shared host"


def throughput(args: argparse.Namespace, workdir: pathlib.Path, server: GCSServer) -> None:
    """The 1 GiB download and upload cases against nginx; prints their table."""
    size = args.size_mib << 20
    nginx: subprocess.Popen[bytes] | None = None
    try:
        block = os.urandom(64 << 20)
        payload = (block * (size // len(block) + 1))[:size]
        source = workdir / "source.bin"
        source.write_bytes(payload)
        server.put_object("bench", "obj", source)
        source.unlink()
        stored = server.object_path("bench", "obj")
        nginx, nginx_url = start_nginx(workdir, stored.parent)
        ours = f"{server.endpoint}/download/storage/v1/b/bench/o/obj?alt=media"
        theirs = f"{nginx_url}/files/{stored.name}"
        pools = {
            "ours": urllib3.HTTPConnectionPool("127.0.0.1", urlsplit(server.endpoint).port),
            "nginx": urllib3.HTTPConnectionPool("127.0.0.1", urlsplit(nginx_url).port),
        }
        our_path = urlsplit(ours)
        down = alternate(
            args.runs,
            {
                "curl ours": lambda: curl_download(ours, size),
                "curl nginx": lambda: curl_download(theirs, size),
                "urllib3 ours": lambda: urllib3_download(
                    pools["ours"], f"{our_path.path}?{our_path.query}", size
                ),
                "urllib3 nginx": lambda: urllib3_download(
                    pools["nginx"], urlsplit(theirs).path, size
                ),
            },
        )
        up = alternate(
            args.runs,
            {
                "upload ours": lambda: resumable_upload(
                    server.endpoint, "bench", payload, sink_path=None
                ),
                "upload nginx sink": lambda: resumable_upload(
                    nginx_url, "bench", payload, sink_path="/sink"
                ),
            },
        )
        if server.object_path("bench", "up").stat().st_size != size:
            raise RuntimeError("uploaded object has the wrong size")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
    print(f"\n## Throughput: {args.size_mib} MiB object, {args.runs} runs\n")
    print("| case | ours MB/s, median (best) | peer MB/s, median (best) | ratio of medians |")
    print("|---|---|---|---|")
    for client in ("curl", "urllib3"):
        o_med, o_best = median_rate(down[f"{client} ours"], size)
        n_med, n_best = median_rate(down[f"{client} nginx"], size)
        print(
            f"| download, {client} | {o_med:.0f} ({o_best:.0f}) | nginx {n_med:.0f} ({n_best:.0f}) "
            f"| {o_med / n_med:.2f}x |"
        )
    o_med, o_best = median_rate(up["upload ours"], size)
    n_med, n_best = median_rate(up["upload nginx sink"], size)
    print(
        f"| resumable upload, 8 MiB chunks, http.client | {o_med:.0f} ({o_best:.0f}) "
        f"| nginx discard {n_med:.0f} ({n_best:.0f}) | {o_med / n_med:.2f}x |"
    )


def latency(args: argparse.Namespace, server: GCSServer) -> None:
    """p50/p99 of small requests over kept-alive connections; prints their table."""
    server.put_object("bench", "small", b"x" * 1024)
    small_request_latency(server.endpoint, "bench", 50)  # warm-up
    samples = small_request_latency(server.endpoint, "bench", args.requests)
    print(f"\n## Small requests: {args.requests} of each, one kept-alive connection\n")
    print("| request | p50 ms | p99 ms | requests/s |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        print(
            f"| {name} | {percentile(values, 50) * 1e3:.2f} | {percentile(values, 99) * 1e3:.2f} "
            f"| {len(values) / sum(values):.0f} |"
        )


def server_cpu(args: argparse.Namespace, workdir: pathlib.Path) -> None:
    """Server CPU seconds per GiB uploaded and downloaded, the server in its own process."""
    size = args.size_mib << 20
    proc = subprocess.Popen(
        [sys.executable, "-m", "resumable_media.testing", "--root", str(workdir / "cpu")],
        stdout=subprocess.PIPE,
        text=True,
    )
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_s() -> float:
        stat = pathlib.Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / tick

    def settled() -> float:
        time.sleep(0.3)  # the MD5 follower may still be finishing
        return cpu_s()

    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        port = urlsplit(endpoint).port
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port)
        made = pool.request("POST", "/storage/v1/b?project=p", json={"name": "bench"})
        if made.status != 200:
            raise RuntimeError(f"bucket creation answered {made.status}")
        block = os.urandom(64 << 20)
        payload = (block * (size // len(block) + 1))[:size]
        per_gib = (1 << 30) / size
        up: list[float] = []
        down: list[float] = []
        for _ in range(args.runs):
            before = cpu_s()
            resumable_upload(endpoint, "bench", payload, sink_path=None)
            up.append((settled() - before) * per_gib)
            before = cpu_s()
            urllib3_download(pool, "/download/storage/v1/b/bench/o/up?alt=media", size)
            down.append((settled() - before) * per_gib)
        pool.close()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\n## Server CPU: {args.size_mib} MiB object, best of {args.runs}\n")
    print("| case | server CPU s/GiB |")
    print("|---|---:|")
    print(f"| resumable upload, 8 MiB chunks, with MD5 | {min(up):.2f} |")
    print(f"| download, urllib3 | {min(down):.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--only", choices=("all", "throughput", "latency", "cpu"), default="all")
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="parent of the temp dir holding the object (default: /dev/shm, so the servers "
        "are measured rather than the VM's disk; both servers use the same file)",
    )
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-server-", dir=args.dir))
    server = GCSServer(root=workdir / "objects").start()
    print(f"# bench_server: objects in {workdir.parent}")
    print(machine_line())
    try:
        if args.only in ("all", "throughput"):
            throughput(args, workdir, server)
        if args.only in ("all", "latency"):
            latency(args, server)
        if args.only in ("all", "cpu"):
            server_cpu(args, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
