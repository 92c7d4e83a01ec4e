# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room calendar's side of the Outlook/Exchange Bulk Export: which bookings an
export of the room covers, whether the room can take one now, what its Exchange tab
says about it, the dry run, and the queuing of an export run
(``room.exchange.export.run``, room_exchange_export_run.py, does the work)."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .. import engine
from ..sync import RoundOptions, SyncRound
from .room_exchange_export_run import ACTIVE_STATES, CRON, day_end


class RoomExchangeCalendar(models.Model):
    _inherit = "room.exchange.calendar"

    export_run_id = fields.Many2one(
        "room.exchange.export.run",
        string="Latest export",
        readonly=True,
        copy=False,
        ondelete="set null",
        index="btree_not_null",
        check_company=True,
        help="The room's latest export run: the Exchange tab shows its progress, "
        "and the sync keeps its horizon in its window.",
    )
    export_run_ids = fields.One2many(
        "room.exchange.export.run", "calendar_id", string="Exports", readonly=True
    )

    @api.constrains("export_run_id")
    def _check_export_run(self) -> None:
        for calendar in self:
            if calendar.export_run_id.calendar_id not in (calendar, calendar.browse()):
                raise ValidationError(
                    self.env._(
                        "The latest export of room %(room)s must be one of its own.",
                        room=calendar.room_id.display_name,
                    )
                )

    # What an export covers

    def _export_scope(self, start, end) -> models.Model:
        """Live Odoo bookings of the room in [start, end): the ones an export pushes
        (meetings imported from Exchange are already there)."""
        self.ensure_one()
        return (
            self.env["resource.booking"]
            .sudo()
            .search(self._export_scope_domain(start, end), order="start, id")
        )

    def _export_scope_domain(self, start, end) -> list:
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

    def _export_counts(self, scope) -> tuple:
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

    # Whether the room can take one

    def _export_under_way(self) -> bool:
        return self.export_run_id.state in ACTIVE_STATES

    def _export_room_problem(self, states=("authorized", "syncing")) -> str | bool:
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

    def _export_problem(self) -> str | bool:
        """Why the room's Run the Export is unavailable, or False (also hides the
        button of the room's Exchange tab)."""
        self.ensure_one()
        problem = self._export_room_problem()
        if problem:
            return problem
        if self._export_under_way():
            return self.env._(
                "An export of room %(room)s is already under way (%(done)s of "
                "%(total)s exported).",
                room=self.room_id.display_name,
                done=self.export_run_id.exported_count,
                total=self.export_run_id.total_count,
            )
        scope = self._export_scope(fields.Datetime.now(), None)
        present, _failed = self._export_counts(scope)
        if not scope - present:
            return self.env._(
                "Room %(room)s has no future booking that is not in Exchange yet.",
                room=self.room_id.display_name,
            )
        return False

    def _export_status(self) -> tuple:
        """(progress, sentence) of the room's export box, counted now (so that they
        agree with what the sync did meanwhile); no sentence while the room cannot
        take an export and none ran."""
        self.ensure_one()
        run = self.export_run_id
        if self._export_under_way():
            present, _failed = self._export_counts(run._scope())
            done = max(len(present) - run.already_count, 0)
            message = self.env._(
                "Sending this room's future bookings to Exchange in the background; "
                "Refresh shows how far it got."
            )
            if self._sync_paused():
                message = self.env._(
                    "The export waits: the sync of every room is paused in Settings."
                )
            return self.env._(
                "%(done)s of %(total)s exported", done=done, total=run.total_count
            ), message
        progress = bool(run) and self.env._(
            "%(done)s of %(total)s exported",
            done=run.exported_count,
            total=run.total_count,
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

    def _export_preview(self, start, end) -> dict:
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

    def _export_first_sync(self) -> bool:
        """The first sync of a newly authorized room is the export of its future
        bookings (README, Admin guide, Export existing bookings): queued here, run
        by the export cron job in committed chunks, with its progress and summary on
        the room's Exchange tab. A room that synced before (authorized again)
        resumes with the sync. Returns whether an export was queued."""
        self.ensure_one()
        if (
            self.last_sync_date
            or self._export_under_way()
            or self._export_room_problem()
        ):
            return False
        start = fields.Datetime.now()
        end = day_end(start + timedelta(days=self.connection_id.sync_future_days))
        scope = self._export_scope(start, end)
        present, _failed = self._export_counts(scope)
        if not scope - present:
            return False
        self._export_queue(start, end, self.env.user)
        self.env.ref(CRON).sudo()._trigger()
        return True

    def _first_sync_sentence(self) -> str:
        """What happens next, once the room is authorized."""
        self.ensure_one()
        if self._export_under_way():
            return self.env._(
                "Its %(count)s future bookings are being sent to Exchange: the "
                "Outlook/Exchange Bulk Export box below shows the progress.",
                count=self.export_run_id.total_count,
            )
        return self.env._(
            "It syncs with Exchange from now on: meetings booked in Outlook appear "
            "in Odoo at the next sync."
        )

    # Queuing it

    def _export_queue(self, start, end, user) -> models.Model:
        """Queue an export run of the room over [start, end) started by ``user``;
        the cron job does the work. An export still under way is taken over (its
        range and counts start again). Returns the run."""
        self.ensure_one()
        scope = self._export_scope(start, end)
        present, _failed = self._export_counts(scope)
        run = self.sudo().export_run_id
        values = {
            "state": "queued",
            "date_start": start,
            "date_end": end,
            "horizon": max(end, run.horizon or end),
            "total_count": len(scope - present),
            "already_count": len(present),
            "exported_count": 0,
            "failed_count": 0,
            "summary": False,
            "user_id": user.id,
            "round_failure_count": 0,
            "retry_date": False,
        }
        if self._export_under_way():
            run.write(values)
            return run
        run = run.create({"calendar_id": self.id, **values})
        self.sudo().export_run_id = run
        return run
