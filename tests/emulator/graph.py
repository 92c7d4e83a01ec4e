"""Microsoft Graph v1.0 routes of the emulator.

Facts: docs/graph.md#what-the-emulator-follows.

Public API::

    api = GraphApi(emulator)
    response = api.handle(request)        # werkzeug Request under /v1.0 -> Response
    result = api.process(call)            # GraphCall -> GraphResult (also batch items)
    ODATA_JSON                            # Graph's JSON content type
    parse_prefer(values) -> dict[str, str]

Request pipeline (HTTP and ``$batch`` items alike): authentication
(``401 InvalidAuthenticationToken``), route match, mailbox resolution, fault injection
(``faults.py`` contract), permission check, throttle slot per (client id, mailbox),
latency, handler. The latency (the global one of an HTTP request, plus a ``latency``
fault's) is spent *inside* the mailbox's concurrency slot when the request takes one,
as Exchange's own work on the mailbox is: a request occupies one of the mailbox's four
concurrent slots for as long as it takes (docs/graph.md#throttling), so that parallel
requests to one mailbox meet the limit as they would at Microsoft. A request that
takes no slot (``/me``, ``$batch`` envelopes, subscriptions, 401s) spends it before
answering. Every answer carries ``request-id`` and echoes ``client-request-id``; errors
are Graph's ``{"error": {"code", "message", "innerError"}}``; an unexpected exception is
a ``500 InternalServerError`` (logged), never a traceback page.

Routes (``{u}`` = ``me`` or ``users/{id|upn}``; paths are case-insensitive):
``GET /me``, ``GET /users/{id}``, ``GET /places/...`` (``places.py``),
``GET {u}/calendar``, ``GET {u}/calendars[/{cid}]``,
``GET|POST {u}/events``, ``{u}/calendar/events``, ``{u}/calendars/{cid}/events``,
``GET|PATCH|DELETE .../events/{eid}``, ``POST .../events/{eid}/cancel``,
``POST .../events/{eid}/decline``,
``GET .../events/{eid}/instances``, ``GET {u}[/calendar|/calendars/{cid}]/calendarView``
and ``.../calendarView/delta``, ``POST /$batch``, ``GET|POST /subscriptions``,
``GET|PATCH|DELETE /subscriptions/{id}``, ``POST /subscriptions/{id}/reauthorize``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from . import batch as batch_module
from . import places
from .errors import GraphHttpError
from .faults import to_error
from .identity import malformed_token_message
from .scenario import WRITE_ROLES, Room, User

if TYPE_CHECKING:
    from .app import Emulator

_logger = logging.getLogger(__name__)

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The challenge Graph sends with a 401 (issue microsofthackathons/tdi#24).
WWW_AUTHENTICATE = (
    'Bearer realm="", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="{GRAPH_APP_ID}"'
)
READ_ROLES = frozenset({"read"}) | WRITE_ROLES
ACCESS_DENIED = "Access is denied. Check credentials and try again."
ODATA_DISABLED = "Access to OData is disabled."
NOT_FOUND = "The specified object was not found in the store."
WINDOW_REQUIRED = (
    "This request requires a time window specified by the query string parameters "
    "StartDateTime and EndDateTime."
)
WINDOW_TOO_LONG = (
    "Your request can't be completed. The range between the start and end dates is "
    "greater than the allowed range. Maximum number of days: 1825"
)
BAD_JSON = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set "
    "and payload is of valid JSON format."
)
ME_WITH_APP = "/me request is only valid with delegated authentication flow."
MAX_WINDOW_DAYS = 1825
DEFAULT_EVENTS_PAGE = 10
_DELTA_UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search", "$top")
_EXT_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)
_EXT_EXPAND = re.compile(
    r"^\s*singleValueExtendedProperties\s*\(\s*\$filter\s*=\s*id\s+eq\s+"
    r"'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)


@dataclass
class GraphCall:
    """One Graph request, from HTTP or from a ``$batch`` item."""

    method: str
    path: str  # raw path below /v1.0, starting with "/" (segments still %-encoded)
    query: dict[str, str]
    headers: Headers
    body: Any = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str | None = None
    in_batch: bool = False
    raw_query: str = ""
    # Seconds this call still has to spend (see the module docstring: inside its
    # mailbox's concurrency slot when it takes one).
    latency: float = 0.0


@dataclass
class GraphResult:
    """The answer to a ``GraphCall``; ``drop`` asks the server to drop the socket."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: dict[str, Any] | None = None
    route: str = "?"
    mailbox: str | None = None
    client_id: str | None = None


@dataclass
class _Route:
    template: str
    handler: Callable[[_Ctx], GraphResult]
    access: str | None = None  # "read" | "write" | None (no mailbox check)
    owner: str | None = None  # "me" or the {id|upn} segment
    calendar_id: str | None = None
    event_id: str | None = None
    sub_id: str | None = None


@dataclass
class _Ctx:
    call: GraphCall
    grant: Any
    route: _Route
    mailbox: str | None = None  # canonical address of the addressed mailbox
    target: str | None = None  # mailbox actually touched (differs for shared copies)
    prefer: dict[str, str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)

    @property
    def time_zone(self) -> str | None:
        zone = self.prefer.get("outlook.timezone")
        if zone:
            self.applied.append(f'outlook.timezone="{zone}"')
        return zone or None


def parse_prefer(values: list[str]) -> dict[str, str]:
    """Merge ``Prefer`` headers (several headers or comma-separated) into a dict.

    Keys are lower-cased (``outlook.timezone``, ``idtype``, ``odata.maxpagesize``,
    ``outlook.body-content-type``); values are unquoted.
    """
    prefs: dict[str, str] = {}
    for value in values:
        for part in re.findall(r'(?:[^,"]|"[^"]*")+', value):
            name, _, raw = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = raw.strip().strip('"')
    return prefs


def _utcnow_text() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def error_payload(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str | None,
    *,
    status: int | None = None,
) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "date": _utcnow_text(),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    if status == 429:
        # Microsoft Learn, "Microsoft Graph throttling guidance", sample response:
        # "innerError": {"code": "429", "date": ..., "message": "Please retry
        # after", "request-id": ..., "status": "429"}.
        inner = {
            "code": "429",
            "date": inner["date"],
            "message": "Please retry after",
            "request-id": request_id,
            "client-request-id": inner["client-request-id"],
            "status": "429",
        }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def _canonical_segment(segment: str) -> str:
    """A path segment as Graph understands it: case-insensitive, a type cast may use
    the short ``graph.`` namespace alias (``places/graph.room``, as the Graph SDKs
    send it), and a function may carry empty parentheses (``delta()``)."""
    low = segment.lower()
    if low.startswith("graph."):
        low = "microsoft." + low
    if low.endswith("()"):
        low = low[:-2]
    return low


def _bad_request(message: str, code: str = "BadRequest") -> GraphHttpError:
    return GraphHttpError(400, code, message)


def _parse_when(value: str, name: str) -> dt.datetime:
    text = value.strip().replace(" ", "+")
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad_request(
            f"The parameter '{name}' is invalid: '{value}'.", "ErrorInvalidParameter"
        ) from None
    # calendarView: "no offset => UTC" (docs/graph.md#event-endpoints).
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


def _utc_text(value: dt.datetime) -> str:
    """An instant as a ``startDateTime``/``endDateTime`` query value, in UTC."""
    utc = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return utc.isoformat() + "Z"


def _int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(
            f"Invalid value '{raw}' for query option '{name}'.", "ErrorInvalidUrlQuery"
        ) from None
    if value < 0 or (name == "$top" and not 1 <= value <= maximum):
        raise _bad_request(
            f"The value '{raw}' of the query option '{name}' is out of range.",
            "ErrorInvalidUrlQuery",
        )
    return value


def _select(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    raw = query.get("$select")
    if not raw:
        return items
    wanted = {name.strip().lower() for name in raw.split(",") if name.strip()}
    # Graph always returns id and the etag, whatever $select says.
    keep = wanted | {"id", "@odata.etag", "@odata.type", "@removed"}
    return [{k: v for k, v in item.items() if k.lower() in keep} for item in items]


def _html_to_text(content: str) -> str:
    text = re.sub(r"<(br|/p|/div)\s*/?>", "\n", content, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class GraphApi:
    """The ``/v1.0`` side of the emulator; see the module docstring."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        # Subscriptions per page of GET /subscriptions (our choice).
        self.subscriptions_page_size = 100

    @property
    def scenario(self) -> Any:
        return self.emulator.scenario

    @property
    def store(self) -> Any:
        return self.emulator.store

    def handle(self, request: Request, latency: float = 0.0) -> Response:
        """Serve an HTTP request under /v1.0; ``latency``: the seconds it takes at
        Microsoft (spent inside its mailbox's concurrency slot, if it takes one)."""
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        raw_path, _, raw_query = (raw_uri or request.full_path).partition("?")
        if raw_uri and "://" in raw_path:
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        path = raw_path[len("/v1.0") :] or "/"
        call = GraphCall(
            method=request.method.upper(),
            path=path,
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=Headers(request.headers),
            client_request_id=request.headers.get("client-request-id"),
            raw_query=raw_query,
            latency=latency,
        )
        started = time.perf_counter()
        try:
            call.body = self._json_body(request)
            result = self.process(call)
        except GraphHttpError as exc:
            result = self._error_result(call, exc)
        if result.drop is not None:
            request.environ[self.emulator.drop_key] = result.drop
        self.emulator.record(call, result, time.perf_counter() - started)
        return self._render(call, result)

    @staticmethod
    def _json_body(request: Request) -> Any:
        data = request.get_data(cache=True)
        if not data or request.method in ("GET", "DELETE", "HEAD"):
            return None
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _bad_request(BAD_JSON) from None

    def _render(self, call: GraphCall, result: GraphResult) -> Response:
        headers = self._standard_headers(call, result)
        if result.body is None:
            return Response(b"", status=result.status, headers=headers)
        payload = json.dumps(result.body, separators=(",", ":"))
        headers["Content-Type"] = ODATA_JSON
        return Response(payload, status=result.status, headers=headers)

    @staticmethod
    def _standard_headers(call: GraphCall, result: GraphResult) -> dict[str, str]:
        headers = {
            "request-id": call.request_id,
            "client-request-id": call.client_request_id or call.request_id,
            "OData-Version": "4.0",
            "Cache-Control": "no-cache",
            "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Emulator"}}',
        }
        headers.update(result.headers)
        return headers

    def _error_result(self, call: GraphCall, exc: GraphHttpError) -> GraphResult:
        body = error_payload(
            exc.code,
            exc.message,
            call.request_id,
            call.client_request_id,
            status=exc.status,
        )
        return GraphResult(exc.status, dict(exc.headers), body)

    def process(self, call: GraphCall) -> GraphResult:
        """Serve one call; never raises (errors become Graph error results)."""
        info = GraphResult(0)
        try:
            result = self._process(call, info)
        except GraphHttpError as exc:
            result = self._error_result(call, exc)
            self._spend_latency(call)
        except Exception:
            _logger.exception(
                "emulator: unexpected error on %s %s", call.method, call.path
            )
            result = self._error_result(
                call,
                GraphHttpError(
                    500, "InternalServerError", "An internal server error occurred."
                ),
            )
        result.route, result.mailbox = info.route, info.mailbox
        result.client_id = info.client_id
        return result

    def _process(self, call: GraphCall, info: GraphResult) -> GraphResult:
        grant = self._authenticate(call)
        info.client_id = grant.client_id
        segments = [unquote(s) for s in call.path.strip("/").split("/") if s != ""]
        if any(s in (".", "..") for s in segments):
            raise _bad_request("Invalid request path.")
        route = self._match(segments, call.method)
        info.route = route.template
        ctx = _Ctx(call=call, grant=grant, route=route)
        ctx.prefer = parse_prefer(call.headers.getlist("Prefer"))
        if route.owner is not None:
            ctx.mailbox = self._resolve_owner(route.owner, grant, route)
            ctx.target = ctx.mailbox
            info.mailbox = ctx.mailbox
        fault = self.emulator.faults.take(
            call.method,
            "/v1.0" + call.path,
            mailbox=ctx.mailbox,
            client_id=grant.client_id,
            allow_connection_faults=not call.in_batch,
        )
        hold = None
        if fault is not None:
            hold = self._apply_fault(fault, ctx)
            if fault.kind == "reset":
                return GraphResult(0, drop={"kind": "reset"})
        if route.calendar_id is not None:
            ctx.target = self._resolve_calendar(ctx)
        if route.access is not None:
            self._authorize(grant, ctx.target, write=route.access == "write")
        if route.access is not None and ctx.target is not None:
            with self.emulator.throttle.slot(grant.client_id, ctx.target):
                self._spend_latency(call)
                result = route.handler(ctx)
        else:
            self._spend_latency(call)
            result = route.handler(ctx)
        self._finish_prefer(ctx, result)
        if hold is not None:
            result.drop = {"kind": "timeout_after_apply", "delay": hold}
        return result

    @staticmethod
    def _spend_latency(call: GraphCall) -> None:
        """Sleep what is left of the call's latency (once)."""
        delay, call.latency = call.latency, 0.0
        if delay > 0:
            time.sleep(delay)

    def _apply_fault(self, fault: Any, ctx: _Ctx) -> float | None:
        if fault.kind == "delta_expired":
            raise self._with_reset_location(ctx, to_error(fault))
        if fault.kind == "status":
            raise to_error(fault)
        if fault.kind == "latency":
            # Spent with the global latency, inside the mailbox's slot.
            ctx.call.latency += fault.delay
        if fault.kind == "timeout_after_apply":
            return fault.delay
        return None

    def _finish_prefer(self, ctx: _Ctx, result: GraphResult) -> None:
        id_type = ctx.prefer.get("idtype")
        if id_type:
            # Ids in the emulator never change, so both id types are the same id.
            ctx.applied.append(f'IdType="{id_type}"')
        body_type = ctx.prefer.get("outlook.body-content-type", "").lower()
        if body_type in ("text", "html") and isinstance(result.body, dict):
            ctx.applied.append(f'outlook.body-content-type="{body_type}"')
            if body_type == "text":
                self._bodies_to_text(result.body)
        if ctx.applied:
            applied = list(dict.fromkeys(ctx.applied))
            existing = result.headers.get("Preference-Applied")
            if existing:
                applied.insert(0, existing)
            result.headers["Preference-Applied"] = ", ".join(applied)

    @staticmethod
    def _bodies_to_text(payload: dict[str, Any]) -> None:
        items = (
            payload.get("value")
            if isinstance(payload.get("value"), list)
            else [payload]
        )
        for item in items:
            body = item.get("body") if isinstance(item, dict) else None
            if isinstance(body, dict) and body.get("contentType") == "html":
                item["body"] = {
                    "contentType": "text",
                    "content": _html_to_text(body.get("content") or ""),
                }

    def _authenticate(self, call: GraphCall) -> Any:
        header = call.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
                headers={"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        grant = self.emulator.identity.resolve_access_token(token.strip())
        if grant is None:
            raise GraphHttpError(
                401,
                "InvalidAuthenticationToken",
                malformed_token_message(token.strip())
                or "Access token has expired or is not yet valid.",
                headers={"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        return grant

    @staticmethod
    def _short(names: Any) -> set[str]:
        return {str(n).rsplit("/", 1)[-1] for n in (names or ())}

    def _authorize(self, grant: Any, mailbox: str | None, *, write: bool) -> None:
        """Outlook's mailbox access rules for delegated and app tokens
        (docs/graph.md#room-mailboxes-and-permissions)."""
        if mailbox is None:
            return
        if grant.kind == "app":
            roles = self._short(grant.roles)
            if (
                not (
                    {"Calendars.ReadWrite"}
                    if write
                    else {"Calendars.ReadWrite", "Calendars.Read"}
                )
                & roles
            ):
                raise GraphHttpError(403, "ErrorAccessDenied", ACCESS_DENIED)
            app = self.scenario.app(grant.client_id)
            scope = getattr(app, "rbac_scope", None)
            if scope is not None and mailbox.lower() not in {s.lower() for s in scope}:
                raise GraphHttpError(403, "ErrorAccessDenied", ODATA_DISABLED)
            return
        scopes = self._short(grant.scopes)
        user = self._grant_user(grant)
        if user is not None and user.upn.lower() == mailbox.lower():
            needed = {"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"}
            if not write:
                needed |= {"Calendars.Read", "Calendars.Read.Shared"}
            if not needed & scopes:
                raise GraphHttpError(403, "ErrorAccessDenied", ACCESS_DENIED)
            return
        role = self.scenario.share_role(mailbox, user.upn) if user else None
        if write:
            allowed = "Calendars.ReadWrite.Shared" in scopes and role in WRITE_ROLES
        else:
            allowed = (
                bool({"Calendars.ReadWrite.Shared", "Calendars.Read.Shared"} & scopes)
                and role in READ_ROLES
            )
        if not allowed:
            raise GraphHttpError(403, "ErrorAccessDenied", ACCESS_DENIED)

    def _grant_user(self, grant: Any) -> User | None:
        return self.scenario.user(
            getattr(grant, "user_id", None)
        ) or self.scenario.user(getattr(grant, "upn", None))

    def _resolve_owner(self, owner: str, grant: Any, route: _Route) -> str:
        if owner == "me":
            if grant.kind != "delegated":
                status = self.emulator.me_with_app_token_status
                code = "BadRequest" if status == 400 else "ErrorAccessDenied"
                raise GraphHttpError(status, code, ME_WITH_APP)
            user = self._grant_user(grant)
            if user is None:
                raise GraphHttpError(
                    404, "ErrorInvalidUser", "The requested user is invalid."
                )
            return user.upn
        mailbox = self.scenario.mailbox(owner)
        if mailbox is None or mailbox.tenant_id != grant.tenant_id:
            if route.template.endswith("/users/{id}"):
                raise GraphHttpError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{owner}' does not exist or one of its queried "
                    "reference-property objects are not present.",
                )
            raise GraphHttpError(
                404, "ErrorInvalidUser", f"The requested user '{owner}' is invalid."
            )
        return mailbox.email if isinstance(mailbox, Room) else mailbox.upn

    def shared_calendar_id(self, user_upn: str, mailbox: str) -> str:
        """Id of the copy of ``mailbox``'s calendar in ``user_upn``'s calendar list.

        Outlook gives the sharee's copy its own id, different from the owner's
        calendar id (docs/graph.md#delegated-access-to-a-shared-room-calendar).
        """
        digest = hashlib.sha256(
            f"{user_upn.lower()}|{mailbox.lower()}".encode()
        ).digest()
        return "AAMkAGShared" + base64.urlsafe_b64encode(digest).decode()

    def _calendar_id(self, mailbox: str) -> str:
        return self.store.calendar_info(mailbox)["id"]

    def _resolve_calendar(self, ctx: _Ctx) -> str:
        """The mailbox a ``calendars/{cid}`` path touches (shared copy -> its owner)."""
        cid = ctx.route.calendar_id
        assert ctx.mailbox is not None
        if cid == self._calendar_id(ctx.mailbox):
            return ctx.mailbox
        user = self._grant_user(ctx.grant) if ctx.grant.kind == "delegated" else None
        if user is not None and user.upn.lower() == ctx.mailbox.lower():
            for mailbox, _role in self._shares_of(user):
                if cid == self.shared_calendar_id(user.upn, mailbox):
                    return mailbox
        raise GraphHttpError(404, "ErrorItemNotFound", NOT_FOUND)

    def _shares_of(self, user: User) -> list[tuple[str, str]]:
        found = []
        for share in self.scenario.shares:
            if share.user_upn.lower() == user.upn.lower() and share.role != "none":
                found.append((share.room_email, share.role))
        return found

    def _calendar_json(self, mailbox: str) -> dict[str, Any]:
        info = dict(self.store.calendar_info(mailbox))
        owner = self.scenario.mailbox(mailbox)
        info.setdefault("name", "Calendar")
        info.setdefault("color", "auto")
        info.setdefault("hexColor", "")
        info.setdefault("isDefaultCalendar", True)
        info.setdefault("canShare", True)
        info.setdefault("canViewPrivateItems", True)
        info.setdefault("canEdit", True)
        info.setdefault("isRemovable", False)
        info.setdefault("isTallyingResponses", True)
        info.setdefault("allowedOnlineMeetingProviders", ["teamsForBusiness"])
        info.setdefault("defaultOnlineMeetingProvider", "teamsForBusiness")
        if owner is not None:
            info.setdefault("owner", {"name": owner.display_name, "address": mailbox})
        return info

    def _shared_calendar_json(
        self, user: User, mailbox: str, role: str
    ) -> dict[str, Any]:
        owner = self.scenario.mailbox(mailbox)
        name = owner.display_name if owner else mailbox
        own = self.store.calendar_info(mailbox)
        return {
            "id": self.shared_calendar_id(user.upn, mailbox),
            "name": name,
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": False,
            "changeKey": own.get("changeKey", ""),
            "canShare": False,
            "canViewPrivateItems": role == "delegateWithPrivateEventAccess",
            "canEdit": role in WRITE_ROLES,
            "isRemovable": True,
            "isTallyingResponses": False,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "owner": {"name": name, "address": mailbox},
        }

    def _context(self, fragment: str) -> str:
        return f"{self.emulator.graph_url}/$metadata#{fragment}"

    def h_calendar(self, ctx: _Ctx) -> GraphResult:
        assert ctx.target is not None
        if ctx.route.calendar_id is not None and ctx.target != ctx.mailbox:
            user = self._grant_user(ctx.grant)
            role = self.scenario.share_role(ctx.target, user.upn) if user else None
            body = self._shared_calendar_json(user, ctx.target, role or "read")
        else:
            body = self._calendar_json(ctx.target)
        body = {"@odata.context": self._context("users('x')/calendars/$entity"), **body}
        return GraphResult(200, body=body)

    def h_calendars(self, ctx: _Ctx) -> GraphResult:
        assert ctx.mailbox is not None
        calendars = [self._calendar_json(ctx.mailbox)]
        user = self._grant_user(ctx.grant) if ctx.grant.kind == "delegated" else None
        if user is not None and user.upn.lower() == ctx.mailbox.lower():
            for mailbox, role in self._shares_of(user):
                calendars.append(self._shared_calendar_json(user, mailbox, role))
        body = {
            "@odata.context": self._context("users('x')/calendars"),
            "value": _select(calendars, ctx.call.query),
        }
        return GraphResult(200, body=body)

    def h_user(self, ctx: _Ctx) -> GraphResult:
        assert ctx.mailbox is not None
        entry = self.scenario.mailbox(ctx.mailbox)
        grant = ctx.grant
        self_read = grant.kind == "delegated" and ctx.mailbox == self._own_upn(grant)
        readers = {"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"}
        granted = self._short(grant.roles if grant.kind == "app" else grant.scopes)
        if self.emulator.enforce_user_read and not self_read and not readers & granted:
            raise GraphHttpError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        display = entry.display_name
        first, _, last = display.partition(" ")
        address = entry.email if isinstance(entry, Room) else entry.mail
        body = {
            "@odata.context": self._context("users/$entity"),
            "businessPhones": [],
            "displayName": display,
            "givenName": None if isinstance(entry, Room) else first,
            "jobTitle": None,
            "mail": address,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None if isinstance(entry, Room) else (last or None),
            "userPrincipalName": ctx.mailbox,
            "id": entry.id,
        }
        items = _select([body], ctx.call.query)
        return GraphResult(200, body=items[0])

    def _own_upn(self, grant: Any) -> str | None:
        user = self._grant_user(grant)
        return user.upn if user else None

    def _link(
        self, ctx: _Ctx, overrides: dict[str, Any], *, drop_all: bool = False
    ) -> str:
        """Absolute link to the same path with query options replaced."""
        base = self.emulator.graph_url + ctx.call.path
        query = {} if drop_all else dict(ctx.call.query)
        for key, value in overrides.items():
            query[key] = str(value)
        return base + "?" + urlencode(query, quote_via=quote, safe="$:,'()=")

    def _expand_property(self, query: dict[str, str]) -> list[str] | None:
        raw = query.get("$expand")
        if not raw:
            return None
        match = _EXT_EXPAND.match(raw)
        if match is None:
            raise _bad_request(f"Unsupported $expand: {raw}", "ErrorInvalidUrlQuery")
        return [match.group(1).replace("''", "'")]

    def _event_context(self, ctx: _Ctx) -> str:
        return self._context(f"users('{quote(ctx.target or '')}')/events/$entity")

    def h_list_events(self, ctx: _Ctx) -> GraphResult:
        query = ctx.call.query
        extended = None
        raw_filter = query.get("$filter")
        if raw_filter:
            match = _EXT_FILTER.match(raw_filter)
            if match is None:
                raise _bad_request(
                    "The query filter contains one or more invalid nodes.",
                    "ErrorInvalidUrlQueryFilter",
                )
            extended = (
                match.group(2).replace("''", "'"),
                match.group(3).replace("''", "'"),
            )
        events = self.store.list_events(
            ctx.target,
            extended_filter=extended,
            time_zone=ctx.time_zone,
            expand_extended=self._expand_property(query),
        )
        return self._page(ctx, events, "events")

    def _page(self, ctx: _Ctx, events: list[dict[str, Any]], kind: str) -> GraphResult:
        query = ctx.call.query
        top = _int_param(query, "$top", DEFAULT_EVENTS_PAGE, 1000)
        skip = _int_param(query, "$skip", 0, 10**9)
        page = events[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": self._context(
                f"users('{quote(ctx.target or '')}')/{kind}"
            ),
            "value": _select(page, query),
        }
        if skip + top < len(events):
            body["@odata.nextLink"] = self._link(
                ctx, {"$top": top, "$skip": skip + top}
            )
        return GraphResult(200, body=body)

    def h_create_event(self, ctx: _Ctx) -> GraphResult:
        payload = ctx.call.body
        if not isinstance(payload, dict):
            raise _bad_request(BAD_JSON)
        zone = self._direct_zone(ctx)
        if zone is not False:
            event, created = self.store.create_event(
                ctx.target, payload, time_zone=zone
            )
            event = {"@odata.context": self._event_context(ctx), **event}
        else:
            event, created = self.store.create_event(ctx.target, payload)
            event = self._render_event(ctx, event)
        status = 201 if created else self.emulator.transaction_id_duplicate_status
        headers = {
            "Location": f"{self.emulator.graph_url}/users('{ctx.target}')"
            f"/events('{event.get('id')}')"
        }
        if event.get("@odata.etag"):
            headers["ETag"] = event["@odata.etag"]
        return GraphResult(status, headers=headers, body=event)

    def _direct_zone(self, ctx: _Ctx) -> str | None | bool:
        """The zone in which a write can render its answer itself, or False.

        False when the answer needs ``_render_event``'s second read: with ``$expand``,
        or with a zone the store refuses (that read is what answers 400, after the
        write is done, and must stay so)."""
        if ctx.call.query.get("$expand"):
            return False
        zone = ctx.time_zone
        if zone and not self.store.is_valid_time_zone(zone):
            return False
        return zone

    def _render_event(self, ctx: _Ctx, event: dict[str, Any]) -> dict[str, Any]:
        zone = ctx.time_zone
        if zone or ctx.call.query.get("$expand"):
            # Re-read so the store renders the zone / expanded properties.
            event = self.store.get_event(
                ctx.target,
                event["id"],
                time_zone=zone,
                expand_extended=self._expand_property(ctx.call.query),
            )
        return {"@odata.context": self._event_context(ctx), **event}

    def h_get_event(self, ctx: _Ctx) -> GraphResult:
        event = self.store.get_event(
            ctx.target,
            ctx.route.event_id,
            time_zone=ctx.time_zone,
            expand_extended=self._expand_property(ctx.call.query),
        )
        body = _select(
            [{"@odata.context": self._event_context(ctx), **event}], ctx.call.query
        )
        return GraphResult(200, body=body[0])

    def h_update_event(self, ctx: _Ctx) -> GraphResult:
        patch = ctx.call.body
        if not isinstance(patch, dict):
            raise _bad_request(BAD_JSON)
        zone = self._direct_zone(ctx)
        if zone is not False:
            event = self.store.update_event(
                ctx.target,
                ctx.route.event_id,
                patch,
                if_match=ctx.call.headers.get("If-Match"),
                time_zone=zone,
            )
            return GraphResult(
                200, body={"@odata.context": self._event_context(ctx), **event}
            )
        event = self.store.update_event(
            ctx.target,
            ctx.route.event_id,
            patch,
            if_match=ctx.call.headers.get("If-Match"),
        )
        return GraphResult(200, body=self._render_event(ctx, event))

    def h_delete_event(self, ctx: _Ctx) -> GraphResult:
        self.store.delete_event(
            ctx.target, ctx.route.event_id, if_match=ctx.call.headers.get("If-Match")
        )
        return GraphResult(204)

    def h_cancel_event(self, ctx: _Ctx) -> GraphResult:
        body = ctx.call.body if isinstance(ctx.call.body, dict) else {}
        self.store.cancel_event(
            ctx.target, ctx.route.event_id, comment=body.get("comment")
        )
        return GraphResult(202)

    def h_decline_event(self, ctx: _Ctx) -> GraphResult:
        """``event: decline``: body ``comment``, ``sendResponse`` (default true),
        ``proposedNewTime`` (not kept); 202 Accepted."""
        body = ctx.call.body if isinstance(ctx.call.body, dict) else {}
        send = body.get("sendResponse", True)
        if not isinstance(send, bool):
            raise _bad_request("sendResponse must be a boolean.")
        comment = body.get("comment")
        self.store.decline_event(
            ctx.target,
            ctx.route.event_id,
            comment=comment if isinstance(comment, str) else None,
            send_response=send,
        )
        return GraphResult(202)

    def h_instances(self, ctx: _Ctx) -> GraphResult:
        start, end = self._window(ctx.call.query)
        series = self.store.get_event(ctx.target, ctx.route.event_id)
        if series.get("type") != "seriesMaster":
            raise _bad_request(
                "The specified id is not a series master.", "ErrorInvalidRequest"
            )
        occurrences = [
            event
            for event in self.store.calendar_view(
                ctx.target, start, end, time_zone=ctx.time_zone
            )
            if event.get("seriesMasterId") == series["id"]
        ]
        return self._page(ctx, occurrences, "events")

    @staticmethod
    def _window(query: dict[str, str]) -> tuple[dt.datetime, dt.datetime]:
        lowered = {k.lower(): v for k, v in query.items()}
        raw_start, raw_end = lowered.get("startdatetime"), lowered.get("enddatetime")
        if not raw_start or not raw_end:
            raise _bad_request(WINDOW_REQUIRED, "ErrorInvalidParameter")
        start = _parse_when(raw_start, "startDateTime")
        end = _parse_when(raw_end, "endDateTime")
        if end - start > dt.timedelta(days=MAX_WINDOW_DAYS):
            raise _bad_request(WINDOW_TOO_LONG, "ErrorInvalidRequest")
        return start, end

    def h_calendar_view(self, ctx: _Ctx) -> GraphResult:
        start, end = self._window(ctx.call.query)
        events = self.store.calendar_view(
            ctx.target, start, end, time_zone=ctx.time_zone
        )
        return self._page(ctx, events, "calendarView")

    def h_delta(self, ctx: _Ctx) -> GraphResult:
        query = ctx.call.query
        unsupported = [name for name in _DELTA_UNSUPPORTED if name in query]
        if unsupported:
            raise _bad_request(
                "The following parameters are not supported with change tracking over "
                f"the 'CalendarView' resource: '{', '.join(unsupported)}'.",
                "ErrorInvalidUrlQuery",
            )
        token = query.get("$skiptoken") or query.get("$deltatoken")
        page_size = self._max_page_size(ctx)
        if token:
            if query.get("$skiptoken") and self._delta_next_link_denied(ctx):
                raise GraphHttpError(403, "ErrorAccessDenied", ACCESS_DENIED)
            try:
                page = self.store.delta_page(
                    ctx.target,
                    token=token,
                    page_size=page_size,
                    time_zone=ctx.time_zone,
                )
            except GraphHttpError as exc:
                if exc.status == 410:
                    raise self._with_reset_location(ctx, exc) from None
                raise
        else:
            start, end = self._window(query)
            page = self.store.delta_page(
                ctx.target,
                start=start,
                end=end,
                page_size=page_size,
                time_zone=ctx.time_zone,
            )
        body: dict[str, Any] = {"@odata.context": self._context("Collection(event)")}
        if page.next_token:
            body["@odata.nextLink"] = self._link(
                ctx, {"$skiptoken": page.next_token}, drop_all=True
            )
        else:
            body["@odata.deltaLink"] = self._link(
                ctx, {"$deltatoken": page.delta_token}, drop_all=True
            )
        body["value"] = list(page.value)
        ctx.applied.insert(0, "odata.track-changes")
        if page_size is not None:
            ctx.applied.append(f"odata.maxpagesize={page_size}")
        return GraphResult(200, body=body)

    def _with_reset_location(self, ctx: _Ctx, error: GraphHttpError) -> GraphHttpError:
        """A delta 410 with the ``Location`` that restarts the sync: "a request URL
        with an empty $deltaToken (same as the initial query)" (delta query overview,
        "Synchronization reset"), i.e. this path with the window of the query the
        token continued (or of this very request) and ``$deltatoken=`` empty."""
        query = ctx.call.query
        token = query.get("$skiptoken") or query.get("$deltatoken")
        window = self.store.delta_window(token) if token else None
        if window is None:
            lowered = {k.lower(): v for k, v in query.items()}
            if not (lowered.get("startdatetime") and lowered.get("enddatetime")):
                return error
            try:
                window = self._window(query)
            except GraphHttpError:
                return error
        start, end = window
        error.headers["Location"] = self._link(
            ctx,
            {
                "startDateTime": _utc_text(start),
                "endDateTime": _utc_text(end),
                "$deltatoken": "",
            },
            drop_all=True,
        )
        return error

    def _max_page_size(self, ctx: _Ctx) -> int | None:
        raw = ctx.prefer.get("odata.maxpagesize")
        if not raw:
            return None
        try:
            size = int(raw)
        except ValueError:
            raise _bad_request(
                f"Invalid odata.maxpagesize preference '{raw}'."
            ) from None
        if size < 1:
            raise _bad_request(f"Invalid odata.maxpagesize preference '{raw}'.")
        return size

    def _delta_next_link_denied(self, ctx: _Ctx) -> bool:
        """Optional: the 403 on a delegated room-delta nextLink
        (docs/graph.md#delegated-access-to-a-shared-room-calendar)."""
        if not self.emulator.delegated_delta_nextlink_403:
            return False
        return ctx.grant.kind == "delegated" and ctx.target != self._own_upn(ctx.grant)

    def h_batch(self, ctx: _Ctx) -> GraphResult:
        if ctx.call.in_batch:
            raise _bad_request("Nested batch requests are not supported.")
        authorization = ctx.call.headers.get("Authorization", "")

        def dispatch(item: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
            path, _, raw_query = item["url"].partition("?")
            headers = Headers(item.get("headers") or {})
            headers["Authorization"] = authorization
            call = GraphCall(
                method=item["method"],
                path=path,
                query=dict(parse_qsl(raw_query, keep_blank_values=True)),
                headers=headers,
                body=item.get("body"),
                client_request_id=ctx.call.client_request_id,
                in_batch=True,
                raw_query=raw_query,
            )
            started = time.perf_counter()
            result = self.process(call)
            self.emulator.record(call, result, time.perf_counter() - started)
            item_headers = dict(result.headers)
            if result.body is not None:
                item_headers.setdefault("Content-Type", ODATA_JSON)
            return result.status, item_headers, result.body

        envelope = batch_module.run_batch(
            ctx.call.body,
            dispatch,
            max_requests=self.emulator.batch_max_requests,
            order_seed=self.emulator.batch_order_seed,
            max_parallel=self.emulator.batch_max_parallel,
        )
        return GraphResult(200, body=envelope)

    def _mailbox_key(self, grant: Any, user: str) -> str | None:
        """Subscription mailbox key: the user's object id, as Graph names it in
        notification resources (``Users/{id}/Events/{eid}``)."""
        entry = self.scenario.mailbox(user)
        if entry is None or entry.tenant_id != grant.tenant_id:
            return None
        return entry.id

    def _subscription_mailbox(self, ctx: _Ctx, resource: Any) -> str | None:
        if not isinstance(resource, str):
            return None
        parts = [p for p in resource.strip().strip("/").split("/") if p]
        if parts and parts[0].lower() in ("v1.0", "beta"):
            parts = parts[1:]
        if len(parts) > 1 and parts[0].lower() == "users":
            entry = self.scenario.mailbox(unquote(parts[1]))
            if entry is not None and entry.tenant_id == ctx.grant.tenant_id:
                return entry.email if isinstance(entry, Room) else entry.upn
        return None

    def h_create_subscription(self, ctx: _Ctx) -> GraphResult:
        body = ctx.call.body
        if not isinstance(body, dict):
            raise _bad_request(BAD_JSON)
        grant = ctx.grant
        if grant.kind == "app":
            mailbox = self._subscription_mailbox(ctx, body.get("resource"))
            if mailbox is not None:
                self._authorize(grant, mailbox, write=False)
        created = self.emulator.subscriptions.create(
            body=body,
            tenant_id=grant.tenant_id,
            client_id=grant.client_id,
            delegated_upn=self._own_upn(grant) if grant.kind == "delegated" else None,
            mailbox_of_resource=lambda user: self._mailbox_key(grant, user),
        )
        payload = {"@odata.context": self._context("subscriptions/$entity"), **created}
        return GraphResult(201, body=payload)

    def h_list_subscriptions(self, ctx: _Ctx) -> GraphResult:
        """The calling app's subscriptions (an app-only token lists those the app
        created: learn.microsoft.com/graph/api/subscription-list), in pages of
        ``subscriptions_page_size`` linked by ``@odata.nextLink`` (Graph's page size
        is not documented; clients follow the link verbatim)."""
        items = self.emulator.subscriptions.list(client_id=ctx.grant.client_id)
        token = ctx.call.query.get("$skiptoken") or "0"
        skip = int(token) if token.isdigit() else 0
        size = max(self.subscriptions_page_size, 1)
        body: dict[str, Any] = {
            "@odata.context": self._context("subscriptions"),
            "value": items[skip : skip + size],
        }
        if skip + size < len(items):
            body["@odata.nextLink"] = self._link(ctx, {"$skiptoken": skip + size})
        return GraphResult(200, body=body)

    def h_get_subscription(self, ctx: _Ctx) -> GraphResult:
        item = self.emulator.subscriptions.get(ctx.route.sub_id)
        return GraphResult(
            200, body={"@odata.context": self._context("subscriptions/$entity"), **item}
        )

    def h_update_subscription(self, ctx: _Ctx) -> GraphResult:
        if not isinstance(ctx.call.body, dict):
            raise _bad_request(BAD_JSON)
        item = self.emulator.subscriptions.update(ctx.route.sub_id, ctx.call.body)
        return GraphResult(
            200, body={"@odata.context": self._context("subscriptions/$entity"), **item}
        )

    def h_delete_subscription(self, ctx: _Ctx) -> GraphResult:
        self.emulator.subscriptions.delete(ctx.route.sub_id)
        return GraphResult(204)

    def h_reauthorize_subscription(self, ctx: _Ctx) -> GraphResult:
        self.emulator.subscriptions.reauthorize(ctx.route.sub_id)
        return GraphResult(204)

    def _match(self, segments: list[str], method: str) -> _Route:
        if not segments:
            raise _bad_request("Invalid request.")
        low = [_canonical_segment(s) for s in segments]
        if low == ["$batch"]:
            return self._only(method, {"POST": _Route("/$batch", self.h_batch)})
        if low[0] == "places":
            return places.match(self, segments, method)
        if low[0] == "subscriptions":
            return self._match_subscriptions(segments, method)
        if low[0] == "me":
            owner, prefix, rest = "me", "/me", segments[1:]
        elif low[0] == "users" and len(segments) >= 2:
            owner, prefix, rest = segments[1], "/users/{id}", segments[2:]
        else:
            raise _bad_request(f"Resource not found for the segment '{segments[0]}'.")
        route = self._match_mailbox(rest, method, prefix)
        route.owner = owner
        return route

    @staticmethod
    def _only(method: str, routes: dict[str, _Route]) -> _Route:
        route = routes.get(method)
        if route is None:
            raise GraphHttpError(
                405, "ErrorInvalidRequest", "The OData request is not supported."
            )
        return route

    def _match_subscriptions(self, segments: list[str], method: str) -> _Route:
        if len(segments) == 1:
            return self._only(
                method,
                {
                    "GET": _Route("/subscriptions", self.h_list_subscriptions),
                    "POST": _Route("/subscriptions", self.h_create_subscription),
                },
            )
        template = "/subscriptions/{id}"
        if len(segments) == 2:
            route = self._only(
                method,
                {
                    "GET": _Route(template, self.h_get_subscription),
                    "PATCH": _Route(template, self.h_update_subscription),
                    "DELETE": _Route(template, self.h_delete_subscription),
                },
            )
        elif len(segments) == 3 and segments[2].lower() == "reauthorize":
            route = self._only(
                method,
                {
                    "POST": _Route(
                        template + "/reauthorize", self.h_reauthorize_subscription
                    )
                },
            )
        else:
            raise _bad_request(f"Resource not found for the segment '{segments[-1]}'.")
        route.sub_id = segments[1]
        return route

    def _match_mailbox(self, rest: list[str], method: str, prefix: str) -> _Route:
        low = [s.lower() for s in rest]
        if not rest:
            return self._only(method, {"GET": _Route(prefix, self.h_user)})
        calendar_id = None
        if low[0] == "calendar":
            container, tail, template = rest[:1], rest[1:], prefix + "/calendar"
        elif low[0] == "calendars" and len(rest) >= 2:
            calendar_id = rest[1]
            container, tail, template = rest[:2], rest[2:], prefix + "/calendars/{id}"
        else:
            container, tail, template = [], rest, prefix
        route = self._match_calendar_tail(tail, method, template, bool(container), rest)
        route.calendar_id = calendar_id
        return route

    def _match_calendar_tail(
        self,
        tail: list[str],
        method: str,
        template: str,
        in_container: bool,
        rest: list[str],
    ) -> _Route:
        low = [s.lower() for s in tail]
        if not tail and in_container:
            return self._only(
                method, {"GET": _Route(template, self.h_calendar, "read")}
            )
        if low == ["calendars"] and not in_container:
            return self._only(
                method,
                {"GET": _Route(template + "/calendars", self.h_calendars, "read")},
            )
        if low[:1] == ["calendarview"] and len(tail) <= 2:
            if len(tail) == 1:
                return self._only(
                    method,
                    {
                        "GET": _Route(
                            template + "/calendarView", self.h_calendar_view, "read"
                        )
                    },
                )
            if _canonical_segment(low[1]) == "delta":
                return self._only(
                    method,
                    {
                        "GET": _Route(
                            template + "/calendarView/delta", self.h_delta, "read"
                        )
                    },
                )
        if low[:1] == ["events"]:
            return self._match_events(tail, method, template + "/events")
        raise _bad_request(f"Resource not found for the segment '{(tail or rest)[0]}'.")

    def _match_events(self, tail: list[str], method: str, template: str) -> _Route:
        if len(tail) == 1:
            return self._only(
                method,
                {
                    "GET": _Route(template, self.h_list_events, "read"),
                    "POST": _Route(template, self.h_create_event, "write"),
                },
            )
        if _canonical_segment(tail[1]) == "delta":
            # v1.0 has no events/delta (beta only, docs/graph.md#which-delta-endpoint).
            raise _bad_request(
                "Change tracking is not supported against 'microsoft.graph.event'.",
                "ErrorInvalidRequest",
            )
        item = template + "/{id}"
        if len(tail) == 2:
            route = self._only(
                method,
                {
                    "GET": _Route(item, self.h_get_event, "read"),
                    "PATCH": _Route(item, self.h_update_event, "write"),
                    "DELETE": _Route(item, self.h_delete_event, "write"),
                },
            )
        elif len(tail) == 3 and tail[2].lower() == "cancel":
            route = self._only(
                method, {"POST": _Route(item + "/cancel", self.h_cancel_event, "write")}
            )
        elif len(tail) == 3 and tail[2].lower() == "decline":
            route = self._only(
                method,
                {"POST": _Route(item + "/decline", self.h_decline_event, "write")},
            )
        elif len(tail) == 3 and tail[2].lower() == "instances":
            route = self._only(
                method, {"GET": _Route(item + "/instances", self.h_instances, "read")}
            )
        else:
            raise _bad_request(f"Resource not found for the segment '{tail[-1]}'.")
        route.event_id = tail[1]
        return route
