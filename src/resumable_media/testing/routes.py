"""Request routing of the loopback server: JSON API, uploads, downloads, XML API, Retry Test API.

Invariants: every request gets exactly one outcome -- a complete response, a deliberately cut
stream, or a reset/closed connection; store errors become GCS JSON errors; object names are
taken from the raw path and percent-decoded once; a request without fault headers does no
fault bookkeeping beyond two dictionary lookups.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from . import uploads, xmlapi
from .download import serve_media
from .exchange import BadRequest, Exchange
from .faults import Fault
from .state import FaultSource, ServerState
from .store import Preconditions, StoreError, int_param

GET, INSERT = "storage.objects.get", "storage.objects.insert"


def handle(ex: Exchange, state: ServerState) -> None:
    """Route one request and answer it (or raise StoreError/BadRequest for the caller)."""
    path = ex.raw_path
    if path.startswith("/retry_test"):
        retry_api(ex, state)
        return
    test_id = ex.headers.get("x-retry-test-id")
    if test_id is not None and not state.retry_tests.exists(test_id):
        raise StoreError(404, f"Retry test {test_id!r} not found.", "notFound")
    try:
        faults = FaultSource(state, test_id, ex.headers.get("x-goog-emulator-instructions"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if ex.malformed:
        raise BadRequest(ex.malformed)
    if path.startswith("/resumable/upload/"):  # apitools' (gsutil's) resumable upload path
        path = path[len("/resumable") :]
    parts = path.split("/")
    if path.startswith("/upload/storage/v1/b/") and len(parts) == 7 and parts[6] == "o":
        faults.method = INSERT
        if faults.immediate(ex):
            return
        _upload(ex, state, unquote(parts[5]), faults)
    elif path.startswith("/download/storage/v1/b/") and len(parts) >= 8 and parts[6] == "o":
        faults.method = GET
        if faults.immediate(ex):
            return
        _media(ex, state, unquote(parts[5]), unquote("/".join(parts[7:])), faults)
    elif path.startswith("/storage/v1/b"):
        _json_api(ex, state, parts, faults)
    elif path in ("/", ""):
        ex.reply(200, b"OK", content_type="text/plain")
    else:
        xmlapi.handle(ex, state, parts, faults)


def _upload(ex: Exchange, state: ServerState, bucket: str, faults: FaultSource) -> None:
    kind = ex.query.get("uploadType", "")
    if ex.method == "POST" and kind == "media":
        uploads.media_upload(ex, state, bucket, faults)
    elif ex.method == "POST" and kind == "multipart":
        uploads.multipart_upload(ex, state, bucket, faults)
    elif ex.method == "POST" and kind == "resumable" and "upload_id" not in ex.query:
        uploads.initiate(ex, state, bucket)
    elif ex.method in ("PUT", "POST") and "upload_id" in ex.query:
        uploads.chunk(ex, state, faults)
    elif ex.method == "DELETE" and "upload_id" in ex.query:
        uploads.cancel(ex, state)
    else:
        raise BadRequest(f"Unsupported upload request: {ex.method} uploadType={kind!r}.")


def _media(ex: Exchange, state: ServerState, bucket: str, name: str, faults: FaultSource) -> None:
    if ex.method not in ("GET", "HEAD"):
        raise StoreError(405, f"Method {ex.method} not allowed on media.", "methodNotAllowed")
    obj, f = state.open_object(bucket, name, int_param(ex.query, "generation"))
    with f:
        Preconditions.from_query(ex.query).check(obj)
        fault: Fault | None = None
        if faults.active:
            fault = faults.take(lambda x: x.streaming)
        serve_media(ex, obj, f, fault, state.count_media)


def _json_api(ex: Exchange, state: ServerState, parts: list[str], faults: FaultSource) -> None:
    # parts: ['', 'storage', 'v1', 'b', bucket?, 'o'?, name...]
    if len(parts) == 4 or (len(parts) == 5 and parts[4] == ""):
        faults.method = "storage.buckets.insert" if ex.method == "POST" else "storage.buckets.list"
        if faults.immediate(ex):
            return
        if ex.method != "POST":
            raise StoreError(405, "Listing buckets is not supported.", "methodNotAllowed")
        doc = _read_json(ex)
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise StoreError(400, "Required parameter: name", "required")
        bucket = state.store.create_bucket(name, exist_ok=False)
        ex.reply_json(200, bucket.resource())
        return
    bucket_name = unquote(parts[4])
    if len(parts) == 5:
        faults.method = "storage.buckets.get"
        if faults.immediate(ex):
            return
        ex.finish_body()
        ex.reply_json(200, state.store.get_bucket(bucket_name).resource())
        return
    if parts[5] != "o":
        raise StoreError(404, f"Not Found: {ex.raw_path}", "notFound")
    if len(parts) == 6 or (len(parts) == 7 and parts[6] == ""):
        faults.method = "storage.objects.list"
        if faults.immediate(ex):
            return
        ex.finish_body()
        ex.reply_json(200, _list(ex, state, bucket_name))
        return
    rest = "/".join(parts[6:])
    if ex.method == "POST" and rest.endswith("/compose"):
        faults.method = "storage.objects.compose"
        if faults.immediate(ex):
            return
        obj = xmlapi.compose(
            ex, state, bucket_name, unquote(rest[: -len("/compose")]), _read_json(ex)
        )
        ex.reply_json(200, obj.resource(ex.base_url))
        return
    name = unquote(rest)
    generation = int_param(ex.query, "generation")
    pre = Preconditions.from_query(ex.query)
    if ex.method == "DELETE":
        faults.method = "storage.objects.delete"
        if faults.immediate(ex):
            return
        ex.finish_body()
        state.store.delete(bucket_name, name, pre, generation)
        ex.reply(204)
        return
    if ex.method not in ("GET", "HEAD"):
        raise StoreError(405, f"Method {ex.method} not supported here.", "methodNotAllowed")
    faults.method = GET
    if faults.immediate(ex):
        return
    if ex.query.get("alt") == "media":
        _media(ex, state, bucket_name, name, faults)
        return
    ex.finish_body()
    obj = state.store.get(bucket_name, name, generation)
    pre.check(obj)
    ex.reply_json(200, obj.resource(ex.base_url))


def _list(ex: Exchange, state: ServerState, bucket: str) -> dict[str, Any]:
    prefix = ex.query.get("prefix", "")
    delimiter = ex.query.get("delimiter", "")
    max_results = int_param(ex.query, "maxResults") or 1000
    token = ex.query.get("pageToken", "")
    items: list[dict[str, Any]] = []
    prefixes: set[str] = set()
    next_token = None
    last = ""
    for obj in state.store.list(bucket, prefix):
        if token and obj.name <= token:
            continue
        if len(items) + len(prefixes) >= max_results:
            next_token = last
            break
        last = obj.name
        if delimiter:
            cut = obj.name.find(delimiter, len(prefix))
            if cut >= 0:
                prefixes.add(obj.name[: cut + len(delimiter)])
                continue
        items.append(obj.resource(ex.base_url))
    doc: dict[str, Any] = {"kind": "storage#objects", "items": items}
    if prefixes:
        doc["prefixes"] = sorted(prefixes)
    if next_token:
        doc["nextPageToken"] = next_token
    return doc


def _read_json(ex: Exchange) -> dict[str, Any]:
    raw = ex.body.read_all(1 << 20)
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise StoreError(400, "Parse Error: the request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise StoreError(400, "Invalid request: expected a JSON object.")
    return doc


def retry_api(ex: Exchange, state: ServerState) -> None:
    """``/retry_test`` and ``/retry_tests``: create, describe, list, delete."""
    parts = ex.raw_path.strip("/").split("/")
    if parts == ["retry_tests"] and ex.method == "GET":
        ex.finish_body()
        ex.reply_json(200, {"retry_test": state.retry_tests.list()})
        return
    if parts == ["retry_test"] and ex.method == "POST":
        if not ex.headers.get("content-type", "").lower().startswith("application/json"):
            raise BadRequest("Retry Test creation requires Content-Type: application/json.")
        doc = _read_json(ex)
        instructions = doc.get("instructions")
        if not isinstance(instructions, dict):
            raise BadRequest("Retry Test document needs an 'instructions' object.")
        try:
            test_id = state.retry_tests.create(instructions)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        ex.reply_json(200, state.retry_tests.describe(test_id))
        return
    if len(parts) == 2 and parts[0] == "retry_test" and ex.method in ("GET", "DELETE"):
        ex.finish_body()
        try:
            if ex.method == "DELETE":
                state.retry_tests.delete(parts[1])
                ex.reply(200)
            else:
                ex.reply_json(200, state.retry_tests.describe(parts[1]))
        except KeyError:
            raise StoreError(404, f"Retry test {parts[1]!r} not found.", "notFound") from None
        return
    raise StoreError(404, f"Not Found: {ex.raw_path}", "notFound")
