"""The Microsoft emulator as one WSGI application: Entra ID + Graph v1.0 + admin API.

Public API::

    emulator = Emulator(scenario=None, *, clock=None, auto_consent=False,
                        latency=None, delegated_delta_nextlink_403=False,
                        delta_partial_updates=False,
                        me_with_app_token_status=400, enforce_user_read=True,
                        batch_max_requests=20, batch_order_seed=None,
                        places_max_top=1000, places_next_link=True,
                        log_limit=20000, store_options=None, identity_options=None,
                        throttle_options=None, subscription_options=None)
    emulator(environ, start_response)          # WSGI
    emulator.scenario / .store / .identity / .throttle / .faults / .subscriptions
    emulator.base_url, .graph_url, .set_base_url(url), .tenant_id(key=None)
    emulator.reset()                           # back to the scenario as loaded
    emulator.request_log -> list[dict]; emulator.clear_log(); emulator.counters()
    # Outlook acting as people (docs/graph.md#meetings-booked-in-outlook:
    # organizer = the person,
    # the room a resource attendee, the room's processing options applied):
    emulator.book_room(person, room, subject, start, end, *, time_zone="UTC",
                       recurrence=None, sensitivity=None, body=None) -> event
    emulator.update_booking(room, event_id, *, subject=None, start=None, end=None,
                            time_zone="UTC", **fields) -> event     # move / shorten
    emulator.cancel_booking(room, event_id, comment=None)
    emulator.make_private(room, event_id, private=True) -> event
    emulator.change_occurrence(room, series_id, day, *, cancel=False, subject=None,
                               start=None, end=None, time_zone="UTC") -> event | None
    emulator.set_room_processing(room, add_organizer_to_subject=None,
                                 delete_subject=None, remove_private_property=None,
                                 delete_comments=None)
    # An Exchange admin changing the directory (places.py shows it):
    emulator.update_room(room, **attributes) -> Room   # capacity=12, hidden=True...
    emulator.remove_room(room) -> Room                 # the mailbox is deleted

URL space: ``/v1.0/...`` Graph (``graph.py``), ``/_emulator/...`` admin (``admin.py``),
everything the identity provider claims (``/{tenant}/oauth2/v2.0/...`` etc.).
``clock`` (a callable returning an aware ``datetime``) drives the store, identity and
subscriptions; throttling always uses the monotonic clock.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from .admin import AdminApi
from .calendar_store import CalendarStore
from .errors import GraphHttpError
from .faults import FaultInjector
from .graph import ODATA_JSON, GraphApi, GraphCall, GraphResult, error_payload
from .identity import IdentityProvider
from .outlook_page import PATH as OUTLOOK_PAGE
from .outlook_page import handle as outlook_page
from .scenario import Room, Scenario, load_scenario
from .subscriptions import SubscriptionManager
from .throttling import Throttle
from .timezones import to_zoneinfo

_logger = logging.getLogger(__name__)

DROP_KEY = "emulator.drop"
_SECRET_PARAMS = re.compile(
    r"(?i)(^|&)(\$skiptoken|\$deltatoken|code|access_token|refresh_token|client_secret|"
    r"client_assertion|validationtoken)=[^&]*"
)


class Emulator:
    """Entra ID + Graph emulator composed from the component modules."""

    drop_key = DROP_KEY

    def __init__(
        self,
        scenario: Scenario | str | dict[str, Any] | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        auto_consent: bool = False,
        latency: float | None = None,
        delegated_delta_nextlink_403: bool = False,
        delta_partial_updates: bool = False,
        me_with_app_token_status: int = 400,
        enforce_user_read: bool = True,
        batch_max_requests: int = 20,
        batch_order_seed: int | None = None,
        batch_max_parallel: int = 4,
        places_max_top: int = 1000,
        places_next_link: bool = True,
        log_limit: int = 20000,
        store_options: dict[str, Any] | None = None,
        identity_options: dict[str, Any] | None = None,
        throttle_options: dict[str, Any] | None = None,
        subscription_options: dict[str, Any] | None = None,
    ) -> None:
        self.scenario = (
            scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        )
        self._pristine = copy.deepcopy(self.scenario)
        self.clock = clock
        self.latency = latency
        self.delegated_delta_nextlink_403 = delegated_delta_nextlink_403
        self.me_with_app_token_status = me_with_app_token_status
        self.enforce_user_read = enforce_user_read
        self.batch_max_requests = batch_max_requests
        self.batch_order_seed = batch_order_seed
        self.batch_max_parallel = batch_max_parallel
        # Undocumented points of the Places API (places.py).
        self.places_max_top = places_max_top
        self.places_next_link = places_next_link
        self.base_url = "https://127.0.0.1"
        self.store = CalendarStore(clock=clock, **(store_options or {}))
        if delta_partial_updates:
            self.delta_partial_updates = True
        self.identity = IdentityProvider(
            self.scenario,
            clock=clock,
            auto_consent=auto_consent,
            **(identity_options or {}),
        )
        self._auto_consent = auto_consent
        self._throttle_options = dict(throttle_options or {})
        self.throttle = Throttle(**self._throttle_options)
        self.faults = FaultInjector()
        if latency:
            self.faults.set_latency(fixed=latency)
        self.subscriptions = SubscriptionManager(
            clock=clock, **(subscription_options or {})
        )
        self.graph = GraphApi(self)
        self.admin = AdminApi(self)
        self._lock = threading.Lock()
        self._log: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=log_limit
        )
        self._counters: dict[str, collections.Counter[str]] = self._new_counters()
        self.store.add_listener(self._on_store_change)
        self._populate()

    @property
    def graph_url(self) -> str:
        return self.base_url + "/v1.0"

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.identity.base_url = self.base_url

    def tenant_id(self, key: str | None = None) -> str:
        """GUID of the tenant ``key`` (id or domain); the first tenant when None."""
        if key is None:
            return self.scenario.tenants[0].id
        tenant = self.scenario.tenant(key)
        return tenant.id if tenant else key

    def start(self) -> None:
        self.subscriptions.start()

    def stop(self) -> None:
        self.subscriptions.stop()

    def _populate(self) -> None:
        for user in self.scenario.users:
            self.store.add_mailbox(user.upn, display_name=user.display_name)
        for room in self.scenario.rooms:
            self._add_room_mailbox(room)
        for event in self.scenario.events:
            self._seed_event(event)

    def _add_room_mailbox(self, room: Room) -> None:
        self.store.add_mailbox(room.email, display_name=room.display_name)
        self.store.set_processing_options(room.email, **room.processing)

    def _seed_event(self, event: dict[str, Any]) -> None:
        payload = {k: v for k, v in event.items() if k not in ("mailbox", "organizer")}
        target = self.scenario.mailbox(event["mailbox"])
        address = target.email if isinstance(target, Room) else target.upn
        organizer = None
        if event.get("organizer"):
            person = self.scenario.mailbox(event["organizer"])
            person_address = person.email if isinstance(person, Room) else person.upn
            if person_address.lower() != address.lower():
                organizer = {"name": person.display_name, "address": person_address}
                if isinstance(target, Room):
                    payload = {**self._room_fields(target), **payload}
        self.store.create_event(address, payload, organizer=organizer)

    def _on_store_change(
        self, address: str, change_type: str, event_id: str, change_key: str
    ) -> None:
        entry = self.scenario.mailbox(address)
        key = entry.id if entry is not None else address
        try:
            self.subscriptions.notify_change(key, change_type, event_id, change_key)
        except Exception:  # a listener must never break the store's caller
            _logger.exception("emulator: change notification failed")

    def reset(self) -> None:
        """Back to the scenario as loaded: events, tokens, faults, throttle, log."""
        fresh = copy.deepcopy(self._pristine)
        for item in dataclasses.fields(Scenario):
            setattr(self.scenario, item.name, getattr(fresh, item.name))
        self.identity.reset()
        self.identity.set_auto_consent(self._auto_consent)
        self.faults.clear()
        if self.latency:
            self.faults.set_latency(fixed=self.latency)
        self.throttle = Throttle(**self._throttle_options)
        self.subscriptions.reset()
        self.store.reset(keep_mailboxes=False)
        self._populate()
        self.clear_log()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        request = Request(environ)
        try:
            # Read the whole body now: keep-alive needs it drained whatever the handler.
            request.get_data(cache=True)
            response = self._dispatch(request)
        except Exception:
            _logger.exception(
                "emulator: unexpected error on %s %s", request.method, request.path
            )
            body = error_payload(
                "InternalServerError", "An internal server error occurred.", "", None
            )
            response = Response(json.dumps(body), status=500, content_type=ODATA_JSON)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/") == OUTLOOK_PAGE:
            return outlook_page(self, request)
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return self.admin.handle(request)
        if path == "/v1.0" or path.startswith("/v1.0/"):
            # Spent inside the mailbox's concurrency slot (graph.py).
            delay = self.faults.latency_for_request() if self.faults is not None else 0
            return self.graph.handle(request, latency=delay)
        if self.identity.handles(path):
            started = time.perf_counter()
            response = self.identity.dispatch(request)
            self._record_entry(
                {
                    "method": request.method,
                    "path": path,
                    "route": "identity",
                    "status": response.status_code,
                    "mailbox": None,
                    "client_id": request.form.get("client_id")
                    or request.args.get("client_id"),
                    "request_id": response.headers.get("x-ms-request-id"),
                    "client_request_id": request.headers.get("client-request-id"),
                    "batch": False,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
            return response
        body = {
            "error": {
                "code": "NotFound",
                "message": f"The emulator serves /v1.0, the identity endpoints and "
                f"/_emulator; not {path}.",
            }
        }
        return Response(json.dumps(body), status=404, content_type="application/json")

    @staticmethod
    def _new_counters() -> dict[str, collections.Counter[str]]:
        return {
            "by_route": collections.Counter(),
            "by_mailbox": collections.Counter(),
            "by_status": collections.Counter(),
            "by_route_status": collections.Counter(),
        }

    def record(self, call: GraphCall, result: GraphResult, duration: float) -> None:
        """Log one Graph request (or ``$batch`` item) and count it."""
        query = _SECRET_PARAMS.sub(r"\1\2=***", call.raw_query)
        entry = {
            "method": call.method,
            "path": "/v1.0" + call.path + (f"?{query}" if query else ""),
            "route": result.route,
            "status": result.status,
            "mailbox": result.mailbox,
            "client_id": result.client_id,
            "request_id": call.request_id,
            "client_request_id": call.client_request_id,
            "batch": call.in_batch,
            "duration_ms": round(duration * 1000, 3),
        }
        if result.drop is not None:
            entry["dropped"] = result.drop.get("kind")
        self._record_entry(entry)

    def _record_entry(self, entry: dict[str, Any]) -> None:
        entry["time"] = dt.datetime.now(dt.timezone.utc).isoformat()
        status = str(entry["status"]) if entry["status"] else "dropped"
        with self._lock:
            self._log.append(entry)
            counters = self._counters
            counters["by_route"][f"{entry['method']} {entry['route']}"] += 1
            counters["by_status"][status] += 1
            counters["by_route_status"][
                f"{entry['method']} {entry['route']} {status}"
            ] += 1
            if entry["mailbox"]:
                counters["by_mailbox"][entry["mailbox"].lower()] += 1

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Copies of logged requests (identity, Graph, batch items), oldest first."""
        with self._lock:
            return [dict(e) for e in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._counters = self._new_counters()

    def counters(self) -> dict[str, Any]:
        """Request counts by route template, mailbox and status, plus the highest
        concurrency seen per mailbox (over all clients) and the raw throttle stats."""
        stats = self.throttle.stats()
        peak: dict[str, int] = {}
        for key, values in stats.items():
            mailbox = key.split("|", 1)[1]
            peak[mailbox] = max(peak.get(mailbox, 0), values["max_concurrency"])
        with self._lock:
            result: dict[str, Any] = {
                name: dict(counter) for name, counter in self._counters.items()
            }
            result["total"] = sum(self._counters["by_status"].values())
        result["max_concurrency_by_mailbox"] = peak
        result["throttle"] = stats
        result["faults"] = self.faults.stats()
        return result

    def _room(self, room: str) -> Room:
        entry = self.scenario.room(room)
        if entry is None:
            raise ValueError(f"unknown room {room!r}")
        return entry

    @staticmethod
    def _room_fields(room: Room) -> dict[str, Any]:
        return {
            "attendees": [
                {
                    "type": "resource",
                    "status": {"response": "accepted", "time": _now_text()},
                    "emailAddress": {"name": room.display_name, "address": room.email},
                }
            ],
            "location": {
                "displayName": room.display_name,
                "locationType": "conferenceRoom",
                "uniqueId": room.email,
                "uniqueIdType": "directory",
                "locationUri": room.email,
            },
        }

    @staticmethod
    def _when(value: Any, time_zone: str) -> dict[str, str]:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(to_zoneinfo(time_zone)).replace(tzinfo=None)
            text = value.isoformat(timespec="seconds")
        elif isinstance(value, dt.date):
            text = value.isoformat() + "T00:00:00"
        else:
            text = str(value)
        return {"dateTime": text, "timeZone": time_zone}

    def book_room(
        self,
        person: str,
        room: str,
        subject: str,
        start: Any,
        end: Any,
        *,
        time_zone: str = "UTC",
        recurrence: dict[str, Any] | None = None,
        sensitivity: str | None = None,
        body: str | None = None,
        is_all_day: bool = False,
    ) -> dict[str, Any]:
        """A person books ``room`` from Outlook: the room calendar gets the meeting with
        the person as organizer and the room as accepted resource attendee."""
        who = self.scenario.user(person)
        if who is None:
            raise ValueError(f"unknown person {person!r}")
        target = self._room(room)
        payload: dict[str, Any] = {
            **self._room_fields(target),
            "subject": subject,
            "start": self._when(start, time_zone),
            "end": self._when(end, time_zone),
            "isAllDay": is_all_day,
            "showAs": "busy",
        }
        if recurrence is not None:
            payload["recurrence"] = recurrence
        if sensitivity is not None:
            payload["sensitivity"] = sensitivity
        if body is not None:
            payload["body"] = {"contentType": "html", "content": body}
        organizer = {"name": who.display_name, "address": who.upn}
        event, _created = self.store.create_event(
            target.email, payload, organizer=organizer
        )
        return event

    def update_booking(
        self,
        room: str,
        event_id: str,
        *,
        subject: str | None = None,
        start: Any = None,
        end: Any = None,
        time_zone: str = "UTC",
        **fields: Any,
    ) -> dict[str, Any]:
        """The organizer moves, shortens or renames the meeting from Outlook."""
        patch: dict[str, Any] = dict(fields)
        if subject is not None:
            patch["subject"] = subject
        if start is not None:
            patch["start"] = self._when(start, time_zone)
        if end is not None:
            patch["end"] = self._when(end, time_zone)
        return self.store.update_event(self._room(room).email, event_id, patch)

    def cancel_booking(
        self, room: str, event_id: str, comment: str | None = None
    ) -> None:
        """The organizer cancels: the room keeps the item with ``isCancelled``."""
        self.store.cancel_event(self._room(room).email, event_id, comment=comment)

    def make_private(
        self, room: str, event_id: str, private: bool = True
    ) -> dict[str, Any]:
        """The organizer marks the meeting private (or normal) in Outlook.

        A room with RemovePrivateProperty clears the flag on the copy it keeps.
        """
        target = self._room(room)
        sensitivity = "private" if private else "normal"
        if private and target.processing.get("remove_private_property"):
            sensitivity = "normal"
        return self.store.update_event(
            target.email, event_id, {"sensitivity": sensitivity}
        )

    def change_occurrence(
        self,
        room: str,
        series_id: str,
        day: dt.date | str,
        *,
        cancel: bool = False,
        subject: str | None = None,
        start: Any = None,
        end: Any = None,
        time_zone: str = "UTC",
    ) -> dict[str, Any] | None:
        """Change (or cancel) the occurrence of a series that starts on ``day``
        (a date in the series' start time zone). Returns the exception, or None."""
        target = self._room(room)
        wanted = day.isoformat() if isinstance(day, dt.date) else str(day)[:10]
        series = self.store.get_event(target.email, series_id)
        zone = series.get("originalStartTimeZone") or "UTC"
        first = dt.datetime.fromisoformat(wanted).replace(tzinfo=dt.timezone.utc)
        window = self.store.calendar_view(
            target.email,
            first - dt.timedelta(days=2),
            first + dt.timedelta(days=3),
            time_zone=zone,
        )
        for item in window:
            if item.get("seriesMasterId") == series_id and item["start"][
                "dateTime"
            ].startswith(wanted):
                if cancel:
                    self.store.delete_event(target.email, item["id"])
                    return None
                return self.update_booking(
                    room,
                    item["id"],
                    subject=subject,
                    start=start,
                    end=end,
                    time_zone=time_zone,
                )
        raise ValueError(f"series {series_id!r} has no occurrence on {wanted}")

    def set_room_processing(self, room: str, **flags: bool | None) -> dict[str, bool]:
        """Set-CalendarProcessing for a room; returns the room's flags afterwards."""
        target = self._room(room)
        self.store.set_processing_options(target.email, **flags)
        for key, value in flags.items():
            if value is not None:
                target.processing[key] = bool(value)
        return dict(target.processing)

    def add_room(self, email: str, display_name: str, **options: Any) -> Room:
        room = self.scenario.add_room(email, display_name, **options)
        self._add_room_mailbox(room)
        return room

    def update_room(self, room: str, **attributes: Any) -> Room:
        """An Exchange admin changes a room in the directory (Set-Place: capacity,
        building, floor, tags..., or Set-Mailbox: display_name, hidden from the
        address list)."""
        return self.scenario.update_room(room, **attributes)

    def remove_room(self, room: str) -> Room:
        """An Exchange admin deletes a room mailbox: it leaves the directory and
        Graph no longer finds it (404); its stored events are kept."""
        return self.scenario.remove_room(room)

    def add_user(
        self, upn: str, display_name: str, password: str, **options: Any
    ) -> Any:
        user = self.scenario.add_user(upn, display_name, password, **options)
        self.store.add_mailbox(user.upn, display_name=user.display_name)
        return user

    def state(self) -> dict[str, Any]:
        """A JSON-able summary of the scenario, switches and component statistics."""
        scenario = self.scenario
        return {
            "base_url": self.base_url,
            "graph_url": self.graph_url,
            "tenants": [dataclasses.asdict(t) for t in scenario.tenants],
            "users": [
                {
                    "id": u.id,
                    "upn": u.upn,
                    "display_name": u.display_name,
                    "tenant_id": u.tenant_id,
                }
                for u in scenario.users
            ],
            "rooms": [dataclasses.asdict(r) for r in scenario.rooms],
            "room_lists": [dataclasses.asdict(r) for r in scenario.room_lists],
            "shares": [dataclasses.asdict(s) for s in scenario.shares],
            "apps": [
                {
                    "client_id": a.client_id,
                    "tenant_id": a.tenant_id,
                    "display_name": a.display_name,
                    "delegated_scopes": sorted(a.delegated_scopes),
                    "app_roles": sorted(a.app_roles),
                    "rbac_scope": a.rbac_scope,
                    "certificates": [c.thumbprint for c in a.certificates],
                }
                for a in scenario.apps
            ],
            "switches": self.switches(),
            "throttle": self.throttle.stats(),
            "faults": self.faults.stats(),
            "subscriptions": self.subscriptions.list(),
        }

    SWITCHES = (
        "delegated_delta_nextlink_403",
        "delta_partial_updates",
        "me_with_app_token_status",
        "enforce_user_read",
        "batch_max_requests",
        "batch_order_seed",
        "batch_max_parallel",
        "places_max_top",
        "places_next_link",
    )

    @property
    def delta_partial_updates(self) -> bool:
        """Switch: delta sends updated items as partial objects (CalendarStore)."""
        return self.store.delta_partial_updates

    @delta_partial_updates.setter
    def delta_partial_updates(self, value: bool) -> None:
        self.store.delta_partial_updates = bool(value)

    def switches(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SWITCHES}

    def set_switches(self, **values: Any) -> dict[str, Any]:
        unknown = set(values) - set(self.SWITCHES)
        if unknown:
            raise ValueError(f"unknown switch(es): {sorted(unknown)}")
        for name, value in values.items():
            setattr(self, name, value)
        return self.switches()

    @property
    def transaction_id_duplicate_status(self) -> int:
        return self.store.transaction_id_duplicate_status


def _now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


__all__ = ["DROP_KEY", "Emulator", "GraphHttpError"]
