"""Parsing of option values: sizes (``8MiB``) and extra request headers.

Invariants: pure functions; every bad value raises ``argparse.ArgumentTypeError``
(so argparse reports it as a usage error, exit code 2) with a message naming it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping

__all__ = ["HEADERS_ENV", "headers_from_env", "parse_header", "parse_size"]

HEADERS_ENV = "RESUMABLE_MEDIA_EXTRA_HEADERS"
"""Environment variable holding extra request headers, a JSON object or ``Name: value`` lines."""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?))?b?\s*", re.IGNORECASE)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FORBIDDEN = {"host", "content-length", "transfer-encoding", "connection"}


def parse_size(text: str) -> int:
    """Parse a byte count such as ``1048576``, ``256KiB``, ``8MiB``, ``1G`` or ``1.5GiB``.

    Args:
        text: The value as typed.

    Returns:
        The number of bytes (an int >= 0).

    Raises:
        argparse.ArgumentTypeError: On anything else.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use a byte count such as 1048576, 256KiB, 8MiB or 1GiB"
        )
    number, prefix, binary = match.groups()
    scale = 1
    if prefix:
        scale = (1024 if binary else 1000) ** ("kmgt".index(prefix.lower()) + 1)
    return int(float(number) * scale)


def parse_header(text: str) -> tuple[str, str]:
    """Parse ``Name: value`` into a (name, value) pair for an extra request header.

    Raises:
        argparse.ArgumentTypeError: When the name is not an HTTP token, the value
            contains CR/LF, or the header is one the transport must own.
    """
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: expected 'Name: value'")
    if "\r" in value or "\n" in value:
        raise argparse.ArgumentTypeError(f"invalid header {name!r}: value contains CR or LF")
    if name.lower() in _FORBIDDEN:
        raise argparse.ArgumentTypeError(f"header {name!r} is set by the transport itself")
    return name, value


def headers_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Read extra headers from ``RESUMABLE_MEDIA_EXTRA_HEADERS``.

    The value is either a JSON object of strings or ``Name: value`` lines.

    Raises:
        argparse.ArgumentTypeError: When the value is malformed.
    """
    raw = environ.get(HEADERS_ENV, "").strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{HEADERS_ENV} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise argparse.ArgumentTypeError(f"{HEADERS_ENV} must be a JSON object")
        pairs = [parse_header(f"{k}: {v}") for k, v in data.items()]
    else:
        pairs = [parse_header(line) for line in raw.splitlines() if line.strip()]
    return dict(pairs)
