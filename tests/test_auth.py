"""TokenProvider against the emulator's Entra ID over real HTTPS, with unmodified MSAL.

The emulator's CA is passed to the provider as ``verify=``; ``REQUESTS_CA_BUNDLE`` and
``CURL_CA_BUNDLE`` are pointed at a bundle WITHOUT that CA, so every test also proves
that the provider never relies on those variables.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
import requests
from exchange_graph import (
    AuthFlowError,
    GraphAuthError,
    GraphClient,
    GraphConfigurationError,
    GraphRetryableError,
    SignedInAccount,
    TokenProvider,
    app_scopes,
    delegated_scopes,
)

from tests import graph_helpers as helpers
from tests.emulator import certificates

pytest_plugins = ["tests.emulator.pytest_plugin"]

TENANT = "contoso.test"
TENANT_ID = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
WEB_APP = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
WEB_SECRET = "delegated-app-secret~Valid.2028"
WEB_EXPIRED_SECRET = "delegated-app-secret~Expired.2025"
DAEMON = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
DAEMON_SECRET = "app-only-secret~Valid.2028"
REDIRECT = "https://localhost/room_exchange_sync/oauth/callback"
ADELE, ADELE_PASSWORD = "AdeleV@contoso.test", "Adele-Pa55!"
ADELE_ID = "35e2903f-d456-45e8-b1a4-602b37006e3d"
ADAMS = "room.adams@contoso.test"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def untrusting_environment(server, monkeypatch) -> None:
    """Point the CA variables at a bundle without the emulator's CA, and restore the
    default throttle limits (``reset()`` keeps limits other suites configured)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_BUNDLE)
    server.emulator.throttle.configure(
        max_concurrent=4, budget=10000, window_seconds=600.0, enabled=True
    )


@pytest.fixture
def server(emulator_reset, monkeypatch):
    """The emulator, with the CA variables pointing at a bundle that lacks its CA."""
    untrusting_environment(emulator_reset, monkeypatch)
    identity = emulator_reset.emulator.identity
    lifetime = identity.access_token_lifetime
    yield emulator_reset
    identity.access_token_lifetime = lifetime
    identity.set_auto_consent(False)


def admin(server, path: str, body: dict | None = None) -> dict:
    answer = requests.post(
        f"{server.admin_url}/{path}",
        json=body or {},
        verify=server.ca_bundle_path,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def provider(server, client_id=WEB_APP, credential=WEB_SECRET, **kwargs):
    kwargs.setdefault("authority", server.authority_url(TENANT))
    kwargs.setdefault("graph_resource", server.base_url)
    return TokenProvider(
        client_id=client_id,
        credential=credential,
        verify=server.ca_bundle_path,
        timeout=10,
        **kwargs,
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({**attributes, "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""


def _forms(text: str) -> list[dict]:
    parser = _Forms()
    parser.feed(text)
    return parser.forms


def browse(server, auth_uri: str, *, consent: str = "accept", user=ADELE) -> dict:
    """Play the browser: sign in, answer the consent page, return the form_post fields
    the emulator would send to the redirect URI."""
    browser = requests.Session()
    browser.verify = server.ca_bundle_path
    page = browser.get(auth_uri, verify=server.ca_bundle_path, timeout=10)
    for _step in range(4):
        assert page.status_code == 200, page.text[:300]
        forms = _forms(page.text)
        posted = [f for f in forms if f.get("id") == "form-post"]
        if posted:
            assert posted[0]["action"] == REDIRECT
            return posted[0]["fields"]
        (form,) = forms
        fields = dict(form["fields"])
        if 'id="password"' in page.text:
            fields.update(username=user, password=ADELE_PASSWORD)
        else:
            fields["action"] = consent
        page = browser.post(
            page.url, data=fields, verify=server.ca_bundle_path, timeout=10
        )
    raise AssertionError("the sign-in did not reach the redirect")


def sign_in(server, tokens: TokenProvider, **kwargs) -> SignedInAccount:
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    return tokens.finish_sign_in(flow, browse(server, flow["auth_uri"], **kwargs))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate() -> tuple[str, str]:
    key_pem, cert_pem, _thumbprint = certificates.self_signed_certificate(
        "room-sync-daemon", days=30
    )
    return key_pem, cert_pem


def graph(server, token_source) -> GraphClient:
    return GraphClient(
        graph_url=server.graph_url,
        token_source=token_source,
        verify=server.ca_bundle_path,
        sleep=lambda _seconds: None,
    )


def test_scopes_are_always_in_full_uri_form():
    assert delegated_scopes("https://graph.microsoft.com/") == [
        "https://graph.microsoft.com/Calendars.ReadWrite.Shared",
        "https://graph.microsoft.com/User.Read",
    ]
    assert delegated_scopes("https://graph.microsoft.us", places=True)[-1] == (
        "https://graph.microsoft.us/Place.Read.All"
    )
    assert app_scopes("https://graph.microsoft.com") == [
        "https://graph.microsoft.com/.default"
    ]


def test_the_constructor_does_no_network_io():
    tokens = TokenProvider(
        client_id=WEB_APP,
        authority=f"https://127.0.0.1:{closed_port()}/{TENANT_ID}",
        credential=WEB_SECRET,
        graph_resource="https://graph.microsoft.com",
    )
    assert tokens.cache_changed is False
    with pytest.raises(GraphRetryableError):
        tokens.accounts()


def test_delegated_sign_in_then_graph_calls(server):
    tokens = provider(server)
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    assert flow["auth_uri"].startswith(server.authority_url(TENANT) + "/oauth2/v2.0/")
    assert "response_mode=form_post" in flow["auth_uri"]
    assert flow["state"] and flow["expires_at"]

    account = tokens.finish_sign_in(flow, browse(server, flow["auth_uri"]))

    assert account == SignedInAccount(
        home_account_id=f"{ADELE_ID}.{TENANT_ID}",
        username=ADELE,
        name="Adele Vance",
        tenant_id=TENANT_ID,
    )
    assert tokens.cache_changed
    assert tokens.accounts() == [account]
    client = graph(server, lambda: tokens.access_token(account.home_account_id))
    assert helpers.me(client)["userPrincipalName"] == ADELE
    assert client.get_calendar(ADAMS)["owner"]["address"] == ADAMS


def test_cache_round_trip_and_silent_refresh(server):
    # MSAL treats a token with five minutes or less left as expired: every call then
    # refreshes, and the refresh token rotates.
    server.emulator.identity.access_token_lifetime = 300
    first = provider(server)
    account = sign_in(server, first)
    state = first.serialize_cache()
    assert first.cache_changed is False

    second = provider(server, cache_state=state)
    assert second.cache_changed is False
    assert second.accounts() == [account]
    token = second.access_token(account.home_account_id)

    assert second.cache_changed
    assert token not in state
    assert server.emulator.identity.resolve_access_token(token).upn == ADELE
    rotated = second.serialize_cache()
    assert rotated != state
    third = provider(server, cache_state=rotated)
    assert third.access_token(account.home_account_id) != token
    # The refresh token in the original state was redeemed, and still works: Entra
    # does not revoke old refresh tokens when they are used (issue 15), so a worker
    # holding a cache saved before another one's refresh is not signed out.
    stale = provider(server, cache_state=state)
    assert stale.access_token(account.home_account_id) not in (token, "")
    assert stale.cache_changed


def test_cached_token_is_reused_without_a_refresh(server):
    tokens = provider(server)
    account = sign_in(server, tokens)
    tokens.serialize_cache()
    first = tokens.access_token(account.home_account_id)
    assert tokens.access_token(account.home_account_id) == first
    assert tokens.cache_changed is False


@pytest.mark.parametrize(("reason", "code"), [("revoked", 50173), ("expired", 70008)])
def test_revoked_refresh_token_needs_a_new_sign_in(server, reason, code):
    server.emulator.identity.access_token_lifetime = 300
    tokens = provider(server)
    account = sign_in(server, tokens)
    admin(server, "identity/revoke", {"upn": ADELE, "reason": reason})

    with pytest.raises(GraphAuthError) as caught:
        tokens.access_token(account.home_account_id)

    assert caught.value.reauthorization_needed is True
    assert caught.value.aadsts == code
    assert caught.value.code == "invalid_grant"
    assert "Trace ID" not in caught.value.message


def test_unknown_account_and_forget_account(server):
    tokens = provider(server)
    account = sign_in(server, tokens)
    with pytest.raises(GraphAuthError) as caught:
        tokens.access_token("someone.else")
    assert caught.value.reauthorization_needed is True

    tokens.forget_account(account.home_account_id)
    assert tokens.accounts() == []
    with pytest.raises(GraphAuthError):
        tokens.access_token(account.home_account_id)


def test_tampered_state_missing_code_and_expired_flow(server):
    tokens = provider(server)
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    fields = browse(server, flow["auth_uri"])

    with pytest.raises(AuthFlowError) as caught:
        tokens.finish_sign_in(flow, {**fields, "state": "forged"})
    assert caught.value.reason == "state_mismatch"
    with pytest.raises(AuthFlowError) as caught:
        tokens.finish_sign_in(flow, {"state": flow["state"]})
    assert caught.value.reason == "missing_code"
    with pytest.raises(AuthFlowError) as caught:
        tokens.finish_sign_in({**flow, "expires_at": 1.0}, fields)
    assert caught.value.reason == "flow_expired"
    # None of the failures consumed the flow: the genuine answer still works.
    assert tokens.finish_sign_in(flow, fields).username == ADELE


def test_nonce_mismatch_is_a_flow_error(server):
    tokens = provider(server)
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    fields = browse(server, flow["auth_uri"])
    with pytest.raises(AuthFlowError) as caught:
        tokens.finish_sign_in({**flow, "nonce": "not-the-nonce"}, fields)
    assert caught.value.reason == "nonce_mismatch"


def test_consent_refused_is_access_denied(server):
    tokens = provider(server)
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    fields = browse(server, flow["auth_uri"], consent="cancel")

    with pytest.raises(GraphAuthError) as caught:
        tokens.finish_sign_in(flow, fields)

    assert caught.value.code == "access_denied"
    assert caught.value.message.startswith("AADSTS65004: User declined to consent")
    assert caught.value.reauthorization_needed is False


def test_auto_consent_sign_in(server):
    admin(server, "identity/auto-consent", {"enabled": True})
    tokens = provider(server, places=True)
    flow = tokens.start_sign_in(REDIRECT, login_hint=ADELE)
    answer = requests.get(flow["auth_uri"], verify=server.ca_bundle_path, timeout=10)
    (form,) = _forms(answer.text)
    assert form["id"] == "form-post"
    account = tokens.finish_sign_in(flow, form["fields"])
    client = graph(server, lambda: tokens.access_token(account.home_account_id))
    assert {room["emailAddress"] for room in client.iter_rooms()} >= {ADAMS}


def test_app_only_with_a_secret(server):
    tokens = provider(server, DAEMON, DAEMON_SECRET)
    token = tokens.access_token()
    grant = server.emulator.identity.resolve_access_token(token)
    assert grant.kind == "app" and grant.client_id == DAEMON
    assert tokens.access_token() == token  # from MSAL's cache
    assert tokens.access_token(force_refresh=True) != token
    assert graph(server, tokens.access_token).get_calendar(ADAMS)["canEdit"] is True


def test_app_only_with_a_certificate(server):
    key_pem, cert_pem = self_signed_certificate()
    thumbprint = admin(
        server, "scenario/certificate", {"client_id": DAEMON, "public_pem": cert_pem}
    )["thumbprint"]
    tokens = provider(
        server, DAEMON, {"private_key": key_pem, "thumbprint": thumbprint}
    )
    token = tokens.access_token()
    assert server.emulator.identity.resolve_access_token(token).client_id == DAEMON

    other_key, _ = self_signed_certificate()
    forged = provider(
        server, DAEMON, {"private_key": other_key, "thumbprint": thumbprint}
    )
    with pytest.raises(GraphConfigurationError) as caught:
        forged.access_token()
    assert caught.value.setting == "certificate"


def test_wrong_and_expired_secrets_name_the_secret(server):
    with pytest.raises(GraphConfigurationError) as caught:
        provider(server, DAEMON, "not-the-secret").access_token()
    assert caught.value.setting == "client_secret"
    assert caught.value.aadsts == 7000215
    assert "client secret is wrong" in caught.value.message
    assert "not-the-secret" not in str(caught.value)

    with pytest.raises(GraphConfigurationError) as caught:
        provider(server, WEB_APP, WEB_EXPIRED_SECRET).access_token()
    assert caught.value.aadsts == 7000222
    assert "expired" in caught.value.message


def test_unknown_client_id(server):
    stranger = provider(server, "00000000-0000-0000-0000-000000000001", "x")
    with pytest.raises(GraphConfigurationError) as caught:
        stranger.access_token()
    assert caught.value.setting == "client_id"
    assert caught.value.aadsts == 700016


def test_unknown_tenant(server):
    tokens = provider(server, authority=f"{server.base_url}/nowhere.test")
    with pytest.raises(GraphConfigurationError) as caught:
        tokens.access_token()
    assert caught.value.setting == "tenant"
    assert caught.value.aadsts == 90002


def test_authority_must_be_https(server):
    plain = server.base_url.replace("https://", "http://")
    tokens = provider(server, authority=f"{plain}/{TENANT_ID}")
    with pytest.raises(GraphConfigurationError) as caught:
        tokens.start_sign_in(REDIRECT)
    assert caught.value.setting == "authority"


def test_unreachable_authority_is_retryable_and_names_the_host(server):
    port = closed_port()
    tokens = provider(server, authority=f"https://127.0.0.1:{port}/{TENANT_ID}")
    with pytest.raises(GraphRetryableError) as caught:
        tokens.access_token()
    assert f"127.0.0.1:{port}" in caught.value.message
    assert caught.value.code == "connectionError"


def test_untrusted_certificate_without_verify(server):
    """The exported variables name a bundle without the emulator's CA: without an
    explicit ``verify`` the TLS handshake fails, which is what makes the other tests
    meaningful."""
    tokens = TokenProvider(
        client_id=DAEMON,
        authority=server.authority_url(TENANT),
        credential=DAEMON_SECRET,
        graph_resource=server.base_url,
    )
    with pytest.raises(GraphRetryableError):
        tokens.access_token()


@pytest.fixture
def many_accounts(server) -> Iterator[TokenProvider]:
    admin(server, "identity/auto-consent", {"enabled": True})
    yield provider(server)


def test_two_accounts_in_one_cache(server, many_accounts):
    tokens = many_accounts
    for upn in (ADELE, "AlexW@contoso.test"):
        flow = tokens.start_sign_in(REDIRECT, login_hint=upn)
        answer = requests.get(
            flow["auth_uri"], verify=server.ca_bundle_path, timeout=10
        )
        (form,) = _forms(answer.text)
        tokens.finish_sign_in(flow, form["fields"])
    usernames = sorted(account.username for account in tokens.accounts())
    assert usernames == ["AdeleV@contoso.test", "AlexW@contoso.test"]
    alex = next(a for a in tokens.accounts() if a.username.startswith("Alex"))
    token = tokens.access_token(alex.home_account_id)
    assert server.emulator.identity.resolve_access_token(token).upn == alex.username
