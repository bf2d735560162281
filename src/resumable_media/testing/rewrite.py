"""Server-side copies of the loopback server: ``objects.copy`` and ``objects.rewrite``.

Invariants: bytes move file to file in the kernel (``copy_file_range``) in bounded steps and
are never held in memory; a rewrite keeps its source generation open from the first call, so
a later overwrite of the source cannot change what is copied; the copy keeps the source's
CRC32C and MD5 (identical bytes) instead of re-reading them; the destination appears only
when the last step publishes it, under the destination preconditions.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .store import KnownHashes, ObjectMeta, Preconditions, StoredObject, StoreError, int_param

if TYPE_CHECKING:  # state.py holds a RewriteJobs, so only the type is imported here
    from .state import ServerState

__all__ = ["RewriteJobs", "source_preconditions"]

REWRITE_UNIT = 1 << 20
"""``maxBytesRewrittenPerCall`` must be a multiple of this (as on GCS)."""


def source_preconditions(query: Mapping[str, str]) -> Preconditions:
    """The ``ifSource*`` preconditions of a copy or rewrite."""
    return Preconditions(
        if_generation_match=int_param(query, "ifSourceGenerationMatch"),
        if_generation_not_match=int_param(query, "ifSourceGenerationNotMatch"),
        if_metageneration_match=int_param(query, "ifSourceMetagenerationMatch"),
        if_metageneration_not_match=int_param(query, "ifSourceMetagenerationNotMatch"),
    )


def destination_meta(source: StoredObject, body: Mapping[str, Any]) -> ObjectMeta:
    """The destination's metadata: the body's writable fields when it has any, else the source's."""
    return ObjectMeta.from_fields(body) if body else source.meta


@dataclasses.dataclass
class _Job:
    source: StoredObject
    reader: io.BufferedReader
    temp: pathlib.Path
    dest: tuple[str, str]
    copied: int = 0


class RewriteJobs:
    """Rewrites in progress, keyed by their ``rewriteToken``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self.default_step: int | None = None
        """Bytes per call when the request sets no ``maxBytesRewrittenPerCall`` (None: all)."""

    def step(
        self,
        state: ServerState,
        source: tuple[str, str, int | None],
        dest: tuple[str, str],
        query: Mapping[str, str],
        body: Mapping[str, Any],
        base_url: str,
    ) -> dict[str, Any]:
        """Run one ``objects.rewrite`` call and return its ``storage#rewriteResponse``.

        Args:
            state: The server state (store and ``open_object``).
            source: Source bucket, name and optional ``sourceGeneration``.
            dest: Destination bucket and name.
            query: The request's query (token, limits, preconditions).
            body: The destination metadata override (may be empty).
            base_url: The server's base URL, for the links of the resource.

        Raises:
            StoreError: 404 for a missing source or destination bucket or an unknown token,
                400 for a bad limit, 412 for failed preconditions.
        """
        limit = int_param(query, "maxBytesRewrittenPerCall")
        if limit is not None and (limit <= 0 or limit % REWRITE_UNIT):
            raise StoreError(
                400, "maxBytesRewrittenPerCall must be a positive multiple of 1048576."
            )
        limit = limit or self.default_step
        token = query.get("rewriteToken") or None
        job = self._resume(token, dest) if token else self._start(state, source, dest, query)
        obj = self._advance(state, job, token, limit, query, body)
        if obj is None:
            token = token or secrets.token_urlsafe(24)
            with self._lock:
                self._jobs[token] = job
            return self._response(job, done=False, token=token)
        response = self._response(job, done=True, token=None)
        response["resource"] = obj.resource(base_url)
        return response

    def copy(
        self,
        state: ServerState,
        source: tuple[str, str, int | None],
        dest: tuple[str, str],
        query: Mapping[str, str],
        body: Mapping[str, Any],
    ) -> StoredObject:
        """``objects.copy``: the whole object in one call (a rewrite with no step limit)."""
        job = self._start(state, source, dest, query)
        obj = self._advance(state, job, None, None, query, body)
        assert obj is not None  # no limit: the first step copies everything
        return obj

    def _advance(
        self,
        state: ServerState,
        job: _Job,
        token: str | None,
        limit: int | None,
        query: Mapping[str, str],
        body: Mapping[str, Any],
    ) -> StoredObject | None:
        """Copy the next ``limit`` bytes (None: the rest); publish and return the object when
        the copy is complete, else None.  A failed step forgets the job and its file."""
        remaining = job.source.size - job.copied
        try:
            self._copy(job, remaining if limit is None else min(limit, remaining))
        except BaseException:
            self._forget(token)
            self._discard(job)
            raise
        if job.copied < job.source.size:
            return None
        self._forget(token)
        job.reader.close()
        return self._publish(state, job, query, body)  # removes the temp file if it fails

    def _forget(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._jobs.pop(token, None)

    def _start(
        self,
        state: ServerState,
        source: tuple[str, str, int | None],
        dest: tuple[str, str],
        query: Mapping[str, str],
    ) -> _Job:
        state.store.get_bucket(dest[0])
        obj, reader = state.open_object(*source)
        try:
            source_preconditions(query).check(obj)
            # Destination preconditions are checked now (fail fast) and again at publish.
            Preconditions.from_query(query).check(state.store.peek(*dest))
        except BaseException:
            reader.close()
            raise
        temp = state.store.new_temp()
        temp.touch(mode=0o600)
        return _Job(obj, reader, temp, dest)

    def _resume(self, token: str, dest: tuple[str, str]) -> _Job:
        with self._lock:
            job = self._jobs.get(token)
        if job is None or job.dest != dest:
            raise StoreError(404, "The rewrite token is not valid for this rewrite.", "notFound")
        return job

    @staticmethod
    def _copy(job: _Job, count: int) -> None:
        from .xmlapi import _copy_all  # xmlapi imports state, which holds RewriteJobs

        target = os.open(job.temp, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.lseek(target, job.copied, os.SEEK_SET)
            _copy_all(job.reader.fileno(), job.copied, target, count)
        finally:
            os.close(target)
        job.copied += count

    @staticmethod
    def _publish(
        state: ServerState, job: _Job, query: Mapping[str, str], body: Mapping[str, Any]
    ) -> StoredObject:
        return state.store.publish(
            job.dest[0],
            job.dest[1],
            job.temp,
            KnownHashes.of(job.source),
            destination_meta(job.source, body),
            Preconditions.from_query(query),
        )

    @staticmethod
    def _response(job: _Job, *, done: bool, token: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "storage#rewriteResponse",
            "totalBytesRewritten": str(job.copied),
            "objectSize": str(job.source.size),
            "done": done,
        }
        if token:
            doc["rewriteToken"] = token
        return doc

    @staticmethod
    def _discard(job: _Job) -> None:
        job.reader.close()
        job.temp.unlink(missing_ok=True)
