"""Accelerated transfers for ``google.cloud.storage`` Blobs.

    from resumable_media import gcs
    gcs.download_blob(bucket.blob("big.bin"), "big.bin")
    gcs.upload_blob(bucket.blob("out.bin"), "local.bin")

Invariants:
- Everything a Blob carries is honoured: the client's endpoint (``client_options``,
  ``STORAGE_EMULATOR_HOST``), its credentials (an ``AuthorizedSession`` built from them,
  with a large connection pool; anonymous for an emulator), the bucket's
  ``user_project``, the blob's generation, customer-supplied encryption key, KMS key name,
  content type, custom and other writable metadata; generation/metageneration
  preconditions go in the query string of every request, as google-cloud-storage sends
  them.
- The bytes move through :mod:`resumable_media.parallel` (ranged parallel download with
  CRC32C, pipelined resumable upload whose final chunk carries ``x-goog-hash``), so a
  corrupted download raises ``DataCorruption`` and leaves no destination file.
- A failed request surfaces as the ``google.api_core.exceptions`` class
  google-cloud-storage would raise (``NotFound``, ``PreconditionFailed``, …), naming the
  object.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import os
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from resumable_media import common, transports
from resumable_media._transport import DEFAULT_RETRY
from resumable_media.parallel import ParallelDownload, PipelinedUpload, TransferResult
from resumable_media.parallel.plan import DEFAULT_CHUNK_SIZE
from resumable_media.parallel.progress import ProgressCallback

__all__ = [
    "DEFAULT_UPLOAD_CHUNK_SIZE",
    "CredentialsFactory",
    "client_factory",
    "download_blob",
    "download_many",
    "upload_blob",
    "upload_many",
]

DEFAULT_UPLOAD_CHUNK_SIZE = 16 * 2**20
"""int: Bytes per resumable-upload request (two such buffers are held while uploading)."""

_PRECONDITIONS = (
    ("if_generation_match", "ifGenerationMatch"),
    ("if_generation_not_match", "ifGenerationNotMatch"),
    ("if_metageneration_match", "ifMetagenerationMatch"),
    ("if_metageneration_not_match", "ifMetagenerationNotMatch"),
)


@dataclasses.dataclass(frozen=True, eq=False)
class CredentialsFactory:
    """Builds an ``AuthorizedSession`` from given credentials, with a large pool.

    Picklable when the credentials are (service-account and user credentials are), so it
    also serves worker processes; with the default ``processes=0`` it never leaves this
    process.

    Attributes:
        credentials: ``google.auth`` credentials (e.g. ``client._credentials``).
        headers: Extra headers sent with every request (the client's ``extra_headers``).
        pool_size: Connections kept per host.
    """

    credentials: Any
    headers: tuple[tuple[str, str], ...] = ()
    pool_size: int = transports.DEFAULT_POOL_SIZE

    def __call__(self) -> Any:
        """Return a new authorized session."""
        import google.auth.transport.requests

        session = google.auth.transport.requests.AuthorizedSession(self.credentials)  # type: ignore[no-untyped-call]
        transports._mount(session, self.pool_size)
        session.headers.update(dict(self.headers))
        return session


@dataclasses.dataclass(frozen=True, eq=False)
class _HeaderedAnonymous:
    headers: tuple[tuple[str, str], ...]
    pool_size: int = transports.DEFAULT_POOL_SIZE

    def __call__(self) -> Any:
        session = transports.anonymous(self.pool_size)()
        session.headers.update(dict(self.headers))
        return session


def client_factory(client: Any) -> Callable[[], Any]:
    """The transport factory for a ``google.cloud.storage.Client``.

    Anonymous when the client talks to an emulator (``STORAGE_EMULATOR_HOST``) or holds
    ``AnonymousCredentials``; otherwise sessions authorized with the client's credentials.

    Args:
        client: The client.

    Returns:
        A zero-argument factory of sessions.
    """
    from google.auth.credentials import AnonymousCredentials

    extra = tuple(
        (str(k), str(v)) for k, v in (getattr(client, "_extra_headers", None) or {}).items()
    )
    credentials = getattr(client, "_credentials", None)
    if (
        getattr(client, "_is_emulator_set", False)
        or credentials is None
        or isinstance(credentials, AnonymousCredentials)
    ):
        return _HeaderedAnonymous(extra) if extra else transports.anonymous()
    return CredentialsFactory(credentials, extra)


def _client(blob: Any, client: Any) -> Any:
    client = client if client is not None else blob.client
    if client is None:
        raise ValueError(
            f"the blob gs://{blob.bucket.name}/{blob.name} has no client: create its bucket "
            "with a google.cloud.storage.Client, or pass client="
        )
    return client


def _encryption_headers(blob: Any) -> dict[str, str]:
    from google.cloud.storage.blob import _get_encryption_headers

    return {str(k): str(v) for k, v in _get_encryption_headers(blob._encryption_key).items()}


def _preconditions(options: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for option, parameter in _PRECONDITIONS:
        value = options.pop(option, None)
        if value is not None:
            pairs.append((parameter, str(int(value))))
    return pairs


def _with_query(url: str, pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urllib.parse.urlencode(pairs)}"


def _target(blob: Any) -> str:
    return f"gs://{blob.bucket.name}/{blob.name}"


def _translate(exc: Exception, blob: Any) -> Exception:
    """The google-cloud-storage exception for a failed request, naming the object."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(exc, common.InvalidResponse) or status is None:
        return exc
    from google.api_core import exceptions as api_exceptions

    try:
        message = str(response.json()["error"]["message"])  # type: ignore[union-attr]
    except Exception:
        message = ""
    text = f"{_target(blob)}: HTTP {status}" + (f": {message}" if message else "")
    error: Exception = api_exceptions.from_http_status(status, text, response=response)  # type: ignore[no-untyped-call]
    return error


def download_blob(
    blob: Any,
    filename_or_stream: str | os.PathLike[str] | Any,
    *,
    client: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    processes: int | None = None,
    threads_per_process: int | None = None,
    checksum: common.Checksum = "crc32c",
    start: int | None = None,
    end: int | None = None,
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
    **preconditions: int | None,
) -> TransferResult:
    """Download ``blob`` with parallel ranged reads, verified by CRC32C.

    Args:
        blob: A ``google.cloud.storage.Blob`` (its generation, encryption key and bucket's
            ``user_project`` are used).
        filename_or_stream: A path (written only once the bytes verified), or a writable
            binary stream (filled in order; see :func:`resumable_media.open`).
        client: The client to use instead of the blob's.
        chunk_size: Bytes per ranged GET.
        processes: Worker processes (0 or None: threads of this process).
        threads_per_process: Connections per process.
        checksum: "crc32c" (default), "md5", "auto" or None.
        start: First byte (a partial download is not checked against the object's hash).
        end: Last byte, inclusive.
        progress: ``progress(bytes_done, total)`` (see :mod:`resumable_media.callbacks`).
        retry: The retry policy (default: a fresh default strategy; None: one attempt).
        **preconditions: ``if_generation_match``, ``if_generation_not_match``,
            ``if_metageneration_match``, ``if_metageneration_not_match``.

    Returns:
        What was transferred (``verified`` True when the hash matched).

    Raises:
        google.api_core.exceptions.NotFound: No such object (or generation).
        google.api_core.exceptions.PreconditionFailed: A precondition did not hold.
        DataCorruption: The bytes do not match the object's hash (no file is left).
        TypeError: An unknown keyword argument.
    """
    options = dict(preconditions)
    pairs = _preconditions(options)
    if options:
        raise TypeError(
            "download_blob got unexpected keyword arguments: " + ", ".join(sorted(options))
        )
    client = _client(blob, client)
    url = _with_query(blob._get_download_url(client), pairs)
    headers = _encryption_headers(blob)
    factory = client_factory(client)
    try:
        download = ParallelDownload(
            url,
            filename_or_stream,
            chunk_size=chunk_size,
            processes=processes,
            threads_per_process=threads_per_process,
            checksum=checksum,
            headers=headers,
            start=start,
            end=end,
            retry=retry,
        )
        return download.consume(factory, progress=progress)
    except common.InvalidResponse as exc:
        raise _translate(exc, blob) from exc


def _upload_url(blob: Any, client: Any, pairs: list[tuple[str, str]], acl: str | None) -> str:
    base = str(client._connection.API_BASE_URL).rstrip("/")
    bucket = urllib.parse.quote(blob.bucket.name, safe="")
    query: list[tuple[str, str]] = [("uploadType", "resumable")]
    if blob.user_project is not None:
        query.append(("userProject", str(blob.user_project)))
    kms = blob.kms_key_name
    if kms is not None and "cryptoKeyVersions" not in kms:
        query.append(("kmsKeyName", str(kms)))
    if acl is not None:
        query.append(("predefinedAcl", acl))
    query.extend(pairs)
    return f"{base}/upload/storage/v1/b/{bucket}/o?{urllib.parse.urlencode(query)}"


def upload_blob(
    blob: Any,
    filename_or_stream: str | os.PathLike[str] | Any,
    *,
    client: Any = None,
    content_type: str | None = None,
    predefined_acl: str | None = None,
    chunk_size: int = DEFAULT_UPLOAD_CHUNK_SIZE,
    checksum: common.Checksum = "crc32c",
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
    **preconditions: int | None,
) -> TransferResult:
    """Upload a file or stream to ``blob`` with a pipelined resumable upload.

    The next chunk is read and hashed while the current one is sent; the final request
    carries the CRC32C of every byte (``x-goog-hash``), so the server refuses data that
    does not match, and the final object is checked again here.  On success the blob's
    properties are set from the new object (``blob.generation``, ``blob.crc32c``, …).

    Args:
        blob: The destination ``google.cloud.storage.Blob``; its ``content_type``,
            ``metadata`` and other changed writable fields, ``kms_key_name`` and encryption
            key are used, and its bucket's ``user_project``.
        filename_or_stream: A path, or a readable binary stream (read from its position to
            EOF; it need not be seekable).
        client: The client to use instead of the blob's.
        content_type: Overrides the blob's (default: the blob's, guessed from the
            filename, else ``application/octet-stream``).
        predefined_acl: e.g. ``"publicRead"``.
        chunk_size: Bytes per request (a multiple of 256 KiB).
        checksum: "crc32c" (default), "md5", "both", "auto" or None.
        progress: ``progress(bytes_done, total_or_None)``.
        retry: The retry policy (default: a fresh default strategy; None: one attempt).
        **preconditions: ``if_generation_match`` (0: only if the object does not exist),
            ``if_generation_not_match``, ``if_metageneration_match``,
            ``if_metageneration_not_match``.

    Returns:
        The verified result (``response`` holds the object resource).

    Raises:
        google.api_core.exceptions.PreconditionFailed: A precondition did not hold.
        DataCorruption: The stored object's size or hash differs from what was sent.
        TypeError: An unknown keyword argument.
    """
    options = dict(preconditions)
    pairs = _preconditions(options)
    if options:
        raise TypeError(
            "upload_blob got unexpected keyword arguments: " + ", ".join(sorted(options))
        )
    client = _client(blob, client)
    filename = (
        os.fspath(filename_or_stream)
        if isinstance(filename_or_stream, (str, os.PathLike))
        else None
    )
    content_type = blob._get_content_type(content_type, filename=filename)
    metadata = dict(blob._get_writable_metadata())
    metadata["contentType"] = content_type
    headers = _encryption_headers(blob)
    upload = PipelinedUpload(
        _upload_url(blob, client, pairs, predefined_acl),
        chunk_size,
        checksum=checksum,
        headers=headers,
        retry=retry,
        single_request=False,
    )
    try:
        result = upload.transmit(
            client_factory(client), filename_or_stream, metadata, content_type, progress=progress
        )
    except common.InvalidResponse as exc:
        raise _translate(exc, blob) from exc
    if isinstance(result.response, dict):
        blob._set_properties(result.response)
    return result


def _many(
    run: Callable[..., TransferResult],
    pairs: Iterable[tuple[Any, Any]],
    max_workers: int,
    raise_exception: bool,
    options: dict[str, Any],
) -> list[TransferResult | BaseException]:
    work = list(pairs)
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as executor:
        futures = [executor.submit(run, blob, target, **options) for blob, target in work]
        results: list[TransferResult | BaseException] = []
        for future in futures:
            error = future.exception()
            if error is not None and raise_exception:
                for other in futures:
                    other.cancel()
                raise error
            results.append(error if error is not None else future.result())
    return results


def download_many(
    blob_destination_pairs: Iterable[tuple[Any, str | os.PathLike[str] | io.IOBase]],
    *,
    max_workers: int = 4,
    raise_exception: bool = False,
    **options: Any,
) -> list[TransferResult | BaseException]:
    """Download several blobs, ``max_workers`` at a time (each as :func:`download_blob`).

    Args:
        blob_destination_pairs: ``(blob, filename_or_stream)`` pairs.
        max_workers: Downloads running at once.
        raise_exception: Raise the first failure instead of returning it in its place.
        **options: Passed to :func:`download_blob` for every blob.

    Returns:
        One entry per pair, in order: the result, or the exception that download raised.
    """
    return _many(download_blob, blob_destination_pairs, max_workers, raise_exception, options)


def upload_many(
    blob_source_pairs: Iterable[tuple[Any, str | os.PathLike[str] | io.IOBase]],
    *,
    max_workers: int = 4,
    raise_exception: bool = False,
    **options: Any,
) -> list[TransferResult | BaseException]:
    """Upload several files or streams, ``max_workers`` at a time (each as
    :func:`upload_blob`).

    Args:
        blob_source_pairs: ``(blob, filename_or_stream)`` pairs.
        max_workers: Uploads running at once.
        raise_exception: Raise the first failure instead of returning it in its place.
        **options: Passed to :func:`upload_blob` for every blob.

    Returns:
        One entry per pair, in order: the result, or the exception that upload raised.
    """
    return _many(upload_blob, blob_source_pairs, max_workers, raise_exception, options)
