# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, models
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError

# Rooms the sync cron queues per committed step.
QUEUE_STEP = 200
# Seconds before a job whose room another worker holds tries again.
BUSY_RETRY_SECONDS = 10


class RoomExchangeCalendar(models.Model):
    """Each due room's round runs as a job of the ``root.room_exchange_sync``
    channel: the channel's capacity sets how many rooms sync at once across every
    Odoo worker and server; queue_job retries failures and lists failed jobs. The
    sync cron only queues the rooms that are due (``_due_for_sync``); a request (a
    change notification, an Odoo edit) queues its room at once."""

    _inherit = "room.exchange.calendar"

    def _wake_sync(self):
        self._queue_sync_jobs()

    @api.model
    def _cron_sync(self):
        """Queue a job for every room that is due, most due first; a room whose
        job waits already is not queued twice (its identity key)."""
        Cron = self.env["ir.cron"]
        queued = []
        while True:
            group, _requested, due = self._due_for_sync(QUEUE_STEP, queued)
            if not group:
                break
            queued += group.ids
            group._queue_sync_jobs()
            if not Cron._commit_progress(len(group), remaining=due - len(group)):
                break

    def _queue_sync_jobs(self):
        for calendar in self:
            calendar.with_delay(
                description=self.env._(
                    "Exchange sync of room %(room)s",
                    room=calendar.room_id.display_name,
                ),
                identity_key=calendar._sync_job_identity(),
            )._job_sync_room()

    def _sync_job_identity(self):
        """One waiting job per room at a time (queue_job's identity key)."""
        self.ensure_one()
        return f"room_exchange_sync.calendar:{self.id}"

    def _job_sync_room(self):
        """The job: one round of this room, unless another worker holds it (then
        it is tried again soon, uncounted: no room is synced twice at once)."""
        self.ensure_one()
        calendar = self.sudo()
        if not calendar.sync_enabled or calendar.state not in (
            "authorized",
            "syncing",
            "error",
        ):
            return "The room does not sync."
        if not calendar._try_lock():
            raise RetryableJobError(
                "The room is being synced by another worker.",
                seconds=BUSY_RETRY_SECONDS,
                ignore_retry=True,
            )
        self.env.cr.execute(
            SQL(
                "DELETE FROM room_exchange_sync_request WHERE calendar_id = %s"
                " RETURNING id",
                calendar.id,
            )
        )
        requested = [calendar.id] if self.env.cr.fetchall() else []
        quiet = calendar._quiet_rooms(requested)
        plan = calendar._sync(quiet=bool(quiet))
        if plan is False:
            return f"Failed: {calendar.last_error}"
        return calendar.last_sync_summary
