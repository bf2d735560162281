"""The state machines of the protocol objects: legal sequences, refusals, failure.

Every step is checked against the object's ``TRANSITIONS`` table: the call must be listed
for the state it starts in, and the state it leaves must be one the table allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable_media import common
from resumable_media._protocol import download as download_module
from resumable_media._protocol.download import DownloadProtocol, DownloadState
from resumable_media._protocol.state import ProtocolStateError

URL = "https://storage.example/download/storage/v1/b/bkt/o/obj?alt=media"
DATA = b"0123456789" * 10


def _stepped(
    table: dict[tuple[Any, str], frozenset[Any]], obj: Any, call: str, run: Callable[[], Any]
) -> Any:
    """Run one call and check both ends of it against ``table``."""
    before = obj.state
    try:
        return run()
    finally:
        if obj.state is not before or (before, call) in table:
            assert (before, call) in table, f"{call}() ran in {before.name}"
            after = obj.state
            assert after in table[(before, call)], f"{call}(): {before.name} -> {after.name}"


def _headers_200(data: bytes = DATA) -> dict[str, str]:
    return {"content-length": str(len(data)), "x-goog-hash": "md5=" + _md5(data)}


def _md5(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _dl_step(download: DownloadProtocol, call: str, *args: Any) -> Any:
    method = {"prepare": "_prepare_request"}.get(call, call)
    table = download_module.TRANSITIONS
    return _stepped(table, download, call, lambda: getattr(download, method)(*args))


# -- DownloadProtocol ------------------------------------------------------------------


def test_download_legal_sequence_with_a_resume() -> None:
    download = DownloadProtocol(URL, checksum="md5")
    assert download.state is DownloadState.READY and not download.finished
    first = _dl_step(download, "prepare")
    assert download.state is DownloadState.SENT and not download.finished
    assert _dl_step(download, "prepare_attempt", first) is first
    _dl_step(download, "process_response", None, 200, _headers_200())
    assert download.state is DownloadState.RECEIVING and download.finished
    _dl_step(download, "feed", DATA[:40])
    # The body broke off: the next attempt resumes from byte 40.
    resumed = _dl_step(download, "prepare_attempt", first)
    assert download.state is DownloadState.RESENT
    assert resumed.headers["range"] == "bytes=40-"
    headers = {"content-range": f"bytes 40-{len(DATA) - 1}/{len(DATA)}"}
    _dl_step(download, "process_response", None, 206, headers)
    _dl_step(download, "feed", DATA[40:])
    _dl_step(download, "flush")
    _dl_step(download, "finish", None)
    assert download.state is DownloadState.COMPLETE
    with pytest.raises(ValueError, match=re.escape("A download can only be used once.")):
        download._prepare_request()


@pytest.mark.parametrize(
    ("call", "args", "state"),
    [
        ("feed", (b"x",), "SENT"),
        ("flush", (), "SENT"),
        ("finish", (None,), "SENT"),
    ],
)
def test_download_illegal_call_names_the_state(
    call: str, args: tuple[Any, ...], state: str
) -> None:
    download = DownloadProtocol(URL)
    download._prepare_request()
    with pytest.raises(ProtocolStateError, match=rf"{call}\(\) is not allowed in state {state}"):
        getattr(download, call)(*args)
    assert download.state is DownloadState.SENT  # a refused call changes nothing


def test_download_calls_before_the_first_request_are_refused() -> None:
    download = DownloadProtocol(URL)
    with pytest.raises(ProtocolStateError, match=r"prepare_attempt.*in state READY"):
        download.prepare_attempt(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolStateError, match=r"process_response.*in state READY"):
        download.process_response(None, 200, {})


def test_download_answer_twice_is_refused_while_receiving() -> None:
    download = DownloadProtocol(URL, checksum=None)
    download._prepare_request()
    download.process_response(None, 200, {})
    with pytest.raises(ProtocolStateError, match="in state RECEIVING"):
        download.process_response(None, 200, {})


@pytest.mark.parametrize("where", ["status", "feed", "finish"])
def test_download_any_exception_moves_to_failed(where: str) -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = download._prepare_request()
    if where == "status":
        with pytest.raises(common.InvalidResponse):
            _dl_step(download, "process_response", None, 404, {})
    elif where == "feed":
        _dl_step(download, "process_response", None, 200, {"content-encoding": "gzip"})
        with pytest.raises(common.DataCorruption):
            _dl_step(download, "feed", b"not gzip at all")
    else:
        _dl_step(download, "process_response", None, 200, _headers_200())
        _dl_step(download, "feed", DATA[::-1])
        with pytest.raises(common.DataCorruption):
            _dl_step(download, "finish", None)
    assert download.state is DownloadState.FAILED and download.finished
    with pytest.raises(ProtocolStateError, match=r"feed.*in state FAILED"):
        download.feed(b"x")
    # Only a new attempt may follow.
    _dl_step(download, "prepare_attempt", first)
    assert download.state is DownloadState.RESENT


_DOWNLOAD_CALLS = st.sampled_from(["prepare_attempt", "ok", "bad", "feed", "flush", "finish"])


@settings(deadline=None)
@given(calls=st.lists(_DOWNLOAD_CALLS, max_size=12))
def test_download_every_sequence_stays_inside_the_table(calls: list[str]) -> None:
    download = DownloadProtocol(URL, checksum="md5")
    first = _dl_step(download, "prepare")
    for call in calls:
        args: dict[str, tuple[Any, ...]] = {
            "prepare_attempt": (first,),
            "ok": (None, 200, _headers_200()),
            "bad": (None, 503, {}),
            "feed": (DATA[:7],),
            "flush": (),
            "finish": (None,),
        }
        name = "process_response" if call in ("ok", "bad") else call
        try:
            _dl_step(download, name, *args[call])
        except ProtocolStateError as exc:
            assert f"in state {download.state.name}" in str(exc)
        except (ValueError, ConnectionError, common.InvalidResponse, common.DataCorruption):
            assert download.state is DownloadState.FAILED


def test_download_a_new_attempt_is_legal_in_every_state_after_the_first_request() -> None:
    # The retry drivers (and the fuzz tests) rely on prepare_attempt never being refused.
    for state in DownloadState:
        legal = (state, "prepare_attempt") in download_module.TRANSITIONS
        assert legal is (state is not DownloadState.READY), state
