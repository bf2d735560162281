"""Checksum bookkeeping shared by downloads and uploads: expected values and messages.

Invariants: no I/O.  Messages are google-resumable-media 2.11's, byte for byte.
A checksum name here is always a resolved one: "md5", "crc32c" or None.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from resumable_media import checksums, common
from resumable_media._protocol.request import Headers, get_header

__all__ = [
    "DOWNLOAD_CHECKSUM_ERROR",
    "Checksum",
    "download_mismatch_text",
    "expected_download_checksum",
    "mismatch_message",
    "resolve_download_checksum",
    "upload_mismatch",
    "verify_download",
]

_LOGGER = logging.getLogger(__name__)

Checksum = Literal["md5", "crc32c", "auto"] | None
"""The one checksum choice of the package: "md5", "crc32c", "auto" (CRC32C, or MD5
where CRC32C cannot be computed fast) or None (no check).  ``PipelinedUpload`` also
takes "both" (CRC32C and MD5 in the final ``x-goog-hash``)."""

DOWNLOAD_CHECKSUM_ERROR = "checksum must be ``'md5'``, ``'crc32c'`` or ``None``"

_MISSING_HASH = (
    "No {checksum_type} checksum was returned from the service while downloading {url}\n"
    "(which happens for composite objects), so client-side content integrity\n"
    "checking is not being performed."
)

_DOWNLOAD_MISMATCH = (
    "Checksum mismatch while downloading:\n\n  {}\n\n"
    "The X-Goog-Hash header indicated an {checksum_type} checksum of:\n\n  {}\n\n"
    "but the actual {checksum_type} checksum of the downloaded contents was:\n\n  {}\n"
)

_UPLOAD_MISMATCH = (
    "The computed ``{}`` checksum, ``{}``, and the checksum reported by the remote host, "
    "``{}``, did not match."
)


def resolve_download_checksum(checksum: common.Checksum) -> str | None:
    """Resolve a download's ``checksum`` argument ("auto" included).

    Args:
        checksum: "md5", "crc32c", "auto" or None.

    Returns:
        "md5", "crc32c" or None.

    Raises:
        ValueError: ``checksum must be ``'md5'``, ``'crc32c'`` or ``None``.
    """
    try:
        return checksums.resolve_checksum(checksum)
    except ValueError:
        raise ValueError(DOWNLOAD_CHECKSUM_ERROR) from None


def _lookup(response: Any, header: str, name: str) -> str | None:
    try:
        return checksums.parse_goog_hash(header).get(name)
    except checksums.GoogHashError as exc:
        if exc.name == name:
            raise common.InvalidResponse(
                response, f"X-Goog-Hash header had multiple ``{name}`` values.", header, exc.matches
            ) from None
    # Another checksum was malformed or repeated: read only the one we need.
    values = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep and key.strip().lower() == name:
            values.append(value.strip())
    if len(values) > 1:
        raise common.InvalidResponse(
            response, f"X-Goog-Hash header had multiple ``{name}`` values.", header, values
        )
    return values[0] if values else None


def expected_download_checksum(
    response: Any, headers: Headers, name: str, url: str, *, log_missing: bool = True
) -> str | None:
    """The base64 checksum of type ``name`` the server reported in ``x-goog-hash``.

    Args:
        response: The response (stored on raised exceptions).
        headers: Its headers.
        name: "md5" or "crc32c".
        url: The media URL (for the log message).
        log_missing: Whether to log at INFO when the hash is absent.

    Returns:
        The base64 value, or None when the response carries none.

    Raises:
        InvalidResponse: If the header repeats the ``name`` checksum.
    """
    header = get_header(headers, "x-goog-hash")
    value = _lookup(response, header, name) if header else None
    if value is None and log_missing:
        _LOGGER.info(_MISSING_HASH.format(checksum_type=name.upper(), url=url))
    return value


def mismatch_message(
    url: str,
    name: str,
    expected: str,
    actual: str,
    stored_length: Any,
    stored_encoding: Any,
    read: int,
) -> str:
    """The full DataCorruption text for a download whose checksum did not match.

    Args:
        url: The media URL.
        name: "md5" or "crc32c".
        expected: The server's base64 checksum.
        actual: The computed base64 checksum.
        stored_length: The ``x-goog-stored-content-length`` header (None if absent).
        stored_encoding: The ``x-goog-stored-content-encoding`` header (None if absent).
        read: The number of body bytes read.

    Returns:
        The mismatch text followed by the download-info text.
    """
    mismatch = download_mismatch_text(url, name, expected, actual)
    return mismatch + incomplete_message(stored_length, stored_encoding, read)


def download_mismatch_text(url: str, name: str, expected: str, actual: str) -> str:
    """The first part of a download's mismatch message (without the download info).

    Args:
        url: The media URL.
        name: "md5" or "crc32c".
        expected: The server's base64 checksum.
        actual: The computed base64 checksum.

    Returns:
        ``Checksum mismatch while downloading: …`` naming both checksums.
    """
    return _DOWNLOAD_MISMATCH.format(url, expected, actual, checksum_type=name.upper())


def verify_download(
    url: str, expected: dict[str, str], local: dict[str, str], *, want_md5: bool
) -> bool:
    """Compare a whole downloaded object's hashes with the ones its ``x-goog-hash`` reported.

    CRC32C is compared whenever the server reported it; MD5 too when ``want_md5`` (an
    object without one, e.g. composite, is checked by its CRC32C alone).

    Args:
        url: The media URL (for the messages).
        expected: The parsed ``x-goog-hash`` (``{"crc32c": …, "md5": …}``).
        local: The computed base64 hashes, same keys.
        want_md5: Whether MD5 was computed and must be compared.

    Returns:
        True when at least one hash was compared (and matched).

    Raises:
        DataCorruption: A hash did not match (response None: no single response holds it).
    """
    names = ("crc32c", "md5") if want_md5 else ("crc32c",)
    verified = False
    for name in names:
        remote = expected.get(name)
        if remote is None:
            if name == "md5":
                _LOGGER.info("%s has no MD5 (composite object); checked its CRC32C", url)
            continue
        if remote != local.get(name):
            text = download_mismatch_text(url, name, remote, local.get(name, ""))
            raise common.DataCorruption(None, text)
        verified = True
    if not verified:
        _LOGGER.info("no checksum was returned for %s; the download is unverified", url)
    return verified


def incomplete_message(stored_length: Any, stored_encoding: Any, read: int) -> str:
    """The download-info text (also the ``ConnectionError`` text of an incomplete read).

    Args:
        stored_length: The ``x-goog-stored-content-length`` header (None if absent).
        stored_encoding: The ``x-goog-stored-content-encoding`` header (None if absent).
        read: The number of body bytes read.

    Returns:
        The text.
    """
    return (
        f"\nThe X-Goog-Stored-Content-Length is {stored_length}. "
        f"The X-Goog-Stored-Content-Encoding is {stored_encoding}.\n\n"
        f"The download request read {read} bytes of data.\n"
        "If the download was incomplete, please check the network connection "
        "and restart the download.\n"
    )


def upload_mismatch(response: Any, name: str, local: str, remote: str) -> common.DataCorruption:
    """The DataCorruption for an upload whose server-side checksum differs.

    Args:
        response: The response that reported ``remote``.
        name: "md5" or "crc32c".
        local: The checksum computed over the bytes sent (base64).
        remote: The checksum the server reported (base64).

    Returns:
        The exception, ready to raise.
    """
    return common.DataCorruption(response, _UPLOAD_MISMATCH.format(name.upper(), local, remote))


def missing_metadata_checksum(response: Any, name: str, headers: Any) -> common.InvalidResponse:
    """The InvalidResponse for an upload response that carries no checksum to compare.

    Args:
        response: The response.
        name: "md5" or "crc32c".
        headers: The response headers (kept in ``args``).

    Returns:
        The exception, ready to raise.
    """
    key = "md5Hash" if name == "md5" else "crc32c"
    message = f"Response metadata had no ``{key}`` value; checksum could not be validated."
    return common.InvalidResponse(response, message, headers)
