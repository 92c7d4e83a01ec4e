"""Entra ID (Azure AD v2) endpoints for the emulator, complete enough for plain MSAL.

Public API::

    AccessGrant(token, tenant_id, client_id, kind, user_id, upn, scopes, roles,
                expires_at)                       # frozen; kind: "delegated" | "app"
    IdentityProvider(scenario, *, clock=None, auto_consent=False,
                     access_token_lifetime=3600, refresh_token_lifetime_days=90,
                     code_lifetime=600, dynamic_consent=True,
                     invalidate_used_refresh_tokens=False, scope_echo="requested",
                     redirect_client_info=True, redirect_session_state=True)
        .base_url: str | None        # set by the server; None = the request's host URL
        .handles(path) -> bool
        .dispatch(request: werkzeug Request) -> werkzeug Response
        .resolve_access_token(token) -> AccessGrant | None
    malformed_token_message(token) -> str | None   # Graph's 401 text for a non-JWT
        .revoke_refresh_tokens(*, upn=None, client_id=None, reason="revoked") -> int
        .expire_access_tokens() -> None
        .expire_client_secret(client_id, secret_value=None) -> None
        .set_auto_consent(value) -> None
        .reset() -> None
    GRAPH_RESOURCE, GRAPH_APP_ID, SIGN_IN_COOKIE

Endpoints (``{tenant}`` = tenant GUID or verified domain; ``common``/``organizations``
where Entra accepts them)::

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /common/discovery/instance
    GET  /{tenant}/discovery/v2.0/keys          (also /{tenant}/discovery/keys)
    GET|POST /{tenant}/oauth2/v2.0/authorize    (sign-in and consent pages)
    POST /{tenant}/oauth2/v2.0/token            (authorization_code, refresh_token,
                                                 client_credentials)
    GET  /{tenant}/oauth2/v2.0/logout

Options for points docs/graph.md marks UNCONFIRMED
(docs/graph.md#unconfirmed-points-and-the-emulators-options):
``scope_echo`` ("requested" | "short" | "full": form of Graph scopes in the token
response ``scope``), ``redirect_client_info`` / ``redirect_session_state`` (extra fields
on the authorize redirect), ``invalidate_used_refresh_tokens`` (off by default, as
Entra: "The Microsoft identity platform doesn't revoke old refresh tokens when used
to fetch new access tokens", Microsoft Learn, *Refresh tokens in the Microsoft
identity platform*; on, a redeemed refresh token is refused with AADSTS70000, a
stricter server to surface rotation bugs),
``dynamic_consent`` (False: Graph scopes the app registration does not list are refused
with ``invalid_scope`` instead of being offered on the consent page).

Every issued access token is a real RS256 JWT (verifiable with the JWKS) and is also
kept in a table, so ``resolve_access_token`` is a lookup. Secrets, codes and tokens are
never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from .scenario import AppRegistration, Scenario, Tenant, User, x5t_of

_logger = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SIGN_IN_COOKIE = "ESTSAUTH"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations"})
ERROR_URI = "https://login.microsoftonline.com/error?code={code}"

# Graph delegated permissions the emulator knows of; any scope an app registration
# declares is also known. Others are refused as Entra does for scopes that do not exist
# on the resource.
GRAPH_DELEGATED_PERMISSIONS = frozenset(
    {
        "User.Read",
        "User.ReadBasic.All",
        "User.Read.All",
        "Calendars.Read",
        "Calendars.ReadBasic",
        "Calendars.ReadWrite",
        "Calendars.Read.Shared",
        "Calendars.ReadWrite.Shared",
        "Place.Read.All",
        "Mail.Read",
        "Mail.Send",
        "MailboxSettings.Read",
        "MailboxSettings.ReadWrite",
        "Directory.Read.All",
        "Group.Read.All",
    }
)
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "User.Read": "Sign you in and read your profile",
    "Calendars.ReadWrite.Shared": "Read and write user and shared calendars",
    "Calendars.Read.Shared": "Read user and shared calendars",
    "Calendars.ReadWrite": "Have full access to your calendars",
    "Calendars.Read": "Read your calendars",
    "Place.Read.All": "Read all company places",
}
_PATTERNS = {
    "instance": re.compile(r"^/common/discovery/instance/?$"),
    "openid": re.compile(
        r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration/?$"
    ),
    "keys": re.compile(r"^/(?P<tenant>[^/]+)/discovery/(?:v2\.0/)?keys/?$"),
    "oauth": re.compile(
        r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/(?P<op>authorize|token|logout)/?$"
    ),
}


@dataclass(frozen=True)
class AccessGrant:
    """What a bearer token stands for; Graph routes authorise requests with it."""

    token: str
    tenant_id: str
    client_id: str
    kind: str
    user_id: str | None
    upn: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    expires_at: datetime


# What Graph answers (401 InvalidAuthenticationToken) for a bearer token that is not
# a JWT in compact form: Microsoft.IdentityModel's messages, as Graph returns them
# (IDX14100 quoted from Graph's answer in MaikuB/flutter_appauth#575 and
# O365/python-o365#1111; IDX14102 in msgraph-sdk-powershell#3336; the others are the
# same library's messages for the other malformed shapes, with the token hidden as
# Graph hides it).
_JWT_FORMATS = (
    "\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
    "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
    "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector."
    "EncodedCiphertext.EncodedAuthenticationTag'."
)
_HIDDEN = (
    "[PII of type 'Microsoft.IdentityModel.Logging.SecurityArtifact' is hidden. For "
    "more details, see https://aka.ms/IdentityModel/PII.]"
)
_MALFORMED_BY_DOTS = {
    0: "IDX14100: JWT is not well formed, there are no dots (.).",
    1: "IDX14120: JWT is not well formed, there is only one dot (.).",
    3: "IDX14121: JWT is not a well formed JWE, there must be four dots (.).",
}
_TOO_MANY_DOTS = (
    "IDX14122: JWT is not a well formed JWE, there are more than four dots (.) a JWE "
    "can have at most 4 dots."
)


def malformed_token_message(token: str) -> str | None:
    """Graph's 401 message for a bearer token that is not a compact JWS/JWE, or whose
    JWS header or payload is not Base64Url-encoded JSON; None for a well-formed one
    (which is then valid, expired or unknown)."""
    dots = token.count(".")
    if dots in _MALFORMED_BY_DOTS:
        return _MALFORMED_BY_DOTS[dots] + _JWT_FORMATS
    if dots > 4:
        return _TOO_MANY_DOTS + _JWT_FORMATS
    if dots == 4:
        return None
    header, payload, _signature = token.split(".")
    for code, name, part in (
        ("14102", "header", header),
        ("14101", "payload", payload),
    ):
        if not _is_base64url_json(part):
            return (
                f"IDX{code}: Unable to decode the {name} '{_HIDDEN}' as Base64Url "
                "encoded string."
            )
    return None


def _is_base64url_json(part: str) -> bool:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", part):
        return False
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(value, dict)


class OAuthError(Exception):
    """An OAuth error answer: ``error`` plus an AADSTS code and message."""

    def __init__(
        self,
        error: str,
        code: int,
        message: str,
        *,
        status: int = 400,
        suberror: str | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.suberror = suberror


@dataclass
class _Flow:
    id: str
    tenant_segment: str
    tenant: Tenant | None
    app: AppRegistration
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    scope_items: list[str]
    code_challenge: str | None
    code_challenge_method: str
    prompt: str | None
    login_hint: str | None
    max_age: str | None
    client_info: bool
    correlation_id: str
    consent_shown: bool = False


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str
    tenant_id: str
    scope_items: list[str]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires_at: datetime
    auth_time: datetime
    with_auth_time: bool
    redeemed: bool = False


@dataclass
class _RefreshToken:
    client_id: str
    user_id: str
    tenant_id: str
    issued_at: datetime
    expires_at: datetime
    invalid_reason: str | None = None


@dataclass
class _Scopes:
    """A parsed ``scope`` parameter: OIDC scopes plus Graph scopes with their form."""

    oidc: set[str] = field(default_factory=set)
    graph: list[tuple[str, str]] = field(default_factory=list)
    default: str | None = None

    @property
    def short(self) -> set[str]:
        return {short for _form, short in self.graph}


@dataclass(frozen=True)
class _SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    jwk: dict[str, Any]


@lru_cache(maxsize=1)
def _signing_key() -> _SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.login")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    kid = _b64url(hashlib.sha1(der).digest())  # Entra's kid equals the x5t.
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "x5t": kid,
        "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": _b64url(numbers.e.to_bytes(3, "big")),
        "x5c": [base64.b64encode(der).decode()],
    }
    return _SigningKey(private_key=key, kid=kid, jwk=jwk)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _fold(value: str | None) -> str:
    return (value or "").strip().casefold()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _service_principal_id(client_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"servicePrincipal:{client_id.lower()}"))


def _with_params(uri: str, params: dict[str, str], separator: str) -> str:
    if separator == "?" and "?" in uri:
        separator = "&"
    return f"{uri}{separator}{urlencode(params, quote_via=quote)}"


class IdentityProvider:
    """The Entra ID v2 endpoints of one emulated cloud, backed by a ``Scenario``."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Callable[[], datetime] | None = None,
        auto_consent: bool = False,
        access_token_lifetime: int = 3600,
        refresh_token_lifetime_days: int = 90,
        code_lifetime: int = 600,
        dynamic_consent: bool = True,
        invalidate_used_refresh_tokens: bool = False,
        scope_echo: str = "requested",
        redirect_client_info: bool = True,
        redirect_session_state: bool = True,
    ) -> None:
        if scope_echo not in ("requested", "short", "full"):
            raise ValueError("scope_echo must be 'requested', 'short' or 'full'")
        self.scenario = scenario
        self.base_url: str | None = None
        self.auto_consent = auto_consent
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime_days = refresh_token_lifetime_days
        self.code_lifetime = code_lifetime
        self.dynamic_consent = dynamic_consent
        self.invalidate_used_refresh_tokens = invalidate_used_refresh_tokens
        self.scope_echo = scope_echo
        self.redirect_client_info = redirect_client_info
        self.redirect_session_state = redirect_session_state
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.RLock()
        self._key = _signing_key()
        self.reset()

    def reset(self) -> None:
        """Forget flows, codes, tokens, sign-in sessions and consents."""
        with self._lock:
            self._flows: dict[str, _Flow] = {}
            self._codes: dict[str, _Code] = {}
            self._refresh_tokens: dict[str, _RefreshToken] = {}
            self._access_tokens: dict[str, AccessGrant] = {}
            self._sessions: dict[str, str] = {}
            self._consents: dict[tuple[str, str], set[str]] = {}

    def set_auto_consent(self, value: bool) -> None:
        self.auto_consent = bool(value)

    def resolve_access_token(self, token: str) -> AccessGrant | None:
        """The grant behind a bearer token; None if unknown or expired."""
        with self._lock:
            grant = self._access_tokens.get(token)
        if grant is None or self._now() >= grant.expires_at:
            return None
        return grant

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (refresh tokens stay valid)."""
        past = self._now() - timedelta(seconds=1)
        with self._lock:
            for token, grant in list(self._access_tokens.items()):
                self._access_tokens[token] = replace(grant, expires_at=past)

    def revoke_refresh_tokens(
        self,
        *,
        upn: str | None = None,
        client_id: str | None = None,
        reason: str = "revoked",
    ) -> int:
        """Invalidate refresh tokens (all, or a user's and/or an app's); returns count.

        ``reason``: "revoked" (AADSTS50173, e.g. password reset or admin revoke),
        "inactive" (AADSTS700082) or "expired" (AADSTS70008). Revoking a user's
        sessions also ends that user's browser sign-in, as Entra does.
        """
        if reason not in ("revoked", "inactive", "expired"):
            raise ValueError("reason must be 'revoked', 'inactive' or 'expired'")
        user = self.scenario.user(upn) if upn else None
        if upn and user is None:
            raise ValueError(f"unknown user {upn!r}")
        count = 0
        with self._lock:
            for record in self._refresh_tokens.values():
                if user and record.user_id != user.id:
                    continue
                if client_id and _fold(record.client_id) != _fold(client_id):
                    continue
                if record.invalid_reason is None:
                    count += 1
                record.invalid_reason = reason
            if reason == "revoked":
                for sid, user_id in list(self._sessions.items()):
                    if user is None or user_id == user.id:
                        del self._sessions[sid]
        return count

    def expire_client_secret(
        self, client_id: str, secret_value: str | None = None
    ) -> None:
        """Make one (or every) client secret of an app expired."""
        app = self.scenario.app(client_id)
        if app is None:
            raise ValueError(f"unknown app {client_id!r}")
        past = self._now() - timedelta(seconds=1)
        matched = False
        for secret in app.secrets:
            if secret_value is None or hmac.compare_digest(secret.value, secret_value):
                secret.expires_at = past
                matched = True
        if not matched:
            raise ValueError(f"app {client_id!r}: no such secret")

    def handles(self, path: str) -> bool:
        if path.startswith(("/v1.0/", "/beta/")):
            return False
        return any(pattern.match(path) for pattern in _PATTERNS.values())

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if _PATTERNS["instance"].match(path):
            return self._instance_discovery(request)
        match = _PATTERNS["openid"].match(path)
        if match:
            return self._openid_configuration(request, unquote(match["tenant"]))
        match = _PATTERNS["keys"].match(path)
        if match:
            return self._json({"keys": [self._key.jwk]}, cache=True)
        match = _PATTERNS["oauth"].match(path)
        if match is None:
            return self._json({"error": "not_found"}, status=404)
        tenant_segment = unquote(match["tenant"])
        operation = match["op"]
        if operation == "token":
            return self._token_endpoint(request, tenant_segment)
        if operation == "logout":
            return self._logout(request)
        return self._authorize_endpoint(request, tenant_segment)

    def _now(self) -> datetime:
        return _utc(self._clock())

    def _base(self, request: Request) -> str:
        return (self.base_url or request.host_url).rstrip("/")

    def _resolve_tenant(self, segment: str) -> Tenant | None:
        return self.scenario.tenant(segment)

    def _json(
        self,
        body: dict[str, Any],
        *,
        status: int = 200,
        cache: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Response:
        response = Response(
            json.dumps(body),
            status=status,
            content_type="application/json; charset=utf-8",
        )
        response.headers["Cache-Control"] = (
            "max-age=86400, private" if cache else "no-store, no-cache"
        )
        if not cache:
            response.headers["Pragma"] = "no-cache"
        response.headers["x-ms-request-id"] = str(uuid.uuid4())
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _oauth_error_body(
        self, error: OAuthError, correlation_id: str | None = None
    ) -> dict[str, Any]:
        now = self._now()
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "error": error.error,
            "error_description": (
                f"AADSTS{error.code}: {error.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [error.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": ERROR_URI.format(code=error.code),
        }
        if error.suberror:
            body["suberror"] = error.suberror
        return body

    def _oauth_error(self, request: Request, error: OAuthError) -> Response:
        _logger.debug(
            "identity %s -> %s AADSTS%s", request.path, error.error, error.code
        )
        body = self._oauth_error_body(error, request.headers.get("client-request-id"))
        return self._json(body, status=error.status)

    def _instance_discovery(self, request: Request) -> Response:
        authorization_endpoint = request.args.get("authorization_endpoint", "")
        parts = urlsplit(authorization_endpoint)
        segments = [s for s in parts.path.split("/") if s]
        tenant = segments[0] if segments else "common"
        host = urlsplit(self._base(request)).netloc
        body = {
            "tenant_discovery_endpoint": (
                f"{self._base(request)}/{tenant}/v2.0/.well-known/openid-configuration"
            ),
            "api-version": request.args.get("api-version", "1.1"),
            "metadata": [
                {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
            ],
        }
        return self._json(body, cache=True)

    def _openid_configuration(self, request: Request, segment: str) -> Response:
        base = self._base(request)
        if _fold(segment) in MULTI_TENANT_SEGMENTS:
            realm, issuer_realm = segment.lower(), "{tenantid}"
        else:
            tenant = self._resolve_tenant(segment)
            if tenant is None:
                error = OAuthError(
                    "invalid_tenant", 90002, self._tenant_not_found(segment)
                )
                return self._oauth_error(request, error)
            realm = issuer_realm = tenant.id
        body = {
            "token_endpoint": f"{base}/{realm}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{realm}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": [
                "code",
                "id_token",
                "code id_token",
                "id_token token",
            ],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{issuer_realm}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{GRAPH_RESOURCE}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{realm}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{realm}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{realm}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{realm}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        return self._json(body, cache=True)

    @staticmethod
    def _tenant_not_found(segment: str) -> str:
        return (
            f"Tenant '{segment}' not found. Check to make sure you have the correct "
            "tenant ID and are signing into the correct cloud. Check with your "
            "subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant."
        )

    def _parse_scopes(self, raw: str | None, app: AppRegistration) -> _Scopes:
        """Split a ``scope`` parameter; refuse unknown resources and permissions."""
        parsed = _Scopes()
        known = GRAPH_DELEGATED_PERMISSIONS | app.delegated_scopes
        for item in (raw or "").split():
            if item in OIDC_SCOPES:
                parsed.oidc.add(item)
                continue
            short = self._graph_short_name(item)
            if short == ".default":
                parsed.default = item
                continue
            if short not in known:
                raise OAuthError(
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not "
                    f"valid. The scope '{item}' does not exist.",
                )
            if not self.dynamic_consent and short not in app.delegated_scopes:
                raise OAuthError(
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not "
                    f"valid. The scope '{item}' is not configured for the app.",
                )
            parsed.graph.append((item, short))
        if parsed.default:
            for short in sorted(app.delegated_scopes - OIDC_SCOPES):
                if short not in parsed.short:
                    parsed.graph.append((f"{GRAPH_RESOURCE}/{short}", short))
        return parsed

    def _graph_resources(self) -> tuple[str, ...]:
        """Graph's resource URIs: Microsoft's, the app id, and the emulator's own
        base URL (what a custom-cloud connection uses as its Graph resource)."""
        own = (self.base_url or "").rstrip("/")
        return (GRAPH_RESOURCE, GRAPH_APP_ID) + ((own,) if own else ())

    def _graph_short_name(self, item: str) -> str:
        for resource in self._graph_resources():
            prefix = f"{_fold(resource)}/"
            if item.lower().startswith(prefix):
                return item[len(prefix) :].lstrip("/")
        if "/" in item or ":" in item:
            resource = item.rsplit("/", 1)[0]
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant.",
            )
        return item

    def _echo_scope(self, scopes: _Scopes, granted: set[str]) -> str:
        items = []
        for form, short in scopes.graph:
            if short not in granted:
                continue
            if self.scope_echo == "short":
                items.append(short)
            elif self.scope_echo == "full" or scopes.default:
                items.append(f"{GRAPH_RESOURCE}/{short}")
            else:
                items.append(form)
        if "openid" in scopes.oidc:
            items += ["openid", "profile", "email"]
        else:
            items += sorted(scopes.oidc & {"profile", "email"})
        return " ".join(dict.fromkeys(items))

    def _render_page(self, title: str, body: str, *, status: int = 200) -> Response:
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: "Segoe UI", Arial, sans-serif; background: #f2f2f2; margin: 0; }}
main {{ max-width: 440px; margin: 60px auto; background: #fff; padding: 44px;
       box-shadow: 0 2px 6px rgba(0,0,0,.2); }}
h1 {{ font-size: 24px; font-weight: 600; margin: 0 0 16px; }}
label {{ display: block; margin-top: 12px; }}
input[type=text], input[type=email], input[type=password] {{
  width: 100%; box-sizing: border-box; padding: 6px 0; border: 0;
  border-bottom: 1px solid #666; font-size: 15px; }}
button {{ margin-top: 24px; padding: 6px 24px; font-size: 15px; border: 0;
          background: #0067b8; color: #fff; cursor: pointer; }}
button.secondary {{ background: #ccc; color: #000; }}
.error {{ color: #e81123; }}
.muted {{ color: #666; font-size: 13px; }}
</style></head>
<body><main>
<div class="muted">Microsoft identity platform emulator</div>
{body}
</main></body></html>"""
        response = Response(
            page, status=status, content_type="text/html; charset=utf-8"
        )
        response.headers["Cache-Control"] = "no-store, no-cache"
        return response

    def _error_page(self, code: int, message: str, *, status: int = 400) -> Response:
        body = (
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f'<p id="error-code">AADSTS{code}</p>'
            f'<p id="error-message" class="error">AADSTS{code}: '
            f"{html.escape(message)}</p>"
        )
        return self._render_page("Sign in error", body, status=status)

    def _authorize_endpoint(self, request: Request, tenant_segment: str) -> Response:
        with self._lock:
            if request.method == "POST" and request.form.get("flow"):
                return self._authorize_step(request)
            if request.method not in ("GET", "POST"):
                return self._error_page(9002313, "Invalid request.", status=405)
            return self._authorize_start(request, tenant_segment)

    def _authorize_start(self, request: Request, tenant_segment: str) -> Response:
        params = request.values
        tenant = None
        if _fold(tenant_segment) not in MULTI_TENANT_SEGMENTS:
            tenant = self._resolve_tenant(tenant_segment)
            if tenant is None:
                return self._error_page(90002, self._tenant_not_found(tenant_segment))
        client_id = params.get("client_id")
        if not client_id:
            return self._error_page(
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.scenario.app(client_id)
        if app is None or (tenant is not None and app.tenant_id != tenant.id):
            directory = tenant.display_name if tenant else tenant_segment
            return self._error_page(
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{directory}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by "
                "any user in the tenant. You may have sent your authentication "
                "request to the wrong tenant.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            # Entra never redirects to an unregistered URI: it shows an error page.
            return self._error_page(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not "
                "match the redirect URIs configured for the application "
                f"'{app.client_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal. Navigate "
                "to https://aka.ms/redirectUriMismatchError to learn more about how to "
                "fix this.",
            )
        flow = _Flow(
            id=secrets.token_urlsafe(24),
            tenant_segment=tenant_segment,
            tenant=tenant,
            app=app,
            redirect_uri=redirect_uri,
            response_mode=params.get("response_mode") or "query",
            state=params.get("state"),
            nonce=params.get("nonce"),
            scope_items=(params.get("scope") or "").split(),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method") or "plain",
            prompt=params.get("prompt"),
            login_hint=params.get("login_hint"),
            max_age=params.get("max_age"),
            client_info=params.get("client_info") == "1",
            correlation_id=request.headers.get("client-request-id")
            or str(uuid.uuid4()),
        )
        if flow.response_mode not in ("query", "fragment", "form_post"):
            flow.response_mode = "query"
            return self._redirect_error(
                flow,
                OAuthError("invalid_request", 9002313, "Invalid response_mode."),
            )
        try:
            self._check_authorize_request(flow, params.get("response_type"))
        except OAuthError as error:
            return self._redirect_error(flow, error)
        self._flows[flow.id] = flow
        return self._authorize_continue(request, flow, self._session_user(request))

    def _check_authorize_request(self, flow: _Flow, response_type: str | None) -> None:
        if not response_type:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: "
                "'response_type'.",
            )
        if response_type.split() != ["code"]:
            raise OAuthError(
                "unsupported_response_type",
                70005,
                f"response_type '{response_type}' is not enabled for the application.",
            )
        if not flow.scope_items:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        if flow.code_challenge and flow.code_challenge_method not in ("S256", "plain"):
            raise OAuthError(
                "invalid_request",
                9002313,
                "Invalid request. Request is malformed or invalid: unsupported "
                f"code_challenge_method '{flow.code_challenge_method}'.",
            )
        if flow.prompt and flow.prompt not in (
            "login",
            "none",
            "consent",
            "select_account",
        ):
            raise OAuthError(
                "invalid_request", 90023, f"Invalid prompt value '{flow.prompt}'."
            )
        self._parse_scopes(" ".join(flow.scope_items), flow.app)

    def _session_user(self, request: Request) -> User | None:
        sid = request.cookies.get(SIGN_IN_COOKIE)
        user_id = self._sessions.get(sid or "")
        return self.scenario.user(user_id) if user_id else None

    def _user_fits(self, flow: _Flow, user: User) -> bool:
        if flow.tenant is not None and user.tenant_id != flow.tenant.id:
            return False
        return user.tenant_id == flow.app.tenant_id

    def _auto_consent_user(self, flow: _Flow, session_user: User | None) -> User | None:
        hinted = self.scenario.user(flow.login_hint) if flow.login_hint else None
        for candidate in (hinted, session_user):
            if candidate is not None and self._user_fits(flow, candidate):
                return candidate
        return next((u for u in self.scenario.users if self._user_fits(flow, u)), None)

    def _authorize_continue(
        self, request: Request, flow: _Flow, session_user: User | None
    ) -> Response:
        if self.auto_consent:
            user = self._auto_consent_user(flow, session_user)
            if user is not None:
                self._grant_consent(user, flow)
                return self._issue_code(flow, user, new_session=user)
        if session_user is not None and not self._user_fits(flow, session_user):
            session_user = None
        hinted = self.scenario.user(flow.login_hint) if flow.login_hint else None
        if session_user and hinted and hinted.id != session_user.id:
            session_user = None
        if flow.prompt == "none":
            if session_user is None:
                return self._redirect_error(
                    flow,
                    OAuthError(
                        "login_required",
                        50058,
                        "A silent sign-in request was sent but no user is signed in.",
                    ),
                )
            if self._missing_consent(flow, session_user):
                return self._redirect_error(
                    flow,
                    OAuthError(
                        "consent_required",
                        65001,
                        "The user or administrator has not consented to use the "
                        f"application with ID '{flow.app.client_id}' named "
                        f"'{flow.app.display_name}'.",
                    ),
                )
            return self._issue_code(flow, session_user)
        if session_user is None or flow.prompt in ("login", "select_account"):
            return self._sign_in_page(flow)
        return self._after_sign_in(flow, session_user)

    def _after_sign_in(
        self, flow: _Flow, user: User, new_session: User | None = None
    ) -> Response:
        needs_consent = bool(self._missing_consent(flow, user))
        if needs_consent or (flow.prompt == "consent" and not flow.consent_shown):
            flow.consent_shown = True
            return self._consent_page(flow, user, new_session=new_session)
        return self._issue_code(flow, user, new_session=new_session)

    def _requested_grants(self, flow: _Flow) -> set[str]:
        scopes = self._parse_scopes(" ".join(flow.scope_items), flow.app)
        return scopes.short | (scopes.oidc & {"offline_access"})

    def _missing_consent(self, flow: _Flow, user: User) -> set[str]:
        granted = self._consents.get((user.id, flow.app.client_id), set())
        return self._requested_grants(flow) - granted

    def _grant_consent(self, user: User, flow: _Flow) -> None:
        key = (user.id, flow.app.client_id)
        self._consents.setdefault(key, set()).update(self._requested_grants(flow))

    def _authorize_step(self, request: Request) -> Response:
        flow = self._flows.get(request.form.get("flow", ""))
        if flow is None:
            return self._error_page(
                50058, "The sign-in session has expired. Start the sign-in again."
            )
        action = request.form.get("action", "")
        if action == "sign-in":
            return self._sign_in_submit(request, flow)
        user = self.scenario.user(request.form.get("user_id"))
        session_user = self._session_user(request)
        if user is None or session_user is None or session_user.id != user.id:
            return self._sign_in_page(flow)
        if action == "accept":
            self._grant_consent(user, flow)
            return self._issue_code(flow, user)
        if action == "cancel":
            return self._redirect_error(
                flow,
                OAuthError(
                    "access_denied",
                    65004,
                    "User declined to consent to access the app.",
                ),
            )
        return self._error_page(9002313, "Invalid request. Unknown action.")

    def _sign_in_submit(self, request: Request, flow: _Flow) -> Response:
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = self.scenario.user(username)
        if user is None or not self._user_fits(flow, user):
            directory = flow.tenant.display_name if flow.tenant else "organization"
            return self._sign_in_page(
                flow,
                username=username,
                error=f"AADSTS50034: The user account {username} does not exist in "
                f"the {directory} directory.",
            )
        if not hmac.compare_digest(user.password.encode(), password.encode()):
            return self._sign_in_page(
                flow,
                username=username,
                error="AADSTS50126: Error validating credentials due to invalid "
                "username or password.",
            )
        return self._after_sign_in(flow, user, new_session=user)

    def _sign_in_page(
        self, flow: _Flow, *, username: str | None = None, error: str | None = None
    ) -> Response:
        value = username if username is not None else (flow.login_hint or "")
        error_html = (
            f'<p id="error" class="error">{html.escape(error)}</p>' if error else ""
        )
        body = f"""<h1>Sign in</h1>
<p class="muted">to continue to {html.escape(flow.app.display_name)}</p>
{error_html}
<form id="sign-in-form" method="post" action="" autocomplete="off">
<input type="hidden" name="flow" value="{html.escape(flow.id)}">
<input type="hidden" name="action" value="sign-in">
<label for="username">Email, phone, or Skype</label>
<input type="email" id="username" name="username" value="{html.escape(value)}" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>"""
        return self._render_page("Sign in to your account", body)

    def _consent_page(
        self, flow: _Flow, user: User, new_session: User | None = None
    ) -> Response:
        requested = self._parse_scopes(" ".join(flow.scope_items), flow.app)
        names = sorted(requested.short) + sorted(requested.oidc)
        items = "\n".join(
            f'<li data-scope="{html.escape(name)}">'
            f"{html.escape(SCOPE_DESCRIPTIONS.get(name, name))} "
            f'<span class="muted">({html.escape(name)})</span></li>'
            for name in names
        )
        body = f"""<h1>Permissions requested</h1>
<p id="consent-user" class="muted">{html.escape(user.upn)}</p>
<p><strong id="app-name">{html.escape(flow.app.display_name)}</strong>
would like to:</p>
<ul id="scopes">
{items}
</ul>
<form id="consent-form" method="post" action="">
<input type="hidden" name="flow" value="{html.escape(flow.id)}">
<input type="hidden" name="user_id" value="{html.escape(user.id)}">
<button type="submit" id="cancel" name="action" value="cancel" class="secondary">
Cancel</button>
<button type="submit" id="accept" name="action" value="accept">Accept</button>
</form>"""
        response = self._render_page("Permissions requested", body)
        if new_session is not None:
            self._start_session(response, new_session)
        return response

    def _start_session(self, response: Response, user: User) -> None:
        sid = secrets.token_urlsafe(24)
        self._sessions[sid] = user.id
        response.set_cookie(
            SIGN_IN_COOKIE, sid, path="/", secure=True, httponly=True, samesite="None"
        )

    def _logout(self, request: Request) -> Response:
        with self._lock:
            self._sessions.pop(request.cookies.get(SIGN_IN_COOKIE, ""), None)
        target = request.args.get("post_logout_redirect_uri")
        if target:
            response = Response(status=302, headers={"Location": target})
        else:
            response = self._render_page(
                "Signed out", '<h1 id="signed-out">You signed out of your account</h1>'
            )
        response.delete_cookie(SIGN_IN_COOKIE, path="/")
        return response

    def _client_info(self, user: User) -> str:
        data = json.dumps({"uid": user.id, "utid": user.tenant_id}).encode()
        return _b64url(data)

    def _issue_code(
        self, flow: _Flow, user: User, new_session: User | None = None
    ) -> Response:
        now = self._now()
        code = "1.A" + secrets.token_urlsafe(64)
        self._codes[code] = _Code(
            client_id=flow.app.client_id,
            redirect_uri=flow.redirect_uri,
            user_id=user.id,
            tenant_id=user.tenant_id,
            scope_items=list(flow.scope_items),
            nonce=flow.nonce,
            code_challenge=flow.code_challenge,
            code_challenge_method=flow.code_challenge_method,
            expires_at=now + timedelta(seconds=self.code_lifetime),
            auth_time=now,
            with_auth_time=flow.max_age is not None,
        )
        self._flows.pop(flow.id, None)
        params = {"code": code}
        if flow.state is not None:
            params["state"] = flow.state
        if self.redirect_client_info and flow.client_info:
            params["client_info"] = self._client_info(user)
        if self.redirect_session_state:
            params["session_state"] = str(uuid.uuid5(uuid.NAMESPACE_OID, user.id))
        response = self._deliver(flow, params)
        if new_session is not None:
            self._start_session(response, new_session)
        return response

    def _redirect_error(self, flow: _Flow, error: OAuthError) -> Response:
        self._flows.pop(flow.id, None)
        body = self._oauth_error_body(error, flow.correlation_id)
        params = {
            "error": error.error,
            "error_description": body["error_description"],
            "error_uri": body["error_uri"],
        }
        if flow.state is not None:
            params["state"] = flow.state
        return self._deliver(flow, params)

    def _deliver(self, flow: _Flow, params: dict[str, str]) -> Response:
        if flow.response_mode == "form_post":
            fields = "\n".join(
                f'<input type="hidden" name="{html.escape(name)}" '
                f'value="{html.escape(value)}">'
                for name, value in params.items()
            )
            body = f"""<form id="form-post" method="post"
 action="{html.escape(flow.redirect_uri)}">
{fields}
<noscript><p>Script is disabled. Click Submit to continue.</p>
<button type="submit" id="submit">Submit</button></noscript>
</form>
<script>document.getElementById("form-post").submit();</script>"""
            return self._render_page("Working...", body)
        separator = "#" if flow.response_mode == "fragment" else "?"
        location = _with_params(flow.redirect_uri, params, separator)
        return Response(status=302, headers={"Location": location})

    def _token_endpoint(self, request: Request, tenant_segment: str) -> Response:
        try:
            if request.method != "POST":
                raise OAuthError(
                    "invalid_request",
                    900561,
                    "The endpoint only accepts POST, OPTIONS requests. Received a "
                    f"{request.method} request.",
                )
            with self._lock:
                body = self._token_grant(request, tenant_segment)
        except OAuthError as error:
            return self._oauth_error(request, error)
        _logger.debug("identity token %s -> 200", request.form.get("grant_type"))
        return self._json(body)

    def _token_grant(self, request: Request, tenant_segment: str) -> dict[str, Any]:
        form = request.form
        tenant: Tenant | None = None
        if _fold(tenant_segment) not in MULTI_TENANT_SEGMENTS:
            tenant = self._resolve_tenant(tenant_segment)
            if tenant is None:
                raise OAuthError(
                    "invalid_request", 90002, self._tenant_not_found(tenant_segment)
                )
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        handlers = {
            "authorization_code": self._grant_authorization_code,
            "refresh_token": self._grant_refresh_token,
            "client_credentials": self._grant_client_credentials,
        }
        handler = handlers.get(grant_type)
        if handler is None:
            raise OAuthError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        app = self._authenticate_client(request, tenant, tenant_segment)
        return handler(request, app, tenant, tenant_segment)

    def _client_id_and_secret(self, request: Request) -> tuple[str | None, str | None]:
        form = request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id = client_id or unquote(auth.username or "")
            secret = secret or unquote(auth.password or "")
        return client_id, secret

    def _authenticate_client(
        self, request: Request, tenant: Tenant | None, tenant_segment: str
    ) -> AppRegistration:
        client_id, secret = self._client_id_and_secret(request)
        if not client_id:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.scenario.app(client_id)
        if app is None or (tenant is not None and app.tenant_id != tenant.id):
            directory = tenant.display_name if tenant else tenant_segment
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{directory}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by "
                "any user in the tenant. You may have sent your authentication "
                "request to the wrong tenant.",
            )
        assertion = request.form.get("client_assertion")
        if assertion:
            assertion_type = request.form.get("client_assertion_type")
            if assertion_type != JWT_BEARER:
                raise OAuthError(
                    "invalid_request",
                    50027,
                    f"Invalid client_assertion_type; expected '{JWT_BEARER}'.",
                )
            self._verify_assertion(request, app, assertion, tenant_segment)
            return app
        if secret:
            self._verify_secret(app, secret)
            return app
        raise OAuthError(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
            status=401,
        )

    def _verify_secret(self, app: AppRegistration, secret: str) -> None:
        now = self._now()
        for candidate in app.secrets:
            if hmac.compare_digest(candidate.value.encode(), secret.encode()):
                if candidate.expires_at is not None and now >= candidate.expires_at:
                    raise OAuthError(
                        "invalid_client",
                        7000222,
                        f"The provided client secret keys for app '{app.client_id}' "
                        "are expired. Visit the Azure portal to create new keys for "
                        "your app: https://aka.ms/NewClientSecret, or consider using "
                        "certificate credentials for added security: "
                        "https://aka.ms/certCreds.",
                        status=401,
                    )
                return
        raise OAuthError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID, for a "
            f"secret added to app '{app.client_id}'.",
            status=401,
        )

    def _token_endpoint_urls(self, request: Request, app: AppRegistration) -> set[str]:
        tenant = self.scenario.tenant(app.tenant_id)
        segments = {app.tenant_id}
        if tenant is not None:
            segments.add(tenant.domain)
        bases = {self._base(request), request.host_url.rstrip("/")}
        bases.add("https://login.microsoftonline.com")
        return {
            f"{base}/{segment}/oauth2/v2.0/token".casefold()
            for base in bases
            for segment in segments
        }

    def _verify_assertion(
        self, request: Request, app: AppRegistration, assertion: str, segment: str
    ) -> None:
        def fail(code: int, message: str) -> OAuthError:
            return OAuthError("invalid_client", code, message, status=401)

        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise fail(50027, "JWT token is invalid or malformed.") from None
        algorithm = header.get("alg")
        # MSAL sends base64url thumbprints with their "=" padding; RFC 7515 has none.
        x5t = str(header.get("x5t") or "").rstrip("=")
        x5t_s256 = str(header.get("x5t#S256") or "").rstrip("=")
        certificate = None
        for candidate in app.certificates:
            if (x5t and x5t == x5t_of(candidate.thumbprint)) or (
                x5t_s256 and x5t_s256 == self._x5t_s256(candidate.public_pem)
            ):
                certificate = candidate
                break
        if certificate is None or algorithm not in ("RS256", "PS256"):
            raise fail(
                700027,
                "Client assertion failed signature validation. (Reason - The key was "
                "not found.)",
            )
        now = self._now()
        if certificate.expires_at is not None and now >= certificate.expires_at:
            raise fail(
                700027,
                "Client assertion failed signature validation. (Reason - The "
                "certificate has expired.)",
            )
        cert = x509.load_pem_x509_certificate(certificate.public_pem.encode())
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=[algorithm],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError:
            raise fail(
                700027,
                "Client assertion failed signature validation. (Reason - The provided "
                "signature value did not match the expected signature value.)",
            ) from None
        except jwt.PyJWTError:
            raise fail(50027, "JWT token is invalid or malformed.") from None
        self._check_assertion_claims(request, app, claims, now)

    def _check_assertion_claims(
        self,
        request: Request,
        app: AppRegistration,
        claims: dict[str, Any],
        now: datetime,
    ) -> None:
        skew = 300
        timestamp = now.timestamp()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (
            not isinstance(exp, int | float)
            or exp + skew <= timestamp
            or (isinstance(nbf, int | float) and nbf - skew > timestamp)
        ):
            raise OAuthError(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
                status=401,
            )
        if _fold(claims.get("iss")) != _fold(app.client_id) or _fold(
            claims.get("sub")
        ) != _fold(app.client_id):
            raise OAuthError(
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' "
                "parameter.",
                status=401,
            )
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        allowed = self._token_endpoint_urls(request, app)
        if not any(_fold(aud) in allowed for aud in audiences or []):
            raise OAuthError(
                "invalid_client",
                700027,
                "Client assertion failed signature validation. (Reason - The "
                "audience claim does not match the token endpoint.)",
                status=401,
            )

    @staticmethod
    def _x5t_s256(public_pem: str) -> str:
        cert = x509.load_pem_x509_certificate(public_pem.encode())
        return _b64url(cert.fingerprint(hashes.SHA256()))

    def _grant_authorization_code(
        self,
        request: Request,
        app: AppRegistration,
        tenant: Tenant | None,
        tenant_segment: str,
    ) -> dict[str, Any]:
        form = request.form
        code_value = form.get("code", "")
        record = self._codes.get(code_value)
        if record is None or _fold(record.client_id) != _fold(app.client_id):
            raise OAuthError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the provided "
                "authorization code is not valid.",
            )
        if record.redeemed:
            raise OAuthError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a "
                "new valid code or use an existing refresh token.",
            )
        if self._now() >= record.expires_at:
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this "
                "user and resource.",
            )
        if tenant is not None and tenant.id != record.tenant_id:
            raise OAuthError(
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, "
                "thus rejected.",
            )
        if form.get("redirect_uri", "") != record.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                500112,
                f"The reply address '{form.get('redirect_uri', '')}' does not match "
                f"the reply address '{record.redirect_uri}' provided when requesting "
                "Authorization code.",
            )
        self._check_pkce(record, form.get("code_verifier"))
        record.redeemed = True
        user = self.scenario.user(record.user_id)
        if user is None:
            raise OAuthError("invalid_grant", 50034, "The user account does not exist.")
        requested = form.get("scope") or " ".join(record.scope_items)
        scopes = self._parse_scopes(requested, app)
        extra_claims = {"auth_time": int(record.auth_time.timestamp())}
        return self._user_token_response(
            request,
            app,
            user,
            scopes,
            nonce=record.nonce,
            extra_id_claims=extra_claims if record.with_auth_time else None,
        )

    @staticmethod
    def _check_pkce(record: _Code, verifier: str | None) -> None:
        if not record.code_challenge:
            return
        if not verifier:
            raise OAuthError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
        if record.code_challenge_method == "S256":
            computed = _b64url(
                hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            )
        else:
            computed = verifier
        if not hmac.compare_digest(computed.encode(), record.code_challenge.encode()):
            raise OAuthError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )

    def _grant_refresh_token(
        self,
        request: Request,
        app: AppRegistration,
        tenant: Tenant | None,
        tenant_segment: str,
    ) -> dict[str, Any]:
        value = request.form.get("refresh_token", "")
        record = self._refresh_tokens.get(value)
        if record is None or _fold(record.client_id) != _fold(app.client_id):
            raise OAuthError(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token "
                "is not valid.",
            )
        now = self._now()
        reason = record.invalid_reason
        if reason is None and now >= record.expires_at:
            reason = "inactive"
        self._raise_for_refresh_reason(reason, record)
        user = self.scenario.user(record.user_id)
        if user is None or (tenant is not None and tenant.id != record.tenant_id):
            raise OAuthError(
                "invalid_grant",
                9002313,
                "Invalid request: the refresh token is not valid.",
            )
        scopes = self._parse_scopes(request.form.get("scope"), app)
        consented = self._consents.get((user.id, app.client_id), set())
        missing = scopes.short - consented
        if scopes.default:
            scopes.graph = [(f, s) for f, s in scopes.graph if s in consented]
        elif missing:
            raise OAuthError(
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application "
                f"with ID '{app.client_id}' named '{app.display_name}'. Send an "
                "interactive authorization request for this user and resource.",
                suberror="consent_required",
            )
        if self.invalidate_used_refresh_tokens:
            record.invalid_reason = "redeemed"
        scopes.oidc.add("offline_access")
        return self._user_token_response(request, app, user, scopes, nonce=None)

    def _raise_for_refresh_reason(
        self, reason: str | None, record: _RefreshToken
    ) -> None:
        if reason is None:
            return
        if reason == "revoked":
            raise OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth "
                "token is needed. The user might have changed or reset their password. "
                f"The grant was issued on '{record.issued_at:%Y-%m-%dT%H:%M:%S.%fZ}' "
                "and the TokensValidFrom date (before which tokens are not valid) for "
                f"this user is '{self._now():%Y-%m-%dT%H:%M:%S.%fZ}'.",
                suberror="bad_token",
            )
        if reason == "expired":
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this "
                "user and resource.",
                suberror="bad_token",
            )
        if reason == "inactive":
            raise OAuthError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was "
                f"issued on {record.issued_at:%Y-%m-%dT%H:%M:%S.%fZ} and was inactive "
                f"for {self.refresh_token_lifetime_days}.00:00:00.",
                suberror="bad_token",
            )
        raise OAuthError(
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed: the refresh token was already "
            "redeemed.",
            suberror="bad_token",
        )

    def _grant_client_credentials(
        self,
        request: Request,
        app: AppRegistration,
        tenant: Tenant | None,
        tenant_segment: str,
    ) -> dict[str, Any]:
        if tenant is None:
            raise OAuthError(
                "invalid_request",
                900023,
                f"Specified tenant identifier '{tenant_segment}' is neither a valid "
                "DNS name, nor a valid external domain.",
            )
        scope = request.form.get("scope", "").strip()
        if not scope:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        items = scope.split()
        if len(items) != 1 or not items[0].endswith("/.default"):
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
            )
        resource = items[0][: -len("/.default")].rstrip("/")
        if _fold(resource) not in {_fold(r) for r in self._graph_resources()}:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant "
                f"named {tenant.display_name}.",
            )
        lifetime = max(self.access_token_lifetime - 1, 1)
        uses_certificate = bool(request.form.get("client_assertion"))
        token = self._issue_access_token(
            app, tenant.id, None, set(), set(app.app_roles), lifetime, uses_certificate
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _user_token_response(
        self,
        request: Request,
        app: AppRegistration,
        user: User,
        scopes: _Scopes,
        *,
        nonce: str | None,
        extra_id_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        consented = self._consents.get((user.id, app.client_id), set())
        granted = scopes.short & consented
        lifetime = self.access_token_lifetime
        uses_certificate = bool(request.form.get("client_assertion"))
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": self._echo_scope(scopes, granted),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self._issue_access_token(
                app, user.tenant_id, user, granted, set(), lifetime, uses_certificate
            ),
        }
        if "offline_access" in scopes.oidc and "offline_access" in consented:
            body["refresh_token"] = self._issue_refresh_token(app, user)
        if "openid" in scopes.oidc:
            body["id_token"] = self._id_token(
                request, app, user, nonce, extra_id_claims or {}
            )
        body["client_info"] = self._client_info(user)
        return body

    def _issue_refresh_token(self, app: AppRegistration, user: User) -> str:
        now = self._now()
        value = "1.AR" + secrets.token_urlsafe(96)
        self._refresh_tokens[value] = _RefreshToken(
            client_id=app.client_id,
            user_id=user.id,
            tenant_id=user.tenant_id,
            issued_at=now,
            expires_at=now + timedelta(days=self.refresh_token_lifetime_days),
        )
        return value

    def _sign(self, claims: dict[str, Any]) -> str:
        headers = {"typ": "JWT", "kid": self._key.kid, "x5t": self._key.kid}
        return jwt.encode(
            claims, self._key.private_key, algorithm="RS256", headers=headers
        )

    def _issue_access_token(
        self,
        app: AppRegistration,
        tenant_id: str,
        user: User | None,
        scopes: Iterable[str],
        roles: Iterable[str],
        lifetime: int,
        uses_certificate: bool,
    ) -> str:
        now = self._now()
        expires_at = now + timedelta(seconds=lifetime)
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if uses_certificate else "1",
            "tid": tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        scope_set, role_set = frozenset(scopes), frozenset(roles)
        if user is not None:
            claims.update(
                {
                    "idtyp": "user",
                    "name": user.display_name,
                    "oid": user.id,
                    "sub": _b64url(
                        hashlib.sha256(f"{user.id}:{app.client_id}".encode()).digest()
                    ),
                    "upn": user.upn,
                    "unique_name": user.upn,
                    "scp": " ".join(sorted(scope_set)),
                }
            )
        else:
            principal = _service_principal_id(app.client_id)
            claims.update({"idtyp": "app", "oid": principal, "sub": principal})
            if role_set:
                claims["roles"] = sorted(role_set)
        token = self._sign(claims)
        self._access_tokens[token] = AccessGrant(
            token=token,
            tenant_id=tenant_id,
            client_id=app.client_id,
            kind="delegated" if user is not None else "app",
            user_id=user.id if user else None,
            upn=user.upn if user else None,
            scopes=scope_set if user is not None else frozenset(),
            roles=role_set if user is None else frozenset(),
            expires_at=expires_at,
        )
        return token

    def _id_token(
        self,
        request: Request,
        app: AppRegistration,
        user: User,
        nonce: str | None,
        extra: dict[str, Any],
    ) -> str:
        now = self._now()
        claims: dict[str, Any] = {
            "ver": "2.0",
            "iss": f"{self._base(request)}/{user.tenant_id}/v2.0",
            "aud": app.client_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(hours=1)).timestamp()),
            "oid": user.id,
            "sub": _b64url(
                hashlib.sha256(f"{user.id}:{app.client_id}".encode()).digest()
            ),
            "tid": user.tenant_id,
            "preferred_username": user.upn,
            "name": user.display_name,
            "email": user.mail,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(extra)
        return self._sign(claims)
