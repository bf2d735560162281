"""Reading response bodies fast: ``readinto`` in >= 1 MiB pieces into a reused buffer.

Invariants: bodies are read as *stored* bytes (never decoded by the transport) when
the response exposes urllib3's ``raw``; every piece read is returned exactly once,
so a caller that accounts for each piece can resume after a mid-body failure.
Responses without ``raw.readinto`` fall back to ``raw.read`` and then to
``iter_content`` (decoded by the transport; see :func:`body_is_decoded`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

__all__ = [
    "READ_SIZE",
    "ChunkBuffer",
    "body_is_decoded",
    "iter_body",
    "mark_consumed",
    "read_exactly",
]

READ_SIZE = 1024 * 1024
"""Bytes per read call: large enough that Python overhead is negligible, small
enough to stay in cache while it is hashed."""


def body_is_decoded(response: Any) -> bool:
    """Whether :func:`iter_body` will yield transport-decoded bytes for ``response``.

    Args:
        response: A ``requests.Response``-like object.

    Returns:
        True when the response has no usable ``raw`` stream (the fallback path).
    """
    raw = getattr(response, "raw", None)
    return not (hasattr(raw, "readinto") or hasattr(raw, "read"))


def iter_body(response: Any, buffer: bytearray) -> Iterator[memoryview]:
    """Yield the body in pieces of up to ``len(buffer)`` bytes.

    Each yielded view aliases ``buffer`` and is valid until the next iteration.

    Args:
        response: A streamed (``stream=True``) ``requests.Response``-like object.
        buffer: The reusable buffer.

    Yields:
        Views of the bytes read.
    """
    raw = getattr(response, "raw", None)
    view = memoryview(buffer)
    readinto = getattr(raw, "readinto", None)
    if readinto is not None:
        while True:
            count = readinto(view)
            if not count:
                return
            yield view[:count]
    read = getattr(raw, "read", None)
    if read is not None:
        while True:
            try:
                data = read(len(buffer), decode_content=False)
            except TypeError:
                data = read(len(buffer))
            if not data:
                return
            yield memoryview(data)
    for data in response.iter_content(chunk_size=len(buffer)):
        if data:
            yield memoryview(data)


def read_exactly(response: Any, view: memoryview) -> int:
    """Fill ``view`` from the body, reading in :data:`READ_SIZE` steps.

    Args:
        response: A streamed ``requests.Response``-like object.
        view: Where to put the bytes.

    Returns:
        The number of bytes read (less than ``len(view)`` only at end of body).
    """
    raw = getattr(response, "raw", None)
    readinto = getattr(raw, "readinto", None)
    if readinto is None:
        step = bytearray(READ_SIZE)
        filled = 0
        for piece in iter_body(response, step):
            end = min(filled + len(piece), len(view))
            view[filled:end] = piece[: end - filled]
            filled = end
            if filled == len(view):
                break
        return filled
    filled = 0
    total = len(view)
    while filled < total:
        count = readinto(view[filled : min(filled + READ_SIZE, total)])
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
