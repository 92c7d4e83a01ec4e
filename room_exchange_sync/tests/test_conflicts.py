# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Overlaps between Odoo bookings and Outlook meetings, as the Conflicts view and the
room's health show them (issue 16, item 6)."""

from datetime import timedelta

from .common import ALEX, ROOM_ADAMS, RoomExchangeCase


class TestConflicts(RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.bind_room_for_sync(self.ready_connection("application"))

    def sync(self):
        self.assertTrue(self.calendar._sync(), self.calendar.last_error)

    def overlap(self):
        board = self.book_in_odoo(hour_utc=9, name="Board review")
        self.sync()
        self.book_in_outlook("Walk-in", 9.25, hours=0.5, person=ALEX)
        self.sync()
        walk_in = self.env["resource.booking"].search([("name", "=", "Walk-in")])
        self.assertTrue(board.exchange_conflict)
        self.assertTrue(walk_in.exchange_conflict)
        return board, walk_in

    def test_a_never_synced_room_is_not_healthy(self):
        self.assertEqual(self.calendar.state, "authorized")
        self.assertEqual(self.calendar.health, "waiting")
        self.sync()
        self.assertEqual(self.calendar.health, "healthy")

    def test_an_overlap_degrades_the_room_and_pairs_the_bookings(self):
        board, walk_in = self.overlap()
        self.assertEqual(self.calendar.health, "degraded")
        # One conflict: the Odoo booking, paired with the meeting it clashes with.
        self.assertEqual(self.calendar.conflict_count, 1)
        Booking = self.env["resource.booking"]
        action = self.calendar.action_open_conflicts()
        self.assertEqual(Booking.search(action["domain"]), board)
        self.assertEqual(board.exchange_conflict_with_id, walk_in)
        self.assertEqual(board.exchange_conflict_with_organizer, "Alex Wilber")
        self.assertEqual(board.exchange_conflict_with_start, walk_in.start)
        self.assertEqual(walk_in.exchange_conflict_with_id, board)
        opened = board.action_exchange_open_conflict()
        self.assertEqual(
            (opened["res_model"], opened["res_id"]), (Booking._name, walk_in.id)
        )

    def test_cancelling_the_odoo_booking_resolves_the_overlap_at_once(self):
        board, walk_in = self.overlap()
        board.action_cancel()
        self.assertFalse(board.active)
        self.assertFalse(board.exchange_conflict)
        self.assertFalse(walk_in.exchange_conflict)
        self.assertEqual(self.calendar.conflict_count, 0)
        self.assertEqual(self.calendar.health, "healthy")

    def test_moving_the_odoo_booking_away_resolves_the_overlap(self):
        board, walk_in = self.overlap()
        board.start = board.start + timedelta(hours=3)
        self.assertFalse(board.exchange_conflict)
        self.assertFalse(walk_in.exchange_conflict)
        self.assertEqual(self.calendar.health, "healthy")

    def test_a_meeting_moved_in_outlook_clears_the_flags_at_the_next_sync(self):
        board, walk_in = self.overlap()
        event = next(
            e
            for e in self.emulator.store.snapshot(ROOM_ADAMS)
            if e["subject"] == "Walk-in"
        )
        self.emulator.update_booking(
            ROOM_ADAMS,
            event["id"],
            start=(board.start + timedelta(hours=5)).isoformat(),
            end=(board.start + timedelta(hours=6)).isoformat(),
        )
        self.sync()
        self.assertFalse(board.exchange_conflict)
        self.assertFalse(walk_in.exchange_conflict)
        self.assertEqual(self.calendar.health, "healthy")
