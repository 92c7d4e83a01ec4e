"""The emulator's Entra ID endpoints, driven by unmodified MSAL over real HTTPS."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests
import trustme
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from tests.emulator import certificates
from tests.emulator.identity import IdentityProvider
from tests.emulator.scenario import load_scenario

TENANT_ID = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
WEB_APP = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
WEB_SECRET = "delegated-app-secret~Valid.2028"
WEB_EXPIRED_SECRET = "delegated-app-secret~Expired.2025"
DAEMON = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
DAEMON_SECRET = "app-only-secret~Valid.2028"
REDIRECT = "http://localhost:8069/room_exchange_sync/oauth/callback"
ADELE, ADELE_PASSWORD = "AdeleV@contoso.test", "Adele-Pa55!"
SHARED = "Calendars.ReadWrite.Shared"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


@dataclass
class Emulator:
    provider: IdentityProvider
    base: str

    @property
    def authority(self) -> str:
        return f"{self.base}/{TENANT_ID}"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    def app(self, client_id: str = WEB_APP, credential=WEB_SECRET, **kwargs):
        # A fresh application per scenario: MSAL caches HTTP answers
        # (docs/graph.md#msal-caches-http-answers).
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=kwargs.pop("authority", self.authority),
            instance_discovery=False,
            http_client=requests.Session(),
            **kwargs,
        )


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> tuple[trustme.CA, ssl.SSLContext, str]:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return ca, context, str(bundle)


def serve(provider: IdentityProvider, context: ssl.SSLContext):
    def wsgi_app(environ, start_response):
        return provider.dispatch(Request(environ))(environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def make_emulator(tls, monkeypatch) -> Iterator:
    _ca, context, bundle = tls
    # requests lets these variables override Session.verify
    # (docs/graph.md#ca-bundle-variables-override-verify).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    servers = []

    def factory(**options) -> Emulator:
        provider = IdentityProvider(load_scenario(None), **options)
        server, thread = serve(provider, context)
        servers.append((server, thread))
        provider.base_url = f"https://127.0.0.1:{server.server_port}"
        return Emulator(provider, provider.base_url)

    yield factory
    for server, thread in servers:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def emulator(make_emulator) -> Emulator:
    return make_emulator()


class FormParser(HTMLParser):
    """Collects forms (id, action, fields) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({**attributes, "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def forms_of(text: str) -> list[dict]:
    parser = FormParser()
    parser.feed(text)
    return parser.forms


def form_post_fields(response: requests.Response) -> dict[str, str]:
    (form,) = [f for f in forms_of(response.text) if f.get("id") == "form-post"]
    assert form["action"] == REDIRECT
    return form["fields"]


def sign_in(browser, auth_uri, username=ADELE, password=ADELE_PASSWORD):
    page = browser.get(auth_uri, allow_redirects=False)
    assert page.status_code == 200
    assert 'id="username"' in page.text and 'id="password"' in page.text
    assert 'id="sign-in"' in page.text
    (form,) = forms_of(page.text)
    data = {**form["fields"], "username": username, "password": password}
    return browser.post(page.url, data=data, allow_redirects=False)


def consent(browser, page, action="accept"):
    assert 'id="accept"' in page.text and 'id="cancel"' in page.text
    (form,) = forms_of(page.text)
    return browser.post(
        page.url, data={**form["fields"], "action": action}, allow_redirects=False
    )


def interactive_login(emulator, app, scopes=(SHARED,), **flow_options):
    flow = app.initiate_auth_code_flow(
        list(scopes), redirect_uri=REDIRECT, response_mode="form_post", **flow_options
    )
    browser = requests.Session()
    consent_page = sign_in(browser, flow["auth_uri"])
    auth_response = form_post_fields(consent(browser, consent_page))
    return flow, auth_response, browser


def token_post(emulator, **data) -> requests.Response:
    return requests.post(emulator.token_url, data=data, timeout=10)


def assert_aadsts(body: dict, error: str, code: int) -> None:
    assert body["error"] == error
    assert body["error_codes"] == [code]
    description = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in description and "\r\nCorrelation ID: " in description
    assert "\r\nTimestamp: " in description
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()
    assert body["error_uri"].endswith(f"code={code}")


def self_signed_certificate() -> tuple[str, str]:
    key_pem, cert_pem, _thumbprint = certificates.self_signed_certificate(
        "room-sync-daemon", days=30
    )
    return key_pem, cert_pem


def test_discovery_documents(emulator):
    by_domain = requests.get(
        f"{emulator.base}/contoso.test/v2.0/.well-known/openid-configuration",
        timeout=10,
    )
    assert by_domain.status_code == 200
    assert by_domain.headers["Cache-Control"] == "max-age=86400, private"
    document = by_domain.json()
    assert document["token_endpoint"] == emulator.token_url
    assert document["authorization_endpoint"].endswith(
        f"/{TENANT_ID}/oauth2/v2.0/authorize"
    )
    assert document["issuer"] == f"{emulator.base}/{TENANT_ID}/v2.0"
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]

    unknown = requests.get(
        f"{emulator.base}/nowhere.test/v2.0/.well-known/openid-configuration",
        timeout=10,
    )
    assert unknown.status_code == 400
    assert_aadsts(unknown.json(), "invalid_tenant", 90002)

    instance = requests.get(
        f"{emulator.base}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{emulator.authority}/oauth2/v2.0/authorize",
        },
        timeout=10,
    ).json()
    assert instance["tenant_discovery_endpoint"] == (
        f"{emulator.authority}/v2.0/.well-known/openid-configuration"
    )
    assert instance["metadata"][0]["aliases"] == [urlsplit(emulator.base).netloc]


def test_auth_code_flow_with_pkce_and_form_post(emulator):
    app = emulator.app()
    flow, auth_response, _browser = interactive_login(emulator, app)
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert set(auth_response) >= {"code", "state", "client_info", "session_state"}

    result = app.acquire_token_by_auth_code_flow(flow, auth_response)

    assert "error" not in result, result
    assert result["token_source"] == "identity_provider"
    assert result["scope"].split()[0] == SHARED
    assert "offline_access" not in result["scope"].split()
    assert result["refresh_token"]
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == ADELE
    assert claims["tid"] == TENANT_ID and claims["aud"] == WEB_APP
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    (account,) = app.get_accounts(username=ADELE.lower())
    assert account["realm"] == TENANT_ID
    assert account["home_account_id"] == f"{claims['oid']}.{TENANT_ID}"

    grant = emulator.provider.resolve_access_token(result["access_token"])
    assert grant.kind == "delegated" and grant.upn == ADELE
    assert grant.scopes == frozenset({SHARED})
    assert grant.roles == frozenset() and grant.client_id == WEB_APP

    jwks = requests.get(f"{emulator.authority}/discovery/v2.0/keys", timeout=10).json()
    key = jwt.PyJWK(jwks["keys"][0])
    access = jwt.decode(
        result["access_token"],
        key.key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
    )
    assert access["scp"] == SHARED and access["upn"] == ADELE
    assert access["tid"] == TENANT_ID and access["appid"] == WEB_APP
    jwt.decode(result["id_token"], key.key, algorithms=["RS256"], audience=WEB_APP)


def test_full_uri_scopes_are_echoed_as_requested(emulator):
    app = emulator.app()
    full = f"https://graph.microsoft.com/{SHARED}"
    flow, auth_response, _ = interactive_login(emulator, app, scopes=(full,))
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert full in result["scope"].split()
    assert emulator.provider.resolve_access_token(result["access_token"]).scopes == {
        SHARED
    }


def test_signed_in_browser_is_not_asked_again(emulator):
    app = emulator.app()
    _flow, _response, browser = interactive_login(emulator, app)
    flow = app.initiate_auth_code_flow(
        [SHARED], redirect_uri=REDIRECT, response_mode="form_post"
    )
    again = browser.get(flow["auth_uri"], allow_redirects=False)
    result = app.acquire_token_by_auth_code_flow(flow, form_post_fields(again))
    assert result["id_token_claims"]["preferred_username"] == ADELE

    silent = app.initiate_auth_code_flow(
        [SHARED], redirect_uri=REDIRECT, response_mode="form_post", prompt="none"
    )
    anonymous = requests.get(silent["auth_uri"], allow_redirects=False, timeout=10)
    fields = form_post_fields(anonymous)
    assert fields["error"] == "login_required"
    assert fields["state"] == silent["state"]


def test_wrong_password_shows_the_sign_in_page_again(emulator):
    app = emulator.app()
    flow = app.initiate_auth_code_flow(
        [SHARED], redirect_uri=REDIRECT, response_mode="form_post"
    )
    page = sign_in(requests.Session(), flow["auth_uri"], password="wrong")
    assert page.status_code == 200
    assert "AADSTS50126" in page.text and 'id="password"' in page.text


def test_auto_consent_redirects_at_once(emulator):
    emulator.provider.set_auto_consent(True)
    app = emulator.app()
    with pytest.warns(UserWarning):  # MSAL 1.39 recommends form_post.
        flow = app.initiate_auth_code_flow(
            [SHARED], redirect_uri=REDIRECT, login_hint="alexw@contoso.test"
        )
    answer = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    auth_response = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["id_token_claims"]["preferred_username"] == "AlexW@contoso.test"


def test_consent_refused_returns_access_denied(emulator):
    app = emulator.app()
    flow = app.initiate_auth_code_flow(
        [SHARED], redirect_uri=REDIRECT, response_mode="form_post"
    )
    browser = requests.Session()
    page = sign_in(browser, flow["auth_uri"])
    assert SHARED in page.text
    fields = form_post_fields(consent(browser, page, action="cancel"))
    assert fields["error"] == "access_denied"
    assert fields["error_description"].startswith(
        "AADSTS65004: User declined to consent"
    )
    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result["error"] == "access_denied"


def test_redirect_mismatch_and_unknown_client_show_an_error_page(emulator):
    app = emulator.app()
    flow = app.initiate_auth_code_flow(
        [SHARED], redirect_uri="https://evil.test/callback", response_mode="form_post"
    )
    page = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "AADSTS50011" in page.text and "evil.test" in page.text
    assert 'id="form-post"' not in page.text

    unknown = requests.get(
        f"{emulator.authority}/oauth2/v2.0/authorize",
        params={
            "client_id": "00000000-0000-0000-0000-000000000001",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": SHARED,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert unknown.status_code == 400 and "AADSTS700016" in unknown.text


def test_code_reuse_and_bad_pkce_verifier(emulator):
    app = emulator.app()
    flow, auth_response, browser = interactive_login(emulator, app)
    base = {
        "client_id": WEB_APP,
        "client_secret": WEB_SECRET,
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "scope": f"{SHARED} offline_access openid profile",
    }
    bad = token_post(
        emulator, **base, code=auth_response["code"], code_verifier="x" * 43
    )
    assert bad.status_code == 400
    assert_aadsts(bad.json(), "invalid_grant", 501481)

    good = token_post(
        emulator,
        **base,
        code=auth_response["code"],
        code_verifier=flow["code_verifier"],
    )
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["ext_expires_in"] == 3600
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert client_info["utid"] == TENANT_ID

    reused = token_post(
        emulator,
        **base,
        code=auth_response["code"],
        code_verifier=flow["code_verifier"],
    )
    assert_aadsts(reused.json(), "invalid_grant", 54005)


def test_expired_code_and_unsupported_grant(make_emulator):
    now = [datetime.now(timezone.utc)]
    emulator = make_emulator(clock=lambda: now[0], code_lifetime=60)
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    now[0] += timedelta(seconds=61)
    late = token_post(
        emulator,
        client_id=WEB_APP,
        client_secret=WEB_SECRET,
        grant_type="authorization_code",
        redirect_uri=REDIRECT,
        code=auth_response["code"],
        code_verifier=flow["code_verifier"],
        scope=SHARED,
    )
    assert_aadsts(late.json(), "invalid_grant", 70008)
    odd = token_post(emulator, client_id=WEB_APP, grant_type="password")
    assert_aadsts(odd.json(), "unsupported_grant_type", 70003)


def redeem(emulator, refresh_token) -> requests.Response:
    return token_post(
        emulator,
        client_id=WEB_APP,
        client_secret=WEB_SECRET,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        scope=SHARED,
    )


def test_silent_refresh_rotates_and_earlier_refresh_tokens_stay_valid(make_emulator):
    emulator = make_emulator(access_token_lifetime=300)
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    first = app.acquire_token_by_auth_code_flow(flow, auth_response)
    (account,) = app.get_accounts()

    # MSAL treats a token with five minutes or less left as expired.
    second = app.acquire_token_silent([SHARED], account=account)

    assert second["token_source"] == "identity_provider"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert emulator.provider.resolve_access_token(second["access_token"]).upn == ADELE
    # Entra: "Refresh tokens replace themselves with a fresh token upon every use.
    # The Microsoft identity platform doesn't revoke old refresh tokens when used to
    # fetch new access tokens." (Microsoft Learn, Refresh tokens in the Microsoft
    # identity platform). Issue 15: the emulator refused a used one (invalid_grant).
    chain = [first["refresh_token"], second["refresh_token"]]
    for refresh_token in [*chain, chain[0]]:
        answer = redeem(emulator, refresh_token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        grant = emulator.provider.resolve_access_token(body["access_token"])
        assert grant.upn == ADELE
        assert body["refresh_token"] not in chain
        chain.append(body["refresh_token"])

    assert emulator.provider.revoke_refresh_tokens(upn=ADELE) == len(chain)
    for refresh_token in chain:
        assert_aadsts(redeem(emulator, refresh_token).json(), "invalid_grant", 50173)


def test_earlier_refresh_tokens_expire_with_their_own_lifetime(make_emulator):
    now = [datetime.now(timezone.utc)]
    emulator = make_emulator(clock=lambda: now[0], refresh_token_lifetime_days=90)
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    first = app.acquire_token_by_auth_code_flow(flow, auth_response)
    now[0] += timedelta(days=60)
    later = redeem(emulator, first["refresh_token"]).json()["refresh_token"]
    now[0] += timedelta(days=31)
    assert_aadsts(
        redeem(emulator, first["refresh_token"]).json(), "invalid_grant", 700082
    )
    assert redeem(emulator, later).status_code == 200


def test_used_refresh_tokens_can_be_refused_by_option(make_emulator):
    emulator = make_emulator(invalidate_used_refresh_tokens=True)
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    first = app.acquire_token_by_auth_code_flow(flow, auth_response)
    second = redeem(emulator, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert_aadsts(
        redeem(emulator, first["refresh_token"]).json(), "invalid_grant", 70000
    )
    assert redeem(emulator, second.json()["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    ("reason", "code"), [("revoked", 50173), ("inactive", 700082), ("expired", 70008)]
)
def test_revoked_refresh_token_gives_invalid_grant(make_emulator, reason, code):
    emulator = make_emulator(access_token_lifetime=300)
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    app.acquire_token_by_auth_code_flow(flow, auth_response)
    (account,) = app.get_accounts()

    assert emulator.provider.revoke_refresh_tokens(upn=ADELE, reason=reason) == 1
    result = app.acquire_token_silent_with_error([SHARED], account=account)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")


def test_unconsented_scope_on_refresh_needs_consent(emulator):
    app = emulator.app()
    flow, auth_response, _ = interactive_login(emulator, app)
    first = app.acquire_token_by_auth_code_flow(flow, auth_response)
    answer = token_post(
        emulator,
        client_id=WEB_APP,
        client_secret=WEB_SECRET,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="Place.Read.All offline_access openid profile",
    )
    body = answer.json()
    assert_aadsts(body, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"


def test_client_credentials_with_secret(emulator):
    app = emulator.app(DAEMON, DAEMON_SECRET)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert "error" not in result, result
    assert result["token_source"] == "identity_provider"
    assert result["expires_in"] == 3599
    assert "refresh_token" not in result
    grant = emulator.provider.resolve_access_token(result["access_token"])
    assert grant.kind == "app" and grant.user_id is None and grant.upn is None
    assert grant.roles == frozenset({"Calendars.ReadWrite", "Place.Read.All"})
    assert grant.tenant_id == TENANT_ID and grant.client_id == DAEMON
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Calendars.ReadWrite", "Place.Read.All"]
    assert claims["idtyp"] == "app" and "scp" not in claims
    assert app.acquire_token_for_client([GRAPH_DEFAULT])["token_source"] == "cache"


def test_client_credentials_scope_must_be_default(emulator):
    answer = token_post(
        emulator,
        client_id=DAEMON,
        client_secret=DAEMON_SECRET,
        grant_type="client_credentials",
        scope="https://graph.microsoft.com/Calendars.ReadWrite",
    )
    assert_aadsts(answer.json(), "invalid_scope", 1002012)


@pytest.mark.parametrize("with_public_certificate", [False, True])
def test_client_credentials_with_certificate(emulator, with_public_certificate):
    key_pem, cert_pem = self_signed_certificate()
    thumbprint = emulator.provider.scenario.add_certificate(DAEMON, cert_pem)
    assert thumbprint == thumbprint.upper() and len(thumbprint) == 40
    credential = {"private_key": key_pem, "thumbprint": thumbprint}
    if with_public_certificate:  # MSAL then signs PS256 with an x5t#S256 header.
        credential = {"private_key": key_pem, "public_certificate": cert_pem}
    result = emulator.app(DAEMON, credential).acquire_token_for_client([GRAPH_DEFAULT])
    assert "error" not in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appidacr"] == "2"

    other_key, _ = self_signed_certificate()
    forged = {"private_key": other_key, "thumbprint": thumbprint}
    failed = emulator.app(DAEMON, forged).acquire_token_for_client([GRAPH_DEFAULT])
    assert failed["error"] == "invalid_client" and failed["error_codes"] == [700027]


def test_wrong_and_expired_secrets(emulator):
    wrong = token_post(
        emulator,
        client_id=DAEMON,
        client_secret="not-the-secret",
        grant_type="client_credentials",
        scope=GRAPH_DEFAULT,
    )
    assert wrong.status_code == 401
    assert_aadsts(wrong.json(), "invalid_client", 7000215)
    via_msal = emulator.app(DAEMON, "not-the-secret").acquire_token_for_client(
        [GRAPH_DEFAULT]
    )
    assert via_msal["error"] == "invalid_client"

    stale = emulator.app(WEB_APP, WEB_EXPIRED_SECRET).acquire_token_for_client(
        [GRAPH_DEFAULT]
    )
    assert stale["error_codes"] == [7000222]

    emulator.provider.expire_client_secret(DAEMON)
    expired = token_post(
        emulator,
        client_id=DAEMON,
        client_secret=DAEMON_SECRET,
        grant_type="client_credentials",
        scope=GRAPH_DEFAULT,
    )
    assert expired.status_code == 401
    assert_aadsts(expired.json(), "invalid_client", 7000222)


def test_unknown_tenant_and_unknown_client(emulator):
    with pytest.raises(ValueError):
        emulator.app(authority=f"{emulator.base}/nowhere.test")
    answer = requests.post(
        f"{emulator.base}/nowhere.test/oauth2/v2.0/token",
        data={"client_id": DAEMON, "grant_type": "client_credentials"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert_aadsts(answer.json(), "invalid_request", 90002)

    stranger = token_post(
        emulator,
        client_id="00000000-0000-0000-0000-000000000001",
        client_secret="x",
        grant_type="client_credentials",
        scope=GRAPH_DEFAULT,
    )
    assert stranger.status_code == 400
    assert_aadsts(stranger.json(), "unauthorized_client", 700016)


def test_resolve_access_token_after_expiry(make_emulator):
    now = [datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)]
    emulator = make_emulator(clock=lambda: now[0])
    result = emulator.app(DAEMON, DAEMON_SECRET).acquire_token_for_client(
        [GRAPH_DEFAULT]
    )
    token = result["access_token"]
    provider = emulator.provider
    assert provider.resolve_access_token(token).expires_at == now[0] + timedelta(
        seconds=3599
    )
    assert provider.resolve_access_token("not-a-token") is None
    now[0] += timedelta(hours=1)
    assert provider.resolve_access_token(token) is None

    now[0] = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert provider.resolve_access_token(token) is not None
    provider.expire_access_tokens()
    assert provider.resolve_access_token(token) is None
    provider.reset()
    now[0] = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert provider.resolve_access_token(token) is None


def test_handles_only_identity_paths(emulator):
    provider = emulator.provider
    assert provider.handles(f"/{TENANT_ID}/oauth2/v2.0/token")
    assert provider.handles("/contoso.test/v2.0/.well-known/openid-configuration")
    assert provider.handles("/common/discovery/instance")
    assert not provider.handles("/v1.0/users/room.adams@contoso.test/calendar/events")
    assert not provider.handles("/v1.0/$batch")


def test_default_scenario_shape():
    scenario = load_scenario(None)
    assert scenario.tenant("CONTOSO.TEST").id == TENANT_ID
    adele = scenario.user("adelev@contoso.test")
    assert adele.display_name == "Adele Vance" and adele.mail == ADELE
    assert len(scenario.rooms) == 4
    assert all(room.time_zone == "Europe/Brussels" for room in scenario.rooms)
    assert scenario.share_role("ROOM.ADAMS@contoso.test", adele.id) == "write"
    assert (
        scenario.share_role("room.adams@contoso.test", "alexw@contoso.test") == "read"
    )
    assert scenario.share_role("room.adams@contoso.test", "meganb@contoso.test") is None
    daemon = scenario.app(DAEMON)
    assert len(daemon.rbac_scope) == 3
    assert scenario.app(WEB_APP).rbac_scope is None
    assert scenario.mailbox_exists(scenario.room("room.dune@contoso.test").id)
    assert scenario.events and all(
        scenario.mailbox_exists(e["mailbox"]) for e in scenario.events
    )


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda d: d["users"][1].pop("password"), r"users\[1\].*'password'"),
        (
            lambda d: d["shares"][0].update(role="owner"),
            r"shares\[0\].*unknown role 'owner'",
        ),
        (
            lambda d: d["rooms"][0].update(capacity="big"),
            r"rooms\[0\].*'capacity' must be an integer",
        ),
        (
            lambda d: d["apps"][1].update(rbac_scope=["nobody@contoso.test"]),
            r"apps\[1\].*unknown mailbox",
        ),
        (
            lambda d: d["events"][0].update(mailbox="ghost@contoso.test"),
            r"events\[0\].*unknown mailbox",
        ),
        (lambda d: d.update(tenants=[]), r"tenants"),
    ],
)
def test_malformed_scenarios_name_the_entry(mutation, message):
    from tests.emulator.scenario import DEFAULT_SCENARIO_PATH

    data = json.loads(DEFAULT_SCENARIO_PATH.read_text())
    mutation(data)
    with pytest.raises(ValueError, match=message):
        load_scenario(data)


def test_scenario_mutators():
    scenario = load_scenario("default")
    user = scenario.add_user("new.person@contoso.test", "New Person", "pw")
    room = scenario.add_room("room.new@contoso.test", "New room", capacity=3)
    scenario.add_share(room.email, user.upn, "read")
    scenario.add_share(room.email, user.upn, "write")
    assert scenario.share_role(room.id, user.id) == "write"
    app = scenario.add_app(display_name="Extra", secrets=["s3cret"])
    assert scenario.app(app.client_id).secrets[0].value == "s3cret"
    with pytest.raises(ValueError, match="already"):
        scenario.add_user("new.person@contoso.test", "Again", "pw")
