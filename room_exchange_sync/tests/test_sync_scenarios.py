# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Sync scenarios of the two-way sync issue, end to end against the emulator.

Time zones and DST, multi-room bookings, cancellation versus deletion, room processing
options, recurring series, the mass-cancellation rail, conflict policies,
re-authorization, delegated delta paging, revoked tokens in the cron, and concurrent
sync runs (real cursors).
"""

import logging
import threading
from datetime import datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

from odoo import Command
from odoo.tests import TransactionCase, tagged

from .. import engine
from ..sync import seams
from .common import (
    ADELE,
    DELEGATED_APP,
    ROOM_ADAMS,
    CommittedRoomMixin,
    RoomExchangeCase,
)

_logger = logging.getLogger(__name__)

ROOM_BAKER = "room.baker@contoso.test"
BRUSSELS = ZoneInfo("Europe/Brussels")
UTC = ZoneInfo("UTC")
SUBJECT = "Odoo scenario booking"
# Spring and autumn DST days of Europe/Brussels inside the sync window
# ([today - 7 days, today + 365 days); today is late 2026).
SPRING = datetime(2027, 3, 28)
AUTUMN = datetime(2027, 10, 31)
# A room after a successful round (fe977b3: "Rooms show Syncing after a successful
# round").
SYNCED_STATES = ("authorized", "syncing")


def utc_naive(local):
    """A Brussels wall-clock time as Odoo stores it (naive UTC)."""
    return local.replace(tzinfo=BRUSSELS).astimezone(UTC).replace(tzinfo=None)


class SyncScenarioMixin:
    """The setUp pattern and helpers of test_sync.TestTwoWaySync (copied, not
    imported, so that its tests are not collected twice)."""

    def setup_room_sync(self, connection):
        self.bind_room_for_sync(connection)

    def start_app_only_room(self):
        """A fresh emulator and room Adams syncing through an app-only connection
        (``self.connection``)."""
        self.emulator.reset()
        self.remember_seeded_events()
        self.connection = self.ready_connection("application")
        self.setup_room_sync(self.connection)

    def book_in_odoo(self, *args, name=SUBJECT, **kwargs):
        return super().book_in_odoo(*args, name=name, **kwargs)

    def sync(self, calendar=None, **kwargs):
        calendar = calendar or self.calendar
        plan = calendar._sync(**kwargs)
        self.assertTrue(plan, calendar.last_error)
        return plan

    def room_events(self, subject=None, mailbox=ROOM_ADAMS):
        """The room's events, without those the emulator scenario seeds."""
        seeded = self.seeded_ids.setdefault(mailbox, set())
        events = self.emulator.store.snapshot(mailbox)
        return [
            e
            for e in events
            if e["id"] not in seeded
            and (subject is None or e.get("subject") == subject)
        ]

    def remember_seeded_events(self):
        self.seeded_ids = {
            mailbox: {e["id"] for e in self.emulator.store.snapshot(mailbox)}
            for mailbox in (ROOM_ADAMS, ROOM_BAKER)
        }

    def outlook_booking(self, subject, hour_utc=13, hours=1.0, day=None, **kwargs):
        start = datetime.combine(day or self.day, datetime.min.time()) + timedelta(
            hours=hour_utc
        )
        return self.emulator.book_room(
            ADELE[0],
            kwargs.pop("room", ROOM_ADAMS),
            subject,
            start.isoformat(),
            (start + timedelta(hours=hours)).isoformat(),
            **kwargs,
        )

    def imported(self, event_id):
        binding = self.env["room.exchange.binding"].search(
            [("external_id", "=", event_id)]
        )
        return binding.booking_id

    def event_of(self, booking, calendar=None):
        calendar = calendar or self.calendar
        binding = booking.exchange_binding_ids.filtered(
            lambda b: b.calendar_id == calendar
        )
        self.assertEqual(len(binding), 1)
        return self.emulator.store.get_event(calendar.mailbox, binding.external_id)

    def add_room(self, name, mailbox, connection):
        room = self.env["resource.resource"].create(
            {
                "name": name,
                "resource_type": "material",
                "calendar_id": self.around_the_clock.id,
                "tz": "Europe/Brussels",
            }
        )
        room.write({"exchange_connection_id": connection.id})
        calendar = room.exchange_calendar_id
        calendar._bind_mailbox(mailbox)
        self.assertEqual(calendar.state, "authorized")
        return room, calendar


@tagged("post_install", "-at_install")
class TestSyncScenarios(SyncScenarioMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.start_app_only_room()

    # 1. Time zones

    def test_odoo_booking_on_dst_days_keeps_its_wall_clock_time(self):
        spring = self.book_in_odoo(start=utc_naive(SPRING.replace(hour=9)))
        autumn = self.book_in_odoo(start=utc_naive(AUTUMN.replace(hour=9)))
        self.assertEqual(spring.start, datetime(2027, 3, 28, 7, 0))  # CEST, UTC+2
        self.assertEqual(autumn.start, datetime(2027, 10, 31, 8, 0))  # CET, UTC+1
        self.sync()
        for booking, day in ((spring, SPRING), (autumn, AUTUMN)):
            binding = booking.exchange_binding_ids
            local = self.emulator.store.get_event(
                ROOM_ADAMS, binding.external_id, time_zone="Europe/Brussels"
            )
            self.assertEqual(local["start"]["dateTime"][:16], f"{day:%Y-%m-%d}T09:00")
            self.assertEqual(local["end"]["dateTime"][:16], f"{day:%Y-%m-%d}T10:00")
            in_utc = self.emulator.store.get_event(ROOM_ADAMS, binding.external_id)
            self.assertEqual(
                in_utc["start"]["dateTime"][:16], booking.start.isoformat()[:16]
            )
        # Echo: nothing moves on the next round.
        self.sync()
        self.assertEqual(spring.start, datetime(2027, 3, 28, 7, 0))
        self.assertEqual(autumn.start, datetime(2027, 10, 31, 8, 0))
        self.assertEqual(len(self.room_events(SUBJECT)), 2)

    def test_booking_in_the_repeated_autumn_hour(self):
        # 02:30 happens twice in Brussels on 2027-10-31: at 00:30 and 01:30 UTC.
        first = self.book_in_odoo(start=datetime(2027, 10, 31, 0, 30), hours=0.5)
        second = self.book_in_odoo(
            start=datetime(2027, 10, 31, 1, 30), hours=0.5, name="Second 02:30"
        )
        self.sync()
        for booking in (first, second):
            event = self.event_of(booking)
            self.assertEqual(
                event["start"]["dateTime"][:16], booking.start.isoformat()[:16]
            )
            self.assertEqual(
                event["end"]["dateTime"][:16], booking.stop.isoformat()[:16]
            )

    def test_outlook_all_day_event_on_dst_days_spans_local_midnights(self):
        spring = self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Spring all day",
            "2027-03-28",
            "2027-03-29",
            time_zone="Europe/Brussels",
            is_all_day=True,
        )
        autumn = self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Autumn all day",
            "2027-10-31",
            "2027-11-01",
            time_zone="Romance Standard Time",
            is_all_day=True,
        )
        self.sync()
        spring_booking = self.imported(spring["id"])
        self.assertEqual(spring_booking.start, datetime(2027, 3, 27, 23, 0))
        self.assertEqual(spring_booking.stop, datetime(2027, 3, 28, 22, 0))  # 23 h
        autumn_booking = self.imported(autumn["id"])
        self.assertEqual(autumn_booking.start, datetime(2027, 10, 30, 22, 0))
        self.assertEqual(autumn_booking.stop, datetime(2027, 10, 31, 23, 0))  # 25 h
        # The imported booking is not pushed back as a timed event.
        self.sync()
        stored = self.emulator.store.get_event(ROOM_ADAMS, spring["id"])
        self.assertTrue(stored["isAllDay"])

    def test_outlook_meeting_of_an_organizer_in_another_time_zone(self):
        # 2027-03-15: the US is on daylight time already (since March 14), Europe
        # not yet: 09:00 in Seattle is 16:00 UTC (UTC-7), 17:00 in Brussels.
        event = self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Call with Seattle",
            "2027-03-15T09:00:00",
            "2027-03-15T10:30:00",
            time_zone="Pacific Standard Time",
        )
        self.sync()
        booking = self.imported(event["id"])
        self.assertEqual(booking.start, datetime(2027, 3, 15, 16, 0))
        self.assertEqual(booking.stop, datetime(2027, 3, 15, 17, 30))

    # 2. Multi-room bookings

    def test_booking_of_two_synced_rooms(self):
        baker, baker_calendar = self.add_room("Baker", ROOM_BAKER, self.connection)
        both = self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set((self.room | baker).ids)]}
        )
        self.booking_type.combination_rel_ids = [
            Command.create({"combination_id": both.id})
        ]
        booking = self.book_in_odoo(combination=both)
        self.sync()
        self.sync(baker_calendar)
        self.assertEqual(len(self.room_events(SUBJECT)), 1)
        # Room Baker rewrites subjects of meetings organised by others; ours are
        # organised by the room itself and keep their subject.
        self.assertEqual(len(self.room_events(SUBJECT, mailbox=ROOM_BAKER)), 1)
        self.assertEqual(len(booking.exchange_binding_ids), 2)
        self.assertEqual(
            booking.exchange_binding_ids.calendar_id, self.calendar | baker_calendar
        )
        self.assertEqual(
            set(booking.exchange_binding_ids.mapped("sync_state")), {"synced"}
        )
        # Second rounds: no echo import, nothing duplicated.
        self.sync()
        self.sync(baker_calendar)
        self.assertEqual(len(self.room_events()), 1)
        self.assertEqual(len(self.room_events(mailbox=ROOM_BAKER)), 1)
        self.assertFalse(
            self.env["resource.booking"].search(
                [("exchange_origin", "=", "exchange"), ("name", "=", SUBJECT)]
            )
        )
        booking.action_cancel()
        self.sync()
        self.sync(baker_calendar)
        self.assertFalse(self.room_events(SUBJECT))
        self.assertFalse(self.room_events(SUBJECT, mailbox=ROOM_BAKER))
        self.assertFalse(booking.exchange_binding_ids)

    # 3. Cancellation versus deletion in Outlook

    def test_outlook_cancellation_and_deletion_cancel_the_booking(self):
        cancelled = self.outlook_booking("Cancelled in Outlook", hour_utc=8)
        deleted = self.outlook_booking("Deleted in Outlook", hour_utc=10)
        kept = self.outlook_booking("Kept", hour_utc=12)
        self.sync()
        bookings = [self.imported(e["id"]) for e in (cancelled, deleted, kept)]
        self.assertTrue(all(b.active for b in bookings))
        self.emulator.cancel_booking(ROOM_ADAMS, cancelled["id"])
        self.emulator.store.delete_event(ROOM_ADAMS, deleted["id"])
        self.sync()
        self.assertFalse(bookings[0].active)
        self.assertEqual(bookings[0].state, "canceled")
        self.assertFalse(bookings[1].active)
        self.assertEqual(bookings[1].state, "canceled")
        self.assertTrue(bookings[2].active)
        self.assertFalse(bookings[0].exchange_binding_ids)
        self.assertFalse(bookings[1].exchange_binding_ids)
        self.assertEqual(len(bookings[2].exchange_binding_ids), 1)

    def test_odoo_booking_whose_event_is_deleted_is_recreated(self):
        booking = self.book_in_odoo()
        self.sync()
        self.sync()  # the delta link now covers our own event
        (event,) = self.room_events(SUBJECT)
        self.emulator.store.delete_event(ROOM_ADAMS, event["id"])
        self.assertFalse(self.room_events(SUBJECT))
        self.sync()
        events = self.room_events(SUBJECT)
        self.assertEqual(len(events), 1)
        self.assertNotEqual(events[0]["id"], event["id"])
        self.assertTrue(booking.active)
        self.assertEqual(booking.exchange_binding_ids.external_id, events[0]["id"])
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        # And it stays one event.
        self.sync()
        self.sync(full=True)
        self.assertEqual(len(self.room_events(SUBJECT)), 1)
        self.assertTrue(booking.active)

    def test_event_deleted_right_after_its_export_is_recreated(self):
        booking = self.book_in_odoo()
        self.sync()
        (event,) = self.room_events(SUBJECT)
        self.emulator.store.delete_event(ROOM_ADAMS, event["id"])
        self.sync()
        self.assertEqual(len(self.room_events(SUBJECT)), 1)
        self.assertTrue(booking.active)

    def test_update_of_an_event_deleted_meanwhile_recreates_it(self):
        booking = self.book_in_odoo()
        self.sync()
        self.sync()
        event_id = booking.exchange_binding_ids.external_id
        booking.write({"name": "Renamed in Odoo"})
        deleted = []

        def outlook_deletes_first(mailbox, requests):
            if not deleted:
                self.emulator.store.delete_event(ROOM_ADAMS, event_id)
                deleted.append(event_id)

        with seams.hooked(seams.WRITES_SENDING, outlook_deletes_first):
            self.sync()
        self.sync()
        self.assertEqual(len(self.room_events("Renamed in Odoo")), 1)
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")

    def test_outlook_rename_with_privacy_subject_only(self):
        self.calendar.privacy_mode = "subject"
        booking = self.book_in_odoo()
        self.sync()
        event_id = booking.exchange_binding_ids.external_id
        self.emulator.update_booking(ROOM_ADAMS, event_id, subject="Renamed in Outlook")
        self.sync()
        self.sync()
        event = self.emulator.store.get_event(ROOM_ADAMS, event_id)
        self.assertEqual(booking.name, event["subject"])

    def test_cron_syncs_rooms_side_by_side(self):
        _baker, baker_calendar = self.add_room("Baker", ROOM_BAKER, self.connection)
        adams_meeting = self.outlook_booking("Adams meeting")
        baker_meeting = self.outlook_booking("Baker meeting", room=ROOM_BAKER)
        # The first two delta reads wait for each other: run one room after the
        # other, and the first read would wait in vain (its round then fails).
        meeting_point = threading.Barrier(2, timeout=30)
        readers = []

        def read_together(mailbox, delta_link):
            readers.append(threading.current_thread())
            if len(readers) <= 2:
                meeting_point.wait()

        Cron = type(self.env["ir.cron"])
        with (
            seams.hooked(seams.DELTA_READING, read_together),
            patch.object(Cron, "_commit_progress", lambda *a, **kw: float("inf")),
        ):
            self.env["room.exchange.calendar"]._cron_sync()
        self.assertFalse(meeting_point.broken)
        self.assertNotIn(threading.main_thread(), readers)
        for calendar in (self.calendar, baker_calendar):
            self.assertIn(calendar.state, SYNCED_STATES, calendar.last_error)
        self.assertTrue(self.imported(adams_meeting["id"]))
        self.assertTrue(self.imported(baker_meeting["id"]))

    def partial_delta_items(self):
        # UNCONFIRMED (docs/graph.md#partial-delta-items) whether Outlook sends items
        # with only the properties that changed; the emulator does when asked.
        self.emulator.set_switches(delta_partial_updates=True)
        self.addCleanup(self.emulator.set_switches, delta_partial_updates=False)

    def test_partial_delta_items_are_read_again_in_full(self):
        meeting = self.outlook_booking("Planning", hour_utc=9)
        self.sync()
        booking = self.imported(meeting["id"])
        start = booking.start
        self.partial_delta_items()
        self.emulator.update_booking(ROOM_ADAMS, meeting["id"], subject="Renamed")
        self.emulator.clear_log()
        plan = self.sync()
        reads = [
            entry
            for entry in self.emulator.request_log
            if entry["method"] == "GET" and meeting["id"] in entry["path"]
        ]
        self.assertEqual(len(reads), 1, "the partial item is read again, once")
        self.assertEqual(plan.count(engine.ActionKind.UPDATE_LOCAL), 1)
        self.assertEqual(booking.name, "Renamed")
        self.assertEqual(booking.start, start)
        self.assertTrue(booking.active)

    def test_partial_delta_item_of_an_event_deleted_meanwhile_cancels_it(self):
        meeting = self.outlook_booking("Planning", hour_utc=9)
        self.sync()
        booking = self.imported(meeting["id"])
        self.partial_delta_items()
        self.emulator.update_booking(ROOM_ADAMS, meeting["id"], subject="Renamed")

        def deleted_before_the_read(mailbox, event_ids):
            self.emulator.store.delete_event(ROOM_ADAMS, meeting["id"])

        with seams.hooked(seams.EVENTS_READING, deleted_before_the_read):
            self.sync()
        self.assertEqual(booking.state, "canceled")
        self.assertFalse(booking.exchange_binding_ids)

    def test_partial_delta_items_taken_as_they_come_when_switched_off(self):
        meeting = self.outlook_booking("Planning", hour_utc=9)
        self.sync()
        booking = self.imported(meeting["id"])
        self.env["ir.config_parameter"].set_param(
            "room_exchange_sync.delta_reread_partial", "false"
        )
        self.partial_delta_items()
        self.emulator.update_booking(ROOM_ADAMS, meeting["id"], subject="Renamed")
        self.sync()
        # Without the re-read, an item lacking its start cannot be read: listed on
        # the room, and the booking is left as it was rather than emptied.
        self.assertEqual(booking.name, "Planning")
        self.assertIn("cannot be synced", self.calendar.last_sync_summary)
        self.assertIn(meeting["id"], self.calendar.item_problem_text)

    def test_outlook_change_during_a_binding_backoff_is_not_lost(self):
        meeting = self.outlook_booking("Planning")
        self.sync()
        booking = self.imported(meeting["id"])
        binding = booking.exchange_binding_ids
        binding.write(
            {
                "sync_state": "error",
                "sync_error": "an earlier failure",
                "sync_attempts": 1,
                "next_retry_date": datetime.now() + timedelta(hours=1),
            }
        )
        moved = booking.start + timedelta(hours=2)
        self.emulator.update_booking(
            ROOM_ADAMS,
            meeting["id"],
            start=moved.isoformat(),
            end=(moved + timedelta(hours=1)).isoformat(),
        )
        self.sync()
        binding.next_retry_date = datetime.now() - timedelta(minutes=1)
        self.sync()
        self.assertEqual(booking.start, moved)

    # 4. Room processing options

    def test_room_processing_rewrites_imported_subjects_not_ours(self):
        self.emulator.set_room_processing(
            ROOM_ADAMS, add_organizer_to_subject=True, delete_subject=True
        )
        ours = self.book_in_odoo(hour_utc=8)
        meeting = self.outlook_booking("Budget", hour_utc=13)
        self.sync()
        self.assertEqual(self.imported(meeting["id"]).name, "Adele Vance")
        self.emulator.set_room_processing(ROOM_ADAMS, delete_subject=False)
        second = self.outlook_booking("Budget", hour_utc=15)
        self.sync()
        self.assertEqual(self.imported(second["id"]).name, "Adele Vance Budget")
        self.assertEqual(self.event_of(ours)["subject"], SUBJECT)
        self.assertEqual(ours.name, SUBJECT)
        ours.write({"name": "Renamed in Odoo"})
        self.sync()
        self.assertEqual(self.event_of(ours)["subject"], "Renamed in Odoo")
        self.assertEqual(ours.name, "Renamed in Odoo")

    # 5. Recurring series

    def book_weekly_series(self, subject="Weekly sync"):
        """Adele books Adams from Outlook for three weeks at 08:00 UTC, and a sync
        imports the three occurrences; returns (series, start, bookings by start)."""
        start = datetime.combine(self.day, datetime.min.time()) + timedelta(hours=8)
        series = self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            subject,
            start.isoformat(),
            (start + timedelta(hours=1)).isoformat(),
            recurrence={
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [self.day.strftime("%A").lower()],
                },
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": 3,
                    "startDate": self.day.isoformat(),
                },
            },
        )
        self.sync()
        Booking = self.env["resource.booking"].with_context(active_test=False)
        weekly = Booking.search([("name", "=", subject)], order="start")
        self.assertEqual(len(weekly), 3)
        self.assertEqual(
            weekly.mapped("start"), [start + timedelta(weeks=i) for i in range(3)]
        )
        return series, start, weekly

    def test_weekly_series_with_a_moved_and_a_cancelled_occurrence(self):
        series, start, weekly = self.book_weekly_series()
        Booking = self.env["resource.booking"].with_context(active_test=False)
        second_day = self.day + timedelta(weeks=1)
        third_day = self.day + timedelta(weeks=2)
        moved = start + timedelta(weeks=1, hours=3)
        self.emulator.change_occurrence(
            ROOM_ADAMS,
            series["id"],
            second_day,
            start=moved.isoformat(),
            end=(moved + timedelta(minutes=30)).isoformat(),
        )
        self.emulator.change_occurrence(
            ROOM_ADAMS, series["id"], third_day, cancel=True
        )
        self.sync()
        self.assertEqual(len(Booking.search([("name", "=", "Weekly sync")])), 3)
        first, second, third = weekly
        self.assertTrue(first.active)
        self.assertEqual(first.start, start)
        self.assertTrue(second.active)
        self.assertEqual(second.start, moved)
        self.assertEqual(second.stop, moved + timedelta(minutes=30))
        self.assertFalse(third.active)
        self.assertEqual(third.state, "canceled")
        self.emulator.store.delete_event(ROOM_ADAMS, series["id"])
        self.sync()
        self.assertFalse(any(weekly.mapped("active")))
        self.assertFalse(weekly.exchange_binding_ids)

    def test_renamed_series_renames_its_moved_occurrence_too(self):
        # Issue 15: renaming a series left its exception's changeKey as it was, so
        # the moved occurrence kept the old title in Odoo while calendarView showed
        # the new one.
        series, start, weekly = self.book_weekly_series()
        moved = start + timedelta(weeks=1, hours=3)
        self.emulator.change_occurrence(
            ROOM_ADAMS,
            series["id"],
            self.day + timedelta(weeks=1),
            start=moved.isoformat(),
            end=(moved + timedelta(minutes=30)).isoformat(),
        )
        self.sync()
        self.assertEqual(weekly[1].start, moved)
        self.emulator.update_booking(ROOM_ADAMS, series["id"], subject="Weekly review")
        self.sync()
        shown = {
            event["id"]: event["subject"]
            for event in self.emulator.store.calendar_view(
                ROOM_ADAMS, start - timedelta(days=1), start + timedelta(weeks=3)
            )
            if event["seriesMasterId"] == series["id"]
        }
        self.assertEqual(sorted(shown.values()), ["Weekly review"] * 3)
        for booking in weekly:
            binding = booking.exchange_binding_ids
            self.assertEqual(shown[binding.external_id], booking.name)
        self.assertEqual(weekly.mapped("name"), ["Weekly review"] * 3)
        self.assertEqual(weekly[1].start, moved)
        self.assertTrue(all(weekly.mapped("active")))

    # 6. Mass cancellation rail

    def test_mass_cancellation_waits_for_confirmation(self):
        events = [
            self.outlook_booking(f"Meeting {hour}", hour_utc=hour, hours=0.5)
            for hour in range(6, 12)
        ]
        self.sync()
        bookings = [self.imported(event["id"]) for event in events]
        self.assertTrue(all(b.active for b in bookings))
        for event in events[:5]:
            self.emulator.cancel_booking(ROOM_ADAMS, event["id"])
        plan = self.sync()
        self.assertTrue(plan.needs_confirmation)
        self.assertTrue(all(b.active for b in bookings))
        self.assertEqual(self.calendar.cancellation_pending, 5)
        self.assertIn("5 meetings", self.calendar.last_error or "")
        self.assertEqual(
            len(self.env["resource.booking"].concat(*bookings).exchange_binding_ids), 6
        )
        self.assertIn(
            "5 cancellations from Outlook wait for confirmation",
            self.calendar.last_sync_summary,
        )
        self.assertNotIn("cancelled from Outlook", self.calendar.last_sync_summary)
        # Later rounds keep them waiting, and counted where the manager looks: the
        # delta link did not move past them (it used to, and they were lost).
        for _round in range(2):
            plan = self.sync()
            self.assertTrue(plan.needs_confirmation)
            self.assertTrue(all(b.active for b in bookings))
            self.assertEqual(self.calendar.cancellation_pending, 5)
            self.assertEqual(self.room.exchange_cancellation_pending, 5)
        self.calendar.action_confirm_cancellations()
        self.assertEqual([b.active for b in bookings], [False] * 5 + [True])
        self.assertEqual(self.calendar.cancellation_pending, 0)
        self.assertFalse(self.calendar.last_error)
        self.assertIn(self.calendar.state, SYNCED_STATES)

    # 7. Conflict policy

    def test_conflict_origin_wins_and_overwritten_values_are_noted(self):
        booking = self.book_in_odoo()
        self.sync()
        event_id = booking.exchange_binding_ids.external_id
        booking.write({"name": "Title set in Odoo"})
        self.emulator.update_booking(
            ROOM_ADAMS, event_id, subject="Title set in Outlook"
        )
        messages = booking.message_ids
        self.sync()
        event = self.emulator.store.get_event(ROOM_ADAMS, event_id)
        self.assertEqual(event["subject"], "Title set in Odoo")
        self.assertEqual(booking.name, "Title set in Odoo")
        notes = booking.message_ids - messages
        self.assertTrue(notes)
        self.assertIn("Title set in Outlook", "".join(notes.mapped("body")))
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        plan = self.sync()
        self.assertFalse(plan.actions)

    def test_conflict_exchange_policy(self):
        self.connection.conflict_policy = "exchange"
        booking = self.book_in_odoo()
        self.sync()
        event_id = booking.exchange_binding_ids.external_id
        booking.write({"name": "Title set in Odoo"})
        moved = booking.start + timedelta(hours=2)
        self.emulator.update_booking(
            ROOM_ADAMS,
            event_id,
            subject="Title set in Outlook",
            start=moved.isoformat(),
            end=(moved + timedelta(hours=1)).isoformat(),
        )
        messages = booking.message_ids
        self.sync()
        self.assertEqual(booking.name, "Title set in Outlook")
        self.assertEqual(booking.start, moved)
        event = self.emulator.store.get_event(ROOM_ADAMS, event_id)
        self.assertEqual(event["subject"], "Title set in Outlook")
        self.assertIn(
            "Title set in Odoo",
            "".join((booking.message_ids - messages).mapped("body")),
        )
        # No ping-pong afterwards.
        plan = self.sync()
        self.assertFalse(plan.actions)
        self.assertEqual(booking.name, "Title set in Outlook")

    # 8. Re-authorization

    def test_reauthorization_resumes_without_duplicates(self):
        first = self.book_in_odoo(hour_utc=8)
        second = self.book_in_odoo(hour_utc=11, name="Second booking")
        self.sync()
        self.assertEqual(len(self.room_events()), 2)
        self.room.action_exchange_remove_authorization()
        self.assertEqual(self.calendar.state, "not_configured")
        self.assertFalse(self.calendar.sync_enabled)
        # Work goes on in Odoo meanwhile.
        second.write({"name": "Renamed while unbound"})
        third = self.book_in_odoo(hour_utc=14, name="Third booking")
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.assertEqual(self.calendar.state, "authorized")
        self.sync()
        self.assertEqual(len(self.room_events(SUBJECT)), 1)
        self.assertEqual(len(self.room_events("Renamed while unbound")), 1)
        self.assertEqual(len(self.room_events("Third booking")), 1)
        self.assertEqual(len(self.room_events()), 3)
        for booking in (first, second, third):
            self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        self.sync(full=True)
        self.assertEqual(len(self.room_events()), 3)

    def test_reauthorization_after_lost_bindings_adopts_the_events(self):
        bookings = self.book_in_odoo(hour_utc=8) | self.book_in_odoo(
            hour_utc=11, name="Second booking"
        )
        self.sync()
        self.room.action_exchange_remove_authorization()
        # Links lost (e.g. restored from a backup taken before the export).
        self.calendar.binding_ids.unlink()
        self.calendar.sudo().delta_link = False
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.sync()
        self.assertEqual(len(self.room_events()), 2)
        self.assertEqual(len(bookings.exchange_binding_ids), 2)
        self.assertEqual(
            set(bookings.exchange_binding_ids.mapped("sync_state")), {"synced"}
        )
        self.assertFalse(
            self.env["resource.booking"].search(
                [
                    ("exchange_origin", "=", "exchange"),
                    ("name", "in", (SUBJECT, "Second booking")),
                ]
            )
        )


@tagged("post_install", "-at_install")
class TestDelegatedSyncScenarios(SyncScenarioMixin, RoomExchangeCase):
    """Delegated rooms. A TransactionCase cannot call Odoo's controller (that needs
    an HttpCase and pytest-odoo's --odoo-http), so the sign-in runs the controller's
    steps directly: the auth flow's _start, the person at the emulator's pages
    (tests.emulator.people.sign_in), then _finish and _after_sign_in."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.remember_seeded_events()
        self.addCleanup(self.emulator.set_switches, delegated_delta_nextlink_403=False)
        self.addCleanup(
            setattr,
            self.emulator.store,
            "delta_default_page_size",
            self.emulator.store.delta_default_page_size,
        )
        self.connection = self.ready_connection("delegated")
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(
            self.connection.redirect_uri
        )
        self.room.write({"exchange_connection_id": self.connection.id})
        self.sign_in(self.room.exchange_calendar_id)
        self.setup_room_sync(self.connection)
        self.assertEqual(self.calendar.auth_mode, "delegated")
        self.assertTrue(self.calendar.account_id)

    def sign_in(self, calendar, person=ADELE):
        import requests

        from tests.emulator.people import sign_in

        microsoft = requests.Session()
        microsoft.trust_env = False
        microsoft.verify = self.emulator_server.ca_bundle_path
        Flow = self.env["room.exchange.auth.flow"].with_user(self.manager)
        auth_uri = Flow._start(calendar.with_user(self.manager), "test-session")
        url, fields = sign_in(microsoft, auth_uri, *person)
        self.assertEqual(url, self.connection.redirect_uri)
        flow = Flow._from_state(fields["state"], "test-session")
        flow._finish(fields)
        calendar._after_sign_in()

    def many_meetings(self, count, first_hour=6):
        return [
            self.outlook_booking(f"Meeting {hour}", hour_utc=hour, hours=0.5)
            for hour in range(first_hour, first_hour + count)
        ]

    # 9. Delegated delta paging refused after the first page

    def test_delta_refused_after_first_page_falls_back_to_calendar_view(self):
        self.emulator.set_switches(delegated_delta_nextlink_403=True)
        self.emulator.store.delta_default_page_size = 2
        events = self.many_meetings(5)
        self.sync()
        for event in events:
            self.assertTrue(self.imported(event["id"]), event["subject"])
        self.assertIn(self.calendar.state, SYNCED_STATES)
        # Later rounds keep working and duplicate nothing.
        more = self.many_meetings(3, first_hour=12)
        self.sync()
        for event in events + more:
            self.assertEqual(
                len(
                    self.env["room.exchange.binding"].search(
                        [("external_id", "=", event["id"])]
                    )
                ),
                1,
            )

    def test_delta_refused_on_an_incremental_round(self):
        self.emulator.set_switches(delegated_delta_nextlink_403=True)
        self.emulator.store.delta_default_page_size = 4
        first = self.outlook_booking("First", hour_utc=5)
        self.sync()  # 3 events (2 seeded): one page, so a delta link is kept
        self.assertTrue(self.imported(first["id"]))
        self.assertTrue(self.calendar.sudo().delta_link)
        events = self.many_meetings(6)
        self.sync()
        for event in events:
            self.assertTrue(self.imported(event["id"]), event["subject"])

    # 10. Revoked refresh token during the cron

    def test_revoked_token_needs_reauthorization_other_rooms_carry_on(self):
        app_connection = self.ready_connection("application")
        _baker, baker_calendar = self.add_room("Baker", ROOM_BAKER, app_connection)
        adams_meeting = self.outlook_booking("Adams meeting")
        baker_meeting = self.outlook_booking("Baker meeting", room=ROOM_BAKER)
        self.emulator.identity.expire_access_tokens()
        self.emulator.identity.revoke_refresh_tokens(upn=ADELE[0])
        # ir.cron._commit_progress COMMITS when called outside a cron run, which a
        # TransactionCase forbids: it is replaced by a no-op here; the rest of
        # _cron_sync (search, try_lock_for_update, per-room _sync) runs for real.
        commits = []

        def no_commit(cron, processed=0, *, remaining=None, deactivate=False):
            commits.append(remaining)
            return float("inf")

        Cron = type(self.env["ir.cron"])
        with patch.object(Cron, "_commit_progress", no_commit):
            self.env["room.exchange.calendar"]._cron_sync()
        # One committed step: the two rooms were synced side by side.
        self.assertEqual(commits, [0])
        self.assertEqual(self.calendar.state, "reauth_needed")
        self.assertIn("new sign-in", self.calendar.last_error)
        self.assertIn(self.manager, self.calendar.activity_ids.user_id)
        self.assertFalse(self.imported(adams_meeting["id"]))
        activities = self.calendar.activity_ids
        self.assertIn(baker_calendar.state, SYNCED_STATES, baker_calendar.last_error)
        self.assertTrue(self.imported(baker_meeting["id"]))
        # The room waiting for a sign-in is left alone by the next cron runs (and
        # Baker was just synced: nothing is due, no step is committed).
        with patch.object(Cron, "_commit_progress", no_commit):
            self.env["room.exchange.calendar"]._cron_sync()
        self.assertEqual(len(commits), 1)
        self.assertEqual(self.calendar.activity_ids, activities)
        self.assertEqual(self.calendar.state, "reauth_needed")


@tagged("post_install", "-at_install")
class TestConcurrentSyncRuns(CommittedRoomMixin, TransactionCase):
    """Two sync runs on one room, each on its own real database connection.

    The test transaction cannot commit and registry.cursor() hands out the test
    cursor in test mode, so the rows are committed through separate connections
    (sql_db.db_connect) and deleted again in a finally block.
    """

    @staticmethod
    def recording_sync(synced):
        """A stand-in for ``_sync_steps`` that records which rooms the cron syncs."""

        def sync_steps(calendar, *args, **kwargs):
            synced.extend(calendar.ids)
            return False
            yield  # a generator of Graph steps, as the real one

        return sync_steps

    def test_second_cursor_cannot_lock_a_room_being_synced(self):
        first, second = self.real_env(), self.real_env()
        self.assertEqual(
            self.calendar_in(first).try_lock_for_update(), self.calendar_in(first)
        )
        self.assertFalse(self.calendar_in(second).try_lock_for_update())
        first.cr.rollback()
        self.assertTrue(self.calendar_in(second).try_lock_for_update())
        second.cr.rollback()

    def test_cron_skips_a_room_locked_by_another_run(self):
        first, second = self.real_env(), self.real_env()
        self.assertTrue(self.calendar_in(first).try_lock_for_update())
        synced = []
        Calendar = type(second["room.exchange.calendar"])
        with patch.object(Calendar, "_sync_steps", self.recording_sync(synced)):
            second["room.exchange.calendar"]._cron_sync()
            self.assertNotIn(self.row_ids[2], synced)
            first.cr.rollback()
            second["room.exchange.calendar"]._cron_sync()
            self.assertIn(self.row_ids[2], synced)

    def test_room_synced_by_another_run_since_the_search_does_not_fail_the_cron(self):
        first, second = self.real_env(), self.real_env()
        Calendar = type(second["room.exchange.calendar"])
        original_lock = Calendar.try_lock_for_update
        synced = []

        def lock_after_another_run(calendar, **kwargs):
            if not synced:
                synced.append("worker A")
                other = self.calendar_in(first)
                self.assertTrue(other.try_lock_for_update())
                other.write({"last_sync_summary": "synced by worker A"})
                first.cr.commit()
            return original_lock(calendar, **kwargs)

        try:
            with (
                patch.object(Calendar, "_sync_steps", self.recording_sync(synced)),
                patch.object(Calendar, "try_lock_for_update", lock_after_another_run),
            ):
                second["room.exchange.calendar"]._cron_sync()
        finally:
            second.cr.rollback()
        self.assertEqual(synced[0], "worker A")

    # Gap: room_exchange_calendar_sync.py, action_sync_now (and action_full_resync,
    # action_confirm_cancellations) call _sync() without try_lock_for_update(): a
    # manual "Sync now" while the cron holds the room runs a second round on it at
    # the same time (both read Exchange and send their writes; the manual one then
    # waits on the room row and, under REPEATABLE READ, should end in a serialization
    # error once the cron commits). It should skip, or answer "a sync is already
    # running", when the lock cannot be taken.

    def test_manual_sync_skips_a_room_locked_by_the_cron(self):
        first, second = self.real_env(), self.real_env()
        self.assertTrue(self.calendar_in(first).try_lock_for_update())
        synced = []
        Calendar = type(second["room.exchange.calendar"])
        try:
            with patch.object(
                Calendar, "_sync", lambda calendar, **kw: synced.extend(calendar.ids)
            ):
                self.calendar_in(second).action_sync_now()
        except Exception:  # noqa: BLE001 - the notification itself is not tested
            _logger.info("manual sync answered with an error, as it may")
        finally:
            first.cr.rollback()
            second.cr.rollback()
        self.assertNotIn(self.row_ids[2], synced)
