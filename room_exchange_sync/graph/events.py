"""Odoo bookings as Graph event JSON, and Graph event JSON as plain imported values.

Pure: stdlib only. Times on the Odoo side are naive UTC ``datetime`` values at second
precision.

Public API:

- ``MARKER_PROPERTY_ID``: the id of the single-value extended property holding our
  marker (docs/graph.md#the-marker-extended-property);
- ``PRIVACY_MODES`` (``"full"``, ``"subject"``, ``"busy"``), ``TIME_ZONE_NAMES``
  (``"windows"``, ``"iana"``), ``BUSY_SUBJECT``, ``MAX_SUBJECT_LENGTH``;
- ``BookingSnapshot``: the booking values an export needs;
- ``booking_payload(snapshot, *, room_time_zone, privacy="full",
  include_organizer_email=False, time_zone_names="windows", marker=None) -> dict``:
  the event JSON for POST/PATCH, without ``transactionId``;
- ``ImportedEvent``: one Graph event (or ``@removed`` row) as plain values;
- ``parse_event(event, *, room_time_zone, private_subject="Private meeting",
  empty_subject="(no subject)") -> ImportedEvent``;
- ``EventDataError(field, reason)``: malformed event data from Graph;
- ``FULL_EVENT_PROPERTIES``, ``is_partial_event(event) -> bool``: a delta item that
  carries only some of an event's properties.

Whether an event is one of ours (marker or ``transactionId``) is the engine's business
(``engine.parse_marker`` / ``engine.parse_transaction_id``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .timezones import to_zoneinfo, windows_zone

MARKER_PROPERTY_ID = (
    "String {2569efa3-d4f3-4549-b38d-88e1c73dccb4} Name RoomExchangeSyncMarker"
)
# Properties a full event object always has (Graph returns them without $select):
# delta semantics allow an updated item to carry only its id and the properties that
# changed (UNCONFIRMED for calendarView delta, docs/graph.md#partial-delta-items), and
# reading a missing subject or sensitivity as empty would rename or unhide a meeting.
FULL_EVENT_PROPERTIES = (
    "subject",
    "start",
    "end",
    "isAllDay",
    "isCancelled",
    "sensitivity",
    "type",
)
PRIVACY_MODES = ("full", "subject", "busy")
TIME_ZONE_NAMES = ("windows", "iana")
BUSY_SUBJECT = "Busy"
# Exchange stores at most 255 characters of a subject.
MAX_SUBJECT_LENGTH = 255
EVENT_TYPES = ("singleInstance", "occurrence", "exception", "seriesMaster")

_MIN_YEAR = 1970
_MAX_YEAR = 2200
_UTC = timezone.utc
# Graph writes "2019-03-15T12:00:00.0000000" (seven fractional digits, no offset); an
# offset or "Z" is tolerated.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)
_PROPERTY_ID = re.compile(r"(\S+) \{([0-9A-Fa-f-]{36})\} Name (.+)")
# What PostgreSQL cannot store in a text column: NUL, and lone surrogates (JSON may
# escape them, UTF-8 cannot encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class BookingSnapshot:
    """The values of one Odoo booking that its Graph event shows.

    ``start`` and ``stop`` are naive UTC (as Odoo stores them).
    """

    booking_id: int
    start: datetime
    stop: datetime
    subject: str
    description_html: str = ""
    location: str = ""
    organizer_name: str = ""
    organizer_email: str = ""
    is_private: bool = False


@dataclass(frozen=True, slots=True)
class ImportedEvent:
    """One Graph event as plain values; ``start``/``stop`` are naive UTC, seconds.

    An ``@removed`` row has ``removed=True``, its ``event_id``, ``start``/``stop``
    None and every other field empty. ``body_html`` is Graph's raw HTML: sanitize it
    before display.
    """

    event_id: str
    change_key: str = ""
    ical_uid: str = ""
    series_master_id: str = ""
    event_type: str = ""
    start: datetime | None = None
    stop: datetime | None = None
    is_all_day: bool = False
    subject: str = ""
    organizer_name: str = ""
    organizer_email: str = ""
    is_private: bool = False
    is_cancelled: bool = False
    show_as: str = ""
    transaction_id: str = ""
    marker: str = ""
    body_preview: str = ""
    body_html: str = ""
    removed: bool = False


class EventDataError(ValueError):
    """Graph sent event data this module cannot trust.

    ``field`` names the offending property (``"start"``, ``"subject"``, ...), ``reason``
    says what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event {field}: {reason}")
        self.field = field
        self.reason = reason


# --- export ------------------------------------------------------------------------


def booking_payload(
    snapshot: BookingSnapshot,
    *,
    room_time_zone: str,
    privacy: str = "full",
    include_organizer_email: bool = False,
    time_zone_names: str = "windows",
    marker: str | None = None,
) -> dict[str, Any]:
    """Return the Graph event JSON (POST or PATCH body) for ``snapshot``.

    ``start``/``end`` carry the wall-clock time of ``room_time_zone`` (an IANA name),
    labelled with its Windows name (``time_zone_names="windows"``) or its IANA name
    (``"iana"``). A time inside the hour a DST change repeats is sent in UTC instead,
    as a wall-clock time alone cannot say which of the two it is. ``privacy``:
    ``"full"`` sends subject and description plus "Booked in Odoo by <organizer>",
    ``"subject"`` the subject only, ``"busy"`` neither (the subject is
    ``BUSY_SUBJECT``).
    The result is a pure function of the arguments; ``transactionId`` is not included
    (``protocol.create_event_request`` adds it). ``marker`` is, as part of what the
    shell hashes; what is sent is the marker given to the request builders, which
    replaces it.

    Raises:
        ValueError: unknown ``privacy``/``time_zone_names``, unknown time zone, or a
            booking that ends before it starts.
    """
    if privacy not in PRIVACY_MODES:
        raise ValueError(f"privacy must be one of {PRIVACY_MODES}, not {privacy!r}")
    if time_zone_names not in TIME_ZONE_NAMES:
        raise ValueError(
            f"time_zone_names must be one of {TIME_ZONE_NAMES}, not {time_zone_names!r}"
        )
    zone = to_zoneinfo(room_time_zone)
    zone_name = (
        windows_zone(room_time_zone) if time_zone_names == "windows" else zone.key
    )
    start = _naive_utc(snapshot.start, "start")
    stop = _naive_utc(snapshot.stop, "stop")
    if stop < start:
        raise ValueError(f"booking {snapshot.booking_id} ends before it starts")

    if privacy == "busy":
        subject = BUSY_SUBJECT
    else:
        subject = (snapshot.subject or "")[:MAX_SUBJECT_LENGTH]
    content = _body_html(snapshot, include_organizer_email) if privacy == "full" else ""

    payload: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "html", "content": content},
        "start": _graph_time(start, zone, zone_name),
        "end": _graph_time(stop, zone, zone_name),
        "isAllDay": False,
        "sensitivity": "private" if snapshot.is_private else "normal",
        "showAs": "busy",
        "isReminderOn": False,
        "responseRequested": False,
        "allowNewTimeProposals": False,
        # No attendees: Exchange then sends no invitation to anybody.
        "attendees": [],
    }
    if snapshot.location:
        payload["location"] = {"displayName": snapshot.location}
    if marker:
        payload["singleValueExtendedProperties"] = [
            {"id": MARKER_PROPERTY_ID, "value": marker}
        ]
    return payload


def _naive_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _graph_time(value: datetime, zone: ZoneInfo, zone_name: str) -> dict[str, str]:
    local = value.replace(tzinfo=_UTC).astimezone(zone)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        local, zone_name = value, "UTC"
    return {"dateTime": _format(local), "timeZone": zone_name}


def _format(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S") + ".0000000"


def _body_html(snapshot: BookingSnapshot, include_email: bool) -> str:
    parts = [snapshot.description_html] if snapshot.description_html else []
    name = snapshot.organizer_name.strip()
    email = snapshot.organizer_email.strip() if include_email else ""
    if name and email:
        who = f"{name} ({email})"
    else:
        who = name or email
    if who:
        parts.append(f"<p>Booked in Odoo by {html.escape(who)}</p>")
    return "\n".join(parts)


# --- import ------------------------------------------------------------------------


def is_partial_event(event: Any) -> bool:
    """True for a delta item that is not a removal and lacks a property every full
    event has."""
    return (
        isinstance(event, dict)
        and "@removed" not in event
        and any(name not in event for name in FULL_EVENT_PROPERTIES)
    )


def parse_event(
    event: dict[str, Any],
    *,
    room_time_zone: str,
    private_subject: str = "Private meeting",
    empty_subject: str = "(no subject)",
) -> ImportedEvent:
    """Return the values of one Graph event (from delta, calendarView or GET).

    ``start``/``end`` are read in the zone they name (Windows or IANA; Graph answers in
    UTC when asked with ``Prefer: outlook.timezone="UTC"``) and returned as naive UTC
    at second precision. An all-day event covers its dates from midnight to midnight in
    ``room_time_zone``. A private or confidential event gets ``private_subject``, an
    empty subject ``empty_subject``; subjects are cut to ``MAX_SUBJECT_LENGTH``.

    Raises:
        EventDataError: a field is missing, of the wrong type or out of range.
        ValueError: ``room_time_zone`` is unknown.
    """
    room_zone = to_zoneinfo(room_time_zone)
    if not isinstance(event, dict):
        raise EventDataError("event", f"expected an object, got {type(event).__name__}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EventDataError("id", "missing or not a string")
    if _UNSTORABLE.search(event_id):
        raise EventDataError("id", "holds characters a database cannot store")
    if "@removed" in event:
        return ImportedEvent(event_id=event_id, removed=True)

    is_all_day = _bool(event, "isAllDay")
    if is_all_day:
        start, stop = _all_day_span(event, room_zone)
    else:
        start = _utc_time(event, "start")
        stop = _utc_time(event, "end")
    if stop < start:
        raise EventDataError("end", "before start")

    sensitivity = _str(event, "sensitivity").lower()
    is_private = sensitivity in ("private", "confidential")
    subject = _str(event, "subject")
    if is_private:
        subject = private_subject
    elif not subject.strip():
        subject = empty_subject
    organizer = _object(_object(event, "organizer"), "emailAddress", "organizer")
    body = _object(event, "body")

    return ImportedEvent(
        event_id=event_id,
        change_key=_str(event, "changeKey") or _etag_change_key(event),
        ical_uid=_str(event, "iCalUId"),
        series_master_id=_str(event, "seriesMasterId"),
        event_type=_str(event, "type") or "singleInstance",
        start=start,
        stop=stop,
        is_all_day=is_all_day,
        subject=subject[:MAX_SUBJECT_LENGTH],
        organizer_name=_str(organizer, "name", "organizer"),
        organizer_email=_str(organizer, "address", "organizer"),
        is_private=is_private,
        is_cancelled=_bool(event, "isCancelled"),
        show_as=_str(event, "showAs"),
        transaction_id=_str(event, "transactionId"),
        marker=_marker(event),
        body_preview=_str(event, "bodyPreview"),
        body_html=_str(body, "content", "body"),
    )


def _str(data: dict[str, Any], key: str, field: str | None = None) -> str:
    """A string of the event, without what a database cannot store."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EventDataError(field or key, f"{key} is not a string")
    return _UNSTORABLE.sub("", value)


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise EventDataError(key, "not a boolean")
    return value


def _object(data: dict[str, Any], key: str, field: str | None = None) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventDataError(field or key, f"{key} is not an object")
    return value


def _etag_change_key(event: dict[str, Any]) -> str:
    # "@odata.etag" is W/"<changeKey>" (docs/graph.md#change-keys-and-if-match).
    etag = event.get("@odata.etag")
    if isinstance(etag, str) and etag.startswith('W/"') and etag.endswith('"'):
        return etag[3:-1]
    return ""


def _local_time(event: dict[str, Any], key: str) -> tuple[datetime, ZoneInfo | None]:
    """The naive wall-clock value of ``start``/``end`` and the zone it is read in.

    The zone is None when the value carries its own offset (then it is UTC already).
    """
    value = event.get(key)
    if not isinstance(value, dict):
        raise EventDataError(key, "missing or not an object")
    text = value.get("dateTime")
    if not isinstance(text, str):
        raise EventDataError(key, "dateTime missing or not a string")
    match = _DATE_TIME.fullmatch(text.strip())
    if not match:
        raise EventDataError(key, f"unreadable dateTime {text!r}")
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    if not _MIN_YEAR <= int(year) < _MAX_YEAR:
        raise EventDataError(key, f"{text!r} is out of range")
    try:
        # The fraction is dropped: Odoo keeps seconds.
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
        )
    except ValueError as error:
        raise EventDataError(key, f"invalid dateTime {text!r}: {error}") from None
    if offset:
        tz = _UTC if offset == "Z" else _offset_zone(offset, key)
        return parsed.replace(tzinfo=tz).astimezone(_UTC).replace(tzinfo=None), None
    zone_name = value.get("timeZone")
    if zone_name is None:
        # Graph's default is UTC (docs/graph.md#times-and-time-zones).
        return parsed, None
    if not isinstance(zone_name, str):
        raise EventDataError(key, "timeZone is not a string")
    try:
        zone = to_zoneinfo(zone_name)
    except ValueError:
        raise EventDataError(key, f"unknown time zone {zone_name!r}") from None
    return parsed, zone


def _offset_zone(offset: str, key: str) -> timezone:
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:
        raise EventDataError(key, f"invalid offset {offset!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if offset[0] == "-" else delta)


def _utc_time(event: dict[str, Any], key: str) -> datetime:
    local, zone = _local_time(event, key)
    if zone is not None:
        local = local.replace(tzinfo=zone).astimezone(_UTC).replace(tzinfo=None)
    return _in_range(local, key)


def _in_range(value: datetime, key: str) -> datetime:
    if not _MIN_YEAR <= value.year < _MAX_YEAR:
        raise EventDataError(key, f"{value.isoformat()} is out of range")
    return value


def _all_day_span(
    event: dict[str, Any], room_zone: ZoneInfo
) -> tuple[datetime, datetime]:
    # All-day events run midnight to midnight in the zone Graph was asked for; only
    # their dates mean something, and the room decides where the day begins.
    first, _zone = _local_time(event, "start")
    last, _zone = _local_time(event, "end")
    first_day, last_day = first.date(), last.date()
    if last_day <= first_day:
        raise EventDataError("end", "an all-day event must end on a later date")
    return (
        _in_range(_room_midnight(first_day, room_zone), "start"),
        _in_range(_room_midnight(last_day, room_zone), "end"),
    )


def _room_midnight(day: date, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, time(0), tzinfo=zone)
    return local.astimezone(_UTC).replace(tzinfo=None)


def _marker(event: dict[str, Any]) -> str:
    properties = event.get("singleValueExtendedProperties")
    if properties is None:
        return ""
    if not isinstance(properties, list):
        raise EventDataError("singleValueExtendedProperties", "not a list")
    for item in properties:
        if not isinstance(item, dict):
            raise EventDataError("singleValueExtendedProperties", "item not an object")
        if _same_property(item.get("id"), MARKER_PROPERTY_ID):
            return _str(item, "value", "singleValueExtendedProperties")
    return ""


def _same_property(value: object, expected: str) -> bool:
    # Property names are case-sensitive; the GUID is a GUID, its case is not
    # significant.
    if not isinstance(value, str):
        return False
    found, wanted = _PROPERTY_ID.fullmatch(value), _PROPERTY_ID.fullmatch(expected)
    if not found or not wanted:
        return value == expected
    return (
        found.group(1).lower() == wanted.group(1).lower()
        and found.group(2).lower() == wanted.group(2).lower()
        and found.group(3) == wanted.group(3)
    )
