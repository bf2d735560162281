"""The command's view of a bucket: transports, metadata, listing, and error wording.

Invariants: one transport (session) per thread, built by a picklable factory
that also carries the user's extra headers, so worker processes of the
accelerator send exactly the same headers; metadata and listing GETs are retried
with the library's retry loop; every failure surfaces as :class:`TransferError`
naming the object and the reason, never with credentials or auth headers in it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from resumable_media import _transport, common
from resumable_media._objects.urls import Endpoint, GsUrl
from resumable_media.requests._send import DEFAULT_TIMEOUT, wait_and_retry

__all__ = [
    "HeaderedFactory",
    "ListingPage",
    "PreconditionFailed",
    "Storage",
    "TransferError",
    "describe_error",
    "read_needs",
    "refused_hint",
]


class TransferError(Exception):
    """A transfer of one object failed; ``target`` names it and ``reason`` says why.

    Args:
        target: The object (``gs://…``) or local path concerned.
        reason: What went wrong, for people.
        status: The HTTP status of the failed request, when there was one.
    """

    def __init__(self, target: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason
        self.status = status


class PreconditionFailed(TransferError):
    """A generation precondition did not hold (HTTP 412): the object changed, or exists."""


@dataclasses.dataclass(frozen=True, slots=True)
class ListingPage:
    """One page of an object listing: object resources, and with a delimiter the sub-prefixes."""

    items: list[dict[str, Any]]
    prefixes: list[str]


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
    words = _transport.describe_error(exc)
    if words != type(exc).__name__:  # a connection failure we can say in words
        origin = _transport.failed_origin(exc) or "the server"
        if words.startswith("connection ") and words != "connection refused":
            return f"{origin}: {words}; run the command again (a download resumes)"
        return (
            f"cannot reach {origin} ({words}); check the endpoint and the network, then run "
            "the command again"
        )
    text = redact_session(str(exc)) or type(exc).__name__
    if type(exc).__name__ == "DefaultCredentialsError":
        text += " (for an emulator, pass --endpoint URL or set STORAGE_EMULATOR_HOST)"
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def refused_hint(needs: str) -> str:
    """What to do about a refusal (HTTP 403): ``needs`` is what the credentials must be
    allowed, e.g. ``read gs://b/o (roles/storage.objectViewer)``."""
    return f"; check that your credentials may {needs}"


def read_needs(url: GsUrl) -> str:
    """What reading an object (its metadata or its bytes) needs, for :func:`refused_hint`."""
    return f"read {url} (roles/storage.objectViewer)"


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

    def _call(
        self,
        method: str,
        url: str,
        target: str,
        *,
        body: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
        needs: str | None = None,
    ) -> Any:
        """Send one JSON-API request (retried as the library retries); return the response.

        ``needs`` says what a refusal (HTTP 403) means the credentials may not do, e.g.
        ``read gs://b/o (roles/storage.objectViewer)``; the message then says to check it.

        Raises:
            PreconditionFailed: On HTTP 412.
            TransferError: On any other failure, naming ``target``; ``status`` set when the
                server answered.
        """

        def attempt() -> Any:
            kwargs: dict[str, Any] = {"timeout": DEFAULT_TIMEOUT}
            if body is not None:
                kwargs["json"] = body
            response = self.session().request(method, url, **kwargs)
            if response.status_code not in expect:
                raise common.InvalidResponse(
                    response, "Request failed with status code", response.status_code
                )
            return response

        try:
            return wait_and_retry(attempt, self.retry)
        except Exception as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            kind = PreconditionFailed if status == 412 else TransferError
            reason = describe_error(exc)
            if status == 403 and needs:
                reason += refused_hint(needs)
            raise kind(target, reason, status) from exc

    def _get_json(self, url: str, target: str, needs: str | None = None) -> dict[str, Any]:
        data = self._call("GET", url, target, needs=needs).json()
        if not isinstance(data, dict):
            raise TransferError(target, "the server's answer is not a JSON object")
        return data

    def metadata(self, url: GsUrl) -> dict[str, Any]:
        """Return the object resource of ``url``.

        Raises:
            TransferError: When the object does not exist or the request fails.
        """
        return self._get_json(self.endpoint.object_url(url), str(url), needs=read_needs(url))

    def stat(self, url: GsUrl) -> dict[str, Any] | None:
        """Return the object resource of ``url``, or None when there is no such object.

        Raises:
            TransferError: When the request fails for another reason.
        """
        try:
            return self.metadata(url)
        except TransferError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(
        self,
        url: GsUrl,
        *,
        if_generation_match: int | None = None,
        generation: int | None = None,
    ) -> bool:
        """Delete the object ``url``; return False when it was already gone.

        Args:
            url: The object.
            if_generation_match: Delete only while the live object has this generation
                (the safe way to delete what a listing showed).
            generation: Delete this (noncurrent) generation instead of the live one.

        Raises:
            PreconditionFailed: The live object's generation is not ``if_generation_match``.
            TransferError: When the request fails otherwise.
        """
        query: dict[str, str | int] = {}
        if if_generation_match is not None:
            query["ifGenerationMatch"] = if_generation_match
        if generation is not None:
            query["generation"] = generation
        try:
            self._call(
                "DELETE",
                self.endpoint.object_url(url, query),
                str(url),
                expect=(200, 204),
                needs=f"delete {url} (roles/storage.objectUser)",
            )
        except TransferError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def rewrite(
        self,
        source: GsUrl,
        destination: GsUrl,
        *,
        source_generation: int | None = None,
        if_generation_match: int | None = None,
        resource: dict[str, Any] | None = None,
        max_bytes_per_call: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Copy ``source`` to ``destination`` inside Cloud Storage (``objects.rewrite``).

        Loops on ``rewriteToken`` until the server reports ``done``; no object byte
        passes through this process.  Without ``resource`` the destination keeps the
        source's content type and custom metadata (the server copies them).

        Args:
            source: The object to copy.
            destination: Where to put the copy (any bucket on the same endpoint).
            source_generation: Copy this generation of the source (pin what was listed).
            if_generation_match: Precondition on the destination (0: must not exist).
            resource: Object resource fields for the destination (replaces the metadata).
            max_bytes_per_call: ``maxBytesRewrittenPerCall`` (tests; a multiple of 1 MiB).
            progress: Called with ``(bytes_rewritten, total_bytes)`` after every call.

        Returns:
            The destination's object resource.

        Raises:
            PreconditionFailed: When ``if_generation_match`` does not hold.
            TransferError: When a call fails, or the server's answer is malformed.
        """
        query: dict[str, str | int] = {}
        if source_generation is not None:
            query["sourceGeneration"] = source_generation
        if if_generation_match is not None:
            query["ifGenerationMatch"] = if_generation_match
        if max_bytes_per_call is not None:
            query["maxBytesRewrittenPerCall"] = max_bytes_per_call
        target = str(destination)
        token: str | None = None
        while True:
            call = dict(query)
            if token:
                call["rewriteToken"] = token
            url = self.endpoint.rewrite_url(source, destination, call)
            answer = self._call(
                "POST",
                url,
                target,
                body=resource or {},
                needs=f"read {source} and create {destination} (roles/storage.objectUser)",
            ).json()
            if not isinstance(answer, dict):
                raise TransferError(target, "the rewrite answer is not a JSON object")
            if progress is not None:
                progress(
                    int(answer.get("totalBytesRewritten", 0)), int(answer.get("objectSize", 0))
                )
            if answer.get("done"):
                result = answer.get("resource")
                if not isinstance(result, dict):
                    raise TransferError(target, "the finished rewrite carries no object resource")
                return result
            token = answer.get("rewriteToken")
            if not token:
                raise TransferError(target, "the rewrite is not done and gave no rewriteToken")

    def list_pages(
        self,
        bucket: str,
        prefix: str,
        *,
        delimiter: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[ListingPage]:
        """Yield the listing of ``prefix`` page by page (streamed: one page in memory).

        Follows ``nextPageToken`` until the listing is complete.  With ``delimiter``
        (``"/"``) each page holds the objects directly below ``prefix`` and the
        sub-prefixes ("directories").

        Raises:
            TransferError: When a page cannot be fetched: the listing is then incomplete,
                and callers must not act on what is missing from it (e.g. delete).
        """
        token: str | None = None
        target = f"gs://{bucket}/{prefix}"
        last_prefix = ""
        while True:
            url = self.endpoint.list_url(bucket, prefix, token, page_size, delimiter)
            page = self._get_json(
                url, target, needs=f"list gs://{bucket} (roles/storage.objectViewer)"
            )
            items = page.get("items", [])
            # A prefix spanning a page boundary may come again on the next page: names come
            # in order, so dropping a repeat of the last prefix seen keeps each one once.
            prefixes = []
            for prefix_ in page.get("prefixes", []):
                if str(prefix_) != last_prefix:
                    prefixes.append(str(prefix_))
            if prefixes:
                last_prefix = prefixes[-1]
            yield ListingPage(list(items), prefixes)
            token = page.get("nextPageToken")
            if not token:
                return

    def iter_objects(
        self, bucket: str, prefix: str, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the resource of every live object whose name starts with ``prefix``.

        Streamed in name order, page by page (see :meth:`list_pages`); ``page_size``
        sets ``maxResults`` (the server's default when None).

        Raises:
            TransferError: When a listing page cannot be fetched.
        """
        for page in self.list_pages(bucket, prefix, page_size=page_size):
            yield from page.items
