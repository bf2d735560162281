# The server side of a benchmark run: seeding the object, checking uploads, cleanup.
#
# Invariants: both server kinds answer the same three questions (put, stored bytes,
# delete) so the runner treats them alike; the embedded server runs in its own
# process (never the harness's GIL) and is always stopped by close(); no request
# here is timed -- this is set-up and verification only.
"""Embedded (child-process) and remote benchmark servers behind one small interface."""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import IO, Any, Protocol

import requests

from resumable_media._bench.serverproc import MARKER

__all__ = ["BenchServer", "EmbeddedServer", "RemoteServer", "child_env"]

_log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0


def child_env() -> dict[str, str]:
    """Return the environment for harness child processes.

    Loopback traffic must never go through a proxy, and children must import this
    same copy of resumable_media even when it is not installed.
    """
    env = dict(os.environ)
    loopback = "127.0.0.1,localhost"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{loopback}" if env.get(key) else loopback
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


class BenchServer(Protocol):
    """What the runner needs from a server."""

    endpoint: str
    tls_endpoint: str  # the same store over HTTPS, or "" when there is no such listener
    pid: int | None  # the server's process, when it runs on this machine under our control

    def put(self, bucket: str, name: str, path: Path) -> dict[str, Any]:
        """Create ``bucket`` if needed and store the file at ``path`` as object ``name``."""

    def put_many(self, bucket: str, prefix: str, folder: Path, names: list[str]) -> None:
        """Store every file ``folder/name`` as object ``prefix + name``."""

    def stored(self, bucket: str, name: str) -> dict[str, int] | None:
        """Return ``{"size", "crc32c"}`` of the stored object, or None if it does not exist."""

    def stored_many(self, bucket: str, prefix: str) -> dict[str, tuple[int, int]]:
        """Return ``{name: (size, crc32c)}`` of every object whose name starts with ``prefix``."""

    def delete(self, bucket: str, name: str) -> None:
        """Delete the object if it exists (best effort; frees disk between runs)."""

    def delete_many(self, bucket: str, prefix: str) -> None:
        """Delete every object whose name starts with ``prefix`` (best effort)."""

    def close(self) -> None:
        """Release the server (stop it when the harness started it)."""


def _object_url(endpoint: str, bucket: str, name: str) -> str:
    return f"{endpoint}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}"


def _delete(session: requests.Session, endpoint: str, bucket: str, name: str) -> None:
    response = session.delete(_object_url(endpoint, bucket, name), timeout=60)
    if response.status_code not in (200, 204, 404):
        _log.warning("could not delete %s/%s: HTTP %s", bucket, name, response.status_code)


class EmbeddedServer:
    """The project's loopback server in a child process, storing objects under ``root``."""

    def __init__(
        self,
        root: Path,
        log_path: Path,
        *,
        network: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """Start the server process and wait for its endpoint.

        Args:
            root: Directory for the stored objects.
            log_path: Where the server's stderr goes.
            network: Shaped-network profile (``lan``, ``region``, ``wan``), or None.
            tls: (certificate, key) files: also listen with HTTPS on the same store.

        Raises:
            RuntimeError: If the server does not start (the message includes its log).
        """
        root.mkdir(parents=True, exist_ok=True)
        self._log_path = log_path
        self._log_file = open(log_path, "wb")  # noqa: SIM115 -- closed in close()
        self._session = requests.Session()
        command = [sys.executable, "-m", "resumable_media._bench.serverproc", str(root)]
        if network:
            command += ["--network", network]
        if tls is not None:
            command += ["--tls", str(tls[0]), str(tls[1])]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            env=child_env(),
        )
        self.pid: int | None = self._proc.pid
        self._replies: queue.Queue[str | None] = queue.Queue()
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._pump, args=(self._proc.stdout,), name="bench-server-reader", daemon=True
        )
        self._reader.start()
        try:
            hello = self._read_reply(_START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        self.endpoint: str = hello["endpoint"]
        self.tls_endpoint: str = hello.get("tls_endpoint") or ""

    def _pump(self, stdout: IO[str]) -> None:
        # A reader thread, so a reply that arrives together with stray output is never
        # stranded in a buffer that select() cannot see.
        for line in stdout:
            if line.startswith(MARKER + " "):
                self._replies.put(line[len(MARKER) + 1 :])
        self._replies.put(None)

    def _read_reply(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            line = None
        if line is None:
            self._log_file.flush()
            tail = self._log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"the embedded benchmark server did not answer (exit status "
                f"{self._proc.poll()}); its log ends with:\n{tail}"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _command(self, timeout_s: float, **command: Any) -> dict[str, Any]:
        stdin = self._proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        reply = self._read_reply(timeout_s)
        if not reply.get("ok"):
            raise RuntimeError(f"benchmark server {command['op']} failed: {reply.get('error')}")
        return reply

    def put(self, bucket: str, name: str, path: Path) -> dict[str, Any]:
        """Store the file through the server's ``put_object`` (no HTTP)."""
        reply = self._command(3600.0, op="put", bucket=bucket, name=name, path=str(path))
        resource: dict[str, Any] = reply["resource"]
        return resource

    def put_many(self, bucket: str, prefix: str, folder: Path, names: list[str]) -> None:
        """Store the files through the server's ``put_object`` (no HTTP)."""
        self._command(
            3600.0, op="put_many", bucket=bucket, prefix=prefix, dir=str(folder), names=names
        )

    def stored(self, bucket: str, name: str) -> dict[str, int] | None:
        """Hash the stored file inside the server process (independent of its metadata)."""
        reply = self._command(600.0, op="stat", bucket=bucket, name=name)
        stored: dict[str, int] | None = reply["stored"]
        return stored

    def stored_many(self, bucket: str, prefix: str) -> dict[str, tuple[int, int]]:
        """Hash every stored file under ``prefix`` inside the server process."""
        reply = self._command(600.0, op="stat_many", bucket=bucket, prefix=prefix)
        return {name: (int(size), int(crc)) for name, (size, crc) in reply["stored"].items()}

    def delete(self, bucket: str, name: str) -> None:
        """Delete through the JSON API."""
        _delete(self._session, self.endpoint, bucket, name)

    def delete_many(self, bucket: str, prefix: str) -> None:
        """Delete in the server process (no shaped round trip per object)."""
        self._command(600.0, op="delete_many", bucket=bucket, prefix=prefix)

    def close(self) -> None:
        """Stop the server process (EOF, then terminate, then kill) and close its log."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._session.close()
        self._log_file.close()


class RemoteServer:
    """A server someone else runs (any GCS JSON API emulator), used over HTTP only."""

    def __init__(self, endpoint: str) -> None:
        """Use the server at ``endpoint`` (e.g. ``http://127.0.0.1:9000``)."""
        self.endpoint = endpoint.rstrip("/")
        self.tls_endpoint = ""
        self.pid: int | None = None
        self._session = requests.Session()

    def put(self, bucket: str, name: str, path: Path) -> dict[str, Any]:
        """Create the bucket (if needed) and upload the file with a media upload."""
        created = self._session.post(
            f"{self.endpoint}/storage/v1/b", params={"project": "bench"}, json={"name": bucket}
        )
        if created.status_code not in (200, 409):
            created.raise_for_status()
        with open(path, "rb") as source:
            response = self._session.post(
                f"{self.endpoint}/upload/storage/v1/b/{bucket}/o",
                params={"uploadType": "media", "name": name},
                data=source,
                headers={"Content-Type": "application/octet-stream"},
            )
        response.raise_for_status()
        resource: dict[str, Any] = response.json()
        return resource

    def put_many(self, bucket: str, prefix: str, folder: Path, names: list[str]) -> None:
        """Upload every file with a media upload."""
        for item in names:
            self.put(bucket, prefix + item, folder / item)

    def _listing(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            params = {"prefix": prefix, **({"pageToken": token} if token else {})}
            response = self._session.get(
                f"{self.endpoint}/storage/v1/b/{bucket}/o", params=params, timeout=60
            )
            response.raise_for_status()
            page = response.json()
            items += page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def stored_many(self, bucket: str, prefix: str) -> dict[str, tuple[int, int]]:
        """Read sizes and crc32c values from the listing's metadata."""
        return {
            meta["name"]: (
                int(meta["size"]),
                int.from_bytes(base64.b64decode(meta["crc32c"]), "big"),
            )
            for meta in self._listing(bucket, prefix)
        }

    def delete_many(self, bucket: str, prefix: str) -> None:
        """Delete every listed object through the JSON API."""
        for meta in self._listing(bucket, prefix):
            _delete(self._session, self.endpoint, bucket, meta["name"])

    def stored(self, bucket: str, name: str) -> dict[str, int] | None:
        """Read size and crc32c from the object's metadata."""
        response = self._session.get(_object_url(self.endpoint, bucket, name), timeout=60)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        meta = response.json()
        crc = int.from_bytes(base64.b64decode(meta["crc32c"]), "big")
        return {"size": int(meta["size"]), "crc32c": crc}

    def delete(self, bucket: str, name: str) -> None:
        """Delete through the JSON API."""
        _delete(self._session, self.endpoint, bucket, name)

    def close(self) -> None:
        """Close the HTTP session (the server itself is not ours to stop)."""
        self._session.close()
