# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""When rooms sync: a request marks a room due and wakes the sync cron; the cron
(``_cron_sync``) takes the rooms that are due, most due first, a group of rooms side
by side per committed step, and logs one line per run. Which rooms are due and how
often a room is polled are decided here (``_due_for_sync``, ``_poll_intervals``)."""

import collections
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.base.models.ir_cron import _intervalTypes

from ..sync import RoundOptions, run_side_by_side, worker_pool

_logger = logging.getLogger(__name__)

SYNC_CRON = "room_exchange_sync.ir_cron_room_exchange_sync"
PARAM_ROOMS_SIDE_BY_SIDE = "room_exchange_sync.rooms_side_by_side"
DEFAULT_ROOMS_SIDE_BY_SIDE = 10
MAX_ROOMS_SIDE_BY_SIDE = 32
PARAM_NOTIFIED_POLL_MINUTES = "room_exchange_sync.notified_poll_minutes"
DEFAULT_NOTIFIED_POLL_MINUTES = 60


class RoomExchangeCalendarSchedule(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    def _request_sync(self) -> None:
        """Mark these rooms due (a change notification, a change of their bookings in
        Odoo) and wake their sync up soon, after this transaction commits; Graph is
        never called from the user's transaction. Only these rooms are marked: the
        scheduler takes them before the others (``_due_for_sync``)."""
        calendars = self.filtered("sync_enabled")
        if not calendars:
            return
        self.env["room.exchange.sync.request"].sudo().create(
            [{"calendar_id": calendar_id} for calendar_id in calendars.ids]
        )
        calendars._wake_sync()

    def _wake_sync(self) -> None:
        """Start the sync of these requested rooms soon: here, a run of the sync
        cron (a trigger is a row of this transaction; the cron takes requested
        rooms first). room_exchange_sync_queue queues their jobs instead.

        A trigger already due is enough (a flood of notifications makes one run),
        unless a run of the job is starting and deleting it: such a run may no
        longer look for requests, so a trigger it is deleting (a row it locked)
        does not count."""
        cron = self.env.ref(SYNC_CRON).sudo()
        self.env["ir.cron.trigger"].flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM ir_cron_trigger WHERE cron_id = %s AND call_at <= %s"
                " LIMIT 1 FOR KEY SHARE SKIP LOCKED",
                cron.id,
                fields.Datetime.now(),
            )
        )
        if not self.env.cr.fetchone():
            cron._trigger()

    @api.model
    def _cron_sync(self) -> None:
        """Sync the rooms that are due, most due first, a group of rooms side by
        side (their Graph round trips overlap) per committed step.

        Which rooms and in what order is asked again before every group
        (``_due_for_sync``): a room requested meanwhile goes first, a room just
        synced is no longer due, so a run that stops at its time limit (it reports
        what remains to ``ir.cron._commit_progress``, and Odoo runs it again at
        once) resumes where it stopped. Several Odoo workers may run this at once:
        a room locked by another worker is skipped, so no room is processed twice.
        A failing room never stops the others.
        """
        if self._sync_paused():
            _logger.info("Exchange room sync is paused in Settings")
            return
        Cron = self.env["ir.cron"]
        group_size = self._rooms_side_by_side()
        tally = collections.Counter()
        tried = []
        with worker_pool(group_size) as pool:
            while True:
                group, requested, due = self._due_for_sync(group_size, tried)
                if not group:
                    break
                tried += group.ids
                group._sync_group(requested, pool, tally)
                left = due - len(group)
                if not Cron._commit_progress(len(group), remaining=left):
                    tally["time_limit"] = left
                    if left:
                        # Odoo runs the job again, once its cron threads look for
                        # jobs: when notified, or a minute later. A trigger due now
                        # notifies them (after this transaction commits).
                        self.env.ref(SYNC_CRON).sudo()._trigger()
                    break
        self._log_sync_run(tally, tried)
        if tally["busy"]:
            # A room another worker (or the export) holds is tried again soon rather
            # than at the next interval.
            self.env.ref(SYNC_CRON)._trigger(
                at=fields.Datetime.now() + timedelta(minutes=1)
            )

    def _sync_group(self, requested, pool, tally) -> None:
        """One round of each room of ``self``, side by side, those another worker
        holds left out; ``requested``: the ids of rooms with a sync request, which
        their round takes. Counts what happened in ``tally``."""
        locked = self._try_lock()
        tally["busy"] += len(self) - len(locked)
        for calendar_id, problem in locked._company_problems().items():
            locked -= self.browse(calendar_id)
            self.browse(calendar_id)._record_round_failure(problem)
            tally["failed"] += 1
        taken = [calendar_id for calendar_id in locked.ids if calendar_id in requested]
        if taken:
            self.env.cr.execute(
                SQL(
                    "DELETE FROM room_exchange_sync_request"
                    " WHERE calendar_id = ANY(%s)",
                    taken,
                )
            )
        quiet = locked._quiet_rooms(requested)
        plans = run_side_by_side(
            [
                calendar._sync_steps(RoundOptions(quiet=calendar in quiet))
                for calendar in locked
            ],
            pool=pool,
        )
        for calendar, plan in zip(locked, plans, strict=True):
            if plan is False:
                tally["failed"] += 1
            else:
                tally["synced"] += 1
                tally["requested"] += calendar.id in requested

    def _quiet_rooms(self, requested=()) -> models.Model:
        """The rooms of ``self`` nobody asked to sync and whose every linked booking
        is in sync (one query): their round does nothing more when Exchange reports
        no change (``SyncRound.quiet``)."""
        if not self:
            return self
        Binding = self.env["room.exchange.binding"]
        Binding.flush_model(["calendar_id", "sync_state"])
        self.env.cr.execute(
            SQL(
                "SELECT DISTINCT calendar_id FROM room_exchange_binding"
                " WHERE calendar_id = ANY(%s) AND sync_state != 'synced'",
                self.ids,
            )
        )
        busy = {row[0] for row in self.env.cr.fetchall()} | set(requested)
        return self.browse([id_ for id_ in self.ids if id_ not in busy])

    @api.model
    def _due_for_sync(self, limit, skip_ids=()) -> tuple[models.Model, set[int], int]:
        """(the next ``limit`` rooms due for a round, most due first; the ids of
        those with a sync request; how many rooms are due in all, these included),
        in one query. Rooms in ``skip_ids`` are left out.

        Due: a room whose sync is on and not waiting for a retry, and that is
        requested (a change notification, a change in Odoo), or whose last
        successful round is older than its polling interval: the sync cron's
        interval, or ``room_exchange_sync.notified_poll_minutes`` (60) for a room of
        an application-mode connection with a live change-notification
        subscription, which Microsoft tells of its changes (polling is only its
        safety net). A room is due half a cron interval early, when the next run
        would sync it later than this one. Requested rooms come first (oldest
        request first), then the longest unsynced."""
        now = fields.Datetime.now()
        polled, notified = self._poll_intervals()
        early = polled / 2
        self.flush_model()
        self.env["room.exchange.connection"].flush_model(["state", "auth_mode"])
        self.env["room.exchange.sync.request"].flush_model()
        self.env["room.exchange.subscription"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT cal.id, request.first_id IS NOT NULL, count(*) OVER ()
                  FROM room_exchange_calendar cal
                  JOIN room_exchange_connection conn ON conn.id = cal.connection_id
             LEFT JOIN (
                    SELECT calendar_id, min(id) AS first_id
                      FROM room_exchange_sync_request
                  GROUP BY calendar_id
                  ) request ON request.calendar_id = cal.id
                 WHERE cal.sync_enabled
                   AND cal.state IN ('authorized', 'syncing', 'error')
                   AND conn.state = 'ready'
                   AND (cal.next_attempt_date IS NULL
                        OR cal.next_attempt_date <= %(now)s)
                   AND cal.id != ALL(%(skip)s)
                   AND (request.first_id IS NOT NULL
                        OR cal.last_sync_date IS NULL
                        OR cal.last_sync_date <= CASE
                            WHEN conn.auth_mode = 'application' AND EXISTS (
                                SELECT 1 FROM room_exchange_subscription sub
                                 WHERE sub.calendar_id = cal.id
                                   AND sub.external_id IS NOT NULL
                                   AND sub.expiration > %(now)s)
                            THEN %(notified_before)s
                            ELSE %(polled_before)s END)
              ORDER BY request.first_id NULLS LAST, cal.last_sync_date NULLS FIRST,
                       cal.id
                 LIMIT %(limit)s
                """,
                now=now,
                skip=list(skip_ids),
                notified_before=now - notified + early,
                polled_before=now - polled + early,
                limit=limit,
            )
        )
        rows = self.env.cr.fetchall()
        group = self.browse([row[0] for row in rows])
        requested = {row[0] for row in rows if row[1]}
        return group, requested, rows[0][2] if rows else 0

    @api.model
    def _poll_intervals(self) -> tuple[timedelta, timedelta]:
        """(how often a room is polled: the sync cron's interval; how often a room
        with change notifications is: system parameter
        ``room_exchange_sync.notified_poll_minutes``, 60 by default)."""
        cron = self.env.ref(SYNC_CRON).sudo()
        # A relativedelta (months have no fixed length): measured from now.
        now = fields.Datetime.now()
        polled = now + _intervalTypes[cron.interval_type](cron.interval_number) - now
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param(PARAM_NOTIFIED_POLL_MINUTES, DEFAULT_NOTIFIED_POLL_MINUTES)
        )
        try:
            minutes = float(value)
        except ValueError:
            minutes = DEFAULT_NOTIFIED_POLL_MINUTES
        notified = timedelta(minutes=minutes) if minutes > 0 else polled
        return polled, max(notified, polled)

    @api.model
    def _log_sync_run(self, tally, tried) -> None:
        """One line for the run: what was synced, and what was not and why."""
        polled, _notified = self._poll_intervals()
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*) FILTER (WHERE next_attempt_date > %(now)s),
                       count(*) FILTER (WHERE state NOT IN
                                        ('authorized', 'syncing', 'error')),
                       count(*)
                  FROM room_exchange_calendar
                 WHERE sync_enabled AND id != ALL(%(tried)s)
                """,
                now=fields.Datetime.now(),
                tried=tried,
            )
        )
        waiting, stopped, untried = self.env.cr.fetchone()
        left = tally["time_limit"]
        _logger.info(
            "Exchange room sync: %s rooms synced (%s on request), %s failed; "
            "skipped: %s held by another worker, %s left for the next run (time "
            "limit), %s waiting for a retry after a failure, %s needing an admin "
            "(not authorized, or a new sign-in), %s not due (synced less than %s "
            "ago, or told of their changes by Microsoft)",
            tally["synced"],
            tally["requested"],
            tally["failed"],
            tally["busy"],
            left,
            waiting,
            stopped,
            max(untried - waiting - stopped - left, 0),
            polled,
        )

    @api.model
    def _rooms_side_by_side(self) -> int:
        """How many rooms a cron step syncs at once (system parameter
        ``room_exchange_sync.rooms_side_by_side``): Exchange's limits are per
        mailbox, so this only bounds Odoo's own threads and connections."""
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param(PARAM_ROOMS_SIDE_BY_SIDE, DEFAULT_ROOMS_SIDE_BY_SIDE)
        )
        try:
            return min(max(int(value), 1), MAX_ROOMS_SIDE_BY_SIDE)
        except ValueError:
            return DEFAULT_ROOMS_SIDE_BY_SIDE
