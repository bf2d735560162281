"""``gs://`` URLs, endpoint selection and the request URLs built from them.

Invariants: every object name placed in a request *path* is percent-encoded with
``quote(name, safe="")`` (so ``/``, ``#``, ``?``, ``%``, spaces and non-ASCII
characters all survive), and every query value with ``urlencode``; no URL is
built anywhere else in the command.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

__all__ = [
    "GCS_ENDPOINT",
    "Endpoint",
    "GsUrl",
    "is_gs_url",
    "parse_gs_url",
    "resolve_endpoint",
]

GCS_ENDPOINT = "https://storage.googleapis.com"
_SCHEME = "gs://"


@dataclasses.dataclass(frozen=True, slots=True)
class GsUrl:
    """A parsed ``gs://bucket/name`` URL; ``name`` may be empty (a bucket or prefix)."""

    bucket: str
    name: str

    def __str__(self) -> str:
        return f"{_SCHEME}{self.bucket}/{self.name}"

    def child(self, relative: str) -> GsUrl:
        """Return the URL of ``relative`` (a ``/``-separated path) under this prefix."""
        if not self.name:
            return GsUrl(self.bucket, relative)
        base = self.name if self.name.endswith("/") else self.name + "/"
        return GsUrl(self.bucket, base + relative)


def is_gs_url(text: str) -> bool:
    """Return True when ``text`` names a Cloud Storage location (``gs://…``)."""
    return text.startswith(_SCHEME)


def parse_gs_url(text: str) -> GsUrl:
    """Split ``gs://bucket/object/name`` into bucket and object name.

    The object name is everything after the first ``/`` following the bucket,
    taken literally: ``#``, ``?``, ``%`` and spaces are part of the name, never
    URL syntax.

    Args:
        text: The URL as typed by the user.

    Returns:
        The parsed URL.

    Raises:
        ValueError: When the text is not a ``gs://`` URL or has no valid bucket.
    """
    if not is_gs_url(text):
        raise ValueError(f"not a gs:// URL: {text!r}")
    rest = text[len(_SCHEME) :]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise ValueError(f"missing bucket name in {text!r}")
    if any(c in bucket for c in "#?%\\ ") or not bucket.isprintable():
        raise ValueError(f"invalid bucket name {bucket!r} in {text!r}")
    if "\x00" in name or "\n" in name or "\r" in name:
        raise ValueError(f"object name may not contain NUL, CR or LF: {text!r}")
    return GsUrl(bucket, name)


def _q(name: str) -> str:
    return quote(name, safe="")


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A JSON-API base URL plus whether requests to it must carry Google credentials."""

    base_url: str
    authenticated: bool

    def object_url(self, url: GsUrl, query: Mapping[str, str | int] | None = None) -> str:
        """Metadata URL of one object (``GET`` gives its resource JSON, ``DELETE`` removes it)."""
        base = f"{self.base_url}/storage/v1/b/{_q(url.bucket)}/o/{_q(url.name)}"
        return f"{base}?{urlencode(query)}" if query else base

    def rewrite_url(
        self, source: GsUrl, destination: GsUrl, query: Mapping[str, str | int] | None = None
    ) -> str:
        """``objects.rewrite`` URL copying ``source`` to ``destination`` server-side."""
        base = (
            f"{self.base_url}/storage/v1/b/{_q(source.bucket)}/o/{_q(source.name)}"
            f"/rewriteTo/b/{_q(destination.bucket)}/o/{_q(destination.name)}"
        )
        return f"{base}?{urlencode(query)}" if query else base

    def media_url(self, url: GsUrl, generation: int | None = None) -> str:
        """Media download URL of one object, pinned to ``generation`` when given."""
        query: dict[str, str | int] = {"alt": "media"}
        if generation is not None:
            query["generation"] = generation
        return (
            f"{self.base_url}/download/storage/v1/b/{_q(url.bucket)}/o/{_q(url.name)}"
            f"?{urlencode(query)}"
        )

    def list_url(
        self,
        bucket: str,
        prefix: str,
        page_token: str | None = None,
        page_size: int | None = None,
        delimiter: str | None = None,
    ) -> str:
        """Object listing URL for ``prefix`` (one page; ``page_token`` continues).

        With ``delimiter`` (``/``) the page lists the names directly below ``prefix``
        and the "sub-directories" as ``prefixes``.
        """
        query: dict[str, str | int] = {"prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        if page_size:
            query["maxResults"] = page_size
        if page_token:
            query["pageToken"] = page_token
        return f"{self.base_url}/storage/v1/b/{_q(bucket)}/o?{urlencode(query)}"

    def upload_url(
        self, bucket: str, upload_type: str, extra: Mapping[str, str | int] | None = None
    ) -> str:
        """JSON-API upload URL (``upload_type`` is media, multipart or resumable)."""
        query: dict[str, str | int] = {"uploadType": upload_type}
        query.update(extra or {})
        return f"{self.base_url}/upload/storage/v1/b/{_q(bucket)}/o?{urlencode(query)}"

    def xml_url(self, url: GsUrl) -> str:
        """XML API URL of one object (used by the parallel XML multipart upload)."""
        return f"{self.base_url}/{_q(url.bucket)}/{quote(url.name, safe='/')}"


def _normalise(base: str, origin: str) -> str:
    base = base.strip().rstrip("/")
    if "://" not in base:
        base = "http://" + base
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{origin} must be an http(s) URL, got {base!r}")
    return base


def resolve_endpoint(option: str | None, environ: Mapping[str, str] | None = None) -> Endpoint:
    """Choose where requests go.

    ``--endpoint`` wins, then ``STORAGE_EMULATOR_HOST``; both mean an emulator
    reached anonymously.  Otherwise Cloud Storage with Google default credentials.

    Args:
        option: The ``--endpoint`` value, or None.
        environ: Environment to consult (default ``os.environ``).

    Returns:
        The endpoint.

    Raises:
        ValueError: When the configured value is not an http(s) URL.
    """
    env = os.environ if environ is None else environ
    if option:
        return Endpoint(_normalise(option, "--endpoint"), authenticated=False)
    emulator = env.get("STORAGE_EMULATOR_HOST", "").strip()
    if emulator:
        return Endpoint(_normalise(emulator, "STORAGE_EMULATOR_HOST"), authenticated=False)
    return Endpoint(GCS_ENDPOINT, authenticated=True)
