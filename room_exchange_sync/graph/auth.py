"""Tokens for Microsoft Graph through MSAL's confidential client.

Public API:

- ``GRAPH_DELEGATED_PERMISSIONS``, ``PLACES_PERMISSION``;
- ``delegated_scopes(graph_resource, *, places=False)``, ``app_scopes(graph_resource)``;
- ``SignedInAccount`` (frozen dataclass);
- ``TokenProvider``: the sign-in flow (``start_sign_in``/``finish_sign_in``), access
  tokens (``access_token``), the accounts of its token cache (``accounts``,
  ``forget_account``) and the cache state (``cache_changed``, ``serialize_cache``).

Errors: MSAL's ``{"error": ...}`` dicts become ``GraphError`` subclasses through
``errors.error_from_msal`` only. Network failures towards the authority become
``GraphRetryableError``: an unreachable host (DNS, closed port, timeout) may be a typo
or an outage, and retrying later is harmless for both, while the message names the host
so a typo is visible. An authority that answers but is not a valid Entra authority
(not https, unknown tenant) is a ``GraphConfigurationError``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from .errors import (
    AuthFlowError,
    GraphAuthError,
    GraphConfigurationError,
    GraphRetryableError,
    error_from_msal,
)
from .http import ExplicitHttpClient

GRAPH_DELEGATED_PERMISSIONS = ("Calendars.ReadWrite.Shared", "User.Read")
PLACES_PERMISSION = "Place.Read.All"
# Only this host is in MSAL's list of known authorities; for any other (national
# clouds aside, an emulator or a proxy) instance discovery would call
# login.microsoftonline.com (docs/graph.md#authorities-and-instance-discovery).
PUBLIC_AUTHORITY_HOST = "login.microsoftonline.com"
SIGN_IN_FLOW_LIFETIME = 15 * 60
_T = TypeVar("_T")


class _WithoutMsalDebug(logging.Filter):
    """MSAL logs each token request at DEBUG with the authorization code in clear
    (it masks the other secrets): such records never reach any log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def _silence_msal_debug() -> None:
    # A logger's filters do not apply to its children, so every MSAL module's logger
    # gets the filter (they all exist once msal is imported).
    names = [
        name
        for name in logging.root.manager.loggerDict
        if name == "msal" or name.startswith("msal.")
    ]
    for name in names or ["msal"]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutMsalDebug) for f in logger.filters):
            logger.addFilter(_WithoutMsalDebug())


_silence_msal_debug()


def delegated_scopes(graph_resource: str, *, places: bool = False) -> list[str]:
    """Delegated scopes in full-URI form (``https://graph.microsoft.com/User.Read``).

    Always the same form, because MSAL finds a cached token only when the requested
    scopes are a subset of the scopes Entra echoed for it
    (docs/graph.md#scopes-in-one-form).
    """
    resource = graph_resource.rstrip("/")
    permissions = GRAPH_DELEGATED_PERMISSIONS + ((PLACES_PERMISSION,) if places else ())
    return [f"{resource}/{permission}" for permission in permissions]


def app_scopes(graph_resource: str) -> list[str]:
    """The client-credentials scope: every application permission granted to the app."""
    return [f"{graph_resource.rstrip('/')}/.default"]


@dataclass(frozen=True)
class SignedInAccount:
    """A Microsoft account in the token cache (``home_account_id`` = ``oid.tid``)."""

    home_account_id: str
    username: str
    name: str | None
    tenant_id: str | None


class TokenProvider:
    """Access tokens for one app registration (client id + authority).

    The MSAL application is built on first use because its constructor fetches the
    authority's OpenID configuration. Each provider has its own MSAL HTTP cache, so a
    new provider never sees an error answer MSAL cached for another one.
    """

    def __init__(
        self,
        *,
        client_id: str,
        authority: str,
        credential: str | dict[str, str],
        graph_resource: str,
        session: requests.Session | None = None,
        verify: str | bool = True,
        timeout: float = 30,
        cache_state: str | None = None,
        instance_discovery: bool | None = None,
        places: bool = False,
    ) -> None:
        self.client_id = client_id
        self.authority = authority.rstrip("/")
        self.graph_resource = graph_resource.rstrip("/")
        self.places = places
        self._credential = (
            dict(credential) if isinstance(credential, dict) else credential
        )
        self._http = ExplicitHttpClient(session, verify=verify, timeout=timeout)
        self._cache = msal.SerializableTokenCache()
        if cache_state:
            self._cache.deserialize(cache_state)
        if instance_discovery is None:
            host = (urlsplit(self.authority).hostname or "").lower()
            instance_discovery = None if host == PUBLIC_AUTHORITY_HOST else False
        self._instance_discovery = instance_discovery
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    @property
    def scopes(self) -> list[str]:
        """The delegated scopes this provider signs users in with."""
        return delegated_scopes(self.graph_resource, places=self.places)

    @property
    def cache_changed(self) -> bool:
        """True when the token cache changed since it was loaded or serialized."""
        return bool(self._cache.has_state_changed)

    def serialize_cache(self) -> str:
        """The token cache as JSON text (holds refresh tokens: store it encrypted)."""
        return self._cache.serialize()

    def _host(self) -> str:
        return urlsplit(self.authority).netloc or self.authority

    def _call(self, action: Callable[[], _T]) -> _T:
        """Run an MSAL call, turning transport failures into our errors."""
        try:
            return action()
        except requests.Timeout as exc:
            raise GraphRetryableError(
                f"The sign-in authority {self._host()} did not answer in time",
                code="timeout",
            ) from exc
        except requests.RequestException as exc:
            raise GraphRetryableError(
                f"Cannot reach the sign-in authority {self._host()} "
                f"({type(exc).__name__})",
                code="connectionError",
            ) from exc
        except msal.exceptions.MsalServiceError as exc:
            # MSAL raises (instead of returning a dict) on 5xx from the authority.
            raise GraphRetryableError(
                f"The sign-in authority {self._host()} failed: {exc}",
                code="authorityError",
            ) from exc

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                self._app = self._call(self._build)
            return self._app

    def _build(self) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._credential,
                authority=self.authority,
                token_cache=self._cache,
                http_client=self._http,
                http_cache={},
                instance_discovery=self._instance_discovery,
            )
        except ValueError as exc:
            raise self._authority_error(exc) from exc

    def _authority_error(self, exc: ValueError) -> GraphConfigurationError:
        text = str(exc)
        if "https" in text and "should consist of" in text:
            return GraphConfigurationError(
                f"The authority URL {self.authority} is not an https URL with a "
                "tenant in its path",
                setting="authority",
            )
        detail = self._discovery_error()
        if detail is not None:
            return error_from_msal(detail)
        return GraphConfigurationError(
            f"The authority {self.authority} has no valid OpenID configuration; "
            "check the tenant and the authority URL",
            setting="tenant",
        )

    def _discovery_error(self) -> dict[str, Any] | None:
        """Entra's own error for a failed discovery (MSAL keeps only a ValueError)."""
        url = f"{self.authority}/v2.0/.well-known/openid-configuration"
        try:
            answer = self._http.get(url)
            body = answer.json()
        except (requests.RequestException, ValueError):
            return None
        return body if isinstance(body, dict) and body.get("error") else None

    def start_sign_in(
        self,
        redirect_uri: str,
        *,
        state: str | None = None,
        login_hint: str | None = None,
        prompt: str | None = None,
    ) -> dict[str, Any]:
        """Begin the auth-code flow (PKCE, nonce, form_post).

        ``state`` is sent to Entra ID and must come back unchanged (MSAL checks it);
        when omitted, MSAL makes a random one.

        Returns MSAL's flow dict plus ``expires_at`` (epoch seconds); it holds secrets
        (``code_verifier``, ``nonce``), so keep it server-side, keyed by
        ``flow["state"]``. Send the browser to ``flow["auth_uri"]``.
        """
        app = self._application()
        flow = app.initiate_auth_code_flow(
            self.scopes,
            redirect_uri=redirect_uri,
            state=state,
            login_hint=login_hint,
            prompt=prompt,
            response_mode="form_post",
        )
        flow["expires_at"] = time.time() + SIGN_IN_FLOW_LIFETIME
        return flow

    def finish_sign_in(
        self, flow: dict[str, Any], auth_response: dict[str, Any]
    ) -> SignedInAccount:
        """Redeem the redirect's fields (``code``, ``state``, ...) for tokens.

        Raises AuthFlowError when the response does not belong to the flow (state,
        nonce, missing code, expired flow), GraphAuthError for an error from Entra
        (``access_denied`` when the user refused consent), GraphConfigurationError for
        a bad client credential.
        """
        flow = dict(flow)  # MSAL pops keys from the flow it is given.
        expires_at = flow.pop("expires_at", None)
        if expires_at is not None and time.time() > float(expires_at):
            raise AuthFlowError("flow_expired", "The sign-in took too long; start over")
        app = self._application()
        try:
            result = self._call(
                lambda: app.acquire_token_by_auth_code_flow(flow, dict(auth_response))
            )
        except ValueError as exc:
            raise AuthFlowError(_flow_reason(str(exc)), str(exc)) from exc
        except RuntimeError as exc:
            # MSAL checks the id_token nonce against the flow's
            # (docs/graph.md#the-id-token-nonce).
            raise AuthFlowError("nonce_mismatch", str(exc)) from exc
        if "error" in result:
            raise error_from_msal(result)
        return self._account_from_result(result)

    def _account_from_result(self, result: dict[str, Any]) -> SignedInAccount:
        claims = result.get("id_token_claims") or {}
        home_account_id = _home_account_id(result.get("client_info"))
        username = claims.get("preferred_username") or claims.get("upn") or ""
        if home_account_id is None:
            for account in self._application().get_accounts(username=username or None):
                home_account_id = account["home_account_id"]
                break
        return SignedInAccount(
            home_account_id=home_account_id or "",
            username=username,
            name=claims.get("name"),
            tenant_id=claims.get("tid"),
        )

    def _find_account(self, home_account_id: str) -> dict[str, Any] | None:
        app = self._application()
        accounts = self._call(app.get_accounts)
        for account in accounts:
            if account.get("home_account_id") == home_account_id:
                return account
        return None

    def access_token(
        self, home_account_id: str | None = None, *, force_refresh: bool = False
    ) -> str:
        """An access token for Graph: delegated for ``home_account_id``, else app-only.

        Delegated tokens are refreshed silently; refresh tokens rotate, so persist
        ``serialize_cache()`` whenever ``cache_changed``. ``force_refresh`` skips the
        cached access token (after Graph rejected it).

        Raises GraphAuthError (``reauthorization_needed`` when the account is not in
        the cache or its refresh token was revoked), GraphConfigurationError,
        GraphRetryableError.
        """
        app = self._application()
        if home_account_id is None:
            scopes = app_scopes(self.graph_resource)
            if force_refresh:
                app.remove_tokens_for_client()
            result = self._call(lambda: app.acquire_token_for_client(scopes))
        else:
            account = self._find_account(home_account_id)
            if account is None:
                raise GraphAuthError(
                    "The Microsoft account is not signed in; sign in again",
                    reauthorization_needed=True,
                    code="no_account",
                )
            result = self._call(
                lambda: app.acquire_token_silent_with_error(
                    self.scopes, account=account, force_refresh=force_refresh
                )
            )
            if result is None:
                raise GraphAuthError(
                    "No token is cached for the Microsoft account; sign in again",
                    reauthorization_needed=True,
                    code="no_token",
                )
        if "error" in result:
            raise error_from_msal(result)
        return result["access_token"]

    def forget_account(self, home_account_id: str) -> None:
        """Remove the account and its tokens from the cache (sign-out)."""
        account = self._find_account(home_account_id)
        if account is not None:
            self._application().remove_account(account)

    def accounts(self) -> list[SignedInAccount]:
        """The accounts in the token cache."""
        result = []
        for account in self._call(self._application().get_accounts):
            claims = self._id_token_claims(account["home_account_id"])
            result.append(
                SignedInAccount(
                    home_account_id=account["home_account_id"],
                    username=account.get("username") or "",
                    name=claims.get("name"),
                    tenant_id=account.get("realm") or claims.get("tid"),
                )
            )
        return result

    def _id_token_claims(self, home_account_id: str) -> dict[str, Any]:
        items = self._cache.search(
            msal.TokenCache.CredentialType.ID_TOKEN,
            query={"home_account_id": home_account_id},
        )
        for item in items:
            claims = _jwt_payload(item.get("secret") or "")
            if claims:
                return claims
        return {}


def _flow_reason(text: str) -> str:
    lowered = text.lower()
    if "state mismatch" in lowered:
        return "state_mismatch"
    if "state missing" in lowered:
        return "state_missing"
    if '"code" or "error"' in lowered:
        return "missing_code"
    return "invalid_flow"


def _b64_json(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _home_account_id(client_info: str | None) -> str | None:
    info = _b64_json(client_info or "")
    if info.get("uid") and info.get("utid"):
        return f"{info['uid']}.{info['utid']}"
    return None


def _jwt_payload(token: str) -> dict[str, Any]:
    parts = token.split(".")
    return _b64_json(parts[1]) if len(parts) >= 2 else {}
