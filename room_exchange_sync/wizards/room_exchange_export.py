# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Outlook/Exchange Bulk Export: push a room's future bookings to its room calendar.

There is no second way of writing events: the export runs ordinary sync rounds
(``SyncRound``) whose window reaches the export horizon, a chunk of creations per
round, in a cron job (``ir_cron_room_exchange_export``) that commits after every
chunk. Re-running or resuming after a crash therefore never duplicates an event:
bound bookings are left alone, and an event created but not recorded is adopted by its
transactionId and marker.

- ``room.exchange.calendar`` gets the export's state and progress, the cron method
  ``_cron_export`` and the dry run ``_export_preview`` (reads Exchange, writes nothing);
- ``resource.resource`` shows that progress on the Exchange tab;
- ``room.exchange.export`` is the wizard: preview (rooms, date range, counts,
  overlaps), then *Run the Export*, then progress and summaries.
"""

import functools
import logging
from contextlib import ExitStack
from datetime import datetime, time, timedelta

import psycopg2
from markupsafe import Markup, escape

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, format_date, format_datetime

from .. import engine
from ..graph import GraphError
from ..graph.client import BATCH_LIMIT
from ..sync import (
    MAILBOX_BUDGET,
    RoundOptions,
    SyncRound,
    run_in_background,
    run_side_by_side,
)
from .dialogs import dialog_action

_logger = logging.getLogger(__name__)

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
USER = "room_exchange_sync.room_exchange_sync_group_user"
CRON = "room_exchange_sync.ir_cron_room_exchange_export"

EXPORT_STATES = [
    ("none", "No export"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Failed"),
]
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
MAX_HORIZON_DAYS = 1095
MAX_STEPS_PER_RUN = 1000


def _day_end(value):
    """Midnight at or after ``value``: windows of whole days keep delta rounds
    incremental."""
    day = datetime.combine(value.date(), time())
    return day if day == value else day + timedelta(days=1)


def _read_ahead_envelope(client, requests, mailboxes, budget, connection_id):
    """One $batch of first delta pages (in the background: no ORM); {request id:
    result}, or None when it failed."""
    try:
        with ExitStack() as spending:
            for mailbox in mailboxes if budget else ():
                spending.enter_context(
                    MAILBOX_BUDGET.spend(
                        mailbox, 1, budget=budget[0], seconds=budget[1]
                    )
                )
            return {result.id: result for result in client.batch(requests)}
    except GraphError as error:
        # Each step then reads on its own, and reports what goes wrong.
        _logger.info(
            "Export of connection %s: read ahead failed (%s)",
            connection_id,
            type(error).__name__,
        )
        return None


def _read_ahead_result(answer, request_id):
    """A room's read ahead page, once its envelope is answered (None: read it)."""
    results = answer.result()
    return results.get(request_id) if results else None


class _ReadAhead:
    """First delta pages of a group of app-only rooms, read in the background:
    rooms report their request when it is known (for the next pass: once their
    writes are answered, so that the echoes are read while the rounds finish), and
    each connection's requests go in two $batch envelopes, one after the other: the
    first once half of its rooms have reported, the second once all have (or at
    ``flush()``). ``read_ahead``: {calendar id: (request, a callable that waits for
    its result, None when its envelope failed)}. Rooms reached with a person's
    sign-in each have their own token, and read on their own."""

    def __init__(self, calendars, budget):
        self.budget = budget
        self.read_ahead = {}
        self.clients = {}  # connection id: GraphClient
        self.connection_of = {}  # calendar id: connection id
        self.unreported = {}  # connection id: {calendar id}
        self.sizes = {}  # connection id: how many rooms
        self.ready = {}  # connection id: [(calendar id, request)]
        self.previous = {}  # connection id: the future of its last envelope sent
        app_only = calendars.filtered(lambda c: c.auth_mode == "application")
        for connection, group in app_only.grouped("connection_id").items():
            try:
                self.clients[connection.id] = group[0]._graph_client()
            except (GraphError, UserError) as error:
                _logger.info(
                    "Export of connection %s: no read ahead (%s)",
                    connection.id,
                    type(error).__name__,
                )
                continue
            self.unreported[connection.id] = set(group.ids)
            self.sizes[connection.id] = len(group)
            self.ready[connection.id] = []
            for calendar in group:
                self.connection_of[calendar.id] = connection.id
        self.mailboxes = {calendar.id: calendar.mailbox or "" for calendar in app_only}

    def client(self, calendar_id):
        return self.clients.get(self.connection_of.get(calendar_id))

    def report(self, calendar_id, request):
        """``request`` reads the room's first page next (None: nothing to read)."""
        connection_id = self.connection_of.get(calendar_id)
        unreported = self.unreported.get(connection_id)
        if unreported is None or calendar_id not in unreported:
            return
        unreported.discard(calendar_id)
        ready = self.ready[connection_id]
        if request is not None:
            ready.append((calendar_id, request))
        reported = self.sizes[connection_id] - len(unreported)
        if not unreported or (
            connection_id not in self.previous
            and ready
            and 2 * reported >= self.sizes[connection_id]
        ):
            self._send(connection_id)

    def flush(self):
        for connection_id in self.ready:
            self._send(connection_id)

    def _send(self, connection_id):
        ready, self.ready[connection_id] = self.ready[connection_id], []
        if not ready:
            return
        job = functools.partial(
            _read_ahead_envelope,
            self.clients[connection_id],
            [request for _calendar_id, request in ready],
            [self.mailboxes[calendar_id] for calendar_id, _request in ready],
            self.budget,
            connection_id,
        )
        # One envelope after the other: Graph prepares the first's pages first.
        (answer,) = run_in_background([job], after=self.previous.get(connection_id))
        self.previous[connection_id] = answer
        for calendar_id, request in ready:
            self.read_ahead[calendar_id] = (
                request,
                functools.partial(_read_ahead_result, answer, request.id),
            )


class RoomExchangeCalendar(models.Model):
    _inherit = "room.exchange.calendar"

    export_state = fields.Selection(
        EXPORT_STATES,
        string="Export",
        default="none",
        required=True,
        readonly=True,
        copy=False,
    )
    export_start = fields.Datetime(
        string="Export start",
        readonly=True,
        copy=False,
        help="Bookings ending after this are exported.",
    )
    export_end = fields.Datetime(
        string="Export end",
        readonly=True,
        copy=False,
        help="Bookings starting before this are exported.",
    )
    export_horizon = fields.Datetime(
        string="Export horizon",
        readonly=True,
        copy=False,
        help="The furthest horizon an export of this room reached. Sync rounds keep it "
        "in their window, so that exported events keep being synced.",
    )
    export_total = fields.Integer(
        string="Bookings to export", readonly=True, copy=False
    )
    export_already = fields.Integer(
        string="Already in Exchange", readonly=True, copy=False
    )
    export_done = fields.Integer(string="Exported", readonly=True, copy=False)
    export_failed = fields.Integer(string="Failed", readonly=True, copy=False)
    export_summary = fields.Text(string="Last export", readonly=True, copy=False)
    export_user_id = fields.Many2one(
        "res.users", string="Export started by", readonly=True, copy=False
    )
    export_round_failures = fields.Integer(
        string="Failed export rounds", readonly=True, copy=False
    )
    export_retry_date = fields.Datetime(
        string="Export retry", readonly=True, copy=False
    )

    # What an export covers

    def _export_scope(self, start, end):
        """Live Odoo bookings of the room in [start, end): the ones an export pushes
        (meetings imported from Exchange are already there)."""
        self.ensure_one()
        return (
            self.env["resource.booking"]
            .sudo()
            .search(self._export_scope_domain(start, end), order="start, id")
        )

    def _export_scope_domain(self, start, end):
        self.ensure_one()
        domain = [
            ("combination_id.resource_ids", "in", self.room_id.ids),
            ("active", "=", True),
            ("state", "!=", "canceled"),
            ("start", "!=", False),
            ("exchange_origin", "=", "odoo"),
            ("stop", ">", start),
        ]
        if end:
            domain.append(("start", "<", end))
        return domain

    def _export_progress(self):
        """(bookings of the export whose event is in Exchange, bookings whose
        export failed), counted by the database: a step must not read the
        export's whole scope (the export would grow quadratically)."""
        self.ensure_one()
        scope = (
            self.env["resource.booking"]
            .sudo()
            ._search(self._export_scope_domain(self.export_start, self.export_end))
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
                self.id,
                scope.subselect(),
            )
        )
        return self.env.cr.fetchone()

    def _export_counts(self, scope):
        """(bookings whose event is in Exchange, bookings whose export failed), read
        in one query that loads no binding into the cache (a large room's export
        counts them after every step)."""
        Binding = self.env["room.exchange.binding"]
        Binding.flush_model(["calendar_id", "booking_id", "external_id", "sync_state"])
        self.env.cr.execute(
            SQL(
                """
                SELECT booking_id, bool_or(external_id IS NOT NULL),
                       bool_or(sync_state = 'error')
                  FROM room_exchange_binding
                 WHERE calendar_id = %s AND booking_id = ANY(%s)
                   AND sync_state != 'deleted_local'
              GROUP BY booking_id
                """,
                self.id,
                scope.ids,
            )
        )
        present, failed = [], []
        for booking_id, is_present, is_failed in self.env.cr.fetchall():
            if is_present:
                present.append(booking_id)
            elif is_failed:
                failed.append(booking_id)
        Booking = self.env["resource.booking"]
        return Booking.browse(sorted(present)), Booking.browse(sorted(failed))

    def _export_room_problem(self, states=("authorized", "syncing")):
        """Why this room's calendar cannot take an export now, or False."""
        self.ensure_one()
        room = self.room_id.display_name
        if not self.connection_id or not self.mailbox:
            return self.env._(
                "Room %(room)s is not connected to an Exchange room calendar: choose "
                "its connection and mailbox on its Exchange tab first.",
                room=room,
            )
        company_problem = self._company_problems().get(self.id)
        if company_problem:
            return company_problem
        if self.connection_id.state != "ready":
            return self.env._(
                "Room %(room)s: connection %(name)s is not ready; open it and click "
                "Test connection.",
                room=room,
                name=self.connection_id.name,
            )
        if not self.sync_enabled or self.state not in states:
            state = dict(self._fields["state"]._description_selection(self.env))
            return self.env._(
                "Room %(room)s is not authorized with Exchange (status: %(state)s). "
                "Authorize it on its Exchange tab first.%(error)s",
                room=room,
                state=state.get(self.state, self.state),
                error=f" {self.last_error}" if self.last_error else "",
            )
        return False

    def _export_problem(self):
        """Why the room's Run the Export is unavailable, or False (also hides the
        button of the room's Exchange tab)."""
        self.ensure_one()
        problem = self._export_room_problem()
        if problem:
            return problem
        if self.export_state in ("queued", "running"):
            return self.env._(
                "An export of room %(room)s is already under way (%(done)s of "
                "%(total)s exported).",
                room=self.room_id.display_name,
                done=self.export_done,
                total=self.export_total,
            )
        scope = self._export_scope(fields.Datetime.now(), None)
        present, _failed = self._export_counts(scope)
        if not scope - present:
            return self.env._(
                "Room %(room)s has no future booking that is not in Exchange yet.",
                room=self.room_id.display_name,
            )
        return False

    def _export_status(self):
        """(progress, sentence) of the room's export box, counted now (so that they
        agree with what the sync did meanwhile); no sentence while the room cannot
        take an export and none ran."""
        self.ensure_one()
        if self.export_state in ("queued", "running"):
            scope = self._export_scope(self.export_start, self.export_end)
            present, _failed = self._export_counts(scope)
            done = max(len(present) - self.export_already, 0)
            message = self.env._(
                "Sending this room's future bookings to Exchange in the background; "
                "Refresh shows how far it got."
            )
            if self._sync_paused():
                message = self.env._(
                    "The export waits: the sync of every room is paused in Settings."
                )
            return self.env._(
                "%(done)s of %(total)s exported", done=done, total=self.export_total
            ), message
        progress = self.export_state != "none" and self.env._(
            "%(done)s of %(total)s exported",
            done=self.export_done,
            total=self.export_total,
        )
        problem = self._export_room_problem()
        if problem:
            return progress, progress and problem
        scope = self._export_scope(fields.Datetime.now(), None)
        present, _failed = self._export_counts(scope)
        missing = len(scope) - len(present)
        if missing:
            message = self.env._(
                "Not in Exchange yet: %(count)s of this room's %(total)s future "
                "bookings.",
                count=missing,
                total=len(scope),
            )
        elif scope:
            message = self.env._(
                "All %(count)s future bookings of this room are in Exchange.",
                count=len(scope),
            )
        else:
            message = self.env._("This room has no future booking to send to Exchange.")
        return progress, message

    # The dry run

    def _export_preview(self, start, end):
        """What an export of [start, end) would do, read from Exchange without
        writing anything (no Graph write, no delta link, no flag).

        Returns a dict: ``scope`` (bookings), ``present`` and ``to_export``
        (bookings), ``overlaps`` (list of (booking, event subject, event start, event
        stop)). Raises GraphError or engine.StorageEmpty.
        """
        self.ensure_one()
        sync_round = SyncRound(
            self, RoundOptions(window_end=end, dry_run=True, full=True)
        )
        _plan, imported = sync_round.preview()
        scope = self._export_scope(start, end)
        present, _failed = self._export_counts(scope)
        to_export = scope - present
        uuid = sync_round.settings.database_uuid
        intervals = [
            engine.Interval(
                key=f"b{booking.id}", start=booking.start, stop=booking.stop
            )
            for booking in to_export
        ]
        events = {}
        for event in imported.values():
            ours = engine.parse_marker(
                event.marker, uuid
            ) or engine.parse_transaction_id(event.transaction_id, uuid)
            if event.is_cancelled or not event.start or not event.stop or ours:
                continue
            events[f"e{event.event_id}"] = event
            intervals.append(
                engine.Interval(
                    key=f"e{event.event_id}",
                    start=event.start,
                    stop=event.stop,
                    origin=engine.Origin.EXCHANGE,
                )
            )
        overlaps = []
        for overlap in engine.find_overlaps(intervals):
            if not overlap.is_cross_origin:
                continue
            ends = (overlap.first, overlap.second)
            booking_key = next(i.key for i in ends if i.origin is engine.Origin.ODOO)
            event_key = next(i.key for i in ends if i.origin is engine.Origin.EXCHANGE)
            overlaps.append((to_export.browse(int(booking_key[1:])), events[event_key]))
        return {
            "scope": scope,
            "present": present,
            "to_export": to_export,
            "overlaps": overlaps,
        }

    # The first sync of a room

    def _export_first_sync(self):
        """The first sync of a newly authorized room is the export of its future
        bookings (README, Admin guide, Export existing bookings): queued here, run
        by the export cron job in committed chunks, with its progress and summary on
        the room's Exchange tab. A room that synced before (authorized again)
        resumes with the sync. Returns whether an export was queued."""
        self.ensure_one()
        if (
            self.last_sync_date
            or self.export_state in ("queued", "running")
            or self._export_room_problem()
        ):
            return False
        start = fields.Datetime.now()
        end = _day_end(start + timedelta(days=self.connection_id.sync_future_days))
        scope = self._export_scope(start, end)
        present, _failed = self._export_counts(scope)
        if not scope - present:
            return False
        self._export_queue(start, end, self.env.user)
        self.env.ref(CRON).sudo()._trigger()
        return True

    def _first_sync_sentence(self):
        """What happens next, once the room is authorized."""
        self.ensure_one()
        if self.export_state in ("queued", "running"):
            return self.env._(
                "Its %(count)s future bookings are being sent to Exchange: the "
                "Outlook/Exchange Bulk Export box below shows the progress.",
                count=self.export_total,
            )
        return self.env._(
            "It syncs with Exchange from now on: meetings booked in Outlook appear "
            "in Odoo at the next sync."
        )

    # Running it in the background

    def _export_queue(self, start, end, user):
        """Mark the room for export; the cron job does the work."""
        self.ensure_one()
        scope = self._export_scope(start, end)
        present, _failed = self._export_counts(scope)
        horizon = max(end, self.export_horizon or end)
        self.sudo().write(
            {
                "export_state": "queued",
                "export_start": start,
                "export_end": end,
                "export_horizon": horizon,
                "export_total": len(scope - present),
                "export_already": len(present),
                "export_done": 0,
                "export_failed": 0,
                "export_summary": False,
                "export_user_id": user.id,
                "export_round_failures": 0,
                "export_retry_date": False,
            }
        )

    @api.model
    def _export_settings(self):
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
    def _cron_export(self):
        """Export the rooms marked for it, in passes of one step per room; a group of
        rooms takes its steps side by side (their Graph round trips overlap), then
        commits.

        The first delta pages of the app-only rooms are read ahead in $batch
        requests (``_ReadAhead``): before the first pass, then during each pass for
        the next, as soon as a room's writes are answered. A step creates at most
        ``chunk`` events and leaves their echoes to the room's next step, so a room
        is done after a step that found nothing more to do. A room locked by
        another worker (its sync, or another export run) is tried again a minute
        later; a stopped run is resumed by the next one.
        """
        if self._sync_paused():
            return
        now = fields.Datetime.now()
        pending = self.search(
            [
                ("export_state", "in", ("queued", "running")),
                "|",
                ("export_retry_date", "=", False),
                ("export_retry_date", "<=", now),
            ]
        )
        chunk, budget = self._export_settings()
        Cron = self.env["ir.cron"]
        group_size = self._rooms_side_by_side()
        read_ahead = pending._export_read_ahead(budget)
        for _pass in range(MAX_STEPS_PER_RUN):
            if not pending:
                return
            next_read_ahead = {}
            finished = self.browse()
            for offset in range(0, len(pending), group_size):
                group = pending[offset : offset + group_size]
                finished |= group._export_steps_side_by_side(
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
                [id_ for id_ in pending.ids if id_ not in next_read_ahead]
            )
            read_ahead = {**next_read_ahead, **unread._export_read_ahead(budget)}

    def _export_steps_side_by_side(self, chunk, budget, read_ahead, next_read_ahead):
        """One export step of each room of ``self`` (their Graph round trips
        overlap); returns the rooms finished for this run. The first pages of their
        next steps are read ahead into ``next_read_ahead``."""
        locked = self.browse()
        for calendar in self:
            if calendar._export_try_lock():
                locked |= calendar
            else:
                self.env.ref(CRON).sudo()._trigger(
                    fields.Datetime.now() + timedelta(minutes=1)
                )
        ahead = _ReadAhead(locked, budget)
        finished = run_side_by_side(
            [
                calendar._export_step(
                    chunk,
                    budget,
                    read_ahead.pop(calendar.id, None),
                    functools.partial(ahead.report, calendar.id),
                )
                for calendar in locked
            ],
            len(self),
        )
        ahead.flush()
        next_read_ahead.update(ahead.read_ahead)
        return (self - locked) | self.browse(
            [calendar.id for calendar, end in zip(locked, finished, strict=True) if end]
        )

    def _export_read_ahead(self, budget=None):
        """{calendar id: (request, result)}: the first delta page of each app-only
        room, read in the background (``_ReadAhead``)."""
        ahead = _ReadAhead(self, budget)
        for calendar in self.filtered(lambda c: ahead.client(c.id)):
            ahead.report(
                calendar.id,
                SyncRound(
                    calendar, RoundOptions(window_end=calendar.export_horizon)
                ).first_read_request(ahead.client(calendar.id), str(calendar.id)),
            )
        ahead.flush()
        return ahead.read_ahead

    def _export_try_lock(self):
        """Lock this room calendar for one export step, or return False when another
        worker holds it (or changed it since our transaction began)."""
        try:
            with self.env.cr.savepoint():
                # FOR NO KEY UPDATE, as the sync's: rows that reference the room (a
                # sync request, a subscription) can still be inserted meanwhile.
                return bool(self.try_lock_for_update(allow_referencing=True))
        except psycopg2.errors.SerializationFailure:
            return False

    def _export_step(self, chunk, budget, read_ahead=None, read_next=None):
        """One sync round creating at most ``chunk`` events, as a generator of Graph
        steps (sync/steps.py); returns True once this room is finished for this run
        (done, failed, or waiting for a retry)."""
        self.ensure_one()
        calendar = self.sudo()
        if calendar.export_state == "queued":
            calendar.export_state = "running"
        problem = calendar._export_room_problem(("authorized", "syncing", "error"))
        if problem:
            calendar._export_finish("failed", problem)
            return True
        present_before, failed_before = calendar._export_progress()
        options = RoundOptions(
            window_end=calendar.export_horizon,
            max_creates=chunk,
            budget=budget,
            follow_up=False,
            read_next=read_next,
        )
        steps = calendar._sync_steps(options, read_ahead)
        del read_ahead  # the round's to drop once read: a page of whole events
        plan = yield from steps
        if plan is False:
            failures = calendar.export_round_failures + 1
            if failures >= MAX_ROUND_FAILURES:
                calendar._export_finish("failed", calendar.last_error)
                return True
            retry = calendar.next_attempt_date or (
                fields.Datetime.now() + timedelta(minutes=5)
            )
            calendar.write(
                {"export_round_failures": failures, "export_retry_date": retry}
            )
            self.env.ref(CRON).sudo()._trigger(retry)
            return True
        present, failed = calendar._export_progress()
        calendar.write(
            {
                "export_done": max(present - calendar.export_already, 0),
                "export_failed": failed,
                "export_round_failures": 0,
                "export_retry_date": False,
            }
        )
        # Done after a step that changed nothing: everything is present and the
        # echoes of the last writes were read, or nothing more can be done now.
        if present == present_before and failed == failed_before:
            calendar._export_finish("done")
            return True
        return False

    def _export_finish(self, state, reason=None):
        """Record the outcome, and tell the admin who started the export."""
        self.ensure_one()
        scope = self._export_scope(self.export_start, self.export_end)
        present, failed = self._export_counts(scope)
        flagged = (
            self.env["resource.booking"]
            .sudo()
            .search_count([("id", "in", scope.ids), ("exchange_conflict", "=", True)])
        )
        left = len(scope) - len(present) - len(failed)
        lines = [
            self.env._(
                "Export of room %(room)s to Exchange (bookings up to %(end)s): "
                "%(done)s exported, %(already)s already in Exchange, %(overlaps)s "
                "overlaps flagged, %(failed)s failed.",
                room=self.room_id.display_name,
                end=format_date(self.env, self.export_end - timedelta(seconds=1)),
                done=max(len(present) - self.export_already, 0),
                already=self.export_already,
                overlaps=flagged,
                failed=len(failed),
            )
        ]
        if reason:
            lines.append(self.env._("The export stopped: %(reason)s", reason=reason))
        if left and state == "done":
            lines.append(
                self.env._(
                    "%(count)s bookings were not exported (conflicts or bookings "
                    "waiting for a retry): see the Conflicts view.",
                    count=left,
                )
            )
        if failed:
            errors = (
                self.env["room.exchange.binding"]
                .sudo()
                .search(
                    [("calendar_id", "=", self.id), ("booking_id", "in", failed.ids)]
                )
            )
            for binding in errors[:20]:
                lines.append(
                    f"- {binding.booking_id.display_name}: {binding.sync_error or '?'}"
                )
        summary = "\n".join(lines)
        self.write(
            {
                "export_state": state,
                "export_summary": summary,
                "export_done": max(len(present) - self.export_already, 0),
                "export_failed": len(failed),
                "export_retry_date": False,
            }
        )
        partners = self.export_user_id.partner_id
        self.with_context(mail_notrack=True).message_post(
            body=Markup("<br/>").join(escape(line) for line in lines),
            subject=self.env._(
                "Exchange export of %(room)s", room=self.room_id.display_name
            ),
            partner_ids=partners.ids,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        _logger.info("Exchange export of room calendar %s: %s", self.id, state)


class RoomExchangeExport(models.TransientModel):
    """The bulk export wizard: what will be exported, then the export's progress."""

    _name = "room.exchange.export"
    _description = "Outlook/Exchange bulk export"

    state = fields.Selection(
        [("draft", "Choose"), ("preview", "Preview"), ("running", "Exporting")],
        default="draft",
        required=True,
    )
    room_ids = fields.Many2many(
        "resource.resource",
        string="Rooms",
        domain=[("resource_type", "=", "material")],
        default=lambda self: self._default_room_ids(),
    )
    date_from = fields.Datetime(
        string="From", default=fields.Datetime.now, readonly=True, required=True
    )
    horizon = fields.Datetime(
        string="Until",
        required=True,
        default=lambda self: self._default_horizon(self._default_room_ids()),
        help="Bookings starting before this are exported. Rooms keep syncing this far "
        "ahead afterwards.",
    )
    line_ids = fields.One2many("room.exchange.export.line", "wizard_id")
    to_export_count = fields.Integer(
        string="Bookings to export", compute="_compute_totals"
    )
    already_count = fields.Integer(
        string="Already in Exchange", compute="_compute_totals"
    )
    overlap_count = fields.Integer(
        string="Overlaps with Exchange events", compute="_compute_totals"
    )
    can_run = fields.Boolean(string="Can run", compute="_compute_totals")
    problem_text = fields.Text(string="Not available", compute="_compute_totals")
    overlap_text = fields.Text(string="Overlaps", compute="_compute_totals")

    @api.model
    def _default_room_ids(self):
        context = self.env.context
        if context.get("active_model") == "resource.resource":
            return self.env["resource.resource"].browse(context.get("active_ids", []))
        return self.env["resource.resource"]

    @api.model
    def _default_horizon(self, rooms):
        days = max(
            rooms.sudo().exchange_calendar_ids.connection_id.mapped("sync_future_days")
            or [365]
        )
        return _day_end(fields.Datetime.now() + timedelta(days=days))

    @api.depends(
        "line_ids.to_export",
        "line_ids.already",
        "line_ids.overlap_count",
        "line_ids.problem",
        "line_ids.overlap_details",
    )
    def _compute_totals(self):
        for wizard in self:
            lines = wizard.line_ids
            ready = lines.filtered(lambda line: not line.problem)
            wizard.to_export_count = sum(ready.mapped("to_export"))
            wizard.already_count = sum(lines.mapped("already"))
            wizard.overlap_count = sum(ready.mapped("overlap_count"))
            wizard.can_run = bool(ready)
            wizard.problem_text = "\n".join(lines.filtered("problem").mapped("problem"))
            wizard.overlap_text = "\n".join(
                ready.filtered("overlap_details").mapped("overlap_details")
            )

    @api.onchange("horizon", "room_ids")
    def _onchange_scope(self):
        if self.state == "preview":
            self.state = "draft"

    @api.model
    def _action_open(self, rooms):
        """The wizard for ``rooms`` with its preview done (the room's button). Its
        Until reaches the last future booking not in Exchange, so that the preview
        counts what the room's export box said was missing (up to the longest
        horizon Exchange reads)."""
        rooms = rooms.filtered(lambda room: room.resource_type == "material")
        horizon = self._default_horizon(rooms)
        now = fields.Datetime.now()
        for calendar in rooms.sudo().exchange_calendar_ids:
            scope = calendar._export_scope(now, None)
            present, _failed = calendar._export_counts(scope)
            missing = scope - present
            if missing:
                last = max(missing.mapped("start"))
                horizon = max(horizon, _day_end(last + timedelta(seconds=1)))
        horizon = min(
            horizon, now.replace(microsecond=0) + timedelta(days=MAX_HORIZON_DAYS)
        )
        wizard = self.create({"room_ids": [Command.set(rooms.ids)], "horizon": horizon})
        return wizard.action_preview()

    def _reopen(self):
        self.ensure_one()
        return dialog_action(self, self.env._("Outlook/Exchange Bulk Export"))

    def _check_manager(self) -> None:
        """Only Exchange sync managers export, each from a wizard of their own, and
        only rooms they may configure (their companies' rooms)."""
        if not self.env.user.has_group(MANAGER):
            raise AccessError(
                self.env._("Only Exchange sync managers can export bookings.")
            )
        if not self.env.su and self.sudo().create_uid != self.env.user:
            raise AccessError(
                self.env._("This export was prepared by another user: open your own.")
            )
        self.room_ids.check_access("read")
        self.room_ids.exchange_calendar_ids.check_access("write")

    def _horizon_end(self):
        self.ensure_one()
        now = fields.Datetime.now()
        if not self.horizon or self.horizon <= now:
            raise UserError(self.env._("Choose an end date in the future."))
        if self.horizon > now + timedelta(days=MAX_HORIZON_DAYS):
            raise UserError(
                self.env._(
                    "Exchange reads at most %(days)s days ahead: choose an earlier "
                    "end date.",
                    days=MAX_HORIZON_DAYS,
                )
            )
        return _day_end(self.horizon)

    def action_preview(self):
        """The dry run: read every room's Exchange calendar, write nothing there."""
        self.ensure_one()
        self._check_manager()
        if not self.room_ids:
            raise UserError(self.env._("Choose the rooms to export."))
        end = self._horizon_end()
        start = fields.Datetime.now()
        values = [self._preview_room(room, start, end) for room in self.room_ids]
        self.write(
            {
                "date_from": start,
                "state": "preview",
                "line_ids": [Command.clear()]
                + [Command.create(value) for value in values],
            }
        )
        return self._reopen()

    def _preview_room(self, room, start, end):
        calendar = room.sudo().exchange_calendar_ids[:1]
        values = {"room_id": room.id, "calendar_id": calendar.id}
        if not calendar:
            values["problem"] = self.env._(
                "Room %(room)s is not connected to Exchange: choose its Microsoft 365 "
                "connection and mailbox on its Exchange tab first.",
                room=room.display_name,
            )
            return values
        problem = calendar._export_room_problem()
        if not problem and calendar.export_state in ("queued", "running"):
            problem = calendar._export_problem()
        if problem:
            values["problem"] = problem
            return values
        try:
            preview = calendar._export_preview(start, end)
        except GraphError as error:
            values["problem"] = self.env._(
                "Room %(room)s: Exchange could not be read: %(error)s",
                room=room.display_name,
                error=calendar.connection_id._graph_error_message(error),
            )
            return values
        except engine.StorageEmpty:
            values["problem"] = self.env._(
                "Room %(room)s: Exchange returned an empty calendar although bookings "
                "are linked to it; check the mailbox and its permissions.",
                room=room.display_name,
            )
            return values
        to_export = preview["to_export"]
        values.update(
            to_export=len(to_export),
            already=len(preview["present"]),
            overlap_count=len(preview["overlaps"]),
            overlap_details="\n".join(
                self.env._(
                    "%(room)s: %(booking)s (%(start)s) overlaps the Exchange event "
                    "%(event)s (%(event_start)s)",
                    room=room.display_name,
                    booking=booking.display_name,
                    start=format_datetime(self.env, booking.start, dt_format="short"),
                    event=event.subject or "-",
                    event_start=format_datetime(
                        self.env, event.start, dt_format="short"
                    ),
                )
                for booking, event in preview["overlaps"][:50]
            ),
        )
        if not to_export:
            values["problem"] = self.env._(
                "Room %(room)s has nothing to export up to %(end)s: %(count)s future "
                "bookings, all already in Exchange.",
                room=room.display_name,
                end=format_date(self.env, end - timedelta(seconds=1)),
                count=len(preview["scope"]),
            )
        return values

    def action_run(self):
        """Queue the rooms for the export cron job; nothing is written to Exchange
        in this request."""
        self.ensure_one()
        self._check_manager()
        if self.state != "preview":
            self.action_preview()
        lines = self.line_ids.filtered(lambda line: not line.problem)
        if not lines:
            raise UserError(
                self.problem_text or self.env._("There is nothing to export.")
            )
        start, end = fields.Datetime.now(), self._horizon_end()
        for line in lines:
            problem = line.calendar_id._export_room_problem()
            if problem:
                line.problem = problem
                continue
            line.calendar_id._export_queue(start, end, self.env.user)
        self.env.ref(CRON).sudo()._trigger()
        self.state = "running"
        return self._reopen()

    def action_refresh(self) -> dict:
        self.ensure_one()
        self._check_manager()
        return self._reopen()


class RoomExchangeExportLine(models.TransientModel):
    _name = "room.exchange.export.line"
    _description = "Outlook/Exchange bulk export: one room"

    wizard_id = fields.Many2one(
        "room.exchange.export", required=True, ondelete="cascade"
    )
    room_id = fields.Many2one("resource.resource", readonly=True)
    calendar_id = fields.Many2one("room.exchange.calendar", readonly=True)
    to_export = fields.Integer(string="To export", readonly=True)
    already = fields.Integer(string="Already in Exchange", readonly=True)
    overlap_count = fields.Integer(string="Overlaps", readonly=True)
    overlap_details = fields.Text(string="Overlap details", readonly=True)
    problem = fields.Text(string="Not available", readonly=True)
    export_state = fields.Selection(string="Export", related="calendar_id.export_state")
    export_done = fields.Integer(related="calendar_id.export_done")
    export_total = fields.Integer(related="calendar_id.export_total")
    export_failed = fields.Integer(related="calendar_id.export_failed")
    export_summary = fields.Text(
        string="Last export", related="calendar_id.export_summary"
    )
