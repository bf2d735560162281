"""The one rule every protocol object's state machine follows (h11's ``_state.py`` style).

Invariants:
- Each protocol object keeps its state in one ``state`` attribute, a member of its own
  Enum, and lists every legal call per state in a module-level ``TRANSITIONS`` table:
  ``(state, call) -> the states the call may leave the object in``.
- A call the table does not list is refused with :class:`ProtocolStateError` naming the
  call and the state, and leaves the state as it was (the refused call did nothing).
  Where google-resumable-media 2.11 words a refusal itself, the object raises upstream's
  ``ValueError`` text instead (``ProtocolStateError`` is a ``ValueError`` too).
- :func:`step` marks a method whose every exception moves the object to its failed state
  (a download attempt, a one-shot upload); :func:`judging` does the same for an answer,
  except that a retryable status leaves the request out, to be sent again as is (the XML
  multipart steps).  Objects whose failed state is upstream's visible ``invalid`` flag
  (resumable upload, chunked download) enter it exactly where upstream marks them invalid.
"""

from __future__ import annotations

import contextlib
import enum
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from resumable_media import common

__all__ = ["Guarded", "ProtocolStateError", "check", "judging", "step"]


class ProtocolStateError(ValueError):
    """A protocol object was asked for a step its state does not allow."""


def check(
    transitions: Mapping[tuple[Any, str], frozenset[Any]],
    state: enum.Enum,
    call: str,
    subject: str,
) -> None:
    """Refuse ``call`` unless ``transitions`` lists it for ``state``.

    Args:
        transitions: The object's transition table.
        state: Its current state.
        call: The name of the step asked for.
        subject: What the object is, for the message (e.g. ``"ResumableUpload of <url>"``).

    Raises:
        ProtocolStateError: ``"{subject}: {call}() is not allowed in state {STATE}"``.
    """
    if (state, call) not in transitions:
        raise ProtocolStateError(f"{subject}: {call}() is not allowed in state {state.name}")


class Guarded(Protocol):
    """What :func:`step` needs of a protocol object."""

    def _enter(self, call: str) -> None: ...  # refuse ``call`` unless its table allows it
    def _fail(self) -> None: ...  # move to the object's failed state


_S = TypeVar("_S", bound=Guarded)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def step(
    call: str,
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """Make a method one step of its object's state machine (h11's rule): refused unless
    the table allows ``call`` in the current state, and any exception it raises moves the
    object to its failed state before propagating."""

    def wrap(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def run(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            self._enter(call)
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                self._fail()
                raise

        return run

    return wrap


@contextlib.contextmanager
def judging(obj: Guarded, status: int) -> Iterator[None]:
    """Judge one answer: any exception moves ``obj`` to its failed state, except for a
    retryable ``status``, which leaves the request out so it may be sent again as is."""
    try:
        yield
    except Exception:
        if status not in common.RETRYABLE:
            obj._fail()
        raise
