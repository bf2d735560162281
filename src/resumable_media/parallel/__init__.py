"""The accelerator: parallel ranged downloads, pipelined and parallel uploads.

Invariants: this package re-exports its public names only; the modules below it hold
the logic (plan, pool, worker, scheduler, sink, journal, progress, pipeline, upload).
"""

from __future__ import annotations

from resumable_media.parallel.download import ParallelDownload
from resumable_media.parallel.pipeline import PipelinedUpload
from resumable_media.parallel.plan import TransferResult
from resumable_media.parallel.pool import WorkerPool, get_pool, shutdown_pools
from resumable_media.parallel.upload import ParallelUpload

__all__ = [
    "ParallelDownload",
    "ParallelUpload",
    "PipelinedUpload",
    "TransferResult",
    "WorkerPool",
    "get_pool",
    "shutdown_pools",
]
