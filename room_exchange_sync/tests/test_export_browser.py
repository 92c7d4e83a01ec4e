# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The bulk export as an Exchange manager does it, in Debian's Chromium driven by
Playwright: the room's export box, the wizard's preview, Run the Export, then the
room's progress and summary once the export cron job has run."""

from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import Command
from odoo.tests import HttpCase, tagged

from ..models import room_exchange_export_run as export_module
from .common import ADELE, ROOM_ADAMS, BrowserMixin, RoomExchangeCase, next_weekday

NAMES = ("Board review", "Budget call", "Team lunch")


@tagged("post_install", "-at_install")
class TestExportInBrowser(BrowserMixin, RoomExchangeCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.seeded = {e["id"] for e in self.emulator.store.snapshot(ROOM_ADAMS)}
        # An app-only connection bound to Adams, as tests/test_sync.py.
        connection = self.ready_connection("application")
        self.room.write({"exchange_connection_id": connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.assertEqual(self.calendar.state, "authorized", self.calendar.last_error)
        around_the_clock = self.calendar._around_the_clock_calendar(self.env.company)
        self.room.calendar_id = around_the_clock
        booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Meeting room",
                "resource_calendar_id": around_the_clock.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": self.calendar.combination_id.id})
                ],
            }
        )
        requester = self.env["res.partner"].create({"name": "Requester"})
        day = datetime.combine(next_weekday(14), datetime.min.time())
        self.bookings = (
            self.env["resource.booking"]
            .with_context(tracking_disable=True)
            .create(
                [
                    {
                        "name": name,
                        "type_id": booking_type.id,
                        "combination_auto_assign": False,
                        "combination_id": self.calendar.combination_id.id,
                        "partner_ids": [Command.set(requester.ids)],
                        "start": day + timedelta(hours=hour),
                        "duration": 1.0,
                    }
                    for name, hour in zip(NAMES, (9, 11, 13), strict=True)
                ]
            )
        )
        # Booked in Outlook over the last booking: the preview reports the overlap.
        self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Walk-in",
            (day + timedelta(hours=13)).isoformat(),
            (day + timedelta(hours=13.5)).isoformat(),
        )
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(export_module.PARAM_BUDGET, "0")  # no pacing
        params.set_param(export_module.PARAM_CHUNK, "2")  # two committed steps
        self.page = self.open_browser()

    def events(self):
        return [
            event
            for event in self.emulator.store.snapshot(ROOM_ADAMS)
            if event["id"] not in self.seeded
        ]

    def open_exchange_tab(self):
        page = self.page
        page.goto(f"{self.base_url()}/odoo/resource.resource/{self.room.id}")
        page.click("a.nav-link:has-text('Exchange')")
        return page.locator("div[name=exchange_export_box]")

    def test_export_from_the_room(self):
        page = self.page
        # The browser's requests read the database; pending test writes must be in it.
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.sign_in_to_odoo(page, "exchange_manager")
            box = self.open_exchange_tab()
            box.locator("h5:has-text('Outlook/Exchange Bulk Export')").wait_for()
            box.locator("button[name=action_exchange_run_export]").click()
            # The wizard opens on its preview (a dry run: nothing written).
            dialog = page.locator(".modal:has-text('Outlook/Exchange Bulk Export')")
            dialog.locator("div[name=to_export_count]").wait_for()
            preview = {
                name: dialog.locator(f"div[name={name}]").inner_text().strip()
                for name in ("to_export_count", "already_count", "overlap_count")
            }
            self.assertEqual(
                preview,
                {"to_export_count": "3", "already_count": "0", "overlap_count": "1"},
            )
            overlaps = dialog.locator("div[name=overlap_text]").inner_text()
            self.assertIn("Walk-in", overlaps)
            dialog.locator("button[name=action_run]").click()
            dialog.locator("div[name=export_running]").wait_for()
        self.env.invalidate_all()
        self.assertEqual(self.calendar.export_run_id.state, "queued")
        self.assertEqual(self.calendar.export_run_id.total_count, 3)
        # Only the Walk-in so far: the preview and Run the Export write nothing there.
        self.assertEqual([e["subject"] for e in self.events()], ["Walk-in"])

        # The export cron job; outside a cron, _commit_progress would commit.
        with patch.object(
            type(self.env["ir.cron"]), "_commit_progress", return_value=1e9
        ):
            self.env["room.exchange.export.run"]._cron_export()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        subjects = sorted(e["subject"] for e in self.events())
        self.assertEqual(subjects, sorted((*NAMES, "Walk-in")))
        events = {e["id"] for e in self.events()}
        for booking in self.bookings:
            binding = booking.exchange_binding_ids
            self.assertEqual(len(binding), 1)
            self.assertIn(binding.external_id, events)

        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            box = self.open_exchange_tab()
            box.locator("div[name=exchange_export_progress]").wait_for()
            self.assertEqual(
                box.locator("div[name=exchange_export_progress]").inner_text().strip(),
                "3 of 3 exported",
            )
            self.assertIn(
                "Done", box.locator("div[name=exchange_export_state]").inner_text()
            )
            summary = box.locator("div[name=exchange_export_summary]").inner_text()
            self.assertIn("3 exported", summary)
            self.assertIn("1 overlaps flagged", summary)
            # Nothing left to export: the box stays, without its button.
            self.assertEqual(
                box.locator("button[name=action_exchange_run_export]").count(), 0
            )
