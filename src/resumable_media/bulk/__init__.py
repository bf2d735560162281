"""Many objects at once: plan (list → compare → jobs) → execute on an executor → ledger.

A sync walks the source and destination listings together in name order (streamed),
compares size and CRC32C, and turns each difference into a small picklable :class:`Job`.
Executors run jobs on threads, worker processes or a Dask cluster; every job is idempotent
(generation preconditions), so a job re-run after a worker died never duplicates or
corrupts anything.  The :class:`Ledger` records one JSON line per object.

Example::

    from resumable_media import bulk

    storage = bulk.connect("http://127.0.0.1:4443")  # None: Cloud Storage itself
    plan = bulk.Plan("photos", "gs://backup/photos", storage, delete=True)
    with bulk.Ledger("manifest.jsonl") as ledger:
        summary = bulk.execute(plan, bulk.ThreadExecutor(8), ledger=ledger)

Layering note: the engine reuses the object operations of ``resumable_media._objects``
(``Storage``, ``upload_file``, ``download_object``), as the command does, rather than
copying them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resumable_media._objects.client import Storage
from resumable_media._objects.urls import resolve_endpoint

if TYPE_CHECKING:
    from resumable_media.bulk.crccache import ChecksumCache, file_crc32c
    from resumable_media.bulk.engine import run_job, run_shard
    from resumable_media.bulk.executors import (
        DaskExecutor,
        Executor,
        ProcessExecutor,
        ThreadExecutor,
    )
    from resumable_media.bulk.filters import Filters, Rule
    from resumable_media.bulk.jobs import Action, EngineSpec, Job, JobResult, Status, StorageSpec
    from resumable_media.bulk.ledger import Ledger
    from resumable_media.bulk.listing import Entry, Listing, walk_gcs, walk_local
    from resumable_media.bulk.plan import Location, Plan, march
    from resumable_media.bulk.run import Summary, execute, preview

# The submodules load on first use of one of their names: ``cp`` imports a few of them
# (jobs, filters) and should not pay for the executors, sqlite and multiprocessing.
_HOMES = {
    "ChecksumCache": "crccache",
    "file_crc32c": "crccache",
    "run_job": "engine",
    "run_shard": "engine",
    "DaskExecutor": "executors",
    "Executor": "executors",
    "ProcessExecutor": "executors",
    "ThreadExecutor": "executors",
    "Filters": "filters",
    "Rule": "filters",
    "Action": "jobs",
    "EngineSpec": "jobs",
    "Job": "jobs",
    "JobResult": "jobs",
    "Status": "jobs",
    "StorageSpec": "jobs",
    "Ledger": "ledger",
    "Entry": "listing",
    "Listing": "listing",
    "walk_gcs": "listing",
    "walk_local": "listing",
    "Location": "plan",
    "Plan": "plan",
    "march": "plan",
    "Summary": "run",
    "execute": "run",
    "preview": "run",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


__all__ = [
    "Action",
    "ChecksumCache",
    "DaskExecutor",
    "EngineSpec",
    "Entry",
    "Executor",
    "Filters",
    "Job",
    "JobResult",
    "Ledger",
    "Listing",
    "Location",
    "Plan",
    "ProcessExecutor",
    "Rule",
    "Status",
    "StorageSpec",
    "Summary",
    "ThreadExecutor",
    "connect",
    "execute",
    "file_crc32c",
    "march",
    "preview",
    "run_job",
    "run_shard",
    "walk_gcs",
    "walk_local",
]


def connect(endpoint: str | None = None, headers: Mapping[str, str] | None = None) -> Storage:
    """Requests to Cloud Storage, or to the emulator at ``endpoint``.

    Args:
        endpoint: An emulator's URL (anonymous); None: ``$STORAGE_EMULATOR_HOST`` if set,
            else Cloud Storage with Google default credentials.
        headers: Extra headers for every request.

    Raises:
        ValueError: When the endpoint is not an http(s) URL.
    """
    return Storage(resolve_endpoint(endpoint), dict(headers or {}))
