"""Compatibility names: the body reader now lives in :mod:`resumable_media._transport`.

Invariants: nothing but re-exports; code that imported these names from here keeps working.
"""

from __future__ import annotations

from resumable_media._transport import (
    READ_SIZE,
    ChunkBuffer,
    body_is_decoded,
    body_reader,
    iter_body,
    mark_consumed,
    read_exactly,
)

__all__ = [
    "READ_SIZE",
    "ChunkBuffer",
    "body_is_decoded",
    "body_reader",
    "iter_body",
    "mark_consumed",
    "read_exactly",
]
