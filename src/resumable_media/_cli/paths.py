"""Local paths for objects of a recursive download, and object names for uploaded files.

Invariants: :func:`local_path_for` never returns a path outside the destination
directory.  Names that would escape it (``..``, ``.``, absolute names, empty
segments, NUL) are refused with a reason rather than silently rewritten, and the
final path is checked again after resolving symlinks already on disk.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

__all__ = ["UnsafeName", "iter_local_files", "local_path_for", "relative_name"]


class UnsafeName(ValueError):
    """An object name that cannot be mapped safely into the destination directory."""


def relative_name(name: str, prefix: str) -> str:
    """Return ``name`` relative to the listing ``prefix`` (a directory-like prefix)."""
    return name[len(prefix) :] if name.startswith(prefix) else name


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
    if not relative:
        raise UnsafeName("the name is empty below the prefix")
    if "\x00" in relative:
        raise UnsafeName("the name contains a NUL character")
    if relative.startswith("/"):
        raise UnsafeName("the name is an absolute path")
    segments = relative.split("/")
    if any(s == "" for s in segments):
        raise UnsafeName("the name has an empty path segment ('//' or a trailing '/')")
    if any(s in (".", "..") for s in segments):
        raise UnsafeName("the name has a '.' or '..' segment and would escape the destination")
    candidate = destination.joinpath(*segments)
    root = os.path.realpath(destination)
    resolved = os.path.realpath(candidate)
    if os.path.commonpath([root, resolved]) != root or resolved == root:
        raise UnsafeName("the name resolves outside the destination directory")
    return candidate


def iter_local_files(source: pathlib.Path) -> Iterator[tuple[pathlib.Path, str]]:
    """Yield ``(path, relative_name)`` for every regular file under ``source``, sorted.

    Directories reached through symlinks are not followed (no cycles, no escape);
    the relative name uses ``/`` separators, ready to append to an object prefix.
    """
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = pathlib.Path(dirpath, filename)
            if path.is_file():
                yield path, path.relative_to(source).as_posix()
