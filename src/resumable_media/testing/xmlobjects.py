"""XML API object and bucket calls: object PUT/GET/HEAD/DELETE and ``GET /BUCKET`` listing.

Invariants: shapes follow GCS's XML API (S3-compatible): an object's XML ``ETag`` is its
quoted MD5 in hex (objects without MD5, such as composites, keep the JSON etag); every
object response carries ``x-goog-hash``, ``x-goog-generation`` and ``x-goog-metageneration``;
uploads go through the same pump, hash checks and atomic publish as the JSON API; listing
pages are cut by ``max-keys`` counting objects and common prefixes together, in key order,
and a continuation token resumes after the last key or prefix returned.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from xml.sax.saxutils import escape

from .download import serve_media
from .exchange import Exchange
from .faults import Fault
from .receive import Window, check_hashes, parse_goog_hash, pump
from .state import FaultSource, ServerState
from .store import (
    ObjectMeta,
    Preconditions,
    StoredObject,
    StoreError,
    int_param,
    page,
    rfc3339,
)

LIST_NS = "http://doc.s3.amazonaws.com/2006-03-01"
MAX_KEYS = 1000


class XMLError(StoreError):
    """An XML API error with an S3-style code."""

    def __init__(
        self, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(status, message, code, headers)
        self.code = code


def xml_etag(obj: StoredObject) -> str:
    """The XML API's quoted ETag: the MD5 in hex, or the JSON etag without MD5."""
    if obj.md5 is None:
        return f'"{obj.etag()}"'
    return f'"{base64.b64decode(obj.md5).hex()}"'


def object_write_headers(obj: StoredObject) -> list[tuple[str, str]]:
    """Headers of a successful XML object write."""
    return [
        ("ETag", xml_etag(obj)),
        ("x-goog-hash", obj.goog_hash()),
        ("x-goog-generation", str(obj.generation)),
        ("x-goog-metageneration", str(obj.metageneration)),
        ("x-goog-stored-content-length", str(obj.size)),
        ("x-goog-stored-content-encoding", obj.meta.content_encoding or "identity"),
    ]


def _preconditions(ex: Exchange) -> Preconditions:
    """``x-goog-if-generation-match`` & co. (the XML API's names for the JSON parameters)."""
    values = {
        "ifGenerationMatch": ex.headers.get("x-goog-if-generation-match", ""),
        "ifMetagenerationMatch": ex.headers.get("x-goog-if-metageneration-match", ""),
    }
    try:
        return Preconditions.from_query(values)
    except StoreError as err:
        raise XMLError(400, "InvalidArgument", err.message) from None


def _precondition_failed() -> XMLError:
    return XMLError(
        412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold."
    )


def _check_etag_conditions(ex: Exchange, obj: StoredObject) -> bool:
    """Apply If-Match / If-None-Match; True when a 304 was answered."""
    etag = xml_etag(obj)
    wanted = ex.headers.get("if-match")
    if wanted is not None and etag not in _etags(wanted) and wanted.strip() != "*":
        raise _precondition_failed()
    unwanted = ex.headers.get("if-none-match")
    if unwanted is not None and (etag in _etags(unwanted) or unwanted.strip() == "*"):
        ex.finish_body()
        ex.reply(304, headers=[("ETag", etag)])
        return True
    return False


def _etags(value: str) -> set[str]:
    return {item.strip().removeprefix("W/") for item in value.split(",")}


def get_object(
    ex: Exchange, state: ServerState, bucket: str, name: str, faults: FaultSource
) -> None:
    """``GET``/``HEAD /BUCKET/OBJECT``: media with Range, GCS headers and the XML ETag."""
    faults.method = "storage.objects.get"
    if faults.immediate(ex):
        return
    try:
        obj, f = state.open_object(bucket, name, int_param(ex.query, "generation"))
    except StoreError:
        raise XMLError(404, "NoSuchKey", "The specified key does not exist.") from None
    with f:
        try:
            _preconditions(ex).check(obj)
        except XMLError:
            raise
        except StoreError:
            raise _precondition_failed() from None
        if _check_etag_conditions(ex, obj):
            return
        fault = faults.take(lambda x: x.streaming) if faults.active else None
        serve_media(ex, obj, f, fault, state.count_media, xml_etag(obj))


def _meta_from_headers(ex: Exchange) -> ObjectMeta:
    metadata = {
        k[len("x-goog-meta-") :]: v for k, v in ex.headers.items() if k.startswith("x-goog-meta-")
    }
    return ObjectMeta(
        content_type=ex.headers.get("content-type") or "application/octet-stream",
        content_encoding=ex.headers.get("content-encoding") or None,
        cache_control=ex.headers.get("cache-control") or None,
        metadata=metadata or None,
    )


def put_object(
    ex: Exchange, state: ServerState, bucket: str, name: str, faults: FaultSource
) -> None:
    """``PUT /BUCKET/OBJECT``: the body becomes the object (200, empty body, GCS headers)."""
    faults.method = "storage.objects.insert"
    if faults.immediate(ex):
        return
    if "x-goog-copy-source" in ex.headers:
        raise XMLError(
            501, "NotImplemented", "Copying with x-goog-copy-source is not implemented here."
        )
    if ex.body.length is None and not ex.body.finished:
        raise XMLError(411, "MissingContentLength", "You must provide the Content-Length.")
    pre = _preconditions(ex)
    meta = _meta_from_headers(ex)
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    content_md5 = ex.headers.get("content-md5")
    hashes = state.upload_hashes(md5 is not None or content_md5 is not None)
    fault: Fault | None = None
    if faults.active:
        fault = faults.take(lambda x: x.kind in ("status_after", "stall"))
    temp = state.store.new_temp()
    try:
        with open(temp, "wb") as out:
            pump(ex.body, out, hashes, Window(), fault)
        if fault is not None and fault.kind == "status_after":
            ex.finish_body()
            raise XMLError(fault.status, "InternalError", f"Retry Test: injected {fault.text}")
        try:
            check_hashes(hashes, crc, md5 or (content_md5.strip() if content_md5 else None))
        except StoreError as err:
            raise XMLError(400, "BadDigest", err.message) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        obj = state.store.publish(bucket, name, temp, hashes, meta, pre)
    except StoreError as err:
        if err.status == 412:
            raise _precondition_failed() from None
        raise
    ex.reply(200, headers=object_write_headers(obj))


def delete_object(
    ex: Exchange, state: ServerState, bucket: str, name: str, faults: FaultSource
) -> None:
    """``DELETE /BUCKET/OBJECT``: 204, or 404 ``NoSuchKey``."""
    faults.method = "storage.objects.delete"
    if faults.immediate(ex):
        return
    ex.finish_body()
    try:
        state.store.delete(bucket, name, _preconditions(ex), int_param(ex.query, "generation"))
    except XMLError:
        raise
    except StoreError as err:
        if err.status == 412:
            raise _precondition_failed() from None
        raise XMLError(404, "NoSuchKey", "The specified key does not exist.") from None
    ex.reply(204)


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode("ascii")


def _untoken(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise XMLError(400, "InvalidArgument", "The continuation token is not valid.") from None


def _elements(pairs: Sequence[tuple[str, str | None]]) -> str:
    return "".join(f"<{k}>{escape(v)}</{k}>" for k, v in pairs if v is not None)


def list_objects(ex: Exchange, state: ServerState, bucket: str, faults: FaultSource) -> None:
    """``GET /BUCKET`` (``list-type=2``, or version 1 with ``marker``): ``ListBucketResult``."""
    faults.method = "storage.objects.list"
    if faults.immediate(ex):
        return
    ex.finish_body()
    q = ex.query
    v2 = q.get("list-type") == "2"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    limit = int_param(q, "max-keys")
    limit = MAX_KEYS if limit is None else max(0, min(limit, MAX_KEYS))
    if v2:
        token = q.get("continuation-token")
        after = _untoken(token) if token else q.get("start-after", "")
    else:
        after = q.get("marker", "")
    listing = page(state.store.list(bucket, prefix), prefix, delimiter, after, limit)
    head: list[tuple[str, str | None]] = [
        ("Name", bucket),
        ("Prefix", prefix),
        ("MaxKeys", str(limit)),
        ("Delimiter", delimiter or None),
        ("IsTruncated", "true" if listing.next_after is not None else "false"),
    ]
    if v2:
        head += [
            ("ContinuationToken", q.get("continuation-token")),
            ("StartAfter", q.get("start-after")),
            ("KeyCount", str(len(listing.objects) + len(listing.prefixes))),
        ]
        if listing.next_after is not None:
            head.append(("NextContinuationToken", _token(listing.next_after)))
    else:
        head.append(("Marker", after))
        if listing.next_after is not None and delimiter:
            head.append(("NextMarker", listing.next_after))
    contents = "".join(
        "<Contents>"
        + _elements(
            [
                ("Key", obj.name),
                ("Generation", str(obj.generation)),
                ("MetaGeneration", str(obj.metageneration)),
                ("LastModified", rfc3339(obj.created)),
                ("ETag", xml_etag(obj)),
                ("Size", str(obj.size)),
                ("StorageClass", "STANDARD"),
            ]
        )
        + "</Contents>"
        for obj in listing.objects
    )
    prefixes = "".join(
        f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in listing.prefixes
    )
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<ListBucketResult xmlns='{LIST_NS}'>"
        f"{_elements(head)}{contents}{prefixes}</ListBucketResult>"
    )
    ex.reply(200, body.encode(), content_type="application/xml; charset=UTF-8")
