"""Differential suite: every public class of ``requests`` driven through the same
scenarios on google-resumable-media 2.11 and on ours, against the loopback server and
against scripted raw-socket responses.

Each test compares what a caller sees (status, exception class and ``args``, response
content, stream bytes, the object's public state) and every ``transport.request`` call
(method, URL, argument shape, headers, body).  A difference passes only when
``allowlist.ALLOWED`` names it for that class and scenario, and each allow-list entry
must match a difference (so the list stays exact); ``allowlist.NOTES`` holds the
README's compatibility notes the entries point to.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import urllib.parse
from typing import Any

import google_crc32c
import pytest
from _diff import Impl, Observed
from _runner import Runner
from _scripted import Received, Reply, response
from allowlist import ALLOWED

DATA = random.Random(15).randbytes(700_000)
SMALL = DATA[:1000]
PLAIN = b"compress me, " * 40_000
GZ = gzip.compress(PLAIN, mtime=0)
KIB = 1024


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def _allowed(cls: str, scenario: str) -> list[str]:
    return [pattern for pattern, _note in ALLOWED.get((cls, scenario), [])]


def _resp(result: Any) -> Observed:
    """What a caller sees of a returned response."""
    out: Observed = {"status": result.status_code, "class": type(result).__qualname__}
    try:
        out["content"] = result.content
    except Exception as exc:
        out["content"] = exc
    return out


def _media(ctx: Any, name: str = "obj") -> str:
    return f"{ctx.endpoint}/download/storage/v1/b/{ctx.bucket}/o/{name}?alt=media"


def _object_json(result: Any) -> Observed:
    body = result.json()
    keys = ("name", "bucket", "size", "md5Hash", "crc32c", "contentType", "metadata")
    return {"status": result.status_code, "json": {k: body.get(k) for k in keys}}


# -- Download and RawDownload ------------------------------------------------------------


def _download(
    *,
    checksum: str | None = "md5",
    start: int | None = None,
    end: int | None = None,
    stream: bool = True,
    name: str = "obj",
    retries: int = 2,
) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        cls = getattr(impl.requests, ctx.cls)
        ctx.stream = io.BytesIO() if stream else None
        headers = dict(ctx.fault_headers)
        ctx.obj = cls(
            _media(ctx, name),
            stream=ctx.stream,
            start=start,
            end=end,
            headers=headers,
            checksum=checksum,
        )
        ctx.obj._retry_strategy = impl.retry(retries)
        out = _resp(ctx.obj.consume(ctx.transport))
        try:
            ctx.obj.consume(ctx.transport)
        except Exception as exc:
            out["second_consume"] = exc
        return out

    return run


def _with_cls(scenario: Any, cls: str) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        ctx.cls = cls
        result: Observed = scenario(impl, ctx)
        return result

    return run


DOWNLOAD_LOOPBACK = {
    "success-md5": (_download(), {}),
    "success-crc32c": (_download(checksum="crc32c"), {}),
    "success-no-checksum": (_download(checksum=None), {}),
    "success-no-stream": (_download(stream=False), {}),
    "range": (_download(start=1000, end=299_999), {}),
    "range-open-end": (_download(start=600_000), {}),
    "range-suffix": (_download(start=-5000), {}),
    "gzip-stored": (_download(name="gz"), {}),
    "broken-stream-resume": (
        _download(),
        {"storage.objects.get": ["return-broken-stream-after-256K"]},
    ),
    "5xx-retry": (_download(checksum="crc32c"), {"storage.objects.get": ["return-503"]}),
    "5xx-exhausted": (
        _download(retries=1),
        {"storage.objects.get": ["return-503", "return-503"]},
    ),
    "corrupted-data": (_download(), {"storage.objects.get": ["return-corrupted-data"]}),
    "not-found": (_download(name="missing"), {}),
    "empty-object": (_download(name="empty"), {}),
    "unknown-checksum": (_download(checksum="badsum"), {}),
}


@pytest.mark.parametrize("cls", ["Download", "RawDownload"])
@pytest.mark.parametrize("scenario", sorted(DOWNLOAD_LOOPBACK))
def test_download_loopback(runner: Runner, cls: str, scenario: str) -> None:
    run, faults = DOWNLOAD_LOOPBACK[scenario]
    objects = {"obj": (DATA, None), "gz": (GZ, "gzip"), "empty": (b"", None)}
    runner.loopback(
        f"{cls}/{scenario}",
        _with_cls(run, cls),
        _allowed(cls, scenario),
        objects=objects,
        faults=faults or None,
    )


def _hash_headers(data: bytes, *, md5: str | None = None, crc: str | None = None) -> str:
    return f"crc32c={crc or _crc(data)},md5={md5 or _md5(data)}"


def _object_headers(data: bytes, *, stored: bytes | None = None, **hashes: str) -> dict[str, str]:
    stored = data if stored is None else stored
    return {
        "Content-Type": "application/octet-stream",
        "x-goog-generation": "1700000000000001",
        "x-goog-hash": _hash_headers(stored, **hashes),
        "x-goog-stored-content-length": str(len(stored)),
        "x-goog-stored-content-encoding": "identity",
    }


_WRONG_MD5 = _md5(b"not the data")
_WRONG_CRC = _crc(b"not the data")
_CUT = 300 * KIB


def _cut_then_rest(data: bytes, **hashes: Any) -> list[Any]:
    """A 200 whose body breaks off after ``_CUT`` bytes, then a 206 from the requested byte."""
    headers = _object_headers(data, **hashes)
    first = response(200, "OK", headers, data[:_CUT], length=len(data), close=True)

    def rest(request: Received) -> Reply:
        offset = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
        span = {"Content-Range": f"bytes {offset}-{len(data) - 1}/{len(data)}"}
        return response(206, "Partial Content", dict(headers, **span), data[offset:])

    return [first, rest]


DOWNLOAD_SCRIPTED: dict[str, tuple[Any, list[Any]]] = {
    "checksum-mismatch": (
        _download(),
        [response(200, "OK", _object_headers(SMALL, md5=_WRONG_MD5), SMALL)],
    ),
    "checksum-mismatch-no-stream": (
        _download(stream=False),
        [response(200, "OK", _object_headers(SMALL, md5=_WRONG_MD5), SMALL)],
    ),
    "broken-stream-resume-scripted": (_download(), _cut_then_rest(DATA)),
    "resumed-206-checksum-mismatch": (_download(), _cut_then_rest(DATA, md5=_WRONG_MD5)),
    "broken-stream-exhausted": (
        _download(retries=1),
        [
            response(200, "OK", _object_headers(DATA), DATA[:_CUT], length=len(DATA), close=True),
            response(200, "OK", _object_headers(DATA), DATA[:_CUT], length=len(DATA), close=True),
        ],
    ),
    "brotli-encoded": (
        _download(),
        [
            response(
                200,
                "OK",
                dict(_object_headers(SMALL), **{"Content-Encoding": "br"}),
                SMALL,
            )
        ],
    ),
    "5xx-then-200": (
        _download(),
        [
            response(503, "Service Unavailable", {}, b"busy"),
            response(200, "OK", _object_headers(SMALL), SMALL),
        ],
    ),
}


@pytest.mark.parametrize("cls", ["Download", "RawDownload"])
@pytest.mark.parametrize("scenario", sorted(DOWNLOAD_SCRIPTED))
def test_download_scripted(runner: Runner, cls: str, scenario: str) -> None:
    run, script = DOWNLOAD_SCRIPTED[scenario]
    runner.scripted(f"{cls}/{scenario}", _with_cls(run, cls), _allowed(cls, scenario), script)


def test_raw_classes_are_siblings(impls: tuple[Impl, Impl]) -> None:
    for impl in impls:
        module = impl.requests
        assert not issubclass(module.RawDownload, module.Download), impl.name
        assert not issubclass(module.RawChunkedDownload, module.ChunkedDownload), impl.name


# -- ChunkedDownload and RawChunkedDownload ---------------------------------------------


def _chunked(
    chunk: int,
    *,
    start: int = 0,
    end: int | None = None,
    name: str = "obj",
    retries: int = 2,
) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        cls = getattr(impl.requests, ctx.cls)
        ctx.stream = io.BytesIO()
        ctx.obj = download = cls(
            _media(ctx, name),
            chunk,
            ctx.stream,
            start=start,
            end=end,
            headers=dict(ctx.fault_headers),
        )
        download._retry_strategy = impl.retry(retries)
        responses: list[Any] = []
        while not download.finished and len(responses) < 40:
            responses.append(download.consume_next_chunk(ctx.transport))
        # Every chunk response keeps its content after later chunks were consumed.
        out: Observed = {"responses": [_resp(r) for r in responses]}
        try:
            download.consume_next_chunk(ctx.transport)
        except Exception as exc:
            out["after_finished"] = exc
        return out

    return run


CHUNKED_LOOPBACK = {
    "success": (_chunked(256 * KIB), {}),
    "one-chunk": (_chunked(1 << 20), {}),
    "range": (_chunked(100_000, start=1000, end=450_000), {}),
    "gzip-stored": (_chunked(64 * KIB, name="gz"), {}),
    "broken-stream-resume": (
        _chunked(600 * KIB),
        {"storage.objects.get": ["return-broken-stream-after-256K"]},
    ),
    "5xx-retry": (_chunked(256 * KIB), {"storage.objects.get": ["return-503"]}),
    "5xx-exhausted": (
        _chunked(256 * KIB, retries=1),
        {"storage.objects.get": ["return-503", "return-503"]},
    ),
    "416-empty-object": (_chunked(256 * KIB, name="empty"), {}),
    "not-found": (_chunked(256 * KIB, name="missing"), {}),
}


# "recorder": a custom transport (upstream's exact calls are compared); "session": a plain
# requests.Session, which ChunkedDownload asks to stream (the wire requests are compared).
TRANSPORTS = ["recorder", "session"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("cls", ["ChunkedDownload", "RawChunkedDownload"])
@pytest.mark.parametrize("scenario", sorted(CHUNKED_LOOPBACK))
def test_chunked_loopback(runner: Runner, cls: str, scenario: str, transport: str) -> None:
    run, faults = CHUNKED_LOOPBACK[scenario]
    objects = {"obj": (DATA, None), "gz": (GZ, "gzip"), "empty": (b"", None)}
    runner.loopback(
        f"{cls}/{scenario}/{transport}",
        _with_cls(run, cls),
        _allowed(cls, scenario),
        objects=objects,
        faults=faults or None,
        bare=transport == "session",
    )


def _chunk_reply(data: bytes, start: int, end: int, total: int, **extra: Any) -> Reply:
    headers = dict(_object_headers(DATA), **{"Content-Range": f"bytes {start}-{end}/{total}"})
    return response(206, "Partial Content", headers, data, **extra)


def _invalid_then_reuse(chunk: int) -> Any:
    inner = _chunked(chunk)

    def run(impl: Impl, ctx: Any) -> Observed:
        try:
            observed: Observed = inner(impl, ctx)
            return observed
        except Exception as exc:
            out: Observed = {"first_error": exc}
            try:
                ctx.obj.consume_next_chunk(ctx.transport)
            except Exception as again:
                out["reuse"] = again
            return out

    return run


CHUNKED_SCRIPTED: dict[str, tuple[Any, list[Reply]]] = {
    "short-chunk": (
        _chunked(400),
        [_chunk_reply(SMALL[:300], 0, 399, 1000)],
    ),
    "whole-object-checksum-mismatch": (
        _chunked(1000),
        [
            response(
                206,
                "Partial Content",
                dict(
                    _object_headers(SMALL, md5=_WRONG_MD5, crc=_WRONG_CRC),
                    **{"Content-Range": "bytes 0-999/1000"},
                ),
                SMALL,
            )
        ],
    ),
    "invalid-content-range": (
        _invalid_then_reuse(400),
        [response(206, "Partial Content", {"Content-Range": "bytes nonsense"}, SMALL[:400])],
    ),
    "missing-content-range": (
        _invalid_then_reuse(400),
        [response(200, "OK", {}, SMALL[:400])],
    ),
    "broken-chunk-exhausted": (
        _chunked(400, retries=1),
        [
            _chunk_reply(SMALL[:100], 0, 399, 1000, length=400, close=True),
            _chunk_reply(SMALL[:100], 0, 399, 1000, length=400, close=True),
        ],
    ),
    "brotli-encoded": (
        _chunked(1000),
        [
            response(
                206,
                "Partial Content",
                dict(
                    _object_headers(SMALL),
                    **{"Content-Encoding": "br", "Content-Range": "bytes 0-999/1000"},
                ),
                SMALL,
            )
        ],
    ),
    "416-without-content-range": (
        _invalid_then_reuse(400),
        [response(416, "Requested Range Not Satisfiable", {}, b"")],
    ),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("cls", ["ChunkedDownload", "RawChunkedDownload"])
@pytest.mark.parametrize("scenario", sorted(CHUNKED_SCRIPTED))
def test_chunked_scripted(runner: Runner, cls: str, scenario: str, transport: str) -> None:
    run, script = CHUNKED_SCRIPTED[scenario]
    runner.scripted(
        f"{cls}/{scenario}/{transport}",
        _with_cls(run, cls),
        _allowed(cls, scenario),
        script,
        bare=transport == "session",
    )


# -- SimpleUpload and MultipartUpload ----------------------------------------------------


def _simple(data: Any = SMALL, *, retries: int = 2) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        url = f"{ctx.endpoint}/upload/storage/v1/b/{ctx.bucket}/o?uploadType=media&name=up"
        ctx.obj = upload = impl.requests.SimpleUpload(url, headers=dict(ctx.fault_headers))
        upload._retry_strategy = impl.retry(retries)
        out = _object_json(upload.transmit(ctx.transport, data, "text/plain"))
        try:
            upload.transmit(ctx.transport, data, "text/plain")
        except Exception as exc:
            out["second_transmit"] = exc
        return out

    return run


def _multipart(checksum: str | None, data: Any = SMALL, *, retries: int = 2) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        url = f"{ctx.endpoint}/upload/storage/v1/b/{ctx.bucket}/o?uploadType=multipart"
        ctx.obj = upload = impl.requests.MultipartUpload(
            url, headers=dict(ctx.fault_headers), checksum=checksum
        )
        upload._retry_strategy = impl.retry(retries)
        metadata: dict[str, Any] = {"name": "up", "metadata": {"k": "v"}}
        out = _object_json(upload.transmit(ctx.transport, data, metadata, "text/plain"))
        out["metadata_after"] = metadata
        try:
            upload.transmit(ctx.transport, data, metadata, "text/plain")
        except Exception as exc:
            out["second_transmit"] = exc
        return out

    return run


UPLOAD_LOOPBACK = {
    ("SimpleUpload", "success"): (_simple(), {}),
    ("SimpleUpload", "5xx-retry"): (_simple(), {"storage.objects.insert": ["return-503"]}),
    ("SimpleUpload", "5xx-exhausted"): (
        _simple(retries=1),
        {"storage.objects.insert": ["return-503", "return-503"]},
    ),
    ("SimpleUpload", "data-not-bytes"): (_simple("text"), {}),
    ("MultipartUpload", "success-md5"): (_multipart("md5"), {}),
    ("MultipartUpload", "success-crc32c"): (_multipart("crc32c"), {}),
    ("MultipartUpload", "success-no-checksum"): (_multipart(None), {}),
    ("MultipartUpload", "5xx-retry"): (
        _multipart("md5"),
        {"storage.objects.insert": ["return-503"]},
    ),
    ("MultipartUpload", "data-not-bytes"): (_multipart(None, "text"), {}),
    ("MultipartUpload", "unknown-checksum"): (_multipart("badsum"), {}),
}


@pytest.mark.parametrize(("cls", "scenario"), sorted(UPLOAD_LOOPBACK))
def test_upload_loopback(runner: Runner, cls: str, scenario: str) -> None:
    run, faults = UPLOAD_LOOPBACK[(cls, scenario)]
    runner.loopback(f"{cls}/{scenario}", run, _allowed(cls, scenario), faults=faults or None)


# -- ResumableUpload -------------------------------------------------------------------


def _resumable(
    *,
    checksum: str | None = None,
    final: bool = True,
    data: bytes = DATA,
    recover_after: int | None = None,
    retries: int = 2,
) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        url = f"{ctx.endpoint}/upload/storage/v1/b/{ctx.bucket}/o?uploadType=resumable"
        ctx.obj = upload = impl.requests.ResumableUpload(
            url, 256 * KIB, checksum=checksum, headers=dict(ctx.fault_headers)
        )
        upload._retry_strategy = impl.retry(retries)
        stream = io.BytesIO(data)
        first = upload.initiate(
            ctx.transport, stream, {"name": "up"}, "application/octet-stream", stream_final=final
        )
        upload_id = urllib.parse.parse_qs(urllib.parse.urlsplit(upload.resumable_url).query)[
            "upload_id"
        ][0]
        out: Observed = {
            "initiate": _resp(first),
            # GCS's session URL is the request URL plus upload_id (issue 15, item 6).
            "location_is_request_url_plus_upload_id": upload.resumable_url
            == f"{url}&upload_id={upload_id}",
            "chunks": [],
        }
        while not upload.finished:
            result = upload.transmit_next_chunk(ctx.transport)
            out["chunks"].append(result.status_code)
            if recover_after is not None and len(out["chunks"]) == recover_after:
                recovered = upload.recover(ctx.transport)
                out["recover"] = {
                    "status": recovered.status_code,
                    "bytes_uploaded": upload.bytes_uploaded,
                    "stream_position": stream.tell(),
                    "invalid": upload.invalid,
                }
        out["final"] = _object_json(result)
        try:
            upload.transmit_next_chunk(ctx.transport)
        except Exception as exc:
            out["after_finished"] = exc
        return out

    return run


def _resumable_errors(impl: Impl, ctx: Any) -> Observed:
    """The argument and state errors raised before any request."""
    url = f"{ctx.endpoint}/upload/storage/v1/b/{ctx.bucket}/o?uploadType=resumable"
    out: Observed = {}
    try:
        impl.requests.ResumableUpload(url, 1000)
    except Exception as exc:
        out["bad_chunk_size"] = exc
    upload = impl.requests.ResumableUpload(url, 256 * KIB)
    try:
        upload.transmit_next_chunk(ctx.transport)
    except Exception as exc:
        out["not_initiated"] = exc
    stream = io.BytesIO(SMALL)
    stream.read(10)
    try:
        upload.initiate(ctx.transport, stream, {"name": "up"}, "text/plain")
    except Exception as exc:
        out["stream_not_at_start"] = exc
    return out


RESUMABLE_LOOPBACK = dict(
    {
        ("ResumableUpload", "success-no-checksum"): (_resumable(), {}),
        ("ResumableUpload", "success-md5"): (_resumable(checksum="md5"), {}),
        ("ResumableUpload", "success-crc32c"): (_resumable(checksum="crc32c"), {}),
        ("ResumableUpload", "unknown-size"): (_resumable(final=False), {}),
        ("ResumableUpload", "unknown-size-chunk-boundary"): (
            _resumable(final=False, data=DATA[: 2 * 256 * KIB]),
            {},
        ),
        ("ResumableUpload", "recover-after-308"): (_resumable(recover_after=1), {}),
        ("ResumableUpload", "5xx-retry"): (
            _resumable(checksum="md5"),
            {"storage.objects.insert": ["return-503"]},
        ),
        ("ResumableUpload", "state-errors"): (_resumable_errors, {}),
        ("ResumableUpload", "unknown-checksum"): (_resumable(checksum="badsum"), {}),
    }
)


@pytest.mark.parametrize(("cls", "scenario"), sorted(RESUMABLE_LOOPBACK))
def test_resumable_loopback(runner: Runner, cls: str, scenario: str) -> None:
    run, faults = RESUMABLE_LOOPBACK[(cls, scenario)]
    runner.loopback(f"{cls}/{scenario}", run, _allowed(cls, scenario), faults=faults or None)


def _session_headers(location: str) -> dict[str, str]:
    return {"Location": location, "X-GUploader-UploadID": "abc"}


def _resumable_scripted(checksum: str | None = None, *, recover: bool = False) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        url = f"{ctx.endpoint}/upload/storage/v1/b/b/o?uploadType=resumable"
        ctx.obj = upload = impl.requests.ResumableUpload(url, 256 * KIB, checksum=checksum)
        upload._retry_strategy = impl.retry(0)
        stream = io.BytesIO(SMALL)
        upload.initiate(ctx.transport, stream, {"name": "up"}, "text/plain")
        out: Observed = {}
        try:
            out["chunk"] = _resp(upload.transmit_next_chunk(ctx.transport))
        except Exception as exc:
            out["chunk_error"] = exc
            out["invalid_after_error"] = upload.invalid
        if recover:
            try:
                upload.transmit_next_chunk(ctx.transport)
            except Exception as exc:
                out["while_invalid"] = exc
            recovered = upload.recover(ctx.transport)
            out["recover"] = {
                "status": recovered.status_code,
                "bytes_uploaded": upload.bytes_uploaded,
                "stream_position": stream.tell(),
                "invalid": upload.invalid,
            }
        return out

    return run


def _json_reply(body: dict[str, Any]) -> Reply:
    data = json.dumps(body).encode()
    return response(200, "OK", {"Content-Type": "application/json"}, data)


_SESSION = "/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=abc"


RESUMABLE_SCRIPTED = {
    "checksum-mismatch": (
        "md5",
        False,
        [_json_reply({"name": "up", "size": "1000", "md5Hash": _WRONG_MD5})],
    ),
    "checksum-missing": ("crc32c", False, [_json_reply({"name": "up", "size": "1000"})]),
    "400-invalid-then-recover": (
        None,
        True,
        [
            response(400, "Bad Request", {}, b"bad chunk"),
            response(308, "Resume Incomplete", {"Range": "bytes=0-499"}),
        ],
    ),
    "308-without-range": (
        None,
        True,
        [
            response(308, "Resume Incomplete", {}),
            response(308, "Resume Incomplete", {}),
        ],
    ),
    "308-bad-range": (
        None,
        False,
        [response(308, "Resume Incomplete", {"Range": "bytes 0-9"})],
    ),
}


@pytest.mark.parametrize("scenario", sorted(RESUMABLE_SCRIPTED))
def test_resumable_scripted(runner: Runner, scenario: str) -> None:
    checksum, recover, rest = RESUMABLE_SCRIPTED[scenario]
    inner = _resumable_scripted(checksum, recover=recover)

    def run(impl: Impl, ctx: Any) -> Observed:
        # The initiate reply needs the scripted server's own address in its Location.
        ctx.scripted_server._script.insert(
            0, response(200, "OK", _session_headers(ctx.endpoint + _SESSION))
        )
        result: Observed = inner(impl, ctx)
        return result

    runner.scripted(
        f"ResumableUpload/{scenario}", run, _allowed("ResumableUpload", scenario), list(rest)
    )


# -- XMLMPUContainer and XMLMPUPart -------------------------------------------------------


def _xml_mpu(*, checksum: str | None = "md5", cancel: bool = False) -> Any:
    def run(impl: Impl, ctx: Any) -> Observed:
        path = ctx.tmp / f"{ctx.impl_name}.bin"
        path.write_bytes(DATA)
        url = f"{ctx.endpoint}/{ctx.bucket}/mpu.bin"
        ctx.obj = container = impl.requests.XMLMPUContainer(url, str(path))
        container._retry_strategy = impl.retry(2)
        out: Observed = {"initiate": _resp(container.initiate(ctx.transport, "text/plain"))}
        ctx.extra_subs = [(container.upload_id, "UPLOAD-ID")]
        parts = []
        for number, (start, end) in enumerate([(0, 400_000), (400_000, len(DATA))], 1):
            part = impl.requests.XMLMPUPart(
                url, container.upload_id, str(path), start, end, number, checksum=checksum
            )
            part._retry_strategy = impl.retry(2)
            result = part.upload(ctx.transport)
            container.register_part(number, part.etag)
            parts.append(
                {"status": result.status_code, "etag": part.etag, "finished": part.finished}
            )
            try:
                part.upload(ctx.transport)
            except Exception as exc:
                parts[-1]["second_upload"] = exc
        out["parts"] = parts
        if cancel:
            out["cancel"] = _resp(container.cancel(ctx.transport))
            try:
                container.finalize(ctx.transport)
            except Exception as exc:
                out["finalize_after_cancel"] = exc
        else:
            out["finalize"] = _resp(container.finalize(ctx.transport))
            out["stored"] = ctx.server.object_bytes(ctx.bucket, "mpu.bin") == DATA
        return out

    return run


def _xml_errors(impl: Impl, ctx: Any) -> Observed:
    url = f"{ctx.endpoint}/{ctx.bucket}/mpu.bin"
    container = impl.requests.XMLMPUContainer(url, "unused")
    out: Observed = {}
    for name in ("finalize", "cancel"):
        try:
            getattr(container, name)(ctx.transport)
        except Exception as exc:
            out[name] = exc
    initiated = impl.requests.XMLMPUContainer(url, "unused", upload_id="given")
    try:
        initiated.initiate(ctx.transport, "text/plain")
    except Exception as exc:
        out["initiate_twice"] = exc
    return out


XML_LOOPBACK = {
    ("XMLMPUContainer", "success"): _xml_mpu(checksum=None),
    ("XMLMPUPart", "success-md5"): _xml_mpu(checksum="md5"),
    ("XMLMPUPart", "success-crc32c"): _xml_mpu(checksum="crc32c"),
    ("XMLMPUContainer", "cancel"): _xml_mpu(checksum=None, cancel=True),
    ("XMLMPUContainer", "state-errors"): _xml_errors,
}


@pytest.mark.parametrize(("cls", "scenario"), sorted(XML_LOOPBACK))
def test_xml_mpu_loopback(runner: Runner, cls: str, scenario: str, tmp_path: Any) -> None:
    inner = XML_LOOPBACK[(cls, scenario)]

    def run(impl: Impl, ctx: Any) -> Observed:
        ctx.tmp = tmp_path
        result: Observed = inner(impl, ctx)
        return result

    runner.loopback(f"{cls}/{scenario}", run, _allowed(cls, scenario))


def _part_scripted(impl: Impl, ctx: Any) -> Observed:
    path = ctx.tmp / f"{ctx.impl_name}.bin"
    path.write_bytes(SMALL)
    part = impl.requests.XMLMPUPart(
        f"{ctx.endpoint}/b/mpu.bin", "UP", str(path), 0, 1000, 1, checksum="md5"
    )
    ctx.obj = part
    part._retry_strategy = impl.retry(0)
    return _resp(part.upload(ctx.transport))


XML_SCRIPTED = {
    "checksum-mismatch": [
        response(200, "OK", {"ETag": '"e1"', "x-goog-hash": f"md5={_WRONG_MD5}"})
    ],
    "checksum-missing": [response(200, "OK", {"ETag": '"e1"'})],
    "missing-etag": [response(200, "OK", {"x-goog-hash": f"md5={_md5(SMALL)}"})],
}


@pytest.mark.parametrize("scenario", sorted(XML_SCRIPTED))
def test_xml_part_scripted(runner: Runner, scenario: str, tmp_path: Any) -> None:
    def run(impl: Impl, ctx: Any) -> Observed:
        ctx.tmp = tmp_path
        return _part_scripted(impl, ctx)

    runner.scripted(
        f"XMLMPUPart/{scenario}", run, _allowed("XMLMPUPart", scenario), XML_SCRIPTED[scenario]
    )


def _container_scripted(impl: Impl, ctx: Any) -> Observed:
    url = f"{ctx.endpoint}/b/mpu.bin"
    ctx.obj = container = impl.requests.XMLMPUContainer(url, "unused", headers={"x-k": "v"})
    container._retry_strategy = impl.retry(1)
    out: Observed = {"initiate": _resp(container.initiate(ctx.transport, "text/plain"))}
    container.register_part(2, '"e2"')
    container.register_part(1, '"e1"')
    out["finalize"] = _resp(container.finalize(ctx.transport))
    return out


_INITIATED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult '
    b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>mpu.bin</Key>'
    b"<UploadId>UP-1</UploadId></InitiateMultipartUploadResult>"
)

CONTAINER_SCRIPTED = {
    # Parts are completed in registration order; a 503 is retried.
    "success-parts-in-registration-order": [
        response(200, "OK", {}, _INITIATED),
        response(503, "Service Unavailable", {}, b"busy"),
        response(200, "OK", {}, b"<CompleteMultipartUploadResult/>"),
    ],
    "finalize-404": [
        response(200, "OK", {}, _INITIATED),
        response(404, "Not Found", {}, b"<Error><Code>NoSuchUpload</Code></Error>"),
    ],
    "initiate-500-exhausted": [
        response(500, "Internal Server Error", {}, b"oops"),
        response(500, "Internal Server Error", {}, b"oops"),
    ],
}


@pytest.mark.parametrize("scenario", sorted(CONTAINER_SCRIPTED))
def test_xml_container_scripted(runner: Runner, scenario: str) -> None:
    runner.scripted(
        f"XMLMPUContainer/{scenario}",
        _container_scripted,
        _allowed("XMLMPUContainer", scenario),
        CONTAINER_SCRIPTED[scenario],
    )
