"""Fuzzing the transport-free core: hypothesis state machines fed arbitrary server responses.

Each machine drives one ``resumable_media._protocol`` object the way the requests layer does
(prepare a request, hand in a response, hand in its body) but the "server" is hypothesis:
any status, any header values (random text, or well-formed values with random numbers), any
body.  Invariants checked after every step:

- only documented exceptions escape: ``InvalidResponse`` / ``DataCorruption`` for bad
  responses, ``ConnectionError`` for an incomplete download, and the documented
  ``ValueError`` state errors when the caller misuses a finished or invalid object;
- counters stay consistent (bytes never exceed what was sent or the object size; a chunk is
  accepted only for the range that was asked for; a finished upload has sent every byte);
- every step is O(1) and the number of steps is bounded, so nothing hangs.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from resumable_media import DataCorruption, InvalidResponse, checksums
from resumable_media._protocol import ranges
from resumable_media._protocol.chunked import ChunkedDownloadProtocol
from resumable_media._protocol.download import DownloadProtocol
from resumable_media._protocol.ranged import ProtocolStateError
from resumable_media._protocol.resumable import ResumableUploadProtocol
from resumable_media._protocol.xml_mpu import XMLMPUContainerProtocol
from resumable_media.common import Checksum

UNIT = 256 * 1024
SETTINGS = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATE_ERRORS = (
    "Download has finished.",
    "Download is invalid and cannot be re-used.",
    "A download can only be used once.",
    "Upload has finished.",
    "Upload is in an invalid state. To recover call `recover()`.",
    "This upload has already been initiated.",
    "Stream is already exhausted. There is no content remaining.",
    "Stream specified as empty, but produced non-empty content.",
)

numbers = st.integers(min_value=0, max_value=4 * UNIT)
statuses = st.sampled_from([200, 201, 206, 308, 400, 404, 408, 416, 429, 500, 503]) | st.integers(
    100, 599
)
b64 = st.sampled_from(["AAAAAA==", "xAF7rg==", "1B2M2Y8AsgTpgAmY7PhCfg==", "", "@@", "a=b"])


def _content_range() -> st.SearchStrategy[str]:
    formed = st.builds(lambda a, b, t: f"bytes {a}-{b}/{t}", numbers, numbers, numbers)
    star = st.builds(lambda a, b: f"bytes {a}-{b}/*", numbers, numbers)
    unsat = st.builds(lambda t: f"bytes */{t}", numbers)
    return formed | star | unsat | st.text(max_size=20)


def _goog_hash() -> st.SearchStrategy[str]:
    pairs = st.lists(
        st.tuples(st.sampled_from(["crc32c", "md5", "CRC32C", "x", ""]), b64), max_size=3
    )
    joined = pairs.map(lambda ps: ",".join(f"{k}={v}" for k, v in ps))
    return joined | st.text(max_size=20)


def _headers(extra: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[dict[str, str]]:
    optional = {
        "content-length": st.builds(str, numbers) | st.text(max_size=6),
        "x-goog-generation": st.builds(str, st.integers(1, 10**6)) | st.text(max_size=6),
        "x-goog-hash": _goog_hash(),
        "x-goog-stored-content-length": st.builds(str, numbers),
        "x-goog-stored-content-encoding": st.sampled_from(["identity", "gzip"]),
        "content-encoding": st.sampled_from(["gzip", "br", "identity", "deflate"]),
        **extra,
    }
    return st.fixed_dictionaries({}, optional=optional)


def _documented(exc: BaseException) -> bool:
    if isinstance(exc, (InvalidResponse, DataCorruption, ConnectionError)):
        return True
    if isinstance(exc, ProtocolStateError):  # an illegal call, named with the object's state
        return "not allowed in state" in str(exc)
    return type(exc) is ValueError and str(exc) in STATE_ERRORS


class _Checked(RuleBasedStateMachine):
    """Runs each step and fails on an undocumented exception."""

    def call(self, func: Any, *args: Any) -> tuple[bool, Any]:
        try:
            return True, func(*args)
        except Exception as exc:
            assert _documented(exc), f"undocumented {type(exc).__name__}: {exc!r}"
            return False, exc


class DownloadMachine(_Checked):
    """One streaming download (with resumed attempts) against an arbitrary server."""

    @initialize(
        start=st.none() | st.integers(0, UNIT),
        length=st.none() | st.integers(1, UNIT),
        checksum=st.sampled_from(["md5", "crc32c", None]),
    )
    def setup(self, start: int | None, length: int | None, checksum: Checksum) -> None:
        end = None if start is None or length is None else start + length - 1
        self.download = DownloadProtocol("http://x/o?alt=media", start, end, {}, checksum)
        self.first = self.download._prepare_request()
        self.open = False

    @rule()
    def prepare(self) -> None:
        spec = self.download.prepare_attempt(self.first)
        assert spec.method == "GET"

    @rule(
        status=statuses,
        headers=_headers({"content-range": _content_range()}),
    )
    def respond(self, status: int, headers: dict[str, str]) -> None:
        self.open, _ = self.call(self.download.process_response, object(), status, headers)

    @precondition(lambda self: self.open)
    @rule(body=st.binary(max_size=64))
    def body(self, body: bytes) -> None:
        before = self.download._stored_received
        ok, _ = self.call(self.download.feed, body)
        if ok:
            assert self.download._stored_received == before + len(body)

    @precondition(lambda self: self.open)
    @rule()
    def finish(self) -> None:
        self.call(self.download.flush)
        self.call(self.download.finish, object())
        self.open = False

    @invariant()
    def counters(self) -> None:
        if hasattr(self, "download"):
            assert self.download.bytes_downloaded >= 0


class ChunkedMachine(_Checked):
    """Consecutive ranged GETs against an arbitrary server."""

    @initialize(
        chunk=st.integers(1, UNIT),
        start=st.integers(0, UNIT),
        length=st.none() | st.integers(1, 2 * UNIT),
    )
    def setup(self, chunk: int, start: int, length: int | None) -> None:
        end = None if length is None else start + length - 1
        self.download = ChunkedDownloadProtocol("http://x/o", chunk, start, end, {}, "crc32c")
        self.requested: tuple[int, int] | None = None
        self.announced: int | None = None
        self.total: int | None = None

    @rule()
    def prepare(self) -> None:
        ok, spec = self.call(self.download._prepare_request)
        self.requested = None
        if ok:
            first, last = spec.headers["range"].removeprefix("bytes=").split("-")
            self.requested = (int(first), int(last))

    @precondition(lambda self: self.requested is not None)
    @rule(status=statuses, headers=_headers({"content-range": _content_range()}), data=st.data())
    def respond(self, status: int, headers: dict[str, str], data: st.DataObject) -> None:
        if data.draw(st.booleans()):
            # A plausible answer: near the requested range, lengths consistent, but maybe
            # shifted, longer, shorter, or with another total.
            assert self.requested is not None
            first, last = self.requested
            first += data.draw(st.sampled_from([0, 0, 0, 1, -1, UNIT]))
            last += data.draw(st.sampled_from([0, 0, 0, 1, -1, UNIT]))
            total = data.draw(st.sampled_from([self.total or 4 * UNIT, 4 * UNIT, last + 1, 2]))
            headers = dict(headers)
            headers["content-range"] = f"bytes {max(first, 0)}-{max(last, 0)}/{total}"
            headers["content-length"] = str(max(last, 0) - max(first, 0) + 1)
            status = data.draw(st.sampled_from([206, 206, 200, status]))
        ok, length = self.call(self.download.process_response, object(), status, headers)
        self.announced = length if ok else None
        if ok and length:
            parsed = ranges.parse_content_range(headers["content-range"])
            assert self.requested is not None
            # A chunk is only acceptable for the range that was asked for.
            assert parsed.start == self.requested[0], (headers, self.requested)
            assert parsed.end <= self.requested[1], (headers, self.requested)
            if self.total is not None and parsed.total is not None:
                assert parsed.total == self.total, "the object size changed between chunks"
            self.total = parsed.total if self.total is None else self.total

    @precondition(lambda self: self.announced is not None)
    @rule(extra=st.integers(-2, 2))
    def body(self, extra: int) -> None:
        assert self.announced is not None
        before = self.download.bytes_downloaded
        ok, _ = self.call(
            self.download.process_body, object(), b"\0" * max(self.announced + extra, 0)
        )
        if ok:
            assert self.download.bytes_downloaded == before + self.announced
        self.announced = None
        self.requested = None

    @invariant()
    def within_object(self) -> None:
        download = getattr(self, "download", None)
        if download is not None and download.total_bytes is not None:
            assert download.start + download.bytes_downloaded <= max(download.total_bytes, 0)


class ResumableMachine(_Checked):
    """A resumable upload whose server answers anything."""

    @initialize(
        size=st.integers(0, 3 * UNIT),
        known=st.booleans(),
        auto=st.booleans(),
        checksum=st.sampled_from(["crc32c", "md5", None]),
    )
    def setup(self, size: int, known: bool, auto: bool, checksum: Checksum) -> None:
        self.data = bytes(size)
        self.upload = ResumableUploadProtocol("http://x/u?uploadType=resumable", UNIT, checksum)
        self.upload._auto_recover = auto
        self.known = known
        self.position = 0
        self.sent_end = 0
        self.in_flight = False
        self.upload._prepare_initiate_request(0, {"name": "o"}, "a/b", size if known else None)
        self.upload._process_initiate_response(object(), 200, {"location": "http://x/s"})

    @rule()
    def send_chunk(self) -> None:
        ok, size = self.call(self.upload.next_read_size, self.position)
        if not ok:
            return
        payload = self.data[self.position : self.position + size]
        ok, _ = self.call(self.upload._prepare_chunk_request, self.position, payload)
        if ok:
            self.in_flight = True
            self.sent_end = max(self.sent_end, self.position + len(payload))

    @precondition(lambda self: self.in_flight)
    @rule(
        status=statuses,
        headers=st.fixed_dictionaries(
            {},
            optional={"range": st.builds(lambda n: f"bytes=0-{n}", numbers) | st.text(max_size=12)},
        ),
        body=st.one_of(
            st.just(b""),
            st.binary(max_size=20),
            st.builds(
                lambda size, crc: json.dumps({"size": size, "crc32c": crc}).encode(),
                st.builds(str, numbers),
                b64,
            ),
        ),
    )
    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.in_flight = False
        self.call(self.upload._process_chunk_response, object(), status, headers, body)
        self.position = self.upload.bytes_uploaded  # what the driver rewinds/advances to

    @rule(persisted=st.none() | numbers)
    def recover(self, persisted: int | None) -> None:
        # The status query: a session that has finished answers 200 (rejected by recover);
        # otherwise a 308 with the persisted range (possibly a lie: beyond what was sent).
        self.in_flight = False
        self.call(self.upload._prepare_recover_request)
        status = 200 if self.upload.finished else 308
        headers = {} if not persisted else {"range": f"bytes=0-{persisted - 1}"}
        ok, _ = self.call(self.upload._process_recover_response, object(), status, headers)
        if ok:
            self.sent_end = max(self.sent_end, self.upload.bytes_uploaded)  # recover trusts it
        self.position = self.upload.bytes_uploaded

    @invariant()
    def consistent(self) -> None:
        upload = getattr(self, "upload", None)
        if upload is None:
            return
        assert 0 <= upload.bytes_uploaded <= self.sent_end, "acknowledged bytes never sent"
        if upload.finished and self.known:
            assert upload.bytes_uploaded == len(self.data), "finished before every byte was sent"


class XMLInitiateMachine(_Checked):
    """XML MPU initiate: arbitrary answers to ``POST ?uploads``."""

    @initialize()
    def setup(self) -> None:
        self.container = XMLMPUContainerProtocol("http://x/b/o", "f")

    @rule(status=statuses, body=st.binary(max_size=40) | st.sampled_from([b"<a>", b"<x/>"]))
    def respond(self, status: int, body: bytes) -> None:
        if self.container.upload_id is not None:
            return
        self.call(self.container._prepare_initiate_request, "a/b")
        self.call(self.container._process_initiate_response, object(), status, body)


def test_download_machine() -> None:
    run_state_machine_as_test(DownloadMachine, settings=SETTINGS)


def test_chunked_download_machine() -> None:
    run_state_machine_as_test(ChunkedMachine, settings=SETTINGS)


def test_resumable_upload_machine() -> None:
    run_state_machine_as_test(ResumableMachine, settings=SETTINGS)


def test_xml_initiate_machine() -> None:
    run_state_machine_as_test(XMLInitiateMachine, settings=SETTINGS)


def test_header_parsers_raise_only_value_error() -> None:
    """The parsers under the machines: any text in, a value or ValueError out."""
    from hypothesis import given

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40) | _content_range() | _goog_hash())
    def check(text: str) -> None:
        for parse in (
            ranges.parse_content_range,
            ranges.parse_unsatisfied_range,
            ranges.parse_persisted_range,
            checksums.parse_goog_hash,
        ):
            with contextlib.suppress(ValueError):
                parse(text)

    check()
