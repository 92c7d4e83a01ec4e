# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Two-way sync between Odoo bookings and the emulator's room calendar."""

from datetime import datetime, timedelta

from markupsafe import Markup

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .. import engine
from ..sync import seams
from .common import ADELE, ROOM_ADAMS, RoomExchangeCase

MARKER_SUBJECT = "Odoo board review"


@tagged("post_install", "-at_install")
class TestTwoWaySync(RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        connection = self.ready_connection("application")
        self.bind_room_for_sync(connection)

    # helpers

    def sync(self, **kwargs):
        plan = self.calendar._sync(**kwargs)
        self.assertTrue(plan, self.calendar.last_error)
        return plan

    def room_events(self, subject=None):
        events = self.emulator.store.snapshot(ROOM_ADAMS)
        return [e for e in events if subject is None or e.get("subject") == subject]

    def outlook_booking(self, subject, hour_utc=13, hours=1.0, **kwargs):
        start = datetime.combine(self.day, datetime.min.time()) + timedelta(
            hours=hour_utc
        )
        return self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
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

    # Odoo -> Exchange

    def test_odoo_booking_appears_in_the_room_calendar(self):
        booking = self.book_in_odoo()
        self.sync()
        events = self.room_events(MARKER_SUBJECT)
        self.assertEqual(len(events), 1)
        event = events[0]
        self.assertEqual(event["attendees"], [])
        self.assertEqual(
            event["start"]["dateTime"][:16], booking.start.isoformat()[:16]
        )
        self.assertTrue(event.get("transactionId"))
        self.assertEqual(self.calendar.state, "syncing")
        binding = booking.exchange_binding_ids
        self.assertEqual(binding.external_id, event["id"])
        self.assertEqual(binding.sync_state, "synced")
        self.assertEqual(booking.exchange_sync_state, "synced")

    def test_nothing_to_do_is_one_request_and_no_write(self):
        self.book_in_odoo()
        self.sync()
        self.emulator.clear_log()
        plan = self.sync()
        self.assertFalse(plan.actions)
        graph_calls = [
            entry
            for entry in self.emulator.request_log
            if "/v1.0/" in entry.get("path", "")
        ]
        self.assertEqual(len(graph_calls), 1, graph_calls)
        sign_ins = [
            entry
            for entry in self.emulator.request_log
            if "/oauth2/" in entry.get("path", "") or "openid" in entry.get("path", "")
        ]
        self.assertFalse(sign_ins, "the app token is reused between rounds")
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)

    def test_reschedule_in_odoo_moves_the_event(self):
        booking = self.book_in_odoo()
        self.sync()
        booking.write({"start": booking.start + timedelta(hours=2)})
        self.assertEqual(booking.exchange_binding_ids.sync_state, "pending")
        self.sync()
        (event,) = self.room_events(MARKER_SUBJECT)
        self.assertEqual(
            event["start"]["dateTime"][:16], booking.start.isoformat()[:16]
        )

    def test_cancel_in_odoo_deletes_the_event(self):
        booking = self.book_in_odoo()
        self.sync()
        booking.action_cancel()
        self.sync()
        self.assertFalse(self.room_events(MARKER_SUBJECT))
        self.assertFalse(booking.exchange_binding_ids)

    def test_deleting_a_booking_deletes_the_event(self):
        booking = self.book_in_odoo()
        self.sync()
        booking.unlink()
        binding = self.calendar.binding_ids.filtered(lambda b: not b.booking_id)
        self.assertEqual(binding.sync_state, "deleted_local")
        self.sync()
        self.assertFalse(self.room_events(MARKER_SUBJECT))
        self.assertFalse(binding.exists())

    def test_privacy_busy_only(self):
        self.calendar.privacy_mode = "busy"
        self.book_in_odoo()
        self.sync()
        self.assertFalse(self.room_events(MARKER_SUBJECT))
        self.assertEqual(len(self.room_events("Busy")), 1)

    def test_changing_what_the_room_shows_rewrites_only_odoo_events(self):
        booking = self.book_in_odoo()
        meeting = self.outlook_booking("Team lunch")
        self.sync()
        self.sync()
        self.assertFalse(self.sync().actions, "nothing changed: an idle round")
        change_key = self.emulator.store.get_event(ROOM_ADAMS, meeting["id"])[
            "changeKey"
        ]
        self.calendar.privacy_mode = "busy"
        plan = self.sync()
        # The Odoo booking now shows as Busy; the meeting booked in Outlook (and the
        # scenario's seeded ones) are not Odoo's to rewrite.
        updates = [
            action
            for action in plan.actions
            if action.kind == engine.ActionKind.UPDATE_REMOTE
        ]
        self.assertEqual([action.booking_id for action in updates], booking.ids)
        self.assertEqual(len(self.room_events("Busy")), 1)
        self.assertFalse(self.room_events(MARKER_SUBJECT))
        outlook = self.emulator.store.get_event(ROOM_ADAMS, meeting["id"])
        self.assertEqual(outlook["subject"], "Team lunch")
        self.assertEqual(outlook["changeKey"], change_key)
        self.calendar.privacy_mode = "full"
        self.sync()
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")

    # Exchange -> Odoo

    def test_outlook_meeting_blocks_the_room_in_odoo(self):
        event = self.outlook_booking("Team lunch")
        mails_before = self.env["mail.mail"].search_count([])
        messages_before_id = self.env["mail.message"].search([], limit=1).id or 0
        self.sync()
        booking = self.imported(event["id"])
        self.assertEqual(booking.exchange_origin, "exchange")
        self.assertEqual(booking.name, "Team lunch")
        self.assertEqual(booking.exchange_organizer_name, "Adele Vance")
        self.assertFalse(booking.exchange_organizer_email)
        self.assertEqual(self.env["mail.mail"].search_count([]), mails_before)
        # No chatter noise: only the sync history's note on each imported booking,
        # which notifies nobody.
        imported = self.env["resource.booking"].search(
            [("exchange_origin", "=", "exchange")]
        )
        new_messages = self.env["mail.message"].search(
            [("id", ">", messages_before_id)]
        )
        self.assertEqual(sorted(new_messages.mapped("res_id")), sorted(imported.ids))
        self.assertEqual(set(new_messages.mapped("message_type")), {"notification"})
        self.assertFalse(new_messages.partner_ids)
        with self.assertRaises(ValidationError):
            self.book_in_odoo(hour_utc=13, name="Clash")

    def test_outlook_changes_and_cancellations_reach_odoo(self):
        event = self.outlook_booking("Planning")
        self.sync()
        booking = self.imported(event["id"])
        moved = datetime.combine(self.day, datetime.min.time()) + timedelta(hours=15)
        self.emulator.update_booking(
            ROOM_ADAMS,
            event["id"],
            subject="Planning (moved)",
            start=moved.isoformat(),
            end=(moved + timedelta(minutes=30)).isoformat(),
        )
        self.sync()
        self.assertEqual(booking.start, moved)
        self.assertEqual(booking.stop, moved + timedelta(minutes=30))
        self.assertEqual(booking.name, "Planning (moved)")
        self.emulator.cancel_booking(ROOM_ADAMS, event["id"])
        self.sync()
        self.assertFalse(booking.active)
        self.assertEqual(booking.state, "canceled")

    def history(self, booking):
        """The sync's notes in the booking's chatter, oldest first, as text."""
        messages = booking.message_ids.filtered(
            lambda message: "Exchange calendar" in (message.body or "")
        )
        return [str(message.body) for message in messages.sorted("id")]

    def test_sync_history_in_the_booking_chatter(self):
        booking = self.book_in_odoo()
        self.sync()
        (added,) = self.history(booking)
        self.assertIn("Added to the Exchange calendar of", added)
        booking.name = "Renamed in Odoo"
        self.sync()
        self.assertIn(
            "Changes sent to the Exchange calendar", self.history(booking)[-1]
        )
        # A refused write is noted once, with the reason, not at every retry.
        self.emulator.faults.add(
            {
                "kind": "status",
                "status": 400,
                "code": "ErrorInvalidRequest",
                "method": "PATCH",
                "path": r"/events/",
                "times": None,
            }
        )
        booking.name = "Renamed again"
        self.sync()
        self.sync(full=True)
        failures = [text for text in self.history(booking) if "Could not" in text]
        self.assertEqual(len(failures), 1, self.history(booking))
        self.emulator.faults.clear()

        event = self.outlook_booking("Planning")
        self.sync()
        imported = self.imported(event["id"])
        self.assertIn("Imported from the Exchange calendar", self.history(imported)[0])
        moved = datetime.combine(self.day, datetime.min.time()) + timedelta(hours=15)
        self.emulator.update_booking(
            ROOM_ADAMS,
            event["id"],
            start=moved.isoformat(),
            end=(moved + timedelta(hours=1)).isoformat(),
        )
        self.sync()
        self.assertIn("Updated from the Exchange calendar", self.history(imported)[-1])
        self.assertIn("start", self.history(imported)[-1])
        self.emulator.cancel_booking(ROOM_ADAMS, event["id"])
        self.sync()
        self.assertIn("Cancelled because", self.history(imported)[-1])

    def test_sync_history_notes_read_as_odoo_log_notes(self):
        """The history is written with one INSERT: its notes are what
        _message_log_batch stores (internal notes by the running user), notify
        nobody, and show in the booking's chatter at once."""
        booking = self.book_in_odoo()
        reference = booking._message_log_batch({booking.id: Markup("<p>Reference</p>")})
        self.assertEqual(booking.message_ids[:1], reference)  # cached before the round
        self.sync()
        (note,) = booking.message_ids.filtered(
            lambda message: "Added to the Exchange calendar" in (message.body or "")
        )
        # Every stored field but those of the note itself.
        own = {"id", "body", "date", "create_date", "write_date", "message_id"}
        compared = [
            name
            for name, field in note._fields.items()
            if field.store and name not in own
        ]
        expected = reference.read(compared)[0]
        got = note.read(compared)[0]
        del expected["id"], got["id"]
        self.assertEqual(got, expected)
        self.assertEqual(note.create_uid, self.env.user)
        self.assertTrue(note.message_id)
        self.assertFalse(
            self.env["mail.notification"].search_count(
                [("mail_message_id", "=", note.id)]
            )
        )

    def test_private_meeting_hides_its_subject(self):
        event = self.outlook_booking("Secret merger talk", sensitivity="private")
        self.sync()
        booking = self.imported(event["id"])
        self.assertEqual(booking.name, "Private meeting")

    def test_recurring_series_gives_one_booking_per_occurrence(self):
        start = datetime.combine(self.day, datetime.min.time()) + timedelta(hours=7)
        self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Standup",
            start.isoformat(),
            (start + timedelta(minutes=15)).isoformat(),
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": 3,
                    "startDate": self.day.isoformat(),
                },
            },
        )
        self.sync()
        standups = self.env["resource.booking"].search([("name", "=", "Standup")])
        self.assertEqual(len(standups), 3)

    # Faults

    def test_lost_answer_after_create_makes_no_duplicate(self):
        self.book_in_odoo()
        self.emulator.faults.add(
            {"kind": "timeout_after_apply", "method": "POST", "path": r"\$batch"}
        )
        self.sync()
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.sync()
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)

    def test_crash_after_graph_answered_makes_no_duplicate(self):
        booking = self.book_in_odoo()

        def crash_after_graph(mailbox, results):
            raise RuntimeError("worker killed")

        with seams.hooked(seams.WRITES_ANSWERED, crash_after_graph):
            self.assertFalse(self.calendar._sync())
        self.assertEqual(self.calendar.state, "error")
        self.assertIn("RuntimeError", self.calendar.last_error)
        self.assertFalse(booking.exchange_binding_ids)
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.sync()
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")

    def test_throttling_and_outages_are_ridden_out(self):
        for hour in range(6, 11):
            self.book_in_odoo(hour_utc=hour, name=f"Slot {hour}")
        self.emulator.faults.set_random(seed=7, rate=0.3, kinds=["429", "503"])
        self.calendar._sync()
        self.emulator.faults.clear()
        self.sync()
        for hour in range(6, 11):
            self.assertEqual(len(self.room_events(f"Slot {hour}")), 1)

    def test_expired_delta_token_means_full_round_without_duplicates(self):
        self.book_in_odoo()
        event = self.outlook_booking("Review")
        self.sync()
        self.emulator.store.expire_delta_tokens(ROOM_ADAMS)
        self.sync()
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.assertEqual(
            self.env["room.exchange.binding"].search_count(
                [("external_id", "=", event["id"])]
            ),
            1,
        )

    def test_empty_mailbox_never_wipes_the_room(self):
        for hour in range(6, 12):
            self.outlook_booking(f"Meeting {hour}", hour_utc=hour, hours=0.5)
        self.sync()
        imported = self.env["resource.booking"].search(
            [("exchange_origin", "=", "exchange")]
        )
        self.assertGreaterEqual(len(imported), 6)
        self.emulator.store.reset(keep_mailboxes=True)
        plan = self.calendar._sync(full=True)
        self.assertFalse(plan)
        self.assertEqual(self.calendar.state, "error")
        self.assertIn("empty calendar", self.calendar.last_error)
        self.assertTrue(all(imported.mapped("active")))

    def test_overlap_of_outlook_meeting_and_odoo_booking_is_flagged(self):
        booking = self.book_in_odoo(hour_utc=9)
        self.sync()
        self.outlook_booking("Walk-in", hour_utc=9, hours=0.5)
        self.sync()
        walk_in = self.env["resource.booking"].search([("name", "=", "Walk-in")])
        self.assertTrue(walk_in)
        self.assertTrue(booking.exchange_overlap)
        self.assertTrue(walk_in.exchange_overlap)

    def test_bookings_outside_the_window_are_left_alone(self):
        booking = self.book_in_odoo()
        event = self.outlook_booking("Imported")
        self.sync()
        imported = self.imported(event["id"])
        # The window moves on (here: it shrinks to end before both meetings), so a
        # full round no longer lists them: that is not a removal.
        self.calendar.connection_id.sync_future_days = 1
        self.sync(full=True)
        self.assertEqual(len(self.room_events(MARKER_SUBJECT)), 1)
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        self.assertTrue(imported.active)
        self.assertEqual(imported.exchange_binding_ids.external_id, event["id"])

    # Query budgets (performance; see scripts/bench.py)

    def book_in_outlook(self, count, first_day):
        """``count`` half-hour Outlook meetings, ten a day from ``first_day``."""
        for index in range(count):
            day = first_day + timedelta(days=index // 10)
            start = datetime.combine(day, datetime.min.time()) + timedelta(
                hours=7 + index % 10
            )
            self.emulator.book_room(
                ADELE[0],
                ROOM_ADAMS,
                f"Outlook meeting {first_day} {index}",
                start.isoformat(),
                (start + timedelta(minutes=30)).isoformat(),
            )

    def counted_sync(self):
        """Queries of one ``_sync()`` from a cold cache, flushed."""
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        self.sync()
        self.env.flush_all()
        return self.env.cr.sql_log_count - before

    def test_idle_round_query_budget(self):
        for hour in (8, 10, 12):
            self.book_in_odoo(hour_utc=hour, name=f"Budget {hour}")
        self.book_in_outlook(3, self.day + timedelta(days=1))
        self.sync()
        self.assertFalse(self.sync().actions)
        self.env.invalidate_all()
        # The sync issue's budget for a room with nothing to do is 10; it takes 8
        # from a cold cache: 2 of the savepoint, 1 calendar, 2 connection and its
        # credentials, 2 (bindings; bookings with all their payloads read), 1 UPDATE
        # of the round's date; nothing per booking. (A cron round, in a transaction
        # of its own, adds the transaction's now(): 9.)
        with self.assertQueryCount(8):
            plan = self.calendar._sync()
            self.env.flush_all()
        self.assertFalse(plan.actions)

    def test_import_queries_do_not_grow_with_the_meetings(self):
        self.sync()
        Binding = self.env["room.exchange.binding"]
        domain = [("calendar_id", "=", self.calendar.id), ("origin", "=", "exchange")]
        known = Binding.search_count(domain)
        self.book_in_outlook(5, self.day)
        five = self.counted_sync()
        self.book_in_outlook(25, self.day + timedelta(days=7))
        twenty_five = self.counted_sync()
        self.assertEqual(Binding.search_count(domain) - known, 30)
        # Five times the meetings in one delta page, the same queries: bookings,
        # their meetings (resource_booking would make one per booking), bindings
        # and chatter notes are created in batches, related records read in bulk.
        self.assertLessEqual(twenty_five, five + 2, (five, twenty_five))

    def test_a_failing_import_in_a_batch_spares_the_others(self):
        def import_values(vals_list):
            if any(values["name"] == "Broken" for values in vals_list):
                raise ValueError("cannot import this one")

        self.outlook_booking("Fine 1", hour_utc=8)
        broken = self.outlook_booking("Broken", hour_utc=10)
        self.outlook_booking("Fine 2", hour_utc=12)
        with seams.hooked(seams.MEETING_IMPORTING, import_values):
            self.sync()
        names = set(
            self.env["resource.booking"]
            .search([("name", "in", ["Fine 1", "Fine 2", "Broken"])])
            .mapped("name")
        )
        self.assertEqual(names, {"Fine 1", "Fine 2"})
        self.assertFalse(self.imported(broken["id"]))
        # Nothing is lost: the next full round imports it.
        self.sync(full=True)
        self.assertTrue(self.imported(broken["id"]))

    def test_resync_this_booking_pushes_it_again(self):
        booking = self.book_in_odoo()
        self.sync()
        event_id = booking.exchange_binding_ids.external_id
        # A body edited in Outlook is not a synced field: a plain sync keeps it.
        self.emulator.store.update_event(
            ROOM_ADAMS, event_id, {"body": {"contentType": "text", "content": "x"}}
        )
        self.sync()
        (event,) = self.room_events(MARKER_SUBJECT)
        self.assertEqual(event["body"]["content"], "x")
        booking.with_user(self.manager).action_exchange_resync()
        self.assertEqual(booking.exchange_binding_ids.sync_state, "pending")
        self.sync()
        (event,) = self.room_events(MARKER_SUBJECT)
        self.assertEqual(event["id"], event_id)
        self.assertNotEqual(event["body"]["content"], "x")
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")

    def test_a_capped_round_says_what_it_left_for_later(self):
        for hour in (6, 7, 8):
            self.book_in_odoo(hour_utc=hour, name=f"Capped {hour}")
        self.assertTrue(self.calendar._sync(max_creates=2))
        made = [e for e in self.room_events() if e["subject"].startswith("Capped")]
        self.assertEqual(len(made), 2)
        summary = self.calendar.last_sync_summary
        self.assertIn("1 left for the next export step", summary)
        self.assertIn("2 added to Exchange", summary)
