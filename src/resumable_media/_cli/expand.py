"""Wildcards in ``gs://`` URLs and local paths, expanded into the sources of one command.

Invariants (gsutil's wildcard model):
- ``*`` matches within one path segment, ``?`` one character other than ``/``, ``[abc]`` a
  character class, and ``**`` anything, ``/`` included.  A pattern matches whole names.
- A source without wildcard characters is taken literally (and a local path that exists
  as typed is literal even when it contains them).
- Patterns with ``**`` match files and objects only; other patterns also match
  directories and prefixes, which only ``-r`` copies (without it they are omitted, said).
- Listings are streamed (one page in memory); local walks never follow symlinked
  directories.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Iterator
from typing import Any

from resumable_media._objects.client import Storage
from resumable_media._objects.urls import GsUrl
from resumable_media.bulk.filters import glob_to_regex

__all__ = ["Match", "expand_gs", "expand_local", "has_wildcard"]

_WILDCARD = re.compile(r"[*?]|\[[^\]/]+\]")


def has_wildcard(text: str) -> bool:
    """True when ``text`` holds ``*``, ``?`` or a ``[...]`` class."""
    return _WILDCARD.search(text) is not None


def _first_wildcard(text: str) -> int:
    found = _WILDCARD.search(text)
    return found.start() if found else len(text)


def _pattern(text: str) -> re.Pattern[str]:
    """The anchored regex of one whole-name pattern."""
    return glob_to_regex("/" + text)


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """One name a wildcard matched: an object/file, or (``container``) a prefix/directory."""

    name: str
    container: bool
    meta: dict[str, Any] | None = None


def expand_gs(storage: Storage, url: GsUrl, *, page_size: int | None = None) -> Iterator[Match]:
    """Yield the objects (and prefixes, for patterns without ``**``) matching ``url``.

    Raises:
        TransferError: When a listing page cannot be fetched.
    """
    start = _first_wildcard(url.name)
    fixed, rest = url.name[:start], url.name[start:]
    regex = _pattern(url.name)
    if "**" not in rest and "/" not in rest.rstrip("/"):
        # The wildcard is in the last segment: one delimited listing from the fixed part.
        for page in storage.list_pages(url.bucket, fixed, delimiter="/", page_size=page_size):
            for item in page.items:
                if regex.fullmatch(str(item["name"])):
                    yield Match(str(item["name"]), False, item)
            for prefix in page.prefixes:
                if regex.fullmatch(prefix.rstrip("/")):
                    yield Match(prefix, True)
        return
    deep = "**" in rest
    seen: set[str] = set()
    for item in storage.iter_objects(url.bucket, fixed, page_size):
        name = str(item["name"])
        if regex.fullmatch(name):
            yield Match(name, False, item)
            continue
        if deep:
            continue
        # A segment boundary where the pattern matches makes a prefix below it a match.
        index = name.find("/", len(fixed))
        while index >= 0:
            if regex.fullmatch(name[:index]):
                prefix = name[: index + 1]
                if prefix not in seen:
                    seen.add(prefix)
                    yield Match(prefix, True)
                break
            index = name.find("/", index + 1)


def expand_local(pattern: str) -> Iterator[Match]:
    """Yield the files and directories (not for ``**`` patterns) matching ``pattern``.

    Names are yielded as paths (joined to the pattern's fixed leading directories), sorted
    within each directory.
    """
    parts = pathlib.PurePath(pattern).parts
    index = next((i for i, p in enumerate(parts) if has_wildcard(p)), len(parts))
    base = pathlib.Path(*parts[:index]) if index else pathlib.Path(".")
    relative = "/".join(parts[index:])
    if not relative:
        return
    regex = _pattern(relative)
    deep = "**" in relative
    if not deep and "/" not in relative:
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if regex.fullmatch(entry.name):
                is_dir = entry.is_dir(follow_symlinks=True)
                if is_dir or entry.is_file():
                    yield Match(str(base / entry.name) if index else entry.name, is_dir)
        return
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        here = pathlib.Path(dirpath)
        rel_dir = here.relative_to(base).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if not deep:
            for name in list(dirnames):
                if regex.fullmatch(prefix + name):
                    dirnames.remove(name)
                    yield Match(str(here / name), True)
        for name in sorted(filenames):
            if regex.fullmatch(prefix + name) and (here / name).is_file():
                yield Match(str(here / name), False)
