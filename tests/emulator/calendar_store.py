"""Room mailbox calendars as Exchange Online keeps them, seen through Microsoft Graph.

Pure Python (no HTTP, no threads started); one re-entrant lock makes it thread-safe.
Every Graph-visible error is a ``GraphHttpError``. Facts: docs/graph.md#events and
docs/graph.md#incremental-sync-with-calendarview-delta.

Public API::

    CalendarStore(*, clock=None, delta_generations=3, accept_iana_time_zones=True,
                  transaction_id_duplicate_status=201, conflict_status=412,
                  delta_default_page_size=50, delta_empty_first_page=False,
                  delta_partial_updates=False, series_change_keys="visible")
        .add_mailbox(address, *, display_name, owner_name=None)
        .has_mailbox(address) -> bool
        .calendar_info(address) -> dict
        .set_processing_options(address, *, add_organizer_to_subject=None,
                                delete_subject=None, remove_private_property=None,
                                delete_comments=None)
        .create_event(address, payload, *, organizer=None, time_zone=None,
                      expand_extended=None) -> (dict, created: bool)
        .get_event(address, event_id, *, time_zone=None, expand_extended=None) -> dict
        .update_event(address, event_id, patch, *, if_match=None, time_zone=None,
                      expand_extended=None) -> dict
        .delete_event(address, event_id, *, if_match=None)
        .cancel_event(address, event_id, comment=None)
        .list_events(address, *, extended_filter=None, time_zone=None,
                     expand_extended=None, top=None) -> list[dict]
        .calendar_view(address, start, end, *, time_zone=None) -> list[dict]
        .delta_page(address, *, start=None, end=None, token=None, page_size=None,
                    time_zone=None) -> DeltaPage(value, next_token, delta_token)
        .expire_delta_tokens(address=None)
        .forget_delta_tokens()           # tokens become unknown: 400, not 410
        .seed_ids(seed)                  # replayable event ids (None: random)
        .decline_event(address, event_id, *, comment=None, send_response=True)
        .responses                       # what organizers were told (declines)
        .garble(address, event_id, overrides)   # serve an event broken (None: fixed)
        .delta_window(token) -> (start, end) | None   # the window a token is for
        .add_listener(callback)        # callback(address, change_type, event_id,
                                       #          change_key)
        .snapshot(address) -> list[dict]
        .is_valid_time_zone(name) -> bool
        .reset(*, keep_mailboxes=True)
        .transaction_id_duplicate_status, .conflict_status   # for the HTTP layer
        .delta_partial_updates          # switch, may be changed at any time

Choices where Graph's behaviour is UNCONFIRMED
(docs/graph.md#unconfirmed-points-and-the-emulators-options) are
constructor options; the other choices made here:

- Ids always behave as with ``Prefer: IdType="ImmutableId"``. An occurrence id
  encodes its series id and original start; an exception keeps that id.
- A duplicate ``transactionId`` in the same calendar returns the existing event.
- ``If-Match`` takes ``W/"<changeKey>"`` or the bare changeKey (``*`` matches all);
  without it the last writer wins.
- Times are returned in UTC unless ``time_zone`` (Windows or IANA, echoed as given)
  is asked for; all-day events are midnight to midnight in any zone.
- ``body`` is returned as it was written (no HTML wrapping, no
  ``Prefer: outlook.body-content-type`` conversion).
- Processing options (Set-CalendarProcessing) start all false, and apply only to
  events whose organizer is not the mailbox.
- ``isOnlineMeeting: true`` or an ``onlineMeetingProvider`` the calendar offers
  (``teamsForBusiness``, its default) gives the event an ``onlineMeeting``
  (``joinUrl``, ``conferenceId``, ``tollNumber`` as in the documented example; the
  series' for its occurrences); later changes to those two properties are ignored.
  The Teams invitation Graph adds to the body is not added.
- Cancelling keeps the item with ``isCancelled: true``; deleting an occurrence
  removes it from calendarView (and delta reports it ``@removed``).
- Changing a series' start, end or pattern drops its exceptions and cancellations.
- A change to a series master that changes what an exception shows (an exception
  shows the series' subject, body, location, cancellation... under its own
  overrides) gives that exception a new change key and ``lastModifiedDateTime``, so
  that delta, If-Match and a client comparing change keys see it change. Graph does
  not document exceptions' change keys; Exchange documents an occurrence's change
  key as the version of the recurring master ("If either the recurring master or
  any of its occurrences change, the ChangeKey changes", EWS
  ``OccurrenceItemIdType.ChangeKey``): ``series_change_keys="all"`` re-keys every
  exception on every master change; the default ``"visible"`` re-keys only those
  whose view changed.
- Listeners get the id of the item that changed (an occurrence id for an
  occurrence) and its change key after the change (before it, for a deletion); a
  series change is reported once, with the master id.

Delta (docs/graph.md#incremental-sync-with-calendarview-delta):
a first round (no token) sends the window's
items as full objects. A ``$deltatoken`` round sends, in window order, the items that
are new to the chain or whose rendered JSON differs from what the chain last got, then
``@removed`` entries for the items that left the window. Each sync state keeps, per
item, the change keys it was rendered at and that rendering (shared, never handed out:
every page gets copies), so a round re-renders only the items whose change keys moved.

``delta_partial_updates`` (off by default; whether Outlook does this is UNCONFIRMED,
docs/graph.md#partial-delta-items): an item the chain already had and that was *updated*
(not new to the chain, not a removal) comes as a partial object: ``@odata.type``,
``@odata.etag``, ``id``, ``changeKey``, plus exactly the top-level properties whose
value differs from the state the client last received through that delta chain (the
sync state the token stands for, so several updates between two rounds are merged,
and an update that was undone is not sent). A changed property is sent whole (e.g.
all of ``start``, all of ``location``). The comparison is made on the UTC rendering,
so asking for another ``outlook.timezone`` later does not by itself make ``start`` and
``end`` count as changed. The switch is read when a round's changes are computed
(the ``$deltatoken`` call): the later pages of that round follow that choice. First
rounds always send full objects.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import logging
import random
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .errors import GraphHttpError
from .recurrence import (
    PatternedRecurrence,
    expand,
    iter_dates,
    occurrence_end,
    occurrence_start,
    parse_recurrence,
)
from .timezones import to_zoneinfo

# --------------------------------------------------------------------------- fields

NO_TIME = "0001-01-01T00:00:00Z"
SPECIAL_KEYS = frozenset(
    {"start", "end", "recurrence", "transactionId", "singleValueExtendedProperties"}
)
# Graph ignores read-only (server-computed) properties sent back in a POST or PATCH.
READ_ONLY_KEYS = frozenset(
    {
        "@odata.type",
        "@odata.etag",
        "@odata.context",
        "id",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
        "iCalUId",
        "uid",
        "type",
        "seriesMasterId",
        "isOrganizer",
        "isCancelled",
        "webLink",
        "bodyPreview",
        "responseStatus",
        "hasAttachments",
        "organizer",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "onlineMeeting",
        "onlineMeetingUrl",
        "occurrenceId",
    }
)
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def invalid(message: str) -> GraphHttpError:
    return GraphHttpError(400, "ErrorInvalidRequest", message)


def unknown_property(name: str) -> GraphHttpError:
    # The OData deserializer's answer to a property the event type does not define.
    return GraphHttpError(
        400,
        "RequestBodyRead",
        f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make "
        "sure to only use property names that are defined by the type or mark the "
        "type as open type.",
    )


@dataclass(frozen=True, slots=True)
class GraphTime:
    """An instant given as a Graph dateTimeTimeZone, with the zone name as given."""

    utc: datetime
    zone_name: str
    local: datetime


def parse_graph_time(value: object, name: str, *, accept_iana: bool) -> GraphTime:
    if not isinstance(value, dict):
        raise invalid(
            f"The '{name}' property must be an object with dateTime and timeZone."
        )
    text = value.get("dateTime")
    zone_name = value.get("timeZone")
    if zone_name is None:
        zone_name = "UTC"
    if not isinstance(text, str):
        raise invalid(f"The '{name}.dateTime' property is missing or not a string.")
    zone = to_zoneinfo(zone_name, accept_iana=accept_iana)
    parsed = _parse_datetime(text, name)
    local = parsed.astimezone(zone) if parsed.tzinfo else parsed.replace(tzinfo=zone)
    return GraphTime(local.astimezone(timezone.utc), zone_name, local)


def _parse_datetime(text: str, name: str) -> datetime:
    match = _DATETIME.match(text.strip())
    if not match:
        raise invalid(
            f"The value '{text}' of '{name}.dateTime' is not a valid date and time."
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0").ljust(7, "0")[:6])
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except ValueError:
        raise invalid(
            f"The value '{text}' of '{name}.dateTime' is not a valid date and time."
        ) from None
    if offset:
        parsed = parsed.replace(tzinfo=_offset(offset))
    return parsed


def _offset(text: str) -> timezone:
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def format_local(dt: datetime) -> str:
    if dt.year >= 1000:
        # isoformat() starts with the same 26 characters as the strftime form below,
        # faster; strftime does not pad years below 1000, so those keep that form.
        return dt.isoformat(timespec="microseconds")[:26] + "0"
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0"


def format_stamp(dt: datetime) -> str:
    return format_local(dt.astimezone(timezone.utc)) + "Z"


def render_time(utc: datetime, zone_name: str | None, zone: ZoneInfo | None) -> dict:
    local = utc.astimezone(zone) if zone else utc
    return {"dateTime": format_local(local), "timeZone": zone_name or "UTC"}


def body_preview(body: dict) -> str:
    content = body.get("content") or ""
    if body.get("contentType") == "html":
        content = html.unescape(_TAGS.sub(" ", content))
    return " ".join(content.split())[:255]


def default_location() -> dict:
    return {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


def default_fields() -> dict:
    return {
        "subject": "",
        "body": {"contentType": "html", "content": ""},
        "importance": "normal",
        "sensitivity": "normal",
        "showAs": "busy",
        "isAllDay": False,
        "categories": [],
        "attendees": [],
        "location": default_location(),
        "locations": [],
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "responseRequested": True,
        "allowNewTimeProposals": True,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "hideAttendees": False,
        "isDraft": False,
    }


def _string(name: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid(f"The '{name}' property must be a string.")
    return value


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"The '{name}' property must be a boolean.")
    return value


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"The '{name}' property must be an integer.")
    return value


def _enum(*choices: str) -> Callable[[str, object], str]:
    folded = {choice.casefold(): choice for choice in choices}

    def check(name: str, value: object) -> str:
        if not isinstance(value, str) or value.casefold() not in folded:
            raise invalid(
                f"The value '{value}' of '{name}' is not one of: {', '.join(choices)}."
            )
        return folded[value.casefold()]

    return check


_CONTENT_TYPE = _enum("text", "html")
_ATTENDEE_TYPE = _enum("required", "optional", "resource")


def _body(name: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise invalid(
            "The 'body' property must be an object with contentType and content."
        )
    content_type = _CONTENT_TYPE("body.contentType", value.get("contentType", "text"))
    return {
        "contentType": content_type,
        "content": _string("body.content", value.get("content")),
    }


def _categories(name: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid("The 'categories' property must be a list of strings.")
    return list(value)


def _email_address(name: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise invalid(f"The '{name}.emailAddress' property must be an object.")
    address = _string(f"{name}.emailAddress.address", value.get("address"))
    display = _string(f"{name}.emailAddress.name", value.get("name")) or address
    return {"name": display, "address": address}


def _attendee(name: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise invalid("Each attendee must be an object.")
    kind = _ATTENDEE_TYPE(f"{name}.type", value.get("type", "required"))
    status = value.get("status") or {}
    if not isinstance(status, dict):
        raise invalid(f"The '{name}.status' property must be an object.")
    return {
        "type": kind,
        "status": {
            "response": _RESPONSE(
                f"{name}.status.response", status.get("response", "none")
            ),
            "time": _string(f"{name}.status.time", status.get("time")) or NO_TIME,
        },
        "emailAddress": _email_address(name, value.get("emailAddress")),
    }


def _attendees(name: str, value: object) -> list[dict]:
    if not isinstance(value, list):
        raise invalid("The 'attendees' property must be a list.")
    if len(value) > 500:
        raise invalid("An event can have at most 500 attendees.")
    return [_attendee(f"attendees[{index}]", item) for index, item in enumerate(value)]


def _location(name: str, value: object) -> dict:
    if value is None:
        return default_location()
    if not isinstance(value, dict):
        raise invalid(f"The '{name}' property must be an object.")
    location = default_location()
    location.update(value)
    location["displayName"] = _string(f"{name}.displayName", location["displayName"])
    if location["displayName"] and "uniqueId" not in value:
        location.update(uniqueId=location["displayName"], uniqueIdType="private")
    return location


def _locations(name: str, value: object) -> list[dict]:
    if not isinstance(value, list):
        raise invalid("The 'locations' property must be a list.")
    return [_location(f"locations[{index}]", item) for index, item in enumerate(value)]


RESPONSES = (
    "none",
    "organizer",
    "tentativelyAccepted",
    "accepted",
    "declined",
    "notResponded",
)
_RESPONSE = _enum(*RESPONSES)
_VALIDATORS: dict[str, Callable[[str, object], object]] = {
    "subject": _string,
    "body": _body,
    "importance": _enum("low", "normal", "high"),
    "sensitivity": _enum("normal", "personal", "private", "confidential"),
    "showAs": _enum("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "isAllDay": _boolean,
    "categories": _categories,
    "attendees": _attendees,
    "location": _location,
    "locations": _locations,
    "isReminderOn": _boolean,
    "reminderMinutesBeforeStart": _integer,
    "responseRequested": _boolean,
    "allowNewTimeProposals": _boolean,
    "isOnlineMeeting": _boolean,
    "onlineMeetingProvider": _enum(
        "unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"
    ),
    "hideAttendees": _boolean,
    "isDraft": _boolean,
}


def validate_fields(payload: dict, *, ignore: Iterable[str] = ()) -> dict:
    """The simple writable properties of ``payload``, validated and normalised."""
    skipped = SPECIAL_KEYS | READ_ONLY_KEYS | set(ignore)
    fields = {}
    for name, value in payload.items():
        if name in skipped or name.startswith("@"):
            continue
        validator = _VALIDATORS.get(name)
        if validator is None:
            raise unknown_property(name)
        fields[name] = validator(name, value)
    _sync_locations(fields)
    return fields


def _sync_locations(fields: dict) -> None:
    # Updating `location` replaces `locations`, and the first of `locations` is shown
    # as `location`.
    if "location" in fields:
        location = fields["location"]
        fields["locations"] = [location] if location["displayName"] else []
    elif fields.get("locations"):
        fields["location"] = fields["locations"][0]


def validate_extended(value: object) -> dict[str, str]:
    """``singleValueExtendedProperties`` as ``{id: value}`` (ids are case-sensitive)."""
    if not isinstance(value, list):
        raise invalid("The 'singleValueExtendedProperties' property must be a list.")
    properties = {}
    for item in value:
        if not isinstance(item, dict):
            raise invalid("Each single-value extended property must be an object.")
        prop_id, prop_value = item.get("id"), item.get("value")
        if not isinstance(prop_id, str) or len(prop_id.split()) < 2:
            raise invalid(
                f"The extended property id '{prop_id}' is not valid; use "
                "'{type} {guid} Name {name}', '{type} {guid} Id {id}' or "
                "'{type} {tag}'."
            )
        if not isinstance(prop_value, str):
            raise invalid(
                f"The value of extended property '{prop_id}' must be a string."
            )
        properties[prop_id] = prop_value
    return properties


# --------------------------------------------------------------------------- store


_MAX_WINDOW_DAYS = 1825
# CalendarStore.garble: an override that removes its key.
GARBLE_DROP = object()
# A room's calendar, as Exchange Online with Teams shows it (calendar_info).
ONLINE_MEETING_PROVIDERS = ("teamsForBusiness",)
DEFAULT_ONLINE_MEETING_PROVIDER = "teamsForBusiness"
# The documented example's toll number (a fictional 555 number).
_TOLL_NUMBER = "+1 323-555-0166"
SERIES_CHANGE_KEYS = ("all", "visible")
_EVENT_ID_PREFIX = b"\x00\x00\x1e\x00"
_OCCURRENCE_MARK = 0x07
_EVENT_RAW_LENGTH = 29
_OCCURRENCE_RAW_LENGTH = 38
_ICAL_PREFIX = "040000008200E00074C5B7101A82E008"
_TOKEN_VERSION = "1"
_REMOVED = {"reason": "deleted"}

_log = logging.getLogger(__name__)

Listener = Callable[[str, str, str, str], None]
_Note = tuple[str, str, str, str]


@dataclass(slots=True)
class DeltaPage:
    """One page of a calendarView delta round: exactly one token is set."""

    value: list[dict]
    next_token: str | None = None
    delta_token: str | None = None


@dataclass(slots=True)
class _Exception:
    start: GraphTime
    end: GraphTime
    overrides: dict
    extended: dict[str, str]
    change_key: str
    modified: datetime
    is_cancelled: bool = False


@dataclass(slots=True)
class _Event:
    id: str
    start: GraphTime
    end: GraphTime
    fields: dict
    organizer: dict
    is_organizer: bool
    transaction_id: str | None
    extended: dict[str, str]
    recurrence: PatternedRecurrence | None
    change_key: str
    created: datetime
    modified: datetime
    ical_uid: str
    is_cancelled: bool = False
    declined: bool = False
    exceptions: dict[datetime, _Exception] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)
    online_meeting: dict | None = None


@dataclass(frozen=True, slots=True)
class _Instance:
    """What an id designates: a single, a master, an occurrence or an exception."""

    id: str
    kind: str
    event: _Event
    original_start: datetime | None = None
    exception: _Exception | None = None

    @property
    def start(self) -> GraphTime:
        if self.exception:
            return self.exception.start
        if self.kind == "occurrence":
            return _occurrence_times(self.event, self.original_start)[0]
        return self.event.start

    @property
    def end(self) -> GraphTime:
        if self.exception:
            return self.exception.end
        if self.kind == "occurrence":
            return _occurrence_times(self.event, self.original_start)[1]
        return self.event.end


@dataclass(slots=True)
class _Mailbox:
    address: str
    display_name: str
    owner_name: str
    calendar_id: str
    calendar_change_key: str
    options: dict[str, bool]
    events: dict[str, _Event] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)


# What a sync state remembers of an item: (``_version``, rendering in UTC). The
# rendering is shared by the states that saw that version and is never handed out.
_Seen = tuple[object, dict]


@dataclass(frozen=True, slots=True)
class _Partial:
    """A delta entry to send as a partial object: ``item``'s ``keys`` only."""

    item: dict
    keys: frozenset[str]


@dataclass(slots=True)
class _SyncState:
    kind: str
    baseline: dict[str, _Seen]
    pending: list[dict | _Partial] = field(default_factory=list)


@dataclass(slots=True)
class _SyncWindow:
    highest: int = 0
    states: OrderedDict[int, _SyncState] = field(default_factory=OrderedDict)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _encode_id(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_id(event_id: object) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(str(event_id).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) not in (_EVENT_RAW_LENGTH, _OCCURRENCE_RAW_LENGTH):
        raise GraphHttpError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return raw


def _not_found() -> GraphHttpError:
    return GraphHttpError(
        404, "ErrorItemNotFound", "The specified object was not found in the store."
    )


def _series_zone(event: _Event) -> ZoneInfo:
    name = event.recurrence.range.recurrence_time_zone or event.start.zone_name
    return to_zoneinfo(name, accept_iana=True)


def _series_first_start(event: _Event) -> datetime:
    return event.start.utc.astimezone(_series_zone(event))


def _series_duration(event: _Event) -> timedelta:
    zone = _series_zone(event)
    start = event.start.utc.astimezone(zone).replace(tzinfo=None)
    return event.end.utc.astimezone(zone).replace(tzinfo=None) - start


def _occurrence_times(event: _Event, original: datetime) -> tuple[GraphTime, GraphTime]:
    start_local = original.astimezone(_series_zone(event))
    end_local = occurrence_end(start_local, _series_duration(event))
    return (
        GraphTime(original, event.start.zone_name, start_local),
        GraphTime(end_local.astimezone(timezone.utc), event.end.zone_name, end_local),
    )


def _overlaps(start: datetime, end: datetime, low: datetime, high: datetime) -> bool:
    if start == end:
        return low <= start < high
    return start < high and end > low


def _is_occurrence(event: _Event, original: datetime) -> bool:
    first = _series_first_start(event)
    day = original.astimezone(first.tzinfo).date()
    for candidate in iter_dates(event.recurrence):
        if candidate > day:
            return False
        if candidate == day:
            return occurrence_start(candidate, first) == original
    return False


_ATOMIC_TYPES = frozenset({str, int, float, bool, type(None)})


def _clone(value: object) -> object:
    """A deep copy of JSON-like data (``copy.deepcopy`` for anything else), several
    times faster than ``copy.deepcopy`` on rendered events."""
    kind = type(value)
    if kind is dict:
        return {
            key: item if type(item) in _ATOMIC_TYPES else _clone(item)
            for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _ATOMIC_TYPES else _clone(item) for item in value]
    if kind in _ATOMIC_TYPES:
        return value
    return copy.deepcopy(value)


def _same_json(left: object, right: object) -> bool:
    """Whether two JSON-like values serialise to the same JSON (key order aside).

    Stricter than ``==`` where JSON is: ``1``, ``1.0`` and ``true`` differ; NaN is
    the same as NaN."""
    if type(left) is not type(right):
        return False
    if type(left) is dict:
        return left.keys() == right.keys() and all(
            _same_json(item, right[key]) for key, item in left.items()
        )
    if type(left) is list:
        return len(left) == len(right) and all(
            _same_json(a, b) for a, b in zip(left, right, strict=True)
        )
    if left == right:
        return True
    return type(left) is float and left != left and right != right


def _version(instance: _Instance) -> object:
    """What an item's rendering depends on that can change: every change to an event
    or to an exception takes a new change key (``_touch``, ``_exception_for``), and an
    exception is rendered over its series' fields."""
    if instance.exception is not None:
        return (instance.event.change_key, instance.exception.change_key)
    return instance.event.change_key


def _as_utc(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise invalid(
            "This request requires a time window specified by the query string "
            f"parameters StartDateTime and EndDateTime ({name} is missing)."
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _check_window(start: datetime, end: datetime) -> None:
    if end < start:
        raise invalid("The end of the time window must not be before its start.")
    if end - start > timedelta(days=_MAX_WINDOW_DAYS):
        raise invalid(
            "Your request can't be completed. The range between the start and end "
            f"dates is greater than the allowed range. Maximum number of days: "
            f"{_MAX_WINDOW_DAYS}"
        )


def _strip_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


class CalendarStore:
    """Room mailbox calendars: events, series, calendarView and calendarView/delta.

    Ids are always immutable (as with ``Prefer: IdType="ImmutableId"``): an event
    keeps its id for its whole life, and an occurrence id is derived from the series
    id and the occurrence's original start, so a moved occurrence (an exception) keeps
    the id it had as an occurrence.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        delta_generations: int = 3,
        accept_iana_time_zones: bool = True,
        transaction_id_duplicate_status: int = 201,
        conflict_status: int = 412,
        delta_default_page_size: int = 50,
        delta_empty_first_page: bool = False,
        delta_partial_updates: bool = False,
        series_change_keys: str = "visible",
        declined_meetings_stay: bool = False,
    ) -> None:
        if delta_generations < 1:
            raise ValueError("delta_generations must be at least 1")
        if series_change_keys not in SERIES_CHANGE_KEYS:
            raise ValueError(f"series_change_keys must be one of {SERIES_CHANGE_KEYS}")
        self.clock = clock or _utc_now
        self.delta_generations = delta_generations
        self.accept_iana_time_zones = accept_iana_time_zones
        self.transaction_id_duplicate_status = transaction_id_duplicate_status
        self.conflict_status = conflict_status
        self.delta_default_page_size = delta_default_page_size
        self.delta_empty_first_page = delta_empty_first_page
        self.delta_partial_updates = delta_partial_updates
        self.declined_meetings_stay = declined_meetings_stay
        # Responses sent to organizers (decline_event), in order.
        self.responses: list[dict] = []
        self.series_change_keys = series_change_keys
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._mailboxes: dict[str, _Mailbox] = {}
        self._windows: dict[tuple[str, str, str], _SyncWindow] = {}
        self._salt = secrets.token_hex(4)
        self._change_prefix = secrets.token_bytes(16)
        self._change_counter = 0
        self._ids = random.Random()
        self._garbled: dict[str, dict[str, object]] = {}

    def seed_ids(self, seed: int | None) -> None:
        """Draw new events' ids and iCalUIds from ``random.Random(seed)``, so that a
        test replaying the same requests in the same order gets the same ids (and
        the same orderings by id); ``None`` draws them at random again."""
        with self._lock:
            self._ids = random.Random(seed)

    # ----------------------------------------------------------------- mailboxes

    def add_mailbox(
        self, address: str, *, display_name: str, owner_name: str | None = None
    ) -> None:
        """Register a mailbox (room) with its primary calendar; re-adding renames it."""
        with self._lock:
            key = address.casefold()
            existing = self._mailboxes.get(key)
            if existing:
                existing.display_name = display_name
                existing.owner_name = owner_name or display_name
                return
            digest = hashlib.sha256(key.encode("utf-8")).digest()
            self._mailboxes[key] = _Mailbox(
                address=address,
                display_name=display_name,
                owner_name=owner_name or display_name,
                calendar_id=_encode_id(_EVENT_ID_PREFIX + digest[:25]),
                calendar_change_key=self._next_change_key(),
                options=dict.fromkeys(PROCESSING_OPTIONS, False),
            )

    def has_mailbox(self, address: str) -> bool:
        with self._lock:
            return address.casefold() in self._mailboxes

    def calendar_info(self, address: str) -> dict:
        with self._lock:
            mailbox = self._mailbox(address)
            return {
                "id": mailbox.calendar_id,
                "name": "Calendar",
                "color": "auto",
                "hexColor": "",
                "isDefaultCalendar": True,
                "changeKey": mailbox.calendar_change_key,
                "canShare": True,
                "canViewPrivateItems": True,
                "canEdit": True,
                "isRemovable": False,
                "isTallyingResponses": True,
                "allowedOnlineMeetingProviders": list(ONLINE_MEETING_PROVIDERS),
                "defaultOnlineMeetingProvider": DEFAULT_ONLINE_MEETING_PROVIDER,
                "owner": {"name": mailbox.owner_name, "address": mailbox.address},
            }

    def set_processing_options(
        self,
        address: str,
        *,
        add_organizer_to_subject: bool | None = None,
        delete_subject: bool | None = None,
        remove_private_property: bool | None = None,
        delete_comments: bool | None = None,
    ) -> None:
        """Set-CalendarProcessing flags; ``None`` leaves a flag unchanged."""
        given = {
            "add_organizer_to_subject": add_organizer_to_subject,
            "delete_subject": delete_subject,
            "remove_private_property": remove_private_property,
            "delete_comments": delete_comments,
        }
        with self._lock:
            options = self._mailbox(address).options
            options.update({k: bool(v) for k, v in given.items() if v is not None})

    # ----------------------------------------------------------------- events

    def create_event(
        self,
        address: str,
        payload: dict,
        *,
        organizer: dict | None = None,
        time_zone: str | None = None,
        expand_extended: Iterable[str] | str | None = None,
    ) -> tuple[dict, bool]:
        """POST an event; ``(event, False)`` when its transactionId already exists.

        The answer is rendered as ``get_event`` would with ``time_zone`` and
        ``expand_extended``; an unknown ``time_zone`` fails before anything is stored.
        """
        with self._lock:
            mailbox = self._mailbox(address)
            if not isinstance(payload, dict):
                raise invalid("The request body must be a JSON object.")
            self._zone(time_zone)
            existing = self._duplicate(mailbox, payload.get("transactionId"))
            if existing:
                instance = _Instance(existing.id, _kind(existing), existing)
                return self._render(instance, time_zone, expand_extended), False
            event = self._build_event(mailbox, payload, organizer)
            mailbox.events[event.id] = event
            if event.transaction_id:
                mailbox.transactions[event.transaction_id] = event.id
            instance = _Instance(event.id, _kind(event), event)
            rendered = self._render(instance, time_zone, expand_extended)
            notes = [(mailbox.address, "created", event.id, event.change_key)]
        self._notify(notes)
        return rendered, True

    def get_event(
        self,
        address: str,
        event_id: str,
        *,
        time_zone: str | None = None,
        expand_extended: Iterable[str] | str | None = None,
    ) -> dict:
        with self._lock:
            instance = self._resolve(self._mailbox(address), event_id)
            return self._garbled_copy(
                self._render(instance, time_zone, expand_extended)
            )

    def update_event(
        self,
        address: str,
        event_id: str,
        patch: dict,
        *,
        if_match: str | None = None,
        time_zone: str | None = None,
        expand_extended: Iterable[str] | str | None = None,
    ) -> dict:
        """PATCH the given properties; a patched occurrence becomes an exception.

        The answer is rendered as ``get_event`` would with ``time_zone`` and
        ``expand_extended``; an unknown ``time_zone`` fails before anything changes.
        """
        with self._lock:
            mailbox = self._mailbox(address)
            instance = self._resolve(mailbox, event_id)
            self._check_if_match(instance, if_match)
            if not isinstance(patch, dict):
                raise invalid("The request body must be a JSON object.")
            self._zone(time_zone)
            if instance.original_start is None:
                self._patch_event(instance.event, patch)
            else:
                self._patch_instance(instance, patch)
            rendered = self._render(
                self._resolve(mailbox, event_id), time_zone, expand_extended
            )
            notes = [(mailbox.address, "updated", instance.id, rendered["changeKey"])]
        self._notify(notes)
        return rendered

    def delete_event(
        self, address: str, event_id: str, *, if_match: str | None = None
    ) -> None:
        """Delete an event or a series; deleting an occurrence cancels only it."""
        with self._lock:
            mailbox = self._mailbox(address)
            instance = self._resolve(mailbox, event_id)
            self._check_if_match(instance, if_match)
            notes = [(mailbox.address, "deleted", instance.id, _change_key(instance))]
            if instance.original_start is None:
                self._remove_event(mailbox, instance.event)
            else:
                instance.event.exceptions.pop(instance.original_start, None)
                instance.event.cancelled.add(instance.original_start)
        self._notify(notes)

    def decline_event(
        self,
        address: str,
        event_id: str,
        *,
        comment: str | None = None,
        send_response: bool = True,
    ) -> None:
        """The mailbox declines a meeting it was invited to (Graph ``event: decline``,
        202 Accepted). With ``send_response`` the organizer gets the response (kept
        in ``responses``, the organizer's side of it). The organizer's own event
        cannot be declined (400). Graph's page does not say what becomes of the
        attendee's item; Outlook moves a declined meeting to Deleted Items, so it
        leaves the calendar (as a deletion: delta reports it removed; a declined
        occurrence leaves its series), unless ``declined_meetings_stay``, which keeps
        it with ``responseStatus`` declined."""
        with self._lock:
            mailbox = self._mailbox(address)
            instance = self._resolve(mailbox, event_id)
            if instance.event.is_organizer:
                raise invalid(
                    "Your request can't be completed. You can't respond to this "
                    "meeting because you're the meeting organizer."
                )
            self.responses.append(
                {
                    "mailbox": mailbox.address,
                    "event_id": instance.id,
                    "organizer": instance.event.organizer.get("address"),
                    "response": "declined",
                    "comment": comment or "",
                    "sent": bool(send_response),
                }
            )
            if self.declined_meetings_stay:
                instance.event.declined = True
                self._touch(
                    instance.event, self.clock(), _exception_views(instance.event)
                )
                change = "updated"
            else:
                change = "deleted"
                if instance.original_start is None:
                    self._remove_event(mailbox, instance.event)
                else:
                    instance.event.exceptions.pop(instance.original_start, None)
                    instance.event.cancelled.add(instance.original_start)
            notes = [(mailbox.address, change, instance.id, _change_key(instance))]
        self._notify(notes)

    def cancel_event(
        self, address: str, event_id: str, comment: str | None = None
    ) -> None:
        """The organizer cancels: the item stays, with ``isCancelled`` true.

        Room mailboxes keep cancelled meetings (Set-CalendarProcessing
        RemoveCanceledMeetings defaults to false), so the item stays visible in
        calendarView and delta with ``isCancelled: true``; ``comment`` is not kept.
        """
        with self._lock:
            mailbox = self._mailbox(address)
            instance = self._resolve(mailbox, event_id)
            now = self.clock()
            if instance.original_start is None:
                shown = _exception_views(instance.event)
                instance.event.is_cancelled = True
                self._touch(instance.event, now, shown)
            else:
                exception = self._exception_for(instance, now)
                exception.is_cancelled = True
            cancelled = self._resolve(mailbox, event_id)
            notes = [(mailbox.address, "updated", instance.id, _change_key(cancelled))]
        self._notify(notes)

    def list_events(
        self,
        address: str,
        *,
        extended_filter: tuple[str, str] | None = None,
        time_zone: str | None = None,
        expand_extended: Iterable[str] | str | None = None,
        top: int | None = None,
    ) -> list[dict]:
        """GET /events: single events and series masters, in creation order."""
        with self._lock:
            mailbox = self._mailbox(address)
            events = [
                event
                for event in mailbox.events.values()
                if extended_filter is None or _matches(event.extended, extended_filter)
            ]
            if top is not None:
                events = events[: max(top, 0)]
            return [
                self._render(_Instance(e.id, _kind(e), e), time_zone, expand_extended)
                for e in events
            ]

    def calendar_view(
        self,
        address: str,
        start: datetime,
        end: datetime,
        *,
        time_zone: str | None = None,
    ) -> list[dict]:
        """Singles, occurrences and exceptions overlapping ``[start, end)``."""
        with self._lock:
            low, high = _as_utc(start, "startDateTime"), _as_utc(end, "endDateTime")
            _check_window(low, high)
            self._zone(time_zone)
            mailbox = self._mailbox(address)
            instances = self._window_instances(mailbox, low, high)
            return [
                self._garbled_copy(self._render(instance, time_zone))
                for instance in instances
            ]

    def snapshot(self, address: str) -> list[dict]:
        """Every stored item (singles, masters, exceptions) rendered in UTC."""
        with self._lock:
            items = []
            for event in self._mailbox(address).events.values():
                items.append(self._render(_Instance(event.id, _kind(event), event)))
                for original, exception in sorted(event.exceptions.items()):
                    item_id = _occurrence_id(event.id, original)
                    instance = _Instance(
                        item_id, "exception", event, original, exception
                    )
                    items.append(self._render(instance))
            return items

    def reset(self, *, keep_mailboxes: bool = True) -> None:
        """Forget all events and sync states (mailboxes and listeners stay)."""
        with self._lock:
            self._windows.clear()
            self._garbled.clear()
            self.responses.clear()
            if not keep_mailboxes:
                self._mailboxes.clear()
                return
            for mailbox in self._mailboxes.values():
                mailbox.events.clear()
                mailbox.transactions.clear()

    def add_listener(self, callback: Listener) -> None:
        """``callback(address, change_type, event_id, change_key)``, called after
        each change."""
        with self._lock:
            self._listeners.append(callback)

    # ----------------------------------------------------------------- delta

    def delta_page(
        self,
        address: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        token: str | None = None,
        page_size: int | None = None,
        time_zone: str | None = None,
    ) -> DeltaPage:
        """One page of ``calendarView/delta``: a first call, a skip or a delta token."""
        with self._lock:
            mailbox = self._mailbox(address)
            size = self._page_size(page_size)
            self._zone(time_zone)
            if token is None:
                return self._first_round(mailbox, start, end, size, time_zone)
            key, generation = self._parse_token(mailbox, token)
            window = self._windows.get(key)
            state = window.states.get(generation) if window else None
            if state is None:
                raise _sync_state_not_found(generation, window)
            if state.kind == "skip":
                return self._emit(key, state.pending, state.baseline, size, time_zone)
            low, high = datetime.fromisoformat(key[1]), datetime.fromisoformat(key[2])
            baseline, current = self._window_state(mailbox, low, high, state.baseline)
            changes = _changes(state.baseline, current, self.delta_partial_updates)
            return self._emit(key, changes, baseline, size, time_zone)

    def garble(
        self, address: str, event_id: str, overrides: dict[str, object] | None
    ) -> None:
        """Fault injection: serve event ``event_id`` (delta pages, GET, calendarView)
        with ``overrides`` put into its JSON, as an item Graph cannot describe
        properly would come: ``{"end.dateTime": "...", "start.timeZone": "Mars",
        "subject": 12, "id": GARBLE_DROP}`` ("a.b" reaches into objects,
        ``GARBLE_DROP`` removes the key, ``""`` replaces the whole item). ``None``
        serves it as stored again. Either way the event counts as changed, so that
        the next delta lists it."""
        with self._lock:
            event = self._mailbox(address).events.get(event_id)
            if event is None:
                raise _not_found()
            if overrides is None:
                self._garbled.pop(event_id, None)
            else:
                self._garbled[event_id] = dict(overrides)
            event.change_key = self._next_change_key()

    def _garbled_copy(self, item: dict) -> dict:
        overrides = (
            self._garbled.get(item.get("id")) if "@removed" not in item else None
        )
        if not overrides:
            return item
        if "" in overrides:
            return copy.deepcopy(overrides[""])  # the whole item, e.g. not an object
        item = copy.deepcopy(item)
        for path, value in overrides.items():
            *parents, name = path.split(".")
            target = item
            for parent in parents:
                target = target.setdefault(parent, {})
            if value is GARBLE_DROP:
                target.pop(name, None)
            else:
                target[name] = copy.deepcopy(value)
        return item

    def forget_delta_tokens(self) -> None:
        """Fault injection: Exchange lost its sync states (a mailbox move, a
        restore): every token issued so far is unknown and answers 400
        ``ErrorInvalidRequest`` "The sync state token is malformed or unknown.",
        not the 410 of an expired one."""
        with self._lock:
            self._salt = secrets.token_hex(4)
            self._windows.clear()

    def expire_delta_tokens(self, address: str | None = None) -> None:
        """Fault injection: every token issued so far (for ``address``) answers 410."""
        with self._lock:
            folded = address.casefold() if address else None
            for key, window in self._windows.items():
                if folded is None or key[0] == folded:
                    window.states.clear()

    def delta_window(self, token: object) -> tuple[datetime, datetime] | None:
        """The time window (UTC) of the query a delta token continues, or None when
        the token is not one of this store's. Used for the ``Location`` of a 410,
        which restarts that query (the token's generation need not exist any more)."""
        try:
            _version_, salt, _box, low, high, _generation, _kind_ = _token_text(
                token
            ).split("|")
            window = datetime.fromisoformat(low), datetime.fromisoformat(high)
        except (ValueError, UnicodeError):
            return None
        return window if salt == self._salt else None

    def _first_round(
        self,
        mailbox: _Mailbox,
        start: datetime | None,
        end: datetime | None,
        size: int,
        time_zone: str | None,
    ) -> DeltaPage:
        low, high = _as_utc(start, "startDateTime"), _as_utc(end, "endDateTime")
        _check_window(low, high)
        key = (mailbox.address.casefold(), low.isoformat(), high.isoformat())
        baseline, current = self._window_state(mailbox, low, high)
        if self.delta_empty_first_page and current:
            # Real first pages are sometimes empty and only carry a nextLink.
            window = self._windows.setdefault(key, _SyncWindow())
            token = self._store_state(
                key, window, _SyncState("skip", baseline, current)
            )
            return DeltaPage([], next_token=token)
        return self._emit(key, current, baseline, size, time_zone)

    def _emit(
        self,
        key: tuple[str, str, str],
        entries: list[dict | _Partial],
        baseline: dict[str, _Seen],
        size: int,
        time_zone: str | None,
    ) -> DeltaPage:
        window = self._windows.setdefault(key, _SyncWindow())
        page, rest = entries[:size], entries[size:]
        value = [self._garbled_copy(self._retime(entry, time_zone)) for entry in page]
        if rest:
            token = self._store_state(key, window, _SyncState("skip", baseline, rest))
            return DeltaPage(value, next_token=token)
        token = self._store_state(key, window, _SyncState("delta", baseline))
        return DeltaPage(value, delta_token=token)

    def _store_state(
        self, key: tuple[str, str, str], window: _SyncWindow, state: _SyncState
    ) -> str:
        window.highest += 1
        window.states[window.highest] = state
        while len(window.states) > self.delta_generations:
            window.states.popitem(last=False)
        text = "|".join(
            (_TOKEN_VERSION, self._salt, *key, str(window.highest), state.kind)
        )
        return (
            base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
        )

    def _parse_token(self, mailbox: _Mailbox, token: object) -> tuple[tuple, int]:
        malformed = invalid("The sync state token is malformed or unknown.")
        try:
            text = _token_text(token)
            version, salt, box, low, high, generation, _kind_ = text.split("|")
            generation_number = int(generation)
            for bound in (low, high):
                datetime.fromisoformat(bound)
        except (ValueError, UnicodeError):
            raise malformed from None
        if version != _TOKEN_VERSION or salt != self._salt:
            raise malformed
        if box != mailbox.address.casefold():
            raise invalid("The sync state token belongs to another mailbox.")
        return (box, low, high), generation_number

    def _page_size(self, page_size: int | None) -> int:
        size = self.delta_default_page_size if page_size is None else page_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise invalid(f"The page size '{page_size}' is not valid.")
        return size

    def _window_state(
        self,
        mailbox: _Mailbox,
        low: datetime,
        high: datetime,
        previous: dict[str, _Seen] | None = None,
    ) -> tuple[dict[str, _Seen], list[dict]]:
        """The window's items rendered in UTC (with ``@odata.type``), and the sync
        state's record of them. An item whose version ``previous`` already holds is
        not rendered again: its rendering is shared (callers never hand it out)."""
        seen: dict[str, _Seen] = {}
        items = []
        for instance in self._window_instances(mailbox, low, high):
            version = _version(instance)
            known = previous.get(instance.id) if previous else None
            if known is not None and known[0] == version:
                item = known[1]
            else:
                rendered = self._render(instance)
                item = {"@odata.type": "#microsoft.graph.event", **rendered}
            seen[instance.id] = (version, item)
            items.append(item)
        return seen, items

    def _retime(self, entry: dict | _Partial, time_zone: str | None) -> dict:
        """A copy of a pending delta entry for a page, in ``time_zone``."""
        if isinstance(entry, _Partial):
            item = entry.item
            result = {k: _clone(v) for k, v in item.items() if k in entry.keys}
        else:
            item = entry
            result = _clone(item)
        if "@removed" in item or not time_zone:
            return result
        zone = self._zone(time_zone)
        for name in ("start", "end"):
            if name not in result:
                continue
            if item["isAllDay"]:
                result[name]["timeZone"] = time_zone
                continue
            utc = datetime.fromisoformat(item[name]["dateTime"][:26]).replace(
                tzinfo=timezone.utc
            )
            result[name] = render_time(utc, time_zone, zone)
        return result

    # ----------------------------------------------------------------- internals

    def _mailbox(self, address: str) -> _Mailbox:
        mailbox = self._mailboxes.get(str(address).casefold())
        if mailbox is None:
            raise GraphHttpError(
                404, "ErrorInvalidUser", f"The requested user '{address}' is invalid."
            )
        return mailbox

    def is_valid_time_zone(self, time_zone: str) -> bool:
        """Whether ``time_zone`` may be asked for (``Prefer: outlook.timezone``)."""
        try:
            self._zone(time_zone)
        except GraphHttpError:
            return False
        return True

    def _zone(self, time_zone: str | None) -> ZoneInfo | None:
        if time_zone is None:
            return None
        return to_zoneinfo(time_zone, accept_iana=self.accept_iana_time_zones)

    def _next_change_key(self) -> str:
        self._change_counter += 1
        raw = self._change_prefix + self._change_counter.to_bytes(6, "big")
        return base64.b64encode(raw).decode("ascii")

    def _touch(
        self, event: _Event, now: datetime, shown: dict[datetime, tuple] | None = None
    ) -> None:
        """A new change key for a changed event, and for the exceptions of a series:
        those whose view (``_exception_view``; ``shown`` holds the views before the
        change) moved, or each of them with ``series_change_keys="all"``."""
        event.change_key = self._next_change_key()
        event.modified = now
        for original, exception in event.exceptions.items():
            if (
                self.series_change_keys == "visible"
                and shown is not None
                and shown.get(original) == _exception_view(event, exception)
            ):
                continue
            exception.change_key = self._next_change_key()
            exception.modified = now

    def _notify(self, notes: list[_Note]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for address, change, event_id, change_key in notes:
            for listener in listeners:
                try:
                    listener(address, change, event_id, change_key)
                except Exception:
                    _log.exception("calendar store listener failed")

    def _duplicate(self, mailbox: _Mailbox, transaction_id: object) -> _Event | None:
        if transaction_id is None:
            return None
        if not isinstance(transaction_id, str):
            raise invalid("The 'transactionId' property must be a string.")
        return mailbox.events.get(mailbox.transactions.get(transaction_id, ""))

    def _times(
        self, payload: dict, start: GraphTime | None, end: GraphTime | None
    ) -> tuple[GraphTime, GraphTime]:
        accept = self.accept_iana_time_zones
        if "start" in payload:
            start = parse_graph_time(payload["start"], "start", accept_iana=accept)
        if "end" in payload:
            end = parse_graph_time(payload["end"], "end", accept_iana=accept)
        if start is None or end is None:
            raise invalid("The 'start' and 'end' properties of an event are required.")
        return start, end

    def _build_event(
        self, mailbox: _Mailbox, payload: dict, organizer: dict | None
    ) -> _Event:
        fields = default_fields()
        fields.update(validate_fields(payload))
        start, end = self._times(payload, None, None)
        _check_times(start, end, fields["isAllDay"])
        recurrence = _parse_series(payload.get("recurrence"), start)
        extended = validate_extended(payload.get("singleValueExtendedProperties") or [])
        is_organizer, organizer_address = _organizer(mailbox, organizer)
        if not is_organizer:
            _apply_processing(mailbox.options, fields, organizer_address)
        now = self.clock()
        digest = hashlib.sha256(mailbox.address.casefold().encode("utf-8")).digest()
        raw = _EVENT_ID_PREFIX + digest[:8] + self._ids.randbytes(16) + b"\x00"
        event = _Event(
            id=_encode_id(raw),
            start=start,
            end=end,
            fields=fields,
            organizer=organizer_address,
            is_organizer=is_organizer,
            transaction_id=payload.get("transactionId"),
            extended=extended,
            recurrence=recurrence,
            change_key=self._next_change_key(),
            created=now,
            modified=now,
            ical_uid=_ICAL_PREFIX
            + "00000000"
            + "0" * 16
            + self._ids.randbytes(16).hex().upper(),
        )
        _enable_online_meeting(event)
        return event

    def _resolve(self, mailbox: _Mailbox, event_id: str) -> _Instance:
        raw = _decode_id(event_id)
        master_id = _encode_id(raw[:_EVENT_RAW_LENGTH])
        event = mailbox.events.get(master_id)
        if event is None:
            raise _not_found()
        if len(raw) == _EVENT_RAW_LENGTH:
            return _Instance(event.id, _kind(event), event)
        if raw[_EVENT_RAW_LENGTH] != _OCCURRENCE_MARK or event.recurrence is None:
            raise _not_found()
        seconds = int.from_bytes(raw[_EVENT_RAW_LENGTH + 1 :], "big", signed=True)
        original = datetime.fromtimestamp(seconds, timezone.utc)
        canonical = _occurrence_id(event.id, original)
        if original in event.exceptions:
            exception = event.exceptions[original]
            return _Instance(canonical, "exception", event, original, exception)
        if original in event.cancelled or not _is_occurrence(event, original):
            raise _not_found()
        return _Instance(canonical, "occurrence", event, original)

    def _check_if_match(self, instance: _Instance, if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        current = _change_key(instance)
        if _strip_etag(if_match) != current:
            raise GraphHttpError(
                self.conflict_status,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the "
                "change key passed in the request does not match the current change "
                "key for the item.",
            )

    def _patch_event(self, event: _Event, patch: dict) -> None:
        _check_transaction_id(event, patch)
        fields = dict(event.fields)
        fields.update(validate_fields(patch))
        if event.online_meeting is not None:
            # "Outlook then ignores any further changes to isOnlineMeeting, and the
            # meeting remains available online"; the provider can't change either.
            fields["isOnlineMeeting"] = True
            fields["onlineMeetingProvider"] = event.fields["onlineMeetingProvider"]
        start, end = self._times(patch, event.start, event.end)
        _check_times(start, end, fields["isAllDay"])
        recurrence = event.recurrence
        if "recurrence" in patch:
            recurrence = _parse_series(patch["recurrence"], start)
        extended = dict(event.extended)
        extended.update(
            validate_extended(patch.get("singleValueExtendedProperties") or [])
        )
        if (start, end, recurrence) != (event.start, event.end, event.recurrence):
            # Exchange drops a series' exceptions when its pattern or times change.
            event.exceptions.clear()
            event.cancelled.clear()
        shown = _exception_views(event)
        event.fields, event.start, event.end = fields, start, end
        event.recurrence, event.extended = recurrence, extended
        _enable_online_meeting(event)
        self._touch(event, self.clock(), shown)

    def _patch_instance(self, instance: _Instance, patch: dict) -> None:
        event = instance.event
        if "recurrence" in patch and patch["recurrence"] is not None:
            raise invalid("The recurrence of an occurrence can't be set.")
        _check_transaction_id(event, patch)
        overrides = validate_fields(patch, ignore=("recurrence",))
        current = instance.exception.overrides if instance.exception else {}
        merged = {**event.fields, **current, **overrides}
        start, end = self._times(patch, instance.start, instance.end)
        _check_times(start, end, merged["isAllDay"])
        if (start, end) != (instance.start, instance.end):
            _check_boundaries(event, instance.original_start, start)
        extended = validate_extended(patch.get("singleValueExtendedProperties") or [])
        exception = self._exception_for(instance, self.clock())
        exception.overrides.update(overrides)
        exception.extended.update(extended)
        exception.start, exception.end = start, end

    def _exception_for(self, instance: _Instance, now: datetime) -> _Exception:
        event, original = instance.event, instance.original_start
        exception = event.exceptions.get(original)
        if exception is None:
            exception = _Exception(
                start=instance.start,
                end=instance.end,
                overrides={},
                extended={},
                change_key="",
                modified=now,
            )
            event.exceptions[original] = exception
        exception.change_key = self._next_change_key()
        exception.modified = now
        return exception

    def _remove_event(self, mailbox: _Mailbox, event: _Event) -> None:
        del mailbox.events[event.id]
        if event.transaction_id:
            mailbox.transactions.pop(event.transaction_id, None)

    def _window_instances(
        self, mailbox: _Mailbox, low: datetime, high: datetime
    ) -> list[_Instance]:
        instances = []
        for event in mailbox.events.values():
            if event.recurrence is None:
                if _overlaps(event.start.utc, event.end.utc, low, high):
                    instances.append(_Instance(event.id, "singleInstance", event))
            else:
                instances.extend(_series_instances(event, low, high))
        return sorted(instances, key=lambda item: (item.start.utc, item.id))

    def _render(
        self,
        instance: _Instance,
        time_zone: str | None = None,
        expand_extended: Iterable[str] | str | None = None,
    ) -> dict:
        zone = self._zone(time_zone)
        event, exception = instance.event, instance.exception
        fields = {**event.fields, **(exception.overrides if exception else {})}
        rendered = {
            "@odata.etag": f'W/"{_change_key(instance)}"',
            "id": instance.id,
            "createdDateTime": format_stamp(event.created),
            "lastModifiedDateTime": format_stamp(
                exception.modified if exception else event.modified
            ),
            "changeKey": _change_key(instance),
            "categories": list(fields["categories"]),
            "transactionId": event.transaction_id,
            "originalStartTimeZone": instance.start.zone_name,
            "originalEndTimeZone": instance.end.zone_name,
            "iCalUId": _ical_uid(instance),
            "reminderMinutesBeforeStart": fields["reminderMinutesBeforeStart"],
            "isReminderOn": fields["isReminderOn"],
            "hasAttachments": False,
            "subject": fields["subject"],
            "bodyPreview": body_preview(fields["body"]),
            "importance": fields["importance"],
            "sensitivity": fields["sensitivity"],
            "isAllDay": fields["isAllDay"],
            "isCancelled": _is_cancelled(instance),
            "isOrganizer": event.is_organizer,
            "responseRequested": fields["responseRequested"],
            "seriesMasterId": event.id if instance.original_start else None,
            "showAs": fields["showAs"],
            "type": instance.kind,
            "webLink": _web_link(instance.id),
            "onlineMeetingUrl": None,
            "isOnlineMeeting": fields["isOnlineMeeting"],
            "onlineMeetingProvider": fields["onlineMeetingProvider"],
            "allowNewTimeProposals": fields["allowNewTimeProposals"],
            "isDraft": fields["isDraft"],
            "hideAttendees": fields["hideAttendees"],
            "responseStatus": _response_status(event),
            "body": dict(fields["body"]),
            "start": _render_time(instance.start, fields["isAllDay"], time_zone, zone),
            "end": _render_time(instance.end, fields["isAllDay"], time_zone, zone),
            "location": _clone(fields["location"]),
            "locations": _clone(fields["locations"]),
            "recurrence": _render_recurrence(instance),
            "attendees": _clone(fields["attendees"]),
            "organizer": {"emailAddress": dict(event.organizer)},
            "onlineMeeting": _clone(event.online_meeting),
        }
        extended = _selected_extended(instance, expand_extended)
        if extended:
            rendered["singleValueExtendedProperties"] = extended
        return rendered


PROCESSING_OPTIONS = (
    "add_organizer_to_subject",
    "delete_subject",
    "remove_private_property",
    "delete_comments",
)


def _kind(event: _Event) -> str:
    return "seriesMaster" if event.recurrence else "singleInstance"


def _occurrence_id(master_id: str, original: datetime) -> str:
    raw = base64.urlsafe_b64decode(master_id.encode("ascii"))
    seconds = int(original.timestamp()).to_bytes(8, "big", signed=True)
    return _encode_id(raw + bytes([_OCCURRENCE_MARK]) + seconds)


def _enable_online_meeting(event: _Event) -> None:
    """Give an event its online meeting once it asks for one (event resource:
    "After you set isOnlineMeeting to true, Microsoft Graph initializes
    onlineMeeting"; "After you set onlineMeetingProvider, Microsoft Graph initializes
    onlineMeeting"), with a provider the calendar allows (the calendar's default
    when none is given). With a provider the calendar does not offer there is none,
    and isOnlineMeeting is false: it is true only "if this event has online meeting
    information"."""
    fields = event.fields
    provider = fields["onlineMeetingProvider"]
    if event.online_meeting is not None or not (
        fields["isOnlineMeeting"] or provider != "unknown"
    ):
        return
    if provider == "unknown":
        provider = DEFAULT_ONLINE_MEETING_PROVIDER
    if provider not in ONLINE_MEETING_PROVIDERS:
        fields["isOnlineMeeting"] = False
        return
    fields["isOnlineMeeting"], fields["onlineMeetingProvider"] = True, provider
    event.online_meeting = _online_meeting_info(event)


def _online_meeting_info(event: _Event) -> dict:
    """An onlineMeetingInfo shaped as the documented Teams example (joinUrl,
    conferenceId, tollNumber), derived from the event id and the organizer's
    address (Tid/Oid are stand-ins, not the scenario's object ids)."""
    digest = hashlib.sha256(b"online-meeting|" + event.id.encode("ascii")).digest()
    meeting = base64.b64encode(_guid(digest).encode("ascii")).decode("ascii")
    address = event.organizer["address"].casefold()
    tenant = _guid(hashlib.sha256(address.rpartition("@")[2].encode()).digest())
    user = _guid(hashlib.sha256(address.encode()).digest())
    context = f"%7b%22Tid%22%3a%22{tenant}%22%2c%22Oid%22%3a%22{user}%22%7d"
    conference = int.from_bytes(digest[16:24], "big") % 10**9
    return {
        "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        f"{meeting}%40thread.v2/0?context={context}",
        "conferenceId": f"{conference:09d}",
        "tollNumber": _TOLL_NUMBER,
    }


def _guid(data: bytes) -> str:
    """The first 16 bytes of ``data`` written as a GUID."""
    digits = data[:16].hex()
    return "-".join(
        (digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:32])
    )


def _exception_view(event: _Event, exception: _Exception) -> tuple:
    """What an exception shows that it takes from its series: the series' fields and
    extended properties under its own, and the series' cancellation."""
    return (
        {**event.fields, **exception.overrides},
        {**event.extended, **exception.extended},
        event.is_cancelled or exception.is_cancelled,
    )


def _exception_views(event: _Event) -> dict[datetime, tuple]:
    return {
        original: _exception_view(event, exception)
        for original, exception in event.exceptions.items()
    }


def _change_key(instance: _Instance) -> str:
    if instance.exception:
        return instance.exception.change_key
    return instance.event.change_key


def _is_cancelled(instance: _Instance) -> bool:
    if instance.exception and instance.exception.is_cancelled:
        return True
    return instance.event.is_cancelled


def _ical_uid(instance: _Instance) -> str:
    uid = instance.event.ical_uid
    if instance.original_start is None:
        return uid
    # Exchange's global object id carries the original date of an occurrence in
    # bytes 16-19 (year, month, day), which makes iCalUId differ per occurrence.
    day = instance.original_start.astimezone(_series_zone(instance.event)).date()
    stamp = f"{day.year:04X}{day.month:02X}{day.day:02X}"
    return uid[:32] + stamp + uid[40:]


_URLSAFE_ID = re.compile(r"[A-Za-z0-9_=-]*")


def _web_link(item_id: str) -> str:
    # Item ids are URL-safe base64, where quote(safe="") changes only "=".
    if _URLSAFE_ID.fullmatch(item_id):
        quoted = item_id.replace("=", "%3D")
    else:
        quoted = quote(item_id, safe="")
    return (
        "https://outlook.office365.com/owa/?itemid="
        + quoted
        + "&exvsurl=1&path=/calendar/item"
    )


def _response_status(event: _Event) -> dict:
    if event.is_organizer:
        return {"response": "organizer", "time": NO_TIME}
    if event.declined:
        return {"response": "declined", "time": format_stamp(event.modified)}
    # The room's calendar attendant accepts the invitation when it books the room.
    return {"response": "accepted", "time": format_stamp(event.created)}


def _render_time(
    value: GraphTime, all_day: bool, zone_name: str | None, zone: ZoneInfo | None
) -> dict:
    if all_day:
        # All-day events are midnight to midnight in whatever zone is asked for.
        midnight = datetime.combine(value.local.date(), datetime.min.time())
        return {"dateTime": format_local(midnight), "timeZone": zone_name or "UTC"}
    return render_time(value.utc, zone_name, zone)


def _render_recurrence(instance: _Instance) -> dict | None:
    if instance.kind != "seriesMaster":
        return None
    return instance.event.recurrence.with_time_zone(
        instance.event.start.zone_name
    ).to_graph()


def _selected_extended(
    instance: _Instance, expand: Iterable[str] | str | None
) -> list[dict]:
    if expand is None:
        return []
    properties = dict(instance.event.extended)
    if instance.exception:
        properties.update(instance.exception.extended)
    wanted = None if expand == "*" else set(expand)
    return [
        {"id": prop_id, "value": value}
        for prop_id, value in properties.items()
        if not wanted or prop_id in wanted
    ]


def _matches(properties: dict[str, str], wanted: tuple[str, str]) -> bool:
    # Graph matches the property id case-sensitively and the value case-insensitively.
    prop_id, value = wanted
    found = properties.get(prop_id)
    return found is not None and found.casefold() == str(value).casefold()


def _organizer(mailbox: _Mailbox, organizer: dict | None) -> tuple[bool, dict]:
    own = {"name": mailbox.display_name, "address": mailbox.address}
    if organizer is None:
        return True, own
    if not isinstance(organizer, dict) or not isinstance(organizer.get("address"), str):
        raise invalid("The organizer must be an object with an address.")
    address = organizer["address"]
    if address.casefold() == mailbox.address.casefold():
        return True, own
    return False, {"name": organizer.get("name") or address, "address": address}


def _apply_processing(options: dict[str, bool], fields: dict, organizer: dict) -> None:
    # Exchange's resource booking attendant rewrites invitations it accepts:
    # DeleteSubject blanks the subject; AddOrganizerToSubject then sets the subject
    # to the organizer's name, or prepends that name to a kept subject.
    subject = "" if options["delete_subject"] else fields["subject"]
    if options["add_organizer_to_subject"]:
        subject = f"{organizer['name']} {subject}".strip()
    fields["subject"] = subject
    if options["remove_private_property"]:
        fields["sensitivity"] = "normal"
    if options["delete_comments"]:
        fields["body"] = {"contentType": fields["body"]["contentType"], "content": ""}


def _check_transaction_id(event: _Event, patch: dict) -> None:
    if "transactionId" in patch and patch["transactionId"] != event.transaction_id:
        raise invalid("The transactionId of an event can't be changed once it is set.")


def _check_times(start: GraphTime, end: GraphTime, all_day: bool) -> None:
    if end.utc < start.utc:
        raise invalid("The end time of an event must not be before its start time.")
    if not all_day:
        return
    midnight = all(value.local.time() == datetime.min.time() for value in (start, end))
    if not midnight or start.zone_name != end.zone_name or end.utc <= start.utc:
        raise GraphHttpError(
            400,
            "ErrorPropertyValidationError",
            "If the event is all-day (isAllDay is true), its start and end must be "
            "set to midnight, be in the same time zone, and the end must be at least "
            "one day after the start.",
        )


def _parse_series(value: object, start: GraphTime) -> PatternedRecurrence | None:
    if value is None:
        return None
    recurrence = parse_recurrence(value)
    if recurrence.range.recurrence_time_zone:
        to_zoneinfo(recurrence.range.recurrence_time_zone)
    return recurrence


def _check_boundaries(event: _Event, original: datetime, new_start: GraphTime) -> None:
    # Outlook refuses to move an occurrence onto or past the day of a neighbour.
    zone = _series_zone(event)
    previous, following = _neighbour_days(event, original.astimezone(zone).date())
    new_day = new_start.utc.astimezone(zone).date()
    if (previous and new_day <= previous) or (following and new_day >= following):
        raise GraphHttpError(
            400,
            "ErrorOccurrenceCrossingBoundary",
            "An occurrence of a recurring series can't be moved to or beyond the "
            "day of an adjacent occurrence.",
        )


def _neighbour_days(event: _Event, day: date) -> tuple[date | None, date | None]:
    previous = following = None
    for candidate in iter_dates(event.recurrence):
        if candidate < day:
            previous = candidate
        elif candidate > day:
            following = candidate
            break
    return _effective_day(event, previous), _effective_day(event, following)


def _effective_day(event: _Event, day: date | None) -> date | None:
    if day is None:
        return None
    first = _series_first_start(event)
    original = occurrence_start(day, first).astimezone(timezone.utc)
    moved = event.exceptions.get(original)
    return moved.start.utc.astimezone(first.tzinfo).date() if moved else day


def _series_instances(event: _Event, low: datetime, high: datetime) -> list[_Instance]:
    first = _series_first_start(event)
    duration = _series_duration(event)
    instances = []
    for start in expand(event.recurrence, first, duration, low, high):
        original = start.astimezone(timezone.utc)
        if original in event.cancelled or original in event.exceptions:
            continue
        occurrence_id = _occurrence_id(event.id, original)
        instances.append(_Instance(occurrence_id, "occurrence", event, original))
    for original, exception in event.exceptions.items():
        if _overlaps(exception.start.utc, exception.end.utc, low, high):
            exception_id = _occurrence_id(event.id, original)
            instances.append(
                _Instance(exception_id, "exception", event, original, exception)
            )
    return instances


# Sent with every partial object (delta_partial_updates), changed or not.
_PARTIAL_KEYS = frozenset({"@odata.type", "@odata.etag", "id", "changeKey"})


def _changes(
    baseline: dict[str, _Seen], current: list[dict], partial: bool
) -> list[dict | _Partial]:
    # An item that left the window (moved, deleted, cancelled occurrence) is reported
    # as removed, exactly like a deletion. An item whose rendering is the very object
    # the baseline holds has not changed (same version, see _window_state).
    seen = {item["id"] for item in current}
    changed: list[dict | _Partial] = []
    for item in current:
        known = baseline.get(item["id"])
        if known is None:
            changed.append(item)  # new to this delta chain: always a full object
            continue
        before = known[1]
        if before is item or _same_json(before, item):
            continue
        if partial:
            keys = {
                k
                for k, v in item.items()
                if k not in before or not _same_json(before[k], v)
            }
            changed.append(_Partial(item, frozenset(keys | _PARTIAL_KEYS)))
        else:
            changed.append(item)
    removed = [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": item_id,
            "@removed": dict(_REMOVED),
        }
        for item_id in baseline
        if item_id not in seen
    ]
    return changed + removed


def _token_text(token: object) -> str:
    """A delta token decoded (raises ValueError or UnicodeError when it is not)."""
    padded = str(token) + "=" * (-len(str(token)) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")


def _sync_state_not_found(
    generation: int, window: _SyncWindow | None
) -> GraphHttpError:
    highest = window.highest if window else 0
    kept = sorted(window.states, reverse=True) if window else []
    listed = "".join(f"[{number}]" for number in kept)
    return GraphHttpError(
        410,
        "SyncStateNotFound",
        f"The sync state generation is not found; generation={generation};"
        f"[highest={highest}]{listed}.",
    )
