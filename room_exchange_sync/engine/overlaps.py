"""Overlapping bookings in one room, for the Overlaps view.

Exchange meetings are imported even when they collide with Odoo bookings (writing into a
room mailbox with application permissions bypasses the room's auto-accept check), so
both are kept and the pairs are listed for a human.

Public API: ``Interval``, ``Overlap``, ``find_overlaps(intervals)``,
``booking_overlaps(items)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from .items import LocalItem, Origin


def _utc_naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open time span ``[start, stop)`` of one booking."""

    key: int | str
    start: datetime
    stop: datetime
    origin: Origin = Origin.ODOO

    @classmethod
    def from_local(cls, item: LocalItem) -> Interval | None:
        """Return the span of a live booking, None for cancelled or unscheduled ones."""
        if not item.is_live:
            return None
        return cls(item.booking_id, item.start, item.stop, item.origin)


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two bookings sharing ``[start, stop)``; ``first`` starts first."""

    first: Interval
    second: Interval
    start: datetime
    stop: datetime

    @property
    def is_cross_origin(self) -> bool:
        """True when an Odoo booking collides with an imported Exchange meeting."""
        return self.first.origin is not self.second.origin


def find_overlaps(intervals: Iterable[Interval]) -> tuple[Overlap, ...]:
    """Return every overlapping pair, ordered by start then key.

    Intervals that merely touch (one ends when the other starts) do not overlap; empty
    or reversed intervals are ignored. Aware datetimes are compared in UTC.
    """
    spans = [
        Interval(i.key, _utc_naive(i.start), _utc_naive(i.stop), i.origin)
        for i in intervals
    ]
    spans = sorted(
        (s for s in spans if s.start < s.stop),
        key=lambda s: (s.start, s.stop, repr(s.key)),
    )
    found: list[Overlap] = []
    active: list[Interval] = []
    for span in spans:
        active = [a for a in active if a.stop > span.start]
        for other in active:
            found.append(Overlap(other, span, span.start, min(other.stop, span.stop)))
        active.append(span)
    return tuple(found)


def booking_overlaps(items: Iterable[LocalItem]) -> tuple[Overlap, ...]:
    """Return the overlapping pairs among the live bookings of one room."""
    intervals = (Interval.from_local(item) for item in items)
    return find_overlaps(i for i in intervals if i is not None)
