"""Stable hashes and identifiers the shell stores on bindings and sends to Graph.

Public API:

- ``payload_hash(payload)``: sha256 of the canonical JSON of an export payload;
- ``make_marker(database_uuid, booking_id)`` / ``parse_marker(value, database_uuid)``:
  the value of our extended property on events we create;
- ``transaction_id(database_uuid, booking_id, previous_event_id=None)`` /
  ``parse_transaction_id(value, database_uuid)``: the deterministic Graph
  ``transactionId`` of a create, which names its booking.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal

_BOOKING_MASK = (1 << 62) - 1


def _encode(value: object) -> object:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


def payload_hash(payload: Mapping[str, object]) -> str:
    """Return the hex sha256 of ``payload`` as canonical JSON (sorted keys, no spaces).

    Datetimes hash by ``isoformat()``, so pass them normalised (naive UTC, seconds).

    Raises:
        TypeError: a value is not JSON-like (str, int, float, bool, None, list, tuple,
            dict, set, datetime, date, time, Decimal, Enum).
    """
    text = json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_encode,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_marker(database_uuid: str, booking_id: int) -> str:
    """Return the marker stamped on events this database creates for ``booking_id``."""
    return f"{database_uuid}:{booking_id}"


def parse_marker(value: str | None, database_uuid: str) -> int | None:
    """Return the booking id of a marker written by this database, else None.

    Graph matches extended property values case-insensitively, so the uuid is compared
    the same way.
    """
    if not value or not database_uuid:
        return None
    prefix, sep, booking = value.rpartition(":")
    if not sep or prefix.lower() != database_uuid.lower():
        return None
    if not booking.isascii() or not booking.isdigit():
        return None
    return int(booking)


def _database_tag(database_uuid: str) -> int:
    digest = hashlib.sha256(database_uuid.lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:6], "big")


def transaction_id(
    database_uuid: str, booking_id: int, previous_event_id: str | None = None
) -> str:
    """Return the Graph ``transactionId`` for creating the event of ``booking_id``.

    A retried POST reuses it, so Graph cannot create a duplicate. A re-creation after
    the event was removed in Exchange passes the removed event's id, so it differs from
    the first create (Graph's dedupe window is undocumented). Delta rows carry
    ``transactionId`` but no extended property, so the value is a UUID that
    ``parse_transaction_id`` maps back to the booking: 48 bits of the database uuid's
    hash, 12 bits of the previous event id's hash, the version and variant bits, and the
    booking id in the low 62 bits.
    """
    salt = 0
    if previous_event_id:
        digest = hashlib.sha256(previous_event_id.encode("utf-8")).digest()
        salt = int.from_bytes(digest[:2], "big") % 0xFFF + 1
    value = (
        (_database_tag(database_uuid) << 80)
        | (salt << 64)
        | (booking_id & _BOOKING_MASK)
    )
    return str(uuid.UUID(int=value, version=5))


def parse_transaction_id(value: str | None, database_uuid: str) -> int | None:
    """Return the booking id of a ``transactionId`` made by this database, else None."""
    if not value or not database_uuid:
        return None
    try:
        number = uuid.UUID(value).int
    except ValueError:
        return None
    if number >> 80 != _database_tag(database_uuid):
        return None
    return number & _BOOKING_MASK
