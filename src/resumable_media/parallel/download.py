"""ParallelDownload: ranged chunks fetched by a worker pool into a preallocated, mapped temp file.

Invariants:
- The first ranged GET (chunk 0, or the first unfinished chunk when resuming) reveals the
  size, generation and ``x-goog-hash``; no metadata request is made.  Every later range
  pins that generation, and every ``Content-Range`` is checked against the request.
- The destination is replaced only after the combined CRC32C (and MD5 when asked) matched
  the server's, and after fsync; on a mismatch the temporary file is removed and the
  destination left as it was (``DataCorruption``).
- A download interrupted by a transient failure or Ctrl-C keeps its temporary file and
  journal (``resume=True``) so the same call later fetches only what is missing; a fatal
  failure (bad response, corruption) removes them.
- Objects smaller than two chunks never touch the pool; gzip-stored objects are fetched
  and decompressed in one stream (the stored CRC32C covers the compressed bytes).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import time
from typing import Any

from resumable_media import checksums, common
from resumable_media._transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    TransportFactory,
    TransportSource,
    own_retry,
    transport_source,
)
from resumable_media.parallel import single
from resumable_media.parallel.follow import BackgroundSync, OrderedMd5
from resumable_media.parallel.journal import Journal
from resumable_media.parallel.messages import JobMessage, JobProgress
from resumable_media.parallel.plan import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_STREAM_THREADS,
    Chunk,
    RangeJob,
    TransferResult,
    connections_for,
    first_byte_seconds,
    headers_tuple,
    plan_chunks,
    resolve_write_mode,
)
from resumable_media.parallel.pool import DEFAULT_START_METHOD, default_workers, get_pool
from resumable_media.parallel.progress import ProgressCallback, ProgressTracker
from resumable_media.parallel.scheduler import Scheduler
from resumable_media.parallel.sink import TempSink, fill_stream, is_path
from resumable_media.parallel.worker import fetch_range, run_job, transport_for

__all__ = ["ParallelDownload"]

_LOGGER = logging.getLogger(__name__)

JOURNAL_INTERVAL_S = 0.5
"""float: How often (at most) the resume journal is rewritten while a download runs."""

_KEEP_FOR_RESUME = (KeyboardInterrupt, ConnectionError, TimeoutError)


@dataclasses.dataclass(frozen=True, slots=True)
class _Restart:
    """An attempt ended in a way that calls for another: with or without the journal, and
    (after a resumed run failed to verify) with the progress count started afresh."""

    allow_resume: bool
    fresh_progress: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Opened:
    """An attempt after its first request: the temp file, the journal it resumes (None
    when starting afresh), the probe range, its open response and the object's facts."""

    sink: TempSink
    journal: Journal | None
    probe: single.Probe
    response: Any
    info: single.FirstInfo


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Layout:
    """The chunks of an attempt, the journal that tracks them, and the last byte."""

    chunks: list[Chunk]
    journal: Journal
    end: int
    resumed_from: int = 0  # bytes the journal of an interrupted run counts as in place


class _ChunkState:
    """The parent's view of a pooled download: per-chunk progress, journal, followers."""

    def __init__(
        self,
        chunks: list[Chunk],
        journal: Journal,
        sink: TempSink,
        tracker: ProgressTracker,
        md5: OrderedMd5 | None,
        syncer: BackgroundSync,
    ) -> None:
        self.chunks = chunks
        self.journal = journal
        self.sink = sink
        self.tracker = tracker
        self.md5 = md5
        self.syncer = syncer
        self._dirty = False
        self._next_save = time.monotonic() + JOURNAL_INTERVAL_S

    def on_progress(self, index: int, done: int, crc: int) -> None:
        if done > self.journal.chunks[index][0]:
            self.journal.chunks[index] = [done, crc]
            self.tracker.set(index, done)
            self._dirty = True

    def on_done(self, index: int, done: int, crc: int, extra: Any) -> None:
        self.on_progress(index, done, crc)
        if self.md5 is not None:
            self.md5.completed(index)
        self.syncer.completed(self.chunks[index].length)

    def on_tick(self) -> None:
        self.tracker.tick()
        if self._dirty and time.monotonic() >= self._next_save:
            self.save_journal()

    def save_journal(self) -> None:
        self._dirty = False
        self._next_save = time.monotonic() + JOURNAL_INTERVAL_S
        self.journal.save(self.sink.journal_path)


class ParallelDownload:
    """Download one object with parallel ranged GETs into ``filename``.

    Args:
        media_url: The object's media URL (``…/o/NAME?alt=media``).
        filename: The destination path; written only when the download verified.  Or a
            writable binary stream or buffer (see ``sink.StreamSink``): filled in order by
            threads of this process (``processes`` is ignored), at most
            ``max(4, threads_per_process) x chunk_size`` bytes held; ``DataCorruption`` is
            raised before the last chunk is written.
        chunk_size: Bytes per ranged GET.
        processes: Worker processes; 0 keeps the worker threads in this process.
            None picks the default (see ``pool.default_workers``).
        threads_per_process: Connections per process (None: default).
        checksum: "crc32c" (default), "md5", "auto" or None.  The per-chunk CRC32C is
            always computed; "md5" additionally hashes the file in order on its own thread.
            An object without an MD5 (composite, multipart) falls back to CRC32C checking.
        headers: Extra request headers (e.g. ``x-goog-user-project``).
        start: First byte to download (>= 0).
        end: Last byte to download (inclusive); None for the end of the object.  Partial
            downloads cannot be checked against the whole-object hash (``verified`` False).
        resume: Reuse the temporary file and journal of an interrupted run.
        retry: The retry policy for each request (default: a fresh default RetryStrategy;
            None: a single attempt, as everywhere in the package).
        timeout: Seconds to wait: one number, a (connect, read) pair, or None.
        decompress: Decompress gzip-stored objects (single stream); False saves the stored
            bytes, fetched in parallel.
        start_method: The multiprocessing start method for worker processes.
        write_mode: "auto" (default), "pwrite" (each body step is read into a reused buffer,
            hashed there and written into the preallocated file) or "mmap" (read straight
            into the mapped slice of the file); see ``plan.WRITE_MODES`` for the measurements
            behind "auto".

    Raises:
        ValueError: On invalid sizes, ranges or checksum names.
    """

    def __init__(
        self,
        media_url: str,
        filename: str | os.PathLike[str] | Any,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        processes: int | None = None,
        threads_per_process: int | None = None,
        checksum: common.Checksum = "crc32c",
        headers: dict[str, str] | None = None,
        start: int | None = None,
        end: int | None = None,
        resume: bool = True,
        retry: common.RetryStrategy | None = DEFAULT_RETRY,
        timeout: Timeout = DEFAULT_TIMEOUT,
        decompress: bool = True,
        start_method: str = DEFAULT_START_METHOD,
        write_mode: str = "auto",
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if start is not None and start < 0:
            raise ValueError(f"start must be >= 0 (suffix ranges are not supported), got {start}")
        if end is not None and end < (start or 0):
            raise ValueError(f"end ({end}) must be >= start ({start or 0})")
        default_processes, default_threads = default_workers()
        self.media_url = media_url
        self.target = None if is_path(filename) else filename
        self.filename = "" if self.target is not None else os.fspath(filename)
        self.chunk_size = chunk_size
        self.processes = default_processes if processes is None else processes
        self.threads_per_process = threads_per_process or (
            default_threads if self.target is None else DEFAULT_STREAM_THREADS
        )
        # A default download into a file sizes its connections by the first round trip.
        self._adaptive = threads_per_process is None and self.target is None
        self.checksum = checksums.resolve_checksum(checksum)
        self.headers = headers_tuple(headers)
        self.start = start or 0
        self.end = end
        self.resume = resume
        self.retry = own_retry(retry)
        self.timeout = timeout
        self.decompress = decompress
        self.start_method = start_method
        self.write_mode = resolve_write_mode(write_mode)

    def consume(
        self,
        transport_factory: TransportFactory | Transport,
        *,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Run the download.

        Args:
            transport_factory: A picklable zero-argument callable returning a
                requests-compatible transport (see ``resumable_media.transports``), or,
                when everything runs in this process (``processes=0``, the default), a
                session used directly by every thread.
            progress: ``progress(bytes_done, total)``, called at least 4 times a second.

        Returns:
            What was transferred and whether it verified.

        Raises:
            DataCorruption: The bytes do not match the object's hash (nothing written).
            InvalidResponse: The server answered unexpectedly.
            ConnectionError: Retries were exhausted (the partial state is kept for resume).
            TypeError: A session, or a factory that cannot be pickled, with
                ``processes > 0``; an object that is neither a factory nor a session.
        """
        if self.target is not None:
            return fill_stream(self, transport_factory, progress)
        factory = transport_source(
            transport_factory, processes=self.processes, owner="ParallelDownload"
        )
        began = time.monotonic()
        result = self._consume(factory, ProgressTracker(progress, None))
        return TransferResult.since(
            began,
            bytes=result.bytes,
            crc32c=result.crc32c,
            md5=result.md5,
            verified=result.verified,
            generation=result.generation,
            resumed=result.resumed_from > 0,
            moved=result.bytes - result.resumed_from,
        )

    # ------------------------------------------------------------------ #

    def _consume(self, factory: TransportSource, tracker: ProgressTracker) -> single.Outcome:
        """Attempt the download until an attempt ends it (restarts are a loop)."""
        transport = transport_for(factory)
        allow_resume = self.resume
        while True:
            step = self._attempt(factory, transport, tracker, allow_resume)
            if isinstance(step, single.Outcome):
                return step
            allow_resume = step.allow_resume
            if step.fresh_progress:
                tracker = ProgressTracker(tracker.callback, None)

    def _attempt(
        self,
        factory: TransportSource,
        transport: Any,
        tracker: ProgressTracker,
        allow_resume: bool,
    ) -> single.Outcome | _Restart:
        """One pass: probe, plan (or stream whole), fetch, verify, commit."""
        opened = self._open(transport, allow_resume)
        if isinstance(opened, _Restart):
            return opened
        if opened.info.whole_stream:
            return single.stream_whole(
                self, opened.sink, transport, opened.response, opened.info, tracker
            )
        layout = self._lay_out(opened, tracker)
        if isinstance(layout, _Restart):
            return layout
        crc, md5_b64 = self._fetch(factory, transport, opened, layout, tracker)
        tracker.tick(force=True)
        full = self.start == 0 and layout.end == opened.info.total - 1
        try:
            verified = single.verify(self, opened.info.hashes, crc, md5_b64, full=full)
        except common.DataCorruption:
            opened.sink.discard()
            if opened.journal is None:
                raise
            _LOGGER.warning(
                "resumed download of %s failed to verify; starting over", self.media_url
            )
            return _Restart(allow_resume=False, fresh_progress=True)
        opened.sink.commit()
        return single.Outcome(
            bytes=layout.end - self.start + 1,
            crc32c=checksums.crc32c_to_b64(crc),
            md5=md5_b64,
            verified=verified,
            generation=opened.info.generation,
            resumed_from=layout.resumed_from,
        )

    def _open(self, transport: Any, allow_resume: bool) -> _Opened | _Restart:
        """Find a usable journal, send the first request, and check the journal still fits."""
        sink = TempSink(self.filename)
        journal = Journal.load(sink.journal_path) if allow_resume else None
        if journal is not None and not (
            journal.matches(self.media_url, self.start, self.end, self.chunk_size)
            and _file_size(sink.temp_path) == journal.end - journal.start + 1
        ):
            journal = None
        probe = _probe_range(journal, self.start, self.end, self.chunk_size)
        response, info = single.open_first(self, transport, probe)
        if journal is not None and (
            info.generation != journal.generation or info.total != journal.size
        ):
            _LOGGER.info("%s changed since the interrupted run; starting over", self.media_url)
            single.close(response)
            sink.discard()
            return _Restart(allow_resume=False)
        return _Opened(sink=sink, journal=journal, probe=probe, response=response, info=info)

    def _lay_out(self, opened: _Opened, tracker: ProgressTracker) -> _Layout | _Restart:
        """Plan the chunks, open the temporary file, and re-check a resumed run's bytes."""
        info, sink, journal = opened.info, opened.sink, opened.journal
        end = info.total - 1 if self.end is None else min(self.end, info.total - 1)
        chunks = plan_chunks(self.start, end, self.chunk_size)
        if journal is None:
            journal = Journal(
                media_url=self.media_url,
                generation=info.generation,
                size=info.total,
                start=self.start,
                end=end,
                chunk_size=self.chunk_size,
                crc32c=info.hashes.get("crc32c"),
                md5=info.hashes.get("md5"),
                chunks=[[0, 0] for _ in chunks],
            )
        tracker.total = end - self.start + 1
        for chunk in chunks:
            tracker.set(chunk.index, journal.chunks[chunk.index][0])
        try:
            sink.open(end - self.start + 1, keep_existing=opened.journal is not None)
        except BaseException:
            single.close(opened.response)
            raise
        if opened.journal is not None and _forget_unverified(sink.fd, chunks, journal):
            # Bytes the journal counts as done are not on disk any more (lost writes after a
            # crash, or changed by someone else): fetch those chunks again, from a fresh probe.
            single.close(opened.response)
            Journal.save(journal, sink.journal_path)
            sink.release()
            return _Restart(allow_resume=True)
        already = sum(done for done, _crc in journal.chunks) if opened.journal is not None else 0
        return _Layout(chunks=chunks, journal=journal, end=end, resumed_from=already)

    def _fetch(
        self,
        factory: TransportSource,
        transport: Any,
        opened: _Opened,
        layout: _Layout,
        tracker: ProgressTracker,
    ) -> tuple[int, str | None]:
        """Fetch every chunk; keep the partial state for resume after a transient failure."""
        chunks, journal, sink = layout.chunks, layout.journal, opened.sink
        resumed = opened.journal is not None
        jobs = [self._job(chunk, journal, opened, factory) for chunk in chunks]
        md5 = OrderedMd5(sink.fd, chunks) if self.checksum == "md5" else None
        probe_index, response = opened.probe.index, opened.response
        try:
            if len(chunks) <= 2 and not resumed:
                with tracker.ticking():
                    _run_in_process(transport, jobs, probe_index, response, journal, tracker, md5)
            else:
                self._run_pooled(
                    transport, jobs, probe_index, response, journal, sink, tracker, md5
                )
            crc = checksums.crc32c_combine_many(
                (journal.chunks[chunk.index][1], chunk.length) for chunk in chunks
            )
            return crc, None if md5 is None else _b64(md5.result())
        except BaseException as exc:
            if md5 is not None:
                md5.cancel()
            if isinstance(exc, _KEEP_FOR_RESUME) and self.resume and len(chunks) > 2:
                Journal.save(journal, sink.journal_path)
                sink.release()
            else:
                sink.discard()
            raise

    def _job(
        self, chunk: Chunk, journal: Journal, opened: _Opened, factory: TransportSource
    ) -> RangeJob:
        done, crc = journal.chunks[chunk.index]
        return RangeJob(
            transfer_id=0,
            index=chunk.index,
            url=self.media_url,
            path=opened.sink.temp_path,
            offset=chunk.offset,
            start=chunk.start,
            length=chunk.length,
            done=done,
            crc=crc,
            total=opened.info.total,
            generation=opened.info.generation,
            headers=self.headers,
            factory=factory,
            retry=self.retry,
            timeout=self.timeout,
            write_mode=self.write_mode,
        )

    def _run_pooled(
        self,
        transport: Any,
        jobs: list[RangeJob],
        probe_index: int,
        response: Any,
        journal: Journal,
        sink: TempSink,
        tracker: ProgressTracker,
        md5: OrderedMd5 | None,
    ) -> None:
        threads = self.threads_per_process
        if self._adaptive and self.processes == 0:
            first_byte = first_byte_seconds(response)
            threads = connections_for(first_byte, threads)
            _LOGGER.debug(
                "%d connections (first response after %s)",
                threads,
                "?" if first_byte is None else f"{first_byte * 1000:.2f} ms",
            )
        pool = get_pool(self.processes, threads, self.start_method)
        tid = pool.acquire()
        syncer = BackgroundSync(sink.fd)
        chunks = plan_chunks(journal.start, journal.end, journal.chunk_size)
        state = _ChunkState(chunks, journal, sink, tracker, md5, syncer)
        try:
            jobs = [_with_tid(job, tid) for job in jobs]
            scheduler = Scheduler(pool, tid)
            for job in jobs:
                if job.done >= job.length:
                    state.on_done(job.index, job.done, job.crc, None)
            first = jobs[probe_index]

            def run_first(report: Any, cancelled: Any) -> None:
                run_job(first, report, cancelled, transport=transport, response=response)

            scheduler.start_local(run_first)
            rest = [job for job in jobs if job.index != probe_index and job.done < job.length]
            scheduler.run(rest, state, extra_outstanding=1)
        finally:
            syncer.stop()
            pool.release()


def _with_tid(job: RangeJob, tid: int) -> RangeJob:
    return dataclasses.replace(job, transfer_id=tid)


def _run_in_process(
    transport: Any,
    jobs: list[RangeJob],
    probe_index: int,
    response: Any,
    journal: Journal,
    tracker: ProgressTracker,
    md5: OrderedMd5 | None,
) -> None:
    """Small objects: fetch the (at most two) chunks one after the other on this thread."""

    def report(message: JobMessage) -> None:
        if isinstance(message, JobProgress):
            tracker.set(message.index, message.done)
            tracker.tick()

    for job in jobs:
        first = response if job.index == probe_index else None
        done, crc = fetch_range(transport, job, report, lambda: False, first)
        journal.chunks[job.index] = [done, crc]
        tracker.set(job.index, done)
        if md5 is not None:
            md5.completed(job.index)


def _probe_range(
    journal: Journal | None, start: int, end: int | None, chunk_size: int
) -> single.Probe:
    """The first request: chunk 0, or the rest of the first unfinished chunk of a journal."""
    if journal is not None:
        layout = plan_chunks(journal.start, journal.end, journal.chunk_size)
        for chunk in layout:
            done = journal.chunks[chunk.index][0]
            if done < chunk.length:
                return single.Probe(chunk.index, chunk.start + done, chunk.end)
        return single.Probe(0, layout[0].start, layout[0].end) if layout else single.Probe(0, 0, 0)
    last = start + chunk_size - 1
    if end is not None:
        last = min(last, end)
    return single.Probe(0, start, last)


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _forget_unverified(fd: int, chunks: list[Chunk], journal: Journal) -> int:
    """Re-read each chunk's done bytes from the temp file and reset the chunks whose CRC32C
    no longer matches the journal's; returns how many were reset."""
    reset = 0
    for chunk in chunks:
        done, crc = journal.chunks[chunk.index]
        if not done:
            continue
        actual = position = 0
        while position < done:
            piece = os.pread(fd, min(done - position, 8 << 20), chunk.offset + position)
            if not piece:
                break
            actual = checksums.crc32c(piece, actual)
            position += len(piece)
        if position != done or actual != crc:
            _LOGGER.warning("chunk %d of the interrupted download does not verify", chunk.index)
            journal.chunks[chunk.index] = [0, 0]
            reset += 1
    return reset


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
