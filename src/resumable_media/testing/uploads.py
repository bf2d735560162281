"""JSON API uploads of the loopback server: media, multipart and resumable (GCS semantics).

Invariants: upload bytes go to a temp file and become visible only through ``Store.publish``
(atomic rename, new generation); a resumable session's ``persisted`` size changes only when a
request completes its kept window (the file is truncated back otherwise), and its hashes are
taken from the file below that size, so a client that disconnects mid-chunk leaves the session
exactly as before that request; a poisoned session repeats its 400 forever.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from . import multipart
from .exchange import BadRequest, ClientGone, Exchange
from .faults import Fault
from .receive import Tail, Window, check_hashes, parse_goog_hash, pump
from .state import FaultSource, ServerState, UploadSession
from .store import ObjectMeta, Preconditions, StoreError, int_param

QUANTUM = 256 * 1024
SHORT_CHUNK_TEXT = (
    "Invalid request.  The number of bytes uploaded is required to be equal or greater than "
    "262144, except for the final request (it's recommended to be the exact multiple of "
    "262144).  The received request contained {n} bytes, which does not meet this requirement."
)
_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def _upload_fault(faults: FaultSource, final: bool) -> Fault | None:
    def applies(fault: Fault) -> bool:
        return fault.kind in ("status_after", "stall") or (fault.kind == "broken_final" and final)

    return faults.take(applies) if faults.active else None


def _meta_from(doc: dict[str, Any], content_type: str | None) -> ObjectMeta:
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise StoreError(400, "Invalid value for metadata: expected an object.")
    return ObjectMeta(
        content_type=doc.get("contentType") or content_type or "application/octet-stream",
        content_encoding=doc.get("contentEncoding"),
        cache_control=doc.get("cacheControl"),
        metadata={str(k): str(v) for k, v in metadata.items()} if metadata else None,
    )


def _json_doc(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise StoreError(400, "Parse Error: the request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise StoreError(400, "Invalid request: the metadata must be a JSON object.")
    return doc


def _fail_after(ex: Exchange, fault: Fault | None) -> bool:
    """Answer an upload fault's status after its cut; True when it did."""
    if fault is None or fault.kind != "status_after":
        return False
    ex.finish_body()
    ex.error(fault.status, f"Retry Test: injected {fault.text}", "backendError")
    return True


def _reply_object(ex: Exchange, resource: dict[str, Any], fault: Fault | None) -> None:
    body = json.dumps(resource).encode()
    if fault is not None and fault.kind == "broken_final":
        body = body[: fault.after_bytes]
    ex.reply(200, body, content_type="application/json; charset=UTF-8")


def media_upload(ex: Exchange, state: ServerState, bucket: str, faults: FaultSource) -> None:
    """``uploadType=media``: the body is the object."""
    name = ex.query.get("name")
    if not name:
        raise StoreError(400, "Required parameter: name", "required")
    state.store.get_bucket(bucket)
    pre = Preconditions.from_query(ex.query)
    meta = ObjectMeta(
        content_type=ex.headers.get("content-type") or "application/octet-stream",
        content_encoding=ex.query.get("contentEncoding") or None,
    )
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    fault = _upload_fault(faults, True)
    temp = state.store.new_temp()
    hashes = state.upload_hashes(md5 is not None)
    try:
        with open(temp, "wb") as out:
            pump(ex.body, out, hashes, Window(), fault)
        if _fail_after(ex, fault):
            temp.unlink(missing_ok=True)
            return
        check_hashes(hashes, crc, md5)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    obj = state.store.publish(bucket, name, temp, hashes, meta, pre)
    _reply_object(ex, obj.resource(ex.base_url), fault)


def multipart_upload(ex: Exchange, state: ServerState, bucket: str, faults: FaultSource) -> None:
    """``uploadType=multipart``: JSON metadata part, then the media part.

    The media part is written to its temp file once, hashed as it arrives; the body's last
    few KiB are held back until the closing boundary has been found in them.
    """
    state.store.get_bucket(bucket)
    pre = Preconditions.from_query(ex.query)
    delim = b"--" + multipart.boundary(ex.headers.get("content-type", ""))
    fault = _upload_fault(faults, True)
    head = multipart.read_head(ex.body, delim)
    doc = _json_doc(head.metadata)
    name = doc.get("name") or ex.query.get("name")
    if not name or not isinstance(name, str):
        raise StoreError(400, "Required parameter: name", "required")
    meta = _meta_from(doc, head.media_headers.get("content-type"))
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    crc, md5 = doc.get("crc32c") or crc, doc.get("md5Hash") or md5
    temp = state.store.new_temp()
    hashes = state.upload_hashes(True)
    tail = Tail(multipart.tail_size(delim))
    try:
        with open(temp, "wb") as out:
            pump(multipart.Rest(head.leftover, ex.body), out, hashes, Window(), fault, tail)
            if _fail_after(ex, fault):
                temp.unlink(missing_ok=True)
                return
            media = tail.data[: multipart.media_end(tail.data, delim, head.crlf)]
            out.write(media)
            hashes.update(media)
        check_hashes(hashes, crc, md5)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    obj = state.store.publish(bucket, name, temp, hashes, meta, pre)
    _reply_object(ex, obj.resource(ex.base_url), fault)


def initiate(ex: Exchange, state: ServerState, bucket: str) -> None:
    """Start a resumable session: 200, empty body, ``Location`` with ``upload_id``."""
    state.store.get_bucket(bucket)
    doc = _json_doc(ex.body.read_all(1 << 20))
    name = doc.get("name") or ex.query.get("name")
    if not name or not isinstance(name, str):
        raise StoreError(400, "Required parameter: name", "required")
    declared = int_param(ex.headers, "x-upload-content-length")
    meta = _meta_from(doc, ex.headers.get("x-upload-content-type"))
    if ex.query.get("contentEncoding"):
        meta = ObjectMeta(
            meta.content_type, ex.query["contentEncoding"], meta.cache_control, meta.metadata
        )
    pre = Preconditions.from_query(ex.query)
    pre.check(state.store.peek(bucket, name))  # checked again when the upload completes
    upload_id = secrets.token_urlsafe(24)
    temp = state.store.new_temp()
    temp.touch()
    session = UploadSession(
        upload_id, bucket, name, meta, pre, temp, declared, with_md5=state.upload_md5
    )
    with state.lock:
        state.sessions[upload_id] = session
    # GCS answers with the request URL as sent plus the session id (nothing else added).
    location = f"{ex.base_url}{ex.target}{'&' if '?' in ex.target else '?'}upload_id={upload_id}"
    ex.reply(200, b"", [("Location", location), ("X-GUploader-UploadID", upload_id)])


def session_for(ex: Exchange, state: ServerState) -> UploadSession:
    """The session named by ``upload_id``.

    Raises:
        StoreError: 404 for an unknown or cancelled session.
    """
    with state.lock:
        session = state.sessions.get(ex.query.get("upload_id", ""))
    if session is None:
        raise StoreError(
            404, "No such upload session (unknown or cancelled upload_id).", "notFound"
        )
    return session


def cancel(ex: Exchange, state: ServerState) -> None:
    """DELETE on the session URI: 499, and the session is gone."""
    session = session_for(ex, state)
    with session.lock, state.lock:
        state.sessions.pop(session.upload_id, None)
        session.temp.unlink(missing_ok=True)
    ex.reply(499)


def _308(ex: Exchange, session: UploadSession) -> None:
    headers = [("X-GUploader-UploadID", session.upload_id)]
    if session.persisted:
        headers.append(("Range", f"bytes=0-{session.persisted - 1}"))
    if ex.headers.get("x-guploader-no-308", "").lower() == "yes":
        # Clients that cannot see a 308 ask for a 200 that carries the real status.
        headers.append(("X-Http-Status-Code-Override", "308"))
        ex.reply(200, b"", headers)
        return
    ex.reply(308, b"", headers)


def chunk(ex: Exchange, state: ServerState, faults: FaultSource) -> None:
    """PUT on the session URI: a chunk, a status query, or a one-shot upload."""
    session = session_for(ex, state)
    with session.lock:
        if session.poison is not None:
            ex.reply(400, session.poison.encode(), content_type="text/plain; charset=utf-8")
            return
        if session.result is not None:
            _reply_object(ex, session.result.resource(ex.base_url), None)
            return
        _chunk_locked(ex, state, session, faults)


def _parse_content_range(ex: Exchange) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) -- start/end None for ``bytes */T``, total None for ``/*``."""
    value = ex.headers.get("content-range")
    if value is None:
        if ex.body.length is None and not ex.body.finished:
            raise BadRequest("A one-shot upload needs a Content-Length header.")
        size = ex.body.length or 0
        return (0, size - 1, size) if size else (None, None, 0)
    match = _RANGE.fullmatch(value.strip())
    if not match:
        raise BadRequest(f"Failed to parse Content-Range header: {value!r}.")
    total = None if match[3] == "*" else int(match[3])
    if match[1] is None:
        return None, None, total
    start, end = int(match[1]), int(match[2])
    if end < start or (total is not None and end >= total):
        raise BadRequest(f"Invalid Content-Range header: {value!r}.")
    return start, end, total


def _chunk_locked(
    ex: Exchange, state: ServerState, session: UploadSession, faults: FaultSource
) -> None:
    start, end, total = _parse_content_range(ex)
    declared = session.declared_size
    if total is not None and declared is not None and total != declared:
        raise BadRequest(f"Content-Range total {total} differs from the declared size {declared}.")
    persisted = session.persisted
    if start is None or end is None:  # status query, or an empty final request
        ex.finish_body()
        if total is not None and total == persisted:
            _finalize(ex, state, session, _upload_fault(faults, True))
        elif total is not None and total < persisted:
            raise BadRequest(f"Total size {total} is smaller than the {persisted} bytes persisted.")
        else:
            _308(ex, session)
        return
    length = end - start + 1
    if ex.body.length is not None and ex.body.length != length:
        raise BadRequest(
            f"Content-Range covers {length} bytes but the request body has {ex.body.length}."
        )
    if start > persisted:
        raise BadRequest(f"Invalid Content-Range start: expected at most {persisted}, got {start}.")
    final = total is not None and end == total - 1
    if not final and length < QUANTUM:
        ex.finish_body()
        session.poison = SHORT_CHUNK_TEXT.format(n=length)
        ex.reply(400, session.poison.encode(), content_type="text/plain; charset=utf-8")
        return
    keep_end = end + 1 if final else (end + 1) // QUANTUM * QUANTUM
    skip = persisted - start
    window = Window(skip=skip, keep=max(0, keep_end - persisted))
    fault = _upload_fault(faults, final)
    if fault is not None and fault.kind == "status_after":
        # Persist exactly the cut (kept on a 256 KiB boundary unless it completes the object).
        cut_end = persisted + max(0, fault.after_bytes - skip)
        if cut_end < keep_end:
            window.keep = max(0, cut_end // QUANTUM * QUANTUM - persisted)
    with open(session.temp, "r+b") as out:
        out.seek(persisted)
        try:
            kept = pump(ex.body, out, None, window, fault)
        except (ClientGone, OSError):
            out.truncate(persisted)
            raise
        if kept < (window.keep or 0) and not (fault and fault.kind == "status_after"):
            out.truncate(persisted)
            raise ClientGone("request body shorter than its Content-Range")
    session.persisted = persisted + kept
    session.hasher.advance(session.persisted)
    if _fail_after(ex, fault):
        return
    ex.finish_body()
    if final and session.persisted == total:
        _finalize(ex, state, session, fault)
    else:
        _308(ex, session)


def _finalize(
    ex: Exchange, state: ServerState, session: UploadSession, fault: Fault | None
) -> None:
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    if session.declared_size is not None and session.persisted != session.declared_size:
        raise BadRequest(
            f"Upload finished with {session.persisted} bytes but "
            f"{session.declared_size} were declared."
        )
    try:
        hashes = session.hasher.result()
        check_hashes(hashes, crc, md5)
        obj = state.store.publish(
            session.bucket,
            session.name,
            session.temp,
            hashes,
            session.meta,
            session.pre,
        )
    except StoreError:
        with state.lock:
            state.sessions.pop(session.upload_id, None)
        session.temp.unlink(missing_ok=True)
        raise
    session.result = obj
    _reply_object(ex, obj.resource(ex.base_url), fault)
