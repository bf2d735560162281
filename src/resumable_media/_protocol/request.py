"""Plain-data request descriptions and the response checks every transfer shares.

Invariants: no I/O.  A ``RequestSpec`` is everything a transport needs to send one
request.  The check helpers raise ``InvalidResponse`` with google-resumable-media
2.11's exact ``args`` layouts, and run the caller's "make invalid" callback only
where upstream does (status: only for non-retryable codes; header: always).
"""

from __future__ import annotations

import dataclasses
import http
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from resumable_media import common

__all__ = [
    "Headers",
    "RequestSpec",
    "get_header",
    "require_header",
    "require_status",
]

Headers = Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, as data.

    Attributes:
        method: ``GET``, ``PUT``, ``POST`` or ``DELETE``.
        url: The full URL.
        body: The request body, or None for no body.
        headers: The request headers (lower-case keys for the ones the library writes).
    """

    method: str
    url: str
    body: bytes | memoryview | None
    headers: dict[str, Any]


def get_header(headers: Headers, name: str) -> str | None:
    """Look up a response header.

    Args:
        headers: A case-insensitive mapping (``requests`` headers), or a plain
            mapping with lower-case keys.
        name: The header name, lower case.

    Returns:
        The value, or None if absent.
    """
    return headers.get(name)


def _as_status(code: int) -> int:
    try:
        return http.HTTPStatus(code)
    except ValueError:
        return code


def require_status(
    response: Any,
    status: int,
    expected: Iterable[int],
    on_failure: Callable[[], None] | None = None,
) -> int:
    """Check that ``status`` is one of ``expected``.

    Args:
        response: The response, stored on the raised exception.
        status: The received status code.
        expected: The acceptable codes, in the order they are reported.
        on_failure: Called before raising, but only when ``status`` is not
            retryable (a retryable failure leaves the transfer usable).

    Returns:
        ``status``, when acceptable.

    Raises:
        InvalidResponse: ``('Request failed with status code', status,
            'Expected one of', *expected)``.
    """
    wanted = tuple(expected)
    if status in wanted:
        return status
    if on_failure is not None and status not in common.RETRYABLE:
        on_failure()
    raise common.InvalidResponse(
        response,
        "Request failed with status code",
        status,
        "Expected one of",
        *(_as_status(code) for code in wanted),
    )


def require_header(
    response: Any,
    headers: Headers,
    name: str,
    on_failure: Callable[[], None] | None = None,
) -> str:
    """Return a header that must be present.

    Args:
        response: The response, stored on the raised exception.
        headers: The response headers.
        name: The header name, lower case.
        on_failure: Called before raising.

    Returns:
        The header value.

    Raises:
        InvalidResponse: ``('Response headers must contain header', name)``.
    """
    value = get_header(headers, name)
    if value is None:
        if on_failure is not None:
            on_failure()
        raise common.InvalidResponse(response, "Response headers must contain header", name)
    return value
