"""Executors: run a stream of jobs on threads, worker processes, or a Dask cluster.

Invariants:
- Every executor consumes the job stream lazily and keeps at most ``window`` tasks in flight
  (``window * shard_size`` jobs), so memory does not grow with the number of objects.
- Only job specs travel to workers and only small results come back: never object bytes.
- Every job yields exactly one :class:`JobResult`, in completion order.  A task that dies
  with its executor (a broken process pool, a Dask task lost more often than the scheduler
  allows) yields ``failed`` results for its jobs, naming what happened; the others go on.
- Process workers ignore SIGINT (the parent decides when to stop) and build their own
  transports from the engine spec's factory.
- Small downloads are made durable in batches, never one fsync each: threads hand back
  ``pending`` results that :meth:`ThreadExecutor.map` commits (:func:`engine.commit`) every
  :data:`DURABLE_BATCH` results or whenever the workers are busy for a moment; process and
  Dask tasks commit their shard before returning it.  No result is yielded before it is
  durable and in place.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from resumable_media.bulk.engine import commit, discard_pending, run_job, run_shard
from resumable_media.bulk.jobs import EngineSpec, Job, JobResult, Status

__all__ = ["DURABLE_BATCH", "DaskExecutor", "Executor", "ProcessExecutor", "ThreadExecutor"]

DURABLE_BATCH = 512
"""Finished small downloads made durable together (one ``syncfs``), as ``cp -r`` does."""

_IDLE_S = 0.2
"""After this long without a finished job, the waiting downloads are committed anyway."""

_OLDEST_S = 0.25
"""No finished download waits longer than about this for its durability pass (the ledger
and the progress lag the copies by at most this much)."""


class Executor(Protocol):
    """Runs jobs and yields one result per job."""

    def map(self, engine: EngineSpec, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job of ``jobs``; yield results as they complete."""
        ...


def _shards(jobs: Iterable[Job], size: int) -> Iterator[tuple[Job, ...]]:
    iterator = iter(jobs)
    while shard := tuple(itertools.islice(iterator, size)):
        yield shard


def _lost(shard: Sequence[Job], reason: str) -> list[JobResult]:
    return [
        JobResult(
            source=job.source,
            destination=job.destination,
            action=job.action,
            status=Status.FAILED,
            size=job.size,
            error=f"{job.source or job.destination}: {reason}; run the sync again",
        )
        for job in shard
    ]


def _run_windowed(
    shards: Iterator[tuple[Job, ...]],
    submit: Callable[[tuple[Job, ...]], concurrent.futures.Future[list[JobResult]]],
    window: int,
    idle_s: float | None = None,
) -> Iterator[JobResult | None]:
    """Keep ``window`` futures of ``concurrent.futures`` in flight; yield their results.

    With ``idle_s``, a ``None`` is yielded whenever that long passes without a result (the
    caller may use the pause, e.g. to commit what it holds)."""
    pending: dict[concurrent.futures.Future[list[JobResult]], tuple[Job, ...]] = {}
    try:
        for shard in shards:
            pending[submit(shard)] = shard
            while len(pending) >= window:
                yield from _drain(pending, concurrent.futures.FIRST_COMPLETED, idle_s)
        while pending:
            yield from _drain(pending, concurrent.futures.FIRST_COMPLETED, idle_s)
    finally:
        for future in pending:
            future.cancel()


def _drain(
    pending: dict[concurrent.futures.Future[list[JobResult]], tuple[Job, ...]],
    when: str,
    idle_s: float | None = None,
) -> Iterator[JobResult | None]:
    done, _ = concurrent.futures.wait(pending, timeout=idle_s, return_when=when)
    if not done:
        yield None
    for future in done:
        shard = pending.pop(future)
        try:
            results = future.result()
        except BrokenProcessPool:
            results = _lost(shard, "its worker process died")
        yield from results


class ThreadExecutor:
    """Jobs on a pool of threads in this process (one transport per thread).

    Args:
        workers: Threads (objects copied concurrently).
        cancel: When set, running downloads stop and no new job starts.
    """

    def __init__(self, workers: int = 8, *, cancel: threading.Event | None = None) -> None:
        self.workers = max(1, workers)
        self.cancel = cancel if cancel is not None else threading.Event()

    def map(self, engine: EngineSpec, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job; yield results as they complete (at most ``max(2 * workers, 64)``
        queued)."""
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, "rm-sync")

        def one(shard: tuple[Job, ...]) -> list[JobResult]:
            return [run_job(engine, job, self.cancel, defer_durability=True) for job in shard]

        waiting: list[JobResult] = []
        since = 0.0
        # A wider window than 2 per thread: the workers keep busy while this thread runs
        # a durability pass (a job spec is small).
        window = max(2 * self.workers, 64)
        try:
            for result in _run_windowed(
                _shards(jobs, 1), lambda shard: pool.submit(one, shard), window, _IDLE_S
            ):
                if result is not None and result.pending is None:
                    yield result
                    continue
                if result is not None:
                    if not waiting:
                        since = time.monotonic()
                    waiting.append(result)
                if waiting and (
                    result is None
                    or len(waiting) >= DURABLE_BATCH
                    or time.monotonic() - since >= _OLDEST_S
                ):
                    batch, waiting = waiting, []
                    yield from commit(batch)
            batch, waiting = waiting, []
            yield from commit(batch)
        except BaseException:
            self.cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            discard_pending(waiting)
            raise
        pool.shutdown(wait=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessExecutor:
    """Jobs on worker processes (spawned; each builds its own transports).

    Args:
        processes: Worker processes.
        shard_size: Jobs per task (fewer round trips to the pool for small objects).
    """

    def __init__(self, processes: int = 2, *, shard_size: int = 16) -> None:
        self.processes = max(1, processes)
        self.shard_size = max(1, shard_size)

    def map(self, engine: EngineSpec, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job; yield results as they complete (at most ``2 * processes`` tasks)."""
        pool = concurrent.futures.ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        )
        try:
            for result in _run_windowed(
                _shards(jobs, self.shard_size),
                lambda shard: pool.submit(run_shard, engine, shard),
                2 * self.processes,
            ):
                assert result is not None  # no idle timeout here
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Jobs on a Dask cluster through a ``distributed.Client``.

    Tasks are submitted with ``pure=False``; when a worker dies the scheduler reschedules
    its tasks elsewhere, which is safe because every job is idempotent.

    Args:
        client: A connected ``distributed.Client``.
        shard_size: Jobs per task.
        window: Tasks in flight (default: twice the cluster's threads, at least 4).
    """

    def __init__(self, client: Any, *, shard_size: int = 8, window: int | None = None) -> None:
        self.client = client
        self.shard_size = max(1, shard_size)
        self.window = window

    def _window(self) -> int:
        if self.window:
            return self.window
        threads = sum(self.client.nthreads().values()) if self.client.nthreads() else 2
        return max(4, 2 * threads)

    def map(self, engine: EngineSpec, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job on the cluster; yield results as tasks complete."""
        from distributed import as_completed

        window = self._window()
        engine_future = self.client.scatter(engine, broadcast=True)
        completed = as_completed()  # type: ignore[no-untyped-call]
        shards: dict[str, tuple[Job, ...]] = {}

        def collect(future: Any) -> list[JobResult]:
            shard = shards.pop(future.key)
            try:
                results: list[JobResult] = future.result()
            except Exception as exc:  # KilledWorker and friends: this task was lost
                return _lost(shard, f"its Dask task failed ({type(exc).__name__}: {exc})")
            return results

        for shard in _shards(jobs, self.shard_size):
            future = self.client.submit(run_shard, engine_future, shard, pure=False)
            shards[future.key] = shard
            completed.add(future)  # type: ignore[no-untyped-call]
            while completed.count() >= window:  # type: ignore[no-untyped-call]
                yield from collect(next(completed))
        for future in completed:
            yield from collect(future)
