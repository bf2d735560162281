"""Drives one transfer's jobs through the pool: a bounded window in flight, one result stream.

Invariants:
- At most ``window`` jobs of the transfer are queued or running at once, so a cancel
  only has a few jobs to drain and memory per transfer is bounded by the window.
- ``run`` returns only after every submitted job has posted its final message; on the
  first fatal error, or on KeyboardInterrupt, it cancels the transfer at once, waits up
  to ``DRAIN_TIMEOUT_S`` for the in-flight jobs to stop, and then raises.
- Worker failures arrive as ``RemoteError`` and are raised here as the class the worker saw.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from resumable_media.parallel.messages import JobDone, JobFailed, JobMessage, JobProgress
from resumable_media.parallel.plan import PartJob, RangeJob
from resumable_media.parallel.pool import WorkerPool

__all__ = ["Handler", "Scheduler"]

_LOGGER = logging.getLogger(__name__)

TICK_S = 0.05
"""float: How often the parent wakes up to report progress and write the journal."""

DRAIN_TIMEOUT_S = 1.0
"""float: How long a cancelled transfer waits for its in-flight jobs to stop.

A job blocked in a stalled read notices the cancel only when the read returns (at the
latest after the read timeout); the transfer does not wait for it.  Its late messages
carry the old transfer id and are ignored, and it writes only into its own chunk of a
temporary file that is then either deleted or (resume) re-verified.
"""

INTERRUPT_DRAIN_S = 0.3
"""float: The same wait after Ctrl-C, kept well inside a caller's grace period.

The resume journal is written after the drain; a command that gives the transfer one
second to wind down (``resumable-media cp``) must not kill it while it does.  Progress a
draining job reports after this is simply fetched again by the next run.
"""


class Handler(Protocol):
    """What the scheduler tells the transfer about."""

    def on_progress(self, index: int, done: int, crc: int) -> None:
        """A job reported ``done`` bytes (CRC ``crc``) so far."""

    def on_done(self, index: int, done: int, crc: int, extra: Any) -> None:
        """A job finished."""

    def on_tick(self) -> None:
        """Called every ``TICK_S`` while the transfer runs."""


@dataclasses.dataclass(slots=True, kw_only=True)
class _Run:
    """The moving parts of one ``Scheduler.run``."""

    pending: deque[RangeJob | PartJob]
    outstanding: int
    failure: JobFailed | None = None
    interrupted: BaseException | None = None
    drain_deadline: float | None = None
    next_tick: float = dataclasses.field(default_factory=time.monotonic)


class Scheduler:
    """Runs jobs of one transfer on a pool.

    Args:
        pool: The worker pool (already acquired by the caller).
        transfer_id: The id the pool handed out for this transfer.
        window: Jobs in flight at once (default: the pool's worker count + 1).
        what: "chunk" or "part", for error messages.
    """

    def __init__(
        self, pool: WorkerPool, transfer_id: int, *, window: int | None = None, what: str = "chunk"
    ) -> None:
        self.pool = pool
        self.transfer_id = transfer_id
        self.window = window or pool.workers + 1
        self.what = what

    def start_local(
        self, target: Callable[[Callable[[JobMessage], None], Callable[[], bool]], None]
    ) -> threading.Thread:
        """Run ``target(report, cancelled)`` on a parent thread whose messages join the stream.

        Args:
            target: Must post exactly one final message, like a pool job.

        Returns:
            The started thread (counted by the caller via ``extra_outstanding``).
        """
        tid = self.transfer_id
        thread = threading.Thread(
            target=target,
            args=(self.pool.post, lambda: self.pool.cancelled(tid)),
            name="resumable-media-first-chunk",
            daemon=True,
        )
        thread.start()
        return thread

    def run(
        self,
        jobs: Iterable[RangeJob | PartJob],
        handler: Handler,
        *,
        extra_outstanding: int = 0,
    ) -> None:
        """Submit ``jobs`` (bounded window) and dispatch messages until all have finished.

        Args:
            jobs: The jobs, in the order they should start.
            handler: Receives progress, completions and ticks.
            extra_outstanding: Final messages expected from ``start_local`` threads.

        Raises:
            Exception: The first job failure (rebuilt), or KeyboardInterrupt.
        """
        run = _Run(pending=deque(jobs), outstanding=extra_outstanding)
        limit = self.window + extra_outstanding
        while True:
            try:
                while run.pending and run.failure is None and run.interrupted is None:
                    if run.outstanding >= limit:
                        break
                    self.pool.submit(run.pending.popleft())
                    run.outstanding += 1
                if run.outstanding == 0:
                    break
                if run.drain_deadline is not None and time.monotonic() > run.drain_deadline:
                    _LOGGER.info(
                        "%d cancelled jobs still blocked in reads; not waiting", run.outstanding
                    )
                    break
                message = self.pool.get(TICK_S)
                if message is None:
                    self.pool.check_alive()
                elif message.transfer_id == self.transfer_id:
                    self._dispatch(message, handler, run)
                now = time.monotonic()
                if now >= run.next_tick:
                    run.next_tick = now + TICK_S
                    handler.on_tick()
            except KeyboardInterrupt as exc:
                if run.interrupted is not None:
                    raise
                run.interrupted = exc
                self._cancel()
                run.drain_deadline = time.monotonic() + INTERRUPT_DRAIN_S
        if run.interrupted is not None:
            raise run.interrupted
        if run.failure is not None:
            raise run.failure.error.rebuild(f"{self.what} {run.failure.index}")

    def _dispatch(self, message: JobMessage, handler: Handler, run: _Run) -> None:
        """Hand one message of this transfer to ``handler``; the first failure cancels."""
        if isinstance(message, JobProgress):
            handler.on_progress(message.index, message.done, message.crc)
            return
        run.outstanding -= 1
        if isinstance(message, JobDone):
            handler.on_done(message.index, message.done, message.crc, message.etag)
        elif isinstance(message, JobFailed) and run.failure is None:
            run.failure = message
            self._cancel()
            run.drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S

    def _cancel(self) -> None:
        self.pool.cancel(self.transfer_id)
