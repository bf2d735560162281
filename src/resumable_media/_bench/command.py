# The options and the driver of the side-by-side benchmark, shared by
# benchmarks/bench_transfers.py and `resumable-media bench`.
#
# Invariants: there is one parser definition (add_arguments) and one driver (run);
# the script and the CLI differ only in the program name shown in the report and in
# the default size; the exit status is 1 whenever any case FAILED, 2 on a usage
# problem, so a broken transfer can never hide behind a table.
"""The command-line face of the benchmark harness: its options and its driver."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Only names at import: the CLI builds this parser on every start-up, so the case
# catalogue, the runner, the report and the machine probes are imported by the calls
# that need them.
from resumable_media._bench.model import BenchRow, parse_size
from resumable_media._bench.names import FAMILIES, WORKLOADS

__all__ = ["NETWORKS", "BenchUsageError", "add_arguments", "run"]

NETWORKS = ("none", "lan", "region", "wan")
"""The --network choices: plain loopback and the presets of resumable_media.testing.network."""

_PRIME_BYTES = 12 * 2**30
"""Free memory warmed once when free-page reporting is held (more than one run writes)."""


class BenchUsageError(ValueError):
    """The options cannot run together (the message says which and what to do)."""


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, *, default_size: str = "1GiB") -> None:
    """Add the harness's options to ``parser`` (the script's and the ``bench`` command's)."""
    parser.add_argument(
        "--size", type=_size, default=parse_size(default_size), help=f"default {default_size}"
    )
    parser.add_argument(
        "--repeats", type=_positive, default=3, help="timed runs per case (default 3)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="CASE",
        help="case ids, globs (ours.*) or groups (download, upload, rss, large, small, "
        "medium, peers, all); default: every case of the large workload but the peak-RSS "
        "one. An unknown id is an error that lists the valid ones",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="run the peer table: ours, our cp and every peer, for the chosen --workloads "
        "(implied by --peers and --workloads)",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=tuple(WORKLOADS),
        help="the peer table's workloads (default: all three)",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        choices=FAMILIES,
        metavar="PEER",
        help=f"the peer table's peers, of {', '.join(FAMILIES)} (default: all; ours always "
        "runs; a peer that is not installed is skipped with one line saying so)",
    )
    parser.add_argument(
        "--network",
        nargs="+",
        choices=NETWORKS,
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
        "(ours, the fastest peer, the ratio), the charts, the machine and the command; the "
        "networks of this run replace their own sections and keep the others",
    )
    small, medium = WORKLOADS["small"], WORKLOADS["medium"]
    parser.add_argument("--small", type=_positive, default=small.count, help="objects in 'small'")
    parser.add_argument("--small-size", type=_size, default=small.object_size, help="default 64KiB")
    parser.add_argument(
        "--medium", type=_positive, default=medium.count, help="objects in 'medium'"
    )
    parser.add_argument(
        "--medium-size", type=_size, default=medium.object_size, help="default 8MiB"
    )
    parser.add_argument(
        "--rss", action="store_true", help="also run the peak-RSS case (ParallelDownload)"
    )
    parser.add_argument("--rss-size", type=_size, default=parse_size("4GiB"))
    parser.add_argument(
        "--endpoint", metavar="URL", help="use this running server instead of an embedded one"
    )
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, program: str, shown: Sequence[str]) -> int:
    """Run what the parsed options ask for and write the outputs; return the exit status.

    Args:
        args: Options parsed by a parser that :func:`add_arguments` filled.
        program: How the command is spelled in the report's reproduce line.
        shown: The arguments as given, for the reproduce line.

    Raises:
        BenchUsageError: When the options cannot run together.
    """
    from resumable_media._bench.cases import RSS_CASE, select_cases, table_cases

    if args.from_json:
        return _render(args, json.loads(args.from_json.read_text(encoding="utf-8")))
    cases = args.cases
    if args.table or args.peers or args.workloads:
        workloads = args.workloads or list(WORKLOADS)
        cases = [*(cases or []), *table_cases(workloads, args.peers)]
    if args.rss:
        cases = [*(cases or [c.case_id for c in select_cases(None)]), RSS_CASE]
    if cases is not None:
        select_cases(cases)  # an unknown id is a usage error before anything starts
    networks = list(dict.fromkeys(args.network))
    if len(networks) > 1:
        for option in ("out", "json", "plot"):
            given = getattr(args, option)
            if given is not None and "{network}" not in str(given):
                raise BenchUsageError(
                    f"with several networks, --{option} must contain {{network}} (got {given})"
                )
    if args.endpoint and networks != ["none"]:
        raise BenchUsageError("--network shapes the embedded server; omit --endpoint")
    status = 0
    payloads: list[dict[str, Any]] = []
    for network in networks:
        payload = _measure(args, cases, network, [program, *shown])
        payloads.append(payload)
        status = max(status, _render(args, payload, network))
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        old = args.summary.read_text(encoding="utf-8") if args.summary.exists() else ""
        args.summary.write_text(_summary(args, payloads, old), encoding="utf-8")
    return status


def _measure(
    args: argparse.Namespace, cases: list[str] | None, network: str, shown: list[str]
) -> dict[str, Any]:
    """Run the comparison once under ``network``; the payload that --json writes."""
    from resumable_media._bench import pagereporting
    from resumable_media._bench.machine import describe_machine
    from resumable_media._bench.runner import run_comparison

    machine = describe_machine()
    machine["network"] = network
    started = time.time()
    state: contextlib.AbstractContextManager[str]
    if args.free_page_reporting == "held":
        state = pagereporting.hold(_PRIME_BYTES)
    else:
        state = contextlib.nullcontext(f"as booted: {pagereporting.describe()}")
    with state as described:
        machine["free-page reporting"] = described
        rows = run_comparison(
            args.endpoint,
            args.size,
            cases=cases,
            repeats=args.repeats,
            rss_size_bytes=args.rss_size,
            workdir=args.workdir,
            timeout_s=args.timeout,
            progress=None if args.quiet else _say,
            network=None if network == "none" else network,
            small=(args.small, args.small_size),
            medium=(args.medium, args.medium_size),
        )
    elapsed = time.time() - started
    machine["load average after (1/5/15 min)"] = describe_machine()["load average (1/5/15 min)"]
    machine["benchmark wall time"] = f"{elapsed:.0f} s"
    machine["command"] = " ".join(shown)
    return {"machine": machine, "rows": [row.to_json() for row in rows]}


def _path(template: Path, network: str, workload: str = "") -> Path:
    text = str(template).replace("{network}", network)
    return Path(text.replace("{workload}", workload) if workload else text)


def _charts(args: argparse.Namespace, rows: list[BenchRow], network: str) -> list[Path]:
    """The chart paths --plot names for these rows (one per workload with {workload})."""
    if not args.plot:
        return []
    if "{workload}" not in str(args.plot):
        return [_path(args.plot, network)]
    workloads = dict.fromkeys(row.workload for row in rows if row.ok and row.group != "memory")
    return [_path(args.plot, network, workload) for workload in workloads]


_NETWORK_HEADING = "#### Network: `"


def _sections(text: str) -> dict[str, str]:
    """The per-network sections of an earlier summary, by network (the footer dropped)."""
    found: dict[str, str] = {}
    for part in text.split(_NETWORK_HEADING)[1:]:
        network, _, body = part.partition("`")
        body = body.split("\nMachine: ", 1)[0].split("\n```", 1)[0]
        found[network] = (_NETWORK_HEADING + network + "`" + body).rstrip("\n") + "\n"
    return found


def _summary(args: argparse.Namespace, payloads: list[dict[str, Any]], old: str = "") -> str:
    """The README's benchmark table: per network, the summary lines and charts.

    The networks measured now replace their sections of ``old`` (an earlier summary); the
    other networks' sections stay, in the order lan, region, wan, none. The footer (the
    machine and the reproduce commands) lists every run's command.
    """
    from resumable_media._bench.report import format_table

    sections = _sections(old)
    commands = [
        line
        for line in old.split("```bash\n", 1)[-1].split("\n```", 1)[0].splitlines()
        if "```bash" in old and line.strip()
    ]
    machines: list[dict[str, str]] = []
    for payload in payloads:
        machine: dict[str, str] = payload["machine"]
        machines.append(machine)
        rows = [BenchRow.from_json(row) for row in payload["rows"]]
        network = machine.get("network", "none")
        report = format_table(rows, machine=machine)
        summary = (
            report.split("### Summary\n\n", 1)[1].split("\n\n", 1)[0]
            if ("### Summary" in report)
            else "(no section had both our reference row and a peer)"
        )
        lines = [f"{_NETWORK_HEADING}{network}`", "", summary, ""]
        lines += [
            f"![{network}: {chart.stem}]({chart.as_posix()})"
            for chart in _charts(args, rows, network)
        ]
        sections[network] = "\n".join(lines).rstrip("\n") + "\n"
        command = machine.get("command", "")
        commands = [c for c in commands if f"--network {network} " not in c + " "]
        commands.append(command)
    order = [n for n in ("lan", "region", "wan", "none") if n in sections]
    out = [sections[network] for network in order]
    if machines:
        machine = machines[0]
        keys = ("CPU", "cores", "memory", "kernel", "Python", "free-page reporting")
        facts = "; ".join(f"{key}: {machine[key]}" for key in keys if key in machine)
        shown = "\n".join(dict.fromkeys(commands))
        out += [f"Machine: {facts}.\n", f"```bash\n{shown}\n```\n"]
    return "\n".join(out)


def _render(args: argparse.Namespace, payload: dict[str, Any], network: str = "none") -> int:
    """Print and write the report, JSON and chart of a payload; return the exit status."""
    from resumable_media._bench.report import format_table, plot

    machine: dict[str, str] = payload["machine"]
    network = machine.get("network", network)
    rows = [BenchRow.from_json(row) for row in payload["rows"]]
    table = format_table(rows, machine=machine)
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
        plot(rows, chart, machine=machine, workload=workload)
    failed = [row.case_id for row in rows if row.status == "FAILED"]
    missing = [row.case_id for row in rows if row.status == "not available"]
    if failed:
        print(f"FAILED cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.strict and missing:
        print(f"cases not available: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0
