"""The persistent worker pool: processes x threads (or threads here), reused across objects.

Invariants:
- One transfer at a time owns a pool (``acquire``); its jobs carry its transfer id, and
  cancelling sets a shared value that every worker polls between 1 MiB reads, so a
  cancelled transfer stops within one read of each job.  Messages of an abandoned
  transfer that arrive later are ignored by the next one (they carry the old id).
- Child processes are started with an explicit start method (``forkserver`` by default on
  POSIX: no threads or locks are inherited from the parent, unlike ``fork``), ignore
  SIGINT (Ctrl-C is the parent's to handle), and exit as soon as the parent disappears
  (they watch a pipe whose write end only the parent holds), so ``kill -9`` of the parent
  leaves no orphans.
- Workers only ever receive plain job dataclasses and only ever send message dataclasses back.
- A worker process's ``resumable_media`` log records (retry notices, warnings) at or above
  the parent's level when the pool started reach the parent's loggers through a queue, so
  a front end sees a retry in a worker process as it sees one in its own threads.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import logging.handlers
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from resumable_media.parallel.messages import JobMessage
from resumable_media.parallel.plan import DEFAULT_CONNECTIONS, PartJob, RangeJob
from resumable_media.parallel.worker import close_transports, run_job

__all__ = ["DEFAULT_START_METHOD", "WorkerPool", "default_workers", "get_pool", "shutdown_pools"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_START_METHOD = "forkserver"
"""str: Start method for worker processes (``forkserver``; ``spawn`` also works)."""

Job = RangeJob | PartJob


class _LocalFlag:
    """A ``multiprocessing.Value`` look-alike for the in-process (threads only) pool."""

    def __init__(self) -> None:
        self.value = -1


def _thread_loop(get: Callable[[], Job | None], put: Callable[[Any], None], cancel: Any) -> None:
    """Take jobs until the ``None`` sentinel; each job posts its own final message."""
    while True:
        job = get()
        if job is None:
            close_transports()
            return
        run_job(job, put, functools.partial(_is_cancelled, cancel, job.transfer_id))


def _is_cancelled(cancel: Any, transfer_id: int) -> bool:
    # Transfer ids only grow, and a pool runs one transfer at a time, so "cancelled" is
    # "at or below the highest cancelled id": a straggler of an abandoned transfer stays
    # cancelled after the next transfer has started.
    return bool(transfer_id <= cancel.value)


def _process_main(
    jobs: Any,
    results: Any,
    cancel: Any,
    alive: multiprocessing.connection.Connection,
    threads: int,
    logs: Any = None,
    log_level: int = logging.WARNING,
) -> None:
    """Entry point of a worker process: run ``threads`` job loops until the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if logs is not None:
        logger = logging.getLogger("resumable_media")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(logging.handlers.QueueHandler(logs))
        logger.setLevel(log_level)
        logger.propagate = False  # the parent's handlers decide what is shown
    for number in range(threads):
        threading.Thread(
            target=_thread_loop,
            args=(jobs.get, results.put, cancel),
            name=f"resumable-media-worker-{number}",
            daemon=True,
        ).start()
    with contextlib.suppress(EOFError, OSError):
        alive.recv()  # blocks until the parent closes its end (shutdown) or dies
    os._exit(0)


class WorkerPool:
    """A reusable pool of worker threads, optionally spread over worker processes.

    Args:
        processes: Worker processes; 0 runs the threads inside this process.
        threads_per_process: Job threads in each process (or in this process).
        start_method: ``multiprocessing`` start method for the processes.

    Raises:
        ValueError: On a non-positive thread count or a negative process count.
    """

    def __init__(
        self,
        processes: int = 0,
        threads_per_process: int = 4,
        start_method: str = DEFAULT_START_METHOD,
    ) -> None:
        if processes < 0 or threads_per_process < 1:
            raise ValueError(
                f"need processes >= 0 and threads_per_process >= 1, got {processes} and "
                f"{threads_per_process}"
            )
        self.processes = processes
        self.threads_per_process = threads_per_process
        self.start_method = start_method
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self._processes: list[Any] = []
        self._alive_writer: multiprocessing.connection.Connection | None = None
        if processes == 0:
            self._start_threads()
        else:
            self._start_processes()

    def _start_threads(self) -> None:
        """Run the job threads inside this process, fed by plain queues."""
        self._jobs: Any = queue.SimpleQueue()
        self._results: Any = queue.SimpleQueue()
        self._cancel: Any = _LocalFlag()
        self._threads = [
            threading.Thread(
                target=_thread_loop,
                args=(self._jobs.get, self._results.put, self._cancel),
                name=f"resumable-media-worker-{number}",
                daemon=True,
            )
            for number in range(self.threads_per_process)
        ]
        for thread in self._threads:
            thread.start()

    def _start_processes(self) -> None:
        """Start the worker processes, their shared queues, and the relay of their logs."""
        context: Any = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            context.set_forkserver_preload(["resumable_media.parallel.pool"])
        self._jobs = context.SimpleQueue()
        self._results = context.Queue()
        self._cancel = context.RawValue("q", -1)
        self._logs = context.Queue()
        self._log_thread = threading.Thread(
            target=_relay_logs, args=(self._logs,), name="resumable-media-pool-logs", daemon=True
        )
        self._log_thread.start()
        level = logging.getLogger("resumable_media").getEffectiveLevel()
        reader, writer = context.Pipe(duplex=False)
        self._alive_writer = writer
        for number in range(self.processes):
            process = context.Process(
                target=_process_main,
                args=(
                    self._jobs,
                    self._results,
                    self._cancel,
                    reader,
                    self.threads_per_process,
                    self._logs,
                    level,
                ),
                name=f"resumable-media-pool-{number}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        reader.close()

    @property
    def workers(self) -> int:
        """int: Jobs that can run at once."""
        return max(self.processes, 1) * self.threads_per_process

    def acquire(self) -> int:
        """Take the pool for one transfer.

        Returns:
            The new transfer id to put on that transfer's jobs.
        """
        self._lock.acquire()
        if self._closed:
            self._lock.release()
            raise RuntimeError("the worker pool has been shut down")
        self._next_id += 1
        return self._next_id

    def release(self) -> None:
        """Give the pool back after a transfer (all its jobs must have reported)."""
        self._lock.release()

    def submit(self, job: Job) -> None:
        """Queue one job."""
        self._jobs.put(job)

    def post(self, message: JobMessage) -> None:
        """Post a message as if from a worker (used by the parent's own first-chunk thread)."""
        self._results.put(message)

    def get(self, timeout: float) -> JobMessage | None:
        """Wait up to ``timeout`` seconds for one worker message; None on timeout."""
        try:
            message: JobMessage = self._results.get(timeout=timeout)
        except queue.Empty:
            return None
        return message

    def cancel(self, transfer_id: int) -> None:
        """Make every job of ``transfer_id`` (and of any earlier transfer) stop at its next read."""
        self._cancel.value = max(self._cancel.value, transfer_id)

    def cancelled(self, transfer_id: int) -> bool:
        """Whether ``transfer_id`` has been cancelled."""
        return _is_cancelled(self._cancel, transfer_id)

    def check_alive(self) -> None:
        """Raise if a worker process died (its jobs would never report back).

        Raises:
            RuntimeError: Naming the dead process and its exit code; the pool is shut down
                so the next transfer starts a fresh one.
        """
        for process in self._processes:
            if not process.is_alive():
                code = process.exitcode
                self.shutdown()
                raise RuntimeError(
                    f"worker process {process.name} exited unexpectedly (exit code {code}); "
                    "if this is a script, guard its entry point with "
                    "`if __name__ == '__main__':`"
                )

    def shutdown(self) -> None:
        """Stop the workers (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.processes == 0:
            for _thread in self._threads:
                self._jobs.put(None)
            for thread in self._threads:
                thread.join(timeout=1)
            return
        if self._alive_writer is not None:
            self._alive_writer.close()
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        self._results.close()
        self._results.join_thread()
        self._logs.put(None)
        self._log_thread.join(timeout=5)
        self._logs.close()
        self._logs.join_thread()


def _relay_logs(logs: Any) -> None:
    """Hand each worker process's log record to the parent's logger of the same name."""
    while True:
        try:
            record = logs.get()
        except (EOFError, OSError):
            return
        if record is None:
            return
        logging.getLogger(record.name).handle(record)


def default_workers() -> tuple[int, int]:
    """The default ``(processes, threads_per_process)``.

    Returns:
        ``(0, plan.DEFAULT_CONNECTIONS)``: threads of this process, one connection each.
        Threads matched or beat processes (``readinto`` and CRC32C release the GIL), and on
        loopback the number of threads barely costs CPU (see ``plan.DEFAULT_CONNECTIONS``);
        on a link with per-stream caps and round trips it is what sets the speed.  Before,
        2 threads: against the loopback server with no latency 2 streams beat 3-4.
    """
    return 0, DEFAULT_CONNECTIONS


_pools: dict[tuple[int, int, str], WorkerPool] = {}
_pools_lock = threading.Lock()


def get_pool(processes: int, threads_per_process: int, start_method: str) -> WorkerPool:
    """Return the shared pool of that shape, starting it on first use.

    Args:
        processes: Worker processes (0: threads in this process).
        threads_per_process: Threads per process.
        start_method: The multiprocessing start method.

    Returns:
        A started pool, reused by every later transfer with the same shape.
    """
    key = (processes, threads_per_process, start_method)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool._closed:
            pool = _pools[key] = WorkerPool(processes, threads_per_process, start_method)
        return pool


@atexit.register
def shutdown_pools() -> None:
    """Stop every shared pool (runs at interpreter exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        try:
            pool.shutdown()
        except Exception:
            _LOGGER.debug("pool shutdown failed", exc_info=True)
    close_transports()  # the calling thread's own transport (first requests, small objects)
