#!/usr/bin/env python3
# The full side-by-side transfer benchmark, as one command.
#
# Invariants: all measuring, verifying and cleaning up is done by
# resumable_media.bench (this script only parses options and writes files);
# the exit status is 1 whenever any case FAILED (wrong bytes, error, timeout),
# so a broken transfer can never hide behind a table.
"""Compare resumable-media with its peers on the same loopback server (see benchmarks/README.md).

The peer table (README) for one network profile::

    python3 benchmarks/bench_transfers.py --table --network wan --repeats 5 \\
        --out benchmarks/results/peers-wan.md --json benchmarks/results/peers-wan.json \\
        --plot 'benchmarks/results/peers-wan-{workload}.png'

The API-level comparison with google-resumable-media (the older table)::

    python3 benchmarks/bench_transfers.py --size 1GiB --repeats 3 --rss \\
        --out benchmarks/results/transfers.md --json benchmarks/results/transfers.json \\
        --plot benchmarks/results/transfers.png
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from resumable_media import bench
from resumable_media._bench import pagereporting
from resumable_media._bench.cases import FAMILIES, WORKLOADS, table_cases

_NETWORKS = ("none", "lan", "region", "wan")

_PRIME_BYTES = 12 * 2**30
"""Free memory warmed once when free-page reporting is held (more than one run writes)."""


def _size(text: str) -> int:
    try:
        return bench.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=_size, default=bench.parse_size("1GiB"), help="object size")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (default 3)")
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="CASE",
        help="case ids, globs (ours.*) or groups (download, upload, rss, large, small, "
        "medium, peers, all); default: every case of the large workload but the peak-RSS "
        f"one. Ids: {', '.join(c.case_id for c in bench.CASES)}",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="run the peer table: ours, our cp and every peer, for the chosen --workloads",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=tuple(WORKLOADS),
        default=list(WORKLOADS),
        help="with --table: which workloads (default: all three)",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        choices=FAMILIES,
        help="with --table: which peers (default: all; ours always runs; a peer that is "
        "not installed is skipped with one line saying so)",
    )
    parser.add_argument(
        "--network",
        nargs="+",
        choices=_NETWORKS,
        default=["none"],
        help="run everything under each of these shaped networks in turn, the embedded "
        "server started with it (see resumable_media.testing.network): lan 0.2 ms; region "
        "2 ms, 200 MB/s per connection, 1.5 GB/s total; wan 30 ms, 50 MB/s per connection, "
        "1 GB/s total; none: plain loopback (the default). With several, every output path "
        "must contain {network}",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        help="write the README's benchmark table here: per network, one line per workload "
        "(ours, the fastest peer, the ratio), the charts, the machine and the command",
    )
    parser.add_argument(
        "--small", type=int, default=WORKLOADS["small"].count, help="objects in 'small'"
    )
    parser.add_argument(
        "--small-size", type=_size, default=WORKLOADS["small"].object_size, help="default 64KiB"
    )
    parser.add_argument(
        "--medium", type=int, default=WORKLOADS["medium"].count, help="objects in 'medium'"
    )
    parser.add_argument(
        "--medium-size", type=_size, default=WORKLOADS["medium"].object_size, help="default 8MiB"
    )
    parser.add_argument(
        "--rss", action="store_true", help="also run the peak-RSS case (ParallelDownload)"
    )
    parser.add_argument("--rss-size", type=_size, default=bench.parse_size("4GiB"))
    parser.add_argument("--endpoint", help="use this running server instead of an embedded one")
    parser.add_argument("--workdir", help="directory for temporary data (default: system temp)")
    parser.add_argument("--timeout", type=float, help="per-run time limit in seconds")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--json", type=Path, help="write rows and machine facts as JSON here")
    parser.add_argument(
        "--plot",
        type=Path,
        help="write a PNG chart here (needs matplotlib); a path containing {workload} "
        "writes one chart per workload",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 also when a case is not available"
    )
    parser.add_argument(
        "--free-page-reporting",
        choices=("as-booted", "held"),
        default="as-booted",
        help="'held' (root) stops the VM guest from handing freed memory back to the host "
        "during the run and warms free memory once, so no case is charged for host faults; "
        "see resumable_media._bench.pagereporting",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="measure nothing: re-render --out/--plot from a saved --json file",
    )
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the requested outputs; return the exit status."""
    args = _parser().parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the harness, which stops its children and
    # removes its temporary data (a job started in the background may ignore SIGINT).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.from_json:
        return _render(args, json.loads(args.from_json.read_text(encoding="utf-8")))
    cases = args.cases
    if args.table:
        try:
            cases = [*(cases or []), *table_cases(args.workloads, args.peers)]
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.rss:
        cases = [*(cases or [c.case_id for c in bench.select_cases(None)]), bench.RSS_CASE]
    networks = list(dict.fromkeys(args.network))
    if len(networks) > 1:
        for option in ("out", "json", "plot"):
            given = getattr(args, option)
            if given is not None and "{network}" not in str(given):
                print(
                    f"error: with several networks, --{option} must contain {{network}} "
                    f"(got {given})",
                    file=sys.stderr,
                )
                return 2
    if args.endpoint and networks != ["none"]:
        print("error: --network shapes the embedded server; omit --endpoint", file=sys.stderr)
        return 2
    shown = sys.argv[1:] if argv is None else argv
    status = 0
    payloads: list[dict[str, Any]] = []
    for network in networks:
        payload = _measure(args, cases, network, shown)
        payloads.append(payload)
        status = max(status, _render(args, payload, network))
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(_summary(args, payloads), encoding="utf-8")
    return status


def _measure(
    args: argparse.Namespace, cases: list[str] | None, network: str, shown: list[str]
) -> dict[str, Any]:
    """Run the comparison once under ``network``; the payload that --json writes."""
    machine = bench.describe_machine()
    machine["network"] = network
    started = time.time()
    if args.free_page_reporting == "held":
        state = pagereporting.hold(_PRIME_BYTES)
    else:
        state = contextlib.nullcontext(f"as booted: {pagereporting.describe()}")
    with state as described:
        machine["free-page reporting"] = described
        rows = bench.run_comparison(
            args.endpoint,
            args.size,
            cases=cases,
            repeats=args.repeats,
            rss_size_bytes=args.rss_size,
            workdir=args.workdir,
            timeout_s=args.timeout,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            network=None if network == "none" else network,
            small=(args.small, args.small_size),
            medium=(args.medium, args.medium_size),
        )
    elapsed = time.time() - started
    machine["load average after (1/5/15 min)"] = bench.describe_machine()[
        "load average (1/5/15 min)"
    ]
    machine["benchmark wall time"] = f"{elapsed:.0f} s"
    machine["command"] = " ".join(["python3 benchmarks/bench_transfers.py", *shown])
    return {"machine": machine, "rows": [row.to_json() for row in rows]}


def _path(template: Path, network: str, workload: str = "") -> Path:
    text = str(template).replace("{network}", network)
    return Path(text.replace("{workload}", workload) if workload else text)


def _charts(args: argparse.Namespace, rows: list[bench.BenchRow], network: str) -> list[Path]:
    """The chart paths --plot names for these rows (one per workload with {workload})."""
    if not args.plot:
        return []
    if "{workload}" not in str(args.plot):
        return [_path(args.plot, network)]
    workloads = dict.fromkeys(row.workload for row in rows if row.ok and row.group != "memory")
    return [_path(args.plot, network, workload) for workload in workloads]


def _summary(args: argparse.Namespace, payloads: list[dict[str, Any]]) -> str:
    """The README's benchmark table: per network, the summary lines and charts."""
    out: list[str] = []
    for payload in payloads:
        machine: dict[str, str] = payload["machine"]
        rows = [bench.BenchRow.from_json(row) for row in payload["rows"]]
        network = machine.get("network", "none")
        report = bench.format_table(rows, machine=machine)
        summary = (
            report.split("### Summary\n\n", 1)[1].split("\n\n", 1)[0]
            if ("### Summary" in report)
            else "(no section had both our reference row and a peer)"
        )
        out += [f"#### Network: `{network}`", "", summary, ""]
        out += [
            f"![{network}: {chart.stem}]({chart.as_posix()})"
            for chart in _charts(args, rows, network)
        ]
        out.append("")
    if payloads:
        machine = payloads[0]["machine"]
        keys = ("CPU", "cores", "memory", "kernel", "Python", "free-page reporting")
        facts = "; ".join(f"{key}: {machine[key]}" for key in keys if key in machine)
        out += [f"Machine: {facts}.", "", "```bash", machine.get("command", ""), "```", ""]
    return "\n".join(out)


def _render(args: argparse.Namespace, payload: dict[str, Any], network: str = "none") -> int:
    """Print and write the report, JSON and chart of a payload; return the exit status."""
    machine: dict[str, str] = payload["machine"]
    network = machine.get("network", network)
    rows = [bench.BenchRow.from_json(row) for row in payload["rows"]]
    table = bench.format_table(rows, machine=machine)
    print(table)
    if args.out:
        out = _path(args.out, network)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table, encoding="utf-8")
    if args.json and not args.from_json:
        js = _path(args.json, network)
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for chart in _charts(args, rows, network):
        chart.parent.mkdir(parents=True, exist_ok=True)
        workload = None
        if "{workload}" in str(args.plot):
            workload = next(
                w for w in ("large", "small", "medium") if chart == _path(args.plot, network, w)
            )
        bench.plot(rows, chart, machine=machine, workload=workload)
    failed = [row.case_id for row in rows if row.status == "FAILED"]
    missing = [row.case_id for row in rows if row.status == "not available"]
    if failed:
        print(f"FAILED cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.strict and missing:
        print(f"cases not available: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; temporary data removed", file=sys.stderr)
        sys.exit(130)
