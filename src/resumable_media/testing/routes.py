"""Request routing of the loopback server: JSON API, uploads, downloads, XML API, Retry Test API.

Invariants: every request gets exactly one outcome -- a complete response, a deliberately cut
stream, or a reset/closed connection; store errors become GCS JSON errors; object names are
taken from the raw path and percent-decoded once; a request without fault headers does no
fault bookkeeping beyond two dictionary lookups.
"""

from __future__ import annotations

from urllib.parse import unquote

from . import jsonapi, uploads, xmlapi
from .download import serve_media
from .exchange import BadRequest, Exchange
from .faults import Fault
from .state import FaultSource, ServerState
from .store import Preconditions, StoreError, int_param, not_allowed

GET, INSERT = "storage.objects.get", "storage.objects.insert"


def handle(ex: Exchange, state: ServerState) -> None:
    """Route one request and answer it (or raise StoreError/BadRequest for the caller)."""
    path = ex.raw_path
    if path.startswith("/retry_test"):
        retry_api(ex, state)
        return
    test_id = ex.headers.get("x-retry-test-id")
    if test_id is not None and not state.retry_tests.exists(test_id):
        raise StoreError(
            404, (f"Retry test {test_id} not found: create one with POST /retry_test."), "notFound"
        )
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
    elif path.startswith("/storage/v1/"):
        jsonapi.handle(ex, state, faults)
    elif path in ("/", ""):
        if ex.method not in ("GET", "HEAD"):
            raise not_allowed(ex.method, "/", ("GET", "HEAD"))
        ex.reply(200, b"OK", content_type="text/plain")
    else:
        xmlapi.handle(ex, state, parts, faults)


def _upload(ex: Exchange, state: ServerState, bucket: str, faults: FaultSource) -> None:
    kind = ex.query.get("uploadType", "")
    if ex.method not in ("POST", "PUT", "DELETE"):
        raise not_allowed(ex.method, "an upload", ("DELETE", "POST", "PUT"))
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
        raise BadRequest(
            f"Unsupported upload request: {ex.method} with uploadType={kind or '(none)'}:"
            " use media, multipart or resumable."
        )


def _media(ex: Exchange, state: ServerState, bucket: str, name: str, faults: FaultSource) -> None:
    if ex.method not in ("GET", "HEAD"):
        raise not_allowed(ex.method, "a download", ("GET", "HEAD"))
    obj, f = state.open_object(bucket, name, int_param(ex.query, "generation"))
    with f:
        Preconditions.from_query(ex.query).check(obj)
        fault: Fault | None = None
        if faults.active:
            fault = faults.take(lambda x: x.streaming)
        serve_media(ex, obj, f, fault, state.count_media)


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
        doc = jsonapi.read_json(ex)
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
            raise StoreError(
                404,
                (f"Retry test {parts[1]} not found: create one with POST /retry_test."),
                "notFound",
            ) from None
        return
    if parts == ["retry_tests"]:
        raise not_allowed(ex.method, "/retry_tests", ("GET",))
    if parts == ["retry_test"]:
        raise not_allowed(ex.method, "/retry_test", ("POST",))
    if len(parts) == 2 and parts[0] == "retry_test":
        raise not_allowed(ex.method, "/retry_test/ID", ("DELETE", "GET"))
    raise StoreError(404, f"Not Found: {ex.raw_path}", "notFound")
