"""How the seed's classes show the state of the protocol object they compose.

Invariants: a seed class keeps no copy of protocol state; each upstream attribute or
``_prepare_*``/``_process_*`` name is a :class:`FromProtocol` that reads (and, for an
attribute upstream lets callers set, writes) the composed ``_protocol``'s attribute of
the same or the given name, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

__all__ = ["FromProtocol"]

_T = TypeVar("_T")


class FromProtocol(Generic[_T]):
    """An attribute of a seed class, read from (and written to) its ``_protocol``.

    A bound method comes back bound to the protocol object, so ``_prepare_*``/``_process_*``
    delegates keep the core's signature; a subclass may still override them.  Writing a
    read-only protocol property raises its ``AttributeError``.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, owner_self: None, owner: type) -> FromProtocol[_T]: ...
    @overload
    def __get__(self, owner_self: object, owner: type) -> _T: ...
    def __get__(self, owner_self: object, owner: type) -> _T | FromProtocol[_T]:
        if owner_self is None:
            return self
        value: _T = getattr(owner_self._protocol, self._name)  # type: ignore[attr-defined]
        return value

    def __set__(self, owner_self: object, value: Any) -> None:
        setattr(owner_self._protocol, self._name, value)  # type: ignore[attr-defined]
