# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sync on queue_job: one job per due room, never two waiting for one room, and
never two workers syncing one room at once."""

from unittest.mock import patch

from odoo.tests import TransactionCase, tagged

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job
from odoo.addons.room_exchange_sync.tests.common import (
    CommittedRoomMixin,
    RoomExchangeCase,
)


def no_commit(*args, **kwargs):
    """ir.cron._commit_progress commits outside a cron run: not in a test."""
    return float("inf")


@tagged("post_install", "-at_install")
class TestSyncJobs(RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.addCleanup(self.emulator.reset)
        self.connection = self.ready_connection("application")
        self.calendars = self.app_rooms(self.connection, 3, prefix="queue")
        self.Job = self.env["queue.job"]

    def sync_jobs(self):
        return self.Job.search(
            [
                ("model_name", "=", "room.exchange.calendar"),
                ("method_name", "=", "_job_sync_room"),
                ("state", "=", "pending"),
            ]
        )

    def cron_sync(self):
        Cron = type(self.env["ir.cron"])
        with patch.object(Cron, "_commit_progress", no_commit):
            self.env["room.exchange.calendar"]._cron_sync()

    def test_one_job_per_due_room_on_the_rooms_channel(self):
        self.cron_sync()
        jobs = self.sync_jobs()
        self.assertEqual(len(jobs), 3)
        self.assertEqual(
            sorted(job.records.id for job in jobs), sorted(self.calendars.ids)
        )
        self.assertEqual(set(jobs.mapped("channel")), {"root.room_exchange_sync"})
        self.assertEqual(
            sorted(jobs.mapped("identity_key")),
            sorted(f"room_exchange_sync.calendar:{c.id}" for c in self.calendars),
        )
        # The cron ran no round itself.
        self.assertEqual(self.calendars.mapped("round_count"), [0, 0, 0])

    def test_identity_keys_prevent_duplicates(self):
        self.cron_sync()
        self.cron_sync()
        self.calendars[1]._request_sync()
        self.calendars._request_sync()
        self.assertEqual(len(self.sync_jobs()), 3)

    def test_jobs_sync_each_room_once_and_take_its_requests(self):
        self.calendars[2]._request_sync()
        self.cron_sync()
        for job in self.sync_jobs():
            Job.load(self.env, job.uuid).perform()
        self.assertEqual(self.calendars.mapped("round_count"), [1, 1, 1])
        self.assertFalse(self.env["room.exchange.sync.request"].search([]))
        # Synced: nothing is due, nothing more is queued.
        self.cron_sync()
        self.assertEqual(len(self.sync_jobs()), 3, "the performed jobs only")

    def test_a_request_queues_its_room_only(self):
        self.calendars[0]._request_sync()
        jobs = self.sync_jobs()
        self.assertEqual([job.records for job in jobs], [self.calendars[0]])
        self.assertFalse(
            self.env["ir.cron.trigger"].search(
                [
                    (
                        "cron_id",
                        "=",
                        self.env.ref(
                            "room_exchange_sync.ir_cron_room_exchange_sync"
                        ).id,
                    ),
                    ("create_date", ">=", self.calendars[0].create_date),
                ]
            ),
            "the cron is not woken up: the job does the work",
        )


@tagged("post_install", "-at_install")
class TestTwoWorkers(CommittedRoomMixin, TransactionCase):
    """Two workers, each on its own real database connection."""

    def test_two_workers_never_sync_the_same_room_at_once(self):
        first, second = self.real_env(), self.real_env()
        calendar_id = self.row_ids[2]
        synced = []
        Calendar = type(second["room.exchange.calendar"])
        with patch.object(
            Calendar, "_sync", lambda calendar, **kw: synced.append(calendar.id)
        ):
            # Worker 1 is syncing the room (it holds its lock) ...
            first["room.exchange.calendar"].browse(calendar_id)._job_sync_room()
            self.assertEqual(synced, [calendar_id])
            # ... so worker 2's job for it waits, uncounted, and syncs nothing.
            with self.assertRaises(RetryableJobError) as caught:
                second["room.exchange.calendar"].browse(calendar_id)._job_sync_room()
            self.assertTrue(caught.exception.ignore_retry)
            self.assertEqual(synced, [calendar_id])
            first.cr.rollback()
            second.cr.rollback()
            second["room.exchange.calendar"].browse(calendar_id)._job_sync_room()
            second.cr.rollback()
        self.assertEqual(synced, [calendar_id, calendar_id])
