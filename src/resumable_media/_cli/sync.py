"""``sync SRC DST``: make DST hold the contents of SRC (rsync semantics), on the bulk engine.

Invariants: exit 0 only when every object was copied or found unchanged (and deleted, with
``--delete``) and both listings were complete; 1 when anything failed, the summary naming
the failures; 2 for usage errors.  ``--dry-run`` changes nothing at the destination.  With
``--json`` stdout carries exactly one line per object and then one summary line; messages
for people go to stderr.  Nothing is deleted unless the source listing was complete.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from resumable_media._cli.copy import UsageError
from resumable_media._objects.sessions import state_directory
from resumable_media._objects.units import format_size
from resumable_media.bulk.filters import Filters, Rule
from resumable_media.bulk.jobs import EngineSpec, Job, JobResult, Status, StorageSpec

if TYPE_CHECKING:  # loaded when a sync runs, not for every command
    from resumable_media.bulk.executors import DaskExecutor, Executor
    from resumable_media.bulk.plan import Plan
    from resumable_media.bulk.run import Summary

__all__ = ["add_parser", "dask_executor", "sync"]

CACHE_NAME = "crc32c-cache.sqlite3"
"""str: The local CRC32C cache's file name in the state directory."""


class _RuleAction(argparse.Action):
    """Append ``--include``/``--exclude`` to one list, keeping their command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        rules = list(getattr(namespace, "filter_rules", None) or [])
        rules.append(Rule(include=option_string == "--include", pattern=str(values)))
        namespace.filter_rules = rules


def add_parser(sub: Any, common: argparse.ArgumentParser, chunk_size: Any, positive: Any) -> None:
    """Register ``sync`` on the command's subparsers."""
    parser = sub.add_parser(
        "sync",
        parents=[common],
        help="make DST hold the contents of SRC (local <-> gs://, gs:// -> gs://)",
        description="Copy what differs (size or CRC32C) from SRC into DST; with --delete also "
        "remove what SRC lacks.  Filters: --include/--exclude GLOB, tried in the order given, "
        "first match wins; with any --include, names matching no rule are excluded.",
    )
    parser.add_argument("src", metavar="SRC")
    parser.add_argument("dst", metavar="DST")
    parser.add_argument("--delete", action="store_true", help="delete DST entries not in SRC")
    parser.add_argument("-n", "--dry-run", action="store_true", help="only show what would change")
    for flag in ("--exclude", "--include"):
        parser.add_argument(flag, action=_RuleAction, metavar="GLOB", dest="filter_rules")
    parser.add_argument("--manifest", metavar="FILE", help="JSON-lines ledger; reruns trust it")
    parser.add_argument("-j", "--jobs", type=positive, default=8, help="objects at once (threads)")
    parser.add_argument(
        "--worker-processes", type=positive, metavar="N", help="run the jobs on N processes"
    )
    parser.add_argument("--dask", metavar="ADDRESS", help="run the jobs on a Dask scheduler")
    parser.add_argument("--chunk-size", type=chunk_size, default=32 * 2**20)
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per object")
    parser.add_argument("--list-page-size", type=positive, help=argparse.SUPPRESS)
    parser.set_defaults(func=sync, filter_rules=[])


def dask_executor(address: str) -> tuple[DaskExecutor, Any]:
    """The bulk engine's Dask executor on the scheduler at ``address``, and its client
    (close it when done); ``sync --dask`` and ``cp -r --dask`` share it.

    Raises:
        UsageError: When the ``[dask]`` extra is missing or the scheduler cannot be reached.
    """
    from resumable_media.bulk.executors import DaskExecutor

    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--dask needs the dask extra: pip install 'resumable-media[dask]'"
        ) from None
    try:
        client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    return DaskExecutor(client), client


def _executor(args: argparse.Namespace) -> tuple[Executor, Any]:
    from resumable_media.bulk.executors import ProcessExecutor, ThreadExecutor

    if args.dask:
        return dask_executor(args.dask)
    if args.worker_processes:
        return ProcessExecutor(args.worker_processes), None
    return ThreadExecutor(args.jobs, cancel=args.cancel), None


def _write(stream: Any, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


class _Printer:
    """Per-object output: ``--json`` lines, ``-v`` lines, and errors always."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json = args.json
        self.verbose = args.verbose and not args.quiet

    def result(self, result: JobResult) -> None:
        if self.json:
            _write(sys.stdout, json.dumps(result.as_record()))
        if result.status is Status.FAILED:
            _write(sys.stderr, f"error: {result.error}")
        elif self.verbose and not self.json:
            arrow = f"{result.source} -> " if result.source else ""
            _write(sys.stderr, f"{result.status.value} {arrow}{result.destination}")

    def planned(self, item: Job | JobResult) -> None:
        if isinstance(item, JobResult):
            self.result(item)
            return
        verb = "delete" if item.source == "" else "copy"
        if self.json:
            record = {
                "source": item.source,
                "destination": item.destination,
                "action": item.action.value,
                "status": f"would-{verb}",
                "size": item.size,
            }
            _write(sys.stdout, json.dumps(record))
        elif verb == "copy":
            _write(sys.stdout, f"would copy {item.source} -> {item.destination}")
        else:
            _write(sys.stdout, f"would delete {item.destination}")


def _report(args: argparse.Namespace, summary: Summary) -> int:
    if args.json:
        _write(sys.stdout, json.dumps(summary.as_record()))
    for error in summary.listing_errors:
        _write(sys.stderr, f"error: {error}")
    if summary.deletions_withheld:
        _write(
            sys.stderr,
            f"error: the source listing is incomplete: {summary.deletions_withheld} "
            "deletion(s) withheld, nothing deleted; fix the listing error and run again",
        )
    if not args.quiet:
        _write(
            sys.stderr,
            f"sync: {summary.copied} copied ({format_size(summary.bytes)}), "
            f"{summary.skipped} unchanged, {summary.deleted} deleted, {summary.failed} failed"
            + (f", {summary.ignored} special file(s) skipped" if summary.ignored else "")
            + f" in {summary.seconds:.1f} s",
        )
    if summary.failed:
        shown = "\n  ".join(summary.failures)
        more = summary.failed - len(summary.failures)
        tail = f"\n  … and {more} more (see --json or --manifest)" if more > 0 else ""
        _write(sys.stderr, f"sync: {summary.failed} object(s) failed:\n  {shown}{tail}")
    return 0 if summary.ok else 1


def _dry_run(args: argparse.Namespace, plan: Plan, printer: _Printer) -> int:
    from resumable_media.bulk.run import Summary, preview

    summary = Summary()
    for item in preview(plan):
        printer.planned(item)
        if isinstance(item, JobResult):
            summary.add(item)
    summary.listing_errors = plan.source_listing.errors + plan.destination_listing.errors
    summary.ignored = len(plan.source_listing.ignored)
    if not plan.may_delete:
        summary.deletions_withheld = plan.planned_deletions
    return _report(args, summary)


def sync(args: argparse.Namespace) -> int:
    """``sync SRC DST``: copy what differs, optionally delete what SRC lacks."""
    from resumable_media._cli.commands import make_storage
    from resumable_media.bulk.crccache import ChecksumCache
    from resumable_media.bulk.ledger import Ledger
    from resumable_media.bulk.plan import Plan
    from resumable_media.bulk.run import execute

    storage = make_storage(args)
    try:
        filters = Filters(args.filter_rules)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ledger = Ledger(args.manifest, read_only=args.dry_run) if args.manifest else None
    try:
        plan = Plan(
            args.src,
            args.dst,
            storage,
            delete=args.delete,
            filters=filters,
            checksums=ChecksumCache(state_directory() / CACHE_NAME),
            ledger=ledger,
            page_size=args.list_page_size,
            follow_symlinks=args.follow_symlinks,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    printer = _Printer(args)
    if args.dry_run:
        return _dry_run(args, plan, printer)
    engine = EngineSpec(storage=StorageSpec.from_storage(storage), chunk_size=args.chunk_size)
    executor, client = _executor(args)
    try:
        summary = execute(plan, executor, engine, ledger=ledger, on_result=printer.result)
    finally:
        if ledger is not None:
            ledger.close()
        if client is not None:
            client.close()
    return _report(args, summary)
