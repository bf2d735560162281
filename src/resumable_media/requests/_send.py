"""Compatibility names: sending and retrying now live in :mod:`resumable_media._transport`.

Invariants: nothing but re-exports; code that imported these names from here keeps working.
"""

from __future__ import annotations

from resumable_media._protocol.retry import Backoff
from resumable_media._transport import (
    CONNECTION_ERROR_CLASSES,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Timeout,
    Transport,
    is_retryable_error,
    own_retry,
    round_trip,
    send,
    wait_and_retry,
)

__all__ = [
    "CONNECTION_ERROR_CLASSES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "Backoff",
    "Timeout",
    "Transport",
    "is_retryable_error",
    "own_retry",
    "round_trip",
    "send",
    "wait_and_retry",
]
