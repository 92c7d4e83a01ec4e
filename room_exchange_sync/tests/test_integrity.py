# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Nothing lost, nothing silently wrong (issue 15), end to end against the emulator:
a forgotten sync state, a changed mailbox, unreadable items, counts of what was
done, meetings booked in Outlook, zero-length meetings and cancelled bookings."""

from datetime import datetime, timedelta
from unittest.mock import patch

from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, JsonRpcException, tagged

from tests.emulator.calendar_store import GARBLE_DROP

from .. import engine
from .common import ADELE, ROOM_ADAMS, RoomExchangeCase
from .test_sync_scenarios import ROOM_BAKER, SUBJECT, SYNCED_STATES, SyncScenarioMixin


@tagged("post_install", "-at_install")
class TestIntegrity(SyncScenarioMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.start_app_only_room()

    def test_a_forgotten_sync_state_restarts_the_delta_by_itself(self):
        before = self.outlook_booking("Before the loss", hour_utc=9)
        self.sync()
        self.sync()
        self.assertTrue(self.calendar.sudo().delta_link)
        # Exchange lost its sync states: the stored token is now unknown (400).
        self.emulator.store.forget_delta_tokens()
        after = self.outlook_booking("After the loss", hour_utc=11)
        self.sync()
        self.assertIn(self.calendar.state, SYNCED_STATES, self.calendar.last_error)
        self.assertFalse(self.calendar.last_error)
        self.assertEqual(
            self.calendar.last_full_sync_date, self.calendar.last_sync_date
        )
        self.assertTrue(self.imported(before["id"]).active)
        self.assertTrue(self.imported(after["id"]).active)
        self.sync()
        self.assertIn(self.calendar.state, SYNCED_STATES)

    def test_an_event_whose_create_was_not_recorded_goes_with_its_booking(self):
        """Found by the chaos soak (seed 67 at 300 operations): a create's answer is
        lost, the round fails, and the booking is deleted before the next round."""
        booking = self.book_in_odoo(hour_utc=9)
        Connection = type(self.env["room.exchange.connection"])
        original = Connection._graph_client

        def graph_client(connection, token_source):
            client = original(connection, token_source)
            client.sleep = lambda seconds: None
            return client

        self.emulator.faults.add(
            {
                "kind": "timeout_after_apply",
                "method": "POST",
                "path": r"/\$batch$",
                "times": 10,
            }
        )
        with patch.object(Connection, "_graph_client", graph_client):
            self.assertIs(self.calendar._sync(), False)
        self.emulator.faults.clear()
        self.assertEqual(len(self.room_events(SUBJECT)), 1, "created all the same")
        self.assertFalse(booking.exchange_binding_ids.external_id)
        booking.unlink()
        self.sync()
        self.assertFalse(self.room_events(SUBJECT))
        self.assertIn("1 removed from Exchange", self.calendar.last_sync_summary)

    def test_a_changed_mailbox_is_read_afresh_and_the_old_calendar_is_left(self):
        booking = self.book_in_odoo(hour_utc=9)
        old_meeting = self.outlook_booking("Booked in Adams", hour_utc=13)
        self.sync()
        self.sync()
        imported_old = self.imported(old_meeting["id"])
        self.assertTrue(imported_old.active)
        old_event_id = booking.exchange_binding_ids.external_id
        # A meeting in Baker at the same time as the Odoo booking.
        baker_meeting = self.outlook_booking(
            "Booked in Baker", hour_utc=9, hours=0.5, room=ROOM_BAKER
        )
        room = self.room.with_user(self.manager)
        room.write({"exchange_mailbox": ROOM_BAKER})
        self.assertEqual(self.calendar.state, "not_configured")
        self.assertIn("click Save", self.calendar.last_error)
        room.action_exchange_save()
        self.assertEqual(self.calendar.state, "authorized", self.calendar.last_error)
        self.sync()
        # Baker's meeting is in Odoo, and holds the room at the Odoo booking's time.
        imported_new = self.imported(baker_meeting["id"])
        self.assertTrue(imported_new.active)
        self.assertEqual(imported_new.exchange_binding_ids.calendar_id, self.calendar)
        self.assertTrue(booking.exchange_overlap)
        self.assertTrue(imported_new.exchange_overlap)
        # The Odoo booking is in Baker's calendar, and still in Adams' (left there).
        self.assertEqual(len(self.room_events(SUBJECT, mailbox=ROOM_BAKER)), 1)
        self.assertEqual(
            booking.exchange_binding_ids.external_id,
            self.room_events(SUBJECT, mailbox=ROOM_BAKER)[0]["id"],
        )
        self.assertTrue(self.emulator.store.get_event(ROOM_ADAMS, old_event_id))
        # Adams' meeting no longer holds this room.
        self.assertFalse(imported_old.active)
        self.assertIn(
            "no longer the Exchange calendar",
            "".join(imported_old.message_ids.mapped("body")),
        )
        note = self.calendar.message_ids[0].body
        self.assertIn(ROOM_ADAMS, note)
        self.assertIn(ROOM_BAKER, note)
        self.assertIn("stay there", note)
        # Nothing more to do afterwards, and no twin anywhere.
        plan = self.sync()
        self.assertFalse(plan.count(engine.ActionKind.CREATE_REMOTE))
        self.assertFalse(plan.count(engine.ActionKind.CREATE_LOCAL))

    def test_the_same_calendar_under_another_address_keeps_its_links(self):
        booking = self.book_in_odoo(hour_utc=9)
        self.sync()
        binding = booking.exchange_binding_ids
        self.calendar.sudo().write({"mailbox": ROOM_ADAMS.upper()})
        self.calendar._bind_mailbox(ROOM_ADAMS.upper())
        self.sync()
        self.assertEqual(booking.exchange_binding_ids, binding)
        self.assertEqual(len(self.room_events(SUBJECT)), 1)


# Every way an item of the room's calendar can be unreadable (or not mirrorable),
# as the emulator serves it (CalendarStore.garble), over HTTPS.
def unreadable_variants(event):
    start = event["start"]["dateTime"][:19]
    before = (datetime.fromisoformat(start) - timedelta(hours=1)).isoformat()
    return {
        "end before start": {"end.dateTime": before},
        "unknown time zone": {"start.timeZone": "Mars/Olympus Mons"},
        "unreadable date": {"start.dateTime": "tomorrow at noon"},
        "date out of range": {"end.dateTime": "0001-01-01T00:00:00"},
        "date of a wrong type": {"start.dateTime": 1700000000},
        "start not an object": {"start": "2027-01-01T09:00:00"},
        "subject of a wrong type": {"subject": 12345},
        "flag of a wrong type": {"isAllDay": "yes"},
        "organizer of a wrong type": {"organizer": ["x"]},
        "body of a wrong type": {"body": "<p>not an object</p>"},
        "no length": {"end.dateTime": start},
        "no id": {"id": GARBLE_DROP},
        "id of a wrong type": {"id": ["not", "a", "string"]},
        "id a database cannot store": {"id": event["id"] + "\x00"},
        "not an object": {"": "an event"},
    }


@tagged("post_install", "-at_install")
class TestUnreadableItems(SyncScenarioMixin, RoomExchangeCase):
    """An item that exists but cannot be read never cancels or changes anything;
    the room lists it, with the reason, until it is readable."""

    def setUp(self):
        super().setUp()
        self.start_app_only_room()
        self.odoo_booking = self.book_in_odoo(hour_utc=9)
        self.meeting = self.outlook_booking("Booked in Outlook", hour_utc=13)
        self.sync()
        self.sync()
        self.imported_booking = self.imported(self.meeting["id"])
        self.odoo_event_id = self.odoo_booking.exchange_binding_ids.external_id
        self.addCleanup(self.emulator.store._garbled.clear)

    def assert_untouched(self, case):
        self.assertIn(self.calendar.state, SYNCED_STATES, self.calendar.last_error)
        for booking in (self.imported_booking, self.odoo_booking):
            self.assertTrue(booking.active, case)
            self.assertEqual(len(booking.exchange_binding_ids), 1, case)
        self.assertEqual(
            self.imported_booking.exchange_binding_ids.external_id,
            self.meeting["id"],
        )
        self.assertEqual(
            self.odoo_booking.exchange_binding_ids.external_id, self.odoo_event_id
        )
        self.assertEqual(len(self.room_events(SUBJECT)), 1, f"{case}: a twin")
        self.assertEqual(
            self.env["resource.booking"].search_count(
                [("name", "=", "Booked in Outlook")]
            ),
            1,
            f"{case}: imported again",
        )

    def test_every_unreadable_item_cancels_nothing_and_is_listed(self):
        for case, overrides in unreadable_variants(self.meeting).items():
            with self.subTest(case):
                for event_id in (self.meeting["id"], self.odoo_event_id):
                    self.emulator.store.garble(ROOM_ADAMS, event_id, overrides)
                self.sync()
                self.sync(full=True)
                self.sync()
                self.assert_untouched(case)
                self.assertGreaterEqual(self.calendar.item_problem_count, 1, case)
                self.assertIn("cannot be synced", self.calendar.last_sync_summary)
                self.assertTrue(self.room.exchange_item_problem_text)
                if case not in ("no id", "id of a wrong type", "not an object") and (
                    "database" not in case
                ):
                    binding = self.imported_booking.exchange_binding_ids
                    self.assertEqual(binding.sync_state, "error", case)
                    self.assertIn("cannot be synced", binding.sync_error)
                    self.assertEqual(
                        self.imported_booking.exchange_sync_state, "error", case
                    )
                # Readable again: listed no more, linked and synced as before.
                for event_id in (self.meeting["id"], self.odoo_event_id):
                    self.emulator.store.garble(ROOM_ADAMS, event_id, None)
                self.sync()
                self.sync(full=True)
                self.assert_untouched(case)
                self.assertFalse(self.calendar.item_problems, case)
                self.assertEqual(
                    set(
                        (
                            self.imported_booking | self.odoo_booking
                        ).exchange_binding_ids.mapped("sync_state")
                    ),
                    {"synced"},
                    case,
                )

    def test_a_meeting_of_no_length_keeps_its_booking_and_says_so(self):
        start = self.meeting["start"]["dateTime"][:19]
        self.emulator.update_booking(ROOM_ADAMS, self.meeting["id"], end=start)
        stop = self.imported_booking.stop
        self.sync()
        self.assertEqual(self.imported_booking.stop, stop)
        self.assertEqual(self.imported_booking.exchange_sync_state, "error")
        self.assertIn("lasts no time", self.calendar.item_problem_text)
        self.assertIn(
            "lasts no time", self.imported_booking.exchange_binding_ids.sync_error
        )


@tagged("post_install", "-at_install")
class TestCountsOfWhatWasDone(SyncScenarioMixin, RoomExchangeCase):
    """Summaries count what was committed; what failed is listed and retried."""

    def setUp(self):
        super().setUp()
        self.start_app_only_room()
        self.sync()

    def test_a_subject_with_a_nul_character_is_imported_cleaned(self):
        meeting = self.outlook_booking("Board\x00 meeting", hour_utc=10)
        self.sync()
        booking = self.imported(meeting["id"])
        self.assertEqual(booking.name, "Board meeting")
        self.assertIn("1 imported from Outlook", self.calendar.last_sync_summary)
        self.assertFalse(self.calendar.item_problems)

    def test_imports_that_fail_are_not_counted_listed_and_retried(self):
        meetings = [
            self.outlook_booking(f"Meeting {hour}", hour_utc=hour, hours=0.5)
            for hour in (8, 10, 12)
        ]
        Booking = type(self.env["resource.booking"])
        original = Booking.create
        failing = {"Meeting 10"}

        def create(records, vals_list):
            if any(vals.get("name") in failing for vals in vals_list):
                raise ValidationError(
                    records.env._("This room cannot take that meeting now.")
                )
            return original(records, vals_list)

        with patch.object(Booking, "create", create):
            self.sync()
            summary = self.calendar.last_sync_summary
            self.assertIn("2 imported from Outlook", summary)
            self.assertIn("1 Outlook meetings not imported yet", summary)
            self.assertFalse(self.imported(meetings[1]["id"]))
            self.assertIn("could not be imported", self.calendar.item_problem_text)
            self.assertIn("cannot take that meeting", self.calendar.item_problem_text)
            failing.update({"Meeting 8", "Meeting 12"})
            self.sync()
            self.assertFalse(self.imported(meetings[1]["id"]))
            self.assertNotIn("imported from Outlook", self.calendar.last_sync_summary)
        # The failure is gone: the next round reads the meeting again and imports it.
        self.sync()
        self.assertTrue(self.imported(meetings[1]["id"]).active)
        self.assertIn("1 imported from Outlook", self.calendar.last_sync_summary)
        self.assertFalse(self.calendar.item_problems)

    def test_all_creations_failing_are_not_reported_as_imported(self):
        for hour in (8, 10, 12):
            self.outlook_booking(f"Meeting {hour}", hour_utc=hour, hours=0.5)
        Booking = type(self.env["resource.booking"])

        def create(records, vals_list):
            raise ValidationError(records.env._("No."))

        with patch.object(Booking, "create", create):
            self.sync()
        summary = self.calendar.last_sync_summary
        self.assertNotIn("imported from Outlook", summary)
        self.assertIn("3 Outlook meetings not imported yet", summary)
        self.assertEqual(self.calendar.item_problem_count, 3)


@tagged("post_install", "-at_install")
class TestMeetingsBookedInOutlook(SyncScenarioMixin, RoomExchangeCase, HttpCase):
    """A meeting booked in Outlook belongs to its organizer: read-only in Odoo,
    never PATCHed; a booking manager may cancel it, and the room declines it."""

    def setUp(self):
        super().setUp()
        self.start_app_only_room()
        self.meeting = self.outlook_booking("Quarterly review", hour_utc=13)
        self.sync()
        self.sync()
        self.booking = self.imported(self.meeting["id"])
        self.assertEqual(self.booking.exchange_origin, "exchange")
        self.addCleanup(setattr, self.emulator.store, "declined_meetings_stay", False)

    def rpc(self, login, method, args, kwargs=None):
        self.authenticate(login, login)
        try:
            return self.make_jsonrpc_request(
                f"/web/dataset/call_kw/resource.booking/{method}",
                {
                    "model": "resource.booking",
                    "method": method,
                    "args": args,
                    "kwargs": kwargs or {},
                },
            )
        except JsonRpcException as error:
            return str(error)

    def test_it_is_read_only_in_odoo_for_everyone_even_an_admin(self):
        admin = self.env.ref("base.user_admin")
        admin.password = "admin"
        day = self.booking.start.date().isoformat()
        for values in (
            {"name": "Renamed in Odoo"},
            {"start": f"{day} 15:00:00"},
            {"duration": 3},
            {"description": "<p>edited</p>"},
            {"combination_id": self.booking.combination_id.id},
        ):
            with self.subTest(values):
                answer = self.rpc("admin", "write", [self.booking.ids, values])
                self.assertEqual(answer, "odoo.exceptions.UserError")
        self.assertEqual(self.booking.name, "Quarterly review")
        with self.assertRaisesRegex(UserError, "booked in Outlook"):
            self.booking.meeting_id.with_user(admin).write(
                {"start": self.booking.start + timedelta(hours=1)}
            )
        arch = self.env["resource.booking"].get_views([(False, "form")])["views"][
            "form"
        ]["arch"]
        self.assertRegex(
            arch, r'name="name"[^>]*readonly="exchange_origin == .exchange.'
        )
        self.emulator.clear_log()
        self.sync(full=True)
        self.assertFalse(
            [e for e in self.emulator.request_log if e["method"] == "PATCH"]
        )

    def test_a_change_that_slips_through_is_put_back_never_patched(self):
        self.env.cr.execute(
            "UPDATE resource_booking SET name = 'Changed by SQL' WHERE id = %s",
            [self.booking.id],
        )
        self.booking.invalidate_recordset()
        self.emulator.clear_log()
        self.sync(full=True)
        self.assertEqual(self.booking.name, "Quarterly review")
        self.assertFalse(
            [e for e in self.emulator.request_log if e["method"] == "PATCH"]
        )
        event = self.emulator.store.get_event(ROOM_ADAMS, self.meeting["id"])
        self.assertEqual(event["subject"], "Quarterly review")

    def test_a_manager_cancels_a_private_one_too(self):
        private = self.outlook_booking(
            "Private talk", hour_utc=16, sensitivity="private"
        )
        self.sync()
        booking = self.imported(private["id"])
        self.assertEqual(booking.name, "Private meeting")
        answer = self.rpc("booking_manager", "action_cancel", [booking.ids])
        self.assertNotIn("Error", str(answer))
        self.assertFalse(booking.active)
        self.sync()
        self.assertEqual(self.emulator.store.responses[-1]["event_id"], private["id"])

    def test_only_a_booking_manager_cancels_it(self):
        answer = self.rpc("booking_user", "action_cancel", [self.booking.ids])
        self.assertIn(
            answer, ("odoo.exceptions.AccessError", "odoo.exceptions.UserError")
        )
        self.assertTrue(self.booking.active)

    def test_a_manager_cancels_it_and_the_room_declines_it(self):
        answer = self.rpc("booking_manager", "action_cancel", [self.booking.ids])
        self.assertNotIn("Error", str(answer))
        self.assertFalse(self.booking.active)
        self.sync()
        (response,) = self.emulator.store.responses
        self.assertEqual(response["event_id"], self.meeting["id"])
        self.assertEqual(response["response"], "declined")
        self.assertTrue(response["sent"], "the organizer is told")
        self.assertEqual(response["organizer"], ADELE[0])
        self.assertFalse(self.room_events("Quarterly review"))
        self.assertIn("1 declined in Exchange", self.calendar.last_sync_summary)
        self.sync()
        self.sync(full=True)
        self.assertFalse(self.booking.active)
        self.assertEqual(self.booking.exchange_sync_state, "removed")
        self.assertEqual(
            self.env["resource.booking"]
            .with_context(active_test=False)
            .search_count([("name", "=", "Quarterly review")]),
            1,
            "imported again",
        )

    def test_a_declined_meeting_its_organizer_keeps_is_not_imported_again(self):
        self.emulator.store.declined_meetings_stay = True
        self.booking.with_user(self.booking_manager).action_cancel()
        self.sync()
        self.assertEqual(len(self.emulator.store.responses), 1)
        event = self.emulator.store.get_event(ROOM_ADAMS, self.meeting["id"])
        self.assertEqual(event["responseStatus"]["response"], "declined")
        for full in (False, True, False):
            self.sync(full=full)
        self.assertEqual(self.booking.exchange_sync_state, "declined")
        self.assertEqual(self.booking.exchange_binding_ids.sync_state, "declined")
        self.assertEqual(len(self.emulator.store.responses), 1, "declined once")
        self.assertEqual(
            self.env["resource.booking"]
            .with_context(active_test=False)
            .search_count([("name", "=", "Quarterly review")]),
            1,
        )

    def test_a_cancelled_odoo_booking_reaches_a_final_state(self):
        booking = self.book_in_odoo(hour_utc=9)
        self.sync()
        booking.action_cancel()
        self.assertEqual(booking.exchange_sync_state, "pending")
        self.sync()
        self.assertFalse(self.room_events(SUBJECT))
        booking.invalidate_recordset()
        self.assertEqual(booking.exchange_sync_state, "removed")
