"""Change-notification subscriptions for the Graph emulator.

Facts: docs/graph.md#change-notifications.

Public API::

    manager = SubscriptionManager(clock=None, session_factory=requests.Session,
                                  max_expiration_minutes=10080,
                                  min_expiration_minutes=45, allow_http_urls=True,
                                  validation_timeout=10.0, verify=True,
                                  delivery_timeout=3.0, retry_delays=(0.2, 1.0, 3.0),
                                  max_notifications_per_post=20,
                                  allow_calendar_resources=False,
                                  require_text_plain=True)
    sub = manager.create(body=..., tenant_id=..., client_id=..., delegated_upn=None,
                         mailbox_of_resource=lambda user: "<mailbox key>" or None)
    manager.get(sub_id); manager.list(client_id=None)
    manager.update(sub_id, {"expirationDateTime": ...}); manager.delete(sub_id)
    manager.reauthorize(sub_id)
    manager.notify_change(mailbox, "created" | "updated" | "deleted", event_id, etag)
    manager.send_lifecycle(sub_id, "reauthorizationRequired" | "subscriptionRemoved"
                                   | "missed")
    manager.flush(timeout=5.0)  # TimeoutError if deliveries are still queued
    manager.deliveries()  # [{"url", "status", "elapsed", "count", "kind", ...}]
    manager.start(); manager.stop(); manager.reset()

All errors are ``GraphHttpError``; the router maps ``create`` to ``201``, ``get``,
``list`` and ``update`` to ``200``, ``delete`` and ``reauthorize`` to ``204``.

Mailbox keys. ``mailbox_of_resource(user)`` receives the ``{id|upn}`` segment of the
resource (or ``delegated_upn`` for ``/me``) and returns the mailbox key, or None for
an unknown user (=> 404). The key is used verbatim (case-insensitively) to match
``notify_change(mailbox, ...)`` and to build the notification ``resource``
("Users/{key}/Events/{event_id}"), so the store should return and pass the user's
object id (GUID), which is what Graph puts there even when the subscription used a UPN.

Deliberate differences from Microsoft Graph:

- ``allow_http_urls=True`` accepts ``http://`` notification URLs (Graph requires HTTPS
  and a public endpoint) so tests can use a plain loopback receiver.
- Delivery retries are few and fast (``retry_delays``, default 0.2 s, 1 s, 3 s after the
  first attempt), where Graph retries "multiple times, for up to 4 hours". A delivery
  attempt fails on a non-2xx answer, a connection error, or no answer within
  ``delivery_timeout`` (Graph's 3 seconds). Every attempt is logged; after the last
  failed attempt the notifications are dropped (log entry ``"dropped": True``).
- Lifecycle events are sent only on demand (``send_lifecycle``), and only when the
  subscription has a ``lifecycleNotificationUrl`` (otherwise Graph has nowhere to send
  them; ``subscriptionRemoved`` still removes the subscription).
- ``includeResourceData: true`` (encrypted rich notifications) is refused with 400.
- Expired subscriptions are gone: ``get``/``update``/``delete`` answer 404 and no
  notifications are sent for them.

UNCONFIRMED (docs/graph.md#change-notifications): the maximum lifetime (10,080 vs 4,230
minutes; set ``max_expiration_minutes``), ``/users/{id}/calendars/{id}/events``
resources (``allow_calendar_resources``), the ``Events``/``Event`` casing in
notifications, and the error texts other than the ones quoted from Graph below.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .errors import GraphHttpError

Clock = Callable[[], dt.datetime]

CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
MAX_CLIENT_STATE = 128

# Quoted from Graph (docs/graph.md#change-notifications and Graph's own answers).
DELEGATED_FORBIDDEN = (
    "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]"
)
VALIDATION_FAILED = "Subscription validation request failed."
VALIDATION_NOT_200 = (
    "Subscription validation request failed. Notification endpoint must respond "
    "with 200 OK to validation request."
)
VALIDATION_WRONG_ECHO = (
    "Subscription validation request failed. Response must exactly match "
    "validationToken query parameter."
)
VALIDATION_TIMEOUT = (
    "Subscription validation request failed. The notification endpoint did not "
    "respond within {seconds:g} seconds."
)
VALIDATION_CONTENT_TYPE = (
    "Subscription validation request failed. Must respond with "
    "Content-Type: text/plain."
)
TOO_LONG = "Subscription expiration can only be {minutes} minutes in the future."
ME_APP_ONLY = "/me request is only valid with delegated authentication flow."

_USER_EVENTS = re.compile(r"^/?users/([^/]+)/events/?$", re.IGNORECASE)
_ME_EVENTS = re.compile(r"^/?me/events/?$", re.IGNORECASE)
_CALENDAR_EVENTS = re.compile(
    r"^/?(?:users/([^/]+)|(me))/(?:calendar|calendars/[^/]+)/events/?$", re.IGNORECASE
)
_FRACTION = re.compile(r"(\.\d+)")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_datetime(value: dt.datetime) -> str:
    """Graph's timestamp form: UTC, seven fractional digits, ``Z``."""
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse_datetime(text: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; no offset means UTC. Raises ValueError."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Graph writes seven fractional digits; datetime accepts at most six.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _bad(message: str, code: str = "InvalidRequest") -> GraphHttpError:
    return GraphHttpError(400, code, message)


def _not_found(sub_id: str) -> GraphHttpError:
    return GraphHttpError(
        404,
        "ResourceNotFound",
        f"The object '{sub_id}' was not found.",
    )


class SubscriptionManager:
    """Subscriptions, validation handshakes and webhook delivery (thread-safe)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        max_expiration_minutes: int = 10080,
        min_expiration_minutes: int = 45,
        allow_http_urls: bool = True,
        validation_timeout: float = 10.0,
        verify: bool | str = True,
        delivery_timeout: float = 3.0,
        retry_delays: Iterable[float] = (0.2, 1.0, 3.0),
        max_notifications_per_post: int = 20,
        allow_calendar_resources: bool = False,
        require_text_plain: bool = True,
    ) -> None:
        self.clock: Clock = clock or _utcnow
        self.session_factory = session_factory
        self.max_expiration_minutes = max_expiration_minutes
        self.min_expiration_minutes = min_expiration_minutes
        self.allow_http_urls = allow_http_urls
        self.validation_timeout = validation_timeout
        self.verify = verify
        self.delivery_timeout = delivery_timeout
        self.retry_delays = tuple(retry_delays)
        self.max_notifications_per_post = max_notifications_per_post
        self.allow_calendar_resources = allow_calendar_resources
        self.require_text_plain = require_text_plain

        self._lock = threading.RLock()
        self._subs: dict[str, dict[str, Any]] = {}
        self._log: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._busy = 0
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._stopping = False

    def create(
        self,
        *,
        body: dict[str, Any],
        tenant_id: str,
        client_id: str,
        delegated_upn: str | None,
        mailbox_of_resource: Callable[[str], str | None],
    ) -> dict[str, Any]:
        """Validate, run the handshake(s), store and return the subscription JSON."""
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.", "BadRequest")
        change_types = self._change_types(body.get("changeType"))
        notification_url = self._url(body.get("notificationUrl"), "notificationUrl")
        lifecycle_url = body.get("lifecycleNotificationUrl")
        if lifecycle_url is not None:
            lifecycle_url = self._url(lifecycle_url, "lifecycleNotificationUrl")
        resource, mailbox = self._resource(
            body.get("resource"), delegated_upn, mailbox_of_resource
        )
        expiration = self._expiration(body.get("expirationDateTime"))
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > MAX_CLIENT_STATE
        ):
            raise _bad(
                f"clientState must be a string of at most {MAX_CLIENT_STATE} "
                "characters."
            )
        tls = body.get("latestSupportedTlsVersion") or "v1_2"
        if tls not in TLS_VERSIONS:
            raise _bad(f"Invalid latestSupportedTlsVersion '{tls}'.")
        if body.get("includeResourceData"):
            raise _bad("includeResourceData is not supported by the emulator.")

        self._handshake(notification_url)
        if lifecycle_url is not None:
            self._handshake(lifecycle_url)

        creator = mailbox_of_resource(delegated_upn) if delegated_upn else None
        sub = {
            "id": str(uuid.uuid4()),
            "resource": resource,
            "applicationId": client_id,
            "changeType": ",".join(change_types),
            "clientState": client_state,
            "notificationUrl": notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": lifecycle_url,
            "expirationDateTime": format_datetime(expiration),
            "creatorId": creator or client_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": tls,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }
        with self._lock:
            self._subs[sub["id"]] = {
                "json": sub,
                "expires": expiration,
                "mailbox": mailbox.lower(),
                "mailbox_key": mailbox,
                "change_types": set(change_types),
                "tenant_id": tenant_id,
                "reauthorization_required": False,
            }
        return dict(sub)

    def get(self, sub_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._live(sub_id)["json"])

    def list(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Live subscriptions, those of ``client_id`` only when given (Graph lists
        the calling app's subscriptions)."""
        now = self.clock()
        with self._lock:
            return [
                dict(rec["json"])
                for rec in self._subs.values()
                if rec["expires"] > now
                and (client_id is None or rec["json"]["applicationId"] == client_id)
            ]

    def update(self, sub_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Renew (``expirationDateTime``) or move (``notificationUrl``, validated
        again). ``lifecycleNotificationUrl`` cannot be added or changed by PATCH."""
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.", "BadRequest")
        with self._lock:
            current = dict(self._live(sub_id)["json"])
        if "lifecycleNotificationUrl" in body and (
            body["lifecycleNotificationUrl"] != current["lifecycleNotificationUrl"]
        ):
            # Microsoft: to add a lifecycle URL, delete and recreate the subscription.
            raise _bad(
                "lifecycleNotificationUrl cannot be added or changed by updating a "
                "subscription; delete and recreate it."
            )
        allowed = {"expirationDateTime", "notificationUrl", "lifecycleNotificationUrl"}
        extra = sorted(
            k for k in body if k not in allowed and body[k] != current.get(k)
        )
        if extra:
            raise _bad(f"Property {extra[0]} cannot be updated on a subscription.")
        expiration = None
        if "expirationDateTime" in body:
            expiration = self._expiration(body["expirationDateTime"])
        new_url = None
        if (
            body.get("notificationUrl", current["notificationUrl"])
            != current["notificationUrl"]
        ):
            new_url = self._url(body["notificationUrl"], "notificationUrl")
            self._handshake(new_url)
        with self._lock:
            rec = self._live(sub_id)
            if expiration is not None:
                rec["expires"] = expiration
                rec["json"]["expirationDateTime"] = format_datetime(expiration)
                rec["reauthorization_required"] = False
            if new_url is not None:
                rec["json"]["notificationUrl"] = new_url
            return dict(rec["json"])

    def delete(self, sub_id: str) -> None:
        with self._lock:
            self._live(sub_id)
            del self._subs[sub_id]

    def reauthorize(self, sub_id: str) -> None:
        """Answer a ``reauthorizationRequired`` event without extending the lifetime."""
        with self._lock:
            self._live(sub_id)["reauthorization_required"] = False

    def reauthorization_required(self, sub_id: str) -> bool:
        with self._lock:
            return self._live(sub_id)["reauthorization_required"]

    def notify_change(
        self, mailbox: str, change_type: str, event_id: str, etag: str | None = None
    ) -> None:
        """Queue a change notification for each live subscription covering
        ``mailbox`` (case-insensitive key, see module docstring) and ``change_type``."""
        if change_type not in CHANGE_TYPES:
            raise ValueError(f"unknown change type {change_type!r}")
        if etag is not None and not etag.startswith('W/"'):
            etag = f'W/"{etag}"'
        now = self.clock()
        with self._lock:
            for sub_id, rec in self._subs.items():
                if rec["expires"] <= now or rec["mailbox"] != mailbox.lower():
                    continue
                if change_type not in rec["change_types"]:
                    continue
                # Graph names the user by its key and the entity set in Pascal case
                # (documented for messages; the Events casing is UNCONFIRMED).
                resource = f"Users/{rec['mailbox_key']}/Events/{event_id}"
                resource_data: dict[str, Any] = {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "id": event_id,
                }
                if etag is not None:
                    resource_data["@odata.etag"] = etag
                notification = {
                    "id": secrets.token_urlsafe(9),
                    "subscriptionId": sub_id,
                    "subscriptionExpirationDateTime": rec["json"]["expirationDateTime"],
                    "clientState": rec["json"]["clientState"],
                    "changeType": change_type,
                    "resource": resource,
                    "tenantId": rec["tenant_id"],
                    "resourceData": resource_data,
                }
                self._enqueue(rec["json"]["notificationUrl"], "change", notification)

    def send_lifecycle(self, sub_id: str, event: str) -> None:
        """Queue a lifecycle notification; ``subscriptionRemoved`` also deletes the
        subscription (Outlook has removed it; the app must recreate it)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}")
        with self._lock:
            rec = self._live(sub_id)
            notification = {
                "subscriptionId": sub_id,
                "subscriptionExpirationDateTime": rec["json"]["expirationDateTime"],
                "tenantId": rec["tenant_id"],
                "clientState": rec["json"]["clientState"],
                "lifecycleEvent": event,
            }
            url = rec["json"]["lifecycleNotificationUrl"]
            if event == "reauthorizationRequired":
                rec["reauthorization_required"] = True
            if event == "subscriptionRemoved":
                del self._subs[sub_id]
            if url is not None:
                self._enqueue(url, "lifecycle", notification)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued notification is delivered or dropped.

        Raises ``TimeoutError`` if the queue is not empty after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("notification deliveries still pending")
                self._wake.wait(min(left, 0.05))

    def deliveries(self) -> list[dict[str, Any]]:
        """Log of validation requests and delivery attempts, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def start(self) -> None:
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._stopping = False
            self._worker = threading.Thread(
                target=self._run, name="graph-notifications", daemon=True
            )
            self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the delivery thread after its current POST; queued items stay."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        with self._lock:
            self._worker = None

    def reset(self) -> None:
        """Forget subscriptions, queued notifications and the delivery log."""
        with self._wake:
            self._subs.clear()
            self._pending.clear()
            self._log.clear()
            self._wake.notify_all()

    def _live(self, sub_id: str) -> dict[str, Any]:
        rec = self._subs.get(sub_id)
        if rec is None or rec["expires"] <= self.clock():
            raise _not_found(sub_id)
        return rec

    def _change_types(self, value: Any) -> list[str]:
        if not isinstance(value, str) or not value.strip():
            raise _bad("changeType is required.")
        parts = [p.strip() for p in value.split(",")]
        for part in parts:
            if part not in CHANGE_TYPES:
                raise _bad(f"Invalid 'changeType' attribute: '{part}'.")
        return [c for c in CHANGE_TYPES if c in parts]

    def _url(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise _bad(f"{name} is required.")
        parts = urlsplit(value)
        schemes = ("https", "http") if self.allow_http_urls else ("https",)
        if parts.scheme.lower() not in schemes or not parts.netloc:
            raise _bad(f"The {name} must be an absolute URL using the HTTPS protocol.")
        return value

    def _resource(
        self,
        value: Any,
        delegated_upn: str | None,
        mailbox_of_resource: Callable[[str], str | None],
    ) -> tuple[str, str]:
        if not isinstance(value, str):
            raise _bad("resource is required.")
        user: str | None = None
        is_me = False
        match = _USER_EVENTS.match(value)
        if match:
            user = match.group(1)
        elif _ME_EVENTS.match(value):
            is_me = True
        else:
            match = _CALENDAR_EVENTS.match(value)
            if not (match and self.allow_calendar_resources):
                raise _bad(f"Resource '{value}' is not supported.", "ExtensionError")
            user, is_me = match.group(1), bool(match.group(2))
        if is_me:
            if delegated_upn is None:
                raise _bad(ME_APP_ONLY, "BadRequest")
            user = delegated_upn
        mailbox = mailbox_of_resource(user)
        if mailbox is None:
            raise GraphHttpError(
                404,
                "ResourceNotFound",
                f"Resource '{user}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        if delegated_upn is not None and not is_me:
            own = mailbox_of_resource(delegated_upn)
            # Delegated subscriptions only cover the signed-in user's own mailbox;
            # *.Shared permissions do not extend to change notifications
            # (docs/graph.md#change-notifications).
            if own is None or own.lower() != mailbox.lower():
                raise GraphHttpError(403, "ExtensionError", DELEGATED_FORBIDDEN)
        return value, mailbox

    def _expiration(self, value: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise _bad("expirationDateTime is required.")
        try:
            expiration = parse_datetime(value)
        except ValueError as exc:
            raise _bad(f"Invalid expirationDateTime '{value}'.") from exc
        now = self.clock()
        if expiration <= now:
            raise _bad("Subscription expiration must be in the future.")
        if expiration > now + dt.timedelta(minutes=self.max_expiration_minutes):
            raise _bad(TOO_LONG.format(minutes=self.max_expiration_minutes))
        floor = now + dt.timedelta(minutes=self.min_expiration_minutes)
        # Graph silently raises lifetimes shorter than the minimum to the minimum.
        return max(expiration, floor)

    def _session(self) -> requests.Session:
        session = self.session_factory()
        if self.session_factory is requests.Session:
            # The receivers are local: no proxies, and REQUESTS_CA_BUNDLE must not
            # override the configured ``verify`` (it would with trust_env on).
            session.trust_env = False
        return session

    def _handshake(self, url: str) -> None:
        # Graph's tokens are free text ("Validation: Testing client application
        # reachability for subscription Request-Id: ..."): the receiver must
        # URL-decode it and echo it exactly.
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()} &nonce={secrets.token_urlsafe(12)}+/="
        )
        separator = "&" if urlsplit(url).query else "?"
        target = f"{url}{separator}validationToken={quote(token, safe='')}"
        started = time.monotonic()
        entry: dict[str, Any] = {
            "url": url,
            "kind": "validation",
            "count": 0,
            "status": None,
            "error": None,
        }
        message: str | None = None
        try:
            with self._session() as session:
                response = session.post(
                    target,
                    data=b"",
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                    timeout=self.validation_timeout,
                    verify=self.verify,
                )
            entry["status"] = response.status_code
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200:
                message = VALIDATION_NOT_200
            elif self.require_text_plain and not content_type.lower().startswith(
                "text/plain"
            ):
                message = VALIDATION_CONTENT_TYPE
            elif response.text != token:
                message = VALIDATION_WRONG_ECHO
        except requests.Timeout:
            message = VALIDATION_TIMEOUT.format(seconds=self.validation_timeout)
        except requests.RequestException as exc:
            message = f"{VALIDATION_FAILED} {type(exc).__name__}."
        entry["elapsed"] = time.monotonic() - started
        entry["error"] = message
        with self._lock:
            self._log.append(entry)
        if message is not None:
            raise _bad(message)

    def _enqueue(self, url: str, kind: str, notification: dict[str, Any]) -> None:
        with self._wake:
            self._pending.append({"url": url, "kind": kind, "item": notification})
            self._wake.notify_all()
        self.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                url, kind = self._pending[0]["url"], self._pending[0]["kind"]
                group = [
                    p for p in self._pending if p["url"] == url and p["kind"] == kind
                ][: self.max_notifications_per_post]
                for entry in group:
                    self._pending.remove(entry)
                self._busy += 1
            try:
                self._deliver(url, kind, [entry["item"] for entry in group])
            finally:
                with self._wake:
                    self._busy -= 1
                    self._wake.notify_all()

    def _deliver(self, url: str, kind: str, items: list[dict[str, Any]]) -> None:
        delays = (0.0, *self.retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                time.sleep(delay)
            started = time.monotonic()
            entry: dict[str, Any] = {
                "url": url,
                "kind": kind,
                "count": len(items),
                "attempt": attempt,
                "status": None,
                "error": None,
                "subscription_ids": sorted({i["subscriptionId"] for i in items}),
                "dropped": False,
            }
            try:
                with self._session() as session:
                    response = session.post(
                        url,
                        json={"value": items},
                        timeout=self.delivery_timeout,
                        verify=self.verify,
                    )
                entry["status"] = response.status_code
                ok = 200 <= response.status_code < 300
                if not ok:
                    entry["error"] = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                ok = False
                entry["error"] = type(exc).__name__
            entry["elapsed"] = time.monotonic() - started
            entry["dropped"] = not ok and attempt == len(delays)
            with self._lock:
                self._log.append(entry)
            if ok or self._stopping:
                return
