"""``resumable-media cleanup DIR``: remove stale temp files and journals of abandoned downloads.

Invariants:
- Only our own names are touched (``.NAME.XXXXXXXX.rm-part``, ``.NAME.rmpart`` and its
  ``.journal``/``.journal.tmp``): never a user's file.
- A temp file a running download holds (its ``flock``) is never removed, however old.
- A partial file and its journal go together: a journal is stale when its partial file is
  (or is gone), so a resumable download is never left with half of its state.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from resumable_media._objects.paths import is_own_temp
from resumable_media._objects.units import format_size

__all__ = ["add_parser", "cleanup", "stale_temps"]

DEFAULT_DAYS = 7.0


def _in_use(path: pathlib.Path) -> bool:
    """Whether a running download holds ``path`` (its exclusive ``flock``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def _partial_of(journal: pathlib.Path) -> pathlib.Path:
    name = journal.name
    for suffix in (".journal.tmp", ".journal"):
        if name.endswith(suffix):
            return journal.with_name(name[: -len(suffix)])
    return journal


def stale_temps(root: pathlib.Path, older_than_s: float) -> Iterator[tuple[pathlib.Path, int]]:
    """Yield ``(path, size)`` of our temp files under ``root`` older than ``older_than_s``.

    Age is the time since the last modification; a file in use by a running download is
    never yielded, and neither is the journal of such a file.
    """
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if not is_own_temp(name):
                continue
            path = pathlib.Path(dirpath, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            if not path.is_file() or path.is_symlink():
                continue
            owner = _partial_of(path)
            if owner != path:
                with contextlib.suppress(OSError):
                    if now - owner.stat().st_mtime < older_than_s or _in_use(owner):
                        continue  # the journal of a partial file still in play
            if now - info.st_mtime < older_than_s or _in_use(path):
                continue
            yield path, info.st_size


def cleanup(args: argparse.Namespace) -> int:
    """Run ``cleanup``: 0 when everything stale was removed, 1 when a removal failed."""
    root = pathlib.Path(args.directory)
    if not root.is_dir():
        sys.stderr.write(f"error: {root}: not a directory; give the tree to clean\n")
        return 1
    removed = failed = 0
    freed = 0
    for path, size in stale_temps(root, args.older_than * 86400):
        record: dict[str, Any] = {"path": str(path), "bytes": size}
        if not args.dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed += 1
                sys.stderr.write(
                    f"error: {path}: cannot remove it ({(exc.strerror or str(exc)).lower()})\n"
                )
                continue
        removed += 1
        freed += size
        if args.json:
            record["status"] = "would remove" if args.dry_run else "removed"
            sys.stdout.write(json.dumps(record) + "\n")
        elif not args.quiet:
            verb = "would remove" if args.dry_run else "removed"
            sys.stderr.write(f"{verb} {path} ({format_size(size)})\n")
    if not args.quiet:
        verb = "would remove" if args.dry_run else "removed"
        sys.stderr.write(
            f"cleanup: {verb} {removed} stale temp file(s), {format_size(freed)}, older than "
            f"{args.older_than:g} day(s) under {root}\n"
        )
    return 1 if failed else 0


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {text!r}")
    return value


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``cleanup`` to the command's subparsers."""
    parser = sub.add_parser(
        "cleanup",
        parents=[common],
        help="remove stale temp files and journals of abandoned downloads under DIR",
        description="Remove the hidden temp files (.NAME.*.rm-part, .NAME.rmpart) and resume "
        "journals that interrupted downloads left under DIR, when older than --older-than "
        "days. Files held by a running download are kept.",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument(
        "--older-than",
        type=_days,
        default=DEFAULT_DAYS,
        metavar="DAYS",
        help=f"only files not modified for this many days (default {DEFAULT_DAYS:g}; 0: all)",
    )
    parser.add_argument("-n", "--dry-run", action="store_true", help="list, remove nothing")
    parser.set_defaults(func=cleanup)
