"""Benchmark: the ecosystem entry points against the peers, same server, same object.

Cases (one object of ``--size-mib``, default 256 MiB, on a loopback server run as its own
process by ``resumable-media serve``, so client CPU is the benchmark process's alone):

- ``gcs.download_blob`` vs ``Blob.download_to_filename(checksum="crc32c")`` vs
  ``transfer_manager.download_chunks_concurrently`` (google-cloud-storage 3.x, defaults);
- ``gcsx`` fsspec ``get`` vs gcsfs ``get`` (gcsfs defaults: no checksum);
- ``resumable_media.open(url, "rb").read()`` into memory vs ``ParallelDownload`` to a file.

With ``--upload``: ``gcs.upload_blob`` (a parallel XML multipart upload for a large file) vs
``Blob.upload_from_filename(checksum="crc32c")`` vs
``transfer_manager.upload_chunks_concurrently(checksum="crc32c")`` (defaults otherwise),
each stored object's CRC32C checked against the source's after every run.

With ``--cat``: ``resumable-media cat`` and ``cp gs://… -`` of the object to /dev/null (each a
fresh CLI process); with ``--old-src DIR`` (repeatable) also ``cat`` of another checkout's
``src`` (e.g. ``git archive 41b99d8 src | tar -x -C /tmp/old`` plus the built ``_crc32c``
extension copied in), run by the same interpreter with ``PYTHONPATH=DIR``.  ``--only`` picks
cases by name.

Rounds are interleaved (every case once per round, rotated start); the table gives medians of
wall seconds, MB/s, and client CPU-seconds per GiB (``process_time`` plus reaped children, so
transfer_manager's worker processes count).

Usage: python3 benchmarks/bench_eco.py [--size-mib 256] [--rounds 5] [--only CASE,...]
       [--upload | --cat [--old-src DIR]...]
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
    parser.add_argument("--upload", action="store_true", help="the upload cases instead")
    parser.add_argument("--cat", action="store_true", help="the CLI's cat and cp - cases instead")
    parser.add_argument(
        "--old-src",
        action="append",
        default=[],
        help="with --cat: also cat from this checkout's src (repeatable)",
    )
    parser.add_argument(
        "--only", help="comma-separated case names to run (default: every case of the mode)"
    )
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
            if args.upload:
                _upload_rounds(args, client, source, str(blob.crc32c))
                client.close()
                return
            if args.cat:
                _cat_rounds(args, endpoint)
                client.close()
                return
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

            def check(name: str) -> None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(out)

            def checked(name: str) -> None:
                if name != "open().read()":
                    assert os.path.getsize(out) == size, name

            _rounds(args, cases, check, checked)
            client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rounds(
    args: argparse.Namespace,
    cases: dict[str, Callable[[], object]],
    before: Callable[[str], None],
    after: Callable[[str], None],
) -> None:
    """Run every case once per round (rotated start) and print the medians' table."""
    size = args.size_mib * MIB
    names = list(cases)
    if args.only:
        wanted = [name.strip() for name in args.only.split(",")]
        unknown = [name for name in wanted if name not in cases]
        if unknown:
            raise SystemExit(f"unknown cases {unknown}; the cases are {names}")
        names = wanted
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            before(name)
            began_cpu, began = _cpu(), time.perf_counter()
            cases[name]()
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(_cpu() - began_cpu)
            after(name)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    gib = size / (1 << 30)
    print(f"\n{args.size_mib} MiB object, {args.rounds} interleaved rounds, medians\n")
    print("| case | seconds | MB/s | client CPU-s/GiB | runs (s) |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        seconds = statistics.median(wall[name])
        runs = ", ".join(f"{w:.2f}" for w in wall[name])
        print(
            f"| {name} | {seconds:.2f} | {size / seconds / 1e6:.0f} | "
            f"{statistics.median(cpu[name]) / gib:.2f} | {runs} |"
        )


def _upload_rounds(args: argparse.Namespace, client: object, source: str, crc32c: str) -> None:
    from google.cloud.storage import transfer_manager

    from resumable_media import gcs

    bucket = client.bucket("bench")  # type: ignore[attr-defined]
    target = "uploaded.bin"
    cases: dict[str, Callable[[], object]] = {
        "gcs.upload_blob": lambda: gcs.upload_blob(bucket.blob(target), source),
        "Blob.upload_from_filename": lambda: bucket.blob(target).upload_from_filename(
            source, checksum="crc32c"
        ),
        "transfer_manager.upload_chunks_concurrently": lambda: (
            transfer_manager.upload_chunks_concurrently(
                source, bucket.blob(target), checksum="crc32c"
            )
        ),
    }

    def before(name: str) -> None:
        with contextlib.suppress(Exception):
            bucket.blob(target).delete()

    def after(name: str) -> None:
        stored = bucket.get_blob(target)
        assert stored is not None and stored.size == args.size_mib * MIB, name
        assert stored.crc32c == crc32c, name

    _rounds(args, cases, before, after)


def _cat_rounds(args: argparse.Namespace, endpoint: str) -> None:
    """``cat`` and ``cp … -`` to /dev/null, each a fresh CLI process (CPU: the child's)."""
    url = "gs://bench/object.bin"

    def cli(*argv: str, src: str | None = None) -> Callable[[], object]:
        env = dict(os.environ, STORAGE_EMULATOR_HOST=endpoint)
        if src is not None:
            env["PYTHONPATH"] = src

        def run() -> None:
            with open(os.devnull, "wb") as null:
                subprocess.run(
                    [sys.executable, "-m", "resumable_media", *argv],
                    stdout=null,
                    env=env,
                    check=True,
                )

        return run

    cases: dict[str, Callable[[], object]] = {
        "cat": cli("cat", url),
        "cp gs://… -": cli("cp", url, "-"),
    }
    for src in args.old_src:
        cases[f"cat ({src})"] = cli("cat", url, src=src)
    _rounds(args, cases, lambda name: None, lambda name: None)


if __name__ == "__main__":
    main()
