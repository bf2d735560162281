"""The loopback GCS server: threaded HTTP/1.1 keep-alive listener and its public facade.

Invariants: one thread per connection (daemon threads), so parallel ranged downloads and
stalled connections never block each other; a handler never lets an exception escape into
``socketserver`` (peer disconnects close the connection quietly, bugs answer 500 and are logged);
``stop()`` closes the listener, and deletes the root only if the server created it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import pathlib
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .exchange import REASONS, BadRequest, ClientGone, Exchange, RequestRecord
from .network import Link, Network, NetworkProfile
from .routes import handle
from .state import ServerState
from .store import ObjectMeta, StoreError

logger = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    link: Link | None = None

    def setup(self) -> None:
        tls = self.server.tls
        if tls is not None:
            self.request.settimeout(30.0)  # a stuck handshake never pins the thread
            self.request = tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()
        network = self.server.network
        if network is not None:
            self.link = network.connect()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ClientGone, TimeoutError, OSError) as exc:
            logger.debug("connection ended: %r", exc)
            self.close_connection = True

    def _dispatch(self) -> None:
        state = self.server.state
        scheme = "https" if self.server.tls is not None else "http"
        ex = Exchange(self, state.record, scheme, link=self.link)
        try:
            handle(ex, state)
            if not ex.head_sent and ex.status == 0 and not self.close_connection:
                ex.error(500, "The server produced no response.", "backendError")
        except (StoreError, BadRequest) as exc:
            if ex.head_sent:
                self.close_connection = True
            else:
                status = exc.status if isinstance(exc, StoreError) else 400
                reason = exc.reason if isinstance(exc, StoreError) else "invalid"
                extra = exc.headers if isinstance(exc, StoreError) else ()
                ex.error(status, str(exc), reason, headers=extra)
        except (ClientGone, ConnectionError, TimeoutError) as exc:
            logger.debug("%s %s: client went away: %r", self.command, self.path, exc)
            self.close_connection = True
        except Exception:
            logger.exception("internal error handling %s %s", self.command, self.path)
            self.close_connection = True
            if not ex.head_sent:
                with contextlib.suppress(OSError):
                    ex.error(500, "Internal server error.", "backendError")
        finally:
            if not ex.body.finished:
                self.close_connection = True
            ex.log_record()
            logger.debug("%s %s -> %s", ex.method, ex.target, ex.status)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _dispatch

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, oversized headers) as GCS JSON."""
        self.close_connection = True
        text = message or REASONS.get(code, "Error")
        body = json.dumps(
            {"error": {"code": code, "message": text, "errors": [{"message": text}]}}
        ).encode()
        head = (
            f"HTTP/1.1 {code} {REASONS.get(code, 'Error')}\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            self.wfile.write(head.encode("latin-1") + body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def finish(self) -> None:
        super().finish()
        if self.server.tls is not None:
            with contextlib.suppress(OSError):
                self.request.close()  # the TLS socket took over the accepted one


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], state: ServerState, network: Network | None = None
    ) -> None:
        self.state = state
        self.network = network
        self.tls: ssl.SSLContext | None = None
        self.idle_timeout_s = 300.0
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # A kernel-level receive timeout keeps the socket blocking for os.sendfile, while a
        # silent client makes reads return nothing (treated as a vanished client).
        whole = int(self.idle_timeout_s)
        micros = int((self.idle_timeout_s - whole) * 1e6)
        with contextlib.suppress(OSError):
            request.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, micros)
            )
        with contextlib.suppress(OSError):
            # Small responses must not wait for the peer's delayed ACK (Nagle's algorithm).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (their handler threads then exit)."""
        with self._connections_lock:
            open_now = list(self._connections)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error on connection from %s", client_address, exc_info=True)


class PortInUseError(OSError):
    """The server's port is taken by another process (``errno`` is ``EADDRINUSE``)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on {host} is already in use: stop the process that holds it, "
            "or choose another port (0 picks a free one)",
        )
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


class GCSServer:
    """A GCS-compatible server on loopback, objects on disk.

    Args:
        host: address to bind.
        port: port to bind (0 = ephemeral).
        root: directory for object files; None = a temp dir removed on ``stop()``.
        idle_timeout_s: a connection whose client sends nothing for this long (mid-body or
            between requests) is closed, so a silent client never pins a thread forever.
        upload_md5: compute MD5 of uploaded media, as GCS does (default).  ``False`` is a
            benchmark mode: uploads are verified by CRC32C only and their objects carry no
            ``md5Hash`` (unless the client sent an MD5 to check), so upload benchmarks measure
            the client rather than the server's single MD5 stream (~0.7 GB/s).
        network: simulate a network link (see ``resumable_media.testing.network``): a preset
            name -- ``"lan"`` (0.2 ms, no caps), ``"region"`` (2 ms, 200 MB/s per connection,
            1.5 GB/s total) or ``"wan"`` (30 ms, 50 MB/s per connection, 1 GB/s total) -- or a
            ``NetworkProfile``.  The latency is added before each response's first byte and
            the caps apply to request and response bodies, per direction.  None (the
            default): loopback as it is, at no cost.
        tls: ``(certfile, keyfile)`` to serve HTTPS (for clients that insist on it, such as
            gsutil's JSON API); links are then built with ``https://``. Downloads are sent
            through TLS in 1 MiB writes instead of ``sendfile``.

    Raises:
        PortInUseError: ``port`` is already taken on ``host``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        root: str | os.PathLike[str] | None = None,
        *,
        idle_timeout_s: float = 300.0,
        upload_md5: bool = True,
        network: str | NetworkProfile | None = None,
        tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    ) -> None:
        if isinstance(network, str):
            network = NetworkProfile.named(network)
        self.network = network
        self._own_root = root is None
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="gcs-server-") if root is None else root)
        self._state = ServerState(self.root, upload_md5=upload_md5)
        try:
            self._httpd = _HTTPServer(
                (host, port), self._state, None if network is None else Network(network)
            )
        except OSError as exc:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(host, port) from None
            raise
        self._httpd.idle_timeout_s = idle_timeout_s
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
            self._httpd.tls = context
        self._thread: threading.Thread | None = None

    @property
    def rewrite_bytes_per_call(self) -> int | None:
        """How much one ``objects.rewrite`` call copies when the request does not say
        (``maxBytesRewrittenPerCall``); None, the default, copies everything in one call.
        Set it to make clients that cannot pass the parameter loop on ``rewriteToken``."""
        return self._state.rewrites.default_step

    @rewrite_bytes_per_call.setter
    def rewrite_bytes_per_call(self, value: int | None) -> None:
        self._state.rewrites.default_step = value

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (``https://`` when serving TLS)."""
        host, port = self._httpd.server_address[:2]
        scheme = "https" if self._httpd.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    def start(self) -> GCSServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            self._thread.start()
            logger.debug("GCS server listening on %s (root %s)", self.endpoint, self.root)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (and the temp root if owned)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> GCSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers (no HTTP) -----------------------------------------------------------
    def create_bucket(self, name: str) -> None:
        """Create a bucket (idempotent)."""
        self._state.store.create_bucket(name, exist_ok=True)

    def put_object(
        self,
        bucket: str,
        name: str,
        data: bytes | os.PathLike[str],
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
        metadata: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> dict[str, Any]:
        """Store an object directly (the bucket is created if needed).

        Returns:
            The object resource JSON.
        """
        import io

        self.create_bucket(bucket)
        meta = ObjectMeta(content_type, content_encoding, cache_control, metadata or None)
        if isinstance(data, (bytes, bytearray, memoryview)):
            obj = self._state.store.put_file(bucket, name, io.BytesIO(bytes(data)), meta)
        else:
            with open(data, "rb") as f:
                obj = self._state.store.put_file(bucket, name, f, meta)
        return obj.resource(self.endpoint)

    def object_bytes(self, bucket: str, name: str) -> bytes:
        """The live generation's stored bytes."""
        return self.object_path(bucket, name).read_bytes()

    def object_path(self, bucket: str, name: str) -> pathlib.Path:
        """The live generation's file.

        Raises:
            KeyError: no such object.
        """
        obj = self._state.store.peek(bucket, name)
        if obj is None:
            raise KeyError(f"{bucket}/{name}")
        return obj.path

    def has_object(self, bucket: str, name: str) -> bool:
        """True when the object exists."""
        return self._state.store.peek(bucket, name) is not None

    def create_retry_test(self, instructions: dict[str, list[str]]) -> str:
        """Register a Retry Test; returns the id for ``x-retry-test-id``."""
        return self._state.retry_tests.create(instructions)

    def retry_test(self, test_id: str) -> dict[str, Any]:
        """The Retry Test's JSON (as ``GET /retry_test/{id}``)."""
        return self._state.retry_tests.describe(test_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """Handled requests, newest last (bounded)."""
        return self._state.requests()

    def wait_for_requests(self, count: int, timeout_s: float = 2.0) -> list[RequestRecord]:
        """The request log once it holds at least ``count`` records.

        A request is logged just after its response has been written, so a client can see
        the response before the record exists; tests that inspect the wire call this
        instead of reading ``requests`` straight away.

        Args:
            count: How many records to wait for (counting from the last ``clear_requests``).
            timeout_s: The longest wait; the snapshot is returned either way.

        Returns:
            The handled requests, newest last (bounded).
        """
        return self._state.wait_for_requests(count, timeout_s)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._state.clear_requests()

    @property
    def media_bytes_sent(self) -> int:
        """Total media body bytes sent by downloads.

        The server may be shared by many tests, and a connection a client abandoned can
        still be winding down (taking back bytes it planned but never sent) while the
        next test runs; exact accounting should use ``media_bytes_sent_for``.
        """
        return self._state.media_bytes_sent

    def media_bytes_sent_for(self, bucket: str) -> int:
        """Media body bytes sent by downloads from one bucket (for per-test accounting)."""
        return self._state.media_bytes_sent_for(bucket)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    root: str | os.PathLike[str] | None = None,
    *,
    upload_md5: bool = True,
    network: str | NetworkProfile | None = None,
    banner: str = "",
) -> None:
    """Run a server until SIGINT/SIGTERM; prints the endpoint as the first stdout line.

    Args:
        host: Address to bind.
        port: Port to bind (0: an ephemeral port).
        root: Object directory (None: a temporary one, removed on exit).
        upload_md5: Compute MD5 of uploaded media (as GCS does).  ``False`` is a benchmark
            mode: uploads are checked by CRC32C only and carry no ``md5Hash`` unless the
            client sent an MD5 to verify, so the server's single MD5 stream (~0.7 GB/s) is
            not what an upload benchmark measures.
        network: A simulated network (a preset name or a ``NetworkProfile``), as for
            ``GCSServer``.
        banner: Text for stderr once the port is bound (so a taken port gets only the
            error line, not a banner before it).

    Raises:
        SystemExit: 2, after one line on stderr, when ``port`` is already in use.
    """
    try:
        server = GCSServer(host, port, root, upload_md5=upload_md5, network=network)
    except PortInUseError as exc:
        sys.stderr.write(
            f"error: port {exc.port} on {exc.host} is already in use: stop the process that "
            "holds it, or pass another --port (--port 0 picks a free one)\n"
        )
        sys.stderr.flush()
        raise SystemExit(2) from None
    stop = threading.Event()

    def _on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if banner:
            sys.stderr.write(banner)
            sys.stderr.flush()
        sys.stdout.write(server.endpoint + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
