# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Outlook/Exchange Bulk Export: the wizard.

``room.exchange.export`` shows what an export of the chosen rooms will do (rooms,
date range, counts, overlaps; a dry run that reads Exchange and writes nothing),
then *Run the Export* queues one export run per room
(``room.exchange.export.run``, models/room_exchange_export_run.py), which the
export's cron job works through; its lines then show each run's progress.
"""

from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_date, format_datetime

from .. import engine
from ..graph import GraphError
from ..models.room_exchange_export_run import CRON, day_end
from .dialogs import dialog_action

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
MAX_HORIZON_DAYS = 1095


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
        return day_end(fields.Datetime.now() + timedelta(days=days))

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
                horizon = max(horizon, day_end(last + timedelta(seconds=1)))
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
        return day_end(self.horizon)

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
        if not problem and calendar._export_under_way():
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
    export_state = fields.Selection(
        string="Export", related="calendar_id.export_run_id.state"
    )
    export_done = fields.Integer(related="calendar_id.export_run_id.exported_count")
    export_total = fields.Integer(related="calendar_id.export_run_id.total_count")
    export_failed = fields.Integer(related="calendar_id.export_run_id.failed_count")
    export_summary = fields.Text(
        string="Last export", related="calendar_id.export_run_id.summary"
    )
