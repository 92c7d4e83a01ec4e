# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Outlook/Exchange Bulk Export: the wizard's dry run, the background export through
sync rounds, idempotence, resuming after a crash, faults and pacing (emulator)."""

import time
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .. import sync
from ..models import room_exchange_export_run as export_module
from ..sync import seams
from .common import ADELE, ROOM_ADAMS, RoomExchangeCase

ROOM_BAKER = "room.baker@contoso.test"
SUBJECT = "Exported booking"


class WorkerKilled(BaseException):
    """Stands for the worker being killed: nothing catches it on the way up."""


@tagged("post_install", "-at_install")
class TestExportWizard(RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.seeded = {
            mailbox: {e["id"] for e in self.emulator.store.snapshot(mailbox)}
            for mailbox in (ROOM_ADAMS, ROOM_BAKER)
        }
        self.connection = self.ready_connection("application")
        self.bind_room_for_sync(self.connection)
        params = self.env["ir.config_parameter"].sudo()
        # No pacing unless a test asks for it; small chunks so that exports take
        # several committed steps.
        params.set_param(export_module.PARAM_BUDGET, "0")
        params.set_param(export_module.PARAM_CHUNK, "3")
        # Outside a cron, _commit_progress commits: keep the test transaction.
        patcher = patch.object(
            type(self.env["ir.cron"]), "_commit_progress", return_value=1e9
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    # helpers

    def book(self, start, hours=1.0, name=SUBJECT, combination=None):
        return self.book_in_odoo(
            start=start, hours=hours, name=name, combination=combination
        )

    def at(self, hour, day=None):
        return datetime.combine(day or self.day, datetime.min.time()) + timedelta(
            hours=hour
        )

    def events(self, subject=None, mailbox=ROOM_ADAMS):
        return [
            event
            for event in self.emulator.store.snapshot(mailbox)
            if event["id"] not in self.seeded[mailbox]
            and (subject is None or event.get("subject") == subject)
        ]

    def graph_log(self):
        return [
            entry
            for entry in self.emulator.request_log
            if "/v1.0/" in entry.get("path", "")
        ]

    def bind_baker(self):
        """A second room, bound to Baker's mailbox through the same connection."""
        baker = self.env["resource.resource"].create(
            {
                "name": "Baker",
                "resource_type": "material",
                "calendar_id": self.around_the_clock.id,
                "tz": "Europe/Brussels",
            }
        )
        baker.write({"exchange_connection_id": self.connection.id})
        baker.exchange_calendar_id._bind_mailbox(ROOM_BAKER)
        return baker

    def offer_combination(self, rooms):
        """A combination of ``rooms`` that the booking type offers."""
        combination = self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set(rooms.ids)]}
        )
        self.booking_type.combination_rel_ids = [
            Command.create({"combination_id": combination.id})
        ]
        return combination

    def list_wizard(self, rooms):
        """The wizard opened from the rooms' list view (the action's context),
        its preview done."""
        wizard = (
            self.env["room.exchange.export"]
            .with_context(active_model="resource.resource", active_ids=rooms.ids)
            .create({})
        )
        wizard.action_preview()
        return wizard

    def open_wizard(self, rooms=None):
        action = (rooms or self.room).action_exchange_run_export()
        self.assertEqual(action["res_model"], "room.exchange.export")
        return self.env["room.exchange.export"].browse(action["res_id"])

    def run_cron(self):
        self.env["room.exchange.export.run"]._cron_export()

    def export(self, rooms=None):
        wizard = self.open_wizard(rooms)
        wizard.action_run()
        self.run_cron()
        return wizard

    def assert_exported_once(self, bookings, mailbox=ROOM_ADAMS):
        calendar = self.calendar
        if mailbox != ROOM_ADAMS:
            calendar = self.env["room.exchange.calendar"].search(
                [("mailbox", "=", mailbox)]
            )
        events = {event["id"]: event for event in self.events(mailbox=mailbox)}
        for booking in bookings:
            binding = booking.exchange_binding_ids.filtered(
                lambda b, c=calendar: b.calendar_id == c
            )
            self.assertEqual(len(binding), 1, booking.name)
            self.assertEqual(binding.sync_state, "synced", binding.sync_error)
            self.assertIn(binding.external_id, events, booking.name)
        names = [event.get("subject") for event in events.values()]
        for booking in bookings:
            self.assertEqual(names.count(booking.name), 1, booking.name)

    # The dry run

    def test_preview_reads_exchange_and_writes_nothing(self):
        self.connection.sync_future_days = 30
        synced = self.book(self.at(8), name="Already synced")
        self.calendar._sync()
        self.assertEqual(len(self.events("Already synced")), 1)
        now = fields.Datetime.now().replace(microsecond=0)
        past = self.book(now - timedelta(days=30), name="Past")
        current = self.book(now - timedelta(hours=1), hours=2, name="Current")
        future = self.book(self.at(10), name="Future")
        overlapping = self.book(self.at(13), name="Overlapping")
        cancelled = self.book(self.at(15), name="Cancelled")
        cancelled.action_cancel()
        far = self.book(self.at(9, self.day + timedelta(days=42)), name="Far ahead")
        self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Walk-in",
            self.at(13).isoformat(),
            self.at(13.5).isoformat(),
        )
        self.room.invalidate_recordset()
        self.assertTrue(self.room.exchange_can_export)
        events_before = self.emulator.store.snapshot(ROOM_ADAMS)
        delta_link = self.calendar.delta_link
        self.emulator.clear_log()

        wizard = self.open_wizard()
        wizard.horizon = fields.Datetime.now() + timedelta(days=90)
        wizard.action_preview()

        methods = {entry["method"] for entry in self.graph_log()}
        self.assertEqual(methods, {"GET"}, self.graph_log())
        self.assertEqual(self.emulator.store.snapshot(ROOM_ADAMS), events_before)
        self.assertEqual(self.calendar.delta_link, delta_link)
        self.assertFalse(self.calendar.export_run_id)
        self.assertFalse(overlapping.exchange_overlap)
        self.assertEqual(wizard.state, "preview")
        self.assertTrue(wizard.can_run)
        (line,) = wizard.line_ids
        self.assertFalse(line.problem)
        # current, future, overlapping, far ahead; not the past nor the cancelled one
        self.assertEqual(line.to_export, 4)
        self.assertEqual(wizard.to_export_count, 4)
        self.assertEqual(line.already, 1)
        self.assertEqual(line.overlap_count, 1)
        self.assertIn("Overlapping", wizard.overlap_text)
        self.assertIn("Walk-in", wizard.overlap_text)

        # Run the Export: queued for the cron job, nothing written to Exchange yet.
        self.emulator.clear_log()
        wizard.action_run()
        self.assertEqual(wizard.state, "running")
        self.assertEqual(self.calendar.export_run_id.state, "queued")
        self.assertEqual(self.calendar.export_run_id.total_count, 4)
        self.assertFalse(
            [e for e in self.graph_log() if e["method"] != "GET"], self.graph_log()
        )
        self.assertTrue(
            self.env["ir.cron.trigger"].search(
                [("cron_id", "=", self.env.ref(export_module.CRON).id)]
            )
        )
        self.run_cron()

        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(current | future | overlapping | far | synced)
        self.assertFalse(self.events("Past"))
        self.assertFalse(self.events("Cancelled"))
        self.assertFalse(past.exchange_binding_ids)
        self.assertEqual(self.calendar.export_run_id.exported_count, 4)
        self.assertEqual(self.calendar.export_run_id.failed_count, 0)
        # The overlap follows the sync's rules: both kept, both flagged.
        walk_in = self.env["resource.booking"].search([("name", "=", "Walk-in")])
        self.assertTrue(walk_in)
        self.assertTrue(overlapping.exchange_overlap)
        self.assertTrue(walk_in.exchange_overlap)
        summary = self.calendar.export_run_id.summary
        self.assertIn("4 exported", summary)
        self.assertIn("1 already in Exchange", summary)
        self.assertIn("1 overlaps flagged", summary)
        self.assertIn("0 failed", summary)
        self.room.invalidate_recordset()
        self.assertEqual(self.room.exchange_export_state, "done")
        self.assertEqual(self.room.exchange_export_progress, "4 of 4 exported")
        message = self.calendar.message_ids[:1]
        self.assertIn("4 exported", message.body)
        self.assertIn(self.env.user.partner_id, message.partner_ids)
        # The regular sync keeps the export's horizon in its window: the event beyond
        # sync_future_days is neither re-created nor forgotten.
        self.calendar._sync()
        self.calendar._sync(full=True)
        self.assert_exported_once(current | future | overlapping | far | synced)

    def test_export_steps_read_only_what_they_create(self):
        """Issue 18: each step of 200 creations re-read and re-planned the room's
        whole window, so an export grew quadratically. A step reads the bookings it
        creates next, the events Exchange reported and the bindings not in sync;
        the last one reads the whole window and flags the overlaps."""
        bookings = self.env["resource.booking"]
        for index in range(12):
            day = self.day + timedelta(index // 4)
            bookings |= self.book(self.at(8 + index % 4, day), name=f"Step {index}")
        self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Walk-in",
            self.at(8.5).isoformat(),
            self.at(9).isoformat(),
        )
        reads = []

        def counted_load(calendar, subset, rows):
            reads.append((subset is not None, rows))

        with seams.hooked(seams.WINDOW_LOADED, counted_load):
            self.export()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(bookings)
        partial = [rows for is_subset, rows in reads if is_subset]
        # 12 bookings in chunks of 3: the steps after the first (a full round)
        # read the 3 they create and the 3 whose echo Exchange sends back.
        self.assertGreaterEqual(len(partial), 3)
        self.assertLessEqual(max(partial), 6, reads)
        self.assertFalse(reads[-1][0], "the last step reads the whole window")
        walk_in = self.env["resource.booking"].search([("name", "=", "Walk-in")])
        self.assertTrue(walk_in.exchange_overlap)
        self.assertTrue(bookings[0].exchange_overlap)
        self.assertIn("1 overlaps flagged", self.calendar.export_run_id.summary)

    def test_second_run_exports_nothing(self):
        bookings = self.book(self.at(9)) | self.book(self.at(11), name="Second")
        self.export()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(bookings)
        self.room.invalidate_recordset()
        self.assertFalse(self.room.exchange_can_export)
        # The wizard explains why there is nothing to run.
        wizard = self.open_wizard()
        self.assertFalse(wizard.can_run)
        self.assertIn("nothing to export", wizard.problem_text)
        with self.assertRaisesRegex(UserError, "nothing to export"):
            wizard.action_run()
        # Forcing a second export through the cron writes nothing to Exchange.
        self.emulator.clear_log()
        self.calendar._export_queue(
            fields.Datetime.now(),
            fields.Datetime.now() + timedelta(days=60),
            self.env.user,
        )
        self.run_cron()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assertEqual(self.calendar.export_run_id.exported_count, 0)
        self.assertEqual(self.calendar.export_run_id.already_count, 2)
        # Both exports stay as records, the latest first; users of the sync read them.
        first, latest = self.calendar.export_run_ids[1], self.calendar.export_run_ids[0]
        self.assertEqual(latest, self.calendar.export_run_id)
        self.assertEqual((first.state, first.exported_count), ("done", 2))
        self.assertIn("2 exported", first.summary)
        self.assertEqual(first.user_id, self.env.user)
        Run = self.env["room.exchange.export.run"].with_user(self.exchange_user)
        self.assertEqual(Run.search([("room_id", "=", self.room.id)]), latest | first)
        with self.assertRaises(AccessError):
            first.with_user(self.manager).unlink()
        # Only reads, some of them as items of a $batch (the read ahead).
        self.assertFalse(
            [
                e
                for e in self.graph_log()
                if e["method"] != "GET" and e["route"] != "/$batch"
            ]
        )
        self.assertTrue([e for e in self.graph_log() if e["batch"]])
        self.assert_exported_once(bookings)

    def test_unavailable_rooms_are_explained(self):
        other = self.env["resource.resource"].create(
            {"name": "Unconnected", "resource_type": "material"}
        )
        wizard = self.open_wizard(other)
        self.assertFalse(wizard.can_run)
        self.assertIn("not connected", wizard.problem_text)
        self.calendar._remove_authorization()
        self.book(self.at(9))
        wizard = self.open_wizard()
        self.assertFalse(wizard.can_run)
        self.assertIn("not authorized", wizard.problem_text)
        with self.assertRaisesRegex(UserError, "not authorized"):
            wizard.action_run()
        self.room.invalidate_recordset()
        self.assertFalse(self.room.exchange_can_export)

    def test_only_managers_can_export(self):
        self.book(self.at(9))
        Wizard = self.env["room.exchange.export"]
        for user in (self.exchange_user, self.booking_manager):
            with self.assertRaises(AccessError):
                Wizard.with_user(user).create(
                    {"room_ids": [Command.set(self.room.ids)]}
                )
        wizard = (
            self.room.with_user(self.manager)
            .with_context(active_model="resource.resource", active_ids=self.room.ids)
            .env["room.exchange.export"]
            .create({})
        )
        self.assertEqual(wizard.room_ids, self.room)
        self.assertEqual(
            wizard.horizon.date(),
            (fields.Datetime.now() + timedelta(days=366)).date(),
        )
        wizard.action_preview()
        self.assertTrue(wizard.can_run)
        action = self.env.ref("room_exchange_sync.room_exchange_export_action")
        self.assertEqual(action.binding_model_id.model, "resource.resource")
        self.assertEqual(action.binding_view_types, "list")

    def test_multi_room_booking_goes_to_both_rooms(self):
        baker = self.bind_baker()
        both = self.offer_combination(self.room | baker)
        shared = self.book(self.at(9), name="Both rooms", combination=both)
        alone = self.book(self.at(11), name="Adams only")
        wizard = self.list_wizard(self.room | baker)
        self.assertEqual(len(wizard.line_ids), 2)
        self.assertEqual(wizard.to_export_count, 3)
        wizard.action_run()
        self.run_cron()
        self.assert_exported_once(shared | alone)
        self.assert_exported_once(shared, mailbox=ROOM_BAKER)
        self.assertEqual(len(self.events(mailbox=ROOM_BAKER)), 1)
        self.assertEqual(
            set(wizard.line_ids.mapped("export_state")), {"done"}, wizard.line_ids
        )

    # Interruptions and faults

    def test_crash_between_graph_answer_and_commit_resumes_without_duplicates(self):
        bookings = self.env["resource.booking"]
        for hour in range(6, 14):
            bookings |= self.book(self.at(hour), name=f"Slot {hour}")
        wizard = self.open_wizard()
        wizard.action_run()
        calls = []

        def crash_on_second_chunk(mailbox, results):
            calls.append(len(results))
            if len(calls) == 2:
                raise WorkerKilled()

        # Not assertRaises: Odoo's rolls back what the block did, commits included.
        killed = False
        with seams.hooked(seams.WRITES_ANSWERED, crash_on_second_chunk):
            try:
                self.run_cron()
            except WorkerKilled:
                killed = True
        self.assertTrue(killed)
        self.env.invalidate_all()
        # The first chunk is kept, the second is in Exchange but not recorded.
        self.assertEqual(self.calendar.export_run_id.state, "running")
        self.assertEqual(len(self.events()), 6)
        recorded = bookings.exchange_binding_ids.filtered("external_id")
        self.assertEqual(len(recorded), 3)
        # The next run of the cron job resumes.
        self.run_cron()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(bookings)
        self.assertEqual(len(self.events()), 8)
        self.assertEqual(self.calendar.export_run_id.exported_count, 8)

    def test_round_failure_is_retried_then_resumed(self):
        bookings = self.book(self.at(9)) | self.book(self.at(11), name="Second")
        self.open_wizard().action_run()
        self.emulator.faults.add(
            {"kind": "status", "status": 500, "method": "GET", "path": "delta"}
        )
        self.run_cron()
        self.assertEqual(self.calendar.export_run_id.state, "running")
        self.assertEqual(self.calendar.export_run_id.round_failure_count, 1)
        self.assertTrue(self.calendar.export_run_id.retry_date)
        self.emulator.faults.clear()
        self.run_cron()  # not due yet
        self.assertEqual(self.calendar.export_run_id.state, "running")
        self.calendar.export_run_id.retry_date = fields.Datetime.now() - timedelta(
            minutes=1
        )
        self.run_cron()
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(bookings)

    def test_throttling_and_outages_complete_without_duplicates(self):
        bookings = self.env["resource.booking"]
        for hour in range(6, 18):
            bookings |= self.book(self.at(hour, self.day), name=f"Busy {hour}")
        self.open_wizard().action_run()
        self.emulator.faults.set_random(seed=7, rate=0.3, kinds=["429", "503"])
        self.run_cron()
        self.assertGreater(self.emulator.faults.stats()["total"], 0)
        self.emulator.faults.clear()
        for hour in range(6, 18):
            self.assertLessEqual(len(self.events(f"Busy {hour}")), 1)
        calendar = self.calendar
        if (
            calendar.export_run_id.state != "done"
            or calendar.export_run_id.failed_count
        ):
            # Items that failed wait for their retry: make it due and run again.
            calendar.binding_ids.filtered(lambda b: b.sync_state == "error").write(
                {"next_retry_date": fields.Datetime.now() - timedelta(minutes=1)}
            )
            calendar.export_run_id.retry_date = False
            calendar.next_attempt_date = False
            if calendar.export_run_id.state == "done":
                calendar._export_queue(
                    calendar.export_run_id.date_start,
                    calendar.export_run_id.date_end,
                    self.env.user,
                )
            self.run_cron()
        self.assertEqual(
            calendar.export_run_id.state, "done", calendar.export_run_id.summary
        )
        self.assert_exported_once(bookings)
        self.assertEqual(len(self.events()), 12)

    def test_a_failed_read_ahead_envelope_leaves_its_rooms_to_read_on_their_own(self):
        baker = self.bind_baker()
        baker_only = self.offer_combination(baker)
        adams = self.book(self.at(9), name="Adams read on its own")
        baker_booking = self.book(
            self.at(9), name="Baker read ahead", combination=baker_only
        )
        wizard = self.list_wizard(self.room | baker)
        wizard.action_run()
        self.emulator.clear_log()
        # The rooms' first pages travel in two envelopes; the first one fails.
        self.emulator.faults.add(
            {
                "kind": "status",
                "status": 500,
                "method": "POST",
                "path": r"/\$batch$",
                "times": 1,
            }
        )
        self.run_cron()
        self.assertEqual(self.emulator.faults.stats()["total"], 1)
        self.assert_exported_once(adams)
        self.assert_exported_once(baker_booking, mailbox=ROOM_BAKER)
        self.assertEqual(set(wizard.line_ids.mapped("export_state")), {"done"})
        # Adams read its first page on its own, once: the echoes of both rooms'
        # writes were read ahead while their rounds finished.
        own_reads = [
            entry["mailbox"]
            for entry in self.graph_log()
            if entry["method"] == "GET"
            and "delta" in entry["path"]
            and not entry["batch"]
        ]
        self.assertEqual(own_reads, [ROOM_ADAMS])

    def test_pacing_stays_under_the_mailbox_budget(self):
        bookings = self.env["resource.booking"]
        for index in range(45):
            start = self.at(6 + index // 4, self.day + timedelta(days=index % 4))
            start += timedelta(minutes=15 * (index % 4))
            bookings |= self.book(start, hours=0.25, name=f"Paced {index}")
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(export_module.PARAM_CHUNK, "100")
        params.set_param(export_module.PARAM_BUDGET, "40")
        params.set_param(export_module.PARAM_BUDGET_SECONDS, "2")
        settings = self.env["room.exchange.export.run"]._settings()
        self.assertEqual(settings, (100, (38, 2.0)))  # 95% of the budget
        self.open_wizard().action_run()
        self.emulator.throttle.configure(budget=40, window_seconds=2.0)
        self.emulator.throttle.reset()
        sync.MAILBOX_BUDGET.forget()
        started = time.monotonic()
        self.run_cron()
        elapsed = time.monotonic() - started
        # 45 creations do not fit in one window of 38: the last ones waited for it.
        self.assertGreaterEqual(elapsed, 2.0)
        throttled = sum(
            stats["throttled"] for stats in self.emulator.throttle.stats().values()
        )
        self.assertEqual(throttled, 0, self.emulator.throttle.stats())
        self.assertEqual(self.calendar.export_run_id.state, "done")
        self.assert_exported_once(bookings)

    def test_views_show_the_export_box_and_the_wizard(self):
        self.book(self.at(9))
        arch = (
            self.env["resource.resource"]
            .with_user(self.manager)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertIn('name="exchange_export_box"', arch)
        box = arch[arch.index('name="exchange_export_box"') :]
        self.assertIn('name="action_exchange_run_export"', box)
        runs = self.env.ref("room_exchange_sync.room_exchange_export_run_action")
        self.assertIn(f'name="{runs.id}"', box, "All exports")
        arch = self.env["room.exchange.export"].get_views([(False, "form")])["views"][
            "form"
        ]["arch"]
        self.assertIn('name="action_run"', arch)
        # A user who only sees the sync status sees no export button.
        arch = (
            self.env["resource.resource"]
            .with_user(self.exchange_user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertNotIn("action_exchange_run_export", arch)
