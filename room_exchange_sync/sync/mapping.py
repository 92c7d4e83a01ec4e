# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What of a booking its Exchange event shows: the mapping, in one place.

Each ``Exported`` entry names one value of the event's snapshot, how a round reads
it in SQL (for thousands of bookings at once) and from a record (one booking), and
the booking fields whose change must reach Exchange. The snapshot is built from
either by ``snapshot()``; the event JSON from the snapshot by the booking's
``_exchange_event_payload`` hook. Adding an exported value is one entry here (or in
``resource.booking._exchange_exported`` of another addon, with its payload hook).

The cache of payload summaries is keyed by the snapshot itself and the room's
settings: a value that is mapped is part of the key, so its change is never missed.
"""

import collections
import dataclasses
import hashlib
import threading
from collections.abc import Callable
from datetime import datetime

from ..graph import BookingSnapshot


@dataclasses.dataclass(frozen=True)
class Exported:
    """One value of a booking that its event shows.

    ``sql`` reads it over ``booking`` (resource_booking), ``partner`` (the booker's
    partner) and ``meeting`` (its calendar_event); ``read`` from a booking record;
    ``fields``: the booking fields whose change must reach Exchange."""

    key: str
    sql: str
    read: Callable
    fields: tuple[str, ...] = ()


EXPORTED = (
    Exported("start", "booking.start", lambda b: b.start, ("start", "duration")),
    Exported("stop", "booking.stop", lambda b: b.stop, ("stop",)),
    # A booking without a name of its own shows its display name (from its type).
    Exported("subject", "booking.name", lambda b: b.name, ("name", "type_id")),
    Exported(
        "description_html",
        "booking.description",
        lambda b: b.description,
        ("description",),
    ),
    Exported("location", "booking.location", lambda b: b.location, ("location",)),
    Exported("organizer_name", "partner.name", lambda b: b.user_id.name, ("user_id",)),
    Exported("organizer_email", "partner.email", lambda b: b.user_id.email),
    Exported(
        "is_private",
        "meeting.privacy = 'private'",
        lambda b: b.meeting_id.privacy == "private",
        ("meeting_id",),
    ),
)
# Fields that decide whether a booking holds its room at all (in or out of Exchange).
SCOPE_FIELDS = frozenset({"active", "combination_id"})


def exported_fields(exported) -> frozenset:
    """The booking fields whose change must reach Exchange."""
    return SCOPE_FIELDS.union(*(entry.fields for entry in exported))


@dataclasses.dataclass(frozen=True)
class PayloadSettings:
    """What every event payload of a room is made of besides its booking."""

    room_tz: str
    privacy_mode: str
    include_organizer_email: bool
    time_zone_names: str
    database_uuid: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A booking as its event shows it: ``booking`` (graph's BookingSnapshot),
    where it was made (``origin``), and the values of the entries another addon
    adds to the mapping (``extra``, pairs of key and value)."""

    booking: BookingSnapshot
    origin: str
    extra: tuple = ()


_SNAPSHOT_KEYS = {field.name for field in dataclasses.fields(BookingSnapshot)}


def snapshot(values, origin, exported, now: datetime, display_name) -> Snapshot:
    """The snapshot of a booking from its ``values`` ({key: value} of the mapping's
    entries and ``id``; a row or a record, read the same way). ``display_name(id)``
    names a booking without a name of its own; an unscheduled booking shows ``now``.
    """
    booking_id = values["id"]
    known = {
        "booking_id": booking_id,
        "start": values["start"] or now,
        "stop": values["stop"] or now,
        "subject": values["subject"] or display_name(booking_id) or "",
        "description_html": str(values["description_html"] or ""),
        "location": values["location"] or "",
        "organizer_name": values["organizer_name"] or "",
        "organizer_email": values["organizer_email"] or "",
        "is_private": bool(values["is_private"]),
    }
    extra = tuple(
        (entry.key, values[entry.key])
        for entry in exported
        if entry.key not in _SNAPSHOT_KEYS
    )
    return Snapshot(BookingSnapshot(**known), origin, extra)


def record_values(booking, exported) -> dict:
    """The mapping's values of a booking record (as a round's row holds them)."""
    return {"id": booking.id, **{entry.key: entry.read(booking) for entry in exported}}


class _BoundedCache:
    """A dict keeping its ``size`` most recently stored entries (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._entries.get(key)

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


# (payload hash, subject, private) of an event by its snapshot and room settings.
SUMMARIES = _BoundedCache(20000)


def summary_key(settings: PayloadSettings, snap: Snapshot) -> bytes:
    """The cache key of a snapshot's summary: everything its payload is made of."""
    return hashlib.blake2b(repr((settings, snap)).encode(), digest_size=16).digest()
