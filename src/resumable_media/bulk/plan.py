"""Planning a sync: walk both listings together (the march), compare, emit jobs lazily.

Invariants:
- The source and destination listings are consumed together in name order (rclone's
  march); the plan holds one entry of each at a time, so memory does not grow with the
  number of objects.  Planned deletions are spooled to an anonymous temp file, not kept in
  memory, and are released only after the march ran to its end over a *complete* source
  listing (:attr:`Plan.may_delete`): nothing is ever deleted after a failed or partial one.
- An object is unchanged when size and CRC32C match.  A local file's CRC32C comes from the
  checksum cache (hashing only when it changed); a ledger record saying the copy was done is
  trusted, without hashing, only while the destination still shows the recorded size,
  CRC32C and generation (and the local side the recorded mtime).
- Planning never touches a destination.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO

from resumable_media._objects.client import Storage
from resumable_media._objects.paths import UnsafeName, local_path_for
from resumable_media._objects.urls import GsUrl, is_gs_url, parse_gs_url
from resumable_media.bulk.crccache import ChecksumCache
from resumable_media.bulk.filters import Filters
from resumable_media.bulk.jobs import Action, Job, JobResult, Status
from resumable_media.bulk.ledger import Ledger
from resumable_media.bulk.listing import Entry, Listing, walk_gcs, walk_local

__all__ = ["Location", "Plan", "march"]


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """One side of a sync: a ``gs://bucket/prefix`` or a local directory."""

    text: str
    url: GsUrl | None = None
    path: pathlib.Path | None = None

    @classmethod
    def parse(cls, text: str) -> Location:
        """Parse SRC or DST (a ``gs://`` URL, else a local directory path).

        Raises:
            ValueError: When a ``gs://`` URL is malformed.
        """
        if is_gs_url(text):
            return cls(text, url=parse_gs_url(text))
        return cls(text, path=pathlib.Path(os.path.abspath(text)))

    def target(self, name: str) -> str:
        """The full location of the relative ``name`` on this side."""
        if self.url is not None:
            return str(self.url.child(name))
        assert self.path is not None
        return str(self.path / name)


def march(
    source: Iterator[Entry], destination: Iterator[Entry]
) -> Iterator[tuple[Entry | None, Entry | None]]:
    """Pair two name-ordered listings: ``(src, dst)`` with None on the side lacking it."""
    src = next(source, None)
    dst = next(destination, None)
    while src is not None or dst is not None:
        if dst is None or (src is not None and src.name < dst.name):
            yield src, None
            src = next(source, None)
        elif src is None or dst.name < src.name:
            yield None, dst
            dst = next(destination, None)
        else:
            yield src, dst
            src, dst = next(source, None), next(destination, None)


class Plan:
    """The lazily computed difference between SRC and DST.

    Iterating yields a :class:`Job` per object to copy and a ready :class:`JobResult` per
    object found unchanged (``skipped``) or refused (``failed``).  Afterwards,
    :meth:`deletions` yields the delete jobs, but only when :attr:`may_delete`.

    Args:
        source: SRC (local directory or ``gs://bucket/prefix``).
        destination: DST.
        storage: Listing and metadata requests.
        delete: Plan deletions of destination entries missing from the source.
        filters: Include/exclude rules (applied to both sides).
        checksums: The local CRC32C cache (None: hash every compared file).
        ledger: A manifest of earlier runs to trust (after confirming each record).
        page_size: Objects per listing page (the server's default when None).
        follow_symlinks: Follow symlinks to files outside a local tree (default: skip
            them with a warning, as every other special file).

    Raises:
        ValueError: When both sides are local (use ``cp``/``rsync``) or a URL is malformed.
    """

    def __init__(
        self,
        source: str,
        destination: str,
        storage: Storage,
        *,
        delete: bool = False,
        filters: Filters | None = None,
        checksums: ChecksumCache | None = None,
        ledger: Ledger | None = None,
        page_size: int | None = None,
        follow_symlinks: bool = False,
    ) -> None:
        self.source = Location.parse(source)
        self.destination = Location.parse(destination)
        if self.source.url is None and self.destination.url is None:
            raise ValueError("at least one of SRC and DST must be a gs:// URL")
        self.storage = storage
        self.delete = delete
        self.filters = filters or Filters()
        self.checksums = checksums or ChecksumCache(None)
        self.ledger = ledger
        self.page_size = page_size
        self.follow_symlinks = follow_symlinks
        self.source_listing = Listing(source)
        self.destination_listing = Listing(destination)
        self.planned_deletions = 0
        self._spool: IO[bytes] | None = None
        self._marched = False

    def _walk(self, side: Location, listing: Listing) -> Iterator[Entry]:
        if side.url is not None:
            entries = walk_gcs(self.storage, side.url, listing, page_size=self.page_size)
        else:
            assert side.path is not None
            if side is self.source and not side.path.is_dir():
                listing.errors.append(f"{side.text}: not a directory (sync copies a tree)")
                listing.finished = True
                return iter(())
            entries = walk_local(side.path, listing, follow_symlinks=self.follow_symlinks)
        return self.filters.apply(entries)

    @property
    def action(self) -> Action:
        """The copy action of this plan (upload, download or rewrite)."""
        if self.source.url is None:
            return Action.UPLOAD
        return Action.DOWNLOAD if self.destination.url is None else Action.REWRITE

    @property
    def may_delete(self) -> bool:
        """True when deletions may run: the march finished over a complete source listing."""
        return self._marched and self.source_listing.complete

    def __iter__(self) -> Iterator[Job | JobResult]:
        pairs = march(
            self._walk(self.source, self.source_listing),
            self._walk(self.destination, self.destination_listing),
        )
        for src, dst in pairs:
            if src is None:
                if self.delete and dst is not None:
                    self._spool_delete(dst)
                continue
            yield self._decide(src, dst)
        for path, reason in self.source_listing.refused:
            yield self._refused(path, "", reason)
        self._marched = True

    def _local_crc(self, side: Location, entry: Entry) -> str:
        assert entry.mtime_ns is not None and entry.inode is not None
        return self.checksums.crc32c(
            side.target(entry.name), entry.size, entry.mtime_ns, entry.inode
        )

    def _crc(self, side: Location, entry: Entry) -> str | None:
        return entry.crc32c if side.url is not None else self._local_crc(side, entry)

    def _same_crc(self, src: Entry, dst: Entry) -> bool:
        crc = self._crc(self.source, src)
        return crc is not None and crc == self._crc(self.destination, dst)

    def _gs_side(self, src: Entry, dst: Entry) -> Entry:
        return src if self.action is Action.DOWNLOAD else dst

    def _recorded_done(self, source: str, target: str, src: Entry, dst: Entry) -> bool:
        if self.ledger is None or src.size != dst.size:
            return False
        gs = self._gs_side(src, dst)
        local = None if self.action is Action.REWRITE else (dst if gs is src else src)
        if self.action is Action.REWRITE and src.crc32c != dst.crc32c:
            return False
        return self.ledger.still_done(
            source,
            target,
            size=src.size,
            crc32c=gs.crc32c,
            generation=gs.generation,
            mtime_ns=None if local is None else local.mtime_ns,
        )

    def _decide(self, src: Entry, dst: Entry | None) -> Job | JobResult:
        source = self.source.target(src.name)
        try:
            target = self._destination_target(src.name)
        except UnsafeName as exc:
            return self._refused(source, self.destination.target(src.name), str(exc))
        if dst is not None and src.size == dst.size:
            try:
                same = self._recorded_done(source, target, src, dst) or self._same_crc(src, dst)
            except OSError as exc:
                return self._refused(exc.filename or source, target, exc.strerror or str(exc))
            if same:
                return self._skipped(source, target, src, dst)
        return Job(
            action=self.action,
            source=source,
            destination=target,
            size=src.size,
            crc32c=src.crc32c,
            md5=src.md5,
            source_generation=src.generation,
            if_generation_match=None
            if self.action is Action.DOWNLOAD
            else (dst.generation if dst is not None and dst.generation else 0),
            mtime_ns=src.mtime_ns,
        )

    def _destination_target(self, name: str) -> str:
        if self.destination.path is not None:
            return str(local_path_for(self.destination.path, name))
        return self.destination.target(name)

    def _skipped(self, source: str, target: str, src: Entry, dst: Entry) -> JobResult:
        gs = self._gs_side(src, dst)
        local = dst if gs is src else src
        return JobResult(
            source=source,
            destination=target,
            action=self.action,
            status=Status.SKIPPED,
            size=src.size,
            crc32c=gs.crc32c,
            md5=gs.md5,
            generation=gs.generation,
            mtime_ns=local.mtime_ns if self.action is not Action.REWRITE else None,
        )

    def _refused(self, source: str, target: str, reason: str) -> JobResult:
        return JobResult(
            source=source,
            destination=target,
            action=self.action,
            status=Status.FAILED,
            size=0,
            error=f"{source}: {reason}",
        )

    def _spool_delete(self, dst: Entry) -> None:
        if self._spool is None:
            # Closed by deletions(), after the march (not a with-block: it outlives a call).
            self._spool = tempfile.TemporaryFile(prefix="rm-sync-deletes-")  # noqa: SIM115
        job = Job(
            action=Action.DELETE,
            source="",
            destination=self.destination.target(dst.name),
            size=dst.size,
            crc32c=dst.crc32c,
            md5=dst.md5,
            if_generation_match=dst.generation,
            mtime_ns=dst.mtime_ns,
        )
        pickle.dump(job, self._spool)
        self.planned_deletions += 1

    def close(self) -> None:
        """Drop the spooled deletions (they are withheld, or were run)."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()

    def deletions(self) -> Iterator[Job]:
        """The delete jobs (empty unless :attr:`may_delete`); the spool is then dropped."""
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            if not self.may_delete:
                return
            spool.seek(0)
            while True:
                try:
                    job = pickle.load(spool)
                except EOFError:
                    return
                yield job
