"""A small Microsoft Graph v1.0 client for room mailbox calendars.

Public API:

- ``GraphClient`` (see its docstring) with ``iter_rooms``, ``iter_places``,
  ``places_request``, ``list_directory_rooms``, ``list_calendars``, ``get_calendar``,
  ``probe_calendar_access``, ``probe_calendar_access_many``, ``read_calendars``,
  the subscription methods, ``iter_calendar_view``, ``iter_delta``,
  ``delta_request``, ``batch`` (many requests in ``$batch``) and ``send`` (one
  request alone); the requests themselves are built in ``protocol.py``;
- value types ``BatchResult``, ``DeltaPage``, ``CalendarAccess``, ``DirectoryRoom``
  (and ``BatchRequest``, from ``protocol.py``);
- ``same_origin(url, base_url)``: whether a link stays on the Graph endpoint (the
  client refuses to send its token anywhere else);
- ``TokenSource``: what the client calls for a bearer token.

Every failure is a ``GraphError`` subclass (``errors.py``); HTTP answers become errors
in ``errors.error_from_response`` only.
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests

from .errors import (
    RETRYABLE_STATUSES,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    GraphRetryableError,
    error_from_response,
    error_from_status,
)
from .http import make_session
from .protocol import (
    BatchRequest,
    create_event_request,
    delete_event_request,
    mailbox_segment,
    max_page_size,
    user_path,
    with_prefer,
)

_logger = logging.getLogger(__name__)

TokenSource = Callable[..., str]
BATCH_LIMIT = 20
PROBE_SUBJECT = "Odoo room sync permission check"
# Place types of the Places API (List places); rooms and room lists support $count.
PLACE_ROOM = "microsoft.graph.room"
PLACE_ROOM_LIST = "microsoft.graph.roomList"
PLACE_BUILDING = "microsoft.graph.building"
PLACE_FLOOR = "microsoft.graph.floor"
_COUNTABLE_PLACES = frozenset({PLACE_ROOM.lower(), PLACE_ROOM_LIST.lower()})
_USERS_SEGMENT = re.compile(r"/users/([^/?#]+)", re.IGNORECASE)
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
_ID_AFTER = frozenset({"events", "calendars", "instances", "subscriptions"})


@dataclass
class BatchResult:
    """The answer to one ``$batch`` item; ``error`` is set when ``status >= 400``."""

    id: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    error: GraphError | None = None


@dataclass
class DeltaPage:
    """One page of a calendarView delta round; ``delta_link`` only on the last."""

    events: list[dict[str, Any]]
    removed_ids: list[str]
    delta_link: str | None


@dataclass
class CalendarAccess:
    """What the signed-in user or app may do with a room calendar."""

    calendar: dict[str, Any]
    can_read: bool
    can_write: bool
    error: GraphError | None = None


@dataclass
class DirectoryRoom:
    """A room of the tenant's directory (Graph Places), keyed by ``mailbox`` (room
    ids can change, e-mail addresses do not). ``equipment``: the room's tags and the
    names of its audio, video and display devices."""

    mailbox: str
    name: str
    capacity: int | None = None
    building: str | None = None
    floor_label: str | None = None
    floor_number: int | None = None
    room_list: str | None = None
    room_list_mailbox: str | None = None
    equipment: list[str] | None = None
    wheelchair_accessible: bool = False
    booking_type: str | None = None

    @property
    def floor(self) -> str | None:
        """The floor as people say it: its label, else its number."""
        if self.floor_label:
            return self.floor_label
        return None if self.floor_number is None else str(self.floor_number)

    @classmethod
    def from_place(
        cls, place: dict[str, Any], room_list: dict[str, Any] | None = None
    ) -> DirectoryRoom:
        """From a ``microsoft.graph.room`` place (and the room list holding it)."""
        equipment = [str(tag) for tag in place.get("tags") or [] if tag]
        for key in ("audioDeviceName", "videoDeviceName", "displayDeviceName"):
            if place.get(key):
                equipment.append(str(place[key]))
        capacity = place.get("capacity")
        try:
            # The room resource says Int32; List places' example once showed "50".
            capacity = int(capacity) if capacity not in (None, "") else None
        except (TypeError, ValueError):
            capacity = None
        floor_number = place.get("floorNumber")
        return cls(
            mailbox=place.get("emailAddress") or "",
            name=place.get("displayName") or place.get("emailAddress") or "",
            capacity=capacity,
            building=place.get("building") or None,
            floor_label=place.get("floorLabel") or None,
            floor_number=floor_number if isinstance(floor_number, int) else None,
            room_list=(room_list or {}).get("displayName") or None,
            room_list_mailbox=(room_list or {}).get("emailAddress") or None,
            equipment=equipment,
            wheelchair_accessible=bool(place.get("isWheelChairAccessible")),
            booking_type=place.get("bookingType") or None,
        )


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` goes to the same scheme, host and port as ``base_url`` (and,
    for an absolute URL, under its path, e.g. ``/v1.0``)."""
    if not url.startswith(("https://", "http://")):
        return True
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path
    return _origin(url) == _origin(base_url) and (
        path == base_path or path.startswith(base_path + "/")
    )


def _probe_payload(now: datetime) -> dict[str, Any]:
    """The permission check's event: one minute, free, no reminder, a day ago."""
    start = now - timedelta(days=1)
    end = start + timedelta(minutes=1)
    return {
        "subject": PROBE_SUBJECT,
        "showAs": "free",
        "isReminderOn": False,
        "start": {"dateTime": start.strftime(_LOCAL_FORMAT), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime(_LOCAL_FORMAT), "timeZone": "UTC"},
    }


def _probe_transaction() -> str:
    return f"odoo-probe-{uuid.uuid4()}"


def _has_transaction_id(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("transactionId"))


def _accepts_force_refresh(source: TokenSource) -> bool:
    try:
        parameters = inspect.signature(source).parameters
    except (TypeError, ValueError):
        return False
    return "force_refresh" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


class GraphClient:
    """Graph v1.0 over ``requests`` with Outlook-aware retries and throttling.

    Every request carries a bearer token from ``token_source()`` (called per request;
    after a 401 it is called once more, with ``force_refresh=True`` when it accepts
    that keyword, and the request is retried once), ``Prefer: IdType="ImmutableId"``,
    ``Prefer: outlook.timezone="<time_zone>"``, a ``client-request-id``, and explicit
    ``timeout`` and ``verify`` (so ``REQUESTS_CA_BUNDLE`` cannot override the CA).

    Retries: 429/503/504, connection errors and timeouts, up to ``max_retries`` times
    with capped exponential backoff and jitter, honouring ``Retry-After`` (a
    ``Retry-After`` longer than ``max_backoff`` is not waited for: the error is raised
    with ``retry_after`` set, for the caller to reschedule). A POST is retried only
    when its body carries a ``transactionId``, so a retry never creates a second
    event. At most ``max_in_flight_per_mailbox`` requests run at once per mailbox
    (Outlook allows four concurrent requests per app and mailbox).

    Logging: one debug line per request with method, a path template without e-mail
    addresses or ids, status, Graph's ``request-id`` and the elapsed time.
    """

    def __init__(
        self,
        *,
        graph_url: str,
        token_source: TokenSource,
        session: requests.Session | None = None,
        verify: str | bool = True,
        timeout: float | tuple[float, float] = (10, 60),
        time_zone: str = "UTC",
        max_retries: int = 5,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        max_in_flight_per_mailbox: int = 4,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.token_source = token_source
        self.session = session or make_session()
        self.verify = verify
        self.timeout = timeout
        self.time_zone = time_zone
        self.max_retries = max_retries
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.max_in_flight_per_mailbox = max_in_flight_per_mailbox
        self._force_refresh = _accepts_force_refresh(token_source)
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._semaphores_lock = threading.Lock()
        self._random = random.Random()

    # -- plumbing ---------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            self._check_own_host(path_or_url)
            return path_or_url
        return self.graph_url + path_or_url

    def _check_own_host(self, url: str) -> None:
        """Refuse a link (a stored delta link, a ``nextLink``) to another host than
        this client's Graph endpoint: the bearer token goes wherever it points."""
        if not same_origin(url, self.graph_url):
            raise GraphError(
                f"Refused a link to {urlsplit(url).hostname or '?'}, which is not "
                f"this connection's Graph host {urlsplit(self.graph_url).hostname}",
                code="foreignHost",
            )

    def _template(self, url: str) -> str:
        path = urlsplit(url).path
        base = urlsplit(self.graph_url).path
        if base and path.startswith(base):
            path = path[len(base) :]
        segments = path.strip("/").split("/") if path.strip("/") else []
        out: list[str] = []
        for index, segment in enumerate(segments):
            previous = segments[index - 1].lower() if index else ""
            if previous == "users" or "@" in unquote(segment):
                out.append("{mailbox}")
            elif previous in _ID_AFTER:
                out.append("{id}")
            else:
                out.append(segment)
        return "/" + "/".join(out)

    @staticmethod
    def _mailbox(url: str) -> str | None:
        path = urlsplit(url).path
        match = _USERS_SEGMENT.search(path)
        if match:
            return unquote(match.group(1)).lower()
        if re.search(r"/me(/|$)", path):
            return "me"
        return None

    def _semaphore(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._semaphores_lock:
            semaphore = self._semaphores.get(mailbox)
            if semaphore is None:
                semaphore = threading.BoundedSemaphore(self.max_in_flight_per_mailbox)
                self._semaphores[mailbox] = semaphore
            return semaphore

    def _preferences(self) -> tuple[str, ...]:
        """What every request prefers (docs/graph.md#immutable-ids,
        docs/graph.md#times-and-time-zones); a request's own ``Prefer`` is merged
        after these (``protocol.with_prefer``)."""
        return ('IdType="ImmutableId"', f'outlook.timezone="{self.time_zone}"')

    def _headers(self, extra: dict[str, str] | None, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
            **with_prefer(extra, self._preferences()),
        }

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, 2.0**attempt)
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _token(self, refresh: bool) -> str:
        if refresh and self._force_refresh:
            return self.token_source(force_refresh=True)
        return self.token_source()

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
        mailboxes: list[str],
        refresh: bool,
    ) -> requests.Response:
        with ExitStack() as stack:
            for mailbox in sorted(set(mailboxes)):
                stack.enter_context(self._semaphore(mailbox))
            request_headers = self._headers(headers, self._token(refresh))
            started = time.perf_counter()
            template = self._template(url)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=None if body is None else json.dumps(body),
                    headers=(
                        request_headers
                        if body is None
                        else {**request_headers, "Content-Type": "application/json"}
                    ),
                    timeout=self.timeout,
                    verify=self.verify,
                )
            except requests.RequestException as exc:
                _logger.debug(
                    "Graph %s %s -> %s after %.0f ms",
                    method,
                    template,
                    type(exc).__name__,
                    (time.perf_counter() - started) * 1000,
                )
                raise
            _logger.debug(
                "Graph %s %s -> %s request-id=%s %.0f ms",
                method,
                template,
                response.status_code,
                response.headers.get("request-id"),
                (time.perf_counter() - started) * 1000,
            )
            return response

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        retry_safe: bool | None = None,
        mailboxes: list[str] | None = None,
    ) -> requests.Response:
        """Send with retries; return a < 400 response or raise a GraphError."""
        method = method.upper()
        url = self._url(path_or_url)
        if retry_safe is None:
            retry_safe = method != "POST" or _has_transaction_id(body)
        if mailboxes is None:
            mailbox = self._mailbox(url)
            mailboxes = [mailbox] if mailbox else []
        template = self._template(url)
        attempt = 0
        refreshed = False
        while True:
            try:
                response = self._send(
                    method,
                    url,
                    params=params,
                    body=body,
                    headers=headers,
                    mailboxes=mailboxes,
                    refresh=refreshed,
                )
            except requests.RequestException as exc:
                timeout = isinstance(exc, requests.Timeout)
                error = GraphRetryableError(
                    f"Graph did not answer {method} {template}: {type(exc).__name__}",
                    code="timeout" if timeout else "connectionError",
                )
                if not retry_safe or attempt >= self.max_retries:
                    raise error from exc
                delay = self._backoff(attempt, None)
            else:
                status = response.status_code
                if status < 400:
                    return response
                error = error_from_response(response)
                if status == 401 and not refreshed:
                    refreshed = True
                    continue
                if (
                    status not in RETRYABLE_STATUSES
                    or not retry_safe
                    or attempt >= self.max_retries
                ):
                    raise error
                if (error.retry_after or 0) > self.max_backoff:
                    raise error
                delay = self._backoff(attempt, error.retry_after)
            attempt += 1
            _logger.info(
                "Graph %s %s: %s, retry %d/%d in %.1f s",
                method,
                template,
                error.code or error.status,
                attempt,
                self.max_retries,
                delay,
            )
            self.sleep(delay)

    def _json(self, method: str, path_or_url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path_or_url, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def _iter_pages(
        self,
        path_or_url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of a collection, following ``@odata.nextLink`` verbatim."""
        url: str | None = path_or_url
        while url:
            page = self._json("GET", url, params=params, headers=headers)
            yield from page.get("value", [])
            url = page.get("@odata.nextLink")
            params = None

    # -- users, rooms, calendars ----------------------------------------------

    def iter_rooms(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """All rooms of the tenant (``Place.Read.All``); key them by
        ``emailAddress``, their ``id`` can change."""
        return self.iter_places(PLACE_ROOM, page_size=page_size)

    def iter_places(
        self,
        place_type: str = PLACE_ROOM,
        *,
        room_list: str | None = None,
        page_size: int = 100,
        first_page: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Places of one type (``Place.Read.All``): ``microsoft.graph.room``,
        ``microsoft.graph.roomList``, ``…building``, ``…floor``; with ``room_list``
        (its e-mail address, not its id) the rooms of that room list.

        One request per page of ``page_size`` (Graph's default is 100 rooms or room
        lists, 1,000 buildings or floors). Pages are followed by
        ``@odata.nextLink``; for rooms and room lists, which are asked with
        ``$count=true``, a page without one while rooms are missing is followed by
        ``$skip`` (a nextLink missing on places was reported, Microsoft Q&A
        1021419). ``first_page``: the answer to ``places_request`` when it was
        already sent (in a ``$batch``).
        """
        request = self.places_request(
            place_type, room_list=room_list, page_size=page_size
        )
        path = request.url.partition("?")[0]
        total: int | None = None
        seen = 0
        url: str | None = request.url
        page = first_page
        while url:
            if page is None:
                page = self._json("GET", url)
            items = page.get("value", [])
            yield from items
            seen += len(items)
            count = page.get("@odata.count")
            total = count if isinstance(count, int) else total
            url = page.get("@odata.nextLink")
            if not url and total is not None and seen < total and items:
                url = f"{path}?{urlencode({'$top': page_size, '$skip': seen})}"
            page = None

    def places_request(
        self,
        place_type: str = PLACE_ROOM,
        *,
        room_list: str | None = None,
        page_size: int = 100,
        request_id: str = "places",
    ) -> BatchRequest:
        """The GET of the first page of ``iter_places``, also as a ``batch()`` item
        (the first pages of several room lists then cost one round trip)."""
        query = {"$top": page_size}
        if room_list:
            path = f"/places/{mailbox_segment(room_list)}/{PLACE_ROOM_LIST}/rooms"
            query["$count"] = "true"
        else:
            path = f"/places/{place_type}"
            if place_type.lower() in _COUNTABLE_PLACES:
                query["$count"] = "true"
        return BatchRequest(request_id, "GET", f"{path}?{urlencode(query)}")

    def list_directory_rooms(self, page_size: int = 100) -> list[DirectoryRoom]:
        """Every room of the directory with the room list holding it, in
        ``2 + pages`` round trips: the rooms' pages, the room lists' page(s), then
        the first page of every room list's rooms in one ``$batch`` (their further
        pages, if any, one request each). A room in several room lists gets the
        first one's name."""
        rooms: dict[str, dict[str, Any]] = {}
        for place in self.iter_places(PLACE_ROOM, page_size=page_size):
            address = (place.get("emailAddress") or "").lower()
            if address:
                rooms.setdefault(address, place)
        room_lists = [
            room_list
            for room_list in self.iter_places(PLACE_ROOM_LIST, page_size=page_size)
            if room_list.get("emailAddress")
        ]
        requests_ = [
            self.places_request(
                room_list=room_list["emailAddress"],
                page_size=page_size,
                request_id=str(index),
            )
            for index, room_list in enumerate(room_lists)
        ]
        holder: dict[str, dict[str, Any]] = {}
        for room_list, result in zip(room_lists, self.batch(requests_), strict=True):
            if result.error is not None:
                raise result.error
            members = self.iter_places(
                room_list=room_list["emailAddress"],
                page_size=page_size,
                first_page=result.body or {},
            )
            for place in members:
                address = (place.get("emailAddress") or "").lower()
                holder.setdefault(address, room_list)
        return [
            DirectoryRoom.from_place(place, holder.get(address))
            for address, place in rooms.items()
        ]

    def list_calendars(self, user: str = "me") -> list[dict[str, Any]]:
        """The user's calendars, including the shared calendars added to them."""
        return list(self._iter_pages(f"{user_path(user)}/calendars"))

    def get_calendar(self, mailbox: str) -> dict[str, Any]:
        """The primary calendar of a mailbox (the owner's id, not the sharee's copy)."""
        return self._json("GET", f"{user_path(mailbox)}/calendar")

    def probe_calendar_access(self, mailbox: str) -> CalendarAccess:
        """Check read and write access to a room calendar.

        Reads the calendar and a one-item calendarView, then creates a one-minute
        ``showAs: free`` event in the past (with a ``transactionId``) and deletes it.
        A 403 or 404 is reported in ``error``; other errors are raised.
        """
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        try:
            calendar = self.get_calendar(mailbox)
            window = self.iter_calendar_view(mailbox, now, now + timedelta(days=1), 1)
            next(window, None)
        except (GraphPermissionError, GraphNotFound) as exc:
            return CalendarAccess({}, can_read=False, can_write=False, error=exc)
        probe = create_event_request(
            mailbox, _probe_payload(now), transaction_id=_probe_transaction()
        )
        try:
            event = self.send(probe)
        except GraphPermissionError as exc:
            return CalendarAccess(calendar, can_read=True, can_write=False, error=exc)
        self.send(delete_event_request(mailbox, event["id"]))
        return CalendarAccess(calendar, can_read=True, can_write=True)

    def probe_calendar_access_many(
        self, mailboxes: list[str]
    ) -> dict[str, CalendarAccess]:
        """``probe_calendar_access`` for many room calendars, through ``$batch``:
        the reads of every mailbox (calendar and a one-item calendarView), then the
        probe events of the readable ones, then their deletion, 20 requests per
        round trip: ``4 n / 20`` round trips instead of ``4 n``.

        Returns an access per mailbox (as given). Unlike the single probe, nothing
        is raised for one mailbox: a failure other than 403/404 (Exchange busy
        after the retries, a 5xx) is that mailbox's ``error``. A probe event that
        cannot be deleted is left (it is free, one minute, in the past); the
        envelope's own failures (401 after a refresh, Graph unreachable) raise.
        """
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        unique = list(dict.fromkeys(mailboxes))
        reads: list[BatchRequest] = []
        for index, mailbox in enumerate(unique):
            reads.append(
                BatchRequest(f"c{index}", "GET", f"{user_path(mailbox)}/calendar")
            )
            query = urlencode(
                {
                    "startDateTime": _utc_text(now),
                    "endDateTime": _utc_text(now + timedelta(days=1)),
                    "$top": 1,
                }
            )
            reads.append(
                BatchRequest(
                    f"v{index}",
                    "GET",
                    f"{user_path(mailbox)}/calendar/calendarView?{query}",
                )
            )
        answers = {result.id: result for result in self.batch(reads)}
        access: dict[str, CalendarAccess] = {}
        creates: list[BatchRequest] = []
        for index, mailbox in enumerate(unique):
            calendar, view = answers[f"c{index}"], answers[f"v{index}"]
            error = calendar.error or view.error
            if error is not None:
                access[mailbox] = CalendarAccess({}, False, False, error=error)
                continue
            access[mailbox] = CalendarAccess(calendar.body or {}, True, False)
            creates.append(
                create_event_request(
                    mailbox,
                    _probe_payload(now),
                    transaction_id=_probe_transaction(),
                    request_id=f"p{index}",
                )
            )
        deletes: list[BatchRequest] = []
        for request, result in zip(creates, self.batch(creates), strict=True):
            mailbox = unique[int(request.id[1:])]
            if result.error is not None:
                access[mailbox].error = result.error
                continue
            access[mailbox].can_write = True
            event_id = (result.body or {}).get("id")
            if event_id:
                deletes.append(
                    delete_event_request(
                        mailbox, event_id, request_id=f"d{request.id[1:]}"
                    )
                )
        for result in self.batch(deletes):
            if result.error is not None and not isinstance(result.error, GraphNotFound):
                _logger.info(
                    "Graph $batch: a permission check event was not deleted (%s)",
                    result.error.code or result.status,
                )
        return {mailbox: access[mailbox] for mailbox in unique}

    def read_calendars(self, mailboxes: list[str]) -> dict[str, GraphError | None]:
        """Whether each room calendar can still be read, through ``$batch`` (20
        per round trip): None when it can, else the error (403 out of the app's
        scope or no share any more, 404 the mailbox is gone, or another failure)."""
        unique = list(dict.fromkeys(mailboxes))
        requests_ = [
            BatchRequest(str(index), "GET", f"{user_path(mailbox)}/calendar")
            for index, mailbox in enumerate(unique)
        ]
        return {
            mailbox: result.error
            for mailbox, result in zip(unique, self.batch(requests_), strict=True)
        }

    # -- events -------------------------------------------------------------------

    def create_subscription(
        self,
        mailbox: str,
        *,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
        expiration: datetime,
    ) -> dict[str, Any]:
        """Ask Graph to POST change notifications for a mailbox's events.

        Graph first validates both URLs (it POSTs a ``validationToken`` that must be
        echoed within 10 s) and answers 400 when that fails. Change notifications on a
        room mailbox need application permissions (docs/graph.md#change-notifications).
        """
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": f"{user_path(mailbox)}/events",
            "expirationDateTime": _utc_text(expiration),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        return self._json(
            "POST", "/subscriptions", body=body, retry_safe=False, mailboxes=[mailbox]
        )

    def renew_subscription(
        self, subscription_id: str, expiration: datetime
    ) -> dict[str, Any]:
        """Move a subscription's expiry; raises GraphNotFound when Graph dropped it."""
        return self._json(
            "PATCH",
            f"/subscriptions/{quote(subscription_id, safe='')}",
            body={"expirationDateTime": _utc_text(expiration)},
        )

    def iter_subscriptions(self) -> Iterator[dict[str, Any]]:
        """The subscriptions of the calling app, every page (``GET
        /subscriptions``: with an app-only token, those the app created in the
        tenant; learn.microsoft.com/graph/api/subscription-list)."""
        return self._iter_pages("/subscriptions")

    def delete_subscription(self, subscription_id: str) -> None:
        """Stop a subscription; raises GraphNotFound when it is already gone."""
        self._request("DELETE", f"/subscriptions/{quote(subscription_id, safe='')}")

    def iter_calendar_view(
        self, mailbox: str, start: datetime, end: datetime, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Events and expanded occurrences overlapping [start, end) (naive = UTC)."""
        params = {
            "startDateTime": _utc_text(start),
            "endDateTime": _utc_text(end),
            "$top": page_size,
        }
        return self._iter_pages(
            f"{user_path(mailbox)}/calendar/calendarView", params=params
        )

    def iter_delta(
        self,
        mailbox: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
        first_page: dict[str, Any] | None = None,
    ) -> Iterator[DeltaPage]:
        """One calendarView delta round: a full round for [start, end), or the
        changes since ``delta_link``. ``first_page``: the answer to this round's
        ``delta_request`` when it was already sent (in a ``$batch``).

        Pages may be empty; the last page has ``delta_link`` (store it verbatim).
        Items with ``@removed`` (deleted, or moved out of the window) are reported in
        ``removed_ids``; the same event may appear more than once in a round.

        Raises SyncStateExpired when the token is gone (start a full round),
        ValueError without a window or delta link.
        """
        request = self.delta_request(
            mailbox, start=start, end=end, delta_link=delta_link, page_size=page_size
        )
        url: str | None = request.url
        page = first_page
        while url:
            if page is None:
                page = self._json("GET", url, headers=request.headers)
            events, removed = [], []
            for item in page.get("value", []):
                if "@removed" in item:
                    removed.append(item["id"])
                else:
                    events.append(item)
            next_link = page.get("@odata.nextLink")
            yield DeltaPage(
                events=events,
                removed_ids=removed,
                delta_link=None if next_link else page.get("@odata.deltaLink"),
            )
            url, page = next_link, None

    def delta_request(
        self,
        mailbox: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
        request_id: str = "delta",
    ) -> BatchRequest:
        """The GET of a delta round's first page, also as an item of ``batch()``
        (the first pages of several rooms then cost one round trip); continue
        with ``iter_delta(..., first_page=answer)``."""
        headers = {"Prefer": max_page_size(page_size)} if page_size else None
        if delta_link:
            return BatchRequest(request_id, "GET", delta_link, headers=headers)
        if start is None or end is None:
            raise ValueError("iter_delta needs start and end, or a delta_link")
        query = urlencode(
            {"startDateTime": _utc_text(start), "endDateTime": _utc_text(end)}
        )
        url = f"{user_path(mailbox)}/calendarView/delta?{query}"
        return BatchRequest(request_id, "GET", url, headers=headers)

    # -- requests built in protocol.py ---------------------------------------------

    def send(self, request: BatchRequest) -> dict[str, Any]:
        """Send one request alone (with the retries of every request; a POST is
        retried only with a ``transactionId``); its JSON answer (``{}`` for 202 or
        204). Raises the GraphError of a failure, e.g. GraphNotFound, GraphConflict.
        ``request.id`` is not sent."""
        return self._json(
            request.method, request.url, body=request.body, headers=request.headers
        )

    def batch(
        self, requests: list[BatchRequest], *, max_attempts: int = 5
    ) -> list[BatchResult]:
        """Run requests through ``$batch`` (chunks of 20); results in request order.

        Items answered 429/503/504 are sent again in a new batch after the longest
        ``Retry-After``, up to ``max_attempts`` times (a POST item only when its body
        has a ``transactionId``). Other failures are returned as results with
        ``error`` set, never raised; the envelope's own failures are raised.
        """
        ids = [item.id for item in requests]
        if len({i.lower() for i in ids}) != len(ids):
            raise ValueError("batch request ids must be unique")
        results: dict[str, BatchResult] = {}
        # One envelope at a time: Graph runs up to four items of an envelope at once
        # against the mailbox, which is the mailbox's whole concurrency limit.
        for offset in range(0, len(requests), BATCH_LIMIT):
            chunk = requests[offset : offset + BATCH_LIMIT]
            results.update(self._run_batch_chunk(chunk, max_attempts))
        return [results[item.id] for item in requests]

    def _batch_item(self, item: BatchRequest) -> dict[str, Any]:
        url = item.url
        if url.startswith(("https://", "http://")):
            self._check_own_host(url)
            parts = urlsplit(url)
            base_path = urlsplit(self.graph_url).path.rstrip("/")
            query = f"?{parts.query}" if parts.query else ""
            url = parts.path[len(base_path) :] + query
        headers = with_prefer(item.headers, self._preferences())
        entry: dict[str, Any] = {"id": item.id, "method": item.method.upper()}
        entry["url"] = url
        if item.body is not None:
            headers.setdefault("Content-Type", "application/json")
            entry["body"] = item.body
        entry["headers"] = headers
        return entry

    def _run_batch_chunk(
        self, chunk: list[BatchRequest], max_attempts: int
    ) -> dict[str, BatchResult]:
        results: dict[str, BatchResult] = {}
        pending = list(chunk)
        for attempt in range(1, max_attempts + 1):
            envelope = {"requests": [self._batch_item(item) for item in pending]}
            mailboxes = [m for m in (self._mailbox(i.url) for i in pending) if m]
            envelope_safe = all(
                i.method.upper() != "POST" or _has_transaction_id(i.body)
                for i in pending
            )
            answer = self._json(
                "POST",
                "/$batch",
                body=envelope,
                retry_safe=envelope_safe,
                mailboxes=mailboxes,
            )
            by_id = {str(r.get("id")): r for r in answer.get("responses", [])}
            retry: list[BatchRequest] = []
            waits: list[float] = []
            for item in pending:
                raw = by_id.get(item.id)
                if raw is None:
                    error = GraphError("The batch answer has no response for this item")
                    results[item.id] = BatchResult(item.id, 0, {}, None, error)
                    continue
                result = self._batch_result(item.id, raw)
                results[item.id] = result
                safe = item.method.upper() != "POST" or _has_transaction_id(item.body)
                if result.status in RETRYABLE_STATUSES and safe:
                    retry.append(item)
                    if result.error is not None and result.error.retry_after:
                        waits.append(result.error.retry_after)
            if not retry or attempt == max_attempts:
                break
            delay = max(waits) if waits else self._backoff(attempt - 1, None)
            if delay > self.max_backoff:
                break
            _logger.info(
                "Graph $batch: %d of %d items to retry (attempt %d/%d) in %.1f s",
                len(retry),
                len(pending),
                attempt,
                max_attempts,
                delay,
            )
            self.sleep(delay)
            pending = retry
        return results

    @staticmethod
    def _batch_result(item_id: str, raw: dict[str, Any]) -> BatchResult:
        status = int(raw.get("status") or 0)
        headers = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
        body = raw.get("body")
        if isinstance(body, str):
            # Graph base64-encodes non-JSON item bodies.
            body = {"raw": body}
        error = error_from_status(status, headers, body) if status >= 400 else None
        return BatchResult(item_id, status, headers, body, error)
