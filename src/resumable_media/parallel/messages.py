"""What workers tell the parent: frozen dataclasses, and failures that survive pickling.

Invariants:
- Every message names its transfer and job (``transfer_id``, ``index``); a job posts any
  number of :class:`JobProgress` and then exactly one final message (:class:`JobDone`,
  :class:`JobCancelled` or :class:`JobFailed`).
- A :class:`RemoteError` holds only ints, strings and (when it pickles) the original
  exception, never a response or socket, so every message pickles.  The parent raises it
  as the class the worker saw: ``InvalidResponse`` and ``DataCorruption`` keep their
  ``args`` and get a :class:`ResponseSummary` (status, URL, body excerpt) as their
  ``response``; a connection failure is raised as ``ConnectionError`` (what the resume
  logic keeps partial state for); other exceptions as themselves when they pickle.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from resumable_media import common
from resumable_media._transport import is_retryable_error

__all__ = [
    "BODY_EXCERPT",
    "JobCancelled",
    "JobDone",
    "JobFailed",
    "JobMessage",
    "JobProgress",
    "RemoteError",
    "ResponseSummary",
]

BODY_EXCERPT = 500
"""int: Characters of a failed response's body kept for the parent (the XML API explains
its refusals there)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ResponseSummary:
    """What the parent keeps of a response a worker failed on (``exc.response``).

    Attributes:
        status_code: The HTTP status.
        url: The request URL.
        text: The first ``BODY_EXCERPT`` characters of the body ("" when it was streamed).
    """

    status_code: int | None
    url: str | None
    text: str


def _summary(response: Any) -> ResponseSummary | None:
    if response is None:
        return None
    status = getattr(response, "status_code", None)
    url = getattr(response, "url", None)
    text = ""
    # Only a body already read: reading a streamed one could mean a whole object.
    if getattr(response, "_content", False) not in (False, None):
        try:
            text = str(response.text)[:BODY_EXCERPT]
        except Exception:
            text = ""
    return ResponseSummary(
        status if isinstance(status, int) else None, str(url) if url else None, text
    )


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteError:
    """A worker's failure in a form that crosses a process boundary.

    Attributes:
        kind: "InvalidResponse", "DataCorruption", "ConnectionError" or "other".
        args: The exception's ``args`` (ints and strings).
        response: The summary of the response it carried, if any.
        exception: For "other", the exception itself when it pickles.
        text: ``Type: message`` of the original (for "ConnectionError", "other").
    """

    kind: str
    args: tuple[Any, ...]
    response: ResponseSummary | None = None
    exception: BaseException | None = None
    text: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> RemoteError:
        """Capture ``exc`` (the worker side)."""
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (common.InvalidResponse, common.DataCorruption)):
            args = tuple(_plain(arg) for arg in exc.args)
            return cls(type(exc).__name__, args, _summary(exc.response), text=text)
        if is_retryable_error(exc):
            return cls("ConnectionError", (), text=text)
        try:
            copy = pickle.loads(pickle.dumps(exc))
        except Exception:
            copy = None
        if not isinstance(copy, BaseException) or type(copy) is not type(exc):
            copy = None
        return cls("other", (), exception=copy, text=text)

    @property
    def status(self) -> int | None:
        """int | None: The HTTP status of the failed response, if any."""
        return None if self.response is None else self.response.status_code

    def rebuild(self, where: str) -> BaseException:
        """The exception to raise in the parent; ``where`` (e.g. ``"chunk 3"``) is added
        as a note."""
        exc: BaseException
        if self.kind == "InvalidResponse":
            exc = common.InvalidResponse(self.response, *self.args)
        elif self.kind == "DataCorruption":
            exc = common.DataCorruption(self.response, *self.args)
        elif self.kind == "ConnectionError":
            exc = ConnectionError(f"{where}: {self.text}")
        elif self.exception is not None:
            exc = self.exception
        else:
            exc = RuntimeError(f"{where}: {self.text}")
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"(in {where} of the transfer)")
        return exc


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobProgress:
    """A job has ``done`` bytes in place whose CRC32C is ``crc``."""

    transfer_id: int
    index: int
    done: int
    crc: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobDone:
    """A job finished: ``done`` bytes with CRC32C ``crc`` (a part also has its ``etag``)."""

    transfer_id: int
    index: int
    done: int
    crc: int
    etag: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobCancelled:
    """A job stopped because its transfer was cancelled."""

    transfer_id: int
    index: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobFailed:
    """A job failed for good (after its retries)."""

    transfer_id: int
    index: int
    error: RemoteError


JobMessage = JobProgress | JobDone | JobCancelled | JobFailed
"""Any message a job posts."""
