"""graph/events.py (booking -> Graph event JSON -> imported values) and
graph/timezones.py (the Windows/IANA table)."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import exchange_engine
import pytest
from exchange_graph import timezones
from exchange_graph.events import (
    FULL_EVENT_PROPERTIES,
    MARKER_PROPERTY_ID,
    BookingSnapshot,
    EventDataError,
    ImportedEvent,
    booking_payload,
    is_partial_event,
    parse_event,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator.calendar_store import CalendarStore

DB_UUID = "5d6e7f80-1111-4222-8333-944455556666"
BRUSSELS = "Europe/Brussels"


def snapshot(**values):
    base = {
        "booking_id": 42,
        "start": datetime(2026, 5, 4, 7, 0),
        "stop": datetime(2026, 5, 4, 8, 30),
        "subject": "Board meeting",
        "description_html": "<p>Agenda</p>",
        "location": "Room 1",
        "organizer_name": "Ann Smith",
        "organizer_email": "ann@example.com",
    }
    base.update(values)
    return BookingSnapshot(**base)


def at(text, zone="UTC"):
    return {"dateTime": text, "timeZone": zone}


def dt(text):
    return datetime.fromisoformat(text)


def graph_event(**values):
    base = {
        "@odata.etag": 'W/"CK1"',
        "id": "AAMkEvent1",
        "changeKey": "CK1",
        "iCalUId": "040000008200E0",
        "type": "singleInstance",
        "subject": "Team sync",
        "bodyPreview": "Hello",
        "body": {"contentType": "html", "content": "<html><b>Hello</b></html>"},
        "start": {"dateTime": "2026-05-04T07:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-04T08:00:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
        "isCancelled": False,
        "sensitivity": "normal",
        "showAs": "busy",
        "organizer": {"emailAddress": {"name": "Bob", "address": "bob@example.com"}},
        "transactionId": None,
        "seriesMasterId": None,
    }
    base.update(values)
    return base


# --- time zones --------------------------------------------------------------------


@pytest.mark.parametrize(
    "iana, windows",
    [
        ("Europe/Brussels", "Romance Standard Time"),
        ("Europe/Paris", "Romance Standard Time"),
        ("Europe/Berlin", "W. Europe Standard Time"),
        ("Europe/Amsterdam", "W. Europe Standard Time"),
        ("America/New_York", "Eastern Standard Time"),
        ("America/Toronto", "Eastern Standard Time"),
        ("Asia/Kolkata", "India Standard Time"),
        ("Asia/Calcutta", "India Standard Time"),
        ("Europe/Kiev", "FLE Standard Time"),
        ("UTC", "UTC"),
        ("Etc/UTC", "UTC"),
        ("Europe/London", "GMT Standard Time"),
        ("Australia/Sydney", "AUS Eastern Standard Time"),
        ("eastern standard time", "Eastern Standard Time"),
    ],
)
def test_windows_zone(iana, windows):
    assert timezones.windows_zone(iana) == windows


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Brussels", None])
def test_windows_zone_unknown(name):
    with pytest.raises(ValueError):
        timezones.windows_zone(name)


def test_every_windows_zone_round_trips_through_its_001_zone():
    assert len(timezones.WINDOWS_ZONES) >= 139
    for windows, zones in timezones.WINDOWS_ZONES.items():
        assert timezones.windows_zone(zones[0]) == windows
        assert timezones.to_zoneinfo(windows).key == zones[0]
        assert timezones.is_windows_zone(windows)


def test_table_zones_exist_and_keep_the_windows_zone_offsets():
    # Each IANA zone must tick like the 001 zone of its Windows zone, otherwise Exchange
    # would read our wall-clock times at another instant.
    instants = [
        datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(days=d)
        for d in range(0, 3 * 365, 5)
    ]
    for zones in timezones.WINDOWS_ZONES.values():
        reference = ZoneInfo(zones[0])
        for name in zones:
            zone = timezones.to_zoneinfo(name)
            for instant in instants:
                assert (
                    instant.astimezone(zone).utcoffset()
                    == instant.astimezone(reference).utcoffset()
                ), (name, zones[0], instant)


def test_to_zoneinfo():
    assert timezones.to_zoneinfo("Romance Standard Time") == ZoneInfo("Europe/Paris")
    assert timezones.to_zoneinfo("romance standard time") == ZoneInfo("Europe/Paris")
    assert timezones.to_zoneinfo("Europe/Brussels") == ZoneInfo("Europe/Brussels")
    for bad in ("Nowhere Standard Time", "", "../etc/passwd", None):
        with pytest.raises(ValueError):
            timezones.to_zoneinfo(bad)


# --- booking_payload ---------------------------------------------------------------


def test_payload_full():
    payload = booking_payload(snapshot(), room_time_zone=BRUSSELS)
    assert payload == {
        "subject": "Board meeting",
        "body": {
            "contentType": "html",
            "content": "<p>Agenda</p>\n<p>Booked in Odoo by Ann Smith</p>",
        },
        "start": {
            "dateTime": "2026-05-04T09:00:00.0000000",
            "timeZone": "Romance Standard Time",
        },
        "end": {
            "dateTime": "2026-05-04T10:30:00.0000000",
            "timeZone": "Romance Standard Time",
        },
        "isAllDay": False,
        "sensitivity": "normal",
        "showAs": "busy",
        "isReminderOn": False,
        "responseRequested": False,
        "allowNewTimeProposals": False,
        "attendees": [],
        "location": {"displayName": "Room 1"},
    }
    assert "transactionId" not in payload


def test_payload_full_with_email_escapes_html():
    payload = booking_payload(
        snapshot(organizer_name="A <b>&", description_html=""),
        room_time_zone=BRUSSELS,
        include_organizer_email=True,
    )
    assert payload["body"]["content"] == (
        "<p>Booked in Odoo by A &lt;b&gt;&amp; (ann@example.com)</p>"
    )


def test_payload_subject_only():
    payload = booking_payload(snapshot(), room_time_zone=BRUSSELS, privacy="subject")
    assert payload["subject"] == "Board meeting"
    assert payload["body"] == {"contentType": "html", "content": ""}


def test_payload_busy_and_private():
    payload = booking_payload(
        snapshot(is_private=True), room_time_zone=BRUSSELS, privacy="busy"
    )
    assert payload["subject"] == "Busy"
    assert payload["body"]["content"] == ""
    assert payload["sensitivity"] == "private"


def test_payload_options_are_checked():
    with pytest.raises(ValueError):
        booking_payload(snapshot(), room_time_zone=BRUSSELS, privacy="secret")
    with pytest.raises(ValueError):
        booking_payload(snapshot(), room_time_zone=BRUSSELS, time_zone_names="posix")
    with pytest.raises(ValueError):
        booking_payload(snapshot(), room_time_zone="Nowhere/City")
    with pytest.raises(ValueError):
        booking_payload(
            snapshot(stop=datetime(2026, 5, 4, 6, 0)), room_time_zone=BRUSSELS
        )


def test_payload_marker_and_no_location():
    payload = booking_payload(
        snapshot(location=""), room_time_zone=BRUSSELS, marker=f"{DB_UUID}:42"
    )
    assert "location" not in payload
    assert payload["singleValueExtendedProperties"] == [
        {"id": MARKER_PROPERTY_ID, "value": f"{DB_UUID}:42"}
    ]
    assert MARKER_PROPERTY_ID.startswith("String {")
    assert MARKER_PROPERTY_ID.endswith("} Name RoomExchangeSyncMarker")


def test_payload_is_deterministic_and_hashable():
    one = booking_payload(snapshot(), room_time_zone=BRUSSELS, marker="m")
    two = booking_payload(snapshot(), room_time_zone=BRUSSELS, marker="m")
    assert one == two
    assert exchange_engine.payload_hash(one) == exchange_engine.payload_hash(two)
    other = booking_payload(
        snapshot(subject="Other"), room_time_zone=BRUSSELS, marker="m"
    )
    assert exchange_engine.payload_hash(one) != exchange_engine.payload_hash(other)


def test_payload_drops_microseconds_and_truncates_subject():
    payload = booking_payload(
        snapshot(start=datetime(2026, 5, 4, 7, 0, 0, 999999), subject="x" * 300),
        room_time_zone=BRUSSELS,
    )
    assert payload["start"]["dateTime"] == "2026-05-04T09:00:00.0000000"
    assert len(payload["subject"]) == 255


@pytest.mark.parametrize(
    "zone, windows, start_utc, local",
    [
        # Brussels springs forward on 29 March 2026 and falls back on 25 October.
        (BRUSSELS, "Romance Standard Time", "2026-03-29T07:00", "2026-03-29T09:00"),
        (BRUSSELS, "Romance Standard Time", "2026-03-28T08:00", "2026-03-28T09:00"),
        (BRUSSELS, "Romance Standard Time", "2026-10-25T08:00", "2026-10-25T09:00"),
        (BRUSSELS, "Romance Standard Time", "2026-10-24T07:00", "2026-10-24T09:00"),
        # New York: 8 March and 1 November 2026.
        (
            "America/New_York",
            "Eastern Standard Time",
            "2026-03-08T13:00",
            "2026-03-08T09:00",
        ),
        (
            "America/New_York",
            "Eastern Standard Time",
            "2026-11-01T14:00",
            "2026-11-01T09:00",
        ),
        ("Asia/Kolkata", "India Standard Time", "2026-03-29T03:30", "2026-03-29T09:00"),
    ],
)
@pytest.mark.parametrize("names", ["windows", "iana"])
def test_payload_wall_clock(zone, windows, start_utc, local, names):
    start = dt(start_utc)
    payload = booking_payload(
        snapshot(start=start, stop=start + timedelta(hours=1)),
        room_time_zone=zone,
        time_zone_names=names,
    )
    assert payload["start"] == {
        "dateTime": f"{local}:00.0000000",
        "timeZone": windows if names == "windows" else zone,
    }
    hour = int(local[11:13]) + 1
    assert payload["end"]["dateTime"] == f"{local[:11]}{hour:02d}:00:00.0000000"


def test_payload_in_the_repeated_hour_is_sent_in_utc():
    # 00:30 and 01:30 UTC on 25 October 2026 are both 02:30 in Brussels.
    payload = booking_payload(
        snapshot(
            start=datetime(2026, 10, 25, 0, 30), stop=datetime(2026, 10, 25, 1, 30)
        ),
        room_time_zone=BRUSSELS,
    )
    assert payload["start"] == {
        "dateTime": "2026-10-25T00:30:00.0000000",
        "timeZone": "UTC",
    }
    assert payload["end"] == {
        "dateTime": "2026-10-25T01:30:00.0000000",
        "timeZone": "UTC",
    }


# --- parse_event -------------------------------------------------------------------


def test_parse_single_instance():
    imported = parse_event(graph_event(), room_time_zone=BRUSSELS)
    assert imported == ImportedEvent(
        event_id="AAMkEvent1",
        change_key="CK1",
        ical_uid="040000008200E0",
        series_master_id="",
        event_type="singleInstance",
        start=datetime(2026, 5, 4, 7, 0),
        stop=datetime(2026, 5, 4, 8, 0),
        is_all_day=False,
        subject="Team sync",
        organizer_name="Bob",
        organizer_email="bob@example.com",
        is_private=False,
        is_cancelled=False,
        show_as="busy",
        transaction_id="",
        marker="",
        body_preview="Hello",
        body_html="<html><b>Hello</b></html>",
        removed=False,
    )


@pytest.mark.parametrize("kind", ["occurrence", "exception"])
def test_parse_occurrence_and_exception(kind):
    imported = parse_event(
        graph_event(type=kind, seriesMasterId="AAMkMaster"), room_time_zone=BRUSSELS
    )
    assert imported.event_type == kind
    assert imported.series_master_id == "AAMkMaster"


def test_parse_change_key_from_etag():
    event = graph_event(**{"@odata.etag": 'W/"CK9"'})
    del event["changeKey"]
    assert parse_event(event, room_time_zone=BRUSSELS).change_key == "CK9"


def test_parse_removed():
    row = {
        "@odata.type": "#microsoft.graph.event",
        "id": "AAMkGone",
        "@removed": {"reason": "deleted"},
    }
    imported = parse_event(row, room_time_zone=BRUSSELS)
    assert imported == ImportedEvent(event_id="AAMkGone", removed=True)
    assert imported.start is None


def test_parse_cancelled():
    imported = parse_event(graph_event(isCancelled=True), room_time_zone=BRUSSELS)
    assert imported.is_cancelled


@pytest.mark.parametrize("sensitivity", ["private", "confidential", "Private"])
def test_parse_private(sensitivity):
    imported = parse_event(
        graph_event(sensitivity=sensitivity),
        room_time_zone=BRUSSELS,
        private_subject="Privé",
    )
    assert imported.is_private
    assert imported.subject == "Privé"


@pytest.mark.parametrize("subject", ["", "   ", None])
def test_parse_empty_subject(subject):
    imported = parse_event(
        graph_event(subject=subject), room_time_zone=BRUSSELS, empty_subject="(none)"
    )
    assert imported.subject == "(none)"


def test_parse_long_subject_is_truncated():
    imported = parse_event(graph_event(subject="y" * 400), room_time_zone=BRUSSELS)
    assert imported.subject == "y" * 255


def test_parse_marker_and_transaction_id():
    marker = exchange_engine.make_marker(DB_UUID, 42)
    txn = exchange_engine.transaction_id(DB_UUID, 42)
    other_id = "String {00000000-0000-0000-0000-000000000001} Name Other"
    event = graph_event(
        transactionId=txn,
        singleValueExtendedProperties=[
            {"id": other_id, "value": "nope"},
            {"id": MARKER_PROPERTY_ID.upper().replace("NAME", "Name"), "value": "x"},
            {"id": MARKER_PROPERTY_ID, "value": marker},
        ],
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    # The upper-cased id differs in its property name, which is case-sensitive.
    assert imported.marker == marker
    assert imported.transaction_id == txn


def test_parse_marker_with_upper_case_guid():
    guid_upper = MARKER_PROPERTY_ID.replace(
        MARKER_PROPERTY_ID[8:44], MARKER_PROPERTY_ID[8:44].upper()
    )
    properties = [{"id": guid_upper, "value": "m"}]
    event = graph_event(singleValueExtendedProperties=properties)
    assert parse_event(event, room_time_zone=BRUSSELS).marker == "m"


def test_parse_seven_digit_fraction_keeps_the_second():
    event = graph_event(
        start={"dateTime": "2026-05-04T07:00:59.9999999", "timeZone": "UTC"},
        end={"dateTime": "2026-05-04T08:00:01.5000000", "timeZone": "UTC"},
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    assert imported.start == datetime(2026, 5, 4, 7, 0, 59)
    assert imported.stop == datetime(2026, 5, 4, 8, 0, 1)


@pytest.mark.parametrize(
    "zone, local, utc",
    [
        ("Pacific Standard Time", "2026-05-04", "2026-05-04T16:00"),
        ("America/Los_Angeles", "2026-05-04", "2026-05-04T16:00"),
        ("India Standard Time", "2026-05-04", "2026-05-04T03:30"),
        ("Romance Standard Time", "2026-03-29", "2026-03-29T07:00"),
        ("Romance Standard Time", "2026-03-28", "2026-03-28T08:00"),
        ("tokyo standard time", "2026-05-04", "2026-05-04T00:00"),
    ],
)
def test_parse_times_in_another_zone(zone, local, utc):
    # An organizer in another zone: Graph may answer in the event's own zone.
    event = graph_event(
        start=at(f"{local}T09:00:00.0000000", zone),
        end=at(f"{local}T10:00:00.0000000", zone),
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    utc = dt(utc)
    assert imported.start == utc
    assert imported.stop == utc + timedelta(hours=1)


def test_parse_explicit_offset():
    event = graph_event(
        start={"dateTime": "2026-05-04T09:00:00+02:00", "timeZone": "UTC"},
        end={"dateTime": "2026-05-04T08:00:00Z", "timeZone": "UTC"},
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    assert (imported.start, imported.stop) == (
        datetime(2026, 5, 4, 7),
        datetime(2026, 5, 4, 8),
    )


@pytest.mark.parametrize(
    "day, next_day, start, stop",
    [
        # Spring forward: the day has 23 hours.
        ("2026-03-29", "2026-03-30", "2026-03-28T23:00", "2026-03-29T22:00"),
        # Fall back: 25 hours.
        ("2026-10-25", "2026-10-26", "2026-10-24T22:00", "2026-10-25T23:00"),
        ("2026-01-10", "2026-01-12", "2026-01-09T23:00", "2026-01-11T23:00"),
    ],
)
@pytest.mark.parametrize(
    "zone", ["UTC", "Romance Standard Time", "Pacific Standard Time"]
)
def test_parse_all_day_in_the_room_zone(day, next_day, start, stop, zone):
    start, stop = dt(start), dt(stop)
    event = graph_event(
        isAllDay=True,
        start={"dateTime": f"{day}T00:00:00.0000000", "timeZone": zone},
        end={"dateTime": f"{next_day}T00:00:00.0000000", "timeZone": zone},
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    assert imported.is_all_day
    assert (imported.start, imported.stop) == (start, stop)


def test_parse_all_day_in_new_york():
    event = graph_event(
        isAllDay=True,
        start={"dateTime": "2026-03-08T00:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-03-09T00:00:00.0000000", "timeZone": "UTC"},
    )
    imported = parse_event(event, room_time_zone="America/New_York")
    assert (imported.start, imported.stop) == (
        datetime(2026, 3, 8, 5),
        datetime(2026, 3, 9, 4),
    )


EXTENDED = "singleValueExtendedProperties"


def _without(key):
    event = graph_event()
    del event[key]
    return event


@pytest.mark.parametrize(
    "event, field",
    [
        ("not a dict", "event"),
        (graph_event(id=None), "id"),
        (graph_event(id=12), "id"),
        ({"@removed": {"reason": "deleted"}}, "id"),
        (_without("start"), "start"),
        (_without("end"), "end"),
        (graph_event(start="2026-05-04T07:00:00"), "start"),
        (graph_event(start={"timeZone": "UTC"}), "start"),
        (graph_event(start=at(12)), "start"),
        (graph_event(start=at("tomorrow")), "start"),
        (graph_event(start=at("2026-02-30T07:00:00")), "start"),
        (graph_event(start=at("2026-05-04T25:00:00")), "start"),
        (graph_event(end=at("2026-05-04T08:00:00+99:00")), "end"),
        (graph_event(start=at("2026-05-04T07:00:00", "Mars")), "start"),
        (graph_event(end=at("2026-05-04T08:00:00", 1)), "end"),
        (graph_event(end=at("2026-05-04T06:00:00.0000000")), "end"),
        (graph_event(start=at("1969-12-31T23:00:00")), "start"),
        (graph_event(start=at("0001-01-01T00:00:00")), "start"),
        (graph_event(end=at("2200-01-01T00:00:00")), "end"),
        (graph_event(end=at("9999-12-31T23:59:59")), "end"),
        # In range as written, before 1970 in UTC.
        (graph_event(start=at("1970-01-01T00:30:00", "Tokyo Standard Time")), "start"),
        (graph_event(subject=["a"]), "subject"),
        (graph_event(isAllDay="true"), "isAllDay"),
        (graph_event(isCancelled=1), "isCancelled"),
        (graph_event(sensitivity=0), "sensitivity"),
        (graph_event(showAs=False), "showAs"),
        (graph_event(organizer="bob"), "organizer"),
        (graph_event(organizer={"emailAddress": "bob"}), "organizer"),
        (graph_event(organizer={"emailAddress": {"name": 3}}), "organizer"),
        (graph_event(body="<p>"), "body"),
        (graph_event(body={"content": 5}), "body"),
        (graph_event(transactionId=5), "transactionId"),
        (graph_event(type=5), "type"),
        (graph_event(singleValueExtendedProperties={}), EXTENDED),
        (graph_event(singleValueExtendedProperties=["x"]), EXTENDED),
        (
            graph_event(
                singleValueExtendedProperties=[{"id": MARKER_PROPERTY_ID, "value": 1}]
            ),
            EXTENDED,
        ),
        (
            graph_event(
                isAllDay=True,
                start=at("2026-05-04T00:00:00"),
                end=at("2026-05-04T00:00:00"),
            ),
            "end",
        ),
    ],
)
def test_parse_rejects_malformed_events(event, field):
    with pytest.raises(EventDataError) as caught:
        parse_event(event, room_time_zone=BRUSSELS)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_parse_unknown_room_time_zone():
    with pytest.raises(ValueError):
        parse_event(graph_event(), room_time_zone="Nowhere/City")


# --- round trip --------------------------------------------------------------------

ROOM_ZONES = [BRUSSELS, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2150, 1, 1)),
    minutes=st.integers(min_value=0, max_value=3 * 24 * 60),
    # What Odoo can store: no NUL, no lone surrogate (parse_event drops them).
    subject=st.text(
        st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=300,
    ).filter(lambda s: s.strip()),
    zone=st.sampled_from(ROOM_ZONES),
    names=st.sampled_from(["windows", "iana"]),
    is_private=st.booleans(),
)
def test_payload_then_parse_round_trips(
    start, minutes, subject, zone, names, is_private
):
    start = start.replace(microsecond=0)
    stop = start + timedelta(minutes=minutes)
    payload = booking_payload(
        snapshot(start=start, stop=stop, subject=subject, is_private=is_private),
        room_time_zone=zone,
        time_zone_names=names,
    )
    # What Graph echoes back: the same event, with its id.
    imported = parse_event(
        {**payload, "id": "AAMkNew"}, room_time_zone=zone, private_subject="P"
    )
    assert (imported.start, imported.stop) == (start, stop)
    assert imported.subject == ("P" if is_private else subject[:255])
    assert imported.is_private is is_private


# --- through the emulator ----------------------------------------------------------


@pytest.mark.parametrize("accept_iana", [True, False])
@pytest.mark.parametrize("read_zone", [None, "UTC", "Pacific Standard Time"])
def test_payload_through_the_emulator(accept_iana, read_zone):
    store = CalendarStore(accept_iana_time_zones=accept_iana)
    store.add_mailbox("room@example.com", display_name="Room 1")
    marker = exchange_engine.make_marker(DB_UUID, 42)
    booking = snapshot(
        start=datetime(2026, 3, 29, 7, 0), stop=datetime(2026, 3, 29, 8, 30)
    )
    payload = booking_payload(booking, room_time_zone=BRUSSELS, marker=marker)
    txn = exchange_engine.transaction_id(DB_UUID, 42)
    created, _new = store.create_event(
        "room@example.com", {**payload, "transactionId": txn}
    )
    event = store.get_event(
        "room@example.com",
        created["id"],
        time_zone=read_zone,
        expand_extended=[MARKER_PROPERTY_ID],
    )
    imported = parse_event(event, room_time_zone=BRUSSELS)
    assert (imported.start, imported.stop) == (booking.start, booking.stop)
    assert imported.subject == "Board meeting"
    assert imported.marker == marker
    assert imported.transaction_id == txn
    assert exchange_engine.parse_marker(imported.marker, DB_UUID) == 42


def test_partial_delta_items_are_told_from_full_events_and_removals():
    store = CalendarStore()
    store.add_mailbox("room@contoso.test", display_name="Room")
    event, _created = store.create_event(
        "room@contoso.test",
        {
            "subject": "Planning",
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "UTC"},
        },
    )
    assert not is_partial_event(event)
    for name in FULL_EVENT_PROPERTIES:
        assert is_partial_event({k: v for k, v in event.items() if k != name}), name
    assert is_partial_event({"id": event["id"], "subject": "Renamed"})
    assert not is_partial_event({"id": event["id"], "@removed": {"reason": "deleted"}})
    assert not is_partial_event("not an object")


def test_text_a_database_cannot_store_is_dropped_on_the_way_in():
    event = {
        "id": "AAMk-nul",
        "subject": "Board\x00 meeting\ud800",
        "start": {"dateTime": "2026-12-10T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-10T10:00:00", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "A\x00dele", "address": "a@x.test"}},
        "body": {"contentType": "html", "content": "<p>\x00x</p>"},
    }
    parsed = parse_event(event, room_time_zone="UTC")
    assert parsed.subject == "Board meeting"
    assert parsed.organizer_name == "Adele"
    assert parsed.body_html == "<p>x</p>"
    with pytest.raises(EventDataError) as caught:
        parse_event({**event, "id": "AAMk\x00"}, room_time_zone="UTC")
    assert caught.value.field == "id"
