"""Executing a plan: copies through an executor, then (maybe) deletions, into the ledger.

Invariants:
- Results are handled in the calling thread, one at a time: the ledger, the checksum cache
  and the caller's ``on_result`` never see two results at once.
- Deletions start only after every copy result is in and only when the plan says the
  march finished over a complete source listing; otherwise they are counted as withheld.
- The summary is the sum of the results: every object planned appears exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Iterator

from resumable_media.bulk.executors import Executor
from resumable_media.bulk.jobs import Action, EngineSpec, Job, JobResult, Status, StorageSpec
from resumable_media.bulk.ledger import Ledger
from resumable_media.bulk.plan import Plan

__all__ = ["Summary", "execute", "preview"]

MAX_NAMED_FAILURES = 100
"""int: Failures named in the summary (the ledger and ``--json`` lines have all of them)."""


@dataclasses.dataclass(slots=True, kw_only=True)
class Summary:
    """Totals of one run.

    Attributes:
        copied: Objects copied.
        skipped: Objects found unchanged.
        deleted: Destination entries deleted.
        failed: Objects that failed (each also has a failed result).
        bytes: Bytes copied.
        seconds: Wall time of the run.
        failures: The first :data:`MAX_NAMED_FAILURES` failure messages.
        listing_errors: Why a listing is incomplete.
        deletions_withheld: Deletions not run because the source listing was incomplete.
        ignored: Special files of a local source left out (FIFOs, sockets, devices,
            dangling symlinks, loops, symlinks out of the tree), each warned about once.
    """

    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[str] = dataclasses.field(default_factory=list)
    listing_errors: list[str] = dataclasses.field(default_factory=list)
    deletions_withheld: int = 0
    ignored: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing failed and both listings were complete."""
        return not self.failed and not self.listing_errors

    def add(self, result: JobResult) -> None:
        """Count one result."""
        if result.status is Status.COPIED:
            self.copied += 1
            self.bytes += result.size
        elif result.status is Status.SKIPPED:
            self.skipped += 1
        elif result.status is Status.DELETED:
            self.deleted += 1
        else:
            self.failed += 1
            if len(self.failures) < MAX_NAMED_FAILURES:
                self.failures.append(result.error or result.destination)

    def as_record(self) -> dict[str, object]:
        """The final ``--json`` line."""
        return {
            "summary": True,
            "copied": self.copied,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "failures": self.failures,
            "listing_errors": self.listing_errors,
            "deletions_withheld": self.deletions_withheld,
            "ignored": self.ignored,
        }


def _remember_checksum(plan: Plan, result: JobResult) -> None:
    """Feed a verified copy's CRC32C to the cache, so the next run need not hash the file."""
    if result.status is not Status.COPIED or result.inode is None or result.mtime_ns is None:
        return
    if not result.crc32c:
        return
    local = result.source if result.action is Action.UPLOAD else result.destination
    plan.checksums.store(local, result.size, result.mtime_ns, result.inode, result.crc32c)


def _prune_empty_parents(plan: Plan, result: JobResult) -> None:
    """After a local delete, remove directories it left empty (up to, not including, DST)."""
    root = plan.destination.path
    if root is None or result.status is not Status.DELETED:
        return
    parent = pathlib.Path(result.destination).parent
    while parent != root and root in parent.parents:
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = parent.parent


def _remove_stale_temps(plan: Plan) -> None:
    """Remove temp files that killed downloads left in DST (this run's own are gone by now)."""
    if plan.destination.path is None:
        return
    for path in plan.destination_listing.stale_temps:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _listing_errors(plan: Plan) -> list[str]:
    return plan.source_listing.errors + plan.destination_listing.errors


def execute(
    plan: Plan,
    executor: Executor,
    engine: EngineSpec | None = None,
    *,
    ledger: Ledger | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> Summary:
    """Run ``plan`` on ``executor``: copies, then deletions when the plan allows them.

    Args:
        plan: The (not yet iterated) plan.
        executor: Threads, processes or Dask.
        engine: How workers build transports, and the copy settings (default: the
            plan's storage, default settings).
        ledger: Where every outcome is recorded (the manifest), if anywhere.
        on_result: Called with every result (printing, progress).

    Returns:
        The totals.
    """
    started = time.monotonic()
    summary = Summary()
    if engine is None:
        engine = EngineSpec(storage=StorageSpec.from_storage(plan.storage))

    def handle(result: JobResult) -> None:
        summary.add(result)
        _remember_checksum(plan, result)
        _prune_empty_parents(plan, result)
        if ledger is not None:
            ledger.record(result)
        if on_result is not None:
            on_result(result)

    def jobs() -> Iterator[Job]:
        for item in plan:
            if isinstance(item, JobResult):
                handle(item)
            else:
                yield item

    try:
        for result in executor.map(engine, jobs()):
            handle(result)
        _remove_stale_temps(plan)
        if plan.may_delete:
            for result in executor.map(engine, plan.deletions()):
                handle(result)
        else:
            summary.deletions_withheld = plan.planned_deletions
    finally:
        plan.close()
        plan.checksums.close()
    summary.listing_errors = _listing_errors(plan)
    summary.ignored = len(plan.source_listing.ignored)
    summary.seconds = time.monotonic() - started
    return summary


def preview(plan: Plan) -> Iterator[Job | JobResult]:
    """What :func:`execute` would do (``--dry-run``): the plan's items, then its deletions.

    Deletions appear only when the source listing was complete, exactly as they would run.
    """
    try:
        yield from plan
        yield from plan.deletions()
    finally:
        plan.close()
        plan.checksums.close()
