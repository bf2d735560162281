"""Reading response bodies fast: ``readinto`` in >= 1 MiB pieces into a reused buffer.

Invariants: bodies are read as *stored* bytes (never decoded by the transport) when
the response exposes urllib3's ``raw``; every piece read is returned exactly once,
so a caller that accounts for each piece can resume after a mid-body failure.
Responses without ``raw.readinto`` fall back to ``raw.read`` and then to
``iter_content`` (decoded by the transport; see :func:`body_is_decoded`).
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any, cast

import requests
import requests.exceptions
import urllib3.exceptions
import urllib3.response

__all__ = [
    "READ_SIZE",
    "ChunkBuffer",
    "body_is_decoded",
    "body_reader",
    "iter_body",
    "mark_consumed",
    "read_exactly",
]

READ_SIZE = 1024 * 1024
"""Bytes per read call: large enough that Python overhead is negligible, small
enough to stay in cache while it is hashed."""


def body_is_decoded(response: Any) -> bool:
    """Whether :func:`body_reader` will return transport-decoded bytes for ``response``.

    Args:
        response: A ``requests.Response``-like object.

    Returns:
        True when the response has no usable ``raw`` stream (the fallback path).
    """
    raw = getattr(response, "raw", None)
    return not (hasattr(raw, "readinto") or hasattr(raw, "read"))


def _direct(raw: Any) -> Callable[[memoryview], int] | None:
    # urllib3's readinto reads into a fresh bytes object and copies; the
    # http.client response underneath fills our buffer directly.  Only used
    # while urllib3 has buffered nothing of the body itself.
    fp = getattr(raw, "_fp", None)
    if not isinstance(raw, urllib3.response.HTTPResponse):
        return None
    if not isinstance(fp, http.client.HTTPResponse) or raw.closed:
        return None
    if getattr(raw, "_fp_bytes_read", 0) or len(getattr(raw, "_decoded_buffer", ())):
        return None

    def readinto(view: memoryview) -> int:
        try:
            count = fp.readinto(view)
        except TimeoutError as exc:
            raise requests.exceptions.ReadTimeout(f"Read timed out: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise urllib3.exceptions.ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        if not count and len(view):
            # http.client reports a body cut short as a plain end of data.
            missing = getattr(fp, "length", None)
            if missing:
                raise urllib3.exceptions.ProtocolError(
                    f"Connection broken: {missing} more bytes expected",
                    http.client.IncompleteRead(b"", missing),
                )
            raw.release_conn()
        return count

    return readinto


def body_reader(response: Any) -> Callable[[memoryview], int]:
    """A ``readinto``-like function over the response body (stored bytes when possible).

    Args:
        response: A streamed (``stream=True``) ``requests.Response``-like object.

    Returns:
        ``read(view) -> count``: fills up to ``len(view)`` bytes; 0 at the end of
        the body.
    """
    raw = getattr(response, "raw", None)
    direct = _direct(raw)
    if direct is not None:
        return direct
    readinto = getattr(raw, "readinto", None)
    if readinto is not None:
        return cast("Callable[[memoryview], int]", readinto)
    pieces = _fallback_pieces(response, raw)
    pending = memoryview(b"")

    def read(view: memoryview) -> int:
        nonlocal pending
        if not pending:
            pending = memoryview(next(pieces, b""))
        count = min(len(view), len(pending))
        view[:count] = pending[:count]
        pending = pending[count:]
        return count

    return read


def _fallback_pieces(response: Any, raw: Any) -> Iterator[bytes]:
    read = getattr(raw, "read", None)
    if read is None:
        yield from (data for data in response.iter_content(chunk_size=READ_SIZE) if data)
        return
    while True:
        try:
            data = read(READ_SIZE, decode_content=False)
        except TypeError:
            data = read(READ_SIZE)
        if not data:
            return
        yield data


def iter_body(response: Any, buffer: bytearray) -> Iterator[memoryview]:
    """Yield the body in pieces of up to ``len(buffer)`` bytes.

    Each yielded view aliases ``buffer`` and is valid until the next iteration.

    Args:
        response: A streamed (``stream=True``) ``requests.Response``-like object.
        buffer: The reusable buffer.

    Yields:
        Views of the bytes read.
    """
    read = body_reader(response)
    view = memoryview(buffer)
    while True:
        count = read(view)
        if not count:
            return
        yield view[:count]


def read_exactly(response: Any, view: memoryview) -> int:
    """Fill ``view`` from the body, reading in :data:`READ_SIZE` steps.

    Args:
        response: A streamed ``requests.Response``-like object.
        view: Where to put the bytes.

    Returns:
        The number of bytes read (less than ``len(view)`` only at end of body).
    """
    read = body_reader(response)
    filled = 0
    total = len(view)
    while filled < total:
        count = read(view[filled : min(filled + READ_SIZE, total)])
        if not count:
            break
        filled += count
    return filled


def mark_consumed(response: Any) -> None:
    """Mark a streamed response's content as consumed (as iterating it would).

    Args:
        response: The response whose body was read through ``raw``.
    """
    if hasattr(response, "_content_consumed"):
        response._content_consumed = True


class ChunkBuffer:
    """A reusable chunk buffer whose contents can be lent to a response lazily.

    ``response.content`` of a chunk response copies the chunk out of the buffer the
    first time it is asked for, as long as the buffer has not been refilled since;
    after that it raises instead of returning another chunk's bytes.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self.fills = 0

    def view(self, size: int) -> memoryview:
        """Return a writable view of ``size`` bytes, invalidating earlier loans.

        Args:
            size: The number of bytes needed.

        Returns:
            The view (aliases the buffer).
        """
        if len(self._data) < size:
            self._data = bytearray(size)
        self.fills += 1
        return memoryview(self._data)[:size]

    def lend(self, response: Any, length: int) -> None:
        """Make ``response.content`` return the first ``length`` bytes of the buffer.

        Args:
            response: A ``requests.Response`` (other objects are left alone).
            length: The chunk length.
        """
        if type(response) is not requests.Response:
            return
        response.__class__ = _ChunkResponse
        response.__dict__["_rm_loan"] = (self, self.fills, length)


class _ChunkResponse(requests.Response):
    """A response whose body was read into a :class:`ChunkBuffer`."""

    @property
    def content(self) -> bytes:
        """bytes: The chunk, copied out of the shared buffer on first access."""
        loan = self.__dict__.pop("_rm_loan", None)
        if loan is not None:
            owner, fills, length = loan
            if owner.fills != fills:
                raise RuntimeError(
                    "The content of this chunk response is no longer available: a later "
                    "chunk reused its buffer.  Read the bytes from the download's stream."
                )
            self._content = bytes(owner._data[:length])
        return super().content
