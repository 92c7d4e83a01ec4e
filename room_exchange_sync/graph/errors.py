"""The errors of the Graph layer, and the only places where answers become errors.

Hierarchy::

    ExchangeSyncError
     ├── GraphError(message, status, code, request_id, retry_after, detail)
     │    ├── GraphAuthError(reauthorization_needed, aadsts)  # 401, invalid_grant,
     │    │                                                   # consent, access_denied
     │    ├── GraphConfigurationError(setting, aadsts)  # wrong/expired secret or
     │    │                                             # certificate, unknown app,
     │    │                                             # unknown tenant, bad authority
     │    ├── GraphPermissionError      # 403
     │    ├── GraphNotFound             # 404
     │    ├── GraphConflict             # 409, 412 (etag / changeKey moved)
     │    ├── GraphRetryableError       # 503, 504, connection errors, timeouts
     │    │    └── GraphThrottled       # 429
     │    └── SyncStateExpired          # 410, syncStateNotFound, resyncRequired,
     │                                  # a 400 about the sync state token, ...
     └── AuthFlowError(reason)          # sign-in flow: state mismatch, missing code,
                                        # nonce mismatch, flow expired

Public API: the classes above, ``error_from_response(response)`` (an HTTP answer from
Graph), ``error_from_status(status, headers, body)`` (the same for ``$batch`` items) and
``error_from_msal(result)`` (an MSAL ``{"error": ...}`` dict), plus
``parse_retry_after(value)``.

Messages carry Microsoft's error text (first line only, without trace ids); where a
plain sentence says what is wrong (a configuration error), Microsoft's text is its
``detail``. They never contain tokens or secrets.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

import requests

# Graph codes meaning "the delta token is gone, start a full round"
# (docs/graph.md#delta-tokens-expire); Outlook capitalises them differently, so
# compare case-insensitively.
SYNC_STATE_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "fullsyncrequired", "syncstateinvalid"}
)
RETRYABLE_STATUSES = frozenset({429, 503, 504})
# Exchange may also answer a delta token it no longer knows with a 400 whose only
# clue is the message ("The sync state token is malformed or unknown."), where an
# expired one gets 410: both mean "start the delta again".
_SYNC_STATE_LOST = re.compile(r"sync ?state", re.IGNORECASE)

# AADSTS codes after which only a new interactive sign-in helps.
REAUTHORIZATION_CODES = frozenset(
    {50173, 70008, 700082, 70000, 65001, 50076, 50079, 54005, 501481}
)
REAUTHORIZATION_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required"}
)
# AADSTS codes that are a configuration problem, with the setting to fix.
CONFIGURATION_CODES: dict[int, tuple[str, str]] = {
    7000215: ("client_secret", "The client secret is wrong"),
    7000222: ("client_secret", "The client secret has expired"),
    7000218: ("client_secret", "No client secret or certificate was sent"),
    700027: (
        "certificate",
        "The certificate is not registered on the app or its signature is invalid",
    ),
    700016: (
        "client_id",
        "The application (client) id was not found in the tenant",
    ),
    90002: ("tenant", "The tenant was not found"),
    900023: ("tenant", "The tenant identifier is not valid"),
    500011: ("graph_resource", "The Graph resource was not found in the tenant"),
    70011: ("scopes", "A requested permission (scope) is not valid"),
    1002012: ("scopes", "A requested permission (scope) is not valid"),
    50011: ("redirect_uri", "The redirect URI is not registered on the app"),
}
_AADSTS = re.compile(r"AADSTS(\d+)")


class ExchangeSyncError(Exception):
    """Base class of every error raised by the room sync's pure layers."""


class GraphError(ExchangeSyncError):
    """An error answer from Graph or Entra ID, or a request that could not complete."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        # Microsoft's own words (e.g. "AADSTS7000215: Invalid client secret
        # provided..."), kept apart from ``message``, which says it plainly.
        self.detail = detail

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status else []
        if self.code:
            parts.append(self.code)
        prefix = " ".join(parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.detail:
            text += f" ({self.detail})"
        if self.request_id:
            text += f" (request-id {self.request_id})"
        return text


class GraphAuthError(GraphError):
    """The token is missing, expired, revoked or consent is missing.

    ``reauthorization_needed`` is True when only a new sign-in by the user helps.
    """

    def __init__(
        self,
        message: str,
        *,
        reauthorization_needed: bool = False,
        aadsts: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.reauthorization_needed = reauthorization_needed
        self.aadsts = aadsts


class GraphConfigurationError(GraphError):
    """The connection settings cannot work; ``setting`` names the one to fix
    (``client_secret``, ``certificate``, ``client_id``, ``tenant``, ``authority``,
    ``graph_resource``, ``scopes``, ``redirect_uri``) when it is known."""

    def __init__(
        self,
        message: str,
        *,
        setting: str | None = None,
        aadsts: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.setting = setting
        self.aadsts = aadsts


class GraphPermissionError(GraphError):
    """403: the mailbox is not shared with the user, read-only, or out of app scope."""


class GraphNotFound(GraphError):
    """404: the mailbox, calendar or event does not exist (any more)."""


class GraphConflict(GraphError):
    """409/412: the event changed since it was read (changeKey / If-Match)."""


class GraphRetryableError(GraphError):
    """A transient failure that outlived the client's retries; try again later
    (``retry_after`` seconds when Graph said so)."""


class GraphThrottled(GraphRetryableError):
    """429: the app is over Outlook's per-mailbox limits."""


class SyncStateExpired(GraphError):
    """The delta token expired: drop the stored deltaLink and do a full round."""


class AuthFlowError(ExchangeSyncError):
    """The sign-in redirect cannot be trusted or used; ``reason`` is a stable key:
    ``state_mismatch``, ``state_missing``, ``missing_code``, ``nonce_mismatch``,
    ``flow_expired``, ``invalid_flow``."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def error_from_status(
    status: int, headers: Mapping[str, str] | None, body: Any
) -> GraphError:
    """The error for a Graph answer given as parts (also used for ``$batch`` items)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") or None
    message = error.get("message") or f"HTTP {status}"
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = _header(headers, "request-id") or (
        inner.get("request-id") if isinstance(inner, dict) else None
    )
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "retry_after": parse_retry_after(_header(headers, "Retry-After")),
    }
    if (
        status == 410
        or (code and code.lower() in SYNC_STATE_CODES)
        or (status == 400 and _SYNC_STATE_LOST.search(message))
    ):
        return SyncStateExpired(message, **kwargs)
    if status == 401:
        return GraphAuthError(message, **kwargs)
    if status == 403:
        return GraphPermissionError(message, **kwargs)
    if status == 404:
        return GraphNotFound(message, **kwargs)
    if status in (409, 412):
        return GraphConflict(message, **kwargs)
    if status == 429:
        return GraphThrottled(message, **kwargs)
    if status in RETRYABLE_STATUSES:
        return GraphRetryableError(message, **kwargs)
    return GraphError(message, **kwargs)


def error_from_response(response: requests.Response) -> GraphError:
    """The error for an HTTP answer from Graph (status >= 400)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_status(response.status_code, response.headers, body)


def _first_line(text: str) -> str:
    return text.replace("\r\n", "\n").split("\n", 1)[0].strip()


def _aadsts(result: Mapping[str, Any]) -> int | None:
    codes = result.get("error_codes")
    if isinstance(codes, list) and codes and str(codes[0]).isdigit():
        return int(codes[0])
    match = _AADSTS.search(str(result.get("error_description") or ""))
    return int(match.group(1)) if match else None


def error_from_msal(result: Mapping[str, Any]) -> GraphError:
    """The error for an MSAL result dict that has an ``error`` key.

    ``invalid_client``/``unauthorized_client`` and the AADSTS codes of
    ``CONFIGURATION_CODES`` give GraphConfigurationError; ``invalid_grant``,
    ``interaction_required``, ``consent_required``, ``login_required`` give
    GraphAuthError with ``reauthorization_needed``; ``access_denied`` (the user
    refused consent) a GraphAuthError keeping Microsoft's description;
    ``temporarily_unavailable``/``server_error`` a GraphRetryableError.
    """
    error = str(result.get("error") or "unknown_error")
    description = _first_line(str(result.get("error_description") or "")) or error
    aadsts = _aadsts(result)
    code = error
    if aadsts in CONFIGURATION_CODES:
        setting, sentence = CONFIGURATION_CODES[aadsts]
        return GraphConfigurationError(
            sentence, setting=setting, aadsts=aadsts, code=code, detail=description
        )
    if error in ("invalid_client", "unauthorized_client"):
        setting = "client_id" if error == "unauthorized_client" else "client_secret"
        return GraphConfigurationError(
            "The app registration refused the credentials",
            setting=setting,
            aadsts=aadsts,
            code=code,
            detail=description,
        )
    if error in ("temporarily_unavailable", "server_error"):
        retry_after = result.get("retry_after")
        return GraphRetryableError(
            description,
            code=code,
            retry_after=float(retry_after) if retry_after else None,
        )
    reauthorize = error in REAUTHORIZATION_ERRORS or aadsts in REAUTHORIZATION_CODES
    return GraphAuthError(
        description,
        reauthorization_needed=reauthorize,
        aadsts=aadsts,
        code=code,
    )
