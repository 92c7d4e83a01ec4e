"""Tests of the emulator's calendar store: events, series, calendarView and delta."""

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator.calendar_store import CalendarStore, DeltaPage
from tests.emulator.errors import GraphHttpError

ROOM = "Room.A@contoso.test"
UTC = timezone.utc
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name OdooBookingId"
WINDOW = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


class FakeClock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)

    def __call__(self):
        return self.now

    def tick(self, seconds=1):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(clock):
    store = CalendarStore(clock=clock)
    store.add_mailbox(ROOM, display_name="Room A")
    return store


def payload(start, end, zone="UTC", **extra):
    return {
        "subject": "Meeting",
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def weekly(start_date, count, zone="Romance Standard Time", days=("monday",)):
    return {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": list(days)},
        "range": {
            "type": "numbered",
            "startDate": start_date,
            "numberOfOccurrences": count,
        },
    }


def create(store, *args, **kwargs):
    event, created = store.create_event(ROOM, payload(*args, **kwargs))
    assert created
    return event


def create_series(store, count=4, zone="Romance Standard Time"):
    body = payload(
        "2026-03-23T09:00:00",
        "2026-03-23T10:00:00",
        zone,
        recurrence=weekly("2026-03-23", count),
    )
    master, _ = store.create_event(ROOM, body)
    return master


def view(store, window=WINDOW, **kwargs):
    return store.calendar_view(ROOM, *window, **kwargs)


def raises(status, code=None):
    class Checker:
        def __enter__(self):
            self.context = pytest.raises(GraphHttpError)
            self.info = self.context.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.context.__exit__(*exc)
            assert self.info.value.status == status, self.info.value
            if code:
                assert self.info.value.code == code, self.info.value
            return handled

    return Checker()


def full_round(store, **kwargs):
    pages = [store.delta_page(ROOM, start=WINDOW[0], end=WINDOW[1], **kwargs)]
    while pages[-1].next_token:
        pages.append(store.delta_page(ROOM, token=pages[-1].next_token, **kwargs))
    return pages


def items(pages):
    return [item for page in pages for item in page.value]


# ----------------------------------------------------------------- mailboxes


def test_mailboxes_are_case_insensitive_and_calendar_info(store):
    assert store.has_mailbox("room.a@CONTOSO.test")
    assert not store.has_mailbox("other@contoso.test")
    info = store.calendar_info("ROOM.A@contoso.test")
    assert info["name"] == "Calendar"
    assert info["isDefaultCalendar"] is True
    assert info["canEdit"] is True
    assert info["owner"] == {"name": "Room A", "address": ROOM}
    assert info["id"] == store.calendar_info(ROOM)["id"]
    assert info["id"].endswith("=")
    for key in ("color", "changeKey", "canShare", "canViewPrivateItems"):
        assert key in info


def test_unknown_mailbox_is_404(store):
    with raises(404):
        store.calendar_info("nobody@contoso.test")
    with raises(404):
        store.create_event("nobody@contoso.test", payload("2026-03-02", "2026-03-03"))


# ----------------------------------------------------------------- CRUD


def test_create_renders_graph_event(store, clock):
    event = create(
        store,
        "2026-03-02T09:00:00",
        "2026-03-02T10:30:00",
        body={"contentType": "html", "content": "<p>Hello&nbsp;<b>there</b></p>"},
        categories=["Blue"],
        attendees=[{"emailAddress": {"address": "ann@contoso.test", "name": "Ann"}}],
        location={"displayName": "Room A"},
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+=", event["id"])
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["createdDateTime"] == "2026-03-01T08:00:00.1234560Z"
    assert event["lastModifiedDateTime"] == event["createdDateTime"]
    assert event["start"] == {
        "dateTime": "2026-03-02T09:00:00.0000000",
        "timeZone": "UTC",
    }
    assert event["end"] == {
        "dateTime": "2026-03-02T10:30:00.0000000",
        "timeZone": "UTC",
    }
    assert event["originalStartTimeZone"] == "UTC"
    assert event["type"] == "singleInstance"
    assert event["seriesMasterId"] is None
    assert event["recurrence"] is None
    assert event["transactionId"] is None
    assert event["showAs"] == "busy"
    assert event["sensitivity"] == "normal"
    assert event["importance"] == "normal"
    assert event["isCancelled"] is False
    assert event["isOrganizer"] is True
    assert event["organizer"] == {"emailAddress": {"name": "Room A", "address": ROOM}}
    assert event["responseStatus"]["response"] == "organizer"
    assert event["bodyPreview"] == "Hello there"
    assert event["categories"] == ["Blue"]
    assert event["attendees"][0]["type"] == "required"
    assert event["attendees"][0]["status"]["response"] == "none"
    assert event["location"]["displayName"] == "Room A"
    assert event["locations"][0]["displayName"] == "Room A"
    assert event["iCalUId"].startswith("040000008200E00074C5B7101A82E008")
    assert "singleValueExtendedProperties" not in event
    assert store.get_event(ROOM, event["id"]) == event


def test_get_unknown_and_malformed_ids(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    store.delete_event(ROOM, event["id"])
    with raises(404, "ErrorItemNotFound"):
        store.get_event(ROOM, event["id"])
    with raises(400, "ErrorInvalidIdMalformed"):
        store.get_event(ROOM, "not-an-id")


def test_ids_are_per_mailbox(store):
    store.add_mailbox("room.b@contoso.test", display_name="Room B")
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    with raises(404):
        store.get_event("room.b@contoso.test", event["id"])


def test_update_bumps_change_key_and_keeps_other_fields(store, clock):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00", showAs="free")
    clock.tick(60)
    updated = store.update_event(ROOM, event["id"], {"subject": "Renamed"})
    assert updated["subject"] == "Renamed"
    assert updated["showAs"] == "free"
    assert updated["start"] == event["start"]
    assert updated["id"] == event["id"]
    assert updated["changeKey"] != event["changeKey"]
    assert updated["@odata.etag"] == f'W/"{updated["changeKey"]}"'
    assert updated["lastModifiedDateTime"] == "2026-03-01T08:01:00.1234560Z"
    assert updated["createdDateTime"] == event["createdDateTime"]


def test_if_match_accepts_weak_etag_or_bare_change_key(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    first = store.update_event(
        ROOM, event["id"], {"subject": "a"}, if_match=event["@odata.etag"]
    )
    second = store.update_event(
        ROOM, event["id"], {"subject": "b"}, if_match=first["changeKey"]
    )
    with raises(412, "ErrorIrresolvableConflict") as caught:
        store.update_event(
            ROOM, event["id"], {"subject": "c"}, if_match=event["@odata.etag"]
        )
    assert "change key" in caught.value.message
    with raises(412):
        store.delete_event(ROOM, event["id"], if_match=first["@odata.etag"])
    assert store.get_event(ROOM, event["id"])["subject"] == "b"
    store.delete_event(ROOM, event["id"], if_match=second["@odata.etag"])


def test_conflict_status_is_configurable(clock):
    store = CalendarStore(clock=clock, conflict_status=409)
    store.add_mailbox(ROOM, display_name="Room A")
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    with raises(409, "ErrorIrresolvableConflict"):
        store.update_event(ROOM, event["id"], {"subject": "x"}, if_match='W/"old"')


def test_delete(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    store.delete_event(ROOM, event["id"])
    assert store.list_events(ROOM) == []
    with raises(404):
        store.delete_event(ROOM, event["id"])


def test_patch_times_and_zone(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    updated = store.update_event(
        ROOM,
        event["id"],
        {
            "start": {
                "dateTime": "2026-03-02T11:00:00",
                "timeZone": "Tokyo Standard Time",
            }
        },
    )
    assert updated["start"]["dateTime"] == "2026-03-02T02:00:00.0000000"
    assert updated["originalStartTimeZone"] == "Tokyo Standard Time"
    assert updated["end"]["dateTime"] == "2026-03-02T10:00:00.0000000"


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "no times"},
        payload("2026-03-02T10:00:00", "2026-03-02T09:00:00"),
        payload(
            "2026-03-02T09:00:00", "2026-03-02T10:00:00", zone="Mars Standard Time"
        ),
        payload("2026-13-02T09:00:00", "2026-03-02T10:00:00"),
        payload("yesterday", "2026-03-02T10:00:00"),
        {**payload("2026-03-02T09:00", "2026-03-02T10:00"), "start": "2026-03-02"},
        payload("2026-03-02T09:00", "2026-03-02T10:00", subject=5),
        payload("2026-03-02T09:00", "2026-03-02T10:00", showAs="maybe"),
        payload("2026-03-02T09:00", "2026-03-02T10:00", isAllDay="yes"),
        payload("2026-03-02T09:00", "2026-03-02T10:00", body="text"),
        payload("2026-03-02T09:00", "2026-03-02T10:00", categories="Blue"),
        payload(
            "2026-03-02T09:00", "2026-03-02T10:00", attendees=[{"emailAddress": 1}]
        ),
        payload("2026-03-02T09:00", "2026-03-02T10:00", transactionId=12),
        payload("2026-03-02T09:00", "2026-03-02T10:00", favouriteColour="red"),
        payload("2026-03-02T09:00", "2026-03-02T10:00", recurrence={"pattern": {}}),
        payload(
            "2026-03-02T09:00",
            "2026-03-02T10:00",
            singleValueExtendedProperties=[{"id": PROP, "value": 3}],
        ),
        payload(
            "2026-03-02T09:00",
            "2026-03-02T10:00",
            singleValueExtendedProperties=[{"id": "nope", "value": "x"}],
        ),
        "not a dict",
    ],
)
def test_bad_input_is_400(store, body):
    with raises(400):
        store.create_event(ROOM, body)
    assert store.list_events(ROOM) == []


def test_unknown_property_uses_odata_code(store):
    with raises(400, "RequestBodyRead"):
        store.create_event(ROOM, payload("2026-03-02", "2026-03-03", foo=1))


def test_read_only_properties_are_ignored(store):
    event = create(
        store,
        "2026-03-02T09:00:00",
        "2026-03-02T10:00:00",
        id="forged",
        changeKey="x",
        isOrganizer=False,
    )
    assert event["id"] != "forged"
    assert event["isOrganizer"] is True


def test_dates_accept_seven_digit_fractions_offsets_and_dates(store):
    event = create(store, "2026-03-02T09:00:00.1234567", "2026-03-02T11:00:00+01:00")
    assert event["start"]["dateTime"] == "2026-03-02T09:00:00.1234560"
    assert event["end"]["dateTime"] == "2026-03-02T10:00:00.0000000"
    day = create(store, "2026-03-03", "2026-03-04")
    assert day["start"]["dateTime"] == "2026-03-03T00:00:00.0000000"


def test_iana_input_can_be_refused(clock):
    store = CalendarStore(clock=clock, accept_iana_time_zones=False)
    store.add_mailbox(ROOM, display_name="Room A")
    with raises(400, "TimeZoneNotSupportedException"):
        store.create_event(
            ROOM, payload("2026-03-02T09:00", "2026-03-02T10:00", "Europe/Paris")
        )
    create(store, "2026-03-02T09:00", "2026-03-02T10:00", "Romance Standard Time")


# ----------------------------------------------------------------- all day


def test_all_day_event_renders_midnight_to_midnight_in_any_zone(store):
    event = create(
        store,
        "2026-03-02T00:00:00",
        "2026-03-03T00:00:00",
        "Pacific Standard Time",
        isAllDay=True,
    )
    assert event["start"] == {
        "dateTime": "2026-03-02T00:00:00.0000000",
        "timeZone": "UTC",
    }
    assert event["end"]["dateTime"] == "2026-03-03T00:00:00.0000000"
    local = store.get_event(ROOM, event["id"], time_zone="Tokyo Standard Time")
    assert local["start"] == {
        "dateTime": "2026-03-02T00:00:00.0000000",
        "timeZone": "Tokyo Standard Time",
    }


@pytest.mark.parametrize(
    ("start", "end", "end_zone"),
    [
        ("2026-03-02T09:00:00", "2026-03-03T00:00:00", "UTC"),
        ("2026-03-02T00:00:00", "2026-03-02T12:00:00", "UTC"),
        ("2026-03-02T00:00:00", "2026-03-02T00:00:00", "UTC"),
        ("2026-03-02T00:00:00", "2026-03-03T00:00:00", "Tokyo Standard Time"),
    ],
)
def test_all_day_validation(store, start, end, end_zone):
    body = payload(start, end, isAllDay=True)
    body["end"]["timeZone"] = end_zone
    with raises(400, "ErrorPropertyValidationError"):
        store.create_event(ROOM, body)


def test_all_day_validation_on_patch(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    with raises(400):
        store.update_event(ROOM, event["id"], {"isAllDay": True})
    updated = store.update_event(
        ROOM,
        event["id"],
        {
            "isAllDay": True,
            "start": {"dateTime": "2026-03-02", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-03", "timeZone": "UTC"},
        },
    )
    assert updated["isAllDay"] is True


# ----------------------------------------------------------------- time zones


def test_dst_rendering_brussels(store):
    march = create(
        store, "2026-03-28T09:00:00", "2026-03-28T10:00:00", "Europe/Brussels"
    )
    after = create(
        store, "2026-03-29T09:00:00", "2026-03-29T10:00:00", "Europe/Brussels"
    )
    october = create(
        store, "2026-10-25T09:00:00", "2026-10-25T10:00:00", "Romance Standard Time"
    )
    assert march["start"]["dateTime"] == "2026-03-28T08:00:00.0000000"
    assert after["start"]["dateTime"] == "2026-03-29T07:00:00.0000000"
    assert october["start"]["dateTime"] == "2026-10-25T08:00:00.0000000"
    assert march["originalStartTimeZone"] == "Europe/Brussels"
    for event in (march, after, october):
        local = store.get_event(ROOM, event["id"], time_zone="Europe/Brussels")
        assert local["start"]["dateTime"].endswith("T09:00:00.0000000")
        assert local["start"]["timeZone"] == "Europe/Brussels"
    pacific = store.get_event(ROOM, after["id"], time_zone="Pacific Standard Time")
    assert pacific["start"] == {
        "dateTime": "2026-03-29T00:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }


def test_unknown_requested_zone_is_400(store):
    event = create(store, "2026-03-02T09:00:00", "2026-03-02T10:00:00")
    with raises(400, "TimeZoneNotSupportedException"):
        store.get_event(ROOM, event["id"], time_zone="Nowhere")
    with raises(400):
        view(store, time_zone="Nowhere")


# ----------------------------------------------------------------- transactionId


def test_transaction_id_dedupe(store):
    body = payload("2026-03-02T09:00", "2026-03-02T10:00", transactionId="tx-1")
    first, created = store.create_event(ROOM, body)
    again, created_again = store.create_event(ROOM, {**body, "subject": "retry"})
    assert created and not created_again
    assert again["id"] == first["id"]
    assert again["subject"] == "Meeting"
    assert again["transactionId"] == "tx-1"
    assert len(store.list_events(ROOM)) == 1
    assert store.transaction_id_duplicate_status == 201


def test_transaction_id_is_per_calendar_and_freed_by_delete(store):
    store.add_mailbox("room.b@contoso.test", display_name="Room B")
    body = payload("2026-03-02T09:00", "2026-03-02T10:00", transactionId="tx-1")
    first, _ = store.create_event(ROOM, body)
    _, created_elsewhere = store.create_event("room.b@contoso.test", body)
    assert created_elsewhere
    store.delete_event(ROOM, first["id"])
    _, created_again = store.create_event(ROOM, body)
    assert created_again


def test_duplicate_status_is_configurable(clock):
    store = CalendarStore(clock=clock, transaction_id_duplicate_status=200)
    assert store.transaction_id_duplicate_status == 200


def test_transaction_id_cannot_change(store):
    body = payload("2026-03-02T09:00", "2026-03-02T10:00", transactionId="tx-1")
    event, _ = store.create_event(ROOM, body)
    store.update_event(ROOM, event["id"], {"transactionId": "tx-1", "subject": "ok"})
    with raises(400):
        store.update_event(ROOM, event["id"], {"transactionId": "tx-2"})
    plain = create(store, "2026-03-03T09:00", "2026-03-03T10:00")
    with raises(400):
        store.update_event(ROOM, plain["id"], {"transactionId": "tx-3"})


# ----------------------------------------------------------------- extended properties


def test_extended_properties_expand_and_filter(store):
    other = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Other"
    tagged = create(
        store,
        "2026-03-02T09:00",
        "2026-03-02T10:00",
        singleValueExtendedProperties=[
            {"id": PROP, "value": "Booking-42"},
            {"id": other, "value": "x"},
        ],
    )
    create(store, "2026-03-03T09:00", "2026-03-03T10:00")
    assert "singleValueExtendedProperties" not in tagged
    found = store.list_events(ROOM, extended_filter=(PROP, "booking-42"))
    assert [event["id"] for event in found] == [tagged["id"]]
    assert "singleValueExtendedProperties" not in found[0]
    assert store.list_events(ROOM, extended_filter=(PROP.lower(), "Booking-42")) == []
    assert store.list_events(ROOM, extended_filter=(PROP, "Booking-43")) == []
    one = store.get_event(ROOM, tagged["id"], expand_extended=[PROP])
    assert one["singleValueExtendedProperties"] == [{"id": PROP, "value": "Booking-42"}]
    every = store.get_event(ROOM, tagged["id"], expand_extended="*")
    assert len(every["singleValueExtendedProperties"]) == 2
    assert (
        len(
            store.get_event(ROOM, tagged["id"], expand_extended=[])[
                "singleValueExtendedProperties"
            ]
        )
        == 2
    )
    listed = store.list_events(ROOM, expand_extended=[PROP])
    assert "singleValueExtendedProperties" in listed[0]
    assert "singleValueExtendedProperties" not in listed[1]


def test_extended_properties_patch_replaces_value(store):
    event = create(
        store,
        "2026-03-02T09:00",
        "2026-03-02T10:00",
        singleValueExtendedProperties=[{"id": PROP, "value": "1"}],
    )
    store.update_event(
        ROOM,
        event["id"],
        {"singleValueExtendedProperties": [{"id": PROP, "value": "2"}]},
    )
    assert store.list_events(ROOM, extended_filter=(PROP, "2"))
    assert not store.list_events(ROOM, extended_filter=(PROP, "1"))


def test_list_events_top_and_order(store):
    ids = [
        create(store, f"2026-03-0{day}T09:00", f"2026-03-0{day}T10:00")["id"]
        for day in (5, 2, 3)
    ]
    assert [event["id"] for event in store.list_events(ROOM)] == ids
    assert len(store.list_events(ROOM, top=2)) == 2


# ----------------------------------------------------------------- processing options


def invite(store, **options):
    store.set_processing_options(ROOM, **options)
    body = payload(
        "2026-03-02T09:00",
        "2026-03-02T10:00",
        subject="Budget",
        sensitivity="private",
        body={"contentType": "text", "content": "agenda"},
    )
    event, _ = store.create_event(
        ROOM, body, organizer={"name": "Ann Lee", "address": "ann@contoso.test"}
    )
    return event


def test_invitation_without_processing_keeps_everything(store):
    event = invite(store)
    assert event["subject"] == "Budget"
    assert event["sensitivity"] == "private"
    assert event["body"]["content"] == "agenda"
    assert event["isOrganizer"] is False
    assert event["organizer"]["emailAddress"] == {
        "name": "Ann Lee",
        "address": "ann@contoso.test",
    }
    assert event["responseStatus"]["response"] == "accepted"


@pytest.mark.parametrize(
    ("options", "subject"),
    [
        ({"add_organizer_to_subject": True}, "Ann Lee Budget"),
        ({"delete_subject": True}, ""),
        ({"delete_subject": True, "add_organizer_to_subject": True}, "Ann Lee"),
    ],
)
def test_subject_processing(store, options, subject):
    assert invite(store, **options)["subject"] == subject


def test_private_and_comment_processing(store):
    event = invite(store, remove_private_property=True, delete_comments=True)
    assert event["sensitivity"] == "normal"
    assert event["body"] == {"contentType": "text", "content": ""}
    assert event["subject"] == "Budget"


def test_processing_skips_events_organized_by_the_room(store):
    store.set_processing_options(
        ROOM, delete_subject=True, remove_private_property=True
    )
    own = create(store, "2026-03-02T09:00", "2026-03-02T10:00", sensitivity="private")
    same, _ = store.create_event(
        ROOM,
        payload("2026-03-03T09:00", "2026-03-03T10:00"),
        organizer={"name": "x", "address": ROOM.upper()},
    )
    assert own["subject"] == "Meeting" and own["sensitivity"] == "private"
    assert same["subject"] == "Meeting" and same["isOrganizer"] is True


def test_processing_none_leaves_flags_unchanged(store):
    store.set_processing_options(ROOM, delete_subject=True)
    store.set_processing_options(ROOM, delete_comments=None)
    assert invite(store)["subject"] == ""


# ----------------------------------------------------------------- recurrence


def test_series_master_and_occurrences(store):
    master = create_series(store, count=3)
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["daysOfWeek"] == ["monday"]
    assert (
        master["recurrence"]["range"]["recurrenceTimeZone"] == "Romance Standard Time"
    )
    occurrences = view(store)
    assert [o["type"] for o in occurrences] == ["occurrence"] * 3
    assert {o["seriesMasterId"] for o in occurrences} == {master["id"]}
    assert all(o["recurrence"] is None for o in occurrences)
    assert [o["start"]["dateTime"] for o in occurrences] == [
        "2026-03-23T08:00:00.0000000",
        "2026-03-30T07:00:00.0000000",
        "2026-04-06T07:00:00.0000000",
    ]
    assert len({o["iCalUId"] for o in occurrences} | {master["iCalUId"]}) == 4
    assert len({o["id"] for o in occurrences}) == 3
    assert [e["id"] for e in store.list_events(ROOM)] == [master["id"]]
    one = store.get_event(ROOM, occurrences[1]["id"])
    assert one == occurrences[1]


def test_daily_series_with_end_date_and_monthly_series(store):
    daily = payload(
        "2026-03-02T12:00",
        "2026-03-02T13:00",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "endDate",
                "startDate": "2026-03-02",
                "endDate": "2026-03-06",
            },
        },
    )
    monthly = payload(
        "2026-03-15T08:00",
        "2026-03-15T09:00",
        recurrence={
            "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
            "range": {"type": "noEnd", "startDate": "2026-03-15"},
        },
    )
    store.create_event(ROOM, daily)
    store.create_event(ROOM, monthly)
    starts = [o["start"]["dateTime"][:10] for o in view(store)]
    assert starts == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
        "2026-03-15",
        "2026-04-15",
    ]


def test_occurrence_rendered_in_requested_zone(store):
    create_series(store)
    local = view(store, time_zone="W. Europe Standard Time")
    assert {o["start"]["dateTime"][11:] for o in local} == {"09:00:00.0000000"}
    assert {o["start"]["timeZone"] for o in local} == {"W. Europe Standard Time"}


def test_patching_an_occurrence_creates_an_exception(store):
    master = create_series(store)
    second = view(store)[1]
    moved = store.update_event(
        ROOM,
        second["id"],
        {
            "subject": "Moved",
            "start": {
                "dateTime": "2026-03-31T14:00:00",
                "timeZone": "Romance Standard Time",
            },
            "end": {
                "dateTime": "2026-03-31T15:00:00",
                "timeZone": "Romance Standard Time",
            },
        },
    )
    assert moved["type"] == "exception"
    assert moved["id"] == second["id"]
    assert moved["seriesMasterId"] == master["id"]
    assert moved["subject"] == "Moved"
    assert moved["start"]["dateTime"] == "2026-03-31T12:00:00.0000000"
    assert moved["changeKey"] != second["changeKey"]
    listing = view(store)
    assert [o["type"] for o in listing] == [
        "occurrence",
        "exception",
        "occurrence",
        "occurrence",
    ]
    assert listing[1] == store.get_event(ROOM, second["id"])
    store.update_event(ROOM, master["id"], {"subject": "Series renamed"})
    after = view(store)
    assert [o["subject"] for o in after] == ["Meeting"] * 4 or after[0][
        "subject"
    ] == "Series renamed"
    assert after[1]["subject"] == "Moved"
    assert after[0]["subject"] == "Series renamed"
    snapshot_types = [item["type"] for item in store.snapshot(ROOM)]
    assert snapshot_types == ["seriesMaster", "exception"]


def test_exception_keeps_series_fields_it_did_not_override(store):
    master = create_series(store)
    first = view(store)[0]
    store.update_event(ROOM, first["id"], {"showAs": "tentative"})
    store.update_event(ROOM, master["id"], {"subject": "New name"})
    exception = store.get_event(ROOM, first["id"])
    assert exception["subject"] == "New name"
    assert exception["showAs"] == "tentative"


def test_occurrence_cannot_cross_a_neighbour(store):
    create_series(store)
    second = view(store)[1]
    move = {
        "start": {
            "dateTime": "2026-04-06T14:00:00",
            "timeZone": "Romance Standard Time",
        },
        "end": {"dateTime": "2026-04-06T15:00:00", "timeZone": "Romance Standard Time"},
    }
    with raises(400, "ErrorOccurrenceCrossingBoundary"):
        store.update_event(ROOM, second["id"], move)
    with raises(400):
        store.update_event(ROOM, second["id"], {"recurrence": weekly("2026-03-23", 2)})


def test_if_match_on_an_occurrence(store):
    create_series(store)
    first = view(store)[0]
    updated = store.update_event(
        ROOM, first["id"], {"subject": "x"}, if_match=first["@odata.etag"]
    )
    with raises(412):
        store.update_event(
            ROOM, first["id"], {"subject": "y"}, if_match=first["@odata.etag"]
        )
    store.delete_event(ROOM, first["id"], if_match=updated["@odata.etag"])


def test_deleting_an_occurrence_cancels_only_it(store):
    master = create_series(store)
    occurrences = view(store)
    store.delete_event(ROOM, occurrences[2]["id"])
    remaining = view(store)
    assert [o["id"] for o in remaining] == [
        o["id"] for o in occurrences if o is not occurrences[2]
    ]
    with raises(404):
        store.get_event(ROOM, occurrences[2]["id"])
    assert store.get_event(ROOM, master["id"])["type"] == "seriesMaster"


def test_deleting_an_exception(store):
    create_series(store)
    first = view(store)[0]
    store.update_event(ROOM, first["id"], {"subject": "x"})
    store.delete_event(ROOM, first["id"])
    assert first["id"] not in [o["id"] for o in view(store)]
    assert [item["type"] for item in store.snapshot(ROOM)] == ["seriesMaster"]


def test_deleting_the_master_deletes_the_series(store):
    master = create_series(store)
    occurrence = view(store)[0]
    store.delete_event(ROOM, master["id"])
    assert view(store) == []
    with raises(404):
        store.get_event(ROOM, occurrence["id"])


def test_occurrence_ids_that_do_not_exist_are_404(store):
    master = create_series(store, count=2)
    occurrence = view(store)[0]
    other_series = create_series(store, count=2)
    forged = occurrence["id"].replace(master["id"][:-1], other_series["id"][:-1])
    assert store.get_event(ROOM, forged)["seriesMasterId"] == other_series["id"]
    store.update_event(ROOM, master["id"], {"recurrence": None})
    with raises(404):
        store.get_event(ROOM, occurrence["id"])


def test_changing_series_times_drops_exceptions(store):
    master = create_series(store)
    first = view(store)[0]
    store.update_event(ROOM, first["id"], {"subject": "special"})
    store.delete_event(ROOM, view(store)[1]["id"])
    store.update_event(
        ROOM,
        master["id"],
        {
            "start": {
                "dateTime": "2026-03-23T10:00:00",
                "timeZone": "Romance Standard Time",
            },
            "end": {
                "dateTime": "2026-03-23T11:00:00",
                "timeZone": "Romance Standard Time",
            },
        },
    )
    listing = view(store)
    assert len(listing) == 4
    assert {o["type"] for o in listing} == {"occurrence"}
    assert listing[0]["start"]["dateTime"] == "2026-03-23T09:00:00.0000000"


def test_single_event_can_become_a_series(store):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    updated = store.update_event(
        ROOM,
        event["id"],
        {
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "startDate": "2026-03-02",
                    "numberOfOccurrences": 2,
                },
            }
        },
    )
    assert updated["type"] == "seriesMaster"
    assert len(view(store)) == 2


# ----------------------------------------------------------------- cancel


def test_cancel_keeps_the_event_flagged(store):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    store.cancel_event(ROOM, event["id"], comment="sorry")
    cancelled = store.get_event(ROOM, event["id"])
    assert cancelled["isCancelled"] is True
    assert cancelled["changeKey"] != event["changeKey"]
    assert view(store)[0]["isCancelled"] is True


def test_cancel_one_occurrence(store):
    create_series(store)
    second = view(store)[1]
    store.cancel_event(ROOM, second["id"])
    listing = view(store)
    assert [o["isCancelled"] for o in listing] == [False, True, False, False]
    assert listing[1]["type"] == "exception"


# ----------------------------------------------------------------- calendarView


def test_calendar_view_window_and_sorting(store):
    late = create(store, "2026-04-30T23:30", "2026-05-01T00:30")
    early = create(store, "2026-02-28T23:00", "2026-03-01T00:00")
    before = create(store, "2026-02-28T22:00", "2026-02-28T23:00")
    after = create(store, "2026-05-01T00:00", "2026-05-01T01:00")
    inside = create(store, "2026-03-10T09:00", "2026-03-10T10:00")
    ids = [o["id"] for o in view(store)]
    assert ids == [inside["id"], late["id"]]
    assert before["id"] not in ids and after["id"] not in ids and early["id"] not in ids


def test_calendar_view_naive_window_is_utc_and_limits(store):
    create(store, "2026-03-10T09:00", "2026-03-10T10:00")
    assert (
        len(store.calendar_view(ROOM, datetime(2026, 3, 10), datetime(2026, 3, 11)))
        == 1
    )
    with raises(400):
        store.calendar_view(
            ROOM, datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
        )
    with raises(400, "ErrorInvalidRequest") as caught:
        store.calendar_view(
            ROOM, datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        )
    assert "Maximum number of days: 1825" in caught.value.message
    with raises(400):
        store.calendar_view(ROOM, None, datetime(2026, 1, 1, tzinfo=UTC))


def test_exception_moved_out_of_window_leaves_the_view(store):
    create_series(store, count=2)
    first = view(store)[0]
    store.update_event(
        ROOM,
        first["id"],
        {
            "start": {
                "dateTime": "2026-03-22T09:00:00",
                "timeZone": "Romance Standard Time",
            },
            "end": {
                "dateTime": "2026-03-22T10:00:00",
                "timeZone": "Romance Standard Time",
            },
        },
    )
    window = (datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC))
    assert len(view(store, window)) == 1
    earlier = (datetime(2026, 3, 22, tzinfo=UTC), datetime(2026, 3, 23, tzinfo=UTC))
    assert [o["id"] for o in view(store, earlier)] == [first["id"]]


# ----------------------------------------------------------------- delta


def test_initial_delta_is_the_window_paged(store):
    for day in range(1, 8):
        create(store, f"2026-03-0{day + 1}T09:00", f"2026-03-0{day + 1}T10:00")
    create(store, "2026-06-01T09:00", "2026-06-01T10:00")
    pages = full_round(store, page_size=3)
    assert [len(page.value) for page in pages] == [3, 3, 1]
    assert all(page.next_token and not page.delta_token for page in pages[:-1])
    assert pages[-1].delta_token and not pages[-1].next_token
    assert isinstance(pages[0], DeltaPage)
    delivered = items(pages)
    assert [item["id"] for item in delivered] == [o["id"] for o in view(store)]
    assert all(item["@odata.type"] == "#microsoft.graph.event" for item in delivered)
    for page in pages:
        for token in (page.next_token, page.delta_token):
            if token:
                assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_initial_delta_expands_series_and_default_page_size(clock):
    store = CalendarStore(clock=clock, delta_default_page_size=2)
    store.add_mailbox(ROOM, display_name="Room A")
    create_series(store, count=3)
    pages = full_round(store)
    assert [len(page.value) for page in pages] == [2, 1]
    assert {item["type"] for item in items(pages)} == {"occurrence"}


def test_initial_delta_needs_a_window(store):
    with raises(400):
        store.delta_page(ROOM)
    with raises(400):
        store.delta_page(ROOM, start=WINDOW[0], end=WINDOW[1], page_size=0)


def test_delta_in_requested_zone(store):
    create(store, "2026-03-29T09:00", "2026-03-29T10:00", "Europe/Brussels")
    page = store.delta_page(
        ROOM, start=WINDOW[0], end=WINDOW[1], time_zone="Europe/Brussels"
    )
    assert page.value[0]["start"] == {
        "dateTime": "2026-03-29T09:00:00.0000000",
        "timeZone": "Europe/Brussels",
    }


def test_incremental_delta(store, clock):
    keep = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    change = create(store, "2026-03-03T09:00", "2026-03-03T10:00")
    remove = create(store, "2026-03-04T09:00", "2026-03-04T10:00")
    leave = create(store, "2026-03-05T09:00", "2026-03-05T10:00")
    outside = create(store, "2026-07-01T09:00", "2026-07-01T10:00")
    token = full_round(store)[-1].delta_token

    empty = store.delta_page(ROOM, token=token)
    assert empty.value == [] and empty.delta_token

    clock.tick()
    added = create(store, "2026-03-06T09:00", "2026-03-06T10:00")
    store.update_event(ROOM, change["id"], {"subject": "Changed"})
    store.delete_event(ROOM, remove["id"])
    store.update_event(
        ROOM,
        leave["id"],
        {
            "start": {"dateTime": "2026-08-01T09:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-08-01T10:00", "timeZone": "UTC"},
        },
    )
    store.update_event(
        ROOM,
        outside["id"],
        {
            "start": {"dateTime": "2026-03-20T09:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-20T10:00", "timeZone": "UTC"},
        },
    )
    page = store.delta_page(ROOM, token=empty.delta_token)
    full = {item["id"]: item for item in page.value if "@removed" not in item}
    removed = {item["id"]: item for item in page.value if "@removed" in item}
    assert set(full) == {added["id"], change["id"], outside["id"]}
    assert full[change["id"]]["subject"] == "Changed"
    assert set(removed) == {remove["id"], leave["id"]}
    assert removed[remove["id"]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": remove["id"],
        "@removed": {"reason": "deleted"},
    }
    assert keep["id"] not in full
    again = store.delta_page(ROOM, token=page.delta_token)
    assert again.value == []


def test_incremental_delta_pages_changes(store):
    token = full_round(store)[-1].delta_token
    for day in range(2, 7):
        create(store, f"2026-03-0{day}T09:00", f"2026-03-0{day}T10:00")
    first = store.delta_page(ROOM, token=token, page_size=2)
    assert len(first.value) == 2 and first.next_token
    second = store.delta_page(ROOM, token=first.next_token, page_size=2)
    third = store.delta_page(ROOM, token=second.next_token, page_size=2)
    assert len(third.value) == 1 and third.delta_token
    assert store.delta_page(ROOM, token=third.delta_token).value == []


def test_delta_series_changes(store):
    master = create_series(store, count=3)
    token = full_round(store)[-1].delta_token
    occurrences = view(store)

    store.delete_event(ROOM, occurrences[0]["id"])
    store.update_event(ROOM, occurrences[1]["id"], {"subject": "Special"})
    page = store.delta_page(ROOM, token=token)
    assert [(item["id"], "@removed" in item) for item in page.value] == [
        (occurrences[1]["id"], False),
        (occurrences[0]["id"], True),
    ]
    assert page.value[0]["type"] == "exception"

    store.update_event(ROOM, master["id"], {"recurrence": weekly("2026-03-23", 5)})
    grown = store.delta_page(ROOM, token=page.delta_token)
    full = [item for item in grown.value if "@removed" not in item]
    assert len(full) == 5
    assert {item["type"] for item in full} == {"occurrence"}
    assert master["id"] not in {item["id"] for item in grown.value}

    store.delete_event(ROOM, master["id"])
    gone = store.delta_page(ROOM, token=grown.delta_token)
    assert len(gone.value) == 5
    assert all(item["@removed"] == {"reason": "deleted"} for item in gone.value)


def test_series_change_reports_an_exception_only_if_it_looks_different(store, clock):
    master = create_series(store, count=2)
    own, plain = view(store)
    store.update_event(ROOM, own["id"], {"subject": "Own"})
    token = full_round(store)[-1].delta_token
    clock.tick()
    store.update_event(ROOM, master["id"], {"subject": "Renamed"})
    page = store.delta_page(ROOM, token=token)
    assert [(item["id"], item["subject"]) for item in page.value] == [
        (plain["id"], "Renamed")
    ]
    store.update_event(ROOM, master["id"], {"showAs": "free"})
    page = store.delta_page(ROOM, token=page.delta_token)
    assert [item["id"] for item in page.value] == [own["id"], plain["id"]]
    assert {item["showAs"] for item in page.value} == {"free"}


def moved_and_renamed_exceptions(store):
    """A three-week series whose first occurrence is moved (its times are its own)
    and whose second is renamed (its subject is its own)."""
    master = create_series(store, count=3)
    first, second, _ = view(store)
    later = {"dateTime": "2026-03-23T14:00:00", "timeZone": "Romance Standard Time"}
    moved = store.update_event(
        ROOM,
        first["id"],
        {"start": later, "end": {**later, "dateTime": "2026-03-23T15:00:00"}},
    )
    renamed = store.update_event(ROOM, second["id"], {"subject": "Own"})
    return master, moved, renamed


def assert_new_version(before, after):
    assert after["changeKey"] != before["changeKey"]
    assert after["@odata.etag"] == f'W/"{after["changeKey"]}"'
    assert after["lastModifiedDateTime"] > before["lastModifiedDateTime"]


@pytest.mark.parametrize("mode", ["visible", "all"])
def test_series_rename_gives_the_exceptions_it_shows_a_new_change_key(clock, mode):
    # Issue 15: the moved occurrence kept its changeKey when the series was renamed,
    # so a client that skips items whose changeKey it has kept the old title.
    store = CalendarStore(clock=clock, series_change_keys=mode)
    store.add_mailbox(ROOM, display_name="Room A")
    master, moved, renamed = moved_and_renamed_exceptions(store)
    token = full_round(store)[-1].delta_token
    clock.tick()
    store.update_event(ROOM, master["id"], {"subject": "Renamed"})

    now_moved = store.get_event(ROOM, moved["id"])
    now_renamed = store.get_event(ROOM, renamed["id"])
    assert (now_moved["subject"], now_renamed["subject"]) == ("Renamed", "Own")
    assert_new_version(moved, now_moved)
    if mode == "all":
        assert_new_version(renamed, now_renamed)
    else:
        assert now_renamed == renamed
    with raises(412, "ErrorIrresolvableConflict"):
        store.update_event(
            ROOM, moved["id"], {"showAs": "free"}, if_match=moved["@odata.etag"]
        )
    page = store.delta_page(ROOM, token=token)
    reported = {item["id"]: item for item in page.value}
    assert reported[moved["id"]]["changeKey"] == now_moved["changeKey"]
    assert reported[moved["id"]]["subject"] == "Renamed"
    assert (renamed["id"] in reported) == (mode == "all")
    assert reported.keys() == {item["id"] for item in view(store)} - (
        set() if mode == "all" else {renamed["id"]}
    )


def test_series_cancellation_gives_its_exceptions_a_new_change_key(store, clock):
    master, moved, renamed = moved_and_renamed_exceptions(store)
    clock.tick()
    store.cancel_event(ROOM, master["id"])
    for before in (moved, renamed):
        after = store.get_event(ROOM, before["id"])
        assert after["isCancelled"] is True
        assert_new_version(before, after)


def test_series_change_its_exceptions_do_not_show_keeps_their_change_keys(store):
    master, moved, renamed = moved_and_renamed_exceptions(store)
    store.update_event(ROOM, master["id"], {"subject": "Own"})
    # The renamed exception already showed "Own"; the moved one shows the new name.
    assert store.get_event(ROOM, renamed["id"]) == renamed
    assert store.get_event(ROOM, moved["id"])["changeKey"] != moved["changeKey"]


def test_unknown_series_change_key_mode_is_refused():
    with pytest.raises(ValueError, match="series_change_keys"):
        CalendarStore(series_change_keys="some")


JOIN_URL = re.compile(
    r"^https://teams\.microsoft\.com/l/meetup-join/19%3ameeting_[A-Za-z0-9+/=]+"
    r"%40thread\.v2/0\?context=%7b%22Tid%22%3a%22[0-9a-f-]{36}%22%2c%22Oid%22%3a%22"
    r"[0-9a-f-]{36}%22%7d$"
)


def assert_online(event, info=None):
    assert event["isOnlineMeeting"] is True
    assert event["onlineMeetingProvider"] == "teamsForBusiness"
    meeting = event["onlineMeeting"]
    assert sorted(meeting) == ["conferenceId", "joinUrl", "tollNumber"]
    assert JOIN_URL.match(meeting["joinUrl"]), meeting["joinUrl"]
    assert re.fullmatch(r"\d{9}", meeting["conferenceId"])
    if info is not None:
        assert meeting == info
    return meeting


@pytest.mark.parametrize(
    "asked",
    [
        {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"},
        {"isOnlineMeeting": True},
        {"onlineMeetingProvider": "teamsForBusiness"},
    ],
    ids=["both", "isOnlineMeeting", "provider"],
)
def test_online_meeting_is_initialized(store, asked):
    # Issue 15: stored with onlineMeeting null. Event resource: "After you set
    # isOnlineMeeting to true, Microsoft Graph initializes onlineMeeting"; the
    # onlineMeetingProvider one says the same; the calendar's default provider is
    # teamsForBusiness.
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00", **asked)
    info = assert_online(event)
    assert event["onlineMeetingUrl"] is None
    assert_online(store.get_event(ROOM, event["id"]), info)
    (listed,) = view(store)
    assert_online(listed, info)
    (delta,) = items(full_round(store))
    assert_online(delta, info)
    other = create(store, "2026-03-03T09:00", "2026-03-03T10:00", **asked)
    assert assert_online(other)["joinUrl"] != info["joinUrl"]


def test_plain_event_has_no_online_meeting_until_it_is_enabled(store, clock):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    assert (event["isOnlineMeeting"], event["onlineMeeting"]) == (False, None)
    assert event["onlineMeetingProvider"] == "unknown"
    clock.tick()
    enabled = store.update_event(
        ROOM,
        event["id"],
        {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"},
    )
    info = assert_online(enabled)
    assert enabled["changeKey"] != event["changeKey"]
    # "you cannot change the onlineMeetingProvider property, nor set isOnlineMeeting
    # to false to disable the meeting online" (Create or set an event as an online
    # meeting in an Outlook calendar): the changes are ignored, the rest applies.
    for patch in (
        {"isOnlineMeeting": False, "subject": "Still online"},
        {"onlineMeetingProvider": "skypeForBusiness"},
    ):
        assert_online(store.update_event(ROOM, event["id"], patch), info)
    assert store.get_event(ROOM, event["id"])["subject"] == "Still online"


def test_provider_the_calendar_does_not_offer_gives_no_online_meeting(store):
    event = create(
        store,
        "2026-03-02T09:00",
        "2026-03-02T10:00",
        isOnlineMeeting=True,
        onlineMeetingProvider="skypeForBusiness",
    )
    assert store.calendar_info(ROOM)["allowedOnlineMeetingProviders"] == [
        "teamsForBusiness"
    ]
    assert (event["isOnlineMeeting"], event["onlineMeeting"]) == (False, None)


def test_occurrences_of_an_online_series_share_its_meeting(store):
    master = create_series(store, count=3)
    info = assert_online(
        store.update_event(ROOM, master["id"], {"isOnlineMeeting": True})
    )
    occurrences = view(store)
    store.update_event(ROOM, occurrences[1]["id"], {"subject": "Own"})
    for occurrence in view(store):
        assert_online(occurrence, info)


def test_cancelled_event_arrives_as_update(store):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    token = full_round(store)[-1].delta_token
    store.cancel_event(ROOM, event["id"])
    page = store.delta_page(ROOM, token=token)
    assert [item["isCancelled"] for item in page.value] == [True]


IDENTITY = {"@odata.type", "@odata.etag", "id", "changeKey"}


@pytest.fixture
def partial_store(clock):
    store = CalendarStore(clock=clock, delta_partial_updates=True)
    store.add_mailbox(ROOM, display_name="Room A")
    return store


def test_partial_updates_are_off_by_default(store, clock):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    token = full_round(store)[-1].delta_token
    assert store.delta_partial_updates is False
    clock.tick()
    store.update_event(ROOM, event["id"], {"subject": "Renamed"})
    (item,) = store.delta_page(ROOM, token=token).value
    assert item == {"@odata.type": "#microsoft.graph.event", **view(store)[0]}


def test_partial_updates_send_only_what_changed(partial_store, clock):
    store = partial_store
    renamed = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    moved = create(store, "2026-03-03T09:00", "2026-03-03T10:00")
    removed = create(store, "2026-03-04T09:00", "2026-03-04T10:00")
    outside = create(store, "2026-07-01T09:00", "2026-07-01T10:00")
    first = full_round(store)
    assert all("start" in item for item in items(first))  # a first round is full
    clock.tick()
    store.update_event(ROOM, renamed["id"], {"subject": "Renamed"})
    store.update_event(
        ROOM,
        moved["id"],
        {
            "start": {"dateTime": "2026-03-05T09:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-05T11:00", "timeZone": "UTC"},
        },
    )
    store.delete_event(ROOM, removed["id"])
    store.update_event(  # moved into the window: new to the client, so full
        ROOM,
        outside["id"],
        {
            "start": {"dateTime": "2026-03-20T09:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-20T10:00", "timeZone": "UTC"},
        },
    )
    added = create(store, "2026-03-06T09:00", "2026-03-06T10:00")
    page = store.delta_page(ROOM, token=first[-1].delta_token)
    by_id = {item["id"]: item for item in page.value}
    current = {item["id"]: item for item in view(store)}

    name = by_id[renamed["id"]]
    assert set(name) == IDENTITY | {"subject", "lastModifiedDateTime"}
    assert name["subject"] == "Renamed" and "start" not in name
    assert name["changeKey"] == current[renamed["id"]]["changeKey"]
    assert name["@odata.etag"] == f'W/"{name["changeKey"]}"'
    assert name["@odata.type"] == "#microsoft.graph.event"

    times = by_id[moved["id"]]
    assert set(times) == IDENTITY | {"start", "end", "lastModifiedDateTime"}
    assert times["end"] == {
        "dateTime": "2026-03-05T11:00:00.0000000",
        "timeZone": "UTC",
    }

    for item_id in (added["id"], outside["id"]):
        assert by_id[item_id] == {
            "@odata.type": "#microsoft.graph.event",
            **current[item_id],
        }
    assert by_id[removed["id"]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": removed["id"],
        "@removed": {"reason": "deleted"},
    }
    assert store.delta_page(ROOM, token=page.delta_token).value == []


def test_partial_updates_compare_with_what_the_chain_last_got(partial_store, clock):
    store = partial_store
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00", showAs="busy")
    token = full_round(store)[-1].delta_token
    clock.tick()
    store.update_event(ROOM, event["id"], {"subject": "Draft", "showAs": "free"})
    store.update_event(ROOM, event["id"], {"subject": "Meeting"})  # undone
    (item,) = store.delta_page(ROOM, token=token).value
    assert set(item) == IDENTITY | {"showAs", "lastModifiedDateTime"}
    # The older token still stands for the older state: replays diff against it.
    (again,) = store.delta_page(ROOM, token=token).value
    assert again == item


def test_partial_updates_pages_zone_and_exceptions(partial_store, clock):
    store = partial_store
    single = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    create_series(store, count=2)
    token = full_round(store)[-1].delta_token
    occurrence = next(o for o in view(store) if o["type"] == "occurrence")
    clock.tick()
    store.update_event(
        ROOM,
        single["id"],
        {"start": {"dateTime": "2026-03-02T08:30", "timeZone": "UTC"}},
    )
    store.update_event(ROOM, occurrence["id"], {"subject": "Special"})
    first = store.delta_page(
        ROOM, token=token, page_size=1, time_zone="Romance Standard Time"
    )
    second = store.delta_page(
        ROOM, token=first.next_token, page_size=1, time_zone="Romance Standard Time"
    )
    assert second.delta_token
    moved, special = first.value[0], second.value[0]
    assert set(moved) == IDENTITY | {"start", "lastModifiedDateTime"}
    assert moved["start"] == {
        "dateTime": "2026-03-02T09:30:00.0000000",
        "timeZone": "Romance Standard Time",
    }
    # The occurrence became an exception: same id, an update for the chain.
    assert special["id"] == occurrence["id"]
    assert set(special) == IDENTITY | {"subject", "type", "lastModifiedDateTime"}
    assert special["type"] == "exception"


def test_partial_updates_switch_can_change_between_rounds(store, clock):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    token = full_round(store)[-1].delta_token
    clock.tick()
    store.update_event(ROOM, event["id"], {"subject": "One"})
    store.delta_partial_updates = True
    page = store.delta_page(ROOM, token=token)
    assert set(page.value[0]) == IDENTITY | {"subject", "lastModifiedDateTime"}
    store.delta_partial_updates = False
    store.update_event(ROOM, event["id"], {"subject": "Two"})
    (full,) = store.delta_page(ROOM, token=page.delta_token).value
    assert "start" in full and full["subject"] == "Two"


def test_items_created_and_deleted_before_the_first_call_are_not_returned(store):
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    store.delete_event(ROOM, event["id"])
    pages = full_round(store)
    assert items(pages) == []
    assert pages[0].delta_token


def test_empty_first_page_option(clock):
    store = CalendarStore(clock=clock, delta_empty_first_page=True)
    store.add_mailbox(ROOM, display_name="Room A")
    create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    pages = full_round(store)
    assert pages[0].value == [] and pages[0].next_token
    assert len(items(pages)) == 1


def test_old_generations_answer_410(store):
    create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    tokens = [full_round(store)[-1].delta_token]
    for _ in range(4):
        tokens.append(store.delta_page(ROOM, token=tokens[-1]).delta_token)
    store.delta_page(ROOM, token=tokens[-3])
    with raises(410, "SyncStateNotFound") as caught:
        store.delta_page(ROOM, token=tokens[1])
    assert re.fullmatch(
        r"The sync state generation is not found; generation=2;"
        r"\[highest=6\](\[\d+\])+\.",
        caught.value.message,
    )
    assert "[6][5][4]" in caught.value.message


def test_stale_skip_token_answers_410(store):
    for day in range(2, 8):
        create(store, f"2026-03-0{day}T09:00", f"2026-03-0{day}T10:00")
    first = store.delta_page(ROOM, start=WINDOW[0], end=WINDOW[1], page_size=1)
    token = first.next_token
    for _ in range(3):
        token = store.delta_page(ROOM, token=token, page_size=1).next_token
    with raises(410):
        store.delta_page(ROOM, token=first.next_token, page_size=1)


def test_generations_are_per_window(clock):
    store = CalendarStore(clock=clock, delta_generations=1)
    store.add_mailbox(ROOM, display_name="Room A")
    first = store.delta_page(ROOM, start=WINDOW[0], end=WINDOW[1]).delta_token
    store.delta_page(ROOM, start=WINDOW[0], end=WINDOW[1] + timedelta(days=1))
    assert store.delta_page(ROOM, token=first).delta_token


def test_expire_delta_tokens(store):
    store.add_mailbox("room.b@contoso.test", display_name="Room B")
    token = full_round(store)[-1].delta_token
    other = store.delta_page("room.b@contoso.test", start=WINDOW[0], end=WINDOW[1])
    store.expire_delta_tokens(ROOM.upper())
    with raises(410, "SyncStateNotFound"):
        store.delta_page(ROOM, token=token)
    assert store.delta_page("room.b@contoso.test", token=other.delta_token)
    store.expire_delta_tokens()
    with raises(410):
        store.delta_page("room.b@contoso.test", token=other.delta_token)
    assert full_round(store)[-1].delta_token


@pytest.mark.parametrize("token", ["garbage!", "", "bm90IGEgdG9rZW4"])
def test_malformed_tokens_are_400(store, token):
    with raises(400):
        store.delta_page(ROOM, token=token)


def test_token_of_another_store_or_mailbox_is_400(store, clock):
    store.add_mailbox("room.b@contoso.test", display_name="Room B")
    token = full_round(store)[-1].delta_token
    with raises(400):
        store.delta_page("room.b@contoso.test", token=token)
    other = CalendarStore(clock=clock)
    other.add_mailbox(ROOM, display_name="Room A")
    with raises(400):
        other.delta_page(ROOM, token=token)


def test_reset_forgets_events_and_sync_state(store):
    create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    token = full_round(store)[-1].delta_token
    store.reset()
    assert store.has_mailbox(ROOM)
    assert store.list_events(ROOM) == []
    with raises(410):
        store.delta_page(ROOM, token=token)
    store.reset(keep_mailboxes=False)
    assert not store.has_mailbox(ROOM)


# ----------------------------------------------------------------- listeners


def test_listeners_see_every_change_outside_the_lock(store):
    seen = []

    def probe():
        free = store._lock.acquire(timeout=2)
        if free:
            store._lock.release()
        seen.append(("probe", free))

    def listener(address, change, event_id, change_key):
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        seen.append((address, change, event_id, change_key))

    store.add_listener(listener)
    store.add_listener(lambda *args: 1 / 0)
    event = create(store, "2026-03-02T09:00", "2026-03-02T10:00")
    renamed = store.update_event(ROOM, event["id"], {"subject": "x"})
    store.cancel_event(ROOM, event["id"])
    cancelled = store.get_event(ROOM, event["id"])
    store.delete_event(ROOM, event["id"])
    changes = [entry for entry in seen if entry[0] != "probe"]
    # Each change with the item's change key after it (the last one for a deletion).
    assert changes == [
        (ROOM, "created", event["id"], event["changeKey"]),
        (ROOM, "updated", event["id"], renamed["changeKey"]),
        (ROOM, "updated", event["id"], cancelled["changeKey"]),
        (ROOM, "deleted", event["id"], cancelled["changeKey"]),
    ]
    assert len({entry[3] for entry in changes}) == 3
    assert [entry for entry in seen if entry[0] == "probe"] == [("probe", True)] * 4


def test_listeners_get_an_occurrences_change_key(store):
    seen = []
    store.add_listener(lambda *args: seen.append(args))
    create_series(store, count=2)
    first, second = view(store)
    moved = store.update_event(ROOM, first["id"], {"subject": "Own"})
    store.cancel_event(ROOM, second["id"])
    cancelled = store.get_event(ROOM, second["id"])
    store.delete_event(ROOM, second["id"])
    assert seen[1:] == [
        (ROOM, "updated", first["id"], moved["changeKey"]),
        (ROOM, "updated", second["id"], cancelled["changeKey"]),
        (ROOM, "deleted", second["id"], cancelled["changeKey"]),
    ]


def test_duplicate_create_does_not_notify(store):
    seen = []
    store.add_listener(lambda *args: seen.append(args))
    body = payload("2026-03-02T09:00", "2026-03-02T10:00", transactionId="tx")
    store.create_event(ROOM, body)
    store.create_event(ROOM, body)
    assert len(seen) == 1


def test_concurrent_creates_are_safe(store):
    def worker(index):
        for number in range(20):
            store.create_event(
                ROOM,
                payload(
                    "2026-03-02T09:00",
                    "2026-03-02T10:00",
                    transactionId=f"tx-{number}",
                ),
            )

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list_events(ROOM)) == 20


# ----------------------------------------------------------------- robustness

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=10,
)
FIELD_NAMES = st.sampled_from(
    [
        "subject",
        "body",
        "start",
        "end",
        "isAllDay",
        "showAs",
        "attendees",
        "location",
        "locations",
        "recurrence",
        "transactionId",
        "singleValueExtendedProperties",
        "categories",
        "sensitivity",
    ]
)


@settings(max_examples=300, deadline=None)
@given(overrides=st.dictionaries(FIELD_NAMES, JSON, max_size=4))
def test_any_payload_either_works_or_is_a_graph_error(overrides):
    store = CalendarStore(clock=FakeClock())
    store.add_mailbox(ROOM, display_name="Room A")
    body = {**payload("2026-03-02T09:00", "2026-03-02T10:00"), **overrides}
    try:
        event, _ = store.create_event(ROOM, body)
    except GraphHttpError as error:
        assert error.status == 400
        return
    store.update_event(ROOM, event["id"], {"subject": "ok"})
    view(store)
    full_round(store)
