"""Benchmark: the ecosystem entry points against the peers, same server, same object.

Cases (one object of ``--size-mib``, default 256 MiB, on a loopback server run as its own
process by ``resumable-media serve``, so client CPU is the benchmark process's alone):

- ``gcs.download_blob`` vs ``Blob.download_to_filename(checksum="crc32c")`` vs
  ``transfer_manager.download_chunks_concurrently`` (google-cloud-storage 3.x, defaults);
- ``gcsx`` fsspec ``get`` vs gcsfs ``get`` (gcsfs defaults: no checksum);
- ``resumable_media.open(url, "rb").read()`` into memory vs ``ParallelDownload`` to a file.

Rounds are interleaved (every case once per round, rotated start); the table gives medians of
wall seconds, MB/s, and client CPU-seconds per GiB (``process_time`` plus reaped children, so
transfer_manager's worker processes count).

Usage: python3 benchmarks/bench_eco.py [--size-mib 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator

MIB = 1 << 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(root: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resumable_media",
            "serve",
            "-q",
            "--port",
            str(port),
            "--root",
            root,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/storage/v1/b?project=p", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * MIB

    from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped]
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.cloud.storage import transfer_manager

    import resumable_media
    from resumable_media import gcs, transports
    from resumable_media.fsspec import GCSXFileSystem
    from resumable_media.parallel import ParallelDownload

    work = tempfile.mkdtemp(prefix="bench-eco-")
    root = os.path.join(work, "server")
    os.makedirs(root)
    try:
        with _server(root) as endpoint:
            os.environ["STORAGE_EMULATOR_HOST"] = endpoint
            client = storage.Client(project="p", credentials=AnonymousCredentials())
            client.create_bucket("bench")
            source = os.path.join(work, "source.bin")
            with open(source, "wb") as f:
                for _ in range(args.size_mib):
                    f.write(os.urandom(MIB))
            blob = client.bucket("bench").blob("object.bin")
            gcs.upload_blob(blob, source)
            out = os.path.join(work, "out.bin")
            media = f"{endpoint}/download/storage/v1/b/bench/o/object.bin?alt=media"
            gcsx = GCSXFileSystem(endpoint=endpoint, skip_instance_cache=True)
            gcsfs = GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)

            def fresh_blob() -> object:
                return client.bucket("bench").blob("object.bin")

            def open_read() -> None:
                with resumable_media.open("gs://bench/object.bin", "rb") as f:
                    assert len(f.read()) == size

            cases: dict[str, Callable[[], object]] = {
                "gcs.download_blob": lambda: gcs.download_blob(fresh_blob(), out),
                "Blob.download_to_filename": lambda: fresh_blob().download_to_filename(  # type: ignore[attr-defined]
                    out, checksum="crc32c"
                ),
                "transfer_manager.download_chunks_concurrently": lambda: (
                    transfer_manager.download_chunks_concurrently(fresh_blob(), out)
                ),
                "gcsx get": lambda: gcsx.get("bench/object.bin", out),
                "gcsfs get": lambda: gcsfs.get("bench/object.bin", out),
                "open().read()": open_read,
                "ParallelDownload to file": lambda: ParallelDownload(media, out).consume(
                    transports.anonymous()
                ),
            }
            names = list(cases)
            wall: dict[str, list[float]] = {n: [] for n in names}
            cpu: dict[str, list[float]] = {n: [] for n in names}
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(out)
                    began_cpu, began = _cpu(), time.perf_counter()
                    cases[name]()
                    wall[name].append(time.perf_counter() - began)
                    cpu[name].append(_cpu() - began_cpu)
                    if name != "open().read()":
                        assert os.path.getsize(out) == size, name
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
            gib = size / (1 << 30)
            print(f"\n{args.size_mib} MiB object, {args.rounds} interleaved rounds, medians\n")
            print("| case | seconds | MB/s | client CPU-s/GiB |")
            print("|---|---:|---:|---:|")
            for name in names:
                seconds = statistics.median(wall[name])
                print(
                    f"| {name} | {seconds:.2f} | {size / seconds / 1e6:.0f} | "
                    f"{statistics.median(cpu[name]) / gib:.2f} |"
                )
            client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
