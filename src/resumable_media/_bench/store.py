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
    pid: int | None  # the server's process, when it runs on this machine under our control

    def put(self, bucket: str, name: str, path: Path) -> dict[str, Any]:
        """Create ``bucket`` if needed and store the file at ``path`` as object ``name``."""

    def stored(self, bucket: str, name: str) -> dict[str, int] | None:
        """Return ``{"size", "crc32c"}`` of the stored object, or None if it does not exist."""

    def delete(self, bucket: str, name: str) -> None:
        """Delete the object if it exists (best effort; frees disk between runs)."""

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

    def __init__(self, root: Path, log_path: Path) -> None:
        """Start the server process and wait for its endpoint.

        Raises:
            RuntimeError: If the server does not start (the message includes its log).
        """
        root.mkdir(parents=True, exist_ok=True)
        self._log_path = log_path
        self._log_file = open(log_path, "wb")  # noqa: SIM115 -- closed in close()
        self._session = requests.Session()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "resumable_media._bench.serverproc", str(root)],
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
            self.endpoint: str = self._read_reply(_START_TIMEOUT_S)["endpoint"]
        except BaseException:
            self.close()
            raise

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

    def _command(self, timeout_s: float, **command: str) -> dict[str, Any]:
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

    def stored(self, bucket: str, name: str) -> dict[str, int] | None:
        """Hash the stored file inside the server process (independent of its metadata)."""
        reply = self._command(600.0, op="stat", bucket=bucket, name=name)
        stored: dict[str, int] | None = reply["stored"]
        return stored

    def delete(self, bucket: str, name: str) -> None:
        """Delete through the JSON API."""
        _delete(self._session, self.endpoint, bucket, name)

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
