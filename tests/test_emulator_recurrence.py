"""Tests of the emulator's time-zone table and recurrence expansion."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator.errors import GraphHttpError
from tests.emulator.recurrence import DAY_NAMES, expand, iter_dates, parse_recurrence
from tests.emulator.timezones import (
    WINDOWS_TO_IANA,
    iana_to_windows,
    to_zoneinfo,
    windows_to_iana,
)

BRUSSELS = ZoneInfo("Europe/Brussels")


def recurrence(pattern, range_):
    return parse_recurrence({"pattern": pattern, "range": range_})


def dates(rec, limit=50):
    return [day for _, day in zip(range(limit), iter_dates(rec), strict=False)]


# ----------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("UTC", "Etc/UTC"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Romance Standard Time", "Europe/Paris"),
        ("GMT Standard Time", "Europe/London"),
        ("Eastern Standard Time", "America/New_York"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Central European Standard Time", "Europe/Warsaw"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("India Standard Time", "Asia/Kolkata"),
    ],
)
def test_windows_names_map_to_iana(windows, iana):
    assert windows_to_iana(windows) == iana
    assert to_zoneinfo(windows).key == iana
    assert iana_to_windows(iana) == windows


def test_table_is_large_and_every_zone_loads():
    assert len(WINDOWS_TO_IANA) >= 60
    for name in WINDOWS_TO_IANA:
        assert to_zoneinfo(name) is not None


def test_windows_lookup_is_case_insensitive_and_aliases_resolve():
    assert to_zoneinfo("romance standard time").key == "Europe/Paris"
    assert iana_to_windows("Asia/Calcutta") == "India Standard Time"
    assert iana_to_windows("UTC") == "UTC"


def test_iana_names_are_accepted_unless_disabled():
    assert to_zoneinfo("Europe/Brussels").key == "Europe/Brussels"
    with pytest.raises(GraphHttpError) as caught:
        to_zoneinfo("Europe/Brussels", accept_iana=False)
    assert caught.value.status == 400
    assert caught.value.code == "TimeZoneNotSupportedException"


@pytest.mark.parametrize("name", ["Mars Standard Time", "", "../etc/passwd", 5, None])
def test_unknown_zones_are_400(name):
    with pytest.raises(GraphHttpError) as caught:
        to_zoneinfo(name)
    assert caught.value.status == 400
    assert "not supported" in caught.value.message


# ----------------------------------------------------------------- patterns


def test_daily_numbered():
    rec = recurrence(
        {"type": "daily", "interval": 2},
        {"type": "numbered", "startDate": "2026-03-01", "numberOfOccurrences": 4},
    )
    assert dates(rec) == [date(2026, 3, d) for d in (1, 3, 5, 7)]


def test_weekly_multiple_days_interval_and_first_day_of_week():
    rec = recurrence(
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["monday", "thursday"],
            "firstDayOfWeek": "sunday",
        },
        {"type": "endDate", "startDate": "2026-03-04", "endDate": "2026-03-31"},
    )
    assert dates(rec) == [
        date(2026, 3, 5),
        date(2026, 3, 16),
        date(2026, 3, 19),
        date(2026, 3, 30),
    ]


def test_weekly_first_day_of_week_changes_which_weeks_count():
    pattern = {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "monday"]}
    range_ = {"type": "numbered", "startDate": "2026-03-01", "numberOfOccurrences": 4}
    sunday_first = recurrence({**pattern, "firstDayOfWeek": "sunday"}, range_)
    monday_first = recurrence({**pattern, "firstDayOfWeek": "monday"}, range_)
    assert dates(sunday_first) == [
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 15),
        date(2026, 3, 16),
    ]
    assert dates(monday_first) == [
        date(2026, 3, 1),
        date(2026, 3, 9),
        date(2026, 3, 15),
        date(2026, 3, 23),
    ]


def test_absolute_monthly_clamps_to_month_end():
    rec = recurrence(
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        {"type": "numbered", "startDate": "2026-01-31", "numberOfOccurrences": 4},
    )
    assert dates(rec) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]


def test_absolute_monthly_skips_days_before_start():
    rec = recurrence(
        {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 10},
        {"type": "endDate", "startDate": "2026-01-15", "endDate": "2026-12-31"},
    )
    assert dates(rec) == [date(2026, 4, 10), date(2026, 7, 10), date(2026, 10, 10)]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ("first", [date(2026, 3, 2), date(2026, 4, 6)]),
        ("second", [date(2026, 3, 9), date(2026, 4, 13)]),
        ("fourth", [date(2026, 3, 23), date(2026, 4, 27)]),
        ("last", [date(2026, 3, 30), date(2026, 4, 27)]),
    ],
)
def test_relative_monthly(index, expected):
    rec = recurrence(
        {"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": index},
        {"type": "numbered", "startDate": "2026-03-01", "numberOfOccurrences": 2},
    )
    assert dates(rec) == expected


def test_relative_monthly_with_several_days_picks_among_them():
    rec = recurrence(
        {
            "type": "relativeMonthly",
            "daysOfWeek": ["saturday", "sunday"],
            "index": "first",
        },
        {"type": "numbered", "startDate": "2026-03-01", "numberOfOccurrences": 2},
    )
    assert dates(rec) == [date(2026, 3, 1), date(2026, 4, 4)]


def test_yearly_patterns():
    absolute = recurrence(
        {"type": "absoluteYearly", "month": 2, "dayOfMonth": 29},
        {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 3},
    )
    assert dates(absolute) == [date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29)]
    relative = recurrence(
        {
            "type": "relativeYearly",
            "month": 11,
            "daysOfWeek": ["thursday"],
            "index": "fourth",
        },
        {"type": "numbered", "startDate": "2026-01-01", "numberOfOccurrences": 2},
    )
    assert dates(relative) == [date(2026, 11, 26), date(2027, 11, 25)]


def test_no_end_is_unbounded():
    rec = recurrence(
        {"type": "daily", "interval": 1},
        {"type": "noEnd", "startDate": "2026-01-01"},
    )
    assert len(dates(rec, limit=1000)) == 1000


def test_to_graph_round_trip():
    data = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": ["friday", "monday"],
            "firstDayOfWeek": "monday",
        },
        "range": {
            "type": "endDate",
            "startDate": "2026-03-02",
            "endDate": "2026-06-01",
        },
    }
    rendered = parse_recurrence(data).to_graph()
    assert rendered["pattern"]["daysOfWeek"] == ["monday", "friday"]
    assert rendered["pattern"]["firstDayOfWeek"] == "monday"
    assert rendered["range"]["endDate"] == "2026-06-01"
    assert rendered["range"]["numberOfOccurrences"] == 0
    assert parse_recurrence(rendered) == parse_recurrence(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {
            "pattern": {"type": "hourly"},
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {
            "pattern": {"type": "weekly"},
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {
            "pattern": {"type": "daily", "interval": 0},
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {
            "pattern": {"type": "daily", "interval": "2"},
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {
            "pattern": {"type": "absoluteMonthly"},
            "range": {"type": "noEnd", "startDate": "x"},
        },
        {
            "pattern": {"type": "daily"},
            "range": {"type": "endDate", "startDate": "2026-01-02"},
        },
        {
            "pattern": {"type": "daily"},
            "range": {
                "type": "endDate",
                "startDate": "2026-01-02",
                "endDate": "2026-01-01",
            },
        },
        {
            "pattern": {"type": "daily"},
            "range": {"type": "numbered", "startDate": "2026-01-02"},
        },
        {
            "pattern": {"type": "weekly", "daysOfWeek": ["funday"]},
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {
            "pattern": {
                "type": "relativeMonthly",
                "daysOfWeek": ["monday"],
                "index": "fifth",
            },
            "range": {"type": "noEnd", "startDate": "2026-01-01"},
        },
        {"pattern": {"type": "daily"}},
    ],
)
def test_invalid_recurrences_are_400(data):
    with pytest.raises(GraphHttpError) as caught:
        parse_recurrence(data)
    assert caught.value.status == 400


# ----------------------------------------------------------------- expansion


def test_expansion_keeps_wall_clock_time_across_dst():
    rec = recurrence(
        {"type": "daily", "interval": 1},
        {"type": "noEnd", "startDate": "2026-03-27"},
    )
    first = datetime(2026, 3, 27, 9, 0, tzinfo=BRUSSELS)
    starts = expand(
        rec,
        first,
        timedelta(hours=1),
        datetime(2026, 3, 27, tzinfo=timezone.utc),
        datetime(2026, 3, 31, tzinfo=timezone.utc),
    )
    utc_hours = [start.astimezone(timezone.utc).hour for start in starts]
    assert [start.hour for start in starts] == [9, 9, 9, 9]
    assert utc_hours == [8, 8, 7, 7]


def test_expansion_is_limited_to_the_window_and_includes_overlaps():
    rec = recurrence(
        {"type": "daily", "interval": 1},
        {"type": "noEnd", "startDate": "2020-01-01"},
    )
    first = datetime(2020, 1, 1, 23, 0, tzinfo=timezone.utc)
    starts = expand(
        rec,
        first,
        timedelta(hours=2),
        datetime(2026, 5, 2, 0, 30, tzinfo=timezone.utc),
        datetime(2026, 5, 3, 0, 0, tzinfo=timezone.utc),
    )
    assert starts == [
        datetime(2026, 5, 1, 23, 0, tzinfo=timezone.utc),
        datetime(2026, 5, 2, 23, 0, tzinfo=timezone.utc),
    ]


# ----------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    days=st.sets(st.sampled_from(DAY_NAMES), min_size=1),
    interval=st.integers(min_value=1, max_value=4),
    count=st.integers(min_value=1, max_value=30),
    first_day=st.sampled_from(DAY_NAMES),
)
def test_weekly_numbered_properties(start, days, interval, count, first_day):
    rec = recurrence(
        {
            "type": "weekly",
            "interval": interval,
            "daysOfWeek": sorted(days),
            "firstDayOfWeek": first_day,
        },
        {
            "type": "numbered",
            "startDate": start.isoformat(),
            "numberOfOccurrences": count,
        },
    )
    found = dates(rec, limit=100)
    assert len(found) == count
    assert found == sorted(set(found))
    assert found[0] >= start
    assert all(DAY_NAMES[day.weekday()] in days for day in found)
    week_start = DAY_NAMES.index(first_day)
    weeks = {(day - timedelta(days=(day.weekday() - week_start) % 7)) for day in found}
    first_week = min(weeks)
    assert all((week - first_week).days % (7 * interval) == 0 for week in weeks)


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(sorted(WINDOWS_TO_IANA)),
    hour=st.integers(min_value=0, max_value=23),
)
def test_expansion_wall_clock_is_stable_in_every_zone(zone, hour):
    tz = to_zoneinfo(zone)
    rec = recurrence(
        {"type": "daily", "interval": 7},
        {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 52},
    )
    first = datetime(2026, 1, 5, hour, 30, tzinfo=tz)
    starts = expand(
        rec,
        first,
        timedelta(minutes=30),
        datetime(2025, 12, 1, tzinfo=timezone.utc),
        datetime(2027, 2, 1, tzinfo=timezone.utc),
    )
    assert len(starts) == 52
    assert {(start.hour, start.minute) for start in starts} == {(hour, 30)}
