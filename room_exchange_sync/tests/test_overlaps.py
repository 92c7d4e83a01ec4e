# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Overlaps between Odoo bookings and Outlook meetings, as the Overlaps view and the
room's health show them (issue 16, item 6)."""

import importlib.util
from datetime import timedelta
from pathlib import Path

from .common import ALEX, ROOM_ADAMS, RoomExchangeCase


class TestOverlaps(RoomExchangeCase):
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
        self.assertTrue(board.exchange_overlap)
        self.assertTrue(walk_in.exchange_overlap)
        return board, walk_in

    def test_a_never_synced_room_is_not_healthy(self):
        self.assertEqual(self.calendar.state, "authorized")
        self.assertEqual(self.calendar.health, "waiting")
        self.sync()
        self.assertEqual(self.calendar.health, "healthy")

    def test_an_overlap_degrades_the_room_and_pairs_the_bookings(self):
        board, walk_in = self.overlap()
        self.assertEqual(self.calendar.health, "degraded")
        # One overlap: the Odoo booking, paired with the meeting it clashes with.
        self.assertEqual(self.calendar.overlap_count, 1)
        Booking = self.env["resource.booking"]
        action = self.calendar.action_open_overlaps()
        self.assertEqual(Booking.search(action["domain"]), board)
        self.assertEqual(board.exchange_overlap_with_id, walk_in)
        self.assertEqual(board.exchange_overlap_with_organizer, "Alex Wilber")
        self.assertEqual(board.exchange_overlap_with_start, walk_in.start)
        self.assertEqual(walk_in.exchange_overlap_with_id, board)
        opened = board.action_exchange_open_overlap()
        self.assertEqual(
            (opened["res_model"], opened["res_id"]), (Booking._name, walk_in.id)
        )

    def test_cancelling_the_odoo_booking_resolves_the_overlap_at_once(self):
        board, walk_in = self.overlap()
        board.action_cancel()
        self.assertFalse(board.active)
        self.assertFalse(board.exchange_overlap)
        self.assertFalse(walk_in.exchange_overlap)
        self.assertEqual(self.calendar.overlap_count, 0)
        self.assertEqual(self.calendar.health, "healthy")

    def test_moving_the_odoo_booking_away_resolves_the_overlap(self):
        board, walk_in = self.overlap()
        board.start = board.start + timedelta(hours=3)
        self.assertFalse(board.exchange_overlap)
        self.assertFalse(walk_in.exchange_overlap)
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
        self.assertFalse(board.exchange_overlap)
        self.assertFalse(walk_in.exchange_overlap)
        self.assertEqual(self.calendar.health, "healthy")

    def test_the_upgrade_keeps_the_flags_under_their_new_name(self):
        """19.0.2.0.0's pre-migrate renames the column of 19.0.1.0.0's
        ``exchange_conflict`` (as an upgraded database has it), flags kept."""
        board, walk_in = self.overlap()
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            "ALTER TABLE resource_booking RENAME COLUMN exchange_overlap"
            " TO exchange_conflict"
        )
        path = Path(__file__).parents[1] / "migrations/19.0.2.0.0/pre-migrate.py"
        spec = importlib.util.spec_from_file_location("pre_migrate_19_0_2", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(cr, "19.0.1.0.0")
        cr.execute("SELECT id FROM resource_booking WHERE exchange_overlap ORDER BY id")
        self.assertEqual(
            [row[0] for row in cr.fetchall()], sorted((board | walk_in).ids)
        )
