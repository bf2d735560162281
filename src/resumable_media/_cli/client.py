"""The command's view of a bucket: transports, metadata, listing, and error wording.

Invariants: one transport (session) per thread, built by a picklable factory
that also carries the user's extra headers, so worker processes of the
accelerator send exactly the same headers; metadata and listing GETs are retried
with the library's retry loop; every failure surfaces as :class:`TransferError`
naming the object and the reason, never with credentials or auth headers in it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from resumable_media import common
from resumable_media._cli.urls import Endpoint, GsUrl
from resumable_media.requests._send import DEFAULT_TIMEOUT, wait_and_retry

__all__ = ["HeaderedFactory", "Storage", "TransferError", "describe_error"]


class TransferError(Exception):
    """A transfer of one object failed; ``target`` names it and ``reason`` says why.

    Args:
        target: The object (``gs://…``) or local path concerned.
        reason: What went wrong, for people.
    """

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


class HeaderedFactory:
    """A picklable zero-argument transport factory adding fixed headers to every request.

    Args:
        inner: The underlying factory (``transports.anonymous()`` or ``google_default()``).
        headers: Extra headers, e.g. an ``x-retry-test-id`` or CSEK headers.
    """

    def __init__(self, inner: Callable[[], Any], headers: Mapping[str, str]) -> None:
        self.inner = inner
        self.headers = dict(headers)

    def __call__(self) -> Any:
        session = self.inner()
        if self.headers:
            session.headers.update(self.headers)
        return session


def _error_message(response: Any) -> str:
    try:
        text = response.text
    except Exception:  # the body was streamed away or is undecodable
        return ""
    try:
        payload = json.loads(text)
        message = payload["error"]["message"]
        return str(message)
    except (ValueError, KeyError, TypeError):
        return str(text).strip()[:200]


_SESSION_PARAMETER = re.compile(r"((?:upload_id|uploadId)=)[^&\s'\")]+")


def redact_session(text: str) -> str:
    """Hide resumable/multipart session ids in a message: a session URL is a credential."""
    return _SESSION_PARAMETER.sub(r"\1<redacted>", text)


def describe_error(exc: BaseException) -> str:
    """Say in one line why a request failed (status and server message, or the exception)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(exc, common.DataCorruption):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "checksum mismatch"
        return f"data corruption: {first}"
    if status is not None:
        message = _error_message(response)
        label = {
            404: "not found",
            403: "permission denied",
            401: "not authenticated",
            412: "precondition failed (generation does not match)",
        }.get(status, "request failed")
        return f"{label} (HTTP {status}{': ' + message if message else ''})"
    text = redact_session(str(exc)) or type(exc).__name__
    if type(exc).__name__ == "DefaultCredentialsError":
        text += " (for an emulator, pass --endpoint URL or set STORAGE_EMULATOR_HOST)"
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _make_inner(endpoint: Endpoint) -> Callable[[], Any]:
    from resumable_media import transports

    if endpoint.authenticated:
        return transports.google_default()
    return transports.anonymous()


class Storage:
    """Requests to one endpoint with one set of extra headers.

    Args:
        endpoint: Where to send requests.
        headers: Extra headers for every request.
        retry: Retry policy for metadata and listing requests.
        factory: Transport factory override (tests); built from the endpoint otherwise.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        headers: Mapping[str, str],
        *,
        retry: common.RetryStrategy | None = None,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry if retry is not None else common.RetryStrategy()
        self.factory = HeaderedFactory(factory or _make_inner(endpoint), headers)
        self._local = threading.local()

    def session(self) -> Any:
        """The calling thread's transport (created on first use)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self.factory()
            self._local.session = session
        return session

    def _get_json(self, url: str, target: str) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            response = self.session().request("GET", url, timeout=DEFAULT_TIMEOUT)
            if response.status_code != 200:
                raise common.InvalidResponse(
                    response, "Request failed with status code", response.status_code
                )
            data = response.json()
            if not isinstance(data, dict):
                raise common.InvalidResponse(response, "expected a JSON object")
            return data

        try:
            return wait_and_retry(attempt, self.retry)
        except Exception as exc:
            raise TransferError(target, describe_error(exc)) from exc

    def metadata(self, url: GsUrl) -> dict[str, Any]:
        """Return the object resource of ``url``.

        Raises:
            TransferError: When the object does not exist or the request fails.
        """
        return self._get_json(self.endpoint.object_url(url), str(url))

    def iter_objects(
        self, bucket: str, prefix: str, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the resource of every live object whose name starts with ``prefix``.

        Follows ``nextPageToken`` until the listing is complete; ``page_size`` sets
        ``maxResults`` (the server's default when None).

        Raises:
            TransferError: When a listing page cannot be fetched.
        """
        token: str | None = None
        while True:
            page = self._get_json(
                self.endpoint.list_url(bucket, prefix, token, page_size), f"gs://{bucket}/{prefix}"
            )
            yield from page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return
