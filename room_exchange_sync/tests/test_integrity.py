# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Nothing lost, nothing silently wrong (issue 15), end to end against the emulator:
a forgotten sync state, a changed mailbox, unreadable items, counts of what was
done, meetings booked in Outlook, zero-length meetings and cancelled bookings."""

from odoo.tests import tagged

from .common import RoomExchangeCase
from .test_sync_scenarios import SYNCED_STATES, SyncScenarioMixin


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
