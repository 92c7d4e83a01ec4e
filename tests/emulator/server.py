"""HTTPS server for the Microsoft emulator: a threaded werkzeug server with keep-alive.

Public API::

    server = EmulatorServer(host="127.0.0.1", port=0, tls=True, emulator=None,
                            **emulator_options)     # options go to Emulator(...)
    server.start()
    server.base_url            # "https://127.0.0.1:54321"
    server.authority_url("contoso.test")  # base_url + "/" + tenant GUID (domain ok)
    server.graph_url           # base_url + "/v1.0"
    server.admin_url           # base_url + "/_emulator"
    server.ca_bundle_path      # PEM: emulator CA + /etc/ssl/certs/ca-certificates.crt
    server.emulator            # the Emulator (Python-side admin API)
    server.stop()

    with running_emulator(**options) as server: ...

TLS uses a throw-away CA made with ``trustme`` at start. Point ``requests``/MSAL at it
with ``verify=server.ca_bundle_path`` *and* set ``REQUESTS_CA_BUNDLE`` and
``CURL_CA_BUNDLE`` to the same file, because those variables silently override
``Session.verify`` (docs/graph.md#ca-bundle-variables-override-verify).
``tls=False`` serves plain HTTP
(debugging only: MSAL refuses ``http://`` authorities).

Why not werkzeug's own request handler: werkzeug 3.0 answers every request with
``Connection: close`` and waits 10 ms draining the socket, so every request would pay
a TCP and TLS handshake. The handler here keeps connections alive, performs the TLS
handshake in the connection's own thread (not in the accept loop), does no per-request
logging, and implements the emulator's "drop the connection" faults.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import trustme
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import DROP_KEY, Emulator

_logger = logging.getLogger(__name__)

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IDLE_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 10.0


class _Handler(WSGIRequestHandler):
    """Keep-alive WSGI handler that buffers the (small) emulator responses."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def setup(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        if server.tls_context is not None:
            self.request.settimeout(HANDSHAKE_TIMEOUT)
            self.request = server.tls_context.wrap_socket(
                self.request, server_side=True
            )
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, add=False)  # type: ignore[attr-defined]
        # The TLS socket replaced the accepted one (which is now detached), so the
        # server's own shutdown_request() cannot close it: close it here.
        with contextlib.suppress(OSError):
            self.connection.close()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if self.server.tls_context is not None:  # type: ignore[attr-defined]
            environ["wsgi.url_scheme"] = "https"
        return environ

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        self.environ = environ
        captured: dict[str, Any] = {}

        def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        result = self.server.app(environ, start_response)  # type: ignore[attr-defined]
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        drop = environ.get(DROP_KEY)
        if drop is not None:
            self._drop(drop)
            return
        # Standard reason phrases ("Unauthorized"), not werkzeug's upper-case ones.
        self.send_response(int(captured["status"].split(" ", 1)[0]))
        has_length = False
        for key, value in captured["headers"]:
            if key.lower() == "content-length":
                has_length = True
            if key.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
            self.send_header(key, value)
        if not has_length:
            self.send_header("Content-Length", str(len(body)))
        # Headers and body in one write: two small segments would meet Nagle's
        # algorithm and the client's delayed ACK (about 40 ms per request).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.wfile.write(data)
        self.wfile.flush()

    def _drop(self, drop: dict[str, Any]) -> None:
        """Close the connection without an answer: TCP reset, or silence then close."""
        self.close_connection = True
        delay = float(drop.get("delay") or 0.0)
        if drop.get("kind") == "reset":
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        elif delay > 0:
            time.sleep(delay)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        _logger.debug("http: " + format, *args)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("http: " + format, *args)


class _Server(ThreadedWSGIServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, host: str, port: int, app: Any, tls_context: ssl.SSLContext | None
    ) -> None:
        self.tls_context = tls_context
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        super().__init__(host, port, app, handler=_Handler, passthrough_errors=True)

    def track(self, connection: Any, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and clients vanishing mid-request are routine in tests.
        _logger.debug("connection error from %s", client_address, exc_info=True)


class EmulatorServer:
    """The emulator served over HTTPS (or plain HTTP) on a background thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        emulator: Emulator | None = None,
        **emulator_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.emulator = emulator or Emulator(**emulator_options)
        self.base_url = ""
        self.ca_bundle_path = ""
        self.ca_cert_path = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None

    @property
    def graph_url(self) -> str:
        return self.base_url + "/v1.0"

    @property
    def admin_url(self) -> str:
        return self.base_url + "/_emulator"

    def authority_url(self, tenant: str | None = None) -> str:
        """MSAL authority ``{base_url}/{tenant GUID}`` (a tenant domain is mapped)."""
        return f"{self.base_url}/{self.emulator.tenant_id(tenant)}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        context = self._make_tls() if self.tls else None
        self._server = _Server(self.host, self.port, self.emulator, context)
        port = self._server.server_address[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.base_url = f"{'https' if self.tls else 'http'}://{host}:{port}"
        self.emulator.set_base_url(self.base_url)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="ms-emulator",
            daemon=True,
        )
        self._thread.start()
        self.emulator.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.emulator.stop()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_tls(self) -> ssl.SSLContext:
        ca = trustme.CA(organization_name="room_exchange_sync emulator")
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self._tmpdir = tempfile.mkdtemp(prefix="ms-emulator-")
        self.ca_cert_path = os.path.join(self._tmpdir, "emulator-ca.pem")
        ca.cert_pem.write_to_path(self.ca_cert_path)
        self.ca_bundle_path = os.path.join(self._tmpdir, "ca-bundle.pem")
        with open(self.ca_bundle_path, "wb") as bundle:
            bundle.write(ca.cert_pem.bytes())
            if os.path.exists(SYSTEM_CA_BUNDLE):
                with open(SYSTEM_CA_BUNDLE, "rb") as system:
                    bundle.write(b"\n" + system.read())
        return context


@contextlib.contextmanager
def running_emulator(**options: Any) -> Iterator[EmulatorServer]:
    """Start an ``EmulatorServer(**options)`` for the duration of a ``with`` block."""
    server = EmulatorServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
