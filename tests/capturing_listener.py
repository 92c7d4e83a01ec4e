"""A host someone else controls: an HTTPS listener that records every request.

Security tests point a connection's endpoints (or a link) at it and check that no
secret, refresh token or access token ever reaches it. To make the test meaningful
it behaves as a willing accomplice would: its certificate is valid for the bundle the
test hands out (``ca_bundle_path``, its own CA plus the system's), it serves an
OpenID configuration whose token endpoint is itself (so that MSAL would post the
client credentials there), a token answer, and an empty Graph page.

Public API::

    with CapturingListener() as listener:
        listener.url            # https://127.0.0.1:PORT
        listener.ca_cert_pem    # its CA, to add to a bundle
        listener.requests       # [CapturedRequest(method, path, headers, body)]
        listener.payloads[fragment] = {...}   # the JSON answer to such paths
        listener.text()         # every request as one string, to search secrets in
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme


@dataclass
class CapturedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _capture(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self.server.owner.requests.append(
            CapturedRequest(self.command, self.path, dict(self.headers), body)
        )
        self._answer()

    def _answer(self) -> None:
        base = self.server.owner.url
        scripted = [
            payload
            for fragment, payload in self.server.owner.payloads.items()
            if fragment in self.path
        ]
        if scripted:
            payload = scripted[0]
        elif "openid-configuration" in self.path:
            tenant = self.path.strip("/").split("/")[0]
            payload = {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{base}/{tenant}/v2.0",
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
                "response_modes_supported": ["query", "fragment", "form_post"],
            }
        elif self.path.endswith("/token"):
            payload = {
                "token_type": "Bearer",
                "expires_in": 3600,
                "access_token": "captured.listener.token",
            }
        else:
            payload = {"value": []}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _capture

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: CapturingListener


class CapturingListener:
    """An HTTPS listener on 127.0.0.1 that keeps every request it receives."""

    def __init__(self) -> None:
        self.requests: list[CapturedRequest] = []
        # {path fragment: JSON answer}, for requests whose path contains it.
        self.payloads: dict[str, object] = {}
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir = tempfile.mkdtemp(prefix="capturing-listener-")
        ca = trustme.CA(organization_name="someone else")
        self.ca_cert_pem = ca.cert_pem.bytes().decode()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)

    def start(self) -> CapturingListener:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._server.socket = self._context.wrap_socket(
            self._server.socket, server_side=True
        )
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="capturing-listener", daemon=True
        )
        self._thread.start()
        return self

    def bundle_with(self, *pem_paths: str) -> str:
        """A CA bundle trusting this listener and the CAs of ``pem_paths``."""
        path = os.path.join(self._tmpdir, "bundle.pem")
        with open(path, "w") as bundle:
            bundle.write(self.ca_cert_pem)
            for pem_path in pem_paths:
                with open(pem_path) as pem:
                    bundle.write("\n" + pem.read())
        return path

    def text(self) -> str:
        return "\n".join(
            f"{r.method} {r.path}\n{json.dumps(r.headers)}\n{r.body}"
            for r in self.requests
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> CapturingListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
