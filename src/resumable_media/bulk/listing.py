"""Streamed listings of a local tree and of a ``gs://`` prefix, in one shared order.

Invariants:
- Both walks yield :class:`Entry` values whose ``name`` (relative, ``/``-separated) strictly
  increases in code-point order, which is the order of the names' UTF-8 bytes, i.e. the order
  in which Cloud Storage lists objects.  The local walk gets there by sorting each directory's
  entries with a directory keyed as ``name + "/"`` (so ``a-b`` < ``a.b`` < ``a/…``).
- Memory is one directory's names (local) or one page (Cloud Storage), never the whole tree.
- A walk never raises for a listing failure: it records it in :class:`Listing` and ends or
  skips that directory, so callers can act on what was seen and still know, at the end,
  whether the listing was complete (nothing may be deleted after an incomplete one).
- Our own scratch files (download temp files, accelerator partial files and journals) are
  never listed: they are not user data.  Download temp files are reported in
  :attr:`Listing.stale_temps` (a killed run leaves them behind).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
from collections.abc import Iterator

from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.paths import tree_file
from resumable_media._objects.urls import GsUrl

__all__ = ["Entry", "Listing", "dir_prefix", "walk_gcs", "walk_local"]

_LOGGER = logging.getLogger(__name__)

# Download temp files (_objects/transfer.py) and the accelerator's partial file and journal.
_TEMP = re.compile(r"^\..+\.[^.]+\.rm-part$")
_SCRATCH = re.compile(r"\.rmpart(\.journal(\.tmp)?)?$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One file or object of a listing.

    Attributes:
        name: Path relative to the listed root, ``/``-separated.
        size: Size in bytes.
        crc32c: Base64 CRC32C (objects; None for local files until computed).
        md5: Base64 MD5 (objects, when the server has one).
        generation: Object generation (Cloud Storage only).
        mtime_ns: Modification time (local files only).
        inode: Inode number (local files only).
    """

    name: str
    size: int
    crc32c: str | None = None
    md5: str | None = None
    generation: int | None = None
    mtime_ns: int | None = None
    inode: int | None = None


@dataclasses.dataclass(slots=True)
class Listing:
    """The state of one walk: whether it ran to its end, and what went wrong on the way.

    Attributes:
        root: The listed location, for messages.
        finished: The walk reached its end (it may still have errors).
        errors: Why parts of the listing are missing (unreadable directories, failed pages).
        refused: ``(path, reason)`` of entries that were seen but cannot be synced.
        stale_temps: Temp files of interrupted downloads seen in the tree (a sync into
            this tree removes them; they never hold a destination's content).
        ignored: ``(path, reason)`` of special files left out (FIFOs, sockets, devices,
            dangling symlinks, loops, symlinks out of the tree).
    """

    root: str
    finished: bool = False
    errors: list[str] = dataclasses.field(default_factory=list)
    refused: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    stale_temps: list[str] = dataclasses.field(default_factory=list)
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every entry under the root was seen."""
        return self.finished and not self.errors


def dir_prefix(name: str) -> str:
    """``name`` as a directory-like object prefix (``""`` stays the bucket root)."""
    return name if not name or name.endswith("/") else name + "/"


def _sorted_children(path: pathlib.Path, listing: Listing) -> list[tuple[str, str, bool]] | None:
    """``(sort key, name, is_dir)`` of one directory, or None when it cannot be read."""
    try:
        with os.scandir(path) as scan:
            children = []
            for item in scan:
                try:
                    is_dir = item.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                children.append((item.name + "/" if is_dir else item.name, item.name, is_dir))
    except OSError as exc:
        listing.errors.append(f"{path}: cannot read this directory ({exc.strerror or exc})")
        return None
    children.sort()
    return children


def _walk_dir(
    path: pathlib.Path,
    prefix: str,
    listing: Listing,
    root: pathlib.Path,
    follow_symlinks: bool,
) -> Iterator[Entry]:
    children = _sorted_children(path, listing)
    for _key, name, is_dir in children or ():
        child = path / name
        if is_dir:
            yield from _walk_dir(child, prefix + name + "/", listing, root, follow_symlinks)
            continue
        if _TEMP.match(name):
            listing.stale_temps.append(str(child))
            continue
        if _SCRATCH.search(name):
            continue
        verdict = tree_file(child, root, follow_symlinks=follow_symlinks)
        if isinstance(verdict, str):
            if not verdict.startswith("cannot be read"):
                _LOGGER.warning("%s: %s", child, verdict)
                listing.ignored.append((str(child), verdict))
                continue
            if not child.exists():
                continue  # removed since the directory was read
            listing.refused.append((str(child), verdict))
            continue
        info = verdict
        relative = prefix + name
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            listing.refused.append((str(child), "the name is not valid UTF-8; not synced"))
            continue
        yield Entry(name=relative, size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino)


def _checked_order(entries: Iterator[Entry], listing: Listing) -> Iterator[Entry]:
    previous: str | None = None
    for entry in entries:
        if previous is not None and entry.name <= previous:
            # The march would misjudge everything after this point: stop, incomplete.
            listing.errors.append(
                f"{listing.root}: listing out of order ({entry.name!r} after {previous!r})"
            )
            return
        previous = entry.name
        yield entry


def walk_local(
    root: pathlib.Path, listing: Listing, *, follow_symlinks: bool = False
) -> Iterator[Entry]:
    """Yield every regular file under ``root`` in Cloud Storage listing order.

    Symlinks to files inside the tree are followed (outside it only with
    ``follow_symlinks``), symlinks to directories are not (no cycles, no escape). FIFOs,
    sockets, devices, dangling symlinks and loops are left out with a warning each and
    recorded in ``listing.ignored``. A missing ``root`` is an empty, complete listing (a
    destination not created yet); an unreadable directory is recorded in
    ``listing.errors`` and skipped.

    Args:
        root: The directory to walk.
        listing: Receives the walk's state.
        follow_symlinks: Follow symlinks to files outside the tree.
    """
    if root.exists():
        yield from _checked_order(_walk_dir(root, "", listing, root, follow_symlinks), listing)
    listing.finished = True


def walk_gcs(
    storage: Storage, url: GsUrl, listing: Listing, *, page_size: int | None = None
) -> Iterator[Entry]:
    """Yield every object under the prefix ``url`` (as a directory) in listing order.

    Directory placeholder objects (a name ending in ``/``, zero bytes) are not entries.
    A page that cannot be fetched (after the retry policy gave up) ends the walk with the
    failure in ``listing.errors``.

    Args:
        storage: Where to list.
        url: Bucket and prefix; the prefix is treated as a directory (``p`` lists ``p/…``).
        listing: Receives the walk's state.
        page_size: ``maxResults`` per page (the server's default when None).
    """
    prefix = dir_prefix(url.name)

    def entries() -> Iterator[Entry]:
        for page in storage.list_pages(url.bucket, prefix, page_size=page_size):
            for item in page.items:
                name = str(item["name"])
                size = int(item.get("size", 0))
                relative = name[len(prefix) :]
                if not relative or (name.endswith("/") and size == 0):
                    continue
                generation = item.get("generation")
                yield Entry(
                    name=relative,
                    size=size,
                    crc32c=item.get("crc32c"),
                    md5=item.get("md5Hash"),
                    generation=int(generation) if generation else None,
                )

    try:
        yield from _checked_order(entries(), listing)
    except TransferError as exc:
        listing.errors.append(f"listing {exc.target} failed: {exc.reason}")
    listing.finished = True
