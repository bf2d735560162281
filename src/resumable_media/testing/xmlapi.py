"""XML API of the loopback server (multipart upload, object GET/HEAD) and JSON compose.

Invariants: parts and compose sources are concatenated into a temp file that is published
atomically; composite objects carry a CRC32C of the concatenation and no MD5; XML errors use
the S3-style ``<Error><Code>`` document GCS returns on this API.
"""

from __future__ import annotations

import base64
import errno
import logging
import os
import pathlib
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

import google_crc32c

from . import xmlobjects
from .exchange import Exchange
from .faults import Fault
from .receive import Window, check_hashes, parse_goog_hash, pump
from .state import FaultSource, MultipartUpload, ServerState, StoredPart
from .store import (
    Hashes,
    ObjectMeta,
    Preconditions,
    StoredObject,
    StoreError,
    discard_file,
    int_param,
)
from .xmlobjects import XMLError

_LOGGER = logging.getLogger(__name__)

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_COMPOSE = 32


def xml_error(ex: Exchange, err: XMLError) -> None:
    """Send an S3-style XML error document."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
    ).encode()
    ex.reply(err.status, body, err.headers, content_type="application/xml; charset=UTF-8")


def _reply_xml(ex: Exchange, root: str, fields: list[tuple[str, str]]) -> None:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">{inner}</{root}>'
    ex.reply(200, body.encode(), content_type="application/xml; charset=UTF-8")


def handle(ex: Exchange, state: ServerState, parts: list[str], faults: FaultSource) -> None:
    """Path-style XML API: ``/{bucket}`` (listing) and ``/{bucket}/{object}`` (object calls
    and multipart uploads)."""
    try:
        if len(parts) < 2 or not parts[1]:
            raise XMLError(404, "NoSuchKey", f"Not Found: {ex.raw_path}")
        bucket, name = unquote(parts[1]), unquote("/".join(parts[2:]))
        try:
            state.store.get_bucket(bucket)
        except StoreError:
            raise XMLError(404, "NoSuchBucket", "The specified bucket does not exist.") from None
        q = ex.query_keys
        is_mpu = bool(q & {"uploads", "uploadId"})
        if not name:
            if ex.method not in ("GET", "HEAD"):
                raise XMLError(
                    405,
                    "MethodNotAllowed",
                    f"{ex.method} is not allowed on a bucket: use GET or HEAD.",
                    (("Allow", "GET, HEAD"),),
                )
            if ex.method == "GET":
                xmlobjects.list_objects(ex, state, bucket, faults)
            else:
                ex.finish_body()
                ex.reply(200)
            return
        if ex.method in ("GET", "HEAD") and not is_mpu:
            xmlobjects.get_object(ex, state, bucket, name, faults)
            return
        if ex.method == "PUT" and not is_mpu and "partNumber" not in q:
            xmlobjects.put_object(ex, state, bucket, name, faults)
            return
        if ex.method == "DELETE" and not is_mpu:
            xmlobjects.delete_object(ex, state, bucket, name, faults)
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
                mpu.closed = True
                for path in mpu.own_files():
                    discard_file(path)
                mpu.parts.clear()
                mpu.assembly = None
            ex.reply(204)
        elif ex.method not in ("DELETE", "GET", "HEAD", "POST", "PUT"):
            raise XMLError(
                405,
                "MethodNotAllowed",
                f"{ex.method} is not allowed on an object: use DELETE, GET, HEAD, POST or PUT.",
                (("Allow", "DELETE, GET, HEAD, POST, PUT"),),
            )
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


def _place_part(
    state: ServerState, mpu: MultipartUpload, number: int, length: int | None
) -> tuple[pathlib.Path | None, int]:
    """Where part ``number`` is written: ``(assembly file, offset)``, or ``(None, 0)``."""
    with mpu.lock:
        if mpu.closed:
            return None, 0
        if length is None or length <= 0 or number in mpu.parts or number in mpu.writing:
            return None, 0  # unknown size, empty, or a re-upload: a file of its own
        if mpu.stride is None:
            mpu.stride = length
            mpu.assembly = state.store.new_temp()
            mpu.assembly.touch(mode=0o600)
        if mpu.assembly is None or length > mpu.stride:
            return None, 0
        mpu.writing.add(number)
        return mpu.assembly, (number - 1) * mpu.stride


def _put_part(ex: Exchange, state: ServerState, mpu: MultipartUpload, fault: Fault | None) -> None:
    number = int_param(ex.query, "partNumber")
    if number is None or not 1 <= number <= 10000:
        raise XMLError(400, "InvalidArgument", "Part number must be an integer from 1 to 10000.")
    crc, md5 = parse_goog_hash(ex.headers.get("x-goog-hash"))
    hashes = state.upload_hashes(md5 is not None or "content-md5" in ex.headers)
    assembly, offset = _place_part(state, mpu, number, ex.body.length)
    in_place = assembly is not None
    target = assembly if assembly is not None else state.store.new_temp()
    try:
        try:
            with open(target, "r+b" if in_place else "wb") as out:
                if in_place:
                    out.seek(offset)
                pump(ex.body, out, hashes, Window(), fault)
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
                    400,
                    "BadDigest",
                    "The Content-MD5 you specified did not match what we received.",
                )
        except BaseException:
            if not in_place:
                target.unlink(missing_ok=True)
            raise
        # Without MD5 (benchmark mode) the ETag is derived from the CRC32C instead.
        md5_hex = hashes.md5.hexdigest() if hashes.md5 is not None else f"{hashes.crc:08x}"
        part = StoredPart(target, offset, hashes.crc, md5_hex, hashes.size)
        with mpu.lock:
            closed = mpu.closed
            old = None if closed else mpu.parts.get(number)
            if not closed:
                mpu.parts[number] = part
        if closed:  # completed or aborted while this part was arriving
            if not in_place:
                discard_file(target)
            raise XMLError(404, "NoSuchUpload", "The requested upload was not found.")
        if old is not None and old.path != mpu.assembly:
            discard_file(old.path)
    finally:
        if in_place:
            with mpu.lock:
                mpu.writing.discard(number)
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
        for number, etag in listed:
            stored = mpu.parts.get(number)
            if stored is None or (etag and etag != stored.md5_hex):
                raise XMLError(
                    400, "InvalidPart", f"Part {number} was not uploaded or its ETag differs."
                )
        obj = _join_parts(state, mpu, [mpu.parts[number] for number, _ in listed])
        mpu.closed = True
        with state.lock:
            state.mpu.pop(mpu.upload_id, None)
        for path in mpu.own_files():  # the published assembly file is no longer there
            discard_file(path)
        mpu.parts.clear()
        mpu.assembly = None
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


_ZEROS = bytes(1 << 20)
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def _crc_through_zeros(crc: int, length: int) -> int:
    """Continue a CRC32C over ``length`` zero bytes (hardware speed, no allocation)."""
    while length >= len(_ZEROS):
        crc = google_crc32c.extend(crc, _ZEROS)
        length -= len(_ZEROS)
    return google_crc32c.extend(crc, _ZEROS[:length]) if length else crc


def crc32c_concat(first: int, second: int, second_length: int, zeros: dict[int, int]) -> int:
    """CRC32C of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)``.

    Continuing a CRC over bytes is affine in the starting value, so
    ``crc(A + B) = ext(crc(A), Z) ^ ext(0, Z) ^ crc(B)`` with ``Z`` = ``len(B)`` zero bytes.
    ``zeros`` caches ``ext(0, Z)`` per length (parts mostly share one size).  This is the
    server's own derivation, independent of the client library's combine.
    """
    if second_length not in zeros:
        zeros[second_length] = _crc_through_zeros(0, second_length)
    return _crc_through_zeros(first, second_length) ^ zeros[second_length] ^ second


def _copy_all(source: int, offset: int, target: int, length: int) -> None:
    """Append ``length`` bytes of ``source`` from ``offset`` to ``target`` (in-kernel copy)."""
    copied = 0
    while copied < length:
        try:
            count = os.copy_file_range(source, target, length - copied, offset + copied)
        except OSError as exc:
            if copied or exc.errno not in _NO_KERNEL_COPY:
                raise
            break  # no in-kernel copy between these files: fall back to read/write
        if not count:
            raise OSError(errno.EIO, f"a stored part ended after {copied} of {length} bytes")
        copied += count
    while copied < length:
        data = memoryview(os.pread(source, min(1 << 20, length - copied), offset + copied))
        if not data:
            raise OSError(errno.EIO, f"a stored part ended after {copied} of {length} bytes")
        copied += len(data)
        while data:
            data = data[os.write(target, data) :]


def _joined_hashes(pieces: Sequence[tuple[int, int]]) -> Hashes:
    """Hashes (CRC32C and size, no MD5) of pieces given as ``(crc32c, size)``, in order."""
    hashes = Hashes(md5=None)
    zeros: dict[int, int] = {}
    for crc, size in pieces:
        hashes.crc = crc32c_concat(hashes.crc, crc, size, zeros)
        hashes.size += size
    return hashes


def _write_joined(
    state: ServerState, pieces: Sequence[tuple[pathlib.Path | int, int, int]]
) -> pathlib.Path:
    """A new temp file holding ``(file, offset, size)`` pieces one after another.

    A piece's file is a path (opened here) or an open descriptor.  The bytes are copied in
    the kernel where possible; the temp file is removed if anything fails.
    """
    temp = state.store.new_temp()
    try:
        target = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            for source, offset, size in pieces:
                if isinstance(source, int):
                    _copy_all(source, offset, target, size)
                    continue
                fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _copy_all(fd, offset, target, size)
                finally:
                    os.close(fd)
        finally:
            os.close(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _assembled_in_place(mpu: MultipartUpload, parts: Sequence[StoredPart]) -> bool:
    """True when the assembly file already holds exactly the listed parts, in order."""
    if mpu.assembly is None or mpu.stride is None or mpu.writing:
        return False
    for index, part in enumerate(parts):
        if part.path != mpu.assembly or part.offset != index * mpu.stride:
            return False
        if index < len(parts) - 1 and part.size != mpu.stride:
            return False
    return True


def _join_parts(
    state: ServerState, mpu: MultipartUpload, parts: Sequence[StoredPart]
) -> StoredObject:
    """Publish the listed parts as one object, CRC32C combined from the parts' own.

    Each part's CRC32C and size were taken by this server as the part arrived, so the
    object's CRC32C is derived from them instead of re-reading every byte.  Parts already
    in place in the assembly file become the object without a copy; otherwise they are
    copied together in the kernel.
    """
    hashes = _joined_hashes([(part.crc, part.size) for part in parts])
    if _assembled_in_place(mpu, parts) and mpu.assembly is not None:
        _LOGGER.debug("multipart upload %s: %d parts already in place", mpu.upload_id, len(parts))
        os.truncate(mpu.assembly, hashes.size)
        temp, mpu.assembly = mpu.assembly, None
    else:
        _LOGGER.debug("multipart upload %s: copying %d parts", mpu.upload_id, len(parts))
        temp = _write_joined(state, [(part.path, part.offset, part.size) for part in parts])
    try:
        return state.store.publish(
            mpu.bucket,
            mpu.name,
            temp,
            hashes,
            mpu.meta,
            Preconditions(),
            component_count=len(parts),
        )
    except BaseException:
        # publish removed ``temp``; parts that lived in it (if it was the assembly) are gone
        # too, so a retried completion reports them missing instead of failing on the file.
        for number in [n for n, part in mpu.parts.items() if part.path == temp]:
            del mpu.parts[number]
        raise


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
    pieces: list[tuple[pathlib.Path | int, int, int]] = []
    crcs: list[tuple[int, int]] = []
    components = 0
    try:
        for src in sources:
            if not isinstance(src, dict) or not isinstance(src.get("name"), str):
                raise StoreError(400, "Required field: sourceObjects[].name", "required")
            gen = src.get("generation")
            obj, f = state.open_object(bucket, src["name"], int(gen) if gen else None)
            files.append(f)
            pieces.append((f.fileno(), 0, obj.size))
            crcs.append((int.from_bytes(base64.b64decode(obj.crc32c), "big"), obj.size))
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
        # The sources' CRC32Cs were taken by this server when they were stored.
        temp = _write_joined(state, pieces)
        return state.store.publish(
            bucket,
            name,
            temp,
            _joined_hashes(crcs),
            meta,
            Preconditions.from_query(ex.query),
            component_count=components,
        )
    finally:
        for f in files:
            f.close()
