"""A person clicks through the emulator's sign-in and consent pages in real Chromium.

The relying party is played by a tiny local HTTP receiver registered as a redirect URI
of the delegated app; MSAL builds the authorize URL and redeems the code. Chromium
trusts the emulator's throw-away TLS certificate by its public-key pin
(``--ignore-certificate-errors-spki-list``), taken from the running server after
verifying it against the emulator CA, so no other certificate error is ignored.

These tests never skip: without Playwright or Chromium they fail and say to run
``make setup``.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TENANT = "contoso.test"
CLIENT_ID = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
CLIENT_SECRET = "delegated-app-secret~Valid.2028"
SCOPE = "https://graph.microsoft.com/Calendars.ReadWrite.Shared"
USER = "AdeleV@contoso.test"
PASSWORD = "Adele-Pa55!"
CALLBACK_PATH = "/room_exchange_sync/oauth/callback"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
SETUP_HINT = "Run `make setup` (it installs chromium and requirements-test.txt)."


def _find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    pytest.fail(
        f"Chromium is not installed (looked for {', '.join(CHROMIUM_CANDIDATES)}). "
        f"{SETUP_HINT}"
    )


def _spki_pin(base_url: str, ca_cert_path: str) -> str:
    """Base64 SHA-256 of the server certificate's public key, as Chromium pins it."""
    parts = urlsplit(base_url)
    # With ca_certs the handshake must verify against the emulator CA.
    pem = ssl.get_server_certificate(
        (parts.hostname, parts.port), ca_certs=ca_cert_path, timeout=10
    )
    cert = x509.load_pem_x509_certificate(pem.encode())
    spki = cert.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def browser(emulator_server):
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        pytest.fail(f"Playwright for Python is not installed ({error}). {SETUP_HINT}")
    executable = _find_chromium()
    pin = _spki_pin(emulator_server.base_url, emulator_server.ca_cert_path)
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable, headless=True, args=args
            )
        except Error as error:
            pytest.fail(
                f"Chromium at {executable} did not start: {error}. {SETUP_HINT}"
            )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass
class Receiver:
    """The relying party's redirect URI: records what the browser POSTs to it."""

    url: str
    posts: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def receiver(emulator) -> Iterator[Receiver]:
    box: list[Receiver] = []

    @Request.application
    def app(request: Request) -> Response:
        if request.method != "POST" or request.path != CALLBACK_PATH:
            return Response("not found", status=404)
        box[0].posts.append(request.form.to_dict())
        return Response(
            '<!DOCTYPE html><html><body><h1 id="signed-in">signed in</h1>'
            "</body></html>",
            content_type="text/html; charset=utf-8",
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    box.append(Receiver(f"http://127.0.0.1:{server.server_port}{CALLBACK_PATH}"))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    emulator.emulator.scenario.app(CLIENT_ID).redirect_uris.append(box[0].url)
    try:
        yield box[0]
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def _start_flow(emulator, receiver: Receiver):
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=emulator.authority_url(TENANT),
        instance_discovery=False,
        http_cache={},
    )
    flow = app.initiate_auth_code_flow(
        [SCOPE], redirect_uri=receiver.url, response_mode="form_post"
    )
    return app, flow


def _sign_in_to_consent(page, flow) -> None:
    page.goto(flow["auth_uri"])
    assert page.title() == "Sign in to your account"
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#accept")
    assert page.title() == "Permissions requested"
    assert page.inner_text("#consent-user") == USER
    assert page.inner_text("#app-name") == "Odoo Room Sync (delegated)"
    scopes = page.eval_on_selector_all(
        "#scopes li", "items => items.map(item => item.dataset.scope)"
    )
    assert "Calendars.ReadWrite.Shared" in scopes
    assert "offline_access" in scopes  # MSAL always adds it


def _land_on_receiver(page, receiver: Receiver) -> dict[str, str]:
    page.wait_for_url(receiver.url)
    assert page.inner_text("#signed-in") == "signed in"
    assert len(receiver.posts) == 1, receiver.posts
    return receiver.posts[0]


def test_sign_in_and_consent_in_chromium(emulator, receiver, page, tmp_path: Path):
    app, flow = _start_flow(emulator, receiver)
    _sign_in_to_consent(page, flow)
    shot = tmp_path / "consent.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000

    page.click("#accept")
    fields = _land_on_receiver(page, receiver)
    assert fields.get("code")
    assert fields.get("state") == flow["state"]
    assert "error" not in fields

    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == USER


def test_cancel_on_consent_page_reports_access_denied(emulator, receiver, page):
    app, flow = _start_flow(emulator, receiver)
    _sign_in_to_consent(page, flow)
    page.click("#cancel")
    fields = _land_on_receiver(page, receiver)
    assert fields.get("error") == "access_denied"
    assert fields.get("state") == flow["state"]
    assert "code" not in fields

    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result.get("error") == "access_denied"
    assert "access_token" not in result
