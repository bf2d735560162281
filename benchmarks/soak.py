"""Soak run: many mixed transfers with a fraction of all requests faulted at random.

Usage::

    python3 benchmarks/soak.py [--count 500] [--fault-rate 0.1] [--workers 4] [--seed 1]

Every transfer kind of the reliability suite (tests/reliability/rel_kinds.py: the four
download and five upload classes, plus ``resumable-media cp`` both ways) moves objects of
mixed sizes (0 B to 3 MiB) through an in-process loopback server.  The library kinds use a
transport that adds ``x-goog-emulator-instructions: <random Retry Test instruction>`` to each
request with probability ``--fault-rate``; the cp kinds (a subprocess, whose requests cannot
be touched) get one random Retry Test instruction half of the time.  Each transfer is judged
like a fault-matrix cell: completed (exact bytes, checksum verified), failed cleanly (a
documented exception, nothing left behind), BAD (undocumented exception or leftovers), or
CORRUPT (success with wrong bytes).  Exit status 1 when anything is BAD or CORRUPT.

Not part of CI (it takes minutes); the retry policy keeps upstream's 0-1 s jitter.
Invariants: one seed reproduces the same sequence of kinds, sizes and bytes (the fault
timing still depends on thread scheduling).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import pathlib
import random
import sys
import tempfile
import threading
import time
from typing import Any

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from rel_kinds import CLI_KINDS, KINDS, Env, Outcome, run_cell

from resumable_media import RetryStrategy
from resumable_media.testing import GCSServer

INSTRUCTIONS = [
    *(f"return-{code}" for code in (408, 429, 500, 502, 503, 504)),
    "return-reset-connection",
    *(f"return-broken-stream-after-{k}K" for k in (0, 1, 256, 1024)),
    "return-503-after-256K",
    "return-503-after-512K",
    "stall-for-2s-after-256K",
    "return-corrupted-data",
]
SIZES = [0, 1, 1000, 256 * 1024 - 1, 256 * 1024, 512 * 1024 + 3, 1 << 20, 3 * (1 << 20) + 7]


class FaultCounter:
    """Thread-safe tally of the faults injected, by instruction."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: collections.Counter[str] = collections.Counter()

    def record(self, instruction: str | None) -> None:
        with self.lock:
            self.requests += 1
            if instruction is not None:
                self.faults[instruction] += 1


COUNTER = FaultCounter()


class FaultySession(requests.Session):
    """A session that asks the server to fault a random fraction of its requests."""

    def __init__(self, rate: float, seed: int) -> None:
        super().__init__()
        self.rate = rate
        self.rng = random.Random(seed)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        instruction = None
        if self.rng.random() < self.rate:
            instruction = self.rng.choice(INSTRUCTIONS)
            headers = dict(kwargs.get("headers") or {})
            headers["x-goog-emulator-instructions"] = instruction
            kwargs["headers"] = headers
        COUNTER.record(instruction)
        return super().request(method, url, *args, **kwargs)


class FaultyFactory:
    """A picklable zero-argument factory of :class:`FaultySession` (one seed per session)."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.seed = seed
        self.made = 0

    def __call__(self) -> FaultySession:
        self.made += 1
        return FaultySession(self.rate, self.seed * 1000 + self.made)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    retry = RetryStrategy(initial_delay=0.05, max_sleep=0.5, max_retries=10)
    server = GCSServer().start()
    bucket = "soak"
    server.create_bucket(bucket)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="rm-soak-"))
    library = [k for k in KINDS if k not in CLI_KINDS]
    plan = []
    for index in range(args.count):
        kind = rng.choice(CLI_KINDS) if rng.random() < args.cli_share else rng.choice(library)
        plan.append((index, kind, rng.choice(SIZES), rng.random()))

    def one(index: int, kind: str, size: int, draw: float) -> tuple[str, int, Outcome, float]:
        celldir = workdir / f"t{index}"
        celldir.mkdir()
        factory = FaultyFactory(args.fault_rate, args.seed * 100_000 + index)
        env = Env(server.endpoint, bucket, celldir, retry, (10.0, 1.0), server, factory)
        data = random.Random(index).randbytes(size)
        instructions = None
        if kind in CLI_KINDS and draw < 0.5:
            method = "storage.objects.get" if kind.startswith("cp↓") else "storage.objects.insert"
            instructions = {method: [INSTRUCTIONS[int(draw * 1000) % len(INSTRUCTIONS)]]}
        began = time.monotonic()
        outcome = run_cell(env, kind, f"o{index}", data, instructions, server.create_retry_test)
        return kind, size, outcome, time.monotonic() - began

    began = time.monotonic()
    results = []
    try:
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            for result in pool.map(lambda p: one(*p), plan):
                results.append(result)
                if len(results) % 50 == 0:
                    print(f"  {len(results)}/{args.count} done", flush=True)
    finally:
        server.stop()
    elapsed = time.monotonic() - began
    return report(results, elapsed, args)


def report(results: list[tuple[str, int, Outcome, float]], elapsed: float, args: Any) -> int:
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for kind, _, outcome, _ in results:
        by_kind[kind][outcome.status] += 1
    statuses = ("ok", "failed", "BAD", "CORRUPT")
    labels = {"ok": "completed", "failed": "failed cleanly", "BAD": "BAD", "CORRUPT": "corrupted"}
    print(
        f"\nsoak: {len(results)} transfers, fault rate {args.fault_rate:.0%} of requests, "
        f"seed {args.seed}, {args.workers} workers, {elapsed:.0f} s"
    )
    print(
        f"requests seen by the faulting transports: {COUNTER.requests}, "
        f"faulted: {sum(COUNTER.faults.values())}"
    )
    print(f"{'kind':18}" + "".join(f"{labels[s]:>16}" for s in statuses))
    totals: collections.Counter[str] = collections.Counter()
    for kind in KINDS:
        counts = by_kind.get(kind, collections.Counter())
        totals.update(counts)
        print(f"{kind:18}" + "".join(f"{counts[s]:>16}" for s in statuses))
    print(f"{'total':18}" + "".join(f"{totals[s]:>16}" for s in statuses))
    shown = 0
    for kind, size, outcome, seconds in results:
        if outcome.status != "ok" and shown < 25:
            shown += 1
            print(
                f"  {outcome.status:7} {kind:16} {size:>8} B {seconds:5.1f}s "
                f"{outcome.detail} {outcome.error[:160]}"
            )
    return 1 if totals["BAD"] or totals["CORRUPT"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cli-share", type=float, default=0.06, help="fraction of cp transfers")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
