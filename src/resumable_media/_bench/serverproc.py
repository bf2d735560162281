# The embedded benchmark server, run in its own process.
#
# Invariants: the server never shares a process (or a GIL) with any client under
# test; every protocol line on stdout starts with MARKER so stray output cannot be
# mistaken for a reply; each command line on stdin gets exactly one reply line;
# EOF on stdin stops the server and ends the process.
"""Serve the loopback GCS server for the benchmark in its own process.

Usage: ``python -m resumable_media._bench.serverproc ROOT [--network NAME] [--tls CERT KEY]``.

``--network`` shapes every connection (``lan``, ``region``, ``wan``: see
``resumable_media.testing.network``). ``--tls`` adds a second, HTTPS listener on the same
store (for clients that speak only HTTPS, such as gsutil); both listeners see the same
objects and the same shaped network.

Protocol: the first stdout line is ``MARKER {"endpoint": URL, "tls_endpoint": URL | ""}``.
Each stdin line is a JSON command, answered by one ``MARKER {...}`` line:

- ``{"op": "put", "bucket": B, "name": N, "path": P}`` → ``{"ok": true, "resource": {...}}``
- ``{"op": "put_many", "bucket": B, "prefix": X, "dir": D, "names": [...]}`` → ``{"ok": true}``
  (stores each file ``D/name`` as object ``X + name``)
- ``{"op": "stat", "bucket": B, "name": N}`` → ``{"ok": true, "stored": {"size", "crc32c"} | null}``
  (size and CRC32C of the stored file, hashed here, independent of the server's metadata)
- ``{"op": "stat_many", "bucket": B, "prefix": X}`` → ``{"ok": true, "stored": {name: [size,
  crc32c]}}`` for every object whose name starts with X (hashed here likewise)
- ``{"op": "delete_many", "bucket": B, "prefix": X}`` → ``{"ok": true, "deleted": n}``
  (no HTTP, so no shaped round trip per object)
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
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
    if op == "put_many":
        server.create_bucket(bucket)
        folder, prefix = Path(command["dir"]), command["prefix"]
        for item in command["names"]:
            server.put_object(bucket, prefix + item, folder / item)
        return {"ok": True}
    if op == "stat":
        if not server.has_object(bucket, name):
            return {"ok": True, "stored": None}
        size, crc = file_crc32c(Path(server.object_path(bucket, name)))
        return {"ok": True, "stored": {"size": size, "crc32c": crc}}
    # The many-object ops read the store directly (the testing package's private state):
    # listing 2,000 objects over a shaped link would time the harness, not a client.
    store = server._state.store
    if op == "stat_many":
        found = {
            obj.name: list(file_crc32c(obj.path)) for obj in store.list(bucket, command["prefix"])
        }
        return {"ok": True, "stored": found}
    if op == "delete_many":
        from resumable_media.testing.store import Preconditions

        doomed = store.list(bucket, command["prefix"])
        for obj in doomed:
            store.delete(bucket, obj.name, Preconditions(), None)
        return {"ok": True, "deleted": len(doomed)}
    return {"ok": False, "error": f"unknown op {op!r}"}


def _tls_listener(server: Any, cert: str, key: str) -> Any:
    """A second listener, speaking HTTPS, on the same state and network as ``server``."""
    from resumable_media.testing.server import _HTTPServer

    httpd = _HTTPServer(("127.0.0.1", 0), server._state, server._httpd.network)
    httpd.idle_timeout_s = server._httpd.idle_timeout_s
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.tls = context
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd


def main(argv: list[str] | None = None) -> int:
    """Start the server on an ephemeral loopback port under ROOT and answer commands.

    Args:
        argv: ``[ROOT]``; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m resumable_media._bench.serverproc")
    parser.add_argument("root")
    parser.add_argument("--network", choices=("lan", "region", "wan"))
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from resumable_media.testing import GCSServer

    # upload_md5=False: uploads are verified by CRC32C only, so the upload cases measure the
    # clients rather than the server's single MD5 stream (~0.7 GB/s on the reference machine).
    # Downloads are unaffected: the seeded object carries both hashes.
    server = GCSServer(
        host="127.0.0.1", port=0, root=Path(args.root), upload_md5=False, network=args.network
    )
    server.start()
    tls = None
    try:
        tls_endpoint = ""
        if args.tls:
            tls = _tls_listener(server, *args.tls)
            tls_endpoint = f"https://127.0.0.1:{tls.server_address[1]}"
        _reply({"endpoint": server.endpoint, "tls_endpoint": tls_endpoint})
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                payload = _handle(server, json.loads(line))
            except Exception as exc:
                payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _reply(payload)
    finally:
        if tls is not None:
            tls.shutdown()
            tls.server_close()
            tls.close_connections()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
