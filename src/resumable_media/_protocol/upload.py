"""One-request uploads: simple (``uploadType=media``) and multipart (``uploadType=multipart``).

Invariants:
- No I/O: bodies arrive as bytes from the caller; responses as status, headers, body.
- Every object is single use where google-resumable-media 2.11's is, and is marked
  finished before its status is checked (a failed upload is never reported as done).
- The multipart body and boundary have upstream's exact byte layout.
- The state is one :class:`SingleShotState` with a transition table.  Reuse raises
  upstream's ``ValueError`` text; any other illegal call raises ``ProtocolStateError``
  naming the state; a refused call changes nothing.
- It moves to ``FAILED`` on any rejected answer (upstream tombstones it: ``finished``),
  and the answer to a retry of the same request may be judged again.
"""

from __future__ import annotations

import enum
import json
import random
import sys
from collections.abc import Mapping
from typing import Any

from resumable_media import checksums, common
from resumable_media._protocol import checks
from resumable_media._protocol.request import RequestSpec
from resumable_media._protocol.request import require_status as _require_status
from resumable_media._protocol.state import check, step

__all__ = [
    "SINGLE_SHOT_TRANSITIONS",
    "MultipartUploadProtocol",
    "SimpleUploadProtocol",
    "SingleShotState",
    "construct_multipart_request",
    "get_boundary",
]


def get_boundary() -> bytes:
    """A random multipart boundary: 15 ``=``, 19 zero-padded digits, ``==``."""
    return f"==============={random.randrange(sys.maxsize):019d}==".encode()


def construct_multipart_request(
    data: bytes, metadata: Mapping[str, Any], content_type: str
) -> tuple[bytes, bytes]:
    """Build a ``multipart/related`` body holding JSON metadata and the media.

    Args:
        data: The media bytes.
        metadata: The object resource fields (JSON-serialisable).
        content_type: The media's content type.

    Returns:
        ``(body, boundary)``.
    """
    boundary = get_boundary()
    separator = b"--" + boundary
    body = b"".join(
        [
            separator,
            b"\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n",
            json.dumps(metadata).encode("utf-8"),
            b"\r\n",
            separator,
            b"\r\ncontent-type: " + content_type.encode("utf-8") + b"\r\n\r\n",
            data,
            b"\r\n",
            separator,
            b"--",
        ]
    )
    return body, boundary


def _check_bytes(data: object) -> None:
    if not isinstance(data, bytes):
        raise TypeError("`data` must be bytes, received", type(data))


class SingleShotState(enum.Enum):
    """Where a one-request upload stands."""

    READY = "ready"  # nothing prepared
    SENT = "sent"  # the request is out (it may be built again until answered)
    FINISHED = "finished"  # answered 200
    FAILED = "failed"  # answered otherwise: used up, but a resend's answer may be judged


_O = SingleShotState
SINGLE_SHOT_TRANSITIONS: dict[tuple[SingleShotState, str], frozenset[SingleShotState]] = {
    (_O.READY, "prepare"): frozenset({_O.SENT}),
    (_O.SENT, "prepare"): frozenset({_O.SENT}),
    (_O.SENT, "process_response"): frozenset({_O.FINISHED, _O.FAILED}),
    (_O.FAILED, "process_response"): frozenset({_O.FINISHED, _O.FAILED}),  # a retry's answer
}
"""(state, call) -> the states the call may leave a one-request upload in."""


class _SingleShot:
    """Shared state of uploads made of one request that must return 200."""

    def __init__(self, upload_url: str, headers: dict[str, Any] | None = None) -> None:
        self.upload_url = upload_url
        self._headers: dict[str, Any] = {} if headers is None else headers
        self.state = SingleShotState.READY

    @property
    def finished(self) -> bool:
        """bool: Whether an answer has been judged (the upload can only be used once)."""
        return self.state in (SingleShotState.FINISHED, SingleShotState.FAILED)

    def _enter(self, call: str) -> None:
        if call == "prepare" and self.finished:
            raise ValueError("An upload can only be used once.")  # upstream's exact error
        check(SINGLE_SHOT_TRANSITIONS, self.state, call, f"upload to {self.upload_url}")

    def _fail(self) -> None:
        self.state = SingleShotState.FAILED

    def _sent(self, spec: RequestSpec) -> RequestSpec:
        self.state = SingleShotState.SENT
        return spec

    @step("process_response")
    def process_response(self, response: Any, status: int) -> None:
        """Record the outcome: the upload is finished, and must have returned 200.

        Args:
            response: The response.
            status: Its status.

        Raises:
            InvalidResponse: If the status is not 200 (the upload is then ``FAILED``).
            ProtocolStateError: Unless the request is out.
        """
        _require_status(response, status, (200,))
        self.state = SingleShotState.FINISHED


class SimpleUploadProtocol(_SingleShot):
    """A media-only upload (``uploadType=media``) in one POST.

    Args:
        upload_url: The upload URL.
        headers: Extra request headers (``content-type`` is written into this dict).
    """

    def _prepare_request(self, data: bytes, content_type: str) -> RequestSpec:
        """Build the POST.

        Args:
            data: The object bytes.
            content_type: Its content type.

        Returns:
            The request.

        Raises:
            ValueError: If the upload was already used.
            TypeError: If ``data`` is not bytes.
        """
        self._enter("prepare")
        _check_bytes(data)
        self._headers["content-type"] = content_type
        return self._sent(RequestSpec("POST", self.upload_url, data, self._headers))


class MultipartUploadProtocol(_SingleShot):
    """Metadata plus media in one ``multipart/related`` POST (``uploadType=multipart``).

    Args:
        upload_url: The upload URL.
        headers: Extra request headers.
        checksum: "md5", "crc32c", "auto" or None: the digest is put into the
            metadata so the server verifies the bytes.

    Raises:
        ValueError: If ``checksum`` is not an accepted value.
    """

    def __init__(
        self,
        upload_url: str,
        headers: dict[str, Any] | None = None,
        checksum: common.Checksum = None,
    ) -> None:
        super().__init__(upload_url, headers)
        self._checksum_type = checks.resolve_download_checksum(checksum)

    def _prepare_request(
        self, data: bytes, metadata: dict[str, Any], content_type: str
    ) -> RequestSpec:
        """Build the POST (and, with a checksum, add it to ``metadata``).

        Args:
            data: The object bytes.
            metadata: The object resource; updated in place with ``md5Hash``/``crc32c``.
            content_type: The media's content type.

        Returns:
            The request.

        Raises:
            ValueError: If the upload was already used.
            TypeError: If ``data`` is not bytes.
        """
        self._enter("prepare")
        _check_bytes(data)
        if self._checksum_type is not None:
            hasher = checksums.new_hasher(self._checksum_type)
            hasher.update(data)
            key = "md5Hash" if self._checksum_type == "md5" else "crc32c"
            metadata[key] = hasher.b64digest()
        body, boundary = construct_multipart_request(data, metadata, content_type)
        self._headers["content-type"] = b'multipart/related; boundary="' + boundary + b'"'
        return self._sent(RequestSpec("POST", self.upload_url, body, self._headers))
