"""``ls``, ``rm``, ``cat``, ``stat`` and ``du``: the object commands, in gsutil's formats.

Invariants: every command takes ``gs://`` URLs with wildcards (``*``, ``?``, ``[abc]``,
``**``); exit 0 only when every URL matched and every action succeeded, 1 when any URL
matched nothing or any request failed (each failure on stderr naming the user's URL and
what to do), 2 for usage errors; results go to stdout (``--json``: one JSON object per
line), messages to stderr.  Listings are streamed, one page in memory; ``rm`` keeps at
most a bounded number of deletions in flight and deletes only the generation it listed.
``cat`` writes each object to stdout in order and checks its CRC32C at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from resumable_media import common
from resumable_media._cli.copy import UsageError
from resumable_media._cli.expand import expand_gs, has_wildcard
from resumable_media._objects.client import (
    PreconditionFailed,
    Storage,
    TransferError,
    describe_error,
    read_needs,
    refused_hint,
)
from resumable_media._objects.urls import GsUrl, is_gs_url, parse_gs_url

__all__ = [
    "StreamFailed",
    "add_parsers",
    "human_size",
    "nothing_matched",
    "stream_failure",
    "stream_object",
]

_EXPONENTS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(count: int) -> str:
    """A byte count as gsutil shows it (``0 B``, ``12 B``, ``4.45 KiB``)."""
    if count <= 0:
        return "0 B"
    exponent = 0
    while exponent + 1 < len(_EXPONENTS) and count >= 1024 ** (exponent + 1):
        exponent += 1
    return f"{round(count / 1024**exponent, 2):g} {_EXPONENTS[exponent]}"


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


class _Errors:
    """Failures of one command: each printed at once; any of them makes the exit code 1."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, target: str, reason: str, status: int | None = None) -> None:
        if status == 404:
            reason += "; check the bucket name"
        with self._lock:
            self.count += 1
            sys.stdout.flush()
            sys.stderr.write(f"error: {target}: {reason}\n")
            sys.stderr.flush()


def _parse(text: str) -> GsUrl:
    if not is_gs_url(text):
        raise UsageError(f"{text} is not a gs://bucket/object URL")
    try:
        return parse_gs_url(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _is_container(url: GsUrl) -> bool:
    return not url.name or url.name.endswith("/")


def nothing_matched(url: GsUrl) -> str:
    """Why a URL named nothing, and the ``ls`` that shows what exists near it."""
    parent = url.name[: url.name.rstrip("/").rfind("/") + 1]
    return (
        f"matched no objects; see what exists with: resumable-media ls gs://{url.bucket}/{parent}"
    )


def _objects(
    storage: Storage,
    url: GsUrl,
    *,
    recursive: bool,
    omit: Callable[[str], None],
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The object resources one URL names (wildcards expanded; ``recursive``: everything
    below the prefixes it names, and below ``NAME/`` for a plain ``gs://b/NAME``).

    Raises:
        TransferError: When a listing or metadata request fails.
    """
    if has_wildcard(url.name):
        for match in expand_gs(storage, url, page_size=page_size):
            if not match.container:
                yield cast(dict[str, Any], match.meta)
            elif recursive:
                yield from storage.iter_objects(url.bucket, match.name, page_size)
            else:
                omit(str(GsUrl(url.bucket, match.name)))
        return
    if _is_container(url):
        yield from storage.iter_objects(url.bucket, url.name, page_size)
        return
    meta = storage.stat(url)
    if meta is not None:
        yield meta
    if recursive:
        yield from storage.iter_objects(url.bucket, url.name + "/", page_size)


def _omitter(quiet: bool) -> Callable[[str], None]:
    def omit(text: str) -> None:
        if not quiet:
            sys.stderr.write(f"omitting {text}: a prefix; use -r to include what is below it\n")

    return omit


def _url_of(bucket: str, meta: dict[str, Any]) -> str:
    return str(GsUrl(bucket, str(meta["name"])))


# -- ls -------------------------------------------------------------------------------------


def _timestamp(text: str | None) -> str:
    """RFC 3339 from the API as gsutil's ``ls -l`` shows it (``2026-12-07T23:33:15Z``)."""
    parsed = _parse_time(text)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "-"


def _named_objects(
    storage: Storage, urls: list[str], verb: str, errors: _Errors, omit: Callable[[str], None]
) -> Iterator[tuple[GsUrl, dict[str, Any]]]:
    """Each object the URLs name, wildcards expanded, for the commands that need objects.

    A URL that matches nothing, or whose listing fails, is recorded in ``errors`` and the
    next URL follows.

    Raises:
        UsageError: A URL names a bucket or prefix.
    """
    for text in urls:
        url = _parse(text)
        if _is_container(url):
            raise UsageError(f"{text} names a bucket or prefix; {verb} needs an object")
        found = False
        try:
            for meta in _objects(storage, url, recursive=False, omit=omit):
                found = True
                yield url, meta
        except TransferError as exc:
            errors(text, exc.reason, exc.status)
            continue
        if not found:
            errors(text, nothing_matched(url))


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Lister:
    def __init__(self, args: argparse.Namespace, storage: Storage, errors: _Errors) -> None:
        self.args = args
        self.storage = storage
        self.errors = errors
        self.objects = 0
        self.bytes = 0

    def item(self, bucket: str, meta: dict[str, Any]) -> None:
        size = int(meta.get("size", 0))
        self.objects += 1
        self.bytes += size
        url = _url_of(bucket, meta)
        if self.args.json:
            record = {
                "url": url,
                "size": size,
                "time_created": meta.get("timeCreated"),
                "updated": meta.get("updated"),
                "generation": meta.get("generation"),
                "crc32c": meta.get("crc32c"),
                "md5": meta.get("md5Hash"),
                "content_type": meta.get("contentType"),
            }
            _write(json.dumps(record))
        elif self.args.long:
            _write(f"{size:>10}  {_timestamp(meta.get('timeCreated'))}  {url}")
        else:
            _write(url)

    def prefix(self, bucket: str, prefix: str) -> None:
        url = str(GsUrl(bucket, prefix))
        if self.args.json:
            _write(json.dumps({"url": url, "prefix": True}))
        elif self.args.long:
            _write(f"{'':33}{url}")
        else:
            _write(url)

    def level(self, bucket: str, prefix: str) -> list[str]:
        """List one directory level; return its sub-prefixes."""
        below: list[str] = []
        for page in self.storage.list_pages(
            bucket, prefix, delimiter="/", page_size=self.args.list_page_size
        ):
            for meta in page.items:
                self.item(bucket, meta)
            for sub in page.prefixes:
                if self.args.recursive:
                    below.append(sub)
                else:
                    self.prefix(bucket, sub)
        return below

    def tree(self, bucket: str, prefix: str) -> None:
        """``ls -r``: each directory's objects under a ``gs://b/dir/:`` heading, then its
        sub-directories in order (gsutil's layout)."""
        pending = [prefix]
        first = True
        while pending:
            current = pending.pop()
            if not self.args.json:
                _write(("" if first else "\n") + f"{GsUrl(bucket, current)}:")
            first = False
            pending.extend(reversed(self.level(bucket, current)))

    def one(self, text: str) -> None:
        url = _parse(text)
        found = self.objects
        try:
            if has_wildcard(url.name):
                matched = False
                for match in expand_gs(self.storage, url, page_size=self.args.list_page_size):
                    matched = True
                    if not match.container:
                        self.item(url.bucket, cast(dict[str, Any], match.meta))
                    elif self.args.recursive:
                        self.tree(url.bucket, match.name)
                    else:
                        self.prefix(url.bucket, match.name)
                if not matched:
                    self.errors(text, nothing_matched(url))
                return
            if _is_container(url):
                if self.args.recursive:
                    self.tree(url.bucket, url.name)
                else:
                    self.level(url.bucket, url.name)
                if url.name and self.objects == found and not self._has_below(url, url.name):
                    self.errors(text, nothing_matched(url))
                return
            meta = self.storage.stat(url)
            if meta is not None:
                self.item(url.bucket, meta)
            below = url.name + "/"
            if self._has_below(url, below):
                if self.args.recursive:
                    self.tree(url.bucket, below)
                else:
                    self.level(url.bucket, below)
            elif meta is None:
                self.errors(text, nothing_matched(url))
        except TransferError as exc:
            self.errors(text, exc.reason, exc.status)

    def _has_below(self, url: GsUrl, prefix: str) -> bool:
        for page in self.storage.list_pages(url.bucket, prefix, page_size=1):
            return bool(page.items)
        return False


def ls(args: argparse.Namespace) -> int:
    """``ls [-l] [-r] URL...``: objects and prefixes; ``-l`` adds size, time and a TOTAL."""
    from resumable_media._cli.commands import make_storage

    storage = make_storage(args)
    errors = _Errors()
    lister = _Lister(args, storage, errors)
    for text in args.urls:
        lister.one(text)
    if args.long and not args.json:
        _write(
            f"TOTAL: {lister.objects} objects, {lister.bytes} bytes ({human_size(lister.bytes)})"
        )
    sys.stdout.flush()
    return 1 if errors.count else 0


# -- rm -------------------------------------------------------------------------------------


def rm(args: argparse.Namespace) -> int:
    """``rm [-r] URL...``: delete objects (``-r``: everything below prefixes; never buckets)."""
    from resumable_media._cli.commands import make_storage

    storage = make_storage(args)
    errors = _Errors()
    lock = threading.Lock()
    removed = 0
    urls = [_parse(text) for text in args.urls]
    for text, url in zip(args.urls, urls, strict=True):
        if _is_container(url) and not args.recursive and not has_wildcard(url.name):
            raise UsageError(f"{text} names a bucket or prefix; use -r to remove what is below it")

    def delete(meta: dict[str, Any], bucket: str, pinned: bool) -> None:
        nonlocal removed
        url = GsUrl(bucket, str(meta["name"]))
        generation = int(meta["generation"]) if pinned and meta.get("generation") else None
        try:
            gone = storage.delete(url, if_generation_match=generation)
        except PreconditionFailed:
            errors(str(url), "changed since it was listed; not removed (run rm again to remove it)")
            return
        except TransferError as exc:
            errors(str(url), exc.reason)
            return
        with lock:
            if gone:
                removed += 1
            if args.json:
                _write(json.dumps({"url": str(url), "status": "deleted" if gone else "absent"}))
            elif not args.quiet:
                sys.stderr.write(f"Removing {url}...\n")

    omit = _omitter(args.quiet)
    bound = threading.BoundedSemaphore(args.jobs * 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        try:
            for text, url in zip(args.urls, urls, strict=True):
                found = False
                pinned = has_wildcard(url.name) or _is_container(url) or args.recursive
                try:
                    for meta in _objects(
                        storage,
                        url,
                        recursive=args.recursive,
                        omit=omit,
                        page_size=args.list_page_size,
                    ):
                        found = True
                        bound.acquire()
                        future = pool.submit(delete, meta, url.bucket, pinned)
                        future.add_done_callback(lambda _: bound.release())
                except TransferError as exc:
                    errors(
                        text,
                        f"{exc.reason}; the listing stopped, some objects may remain",
                        exc.status,
                    )
                    continue
                if not found:
                    errors(text, nothing_matched(url))
        except BaseException:
            args.cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    sys.stdout.flush()
    if not args.quiet:
        sys.stderr.write(f"rm: removed {removed} object(s), {errors.count} error(s)\n")
    return 1 if errors.count else 0


# -- cat ------------------------------------------------------------------------------------


class _Counted:
    """stdout for object bytes, counting what was written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)


def _cat_gzip(storage: Storage, media: str, out: _Counted) -> None:
    """One GET of a gzip-stored object, decoded on the way; the library checks the CRC32C
    of the stored (compressed) bytes, as ranged reads of a transcoded object cannot."""
    from resumable_media.requests import Download

    download = Download(media, stream=cast(IO[bytes], out), checksum="crc32c")
    download._retry_strategy = storage.retry
    download.consume(storage.session())


def stream_object(
    storage: Storage,
    url: GsUrl,
    meta: dict[str, Any],
    out: IO[bytes],
    *,
    chunk_size: int,
    threads: int,
    checksum: common.Checksum = "crc32c",
) -> int:
    """Write one object to ``out`` in order and return the bytes written (``cat`` and
    ``cp gs://… -``).

    Through ``resumable_media.open(url, "rb")``'s reader, given the size, generation and
    CRC32C of ``meta`` (the listing's or the metadata GET's resource), so its first
    ``threads`` ranged GETs of ``chunk_size`` start at once, pinned to that generation (at
    most ``threads`` chunks in memory); each chunk goes to ``out`` without a copy.  The
    CRC32C is checked before the last chunk is written, so a corrupted object raises
    ``DataCorruption`` and never ends in a clean EOF.  A gzip-stored object is one
    decoding GET instead.

    Raises:
        StreamFailed: Any failure (its cause: ``DataCorruption`` when the bytes do not match
            the object's CRC32C, an HTTP error, …), with the bytes already written.
        BrokenPipeError: ``out`` was closed.
    """
    from resumable_media._streams import open_url

    generation = int(meta["generation"]) if meta.get("generation") else None
    written = _Counted(out)
    try:
        if meta.get("contentEncoding") == "gzip":
            _cat_gzip(storage, storage.endpoint.media_url(url, generation), written)
            return written.count
        size = int(meta.get("size", 0))
        if not size:
            return 0
        with open_url(
            str(url),
            "rb",
            endpoint=storage.endpoint.base_url,
            transport=storage.factory,
            chunk_size=chunk_size,
            window=threads,
            threads=threads,
            checksum=checksum,
            generation=generation,
            size=size,
            crc32c=meta.get("crc32c") if checksum else None,
            retry=storage.retry,
        ) as reader:
            raw = reader.raw
            for piece in raw.iter_chunks():
                written.write(piece)
            if checksum and raw.crc32c is not None and not raw.verified:
                raise _Unchecked(f"the CRC32C {raw.crc32c} could not be checked")
    except BrokenPipeError:
        raise
    except Exception as exc:  # the library's own errors (corruption, HTTP), or ours
        raise StreamFailed(written.count) from exc
    return written.count


class _Unchecked(Exception):
    """The whole object was written but its CRC32C could not be compared."""


class StreamFailed(Exception):
    """Writing one object to stdout failed after ``written`` bytes had gone there."""

    def __init__(self, written: int) -> None:
        super().__init__(written)
        self.written = written


def _untrusted(written: int) -> str:
    if not written:
        return "nothing was written for it"
    return (
        f"the {written} bytes of it already written to stdout are not to be trusted "
        "(stdout cannot be taken back): do not use this output"
    )


def stream_failure(
    cause: BaseException, url: GsUrl, meta: dict[str, Any], written: int, verb: str
) -> str:
    """What went wrong with ``url`` written to stdout, what the output is worth, and
    (``verb``: the command, e.g. ``cat``) what to do."""
    if isinstance(cause, common.DataCorruption):
        expected = meta.get("crc32c") or "unknown"
        return (
            f"data corruption: the bytes read do not match the object's CRC32C {expected}; "
            f"{_untrusted(written)}, and run {verb} again"
        )
    if isinstance(cause, _Unchecked):
        return f"{cause}; {_untrusted(written)} unless you can check it otherwise"
    reason = cause.reason if isinstance(cause, TransferError) else describe_error(cause)
    if getattr(getattr(cause, "response", None), "status_code", None) == 403:
        reason += refused_hint(read_needs(url))
    if not written:
        return f"{reason}; nothing was written for it"
    return f"{reason}; the output is incomplete ({written} bytes written)"


def cat(args: argparse.Namespace) -> int:
    """``cat URL...``: object bytes to stdout, in order, each verified by CRC32C at its end."""
    from resumable_media._cli.commands import make_storage

    storage = make_storage(args)
    errors = _Errors()
    omit = _omitter(args.quiet)
    stdout = sys.stdout.buffer
    try:
        for url, meta in _named_objects(storage, args.urls, "cat", errors, omit):
            item = GsUrl(url.bucket, str(meta["name"]))
            try:
                stream_object(
                    storage, item, meta, stdout, chunk_size=args.chunk_size, threads=args.threads
                )
            except StreamFailed as failed:
                cause = failed.__cause__ or failed
                errors(str(item), stream_failure(cause, item, meta, failed.written, "cat"))
        stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as a shell pipeline expects.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 1 if errors.count else 0


# -- stat -----------------------------------------------------------------------------------


def _http_time(text: str | None) -> str:
    parsed = _parse_time(text)
    return parsed.strftime("%a, %d %b %Y %H:%M:%S GMT") if parsed else "-"


def _stat_lines(url: str, meta: dict[str, Any]) -> list[str]:
    def row(label: str, value: Any) -> str:
        return f"    {label + ':':<24}{value}"

    lines = [f"{url}:", row("Creation time", _http_time(meta.get("timeCreated")))]
    lines.append(row("Update time", _http_time(meta.get("updated"))))
    if meta.get("storageClass"):
        lines.append(row("Storage class", meta["storageClass"]))
    for key, label in (
        ("cacheControl", "Cache-Control"),
        ("contentDisposition", "Content-Disposition"),
        ("contentEncoding", "Content-Encoding"),
        ("contentLanguage", "Content-Language"),
    ):
        if meta.get(key):
            lines.append(row(label, meta[key]))
    lines.append(row("Content-Length", meta.get("size", 0)))
    lines.append(row("Content-Type", meta.get("contentType", "application/octet-stream")))
    custom = meta.get("metadata") or {}
    if custom:
        lines.append("    Metadata:")
        lines.extend(
            f"        {key}:{' ' * max(1, 23 - len(key))}{value}"
            for key, value in sorted(custom.items())
        )
    if meta.get("crc32c"):
        lines.append(row("Hash (crc32c)", meta["crc32c"]))
    if meta.get("md5Hash"):
        lines.append(row("Hash (md5)", meta["md5Hash"]))
    if meta.get("etag"):
        lines.append(row("ETag", meta["etag"]))
    lines.append(row("Generation", meta.get("generation", "-")))
    lines.append(row("Metageneration", meta.get("metageneration", "-")))
    return lines


def stat(args: argparse.Namespace) -> int:
    """``stat URL...``: every field of each object, gsutil's layout (``--json``: the resource)."""
    from resumable_media._cli.commands import make_storage

    storage = make_storage(args)
    errors = _Errors()
    omit = _omitter(args.quiet)
    for url, meta in _named_objects(storage, args.urls, "stat", errors, omit):
        if args.json:
            _write(json.dumps(meta, sort_keys=True))
        else:
            _write("\n".join(_stat_lines(_url_of(url.bucket, meta), meta)))
    sys.stdout.flush()
    return 1 if errors.count else 0


# -- du -------------------------------------------------------------------------------------


def du(args: argparse.Namespace) -> int:
    """``du [-s] [-c] [-h] URL...``: bytes per object, or (``-s``) one total per URL."""
    from resumable_media._cli.commands import make_storage

    storage = make_storage(args)
    errors = _Errors()
    grand = 0

    def line(count: int, name: str) -> None:
        size = human_size(count) if args.human_readable else str(count)
        if args.json:
            _write(json.dumps({"url": name, "bytes": count}))
        else:
            _write(f"{size:<11}  {name}")

    for text in args.urls:
        url = _parse(text)
        total = 0
        found = False
        try:
            for meta in _objects(
                storage, url, recursive=True, omit=_omitter(True), page_size=args.list_page_size
            ):
                found = True
                size = int(meta.get("size", 0))
                total += size
                if not args.summarize:
                    line(size, _url_of(url.bucket, meta))
        except TransferError as exc:
            errors(text, f"{exc.reason}; the total is incomplete", exc.status)
            continue
        if not found and not _is_container(url):
            errors(text, nothing_matched(url))
            continue
        grand += total
        if args.summarize:
            line(total, text)
    if args.total:
        line(grand, "total")
    sys.stdout.flush()
    return 1 if errors.count else 0


# -- the parsers ----------------------------------------------------------------------------


def add_parsers(sub: Any, common: argparse.ArgumentParser, chunk_size: Any, positive: Any) -> None:
    """Register ``ls``, ``rm``, ``cat``, ``stat`` and ``du`` on the command's subparsers."""

    def command(
        name: str, func: Callable[[argparse.Namespace], int], *, lists: bool, **texts: str
    ) -> argparse.ArgumentParser:
        """A subcommand taking one or more gs:// URLs (``lists``: and --list-page-size)."""
        parser: argparse.ArgumentParser = sub.add_parser(name, parents=[common], **texts)
        parser.add_argument("urls", nargs="+", metavar="URL")
        if lists:
            parser.add_argument("--list-page-size", type=positive, help=argparse.SUPPRESS)
        parser.set_defaults(func=func)
        return parser

    parser = command(
        "ls",
        ls,
        lists=True,
        help="list objects and prefixes",
        description="List what each gs:// URL names: a bucket or prefix lists one level "
        "(objects, then sub-prefixes ending in '/'); wildcards allowed.",
    )
    parser.add_argument(
        "-l", dest="long", action="store_true", help="size, creation time, URL; and a TOTAL line"
    )
    parser.add_argument(
        "-r", "-R", dest="recursive", action="store_true", help="every level, under headings"
    )

    parser = command(
        "rm",
        rm,
        lists=True,
        help="delete objects",
        description="Delete the objects each gs:// URL names; -r also everything below a "
        "prefix (buckets themselves are never deleted).  Objects found by a listing are "
        "deleted only if unchanged since (ifGenerationMatch).",
    )
    parser.add_argument("-r", "-R", "--recursive", action="store_true", help="below prefixes too")
    parser.add_argument(
        "-j", "--jobs", type=positive, default=8, help="deletions at once (default 8)"
    )

    parser = command(
        "cat",
        cat,
        lists=False,
        help="write objects to stdout",
        description="Write each object to stdout in order (large ones by parallel ranged "
        "reads); each is checked against its CRC32C at its end (exit 1 on a mismatch).",
    )
    parser.add_argument(
        "--chunk-size", type=chunk_size, default=8 * 2**20, help="bytes per ranged read"
    )
    parser.add_argument(
        "--threads", type=positive, default=8, help="ranged reads at once (default 8)"
    )

    command(
        "stat",
        stat,
        lists=False,
        help="show an object's metadata",
        description="Show every field of each object (gsutil's layout); --json: the resource.",
    )

    parser = command(
        "du",
        du,
        lists=True,
        help="bytes used by objects",
        description="Bytes of each object below each URL; -s one total per URL.",
    )
    parser.add_argument("-s", dest="summarize", action="store_true", help="one total per URL")
    parser.add_argument("-c", dest="total", action="store_true", help="add a grand total line")
    parser.add_argument(
        "--human-readable", dest="human_readable", action="store_true", help="sizes as 4.45 KiB"
    )
