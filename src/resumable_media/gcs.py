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
  CRC32C; for a large file whose options the XML API carries, a parallel XML multipart
  upload whose combined part CRC32C is compared with the object's; else a pipelined
  resumable upload whose final chunk carries ``x-goog-hash``), so a corrupted download
  raises ``DataCorruption`` and leaves no destination file.
- A failed request surfaces as the ``google.api_core.exceptions`` class
  google-cloud-storage would raise (``NotFound``, ``PreconditionFailed``, …), naming the
  object.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import logging
import os
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from resumable_media import common, transports
from resumable_media._protocol.request import RequestSpec
from resumable_media._transport import DEFAULT_RETRY, DEFAULT_TIMEOUT, round_trip
from resumable_media.parallel import (
    ParallelDownload,
    ParallelUpload,
    PipelinedUpload,
    TransferResult,
)
from resumable_media.parallel.plan import DEFAULT_CHUNK_SIZE, DEFAULT_PART_SIZE
from resumable_media.parallel.progress import ProgressCallback

__all__ = [
    "DEFAULT_UPLOAD_CHUNK_SIZE",
    "PARALLEL_UPLOAD_THRESHOLD",
    "BatchTransfer",
    "CredentialsFactory",
    "client_factory",
    "download_blob",
    "download_many",
    "parallel_upload_blocker",
    "upload_blob",
    "upload_many",
]

DEFAULT_UPLOAD_CHUNK_SIZE = 16 * 2**20
"""int: Bytes per resumable-upload request (two such buffers are held while uploading)."""

PARALLEL_UPLOAD_THRESHOLD = 64 * 2**20
"""int: Files at least this large go up as a parallel XML multipart upload (when the
object's options allow it: :func:`parallel_upload_blocker`)."""

_LOGGER = logging.getLogger(__name__)

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


def _preconditions(function: str, given: dict[str, Any]) -> list[tuple[str, str]]:
    """The query pairs of the ``if_generation_match``-style keywords given to ``function``.

    Raises:
        TypeError: A keyword that is not a precondition.
    """
    options = dict(given)
    pairs = []
    for option, parameter in _PRECONDITIONS:
        value = options.pop(option, None)
        if value is not None:
            pairs.append((parameter, str(int(value))))
    if options:
        raise TypeError(
            f"{function} got unexpected keyword arguments: " + ", ".join(sorted(options))
        )
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
    pairs = _preconditions("download_blob", preconditions)
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


def _base_and_bucket(blob: Any, client: Any) -> tuple[str, str]:
    """The client's API base URL and the blob's bucket name, quoted for a URL path."""
    base = str(client._connection.API_BASE_URL).rstrip("/")
    return base, urllib.parse.quote(blob.bucket.name, safe="")


def _upload_url(blob: Any, client: Any, pairs: list[tuple[str, str]], acl: str | None) -> str:
    base, bucket = _base_and_bucket(blob, client)
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


_XML_FIELDS = frozenset({"name", "contentType", "metadata"})
"""Writable object fields the parallel XML multipart upload carries (``Content-Type`` and
``x-goog-meta-*`` on its initiate request); any other one sends the upload to JSON."""


def _header_safe(text: str) -> bool:
    return text.isascii() and text.isprintable()


def parallel_upload_blocker(
    blob: Any,
    metadata: dict[str, Any],
    *,
    filename: str | None,
    preconditions: Sequence[tuple[str, str]] = (),
    predefined_acl: str | None = None,
    checksum: common.Checksum = "crc32c",
    threshold: int = PARALLEL_UPLOAD_THRESHOLD,
) -> str | None:
    """Why :func:`upload_blob` cannot use the parallel XML multipart upload, or None.

    Args:
        blob: The destination blob.
        metadata: The object resource to be written (``blob._get_writable_metadata()``
            plus ``contentType``).
        filename: The source file, or None for a stream.
        preconditions: The ``(ifGenerationMatch, value)``-style query pairs.
        predefined_acl: The ``predefinedAcl`` asked for.
        checksum: The checksum asked for.
        threshold: The smallest file sent in parallel.

    Returns:
        A short reason (for the debug log), or None when the file may go in parallel.
    """
    if filename is None:
        return "the source is a stream"
    if not os.path.isfile(filename):
        return "the source is not a regular file"
    if os.path.getsize(filename) < threshold:
        return "the file is smaller than the parallel threshold"
    if checksum not in ("crc32c", "auto", None):
        return "multipart objects carry no MD5"
    if preconditions:
        return "a precondition is given (checked by the JSON API's resumable upload)"
    if predefined_acl is not None:
        return "a predefined ACL is given"
    if blob.kms_key_name is not None:
        return "a KMS key name is given"
    extra = sorted(set(metadata) - _XML_FIELDS)
    if extra:
        return "the object has fields the XML initiate does not carry: " + ", ".join(extra)
    custom = metadata.get("metadata") or {}
    if not all(_header_safe(str(k)) and _header_safe(str(v)) for k, v in custom.items()):
        return "custom metadata that is not printable ASCII"
    if not _header_safe(str(metadata.get("contentType", ""))):
        return "a content type that is not printable ASCII"
    return None


def _xml_url(blob: Any, client: Any) -> str:
    base, bucket = _base_and_bucket(blob, client)
    return f"{base}/{bucket}/{urllib.parse.quote(blob.name, safe='/')}"


def _object_resource(
    blob: Any,
    client: Any,
    factory: Callable[[], Any],
    generation: int | None,
    headers: dict[str, str],
    retry: common.RetryStrategy | None,
) -> dict[str, Any]:
    """The JSON resource of the object a parallel upload created (for ``blob``'s fields)."""
    base, bucket = _base_and_bucket(blob, client)
    name = urllib.parse.quote(blob.name, safe="")
    query: list[tuple[str, str]] = []
    if generation is not None:
        query.append(("generation", str(generation)))
    if blob.user_project is not None:
        query.append(("userProject", str(blob.user_project)))
    url = _with_query(f"{base}/storage/v1/b/{bucket}/o/{name}", query)

    def process(response: Any) -> None:
        if response.status_code != 200:
            raise common.InvalidResponse(
                response, "Request failed with status code", response.status_code
            )

    session = factory()
    try:
        response = round_trip(
            session, RequestSpec("GET", url, None, dict(headers)), DEFAULT_TIMEOUT, process, retry
        )
        resource: dict[str, Any] = response.json()
    finally:
        session.close()
    return resource


def upload_blob(
    blob: Any,
    filename_or_stream: str | os.PathLike[str] | Any,
    *,
    client: Any = None,
    content_type: str | None = None,
    predefined_acl: str | None = None,
    chunk_size: int = DEFAULT_UPLOAD_CHUNK_SIZE,
    part_size: int = DEFAULT_PART_SIZE,
    parallel_threshold: int = PARALLEL_UPLOAD_THRESHOLD,
    processes: int | None = None,
    threads_per_process: int | None = None,
    checksum: common.Checksum = "crc32c",
    progress: ProgressCallback | None = None,
    retry: common.RetryStrategy | None = DEFAULT_RETRY,
    **preconditions: int | None,
) -> TransferResult:
    """Upload a file or stream to ``blob``, in parallel parts when the object allows it.

    Which engine (see :func:`parallel_upload_blocker`):

    - A regular file of at least ``parallel_threshold`` bytes goes up as a parallel XML
      multipart upload (:class:`~resumable_media.parallel.ParallelUpload`: parts of
      ``part_size`` in flight at once, each part's CRC32C sent and the combined CRC32C
      compared with the object's), when everything asked for travels on the XML API:
      content type, custom metadata (printable ASCII), a customer-supplied encryption key
      (its ``x-goog-encryption-*`` headers go on every request) and the bucket's
      ``user_project`` (``x-goog-user-project``).
    - Everything else is a pipelined resumable upload on the JSON API
      (:class:`~resumable_media.parallel.PipelinedUpload`): a stream, a smaller file,
      ``checksum="md5"``/``"both"`` (multipart objects have no MD5), any precondition
      (the JSON API checks it when the object is created; the XML completion's
      ``x-goog-if-generation-match`` is not implemented by the loopback server, so it is
      not relied on), ``predefined_acl``, a KMS key name, and writable fields other than
      content type and custom metadata (cache control, content disposition, encoding,
      language, storage class, custom time, retention, …).

    The pipelined upload reads and hashes the next chunk while the current one is sent;
    its final request carries the CRC32C of every byte (``x-goog-hash``), so the server
    refuses data that does not match, and the final object is checked again here.  On
    success the blob's properties are set from the new object (``blob.generation``,
    ``blob.crc32c``, …).  A failed parallel upload is aborted (no object is created); one
    that completed but does not verify deletes that generation.

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
        chunk_size: Bytes per resumable request (a multiple of 256 KiB).
        part_size: Bytes per part of a parallel upload.
        parallel_threshold: The smallest file sent as a parallel upload (a larger value
            than the file's size turns it off).
        processes: Worker processes of a parallel upload (0: threads of this process;
            None: the default).
        threads_per_process: Parts in flight per process.
        checksum: "crc32c" (default), "md5", "both", "auto" or None.
        progress: ``progress(bytes_done, total_or_None)``.
        retry: The retry policy (default: a fresh default strategy; None: one attempt).
        **preconditions: ``if_generation_match`` (0: only if the object does not exist),
            ``if_generation_not_match``, ``if_metageneration_match``,
            ``if_metageneration_not_match``.

    Returns:
        The verified result (``resource`` holds the object resource).

    Raises:
        google.api_core.exceptions.PreconditionFailed: A precondition did not hold.
        DataCorruption: The stored object's size or hash differs from what was sent.
        TypeError: An unknown keyword argument.
    """
    pairs = _preconditions("upload_blob", preconditions)
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
    factory = client_factory(client)
    blocker = parallel_upload_blocker(
        blob,
        metadata,
        filename=filename,
        preconditions=pairs,
        predefined_acl=predefined_acl,
        checksum=checksum,
        threshold=parallel_threshold,
    )
    try:
        if blocker is None:
            assert filename is not None
            result = _upload_parallel(
                blob,
                client,
                factory,
                filename,
                metadata,
                headers,
                part_size=part_size,
                processes=processes,
                threads_per_process=threads_per_process,
                checksum=checksum,
                progress=progress,
                retry=retry,
            )
        else:
            _LOGGER.debug("%s: a pipelined resumable upload: %s", _target(blob), blocker)
            upload = PipelinedUpload(
                _upload_url(blob, client, pairs, predefined_acl),
                chunk_size,
                checksum=checksum,
                headers=headers,
                retry=retry,
                single_request=False,
            )
            result = upload.transmit(
                factory, filename_or_stream, metadata, content_type, progress=progress
            )
    except common.InvalidResponse as exc:
        raise _translate(exc, blob) from exc
    if result.resource is not None:
        blob._set_properties(result.resource)
    return result


def _upload_parallel(
    blob: Any,
    client: Any,
    factory: Callable[[], Any],
    filename: str,
    metadata: dict[str, Any],
    headers: dict[str, str],
    *,
    part_size: int,
    processes: int | None,
    threads_per_process: int | None,
    checksum: common.Checksum,
    progress: ProgressCallback | None,
    retry: common.RetryStrategy | None,
) -> TransferResult:
    xml_headers = dict(headers)
    if blob.user_project is not None:
        xml_headers["x-goog-user-project"] = str(blob.user_project)
    upload = ParallelUpload(
        _xml_url(blob, client),
        filename,
        part_size=part_size,
        processes=processes,
        threads_per_process=threads_per_process,
        checksum=checksum,
        headers=xml_headers,
        retry=retry,
    )
    custom = {str(k): str(v) for k, v in (metadata.get("metadata") or {}).items()}
    result = upload.transmit(
        factory, str(metadata["contentType"]), custom_metadata=custom, progress=progress
    )
    resource = _object_resource(blob, client, factory, result.generation, xml_headers, retry)
    return dataclasses.replace(result, resource=resource)


class BatchTransfer(Protocol):
    """The signature of :func:`download_many` and :func:`upload_many`."""

    def __call__(
        self,
        pairs: Iterable[tuple[Any, str | os.PathLike[str] | io.IOBase]],
        /,
        *,
        max_workers: int = 4,
        raise_exception: bool = False,
        **options: Any,
    ) -> list[TransferResult | BaseException]: ...


def _batch(run: Callable[..., TransferResult], name: str, doc: str) -> BatchTransfer:
    """``run`` over many ``(blob, target)`` pairs, ``max_workers`` at a time."""

    def many(
        pairs: Iterable[tuple[Any, Any]],
        /,
        *,
        max_workers: int = 4,
        raise_exception: bool = False,
        **options: Any,
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

    many.__name__ = many.__qualname__ = name
    many.__doc__ = doc.format(run=run.__name__)
    return many


_MANY_DOC = """{verb} several {what}, ``max_workers`` at a time (each as :func:`{{run}}`).

    Args:
        pairs: ``(blob, filename_or_stream)`` pairs (positional).
        max_workers: Transfers running at once.
        raise_exception: Raise the first failure instead of returning it in its place
            (the transfers not yet started are cancelled).
        **options: Passed to :func:`{{run}}` for every pair.

    Returns:
        One entry per pair, in order: the result, or the exception that transfer raised.

    Raises:
        ValueError: ``max_workers`` below 1.
"""

download_many = _batch(
    download_blob,
    "download_many",
    _MANY_DOC.format(verb="Download", what="blobs"),
)
upload_many = _batch(
    upload_blob,
    "upload_many",
    _MANY_DOC.format(verb="Upload", what="files or streams"),
)
