#!/usr/bin/env python3
"""Compare two installs of resumable-media on one server, interleaved: a before/after check.

Each install is a Python interpreter (``--python LABEL=PATH``, e.g. a venv of an older
commit).  One loopback server (this install's ``testing.GCSServer``, in its own process,
upload MD5 off so uploads measure the client) serves every case.  Each round runs every
case once for every install, alternating the order, and each run is a child process, so its
CPU (user + system, from ``wait4``, start-up included) is its own; the wall time is the
transfer's alone, taken after the imports.  Only the public API that both installs
share is used: ``ParallelDownload(url, file).consume(factory)``,
``ParallelUpload(url, file).transmit(factory, type)``,
``PipelinedUpload(url, chunk).transmit(session, file, resource, type)``, the seed's
``Download``/``ChunkedDownload``/``ResumableUpload``.  Every download is checked
byte-for-byte against the object.

Usage::

    python3 benchmarks/bench_versions.py --python before=/tmp/before/.venv/bin/python \\
        --python after=.venv/bin/python --size 256MiB --rounds 5

Prints a markdown table (median wall seconds, GB/s, client CPU-s/GiB, after/before ratio).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import sys, time
case, endpoint, bucket, local = sys.argv[1:5]
from resumable_media import transports
media = f"{endpoint}/download/storage/v1/b/{bucket}/o/big?alt=media"
resumable = f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
from resumable_media.parallel import ParallelDownload, ParallelUpload, PipelinedUpload
from resumable_media.requests import ChunkedDownload, Download, ResumableUpload
began = time.monotonic()  # after the imports: the transfer alone is timed
if case == "parallel_download":
    ParallelDownload(media, local).consume(transports.anonymous())
elif case == "download":
    with open(local, "wb") as out, transports.anonymous()() as session:
        Download(media, stream=out, checksum="crc32c").consume(session)
elif case == "chunked":
    with open(local, "wb") as out, transports.anonymous()() as session:
        download = ChunkedDownload(media, 8 << 20, out, checksum="crc32c")
        while not download.finished:
            download.consume_next_chunk(session)
elif case == "parallel_upload":
    ParallelUpload(f"{endpoint}/{bucket}/up-parallel", local).transmit(
        transports.anonymous(), "application/octet-stream")
elif case == "pipelined":
    with transports.anonymous()() as session, open(local, "rb") as source:
        PipelinedUpload(resumable, 8 << 20).transmit(
            session, source, {"name": "up-pipelined"}, "application/octet-stream")
elif case == "resumable":
    with transports.anonymous()() as session, open(local, "rb") as source:
        upload = ResumableUpload(resumable, 8 << 20, checksum="crc32c")
        upload.initiate(session, source, {"name": "up-resumable"}, "application/octet-stream")
        while not upload.finished:
            upload.transmit_next_chunk(session)
else:
    raise SystemExit(f"unknown case {case}")
print(time.monotonic() - began)
"""

DOWNLOADS = ("parallel_download", "download", "chunked")
UPLOADS = ("parallel_upload", "pipelined", "resumable")


def _size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def _run(python: str, case: str, endpoint: str, local: str) -> tuple[float, float]:
    """One child run: (wall seconds it measured, its user+system CPU seconds)."""
    child = subprocess.Popen(
        [python, "-c", _CHILD, case, endpoint, "bench", local],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tempfile.gettempdir(),  # never import a source tree's package by accident
    )
    _, status, usage = os.wait4(child.pid, 0)
    out = child.stdout.read().decode() if child.stdout else ""
    err = child.stderr.read().decode() if child.stderr else ""
    if status != 0:
        raise SystemExit(f"{python} {case} failed:\n{err[-2000:]}")
    return float(out.strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", required=True, help="LABEL=INTERPRETER")
    parser.add_argument("--size", type=_size, default=256 << 20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=[*DOWNLOADS, *UPLOADS])
    args = parser.parse_args()
    installs = [tuple(item.split("=", 1)) for item in args.python]
    from resumable_media.testing import GCSServer

    work = tempfile.mkdtemp(prefix="bench-versions-")
    data = os.urandom(args.size)
    digest = hashlib.sha256(data).hexdigest()
    source = os.path.join(work, "source.bin")
    with open(source, "wb") as f:
        f.write(data)
    del data
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with GCSServer(root=os.path.join(work, "server"), upload_md5=False) as server:
        server.create_bucket("bench")
        with open(source, "rb") as f:
            server.put_object("bench", "big", f.read())
        for round_number in range(args.rounds):
            order = installs if round_number % 2 == 0 else installs[::-1]
            for case in args.cases:
                for label, python in order:
                    local = source if case in UPLOADS else os.path.join(work, f"down-{label}")
                    wall, cpu = _run(python, case, server.endpoint, local)
                    if case in DOWNLOADS:
                        with open(local, "rb") as f:
                            if hashlib.sha256(f.read()).hexdigest() != digest:
                                raise SystemExit(f"{label} {case}: wrong bytes")
                        os.unlink(local)
                    times.setdefault((label, case), []).append((wall, cpu))
                    print(
                        f"round {round_number} {label:>8} {case:<18} {wall:6.3f} s", file=sys.stderr
                    )
                    time.sleep(0.2)
    gib = args.size / (1 << 30)
    print(
        f"| case | {' | '.join(f'{label} s (GB/s, CPU-s/GiB)' for label, _ in installs)} | ratio |"
    )
    print("|---|" + "---:|" * (len(installs) + 1))
    for case in args.cases:
        cells, walls = [], []
        for label, _ in installs:
            samples = times[(label, case)]
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            walls.append(wall)
            cells.append(f"{wall:.3f} ({args.size / wall / 1e9:.2f}, {cpu / gib:.2f})")
        ratio = walls[0] / walls[-1]
        print(f"| {case} | {' | '.join(cells)} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
