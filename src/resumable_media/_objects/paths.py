"""Local paths for objects of a recursive download, and object names for uploaded files.

Invariants: :func:`local_path_for` never returns a path outside the destination
directory.  Names that would escape it (``..``, ``.``, absolute names, empty
segments, NUL) are refused with a reason rather than silently rewritten, and the
final path is checked again after resolving symlinks already on disk.
"""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import re
import stat
from collections.abc import Callable, Iterator

__all__ = [
    "LocalPaths",
    "UnsafeName",
    "is_own_temp",
    "iter_local_files",
    "local_path_for",
    "relative_name",
    "tree_file",
]

_LOGGER = logging.getLogger(__name__)


class UnsafeName(ValueError):
    """An object name that cannot be mapped safely into the destination directory."""


def relative_name(name: str, prefix: str) -> str:
    """Return ``name`` relative to the listing ``prefix`` (a directory-like prefix)."""
    return name[len(prefix) :] if name.startswith(prefix) else name


def _check_segments(relative: str) -> list[str]:
    if not relative:
        raise UnsafeName("the name is empty below the prefix")
    if "\x00" in relative:
        raise UnsafeName("the name contains a NUL character")
    if relative.startswith("/"):
        raise UnsafeName("the name is an absolute path")
    segments = relative.split("/")
    if "" in segments:
        raise UnsafeName("the name has an empty path segment ('//' or a trailing '/')")
    if "." in segments or ".." in segments:
        raise UnsafeName("the name has a '.' or '..' segment and would escape the destination")
    return segments


_OUTSIDE = "the name resolves outside the destination directory"


class LocalPaths:
    """:func:`local_path_for` for many names under one destination, checking each directory once.

    The destination's real path, each parent directory's real path and the symlinks among
    each existing directory's entries are looked up once and remembered, so a tree of many
    files costs a few system calls per directory rather than about fifteen per file.  The
    checks are the same as :func:`local_path_for`'s.

    Args:
        destination: The download directory.
    """

    def __init__(self, destination: pathlib.Path) -> None:
        self.destination = destination
        self._root = os.path.realpath(destination)
        self._parents: dict[tuple[str, ...], tuple[pathlib.Path, frozenset[str]] | str] = {}

    def _parent(self, segments: tuple[str, ...]) -> tuple[pathlib.Path, frozenset[str]]:
        known = self._parents.get(segments)
        if known is None:
            parent = self.destination.joinpath(*segments)
            resolved = os.path.realpath(parent)
            if os.path.commonpath([self._root, resolved]) != self._root:
                known = _OUTSIDE
            else:
                try:
                    with os.scandir(parent) as entries:
                        links = frozenset(e.name for e in entries if e.is_symlink())
                except OSError:  # not there yet (or not a directory: the copy will say)
                    links = frozenset()
                known = (parent, links)
            self._parents[segments] = known
        if isinstance(known, str):
            raise UnsafeName(known)
        return known

    def path_for(self, relative: str) -> pathlib.Path:
        """The path of ``relative`` (``/``-separated, below the listing prefix).

        Raises:
            UnsafeName: As :func:`local_path_for`.
        """
        segments = _check_segments(relative)
        parent, links = self._parent(tuple(segments[:-1]))
        candidate = parent / segments[-1]
        if segments[-1] in links:
            resolved = os.path.realpath(candidate)
            if os.path.commonpath([self._root, resolved]) != self._root or resolved == self._root:
                raise UnsafeName(_OUTSIDE)
        return candidate


def local_path_for(destination: pathlib.Path, relative: str) -> pathlib.Path:
    """Map a ``/``-separated object path below a prefix to a file under ``destination``.

    Args:
        destination: The download directory.
        relative: The object name with the listing prefix removed.

    Returns:
        A path strictly inside ``destination``.

    Raises:
        UnsafeName: When the name is absolute, has empty, ``.`` or ``..`` segments,
            contains NUL, or resolves (through existing symlinks) outside ``destination``.
    """
    segments = _check_segments(relative)
    candidate = destination.joinpath(*segments)
    root = os.path.realpath(destination)
    resolved = os.path.realpath(candidate)
    if os.path.commonpath([root, resolved]) != root or resolved == root:
        raise UnsafeName(_OUTSIDE)
    return candidate


_OWN_TEMP = re.compile(r"(^\..+\.[^.]+\.rm-part$)|(\.rmpart(\.journal(\.tmp)?)?$)")


def is_own_temp(name: str) -> bool:
    """Whether a file name is one of our download temp files or resume journals."""
    return _OWN_TEMP.search(name) is not None


def _special_kind(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def tree_file(
    path: pathlib.Path, root: pathlib.Path, *, follow_symlinks: bool
) -> os.stat_result | str:
    """What a tree copy does with ``path`` (not a directory) found under ``root``.

    Returns:
        The file's ``stat`` when it is to be copied (a regular file, or a symlink to one
        inside the tree, or anywhere with ``follow_symlinks``), else why it is skipped:
        a FIFO, socket or device (copying one would hang or read forever), a dangling
        symlink, a symlink loop, or a symlink to a file outside the tree.
    """
    try:
        own = path.lstat()
    except OSError as exc:
        return f"cannot be read ({(exc.strerror or str(exc)).lower()})"
    if not stat.S_ISLNK(own.st_mode):
        kind = _special_kind(own.st_mode)
        return own if kind is None else f"{kind}; skipped"
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop; skipped"
        return "a dangling symlink; skipped"
    kind = _special_kind(info.st_mode)
    if kind is not None:
        return f"a symlink to {kind}; skipped"
    if not follow_symlinks:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
            return "a symlink to a file outside the tree; skipped (use --follow-symlinks)"
    return info


def iter_local_files(
    source: pathlib.Path,
    *,
    follow_symlinks: bool = False,
    skipped: Callable[[pathlib.Path, str], None] | None = None,
) -> Iterator[tuple[pathlib.Path, str]]:
    """Yield ``(path, relative_name)`` for every regular file under ``source``, sorted.

    Directories reached through symlinks are not followed (no cycles, no escape); files
    are judged by :func:`tree_file`; our own temp files and journals are left out.  The
    relative name uses ``/`` separators, ready to append to an object prefix.

    Args:
        source: The directory to walk.
        follow_symlinks: Follow symlinks to files outside the tree.
        skipped: Told ``(path, reason)`` of each file left out (default: a warning is
            logged, which the command prints).
    """
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            if is_own_temp(filename):
                continue
            path = pathlib.Path(dirpath, filename)
            verdict = tree_file(path, source, follow_symlinks=follow_symlinks)
            if isinstance(verdict, str):
                if skipped is not None:
                    skipped(path, verdict)
                else:
                    _LOGGER.warning("%s: %s", path, verdict)
                continue
            yield path, path.relative_to(source).as_posix()
