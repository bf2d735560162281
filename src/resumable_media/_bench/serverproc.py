# The embedded benchmark server, run in its own process.
#
# Invariants: the server never shares a process (or a GIL) with any client under
# test; every protocol line on stdout starts with MARKER so stray output cannot be
# mistaken for a reply; each command line on stdin gets exactly one reply line;
# EOF on stdin stops the server and ends the process.
"""Serve the loopback GCS server for the benchmark in its own process.

Usage: ``python -m resumable_media._bench.serverproc ROOT``.

Protocol: the first stdout line is ``MARKER {"endpoint": URL}``. Each stdin line is a
JSON command, answered by one ``MARKER {...}`` line:

- ``{"op": "put", "bucket": B, "name": N, "path": P}`` → ``{"ok": true, "resource": {...}}``
- ``{"op": "stat", "bucket": B, "name": N}`` → ``{"ok": true, "stored": {"size", "crc32c"} | null}``
  (size and CRC32C of the stored file, hashed here, independent of the server's metadata)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MARKER = "BENCH-SERVER"
"""Prefix of every protocol line on stdout."""


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(f"{MARKER} {json.dumps(payload)}\n")
    sys.stdout.flush()


def _handle(server: Any, command: dict[str, Any]) -> dict[str, Any]:
    from resumable_media._bench.verify import file_crc32c

    op = command.get("op")
    bucket, name = command.get("bucket", ""), command.get("name", "")
    if op == "put":
        server.create_bucket(bucket)
        resource = server.put_object(bucket, name, Path(command["path"]))
        return {"ok": True, "resource": resource}
    if op == "stat":
        if not server.has_object(bucket, name):
            return {"ok": True, "stored": None}
        size, crc = file_crc32c(Path(server.object_path(bucket, name)))
        return {"ok": True, "stored": {"size": size, "crc32c": crc}}
    return {"ok": False, "error": f"unknown op {op!r}"}


def main(argv: list[str] | None = None) -> int:
    """Start the server on an ephemeral loopback port under ROOT and answer commands.

    Args:
        argv: ``[ROOT]``; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m resumable_media._bench.serverproc ROOT\n")
        return 2
    from resumable_media.testing import GCSServer

    # upload_md5=False: uploads are verified by CRC32C only, so the upload cases measure the
    # clients rather than the server's single MD5 stream (~0.7 GB/s on the reference machine).
    # Downloads are unaffected: the seeded object carries both hashes.
    server = GCSServer(host="127.0.0.1", port=0, root=Path(args[0]), upload_md5=False)
    server.start()
    try:
        _reply({"endpoint": server.endpoint})
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                payload = _handle(server, json.loads(line))
            except Exception as exc:
                payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _reply(payload)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
