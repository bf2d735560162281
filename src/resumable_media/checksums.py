"""CRC32C and MD5 checksums: backend choice, combine, hashers, ``x-goog-hash``.

Invariants:
- The live CRC32C backend is chosen once, at import: ``RESUMABLE_MEDIA_CRC32C``
  forces one, otherwise the first available of native → google-crc32c →
  crcmod → python.  ``implementation`` names it; every backend computes the
  same function (CRC-32C, Castagnoli, init and final XOR 0xFFFFFFFF).
- Every backend accepts any C-contiguous buffer (bytes, bytearray, memoryview,
  mmap); only backends whose library demands ``bytes`` copy.  A non-buffer is a
  ``TypeError`` naming its type, a non-contiguous buffer a ``BufferError``.
- Combining is O(log n) multiplication by x^(8n) mod P; never hashing zeros.
- CRC values are ints in [0, 2**32); digests are 4 big-endian bytes, as GCS
  reports them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from resumable_media import _crc32c_py as _py

if TYPE_CHECKING:
    from typing_extensions import Buffer, Self
elif sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    Buffer = memoryview  # runtime placeholder; annotations are never evaluated

__all__ = [
    "BACKENDS",
    "Backend",
    "Buffer",
    "Crc32cFunction",
    "Crc32cHasher",
    "GoogHashError",
    "Hasher",
    "Md5Hasher",
    "available_backends",
    "backend",
    "crc32c",
    "crc32c_combine",
    "crc32c_combine_many",
    "crc32c_from_b64",
    "crc32c_to_b64",
    "format_goog_hash",
    "implementation",
    "new_hasher",
    "parse_goog_hash",
    "resolve_checksum",
]

_log = logging.getLogger(__name__)

BACKEND_ENV = "RESUMABLE_MEDIA_CRC32C"
BACKENDS: tuple[str, ...] = ("native", "google-crc32c", "crcmod", "python")
_FAST_BACKENDS = frozenset({"native", "google-crc32c"})


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


class Crc32cFunction(Protocol):
    """The shape of every backend's ``crc32c``."""

    def __call__(self, data: Buffer, value: int = 0) -> int:
        """Return the CRC-32C of ``data``, continuing from ``value``.

        Raises:
            TypeError: ``data`` is not a bytes-like object.
            BufferError: ``data`` is not C-contiguous.
            ValueError: ``value`` is not in [0, 2**32).
        """
        ...


@dataclass(frozen=True, slots=True)
class Backend:
    """One CRC32C implementation.

    Attributes:
        name: one of :data:`BACKENDS`.
        crc32c: ``crc32c(data, value=0) -> int``.
        crc32c_combine: ``crc32c_combine(crc_a, crc_b, length_b) -> int``.
    """

    name: str
    crc32c: Crc32cFunction
    crc32c_combine: Callable[[int, int, int], int]
    combine_many: Callable[[Iterable[tuple[int, int]]], int] | None = None


def _load_native() -> Backend:
    from resumable_media import _crc32c

    return Backend("native", _crc32c.crc32c, _crc32c.crc32c_combine, _crc32c.crc32c_combine_many)


def _load_google() -> Backend:
    import google_crc32c

    extend = google_crc32c.extend

    def crc(data: Buffer, value: int = 0) -> int:
        _py.check_crc(value, "value")
        if type(data) is not bytes:
            # google-crc32c accepts only read-only bytes: validate, then copy.
            data = _py.as_bytes_view(data).tobytes()
        return int(extend(value, data))

    return Backend("google-crc32c", crc, _py.crc32c_combine)


def _load_crcmod() -> Backend:
    import crcmod.predefined

    fun = crcmod.predefined.mkPredefinedCrcFun("crc-32c")

    def crc(data: Buffer, value: int = 0) -> int:
        return int(fun(_py.as_bytes_view(data), _py.check_crc(value, "value")))

    return Backend("crcmod", crc, _py.crc32c_combine)


def _load_python() -> Backend:
    return Backend("python", _py.crc32c, _py.crc32c_combine)


_LOADERS: dict[str, Callable[[], Backend]] = {
    "native": _load_native,
    "google-crc32c": _load_google,
    "crcmod": _load_crcmod,
    "python": _load_python,
}
_loaded: dict[str, Backend] = {}


def backend(name: str) -> Backend:
    """Return the backend called ``name``, loading it on first use.

    Args:
        name: one of :data:`BACKENDS`.

    Returns:
        The backend object (usable side by side with the live one, e.g. in tests).

    Raises:
        ValueError: unknown backend name.
        ImportError: the backend's library or extension is not installed.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown CRC32C backend {name!r}; expected one of {', '.join(BACKENDS)}")
    found = _loaded.get(name)
    if found is None:
        found = _loaded[name] = _LOADERS[name]()
    return found


def available_backends() -> list[str]:
    """Return the names of the backends that can be loaded here, in fallback order."""
    names = []
    for name in BACKENDS:
        try:
            backend(name)
        except ImportError:
            continue
        names.append(name)
    return names


def _google_is_compiled() -> bool:
    try:
        import google_crc32c
    except ImportError:
        return False
    return getattr(google_crc32c, "implementation", "c") == "c"


def _choose() -> Backend:
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced:
        if forced not in _LOADERS:
            raise ValueError(
                f"{BACKEND_ENV}={forced!r} is not a CRC32C backend; "
                f"expected one of {', '.join(BACKENDS)}"
            )
        try:
            return backend(forced)
        except ImportError as exc:
            raise ImportError(
                f"{BACKEND_ENV}={forced} but that backend is unavailable: {exc}"
            ) from exc
    for name in BACKENDS:
        if name == "google-crc32c" and not _google_is_compiled():
            continue  # its pure-Python fallback is slower than crcmod's C code
        try:
            return backend(name)
        except ImportError as exc:
            _log.debug("CRC32C backend %s unavailable: %s", name, exc)
    raise AssertionError("the pure-Python backend is always available")  # pragma: no cover


_live = _choose()

implementation: str = _live.name
"""The live CRC32C backend: "native", "google-crc32c", "crcmod" or "python"."""

crc32c: Crc32cFunction = _live.crc32c
"""``crc32c(data, value=0) -> int``: CRC-32C of any contiguous buffer, continuing ``value``."""

crc32c_combine: Callable[[int, int, int], int] = _live.crc32c_combine
"""``crc32c_combine(crc_a, crc_b, length_b) -> int``: CRC of A+B from CRC(A), CRC(B), len(B)."""


def crc32c_combine_many(parts: Iterable[tuple[int, int]]) -> int:
    """Fold ``(crc, length)`` pairs, in order, into the CRC of their concatenation.

    Args:
        parts: an iterable of ``(crc, length)`` pairs.

    Returns:
        The CRC32C of all parts concatenated (0 for no parts).

    Raises:
        ValueError: a negative length or an out-of-range CRC.
    """
    if _live.combine_many is not None:
        return _live.combine_many(parts)
    total = 0
    for crc, length in parts:
        total = crc32c_combine(total, crc, length)
    return total


def crc32c_to_b64(value: int) -> str:
    """Return a CRC32C as GCS shows it: base64 of its 4 big-endian bytes.

    Raises:
        ValueError: ``value`` is not in [0, 2**32).
    """
    return base64.b64encode(_py.check_crc(value, "value").to_bytes(4, "big")).decode("ascii")


def crc32c_from_b64(text: str) -> int:
    """Parse a base64 CRC32C (as in ``x-goog-hash``) back into an int.

    Raises:
        ValueError: not valid base64 of exactly 4 bytes.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not a base64 CRC32C: {text!r}") from None
    if len(raw) != 4:
        raise ValueError(f"a base64 CRC32C decodes to 4 bytes, {text!r} gives {len(raw)}")
    return int.from_bytes(raw, "big")


# --------------------------------------------------------------------------- #
# Hashers
# --------------------------------------------------------------------------- #


class Hasher(Protocol):
    """What ``new_hasher`` returns: a running checksum over a byte stream."""

    @property
    def name(self) -> str:
        """ "md5" or "crc32c"."""
        ...

    def update(self, data: Buffer) -> None:
        """Feed more bytes (any contiguous buffer)."""

    def digest(self) -> bytes:
        """Return the checksum bytes so far (CRC32C: 4 big-endian bytes)."""
        ...

    def b64digest(self) -> str:
        """Return ``digest()`` base64-encoded, as ``x-goog-hash`` carries it."""
        ...

    def hexdigest(self) -> str:
        """Return ``digest()`` as lower-case hex."""
        ...

    def copy(self) -> Self:
        """Return an independent hasher with the same state."""
        ...


class Crc32cHasher:
    """Running CRC32C on the live backend.

    Args:
        value: CRC of the bytes already seen (0 to start fresh).
    """

    name = "crc32c"
    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value: int = _py.check_crc(value, "value")

    def update(self, data: Buffer) -> None:
        """Feed more bytes.

        Raises:
            TypeError: ``data`` is not a bytes-like object.
            BufferError: ``data`` is not contiguous.
        """
        self.value = crc32c(data, self.value)

    def digest(self) -> bytes:
        """Return the CRC as 4 big-endian bytes."""
        return self.value.to_bytes(4, "big")

    def b64digest(self) -> str:
        """Return the CRC base64-encoded, as GCS shows it."""
        return crc32c_to_b64(self.value)

    def hexdigest(self) -> str:
        """Return the CRC as 8 lower-case hex digits."""
        return self.digest().hex()

    def copy(self) -> Crc32cHasher:
        """Return an independent hasher with the same running value."""
        return Crc32cHasher(self.value)


class Md5Hasher:
    """Running MD5 (hashlib), accepting any contiguous buffer."""

    name = "md5"
    __slots__ = ("_md5",)

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: Buffer) -> None:
        """Feed more bytes.

        Raises:
            TypeError: ``data`` is not a bytes-like object.
            BufferError: ``data`` is not contiguous.
        """
        self._md5.update(data)

    def digest(self) -> bytes:
        """Return the 16-byte MD5 digest so far."""
        return self._md5.digest()

    def b64digest(self) -> str:
        """Return the MD5 base64-encoded, as GCS shows it."""
        return base64.b64encode(self._md5.digest()).decode("ascii")

    def hexdigest(self) -> str:
        """Return the MD5 as lower-case hex."""
        return self._md5.hexdigest()

    def copy(self) -> Md5Hasher:
        """Return an independent hasher with the same state."""
        clone = Md5Hasher.__new__(Md5Hasher)
        clone._md5 = self._md5.copy()
        return clone


def new_hasher(name: str) -> Hasher:
    """Return a fresh hasher.

    Args:
        name: "crc32c" or "md5".

    Raises:
        ValueError: any other name.
    """
    if name == "crc32c":
        return Crc32cHasher()
    if name == "md5":
        return Md5Hasher()
    raise ValueError(f"unknown checksum {name!r}; expected 'crc32c' or 'md5'")


def resolve_checksum(name: str | None) -> str | None:
    """Resolve a user's ``checksum=`` choice to "crc32c", "md5" or None.

    "auto" means "crc32c" when a fast CRC32C backend is live, else "md5".

    Raises:
        ValueError: anything other than "auto", "crc32c", "md5" or None.
    """
    if name is None or name in ("crc32c", "md5"):
        return name
    if name == "auto":
        return "crc32c" if implementation in _FAST_BACKENDS else "md5"
    raise ValueError(f"checksum must be 'auto', 'crc32c', 'md5' or None, not {name!r}")


# --------------------------------------------------------------------------- #
# x-goog-hash
# --------------------------------------------------------------------------- #

_HASH_NAME = re.compile(r"[A-Za-z0-9_-]+")
_B64_VALUE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class GoogHashError(ValueError):
    """An ``x-goog-hash`` header that cannot be trusted.

    Attributes:
        name: the checksum name at fault (e.g. "md5").
        header: the whole header value.
        matches: the values found for ``name`` (several for a duplicate).
    """

    def __init__(self, message: str, name: str, header: str, matches: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.header = header
        self.matches = matches


def parse_goog_hash(header: str | None) -> dict[str, str]:
    """Parse ``x-goog-hash`` (``crc32c=…,md5=…``, ", " tolerated) into name → base64.

    Args:
        header: the header value, or None when the response had none.

    Returns:
        Checksum names (lower-case) to their base64 values; empty for None/"".

    Raises:
        GoogHashError: a name appears more than once, or a part has no "=".
    """
    if not header:
        return {}
    found: dict[str, list[str]] = {}
    for part in header.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise GoogHashError(
                f"X-Goog-Hash header part {part!r} is not name=value.", part, header, []
            )
        found.setdefault(name.strip().lower(), []).append(value.strip())
    for name, values in found.items():
        if len(values) > 1:
            raise GoogHashError(
                f"X-Goog-Hash header had multiple ``{name}`` values.", name, header, values
            )
    return {name: values[0] for name, values in found.items()}


def format_goog_hash(hashes: Mapping[str, str]) -> str:
    """Format checksums for a request's ``x-goog-hash`` header, names sorted.

    Args:
        hashes: checksum name → base64 value, e.g. ``{"crc32c": "yZRlqg=="}``.

    Raises:
        ValueError: a name or value that would corrupt the header.
    """
    parts = []
    for name in sorted(hashes):
        value = hashes[name]
        if not _HASH_NAME.fullmatch(name) or not _B64_VALUE.fullmatch(value):
            raise ValueError(f"cannot put {name!r}={value!r} in an x-goog-hash header")
        parts.append(f"{name}={value}")
    return ",".join(parts)
