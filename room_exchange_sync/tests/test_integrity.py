# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Nothing lost, nothing silently wrong (issue 15), end to end against the emulator:
a forgotten sync state, a changed mailbox, unreadable items, counts of what was
done, meetings booked in Outlook, zero-length meetings and cancelled bookings."""

from odoo.tests import tagged

from .. import engine
from .common import ROOM_ADAMS, RoomExchangeCase
from .test_sync_scenarios import ROOM_BAKER, SUBJECT, SYNCED_STATES, SyncScenarioMixin


@tagged("post_install", "-at_install")
class TestIntegrity(SyncScenarioMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.remember_seeded_events()
        self.connection = self.ready_connection("application")
        self.setup_room_sync(self.connection)

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
        self.assertTrue(booking.exchange_conflict)
        self.assertTrue(imported_new.exchange_conflict)
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
