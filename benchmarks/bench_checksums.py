#!/usr/bin/env python3
# CRC32C / MD5 hashing and combine benchmarks (pytest-benchmark).
#
# Invariants: every backend hashes the same data in the same run and its
# result is checked against google-crc32c before timing; numbers are only
# reported as medians and as ratios against peers from the same run.
"""Checksum benchmarks: native vs google-crc32c vs crcmod vs hashlib md5.

Run the suite::

    python3 -m pytest benchmarks/bench_checksums.py --benchmark-only

or run it and print a markdown table of medians and ratios::

    python3 benchmarks/bench_checksums.py

or time every case round-robin (robust on a noisy machine), 15 rounds::

    python3 benchmarks/bench_checksums.py --interleaved 15

Measure the GIL-release trade-off behind the native module's threshold::

    python3 benchmarks/bench_checksums.py --gil
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import crcmod.predefined
import google_crc32c
import pytest

from resumable_media import checksums

MiB = 1 << 20
SIZE = 64 * MiB
SLICE = 1 * MiB
PARTS = 1000

crcmod_fun = crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def _native() -> Any:
    try:
        from resumable_media import _crc32c
    except ImportError:
        pytest.skip("native extension not built")
    return _crc32c


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture(scope="module")
def mapped(data: bytes) -> Iterator[mmap.mmap]:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "blob"
        path.write_bytes(data)
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            yield m


def _md5(buf: Any) -> bytes:
    return hashlib.md5(buf, usedforsecurity=False).digest()


def _google(buf: Any) -> int:
    # google-crc32c accepts only bytes: memoryview slices must be copied.
    return int(google_crc32c.value(buf if type(buf) is bytes else bytes(buf)))


def _hashers() -> dict[str, Callable[[Any], object]]:
    return {
        "native": lambda buf: _native().crc32c(buf),
        "google-crc32c": _google,
        "crcmod": crcmod_fun,
        "md5": _md5,
    }


HASHERS = ["native", "google-crc32c", "crcmod", "md5"]
ROUNDS = {"native": 15, "google-crc32c": 15, "crcmod": 3, "md5": 5}


@pytest.mark.parametrize("name", HASHERS)
def test_bytes_64mib(benchmark: Any, data: bytes, name: str) -> None:
    func = _hashers()[name]
    if name != "md5":
        assert func(data) == google_crc32c.value(data)
    benchmark.group = "hash 64 MiB bytes"
    benchmark.extra_info["bytes"] = SIZE
    benchmark.pedantic(func, args=(data,), rounds=ROUNDS[name], warmup_rounds=1)


@pytest.mark.parametrize("name", HASHERS)
def test_mmap_slices_1mib(benchmark: Any, mapped: mmap.mmap, data: bytes, name: str) -> None:
    func = _hashers()[name]
    view = memoryview(mapped)
    slices = [view[i : i + SLICE] for i in range(0, SIZE, SLICE)]

    def run() -> None:
        for piece in slices:
            func(piece)

    try:
        if name != "md5":
            assert func(slices[3]) == google_crc32c.value(data[3 * SLICE : 4 * SLICE])
        benchmark.group = "hash 64 MiB mmap as 1 MiB memoryview slices"
        benchmark.extra_info["bytes"] = SIZE
        benchmark.pedantic(run, rounds=ROUNDS[name], warmup_rounds=1)
    finally:
        slices.clear()
        view.release()


def _parts() -> list[tuple[int, int]]:
    rng = random.Random(2024)
    return [(rng.getrandbits(32), rng.randrange(1, 64 * MiB)) for _ in range(PARTS)]


COMBINERS: dict[str, Callable[[list[tuple[int, int]]], int]] = {
    "native combine_many": lambda parts: _native().crc32c_combine_many(parts),
    "native combine loop": lambda parts: _fold(_native().crc32c_combine, parts),
    "python combine loop": lambda parts: _fold(checksums.backend("python").crc32c_combine, parts),
}


def _fold(combine: Callable[[int, int, int], int], parts: list[tuple[int, int]]) -> int:
    total = 0
    for crc, length in parts:
        total = combine(total, crc, length)
    return total


@pytest.mark.parametrize("name", list(COMBINERS))
def test_combine_1000(benchmark: Any, name: str) -> None:
    parts = _parts()
    expected = _fold(checksums.backend("python").crc32c_combine, parts)
    assert COMBINERS[name](parts) == expected
    benchmark.group = "combine 1,000 chunk CRCs (random lengths 1 B - 64 MiB)"
    benchmark.pedantic(COMBINERS[name], args=(parts,), rounds=20, warmup_rounds=2)


# --------------------------------------------------------------------------- #
# Script mode: run the suite and print medians + ratios; or measure the GIL.
# --------------------------------------------------------------------------- #


def machine() -> str:
    """Describe the CPU this runs on (model, family/model, vCPUs), Python and libraries."""
    model = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in info:
        model = f"{info['model name']} (family {info.get('cpu family')} model {info.get('model')})"
    kernel = getattr(_native_or_none(), "kernel", "n/a")
    return (
        f"{model}, {os.cpu_count()} vCPU (shared, noisy); Python {platform.python_version()}; "
        f"native kernel {kernel}; google-crc32c {google_crc32c.implementation}"
    )


def _native_or_none() -> Any:
    try:
        from resumable_media import _crc32c
    except ImportError:
        return None
    return _crc32c


def _report(path: pathlib.Path) -> str:
    benches = json.loads(path.read_text())["benchmarks"]
    by_group: dict[str, dict[str, float]] = {}
    for b in benches:
        name = b["params"]["name"] if b.get("params") else b["name"]
        by_group.setdefault(b["group"], {})[name] = b["stats"]["median"]
    lines = [f"Machine: {machine()}", ""]
    lines.append("| Case | Median | Throughput | native is x faster |")
    lines.append("|---|---|---|---|")
    for group, medians in by_group.items():
        reference = next((v for k, v in medians.items() if k.startswith("native")), None)
        for name, median in medians.items():
            rate = f"{SIZE / median / 1e6:,.0f} MB/s" if group.startswith("hash") else "-"
            ratio = f"{median / reference:.2f}x" if reference else "-"
            lines.append(f"| {group}: {name} | {median * 1e3:.3f} ms | {rate} | {ratio} |")
    return "\n".join(lines)


def _spin(stop: threading.Event) -> None:
    """Keep a Python thread busy (wanting the GIL) until ``stop`` is set."""
    count = 0
    while not stop.is_set():
        count += 1


def _gil_table() -> str:
    """Measure what releasing the GIL buys (2 hashing threads) and costs (a busy peer)."""
    native = _native_or_none()
    if native is None:
        return "native extension not built"
    buf = memoryview(bytearray(os.urandom(4 * MiB)))  # cache-resident
    total = 512 * MiB  # per thread: long against the 5 ms GIL switch interval
    modes = {"released": 0, "held": 1 << 62}

    def work(size: int) -> None:
        for _ in range(total // len(buf)):
            for i in range(0, len(buf), size):
                native.crc32c(buf[i : i + size])

    def timed(size: int, threads: int, spin: bool = False) -> float:
        pool = [threading.Thread(target=work, args=(size,)) for _ in range(threads)]
        stop = threading.Event()
        spinner = threading.Thread(target=_spin, args=(stop,))
        if spin:
            spinner.start()
        start = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        stop.set()
        if spin:
            spinner.join()
        return elapsed

    lines = [
        f"Machine: {machine()}",
        "",
        "| Call size | 1 thread GB/s, released / held | 2 threads vs 1, released / held "
        "| 1 thread beside a busy Python thread GB/s, released / held |",
        "|---|---|---|---|",
    ]
    old = native.gil_release_threshold
    try:
        for size in (4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20):
            runs: dict[tuple[str, str], list[float]] = {}
            for _ in range(5):  # interleaved, so both modes see the same noise
                for mode, threshold in modes.items():
                    native._set_gil_release_threshold(threshold)
                    for case, threads, spin in (
                        ("one", 1, False),
                        ("two", 2, False),
                        ("spin", 1, True),
                    ):
                        runs.setdefault((mode, case), []).append(timed(size, threads, spin))
            med = {key: statistics.median(values) for key, values in runs.items()}
            rate = {
                key: total * (2 if key[1] == "two" else 1) / value / 1e9
                for key, value in med.items()
            }
            lines.append(
                f"| {size >> 10} KiB | {rate['released', 'one']:.1f} / {rate['held', 'one']:.1f} "
                f"| {rate['released', 'two'] / rate['released', 'one']:.2f}x / "
                f"{rate['held', 'two'] / rate['held', 'one']:.2f}x "
                f"| {rate['released', 'spin']:.2f} / {rate['held', 'spin']:.2f} |"
            )
    finally:
        native._set_gil_release_threshold(old)
    return "\n".join(lines)


def _each(func: Callable[[Any], object], pieces: list[memoryview]) -> None:
    for piece in pieces:
        func(piece)


def _interleaved(rounds: int) -> str:
    """Time all cases round-robin; report medians and median per-round ratios to native.

    On a shared, noisy machine a burst of load hits whichever case is running;
    pairing each case with the native run of the same round cancels most of it.
    """
    data = os.urandom(SIZE)
    hashers = _hashers()
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "blob"
        path.write_bytes(data)
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            view = memoryview(m)
            slices = [view[i : i + SLICE] for i in range(0, SIZE, SLICE)]
            cases: dict[tuple[str, str], Callable[[], object]] = {}
            for name in HASHERS:
                cases["hash 64 MiB bytes", name] = functools.partial(hashers[name], data)
                cases["hash 1 MiB memoryview slices of a 64 MiB mmap", name] = functools.partial(
                    _each, hashers[name], slices
                )
            parts = _parts()
            for name, combiner in COMBINERS.items():
                cases["combine 1,000 CRCs", name] = functools.partial(combiner, parts)
            try:
                for _ in range(rounds + 1):  # the first round is a warm-up
                    for key, case in cases.items():
                        start = time.perf_counter()
                        case()
                        times.setdefault(key, []).append(time.perf_counter() - start)
            finally:
                slices.clear()
                view.release()
    lines = [
        f"Machine: {machine()}",
        f"Interleaved, {rounds} rounds; N = median over rounds of (time / native's time).",
        "",
        "| Case | Median | Throughput | native is N x faster |",
        "|---|---|---|---|",
    ]
    for (group, name), values in sorted(times.items(), key=lambda item: item[0][0]):
        values = values[1:]
        native = next(v[1:] for (g, n), v in times.items() if g == group and n.startswith("native"))
        ratio = statistics.median(t / n for t, n in zip(values, native, strict=True))
        median = statistics.median(values)
        rate = f"{SIZE / median / 1e6:,.0f} MB/s" if group.startswith("hash") else "-"
        lines.append(f"| {group}: {name} | {median * 1e3:.3f} ms | {rate} | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the GIL table (--gil), the interleaved table (--interleaved [ROUNDS]),
    or run the pytest-benchmark suite and print its medians and ratios."""
    if "--gil" in argv:
        sys.stdout.write(_gil_table() + "\n")
        return 0
    if "--interleaved" in argv:
        rest = argv[argv.index("--interleaved") + 1 :]
        sys.stdout.write(_interleaved(int(rest[0]) if rest else 15) + "\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "bench.json"
        rc = pytest.main(
            [
                __file__,
                "--benchmark-only",
                f"--benchmark-json={out}",
                "-q",
                "-p",
                "no:cacheprovider",
            ]
        )
        if rc != 0:
            return int(rc)
        sys.stdout.write(_report(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
