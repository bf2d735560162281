"""Benchmark: many files through ``cp -r`` against rclone and obstore, both ways, one server.

One loopback server (``resumable-media serve``, its own process) is the peer of every tool.
Each round runs every case once, interleaved (ours, rclone, obstore, ...), and the table
gives the median of the rounds: objects/s, MB/s, and the client's own CPU (user + system,
from ``wait4``) per object.  Every case is a subprocess, so its CPU is its own: obstore runs
in a child Python with 16 concurrent requests (as its users would with asyncio).

Usage: python3 benchmarks/bench_small_files.py [--count 2000] [--size 64KiB] [--rounds 5]
       [--jobs 8] [--cases ours rclone obstore] [--jobs 4 8 16 32]
       [--baseline OLD/src]  (adds "base" cases: our cp from another source tree, e.g. a
       ``git archive`` of an earlier commit, through PYTHONPATH; same server, same rounds)
Prints a markdown table.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BUCKET = "small"

_OBSTORE = r"""
import asyncio, os, sys
from obstore.store import GCSStore
import obstore
endpoint, bucket, direction, prefix, local, conc = sys.argv[1:7]
store = GCSStore(bucket, base_url=endpoint, bearer_token="bench",
                 client_options={"allow_http": True})
async def main():
    sem = asyncio.Semaphore(int(conc))
    if direction == "down":
        names = [m["path"] for batch in obstore.list(store, prefix) for m in batch]
        async def one(name):
            async with sem:
                data = await (await obstore.get_async(store, name)).bytes_async()
            path = os.path.join(local, os.path.relpath(name, prefix))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        await asyncio.gather(*(one(n) for n in names))
    else:
        files = []
        for d, _, fs in os.walk(local):
            files += [os.path.join(d, f) for f in fs]
        async def one(path):
            with open(path, "rb") as f:
                data = f.read()
            async with sem:
                await obstore.put_async(store, prefix + "/" + os.path.relpath(path, local), data)
        await asyncio.gather(*(one(p) for p in files))
asyncio.run(main())
"""


def _size(text: str) -> int:
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "": 1}
    upper = text.upper()
    for unit in ("KIB", "MIB", "GIB", ""):
        if upper.endswith(unit) and upper[: len(upper) - len(unit)].isdigit():
            return int(upper[: len(upper) - len(unit)]) * units[unit]
    raise argparse.ArgumentTypeError(f"not a size: {text}")


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv``; return (wall seconds, CPU seconds of the child)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(root: str) -> tuple[subprocess.Popen[bytes], str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resumable_media",
            "serve",
            "--port",
            "0",
            "--quiet",
            "--root",
            root,
        ],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    url = server.stdout.readline().decode().strip()
    request = urllib.request.Request(
        f"{url}/storage/v1/b",
        data=json.dumps({"name": BUCKET}).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request).read()
    return server, url


def _make_tree(path: str, count: int, size: int) -> None:
    per_dir = 100
    for i in range(count):
        directory = os.path.join(path, f"d{i // per_dir:03d}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"f{i:06d}.bin"), "wb") as f:
            f.write(os.urandom(size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=_size, default=64 << 10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, nargs="+", default=[8], help="our -j values")
    parser.add_argument("--transfers", type=int, default=16, help="rclone/obstore concurrency")
    parser.add_argument("--cases", nargs="+", default=["ours", "rclone", "obstore"])
    parser.add_argument("--directions", nargs="+", default=["down", "up"])
    parser.add_argument("--ours-extra", default="", help="extra arguments for our cp")
    parser.add_argument("--baseline", help="a src/ directory of an earlier version (base cases)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-small-", dir=os.environ.get("BENCH_DIR"))
    server, url = _start_server(os.path.join(work, "server"))
    env = {**os.environ, "STORAGE_EMULATOR_HOST": url}
    env.update(
        RCLONE_CONFIG_LOOP_TYPE="google cloud storage",
        RCLONE_CONFIG_LOOP_ENDPOINT=f"{url}/storage/v1/",
        RCLONE_CONFIG_LOOP_ANONYMOUS="true",
        RCLONE_CONFIG_LOOP_BUCKET_POLICY_ONLY="true",
    )
    ours = [sys.executable, "-m", "resumable_media", "cp", "-r", "-q", *args.ours_extra.split()]
    rclone = [
        shutil.which("rclone") or "rclone",
        "--config",
        os.devnull,
        "--transfers",
        str(args.transfers),
        "--checkers",
        str(args.transfers),
        "-q",
    ]
    source = os.path.join(work, "src")
    _make_tree(source, args.count, args.size)
    # The download source: one prefix uploaded once by our own cp.
    _run([*ours, f"{source}/*", f"gs://{BUCKET}/seed/"], env)

    cases: list[tuple[str, str]] = []
    if args.baseline and "base" not in args.cases:
        args.cases.insert(0, "base")
    for case in args.cases:
        for direction in args.directions:
            if case in ("ours", "base"):
                cases += [(f"{case} -j {j}", direction) for j in args.jobs]
            else:
                cases.append((case, direction))
    times: dict[tuple[str, str], list[tuple[float, float, float]]] = {c: [] for c in cases}
    serial = 0
    try:
        for _round in range(args.rounds):
            for name, direction in cases:
                serial += 1
                local = os.path.join(work, f"out{serial}")
                prefix = f"up{serial}"
                tool = name.split()[0]
                run_env = env
                if tool == "base":
                    run_env = {**env, "PYTHONPATH": os.path.abspath(args.baseline)}
                if tool in ("ours", "base"):
                    jobs = ["-j", name.split()[-1]]
                    argv = (
                        [*ours, *jobs, f"gs://{BUCKET}/seed/*", local + "/"]
                        if direction == "down"
                        else [*ours, *jobs, f"{source}/*", f"gs://{BUCKET}/{prefix}/"]
                    )
                    if direction == "down":
                        os.makedirs(local)
                elif tool == "rclone":
                    argv = (
                        [*rclone, "copy", f"loop:{BUCKET}/seed", local]
                        if direction == "down"
                        else [*rclone, "copy", source, f"loop:{BUCKET}/{prefix}"]
                    )
                else:
                    os.makedirs(local, exist_ok=True)
                    where = "seed" if direction == "down" else prefix
                    argv = [sys.executable, "-c", _OBSTORE, url, BUCKET, direction, where]
                    argv += [local if direction == "down" else source, str(args.transfers)]
                subprocess.run(["sync"], check=False)
                before = _cpu_of(server.pid)
                wall, cpu = _run(argv, run_env)
                times[(name, direction)].append((wall, cpu, _cpu_of(server.pid) - before))
                shutil.rmtree(local, ignore_errors=True)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    total_mb = args.count * args.size / 1e6
    print(
        f"{args.count} x {args.size} B, median of {args.rounds} interleaved rounds, "
        f"cores={os.cpu_count()}"
    )
    print(
        "| case | direction | objects/s | MB/s | client CPU ms/object | server CPU ms/object "
        "| wall s |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, direction), samples in times.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        served = statistics.median(s[2] for s in samples)
        print(
            f"| {name} | {direction} | {args.count / wall:.0f} | {total_mb / wall:.1f} "
            f"| {cpu / args.count * 1000:.2f} | {served / args.count * 1000:.2f} | {wall:.2f} |"
        )


if __name__ == "__main__":
    main()
