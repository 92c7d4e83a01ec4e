"""Graph ``patternedRecurrence``: parsing, validation and expansion into dates.

Public API:

- ``PatternedRecurrence`` (with ``RecurrencePattern`` and ``RecurrenceRange``):
  ``parse_recurrence(data) -> PatternedRecurrence`` validates Graph JSON (raises
  ``GraphHttpError`` 400) and ``PatternedRecurrence.to_graph() -> dict`` renders it.
- ``iter_dates(recurrence) -> Iterator[date]``: the occurrence dates, in order.
- ``expand(recurrence, first_start, duration, window_start, window_end)
  -> list[datetime]``: occurrence starts (aware, in the series' zone) of the
  occurrences overlapping ``[window_start, window_end)``.

Occurrences keep their wall-clock time across DST changes: each one starts at the
series' local start time on its date, as Outlook series do.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .errors import GraphHttpError

DAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
INDEXES = ("first", "second", "third", "fourth", "last")
PATTERN_TYPES = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGE_TYPES = ("endDate", "noEnd", "numbered")
_NO_DATE = "0001-01-01"
_MAX_DATES = 200_000


@dataclass(frozen=True, slots=True)
class RecurrencePattern:
    type: str
    interval: int = 1
    days_of_week: tuple[int, ...] = ()
    first_day_of_week: int = 6
    day_of_month: int = 0
    month: int = 0
    index: str = "first"

    def to_graph(self) -> dict:
        return {
            "type": self.type,
            "interval": self.interval,
            "month": self.month,
            "dayOfMonth": self.day_of_month,
            "daysOfWeek": [DAY_NAMES[day] for day in self.days_of_week],
            "firstDayOfWeek": DAY_NAMES[self.first_day_of_week],
            "index": self.index,
        }


@dataclass(frozen=True, slots=True)
class RecurrenceRange:
    type: str
    start_date: date
    end_date: date | None = None
    number_of_occurrences: int = 0
    recurrence_time_zone: str = ""

    def to_graph(self) -> dict:
        return {
            "type": self.type,
            "startDate": self.start_date.isoformat(),
            "endDate": self.end_date.isoformat() if self.end_date else _NO_DATE,
            "recurrenceTimeZone": self.recurrence_time_zone,
            "numberOfOccurrences": self.number_of_occurrences,
        }


@dataclass(frozen=True, slots=True)
class PatternedRecurrence:
    pattern: RecurrencePattern
    range: RecurrenceRange

    def to_graph(self) -> dict:
        return {"pattern": self.pattern.to_graph(), "range": self.range.to_graph()}

    def with_time_zone(self, name: str) -> PatternedRecurrence:
        if self.range.recurrence_time_zone:
            return self
        rng = self.range
        return PatternedRecurrence(
            self.pattern,
            RecurrenceRange(
                rng.type,
                rng.start_date,
                rng.end_date,
                rng.number_of_occurrences,
                name,
            ),
        )


def invalid(message: str) -> GraphHttpError:
    return GraphHttpError(400, "ErrorInvalidRequest", message)


def parse_recurrence(data: object) -> PatternedRecurrence:
    """Validate a Graph ``patternedRecurrence`` object."""
    if not isinstance(data, dict):
        raise invalid("The recurrence must be an object with 'pattern' and 'range'.")
    pattern = _parse_pattern(data.get("pattern"))
    rng = _parse_range(data.get("range"))
    return PatternedRecurrence(pattern, rng)


def _parse_pattern(data: object) -> RecurrencePattern:
    if not isinstance(data, dict):
        raise invalid("The recurrence pattern is missing.")
    kind = data.get("type")
    if kind not in PATTERN_TYPES:
        raise invalid(f"The recurrence pattern type '{kind}' is not valid.")
    interval = _int(data, "interval", 1)
    if interval < 1 or interval > 99:
        raise invalid("The recurrence pattern interval must be between 1 and 99.")
    pattern = RecurrencePattern(
        type=kind,
        interval=interval,
        days_of_week=_days(data.get("daysOfWeek") or []),
        first_day_of_week=_day(data.get("firstDayOfWeek") or "sunday"),
        day_of_month=_int(data, "dayOfMonth", 0),
        month=_int(data, "month", 0),
        index=_index(data.get("index") or "first"),
    )
    _check_pattern(pattern)
    return pattern


def _check_pattern(pattern: RecurrencePattern) -> None:
    kind = pattern.type
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        if not pattern.days_of_week:
            raise invalid(f"A {kind} recurrence pattern needs daysOfWeek.")
    if kind in ("absoluteMonthly", "absoluteYearly"):
        if not 1 <= pattern.day_of_month <= 31:
            raise invalid(f"A {kind} recurrence pattern needs dayOfMonth 1..31.")
    if kind in ("absoluteYearly", "relativeYearly"):
        if not 1 <= pattern.month <= 12:
            raise invalid(f"A {kind} recurrence pattern needs month 1..12.")


def _parse_range(data: object) -> RecurrenceRange:
    if not isinstance(data, dict):
        raise invalid("The recurrence range is missing.")
    kind = data.get("type")
    if kind not in RANGE_TYPES:
        raise invalid(f"The recurrence range type '{kind}' is not valid.")
    start = _date(data.get("startDate"), "startDate")
    if start is None:
        raise invalid("The recurrence range needs a startDate.")
    end = _date(data.get("endDate"), "endDate")
    count = _int(data, "numberOfOccurrences", 0)
    zone = data.get("recurrenceTimeZone") or ""
    if not isinstance(zone, str):
        raise invalid("recurrenceTimeZone must be a string.")
    if kind == "endDate" and (end is None or end < start):
        raise invalid(
            "An endDate recurrence range needs an endDate on or after startDate."
        )
    if kind == "numbered" and count < 1:
        raise invalid("A numbered recurrence range needs numberOfOccurrences >= 1.")
    return RecurrenceRange(
        type=kind,
        start_date=start,
        end_date=end if kind == "endDate" else None,
        number_of_occurrences=count if kind == "numbered" else 0,
        recurrence_time_zone=zone,
    )


def _int(data: dict, key: str, default: int) -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"The recurrence property '{key}' must be an integer.")
    return value


def _day(value: object) -> int:
    if not isinstance(value, str) or value.lower() not in DAY_NAMES:
        raise invalid(f"'{value}' is not a valid day of the week.")
    return DAY_NAMES.index(value.lower())


def _days(values: object) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise invalid("daysOfWeek must be a list.")
    return tuple(sorted({_day(value) for value in values}))


def _index(value: object) -> str:
    if value not in INDEXES:
        raise invalid(f"'{value}' is not a valid week index.")
    return value


def _date(value: object, key: str) -> date | None:
    if value in (None, "", _NO_DATE):
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(f"The recurrence property '{key}' is not a valid date.") from None


def iter_dates(recurrence: PatternedRecurrence) -> Iterator[date]:
    """All occurrence dates of the series, in order, bounded by its range."""
    rng = recurrence.range
    generated = _pattern_dates(recurrence.pattern, rng.start_date)
    for count, day in enumerate(generated, start=1):
        if count > _MAX_DATES:
            return
        if rng.type == "endDate" and day > rng.end_date:
            return
        yield day
        if rng.type == "numbered" and count >= rng.number_of_occurrences:
            return


def _pattern_dates(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    generators = {
        "daily": _daily,
        "weekly": _weekly,
        "absoluteMonthly": _absolute_monthly,
        "relativeMonthly": _relative_monthly,
        "absoluteYearly": _absolute_yearly,
        "relativeYearly": _relative_yearly,
    }
    for day in generators[pattern.type](pattern, start):
        if day >= start:
            yield day


def _daily(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    day = start
    while day < date.max - timedelta(days=pattern.interval):
        yield day
        day += timedelta(days=pattern.interval)


def _weekly(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    offset = (start.weekday() - pattern.first_day_of_week) % 7
    week = start - timedelta(days=offset)
    while week.year < 9999:
        for delta in range(7):
            day = week + timedelta(days=delta)
            if day.weekday() in pattern.days_of_week:
                yield day
        week += timedelta(weeks=pattern.interval)


def _months(start: date, interval: int) -> Iterator[tuple[int, int]]:
    index = start.year * 12 + start.month - 1
    while index < 9999 * 12:
        yield divmod(index, 12)[0], divmod(index, 12)[1] + 1
        index += interval


def _absolute_monthly(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    for year, month in _months(start, pattern.interval):
        yield _clamped(year, month, pattern.day_of_month)


def _relative_monthly(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    for year, month in _months(start, pattern.interval):
        yield _nth_weekday(year, month, pattern.days_of_week, pattern.index)


def _absolute_yearly(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    for year in range(start.year, 9999, pattern.interval):
        yield _clamped(year, pattern.month, pattern.day_of_month)


def _relative_yearly(pattern: RecurrencePattern, start: date) -> Iterator[date]:
    for year in range(start.year, 9999, pattern.interval):
        yield _nth_weekday(year, pattern.month, pattern.days_of_week, pattern.index)


def _clamped(year: int, month: int, day: int) -> date:
    # Outlook puts "day 31 of every month" on the last day of shorter months.
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _nth_weekday(year: int, month: int, weekdays: tuple[int, ...], index: str) -> date:
    length = calendar.monthrange(year, month)[1]
    days = [
        date(year, month, number)
        for number in range(1, length + 1)
        if date(year, month, number).weekday() in weekdays
    ]
    return days[-1] if index == "last" else days[INDEXES.index(index)]


def expand(
    recurrence: PatternedRecurrence,
    first_start: datetime,
    duration: timedelta,
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """Starts of the occurrences overlapping ``[window_start, window_end)``.

    ``first_start`` is the series start, aware, in the series' zone; its wall-clock
    time is reused on every date. ``duration`` is a wall-clock duration.
    """
    zone = first_start.tzinfo
    last_day = window_end.astimezone(zone).date()
    starts = []
    for day in iter_dates(recurrence):
        if day > last_day:
            break
        start = occurrence_start(day, first_start)
        end = occurrence_end(start, duration)
        if start < window_end and end > window_start:
            starts.append(start)
    return starts


def occurrence_start(day: date, first_start: datetime) -> datetime:
    """The aware start of the occurrence on ``day``, at the series' wall-clock time."""
    return datetime.combine(day, first_start.timetz())


def occurrence_end(start: datetime, duration: timedelta) -> datetime:
    naive = start.replace(tzinfo=None) + duration
    return naive.replace(tzinfo=start.tzinfo)
