# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Outlook/Exchange Bulk Export: one run of the export of one room's bookings.

There is no second way of writing events: an export runs ordinary sync rounds
(``SyncRound``) whose window reaches the export's horizon, a chunk of creations per
round, in a cron job (``ir_cron_room_exchange_export``, data/ir_cron_data.xml) that
commits after every chunk. Re-running or resuming after a crash therefore never
duplicates an event: bound bookings are left alone, and an event created but not
recorded is adopted by its transactionId and marker.

A run is queued by the wizard or a room's first sync (``_export_queue``), worked
through by ``_cron_export`` and kept: earlier exports stay visible as records. The
room calendar points at its latest run (``export_run_id``), which its tab shows.
"""

import functools
import logging
from datetime import datetime, time, timedelta

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, format_date

from .. import engine
from ..graph import GraphError
from ..graph.client import BATCH_LIMIT
from ..sync import RoundOptions, SyncRound, run_side_by_side
from ..sync.read_ahead import ReadAhead
from ..sync.steps import Steps

_logger = logging.getLogger(__name__)

CRON = "room_exchange_sync.ir_cron_room_exchange_export"

EXPORT_STATES = [
    ("queued", "Queued"),
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Failed"),
]
ACTIVE_STATES = ("queued", "running")
# Configuration (ir.config_parameter), with their defaults.
PARAM_CHUNK = "room_exchange_sync.export_chunk_size"
PARAM_BUDGET = "room_exchange_sync.export_budget_requests"
PARAM_BUDGET_SECONDS = "room_exchange_sync.export_budget_seconds"
DEFAULT_CHUNK = 200
# Exchange Online: 10,000 requests per app and mailbox in 10 minutes.
DEFAULT_BUDGET = 10000
DEFAULT_BUDGET_SECONDS = 600
# Share of the mailbox budget an export may use (the sync and others need the rest).
BUDGET_SHARE = 0.95
MAX_ROUND_FAILURES = 3
MAX_STEPS_PER_RUN = 1000
# What a step does to its room's links when it only creates the next events and
# acknowledges the echoes of the last ones (``_progress_after``).
STEP_KINDS = {engine.ActionKind.CREATE_REMOTE, engine.ActionKind.MARK_SYNCED}


def day_end(value):
    """Midnight at or after ``value``: windows of whole days keep delta rounds
    incremental."""
    day = datetime.combine(value.date(), time())
    return day if day == value else day + timedelta(days=1)


class RoomExchangeExportRun(models.Model):
    """One export of one room's future bookings to its Exchange room calendar: what
    it covers, how far it got, how it ended and who started it."""

    _name = "room.exchange.export.run"
    _description = "Outlook/Exchange export run"
    _order = "id desc"
    _rec_name = "room_id"
    _check_company_auto = True

    calendar_id = fields.Many2one(
        "room.exchange.calendar",
        string="Room calendar",
        required=True,
        readonly=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    room_id = fields.Many2one(
        related="calendar_id.room_id", store=True, index=True, string="Room"
    )
    company_id = fields.Many2one(
        related="calendar_id.company_id", store=True, index=True, string="Company"
    )
    state = fields.Selection(
        EXPORT_STATES,
        string="Export",
        default="queued",
        required=True,
        readonly=True,
        index=True,
    )
    date_start = fields.Datetime(
        string="From", readonly=True, help="Bookings ending after this are exported."
    )
    date_end = fields.Datetime(
        string="Until",
        readonly=True,
        help="Bookings starting before this are exported.",
    )
    horizon = fields.Datetime(
        string="Sync horizon",
        readonly=True,
        help="The furthest horizon an export of this room reached. Sync rounds keep it "
        "in their window, so that exported events keep being synced.",
    )
    total_count = fields.Integer(string="Bookings to export", readonly=True)
    already_count = fields.Integer(string="Already in Exchange", readonly=True)
    exported_count = fields.Integer(string="Exported", readonly=True)
    failed_count = fields.Integer(string="Failed", readonly=True)
    summary = fields.Text(readonly=True)
    user_id = fields.Many2one("res.users", string="Started by", readonly=True)
    round_failure_count = fields.Integer(string="Failed export rounds", readonly=True)
    retry_date = fields.Datetime(string="Next retry", readonly=True)

    # One export of a room under way at a time (the room's lock does the rest).
    _calendar_active_uniq = models.UniqueIndex(
        "(calendar_id) WHERE state IN ('queued', 'running')",
        "An export of this room is already under way.",
    )

    @api.depends("room_id", "create_date")
    def _compute_display_name(self) -> None:
        for run in self:
            run.display_name = self.env._(
                "Export of %(room)s, %(date)s",
                room=run.room_id.display_name,
                date=format_date(self.env, run.create_date or fields.Date.today()),
            )

    # What it covers

    def _scope(self) -> models.Model:
        """The bookings of this run: the room's live Odoo bookings in its range."""
        self.ensure_one()
        return self.calendar_id._export_scope(self.date_start, self.date_end)

    def _progress(self) -> tuple:
        """(bookings of the export whose event is in Exchange, bookings whose
        export failed), counted by the database: a step must not read the
        export's whole scope (the export would grow quadratically)."""
        self.ensure_one()
        calendar = self.calendar_id
        scope = (
            self.env["resource.booking"]
            .sudo()
            ._search(calendar._export_scope_domain(self.date_start, self.date_end))
        )
        self.env["room.exchange.binding"].flush_model(
            ["calendar_id", "booking_id", "external_id", "sync_state"]
        )
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*) FILTER (WHERE present),
                       count(*) FILTER (WHERE failed AND NOT present)
                  FROM (SELECT bool_or(external_id IS NOT NULL) AS present,
                               bool_or(sync_state = 'error') AS failed
                          FROM room_exchange_binding
                         WHERE calendar_id = %s AND sync_state != 'deleted_local'
                           AND booking_id IN %s
                      GROUP BY booking_id) AS bound
                """,
                calendar.id,
                scope.subselect(),
            )
        )
        return self.env.cr.fetchone()

    def _progress_before(self) -> tuple:
        """``_progress`` before a step: what the last step recorded (exact unless
        clamped at 0), so that a step does not count the export's whole scope
        again (the export would grow quadratically)."""
        self.ensure_one()
        if self.exported_count > 0:
            return self.already_count + self.exported_count, self.failed_count
        return self._progress()

    def _progress_after(self, plan, before) -> tuple:
        """``_progress`` after a step whose progress was ``before``: a step that
        only created events and marked links synced changed only the links of its
        actions' bookings, whose states before are in the plan: counted for those
        bookings alone. Any other step is counted in full."""
        kinds = {action.kind for action in plan.actions}
        if not kinds or not kinds <= STEP_KINDS:
            return self._progress()
        actions = {a.booking_id: a for a in plan.actions if a.booking_id}
        domain = self.calendar_id._export_scope_domain(self.date_start, self.date_end)
        in_scope = (
            self.env["resource.booking"]
            .sudo()
            .browse(sorted(actions))
            .filtered_domain(domain)
        )
        now_present, now_failed = map(
            set, (records.ids for records in self.calendar_id._export_counts(in_scope))
        )
        present, failed = before
        for booking_id in in_scope.ids:
            status = actions[booking_id].status
            if status and status.state == engine.SyncState.DELETED_LOCAL:
                status = None  # not counted, as in _progress
            was_present = bool(status and status.event_id)
            was_failed = bool(status and status.state == engine.SyncState.ERROR)
            present += (booking_id in now_present) - was_present
            failed += (booking_id in now_failed) - (was_failed and not was_present)
        return present, failed

    # Running it in the background

    @api.model
    def _settings(self) -> tuple:
        """(creations per round, (requests, seconds) of the mailbox budget the export
        may use, or None for no pacing)."""
        params = self.env["ir.config_parameter"].sudo()

        def number(key, default):
            try:
                return max(float(params.get_param(key, default)), 0)
            except (TypeError, ValueError):
                return default

        chunk = max(int(number(PARAM_CHUNK, DEFAULT_CHUNK)), 1)
        budget = number(PARAM_BUDGET, DEFAULT_BUDGET)
        seconds = number(PARAM_BUDGET_SECONDS, DEFAULT_BUDGET_SECONDS)
        if not budget or not seconds:
            return chunk, None
        return chunk, (max(int(budget * BUDGET_SHARE), BATCH_LIMIT), seconds)

    @api.model
    def _cron_export(self) -> None:
        """Work through the queued and running exports, in passes of one step per
        room; a group of rooms takes its steps side by side (their Graph round trips
        overlap), then commits.

        The first delta pages of the app-only rooms are read ahead in $batch
        requests (``ReadAhead``): before the first pass, then during each pass for
        the next, as soon as a room's writes are answered. A step creates at most
        ``chunk`` events and leaves their echoes to the room's next step, so a room
        is done after a step that found nothing more to do. A room locked by
        another worker (its sync, or another export run) is tried again a minute
        later; a stopped run is resumed by the next one.
        """
        Calendar = self.env["room.exchange.calendar"]
        if Calendar._sync_paused():
            return
        now = fields.Datetime.now()
        pending = self.search(
            [
                ("state", "in", ACTIVE_STATES),
                "|",
                ("retry_date", "=", False),
                ("retry_date", "<=", now),
            ],
            order="id",  # first queued, first served
        )
        chunk, budget = self._settings()
        Cron = self.env["ir.cron"]
        group_size = Calendar._rooms_side_by_side()
        read_ahead = pending._read_ahead(budget)
        for _pass in range(MAX_STEPS_PER_RUN):
            if not pending:
                return
            next_read_ahead = {}
            finished = self.browse()
            for offset in range(0, len(pending), group_size):
                group = pending[offset : offset + group_size]
                finished |= group._steps_side_by_side(
                    chunk, budget, read_ahead, next_read_ahead
                )
                time_left = Cron._commit_progress(
                    len(group & finished), remaining=len(pending - finished)
                )
                if not time_left:
                    return
                # What the committed steps read and wrote need not stay in the
                # transaction's cache: an export's memory must not grow with the
                # number of bookings.
                self.env.invalidate_all()
            pending -= finished
            unread = pending.browse(
                [run.id for run in pending if run.calendar_id.id not in next_read_ahead]
            )
            read_ahead = {**next_read_ahead, **unread._read_ahead(budget)}

    def _steps_side_by_side(
        self, chunk, budget, read_ahead, next_read_ahead
    ) -> models.Model:
        """One step of each run of ``self`` (their Graph round trips overlap);
        returns the runs finished for this pass. A room another worker holds (its
        sync) is left for a minute later. The first pages of the next steps are
        read ahead into ``next_read_ahead``; both are keyed by calendar id."""
        locked = self.calendar_id._try_lock()
        if len(locked) < len(self.calendar_id):
            self.env.ref(CRON).sudo()._trigger(
                fields.Datetime.now() + timedelta(minutes=1)
            )
        runs = self.filtered(lambda run: run.calendar_id in locked)
        ahead = runs._read_ahead_group(budget)
        finished = run_side_by_side(
            [
                run._step(
                    chunk,
                    budget,
                    read_ahead.pop(run.calendar_id.id, None),
                    functools.partial(ahead.report, run.calendar_id.id),
                )
                for run in runs
            ],
            len(self),
        )
        ahead.flush()
        next_read_ahead.update(ahead.read_ahead)
        return (self - runs) | self.browse(
            [run.id for run, end in zip(runs, finished, strict=True) if end]
        )

    def _read_ahead_group(self, budget) -> ReadAhead:
        """A ``ReadAhead`` over the app-only rooms of these runs; the rooms of a
        connection whose client cannot be made read on their own."""
        clients, rooms = {}, {}
        app_only = self.filtered(lambda run: run.calendar_id.auth_mode == "application")
        by_connection = app_only.grouped(lambda run: run.calendar_id.connection_id)
        for connection, group in by_connection.items():
            try:
                clients[connection.id] = group[0].calendar_id._graph_client()
            except (GraphError, UserError) as error:
                _logger.info(
                    "Export of connection %s: no read ahead (%s)",
                    connection.id,
                    type(error).__name__,
                )
                continue
            for run in group:
                rooms[run.calendar_id.id] = (connection.id, run.calendar_id.mailbox)
        return ReadAhead(clients, rooms, budget)

    def _read_ahead(self, budget=None) -> dict:
        """{calendar id: (request, result)}: the first delta page of each app-only
        room, read in the background (``ReadAhead``)."""
        ahead = self._read_ahead_group(budget)
        for run in self:
            calendar = run.calendar_id
            client = ahead.client(calendar.id)
            if client:
                ahead.report(
                    calendar.id,
                    SyncRound(
                        calendar, RoundOptions(window_end=run.horizon)
                    ).first_read_request(client, str(calendar.id)),
                )
        ahead.flush()
        return ahead.read_ahead

    def _step(self, chunk, budget, read_ahead=None, read_next=None) -> Steps[bool]:
        """One sync round of the room creating at most ``chunk`` events, as a
        generator of Graph steps (sync/steps.py); returns True once this run is
        finished for this pass (done, failed, or waiting for a retry)."""
        self.ensure_one()
        run = self.sudo()
        calendar = run.calendar_id
        if run.state == "queued":
            run.state = "running"
        problem = calendar._export_room_problem(("authorized", "syncing", "error"))
        if problem:
            run._finish("failed", problem)
            return True
        before = run._progress_before()
        options = RoundOptions(
            window_end=run.horizon,
            max_creates=chunk,
            budget=budget,
            follow_up=False,
            read_next=read_next,
        )
        steps = calendar._sync_steps(options, read_ahead)
        del read_ahead  # the round's to drop once read: a page of whole events
        plan = yield from steps
        if plan is False:
            failures = run.round_failure_count + 1
            if failures >= MAX_ROUND_FAILURES:
                run._finish("failed", calendar.last_error)
                return True
            retry = calendar.next_attempt_date or (
                fields.Datetime.now() + timedelta(minutes=5)
            )
            run.write({"round_failure_count": failures, "retry_date": retry})
            self.env.ref(CRON).sudo()._trigger(retry)
            return True
        present, failed = run._progress_after(plan, before)
        run.write(
            {
                "exported_count": max(present - run.already_count, 0),
                "failed_count": failed,
                "round_failure_count": 0,
                "retry_date": False,
            }
        )
        # Done after a step that changed nothing: everything is present and the
        # echoes of the last writes were read, or nothing more can be done now.
        if (present, failed) == before:
            run._finish("done")
            return True
        return False

    def _finish(self, state, reason=None) -> None:
        """Record the outcome, and tell the admin who started the export (on the
        room calendar's chatter)."""
        self.ensure_one()
        calendar = self.calendar_id
        scope = self._scope()
        present, failed = calendar._export_counts(scope)
        flagged = (
            self.env["resource.booking"]
            .sudo()
            .search_count([("id", "in", scope.ids), ("exchange_overlap", "=", True)])
        )
        left = len(scope) - len(present) - len(failed)
        lines = [
            self.env._(
                "Export of room %(room)s to Exchange (bookings up to %(end)s): "
                "%(done)s exported, %(already)s already in Exchange, %(overlaps)s "
                "overlaps flagged, %(failed)s failed.",
                room=calendar.room_id.display_name,
                end=format_date(self.env, self.date_end - timedelta(seconds=1)),
                done=max(len(present) - self.already_count, 0),
                already=self.already_count,
                overlaps=flagged,
                failed=len(failed),
            )
        ]
        if reason:
            lines.append(self.env._("The export stopped: %(reason)s", reason=reason))
        if left and state == "done":
            lines.append(
                self.env._(
                    "%(count)s bookings were not exported (overlaps or bookings "
                    "waiting for a retry): see the Overlaps view.",
                    count=left,
                )
            )
        if failed:
            errors = (
                self.env["room.exchange.binding"]
                .sudo()
                .search(
                    [
                        ("calendar_id", "=", calendar.id),
                        ("booking_id", "in", failed.ids),
                    ]
                )
            )
            for binding in errors[:20]:
                lines.append(
                    f"- {binding.booking_id.display_name}: {binding.sync_error or '?'}"
                )
        self.write(
            {
                "state": state,
                "summary": "\n".join(lines),
                "exported_count": max(len(present) - self.already_count, 0),
                "failed_count": len(failed),
                "retry_date": False,
            }
        )
        calendar.with_context(mail_notrack=True).message_post(
            body=Markup("<br/>").join(escape(line) for line in lines),
            subject=self.env._(
                "Exchange export of %(room)s", room=calendar.room_id.display_name
            ),
            partner_ids=self.user_id.partner_id.ids,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        _logger.info("Exchange export of room calendar %s: %s", calendar.id, state)
