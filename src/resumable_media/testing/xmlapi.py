"""XML API of the loopback server (multipart upload, object GET/HEAD) and JSON compose.

Invariants: parts and compose sources are concatenated into a temp file that is published
atomically; composite objects carry a CRC32C of the concatenation and no MD5; XML errors use
the S3-style ``<Error><Code>`` document GCS returns on this API.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from .download import serve_media
from .exchange import Exchange
from .faults import Fault
from .receive import POOL, Window, check_hashes, parse_goog_hash, pump
from .state import FaultSource, MultipartUpload, ServerState
from .store import Hashes, ObjectMeta, Preconditions, StoredObject, StoreError, int_param

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_COMPOSE = 32


class XMLError(StoreError):
    """An XML API error with an S3-style code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code)
        self.code = code


def xml_error(ex: Exchange, err: XMLError) -> None:
    """Send an S3-style XML error document."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
    ).encode()
    ex.reply(err.status, body, content_type="application/xml; charset=UTF-8")


def _reply_xml(ex: Exchange, root: str, fields: list[tuple[str, str]]) -> None:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">{inner}</{root}>'
    ex.reply(200, body.encode(), content_type="application/xml; charset=UTF-8")


def handle(ex: Exchange, state: ServerState, parts: list[str], faults: FaultSource) -> None:
    """Path-style XML API: ``/{bucket}/{object}`` with MPU query parameters, or GET/HEAD."""
    try:
        if len(parts) < 3 or not parts[1] or not parts[2]:
            raise XMLError(404, "NoSuchKey", f"Not Found: {ex.raw_path}")
        bucket, name = unquote(parts[1]), unquote("/".join(parts[2:]))
        try:
            state.store.get_bucket(bucket)
        except StoreError:
            raise XMLError(404, "NoSuchBucket", "The specified bucket does not exist.") from None
        q = ex.query_keys
        if ex.method in ("GET", "HEAD") and not q & {"uploads", "uploadId"}:
            faults.method = "storage.objects.get"
            if faults.immediate(ex):
                return
            try:
                obj, f = state.open_object(bucket, name, int_param(ex.query, "generation"))
            except StoreError:
                raise XMLError(404, "NoSuchKey", "The specified key does not exist.") from None
            with f:
                fault = faults.take(lambda x: x.streaming) if faults.active else None
                serve_media(ex, obj, f, fault, state.count_media)
            return
        faults.method = "storage.objects.insert"
        if faults.immediate(ex):
            return
        if ex.method == "POST" and "uploads" in q:
            _initiate(ex, state, bucket, name)
        elif ex.method == "PUT" and "uploadId" in q and "partNumber" in q:
            fault = (
                faults.take(lambda x: x.kind in ("status_after", "stall"))
                if faults.active
                else None
            )
            _put_part(ex, state, _mpu(state, ex), fault)
        elif ex.method == "POST" and "uploadId" in q:
            _complete(ex, state, _mpu(state, ex))
        elif ex.method == "DELETE" and "uploadId" in q:
            mpu = _mpu(state, ex)
            with state.lock:
                state.mpu.pop(mpu.upload_id, None)
            with mpu.lock:
                for path, *_ in mpu.parts.values():
                    path.unlink(missing_ok=True)
                mpu.parts.clear()
            ex.reply(204)
        else:
            raise XMLError(400, "InvalidRequest", f"Unsupported XML API request {ex.method}.")
    except XMLError as err:
        ex.finish_body()
        xml_error(ex, err)


def _mpu(state: ServerState, ex: Exchange) -> MultipartUpload:
    with state.lock:
        mpu = state.mpu.get(ex.query.get("uploadId", ""))
    if mpu is None:
        raise XMLError(
            404,
            "NoSuchUpload",
            "The requested upload was not found.",
        )
    return mpu


def _initiate(ex: Exchange, state: ServerState, bucket: str, name: str) -> None:
    ex.finish_body()
    metadata = {
        k[len("x-goog-meta-") :]: v for k, v in ex.headers.items() if k.startswith("x-goog-meta-")
    }
    meta = ObjectMeta(
        content_type=ex.headers.get("content-type") or "application/octet-stream",
        content_encoding=ex.headers.get("content-encoding") or None,
        cache_control=ex.headers.get("cache-control") or None,
        metadata=metadata or None,
    )
    upload_id = secrets.token_urlsafe(24)
    with state.lock:
        state.mpu[upload_id] = MultipartUpload(upload_id, bucket, name, meta)
    _reply_xml(
        ex,
        "InitiateMultipartUploadResult",
        [("Bucket", bucket), ("Key", name), ("UploadId", upload_id)],
    )


def _part_hash_header(hashes: Hashes) -> str:
    md5 = hashes.md5_b64()
    return f"crc32c={hashes.crc_b64()}" + ("" if md5 is None else f",md5={md5}")


def _put_part(ex: Exchange, state: ServerState, mpu: MultipartUpload, fault: Fault | None) -> None:
    number = int_param(ex.query, "partNumber")
    if number is None or not 1 <= number <= 10000:
        raise XMLError(400, "InvalidArgument", "Part number must be an integer from 1 to 10000.")
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    temp = state.store.new_temp()
    hashes = state.upload_hashes(md5 is not None or "content-md5" in ex.headers)
    try:
        with open(temp, "wb") as out:
            pump(ex, out, hashes, Window(), fault)
        if fault is not None and fault.kind == "status_after":
            ex.finish_body()
            raise XMLError(fault.status, "InternalError", f"Retry Test: injected {fault.text}")
        try:
            check_hashes(hashes, crc, md5)
        except StoreError as err:
            raise XMLError(400, "BadDigest", err.message) from None
        content_md5 = ex.headers.get("content-md5")
        if content_md5 is not None and content_md5.strip() != hashes.md5_b64():
            raise XMLError(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    # Without MD5 (benchmark mode) the ETag is derived from the CRC32C instead.
    md5_hex = hashes.md5.hexdigest() if hashes.md5 is not None else f"{hashes.crc:08x}"
    with mpu.lock:
        old = mpu.parts.get(number)
        mpu.parts[number] = (temp, hashes.crc, md5_hex, hashes.size)
    if old is not None:
        old[0].unlink(missing_ok=True)
    headers = [
        ("ETag", f'"{md5_hex}"'),
        ("x-goog-hash", _part_hash_header(hashes)),
    ]
    ex.reply(200, b"", headers)


def _complete(ex: Exchange, state: ServerState, mpu: MultipartUpload) -> None:
    raw = ex.body.read_all(1 << 20)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        raise XMLError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    listed: list[tuple[int, str]] = []
    for part in root.iter():
        if part.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in part}
        try:
            listed.append((int(fields.get("PartNumber", "")), fields.get("ETag", "").strip('"')))
        except ValueError:
            raise XMLError(400, "InvalidPart", "Invalid PartNumber.") from None
    if not listed:
        raise XMLError(400, "MalformedXML", "The list of parts was empty.")
    if [n for n, _ in listed] != sorted({n for n, _ in listed}):
        raise XMLError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
    with mpu.lock:
        paths = []
        for number, etag in listed:
            stored = mpu.parts.get(number)
            if stored is None or (etag and etag != stored[2]):
                raise XMLError(
                    400, "InvalidPart", f"Part {number} was not uploaded or its ETag differs."
                )
            paths.append(stored[0])
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(open(p, "rb")) for p in paths]
            obj = _concatenate(
                state, mpu.bucket, mpu.name, files, mpu.meta, Preconditions(), len(files)
            )
        with state.lock:
            state.mpu.pop(mpu.upload_id, None)
        for path, *_ in mpu.parts.values():
            path.unlink(missing_ok=True)
    _reply_xml(
        ex,
        "CompleteMultipartUploadResult",
        [
            ("Location", f"{ex.base_url}/{obj.bucket}/{obj.name}"),
            ("Bucket", obj.bucket),
            ("Key", obj.name),
            ("ETag", f'"{obj.etag()}"'),
        ],
    )


def _concatenate(
    state: ServerState,
    bucket: str,
    name: str,
    sources: Sequence[io.BufferedIOBase],
    meta: ObjectMeta,
    pre: Preconditions,
    components: int,
) -> StoredObject:
    """Write the concatenation of ``sources`` (paths or open files) and publish it."""
    temp = state.store.new_temp()
    hashes = Hashes(md5=None)
    buf = POOL.get()
    view = memoryview(buf)
    try:
        with open(temp, "wb") as out:
            for src in sources:
                while n := src.readinto(view):
                    out.write(view[:n])
                    hashes.update(view[:n])
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        view.release()
        POOL.put(buf)
    return state.store.publish(bucket, name, temp, hashes, meta, pre, component_count=components)


def compose(
    ex: Exchange, state: ServerState, bucket: str, name: str, doc: dict[str, Any]
) -> StoredObject:
    """``POST .../o/{dest}/compose``: concatenate up to 32 source objects."""
    sources = doc.get("sourceObjects")
    if not isinstance(sources, list) or not sources:
        raise StoreError(400, "Required field: sourceObjects", "required")
    if len(sources) > MAX_COMPOSE:
        raise StoreError(
            400,
            f"The number of source components provided ({len(sources)}) exceeds the maximum "
            f"({MAX_COMPOSE})",
        )
    dest = doc.get("destination") or {}
    if not isinstance(dest, dict):
        raise StoreError(400, "Invalid value for destination.")
    files = []
    components = 0
    try:
        for src in sources:
            if not isinstance(src, dict) or not isinstance(src.get("name"), str):
                raise StoreError(400, "Required field: sourceObjects[].name", "required")
            gen = src.get("generation")
            obj, f = state.open_object(bucket, src["name"], int(gen) if gen else None)
            files.append(f)
            match = (src.get("objectPreconditions") or {}).get("ifGenerationMatch")
            if match is not None and int(match) != obj.generation:
                raise StoreError(
                    412,
                    "At least one of the pre-conditions you specified did not hold.",
                    "conditionNotMet",
                )
            components += obj.component_count or 1
        first_type = dest.get("contentType") or "application/octet-stream"
        meta = ObjectMeta(
            content_type=first_type,
            content_encoding=dest.get("contentEncoding"),
            cache_control=dest.get("cacheControl"),
            metadata=dest.get("metadata") or None,
        )
        return _concatenate(
            state, bucket, name, files, meta, Preconditions.from_query(ex.query), components
        )
    finally:
        for f in files:
            f.close()
