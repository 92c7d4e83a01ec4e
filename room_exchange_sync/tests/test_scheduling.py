# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Scheduling of the sync on Odoo's cron (issue 18): fair, resumable and
change-driven, run through Odoo's own cron runner (``ir.cron._process_jobs_loop``
in registry test mode, as Odoo's own cron tests do: job acquisition, the progress
API, the time limit and re-queuing are Odoo's)."""

import contextlib
import json
import types
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.base.models import ir_cron

from ..models.room_exchange_subscription import NOTIFICATION_PATH
from ..sync import seams
from . import test_sync_scenarios as scenarios
from .common import ADELE, ROOM_ADAMS, RoomExchangeCase

SYNC_CRON = "room_exchange_sync.ir_cron_room_exchange_sync"


class CronRunnerMixin:
    """Runs the sync cron job with Odoo's cron runner, on the test transaction."""

    def sync_job_runs(self, seconds_per_room=None, max_runs=20):
        """Run Odoo's cron runner over the sync job until it is no longer ready; the
        number of runs (each a ``_process_job``: up to 10 calls of ``_cron_sync``).

        With ``seconds_per_room``, Odoo's clock (``time.monotonic`` of ir_cron)
        advances that much for each room's round, and nothing else: the time limit
        (MIN_TIME_PER_JOB, 10 s) then fits 10 // seconds_per_room rooms, whatever
        the machine's speed."""
        cron = self.env.ref(SYNC_CRON)
        clock = types.SimpleNamespace(now=1000.0)

        def timed_record(**_details):
            clock.now += seconds_per_room

        patches = contextlib.ExitStack()
        if seconds_per_room is not None:
            patches.enter_context(
                patch.object(
                    ir_cron, "time", types.SimpleNamespace(monotonic=lambda: clock.now)
                )
            )
            patches.enter_context(seams.hooked(seams.ROUND_RECORDED, timed_record))
        Progress = self.env["ir.cron.progress"].sudo()
        runs = 0
        self.env.flush_all()
        # An HttpCase is in registry test mode already.
        test_mode = (
            contextlib.nullcontext()
            if isinstance(self, HttpCase)
            else self.enter_registry_test_mode()
        )
        with patches, test_mode, self.registry.cursor() as cr:
            for _attempt in range(max_runs):
                before = Progress.search_count([("cron_id", "=", cron.id)])
                ir_cron.IrCron._process_jobs_loop(cr, job_ids=cron.ids)
                if Progress.search_count([("cron_id", "=", cron.id)]) == before:
                    break
                runs += 1
        self.env.invalidate_all()
        return runs

    def make_sync_job_ready(self):
        cron = self.env.ref(SYNC_CRON)
        cron.nextcall = fields.Datetime.now() - timedelta(days=1)
        self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]).unlink()

    def make_triggers_due(self):
        """The job's triggers, due now for the cron runner: in a test, the runner's
        now (the transaction's) is when the test class began."""
        cron = self.env.ref(SYNC_CRON)
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        self.assertTrue(triggers, "the sync job was triggered")
        triggers.call_at = fields.Datetime.now() - timedelta(days=1)

    def last_progress(self):
        cron = self.env.ref(SYNC_CRON)
        return self.env["ir.cron.progress"].search(
            [("cron_id", "=", cron.id)], order="id desc", limit=1
        )


@tagged("post_install", "-at_install")
class TestCronScheduling(CronRunnerMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.addCleanup(self.emulator.reset)
        self.connection = self.ready_connection("application")
        self.env["ir.config_parameter"].set_param(
            "room_exchange_sync.rooms_side_by_side", "2"
        )

    def test_every_room_synced_within_bounded_runs_under_a_tiny_time_limit(self):
        calendars = self.app_rooms(self.connection, 50)
        self.make_sync_job_ready()
        cron = self.env.ref(SYNC_CRON)
        first_progress = self.last_progress().id or 0
        # 1 s per room: Odoo's 10 s per run fit 10 rooms; Odoo calls the job again
        # (at least 10 calls per run), then re-queues it while rooms remain.
        runs = self.sync_job_runs(seconds_per_room=1)
        self.assertEqual(calendars.mapped("round_count"), [1] * 50, "each room once")
        self.assertTrue(all(calendars.mapped("last_sync_date")))
        # 28 rooms in the first run (10 calls), the 22 others in the second; a run
        # stopped at its time limit also triggers the job, to wake Odoo's cron
        # threads up: a third run may find nothing left.
        self.assertIn(runs, (2, 3))
        progress = self.env["ir.cron.progress"].search(
            [("cron_id", "=", cron.id), ("id", ">", first_progress)], order="id"
        )
        # The first call stopped at the time limit, 10 rooms done, 40 left; the
        # last one left nothing.
        self.assertEqual((progress[0].done, progress[0].remaining), (10, 40))
        self.assertEqual(progress[-1].remaining, 0)
        self.assertEqual(sum(progress.mapped("done")), 50)
        # The job is scheduled at its interval again; a run left by the last
        # wake-up finds nothing due.
        self.assertGreater(cron.nextcall, fields.Datetime.now())
        self.assertLessEqual(self.sync_job_runs(), 1)
        self.assertEqual(calendars.mapped("round_count"), [1] * 50)

    def test_rooms_are_taken_longest_unsynced_first(self):
        calendars = self.app_rooms(self.connection, 6)
        self.make_sync_job_ready()
        self.sync_job_runs()
        long_ago = fields.Datetime.now() - timedelta(hours=1)
        for minutes, calendar in zip((30, 50, 10, 40), calendars, strict=False):
            calendar.last_sync_date = long_ago + timedelta(minutes=minutes)
        due, requested, count = self.env["room.exchange.calendar"]._due_for_sync(10)
        self.assertEqual(due.ids, [calendars[i].id for i in (2, 0, 3, 1)])
        self.assertEqual((requested, count), (set(), 4))
        calendars[5]._request_sync()
        due, requested, count = self.env["room.exchange.calendar"]._due_for_sync(2)
        self.assertEqual(due.ids, [calendars[5].id, calendars[2].id])
        self.assertEqual((requested, count), ({calendars[5].id}, 5))

    def test_quiet_rooms_cost_at_most_three_queries_each(self):
        calendars = self.app_rooms(self.connection, 10)
        self.env["ir.config_parameter"].set_param(
            "room_exchange_sync.rooms_side_by_side", "10"
        )
        Calendar = self.env["room.exchange.calendar"]
        Cron = type(self.env["ir.cron"])
        with patch.object(Cron, "_commit_progress", lambda *a, **kw: float("inf")):
            Calendar._cron_sync()
            self.assertEqual(calendars.mapped("round_count"), [1] * 10)
            calendars.write({"last_sync_date": datetime(2020, 1, 1)})
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            Calendar._cron_sync()
            self.env.flush_all()
            queries = self.env.cr.sql_log_count - before
        self.assertEqual(calendars.mapped("round_count"), [2] * 10)
        self.assertLessEqual(queries, 3 * 10, f"{queries} queries for 10 idle rooms")


@tagged("post_install", "-at_install")
class TestChangeDrivenScheduling(CronRunnerMixin, RoomExchangeCase, HttpCase):
    """Notifications through Odoo's webhook, delegated rooms signed in for real."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.addCleanup(self.emulator.reset)
        self.connection = self.ready_connection("application")
        self.connection.notification_url_override = self.base_url()

    def subscribe(self, calendars):
        self.env.flush_all()
        Subscription = self.env["room.exchange.subscription"]
        with self.allow_requests(all_requests=True):
            for calendar in calendars:
                Subscription._ensure_for(calendar)
        return Subscription.search([("calendar_id", "in", calendars.ids)])

    def deliver(self):
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.emulator.subscriptions.flush(timeout=10)
        self.env.invalidate_all()

    def test_a_notified_room_is_synced_without_the_others(self):
        calendars = self.app_rooms(self.connection, 5)
        self.subscribe(calendars)
        self.make_sync_job_ready()
        self.assertEqual(self.sync_job_runs(), 1)
        self.assertEqual(calendars.mapped("round_count"), [1] * 5)
        start = datetime.now().replace(microsecond=0) + timedelta(days=3)
        meeting = self.emulator.book_room(
            ADELE[0],
            calendars[3].mailbox,
            "Notified meeting",
            start.isoformat(),
            (start + timedelta(hours=1)).isoformat(),
        )
        self.deliver()
        self.assertEqual(
            self.env["room.exchange.sync.request"].search([]).calendar_id,
            calendars[3],
        )
        # The notification triggered the job: it runs now, for that room only.
        self.make_triggers_due()
        self.assertEqual(self.sync_job_runs(), 1)
        self.assertEqual(calendars.mapped("round_count"), [1, 1, 1, 2, 1])
        binding = self.env["room.exchange.binding"].search(
            [("external_id", "=", meeting["id"])]
        )
        self.assertEqual(binding.calendar_id, calendars[3])
        self.assertFalse(self.env["room.exchange.sync.request"].search([]))

    def test_an_odoo_change_marks_only_its_room_due(self):
        calendars = self.app_rooms(self.connection, 3)
        self.make_sync_job_ready()
        self.sync_job_runs()
        booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Scheduled rooms",
                "resource_calendar_id": calendars[1].room_id.calendar_id.id,
                "duration": 1,
                "combination_rel_ids": [
                    fields.Command.create(
                        {"combination_id": calendars[1].combination_id.id}
                    )
                ],
            }
        )
        start = datetime.now().replace(minute=0, second=0, microsecond=0)
        booking = self.env["resource.booking"].create(
            {
                "name": "Booked in Odoo",
                "type_id": booking_type.id,
                "partner_ids": [fields.Command.set(self.env.user.partner_id.ids)],
                "combination_auto_assign": False,
                "combination_id": calendars[1].combination_id.id,
                "start": start + timedelta(days=2, hours=3),
                "duration": 1,
            }
        )
        self.make_triggers_due()
        self.assertEqual(self.sync_job_runs(), 1)
        # Its round wrote the booking, then read its echo back (two rounds).
        self.assertEqual(calendars.mapped("round_count"), [1, 3, 1])
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        self.assertFalse(self.env["room.exchange.sync.request"].search([]))

    def test_a_delegated_room_keeps_polling_a_notified_room_waits(self):
        (notified, polled_app) = self.app_rooms(self.connection, 2)
        self.subscribe(notified)
        delegated_connection = self.ready_connection("delegated")
        self.connection = delegated_connection  # sign_in checks its redirect URI
        self.emulator.scenario.app(scenarios.DELEGATED_APP).redirect_uris.append(
            delegated_connection.redirect_uri
        )
        self.room.write(
            {
                "exchange_connection_id": delegated_connection.id,
                "calendar_id": notified.room_id.calendar_id.id,
            }
        )
        delegated = self.room.exchange_calendar_id
        scenarios.TestDelegatedSyncScenarios.sign_in(self, delegated)
        delegated._bind_mailbox(ROOM_ADAMS)
        rooms = notified | polled_app | delegated
        self.make_sync_job_ready()
        self.sync_job_runs()
        self.assertEqual(rooms.mapped("round_count"), [1, 1, 1])
        # Six minutes later (the cron runs every 5): the polled rooms are due, the
        # room Microsoft notifies of its changes is not (its safety net is hourly).
        rooms.last_sync_date = fields.Datetime.now() - timedelta(minutes=6)
        self.make_sync_job_ready()
        self.sync_job_runs()
        self.assertEqual(rooms.mapped("round_count"), [1, 2, 2])
        # An hour later, it is polled too.
        rooms.last_sync_date = fields.Datetime.now() - timedelta(minutes=61)
        self.make_sync_job_ready()
        self.sync_job_runs()
        self.assertEqual(rooms.mapped("round_count"), [2, 3, 3])
        # Without a live subscription, it is polled like the others.
        self.env["room.exchange.subscription"].search([]).expiration = (
            fields.Datetime.now() - timedelta(minutes=1)
        )
        rooms.last_sync_date = fields.Datetime.now() - timedelta(minutes=6)
        self.make_sync_job_ready()
        self.sync_job_runs()
        self.assertEqual(rooms.mapped("round_count"), [3, 4, 4])

    def test_the_notification_endpoint_marks_the_room_without_locking_it(self):
        (calendar,) = self.app_rooms(self.connection, 1)
        subscription = self.subscribe(calendar)
        body = {
            "value": [
                {
                    "subscriptionId": subscription.external_id,
                    "clientState": subscription.sudo().client_state,
                    "changeType": "updated",
                    "resource": f"Users/{calendar.mailbox}/Events/x",
                }
            ]
        }
        self.env.flush_all()
        answer = self.url_open(
            NOTIFICATION_PATH,
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(answer.status_code, 202)
        requests = self.env["room.exchange.sync.request"].search([])
        self.assertEqual(requests.calendar_id, calendar)
