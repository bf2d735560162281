"""``cp SRC... DST``: sources expanded and destination names built as gsutil builds them.

Invariants (gsutil's "how names are constructed"):
- DST is a *container* when it is a bucket, ends with ``/``, exists as a directory or a
  prefix with objects below it, or when there is more than one source (after wildcards).
- Into a container, a source keeps its last component: ``cp -r DIR gs://b/`` makes
  ``gs://b/DIR/…``, ``cp f gs://b/d/`` makes ``gs://b/d/f``, ``cp -r gs://b/p ./x`` (x an
  existing directory) makes ``./x/p/…``, ``cp -r gs://b ./x`` makes ``./x/b/…``.
- Otherwise DST is the new name: ``cp -r DIR gs://b/new`` makes ``gs://b/new/…`` and
  ``cp f gs://b/o`` makes ``gs://b/o``.
- Wildcard matches keep only their last component (gsutil flattens them).
- Planning never writes to the destination, except creating a local destination directory
  named with a trailing ``/``; every refused source is one failure naming it.
"""

from __future__ import annotations

import errno
import os
import pathlib
from collections.abc import Iterable
from typing import Any, cast

from resumable_media._cli.copy import CopyJob, Reporter, UsageError, names
from resumable_media._cli.expand import Match, expand_gs, expand_local, has_wildcard
from resumable_media._objects.client import Storage, TransferError
from resumable_media._objects.localerrors import local_error
from resumable_media._objects.paths import LocalPaths, UnsafeName, iter_local_files, relative_name
from resumable_media._objects.urls import GsUrl, is_gs_url, parse_gs_url

__all__ = ["plan_copy"]

_Item = tuple[str, Any, "dict[str, Any] | None"]
"""One expanded source: (kind, location, object resource); kind is file, dir, object or
prefix; the location a path or a GsUrl."""


_KEPT = ("name", "size", "generation", "crc32c", "md5Hash", "metadata", "contentEncoding")
"""The fields of a listed object a copy job uses; a job keeps only these (a listing's
full resource is several times larger, and a tree's jobs are all held at once)."""


def _slim(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    return {key: meta[key] for key in _KEPT if key in meta}


def _parse(text: str) -> GsUrl:
    try:
        return parse_gs_url(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _last_component(url: GsUrl) -> str:
    """The name a prefix or object keeps inside a container (a bucket: its own name)."""
    stripped = url.name.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else url.bucket


def _missing(url: GsUrl) -> str:
    parent = url.name[: url.name.rfind("/") + 1]
    return (
        f"not found: no such object; see what exists with: resumable-media ls gs://{url.bucket}/{parent}"
        " (or use -r if it is a prefix)"
    )


def _dir_name(path: str) -> str:
    return pathlib.Path(os.path.abspath(path)).name


class _Planner:
    def __init__(
        self, storage: Storage, recursive: bool, reporter: Reporter, page_size: int | None
    ) -> None:
        self.storage = storage
        self.recursive = recursive
        self.reporter = reporter
        self.page_size = page_size
        self.jobs: list[CopyJob] = []
        self.refused: list[TransferError] = []
        self._targets: set[str] = set()

    def add(self, job: CopyJob) -> None:
        """Queue ``job`` unless an earlier source already goes to the same destination."""
        source, destination = names(job)
        if destination in self._targets:
            self.refused.append(
                TransferError(
                    source,
                    f"another source is also copied to {destination}; not copied (copy it "
                    "on its own, or use -r to keep the directory structure)",
                )
            )
            return
        self._targets.add(destination)
        self.jobs.append(job)

    # -- sources ------------------------------------------------------------------------

    def _omit(self, what: str) -> None:
        self.reporter.note(f"omitting {what}: it is a directory or prefix; use -r to copy it")

    def _from_matches(self, text: str, matches: Iterable[Match], gs: GsUrl | None) -> list[_Item]:
        items: list[_Item] = []
        found = False
        for match in matches:
            found = True
            if match.container and not self.recursive:
                self._omit(str(GsUrl(gs.bucket, match.name)) if gs else match.name)
                continue
            if gs is not None:
                kind = "prefix" if match.container else "object"
                items.append((kind, GsUrl(gs.bucket, match.name), _slim(match.meta)))
            else:
                items.append(("dir" if match.container else "file", match.name, None))
        if not found:
            self.refused.append(TransferError(text, "no match for this wildcard; check the name"))
        elif not items:
            self.refused.append(
                TransferError(text, "matched only directories or prefixes; use -r to copy them")
            )
        return items

    def _gs_literal(self, text: str, url: GsUrl) -> list[_Item]:
        if not url.name or url.name.endswith("/"):
            if not self.recursive:
                raise UsageError(f"{url} names a prefix, not an object; use -r to copy a tree")
            return [("prefix", url, None)]
        meta = self.storage.stat(url)
        if not self.recursive:
            if meta is None:
                self.refused.append(TransferError(str(url), _missing(url)))
                return []
            return [("object", url, meta)]
        items: list[_Item] = [("object", url, meta)] if meta is not None else []
        return [*items, ("prefix", GsUrl(url.bucket, url.name + "/"), {"optional": bool(meta)})]

    def _local_literal(self, text: str) -> list[_Item]:
        path = pathlib.Path(text)
        if path.is_dir():
            if not self.recursive:
                raise UsageError(f"{text} is a directory; use -r to copy a tree")
            return [("dir", text, None)]
        if not path.exists():
            self.refused.append(TransferError(text, "no such file"))
            return []
        return [("file", text, None)]

    def expand(self, sources: list[str]) -> list[_Item]:
        items: list[_Item] = []
        for text in sources:
            if is_gs_url(text):
                url = _parse(text)
                if has_wildcard(url.name):
                    matches = expand_gs(self.storage, url, page_size=self.page_size)
                    items += self._from_matches(text, matches, url)
                else:
                    items += self._gs_literal(text, url)
            elif has_wildcard(text) and not os.path.lexists(text):
                items += self._from_matches(text, expand_local(text), None)
            else:
                items += self._local_literal(text)
        return items

    # -- destination --------------------------------------------------------------------

    def gs_is_container(self, url: GsUrl, many: bool) -> bool:
        if many or not url.name or url.name.endswith("/"):
            return True
        for page in self.storage.list_pages(url.bucket, url.name + "/", page_size=1):
            return bool(page.items or page.prefixes)
        return False

    # -- jobs ---------------------------------------------------------------------------

    def upload(self, path: pathlib.Path, target: GsUrl) -> None:
        try:
            target.name.encode("utf-8")
        except UnicodeEncodeError:  # a file name with bytes that are not UTF-8
            self.refused.append(
                TransferError(str(path), "the name is not valid UTF-8; not uploaded")
            )
            return
        self.add(CopyJob(False, target, path, path.stat().st_size))

    def upload_tree(self, source: str, root: GsUrl) -> None:
        files = list(iter_local_files(pathlib.Path(source)))
        if not files:
            self.refused.append(TransferError(source, "no files under this directory"))
        for file, rel in files:
            self.upload(file, root.child(rel))

    def download_tree(
        self, url: GsUrl, root: pathlib.Path, optional: bool, rewrite_to: GsUrl | None
    ) -> None:
        found = False
        made = False
        paths = LocalPaths(root)
        for listed in self.storage.iter_objects(url.bucket, url.name, self.page_size):
            found = True
            meta = cast(dict[str, Any], _slim(listed))
            name = str(meta["name"])
            item = GsUrl(url.bucket, name)
            size = int(meta.get("size", 0))
            rel = relative_name(name, url.name)
            if rewrite_to is not None:
                target = rewrite_to.child(rel) if rel else rewrite_to
                self.add(CopyJob(False, target, pathlib.Path(), size, meta, source=item))
                continue
            if name.endswith("/") and size == 0:
                self.reporter.note(f"skipping {item}: a directory placeholder object")
                continue
            try:
                if not made:
                    root.mkdir(parents=True, exist_ok=True)
                    made = True
                path = paths.path_for(rel)
            except UnsafeName as exc:
                self.refused.append(TransferError(str(item), f"refused, not written: {exc}"))
                continue
            self.add(CopyJob(True, item, path, size, meta))
        if not found and not optional:
            self.refused.append(TransferError(str(url), "no objects under this prefix"))


def _check_local_destination(dst: str, many: bool) -> bool:
    """Whether the local DST is a container; refuse shapes that cannot work."""
    path = pathlib.Path(dst)
    trailing = dst.endswith(("/", os.sep))
    if path.exists() and not path.is_dir():
        if many:
            raise UsageError(f"destination {dst} is a file; several sources need a directory")
        return False
    if path.is_dir():
        return True
    if many and not trailing:
        raise UsageError(
            f"destination {dst} does not exist; several sources need a directory: "
            f"create it or end the destination with '/'"
        )
    if trailing:
        path.mkdir(parents=True, exist_ok=True)
    return trailing


def plan_copy(
    storage: Storage,
    sources: list[str],
    dst: str,
    recursive: bool,
    reporter: Reporter,
    *,
    page_size: int | None = None,
) -> tuple[list[CopyJob], list[TransferError]]:
    """Turn ``cp SRC... DST`` into jobs plus the sources already known to fail.

    Raises:
        UsageError: When the command line cannot work (local to local, several sources
            into a file, a directory without ``-r``).  DST is always taken literally.
        TransferError: When a listing needed for planning fails.
    """
    if not sources:
        raise UsageError("no source given (with -I, give one source per line on stdin)")
    dst_gs = is_gs_url(dst)
    if not dst_gs and not all(is_gs_url(s) for s in sources):
        raise UsageError("one of SRC and DST must be a gs://bucket/object URL")
    planner = _Planner(storage, recursive, reporter, page_size)
    items = planner.expand(sources)
    optional_prefixes = sum(1 for k, _, m in items if k == "prefix" and m and m.get("optional"))
    many = len(items) - optional_prefixes > 1
    if dst_gs:
        dst_url = _parse(dst)
        container = bool(items) and planner.gs_is_container(dst_url, many)
        base = (
            dst_url.name if not dst_url.name or dst_url.name.endswith("/") else dst_url.name + "/"
        )
        for kind, where, meta in items:
            if kind == "file":
                path = pathlib.Path(where)
                target = GsUrl(dst_url.bucket, base + path.name) if container else dst_url
                planner.upload(path, target)
            elif kind == "dir":
                name = base + _dir_name(where) if container else dst_url.name.rstrip("/")
                planner.upload_tree(where, GsUrl(dst_url.bucket, name))
            elif kind == "object":
                target = (
                    GsUrl(dst_url.bucket, base + _last_component(where)) if container else dst_url
                )
                size = int(meta["size"]) if meta else -1
                planner.add(CopyJob(False, target, pathlib.Path(), size, meta, source=where))
            else:
                name = base + _last_component(where) if container else dst_url.name
                planner.download_tree(
                    where,
                    pathlib.Path(),
                    bool(meta and meta.get("optional")),
                    GsUrl(dst_url.bucket, name.rstrip("/") + "/" if name else ""),
                )
        return planner.jobs, planner.refused
    container = _check_local_destination(dst, many)
    root = pathlib.Path(dst)
    for kind, where, meta in items:
        if kind == "object":
            path = root / _last_component(where) if container else root
            if not path.parent.is_dir():
                try:  # as gsutil does, the missing directories are made
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    if isinstance(exc, FileExistsError):  # a file where a directory must be
                        exc = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                    planner.refused.append(local_error(exc, path, target=str(where)))
                    continue
            size = int(meta["size"]) if meta else -1
            planner.add(CopyJob(True, where, path, size, meta))
        else:
            tree_root = root / _last_component(where) if container else root
            if tree_root.exists() and not tree_root.is_dir():
                raise UsageError(f"destination {tree_root} exists and is not a directory")
            planner.download_tree(where, tree_root, bool(meta and meta.get("optional")), None)
    return planner.jobs, planner.refused
