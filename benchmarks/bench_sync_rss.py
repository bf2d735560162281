"""Benchmark: peak RSS of ``resumable-media sync`` against the number of objects (streamed listing).

For each count N the loopback server (in this process) is filled with N zero-byte objects
through its store helper (no HTTP), then ``sync --dry-run gs://bucket/pN DIR`` runs as a
subprocess into an empty directory: it lists every object, compares, and prints one "would
copy" line per object.  Its peak RSS is the child's own ``VmHWM`` (``/proc/self/status`` at
exit).  For ``--real`` counts (default 10k) the same sync also runs for real (N zero-byte
downloads), then local->gs into a fresh prefix, then again with nothing changed; wall times
are reported for those.

Usage: python3 benchmarks/bench_sync_rss.py [--counts 1000 10000 50000 200000] [--real 10000]
Prints a markdown table and the machine.  Not part of the test suite (200k takes minutes).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

from resumable_media.testing import GCSServer

BUCKET = "rss"


def _fill(server: GCSServer, prefix: str, count: int) -> float:
    started = time.monotonic()
    for i in range(count):
        # 100 "directories" of count/100 files: a realistic tree, not one flat listing.
        server.put_object(BUCKET, f"{prefix}/d{i % 100:02d}/f{i:07d}", b"")
    return time.monotonic() - started


# The child reports its own high-water RSS: wait4's ru_maxrss would include the RSS this
# (server-holding) parent had when it forked the child, which Linux carries across exec.
_WRAPPER = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('RSS-HWM ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "from resumable_media.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """Run the command; return (exit code, wall seconds, peak RSS in KiB)."""
    started = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - started
    err = proc.stderr.decode(errors="replace")
    peaks = [int(line.split()[1]) for line in err.splitlines() if line.startswith("RSS-HWM ")]
    if proc.returncode != 0 or not peaks:
        sys.stderr.write(err[-2000:])
    return proc.returncode, elapsed, peaks[-1] if peaks else -1


def _sync(server: GCSServer, *args: str) -> list[str]:
    return [sys.executable, "-c", _WRAPPER, "sync", "--endpoint", server.endpoint, *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 50000, 200000])
    parser.add_argument("--real", type=int, nargs="*", default=[10000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rm-rss-") as tmp, GCSServer() as server:
        env = {**os.environ, "RESUMABLE_MEDIA_STATE_DIR": os.path.join(tmp, "state")}
        env.pop("STORAGE_EMULATOR_HOST", None)
        server.create_bucket(BUCKET)
        for count in sorted(set(args.counts) | set(args.real)):
            prefix = f"p{count}"
            fill_s = _fill(server, prefix, count)
            target = os.path.join(tmp, f"down{count}")
            code, wall, rss = _run(
                _sync(server, "--dry-run", f"gs://{BUCKET}/{prefix}", target), env
            )
            row = {
                "objects": count,
                "fill_s": fill_s,
                "dry_run_s": wall,
                "rss_kib": rss,
                "ok": code,
            }
            if count in args.real:
                code, wall, rss_real = _run(_sync(server, f"gs://{BUCKET}/{prefix}", target), env)
                row.update(down_s=wall, down_rss_kib=rss_real, ok=row["ok"] or code)
                up = f"gs://{BUCKET}/up{count}"
                code, wall, _ = _run(_sync(server, target, up), env)
                row.update(up_s=wall, ok=row["ok"] or code)
                code, wall, _ = _run(_sync(server, target, up), env)
                row.update(unchanged_s=wall, ok=row["ok"] or code)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print("\n| objects | peak RSS (dry-run) | dry-run | gs->local | local->gs | unchanged rerun |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:

        def cell(key: str, row: dict[str, float] = row) -> str:
            return f"{row[key]:.1f} s" if key in row else "-"

        print(
            f"| {row['objects']:,} | {row['rss_kib'] / 1024:.1f} MiB | {cell('dry_run_s')} | "
            f"{cell('down_s')} | {cell('up_s')} | {cell('unchanged_s')} |"
        )
    return 1 if any(row["ok"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
