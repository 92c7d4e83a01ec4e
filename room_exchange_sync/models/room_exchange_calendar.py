# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import collections
import logging
from contextlib import nullcontext
from datetime import timedelta
from urllib.parse import urlencode

import psycopg2
from markupsafe import Markup, escape

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, email_normalize, split_every

from odoo.addons.base.models.ir_cron import _intervalTypes

from ..engine import ActionKind, StorageEmpty
from ..graph import GraphAuthError, GraphError, GraphNotFound, GraphPermissionError
from ..sync import (
    SYNC_CONTEXT,
    RoundOptions,
    SyncRound,
    log_notes,
    run_inline,
    run_side_by_side,
    worker_pool,
)
from . import room_directory
from .room_directory import DIRECTORY_STATES

CANCEL_LOCAL = ActionKind.CANCEL_LOCAL

_logger = logging.getLogger(__name__)

SYNC_CRON = "room_exchange_sync.ir_cron_room_exchange_sync"
PARAM_ROOMS_SIDE_BY_SIDE = "room_exchange_sync.rooms_side_by_side"
# Settings › Exchange room sync › Pause the sync: no round, no export while set.
PARAM_PAUSED = "room_exchange_sync.paused"
# Where the Microsoft sign-in returns to: the room, or the rooms overview.
SIGN_IN_RETURNS = {
    "room": "room_exchange_sync.resource_resource_action_rooms",
    "overview": "room_exchange_sync.room_exchange_calendar_action_cockpit",
}
DEFAULT_ROOMS_SIDE_BY_SIDE = 10
MAX_ROOMS_SIDE_BY_SIDE = 32
# Calendar settings that change the events written for its bookings.
PAYLOAD_SETTINGS = {"privacy_mode", "include_organizer_email"}
PARAM_NOTIFIED_POLL_MINUTES = "room_exchange_sync.notified_poll_minutes"
DEFAULT_NOTIFIED_POLL_MINUTES = 60

STATES = [
    ("not_configured", "Not configured"),
    ("authorized", "Authorized"),
    ("syncing", "Syncing"),
    ("error", "Error"),
    ("reauth_needed", "Needs re-authorization"),
]


class RoomExchangeCalendar(models.Model):
    """The Exchange room mailbox calendar of one Odoo room, and its sync state."""

    _name = "room.exchange.calendar"
    _description = "Exchange room calendar"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "room_id"
    _rec_name = "room_id"
    _check_company_auto = True

    room_id = fields.Many2one(
        "resource.resource",
        required=True,
        ondelete="cascade",
        index=True,
        domain=[("resource_type", "=", "material")],
    )
    company_id = fields.Many2one(
        related="room_id.company_id", store=True, index=True, string="Company"
    )
    connection_id = fields.Many2one(
        "room.exchange.connection",
        ondelete="restrict",
        index=True,
        check_company=True,
        help="The Microsoft 365 connection this room's calendar is reached through.",
    )
    auth_mode = fields.Selection(related="connection_id.auth_mode")
    account_id = fields.Many2one(
        "room.exchange.account",
        string="Microsoft account",
        readonly=True,
        copy=False,
        ondelete="set null",
        index=True,
        help="The Microsoft account that signed in for this room (delegated mode).",
        check_company=True,
    )
    choice_ids = fields.One2many("room.exchange.calendar.choice", "calendar_id")
    choice_id = fields.Many2one(
        "room.exchange.calendar.choice",
        string="Calendar",
        domain="[('calendar_id', '=', id)]",
        copy=False,
        help="Room calendars this account (or the app) can write to.",
        check_company=True,
    )
    mailbox = fields.Char(
        string="Room mailbox",
        help="The e-mail address (SMTP address or user principal name) of the room "
        "mailbox in Exchange Online, e.g. room-alpha@contoso.com.",
    )
    calendar_name = fields.Char(string="Calendar name", readonly=True, copy=False)
    calendar_external_id = fields.Char(string="Calendar ID", readonly=True, copy=False)
    previous_mailbox = fields.Char(
        string="Previous mailbox",
        readonly=True,
        copy=False,
        help="The mailbox the room synced with before its mailbox or connection "
        "changed, until Save checks the new calendar.",
    )
    previous_calendar_external_id = fields.Char(
        string="Previous calendar ID", readonly=True, copy=False
    )
    sync_enabled = fields.Boolean(
        string="Sync with Exchange",
        help="When enabled, bookings of this room are kept in sync with its room "
        "mailbox calendar.",
    )
    state = fields.Selection(
        STATES, default="not_configured", required=True, readonly=True, copy=False
    )
    last_sync_date = fields.Datetime(
        string="Last successful sync", readonly=True, copy=False
    )
    last_error = fields.Text(string="Last error", readonly=True, copy=False)
    privacy_mode = fields.Selection(
        [
            ("full", "Subject and details"),
            ("subject", "Subject only"),
            ("busy", "Busy only"),
        ],
        string="Shown in Exchange",
        default="full",
        required=True,
        help="What the room calendar shows of bookings made in Odoo: the subject and "
        "the description, the subject only, or just 'Busy'.",
    )
    include_organizer_email = fields.Boolean(
        string="Write the booker's e-mail",
        help="Add the e-mail address of the person who booked in Odoo to the "
        "Exchange event's description. Off by default: it is personal data.",
    )
    delta_link = fields.Text(
        string="Delta link", groups="base.group_system", copy=False
    )
    window_start = fields.Datetime(string="Synced from", readonly=True, copy=False)
    window_end = fields.Datetime(string="Synced until", readonly=True, copy=False)
    last_full_sync_date = fields.Datetime(
        string="Last full sync", readonly=True, copy=False
    )
    last_sync_summary = fields.Char(string="Last sync", readonly=True, copy=False)
    round_count = fields.Integer(
        string="Rounds",
        readonly=True,
        copy=False,
        help="Sync rounds run so far: tells a worker that another one synced the room "
        "since it looked.",
    )
    failure_count = fields.Integer(string="Failed rounds", readonly=True, copy=False)
    next_attempt_date = fields.Datetime(
        string="Next attempt", readonly=True, copy=False
    )
    cancellation_pending = fields.Integer(
        string="Cancellations waiting for confirmation",
        readonly=True,
        copy=False,
        help="Exchange no longer shows this many meetings of the room: more than a "
        "safe share at once. They are cancelled in Odoo only once an admin confirms.",
    )
    combination_id = fields.Many2one(
        "resource.booking.combination",
        string="Booking combination",
        readonly=True,
        copy=False,
        help="The single-room combination that bookings of this room use.",
    )
    booking_type_id = fields.Many2one(
        "resource.booking.type",
        string="Exchange booking type",
        readonly=True,
        copy=False,
        help="The booking type given to meetings imported from Exchange.",
        check_company=True,
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Technical requester",
        readonly=True,
        copy=False,
        help="Requester of imported meetings. It has no e-mail address, so Odoo never "
        "sends invitations for them.",
        check_company=True,
    )
    item_problems = fields.Json(
        string="Items not synced",
        readonly=True,
        copy=False,
        help="The items of the room's Exchange calendar that cannot be synced, and "
        "why (sync/problems.py): {event id: {kind, reason}}.",
    )
    item_problem_count = fields.Integer(
        string="Number of Outlook items not synced",
        compute="_compute_item_problem_text",
    )
    item_problem_text = fields.Text(
        string="Outlook items not synced",
        compute="_compute_item_problem_text",
        help="Meetings of the room's Exchange calendar that Odoo cannot read, cannot "
        "mirror, or could not import yet. They never cancel or change a booking; "
        "each is listed until it syncs.",
    )
    binding_ids = fields.One2many("room.exchange.binding", "calendar_id")
    binding_count = fields.Integer(
        string="Linked bookings", compute="_compute_binding_counts"
    )
    binding_error_count = fields.Integer(
        string="Bookings in error", compute="_compute_binding_counts"
    )
    directory_state = fields.Selection(
        DIRECTORY_STATES,
        string="Directory",
        default="unknown",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        help="Whether the room mailbox is still in the Microsoft 365 directory and "
        "within reach, as the daily directory refresh found it. Not in the "
        "directory: the room was deleted or hidden from the address list. Out of "
        "reach: Exchange refuses to open its calendar (application mode: the "
        "mailbox left the app's RBAC for Applications scope; delegated mode: the "
        "signed-in account lost its rights). Such rooms are flagged on the rooms "
        "overview, never deleted.",
    )
    directory_checked_date = fields.Datetime(
        string="Directory checked on",
        readonly=True,
        copy=False,
        help="When the daily directory refresh last checked this room.",
    )
    directory_note = fields.Char(
        string="Directory changes",
        readonly=True,
        copy=False,
        help="What the last directory refresh changed on the room.",
    )

    _room_uniq = models.Constraint(
        "UNIQUE(room_id)", "A room has at most one Exchange calendar."
    )

    @api.depends("item_problems")
    def _compute_item_problem_text(self):
        for calendar in self:
            problems = calendar.item_problems or {}
            calendar.item_problem_count = len(problems)
            calendar.item_problem_text = "\n".join(
                self.env._(
                    "- An Outlook item (%(id)s): %(reason)s.",
                    id=key if not key.startswith("#") else self.env._("without an id"),
                    reason=problem.get("reason") or "?",
                )
                for key, problem in sorted(problems.items())
            )

    def _compute_binding_counts(self):
        domain = [("calendar_id", "in", self.ids)]
        totals = dict(
            self.env["room.exchange.binding"]._read_group(
                domain, ["calendar_id"], ["__count"]
            )
        )
        errors = dict(
            self.env["room.exchange.binding"]._read_group(
                domain + [("sync_state", "in", ("error", "conflict"))],
                ["calendar_id"],
                ["__count"],
            )
        )
        for calendar in self:
            calendar.binding_count = totals.get(calendar, 0)
            calendar.binding_error_count = errors.get(calendar, 0)

    @api.constrains("mailbox")
    def _check_mailbox(self):
        for calendar in self.filtered("mailbox"):
            if not email_normalize(calendar.mailbox, strict=True):
                raise ValidationError(
                    self.env._(
                        "%(value)r is not an e-mail address. Enter the room "
                        "mailbox's address, e.g. room-alpha@contoso.com.",
                        value=calendar.mailbox,
                    )
                )

    @api.constrains("mailbox", "connection_id")
    def _check_mailbox_unique(self):
        for calendar in self.filtered(lambda c: c.mailbox and c.connection_id):
            twin = self.search(
                [
                    ("id", "!=", calendar.id),
                    ("connection_id", "=", calendar.connection_id.id),
                    ("mailbox", "=ilike", calendar.mailbox),
                ],
                limit=1,
            )
            if twin:
                # Another company's room is not named to this user.
                room = (
                    twin.room_id.display_name
                    if twin.company_id in self.env.companies
                    else self.env._("of another company")
                )
                raise ValidationError(
                    self.env._(
                        "The room mailbox %(mailbox)s is already used by room "
                        "%(room)s: two Odoo rooms cannot sync with the same Exchange "
                        "calendar.",
                        mailbox=calendar.mailbox,
                        room=room,
                    )
                )

    @api.constrains("sync_enabled", "mailbox", "connection_id", "room_id")
    def _check_sync_requirements(self):
        for calendar in self.filtered("sync_enabled"):
            problems = calendar._sync_requirement_problems()
            if problems:
                raise ValidationError(
                    self.env._(
                        "Room %(room)s cannot sync with Exchange yet:\n%(problems)s",
                        room=calendar.room_id.display_name,
                        problems="\n".join(f"- {problem}" for problem in problems),
                    )
                )

    @api.constrains(
        "account_id",
        "connection_id",
        "combination_id",
        "booking_type_id",
        "partner_id",
        "room_id",
    )
    def _check_company_consistency(self):
        problems = self._company_problems()
        if problems:
            raise ValidationError("\n".join(problems.values()))

    def _company_problems(self):
        """{calendar id: why} for these rooms whose records disagree: an account
        signed in through another connection, or a connection, booking type,
        technical requester or booking combination room of another company. One
        query for any number of rooms: checked on every write, and again before
        rounds (the cron checks a group of rooms at once) for records written
        before these checks."""
        if not self:
            return {}
        self.flush_model()
        rel = self.env["resource.booking.combination"]._fields["resource_ids"]
        self.env.cr.execute(
            SQL(
                """
                SELECT cal.id,
                       acc.id IS NOT NULL
                       AND acc.connection_id IS DISTINCT FROM cal.connection_id
                  FROM room_exchange_calendar cal
             LEFT JOIN room_exchange_connection con ON con.id = cal.connection_id
             LEFT JOIN room_exchange_account acc ON acc.id = cal.account_id
             LEFT JOIN resource_booking_type type ON type.id = cal.booking_type_id
             LEFT JOIN res_partner partner ON partner.id = cal.partner_id
                 WHERE cal.id = ANY(%(ids)s)
                   AND (
                        (acc.id IS NOT NULL
                         AND acc.connection_id IS DISTINCT FROM cal.connection_id)
                     OR (cal.company_id IS NOT NULL AND (
                            con.company_id != cal.company_id
                         OR type.company_id != cal.company_id
                         OR partner.company_id != cal.company_id
                         OR EXISTS(
                            SELECT 1 FROM %(rel)s rel
                              JOIN resource_resource room ON room.id = rel.%(room)s
                             WHERE rel.%(combination)s = cal.combination_id
                               AND room.company_id != cal.company_id)))
                   )
                """,
                ids=self.ids,
                rel=SQL.identifier(rel.relation),
                room=SQL.identifier(rel.column2),
                combination=SQL.identifier(rel.column1),
            )
        )
        problems = {}
        for calendar_id, foreign_account in self.env.cr.fetchall():
            room = self.browse(calendar_id).sudo().room_id.display_name
            problems[calendar_id] = (
                self.env._(
                    "Room %(room)s: its Microsoft account signed in through another "
                    "connection; authorize the room again.",
                    room=room,
                )
                if foreign_account
                else self.env._(
                    "Room %(room)s uses records of another company (its connection, "
                    "booking type, requester or booking combination): the room and "
                    "its Exchange settings must belong to one company.",
                    room=room,
                )
            )
        return problems

    @api.model_create_multi
    def create(self, vals_list):
        calendars = super().create(vals_list)
        calendars.filtered("sync_enabled")._prepare_booking_setup()
        return calendars

    def write(self, vals):
        moves = self._calendar_moves(vals)
        result = super().write(vals)
        if vals.get("sync_enabled") or "room_id" in vals:
            self.filtered("sync_enabled")._prepare_booking_setup()
        for calendar, (old_mailbox, old_calendar_id, new_calendar) in moves.items():
            calendar._read_afresh(old_mailbox, old_calendar_id, new_calendar, vals)
        if PAYLOAD_SETTINGS & set(vals):
            # What Exchange shows of the bookings changed, not the bookings: the
            # next round must look at them all (SyncRound.quiet).
            self._request_sync()
        return result

    def _calendar_moves(self, vals):
        """{calendar: (old mailbox, old calendar id, whether the calendar may be
        another)} for the rooms whose mailbox, connection or account ``vals``
        change: each must start reading afresh."""
        moves = {}
        mailbox = vals.get("mailbox")
        for calendar in self:
            other_mailbox = (
                "mailbox" in vals
                and (mailbox or "").strip().lower()
                != (calendar.mailbox or "").strip().lower()
            )
            other_connection = (
                "connection_id" in vals
                and vals["connection_id"] != calendar.connection_id.id
            )
            other_account = (
                "account_id" in vals and vals["account_id"] != calendar.account_id.id
            )
            # Save checking the calendar of a mailbox changed before.
            checked = "calendar_external_id" in vals and bool(
                calendar.previous_calendar_external_id
            )
            if other_mailbox or other_connection or other_account or checked:
                moves[calendar] = (
                    calendar.previous_mailbox or calendar.mailbox,
                    calendar.previous_calendar_external_id
                    or calendar.calendar_external_id,
                    bool(other_mailbox or other_connection or checked),
                )
        return moves

    def _read_afresh(self, old_mailbox, old_calendar_id, new_calendar, vals) -> None:
        """After a change of mailbox, connection or account: forget the delta link
        (the next round lists the whole window of the calendar now configured). When
        the Exchange calendar may be another one, whether it is one is known once
        Save checks the new one (its calendar id): until then the room waits for
        that check; then, if it is another calendar, the room leaves the old one."""
        values = {"delta_link": False, "window_start": False, "window_end": False}
        if new_calendar:
            if "calendar_external_id" in vals:
                values.update(
                    previous_mailbox=False, previous_calendar_external_id=False
                )
                if old_calendar_id and old_calendar_id != self.calendar_external_id:
                    self._leave_calendar(old_mailbox)
            elif old_calendar_id:
                values.update(
                    previous_mailbox=old_mailbox,
                    previous_calendar_external_id=old_calendar_id,
                    calendar_external_id=False,
                    calendar_name=False,
                )
                if self.state in ("authorized", "syncing", "error"):
                    values.update(
                        state="not_configured",
                        last_error=self.env._(
                            "The room's mailbox or connection changed: click Save to "
                            "check access to its calendar before it syncs again."
                        ),
                    )
        self.sudo().write(values)

    def _leave_calendar(self, old_mailbox) -> None:
        """This room's Exchange calendar is another one now. Its links to the old
        calendar's events go: the events Odoo wrote there stay in it (Odoo no
        longer changes them) and its bookings are written to the new calendar at
        the next round; the meetings imported from the old calendar no longer hold
        this room, so their bookings are cancelled. The room's chatter says so."""
        self.ensure_one()
        bindings = self.sudo().binding_ids
        imported = bindings.filtered(lambda b: b.origin == "exchange").booking_id
        imported = imported.filtered("active")
        written = bindings.filtered(
            lambda b: b.origin == "odoo" and b.external_id and b.booking_id
        )
        bindings.unlink()
        if imported:
            imported.with_context(**SYNC_CONTEXT).action_cancel()
            log_notes(
                imported,
                dict.fromkeys(
                    imported.ids,
                    Markup("<p>%s</p>")
                    % self.env._(
                        "Cancelled: this meeting was booked in Outlook in the calendar "
                        "of %(old)s, which is no longer the Exchange calendar of room "
                        "%(room)s.",
                        old=old_mailbox,
                        room=self.room_id.display_name,
                    ),
                ),
            )
        self.message_post(
            body=self.env._(
                "The room's Exchange calendar changed from %(old)s to %(new)s. "
                "%(written)s events Odoo wrote into %(old)s stay there (Odoo no longer "
                "changes them; remove them in Outlook if they should go); the room's "
                "bookings are written to %(new)s at the next sync. %(imported)s "
                "bookings of meetings booked in %(old)s were cancelled in Odoo.",
                old=old_mailbox,
                new=self.mailbox,
                written=len(written),
                imported=len(imported),
            ),
            subtype_xmlid="mail.mt_note",
        )
        _logger.info(
            "Room calendar %s moved to another calendar: %s links dropped",
            self.id,
            len(bindings),
        )

    def _sync_requirement_problems(self):
        """Sentences naming what this room lacks before it can sync."""
        self.ensure_one()
        room = self.room_id
        problems = []
        if room.resource_type != "material":
            problems.append(
                self.env._("only material resources (rooms) sync with Exchange")
            )
        if not room.calendar_id:
            problems.append(
                self.env._(
                    "it has no working time: set one on the room (a 24/7 calendar "
                    "lets Exchange meetings at any hour block it)"
                )
            )
        if not self.connection_id:
            problems.append(self.env._("no Microsoft 365 connection is chosen"))
        if not self.mailbox:
            problems.append(self.env._("the room mailbox address is missing"))
        return problems

    def _prepare_booking_setup(self):
        """Create what bookings of a synced room need: its own single-room combination,
        the booking type of imported meetings and their technical requester."""
        for calendar in self.sudo():
            room = calendar.room_id
            values = {}
            if not calendar.combination_id:
                values["combination_id"] = calendar._single_room_combination().id
            if not calendar.partner_id:
                values["partner_id"] = (
                    calendar.env["res.partner"]
                    .create(
                        {
                            "name": self.env._("%(room)s (Exchange)", room=room.name),
                            "type": "other",
                            "company_id": room.company_id.id,
                        }
                    )
                    .id
                )
            if not calendar.booking_type_id:
                values["booking_type_id"] = calendar._exchange_booking_type().id
            if values:
                calendar.write(values)
            combination = calendar.combination_id
            booking_type = calendar.booking_type_id
            if combination not in booking_type.combination_rel_ids.combination_id:
                booking_type.combination_rel_ids = [
                    Command.create({"combination_id": combination.id})
                ]

    def _single_room_combination(self):
        self.ensure_one()
        Combination = self.env["resource.booking.combination"].sudo()
        for combination in Combination.search(
            [("resource_ids", "in", self.room_id.ids)]
        ):
            if combination.resource_ids == self.room_id:
                return combination
        return Combination.create({"resource_ids": [Command.set(self.room_id.ids)]})

    def _exchange_booking_type(self):
        """The company's "Exchange room booking" type, with a 24/7 availability
        calendar: Exchange is the source of truth for these meetings, whatever
        their hour."""
        self.ensure_one()
        company = self.room_id.company_id or self.env.company
        BookingType = self.env["resource.booking.type"].sudo()
        booking_type = BookingType.search(
            [
                ("company_id", "=", company.id),
                ("name", "=", self.env._("Exchange room booking")),
            ],
            limit=1,
        )
        if booking_type:
            return booking_type
        return BookingType.create(
            {
                "name": self.env._("Exchange room booking"),
                "company_id": company.id,
                "resource_calendar_id": self._around_the_clock_calendar(company).id,
                "modifications_deadline": 0,
                "combination_assignment": "sorted",
                "duration": 1.0,
                "alarm_ids": [Command.clear()],
                "location": False,
            }
        )

    @api.model
    def _around_the_clock_calendar(self, company):
        ResourceCalendar = self.env["resource.calendar"].sudo()
        name = self.env._("Exchange rooms (24/7)")
        calendar = ResourceCalendar.search(
            [("name", "=", name), ("company_id", "=", company.id)], limit=1
        )
        if calendar:
            return calendar
        day_names = dict(
            self.env["resource.calendar.attendance"]
            ._fields["dayofweek"]
            ._description_selection(self.env)
        )
        return ResourceCalendar.create(
            {
                "name": name,
                "company_id": company.id,
                "tz": self.room_id.tz or "UTC",
                "attendance_ids": [
                    Command.clear(),
                    *(
                        Command.create(
                            {
                                "name": self.env._(
                                    "%(day)s 24h", day=day_names[str(day)]
                                ),
                                "dayofweek": str(day),
                                "hour_from": 0,
                                "hour_to": 24,
                                "day_period": "full_day",
                            }
                        )
                        for day in range(7)
                    ),
                ],
            }
        )

    def _request_sync(self):
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

    def _wake_sync(self):
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
    def _cron_sync(self):
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

    def _sync_group(self, requested, pool, tally):
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

    def _quiet_rooms(self, requested=()):
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
    def _due_for_sync(self, limit, skip_ids=()):
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
    def _poll_intervals(self):
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
    def _log_sync_run(self, tally, tried):
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
    def _rooms_side_by_side(self):
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

    def _try_lock(self):
        """Lock these room calendars for a round (one query); returns those locked,
        the others being synced by another worker. A row another transaction
        changed since ours began cannot be locked under Odoo's repeatable-read
        isolation: that room is simply busy (the others are then locked one by
        one)."""
        try:
            with self.env.cr.savepoint(flush=False):
                # FOR NO KEY UPDATE: rows that reference the room (a sync request,
                # a subscription) can still be inserted while it syncs.
                return self.try_lock_for_update(allow_referencing=True)
        except psycopg2.errors.SerializationFailure:
            if len(self) == 1:
                return self.browse()
            return self.browse().union(*(calendar._try_lock() for calendar in self))

    def _sync(self, **options):
        """Run one round and record its outcome on the room; never raises for Graph
        or data problems (they are the room's state and last error). Returns the
        engine's plan, or False when the round failed. ``options``: those of
        RoundOptions (sync/options.py)."""
        return run_inline(self._sync_steps(RoundOptions(**options)))

    def _sync_steps(self, options=None, read_ahead=None):
        """``_sync`` as a generator of Graph steps (sync/steps.py), for running
        several rooms side by side (``options``: a RoundOptions; ``read_ahead``: the
        round's first delta page read ahead, see SyncRound.steps). Each stretch of
        database work between two Graph steps is one savepoint: a failure rolls
        that stretch back and ends the round (what earlier stretches recorded stays
        true: bindings of events written)."""
        self.ensure_one()
        sync_round = SyncRound(self, options)
        steps = sync_round.steps(read_ahead)
        del read_ahead  # a read ahead page is the round's to drop once read
        value, error = None, None
        while True:
            # A round whose Graph work is yielded reads Exchange before it writes
            # anything: a stretch that writes nothing needs no savepoint (an idle
            # round stays cheap; SyncRound.read_only).
            savepoint = not sync_round.read_only
            try:
                with self.env.cr.savepoint() if savepoint else nullcontext():
                    try:
                        work = steps.throw(error) if error else steps.send(value)
                    except StopIteration as stop:
                        plan = stop.value
                        break
            except Exception as failure:  # noqa: BLE001 - the room's outcome
                steps.close()
                self._record_round_error(failure)
                return False
            try:
                value, error = (yield work), None
            except Exception as failure:  # noqa: BLE001 - thrown into the round
                value, error = None, failure
        outcome = {
            "state": "syncing",
            "last_error": self._cancellation_warning(plan),
            "failure_count": 0,
            "next_attempt_date": False,
        }
        # An idle round changes nothing here: no write, no recomputation.
        changed = {key: value for key, value in outcome.items() if self[key] != value}
        if changed:
            self.sudo().write(changed)
        return plan

    def _record_round_error(self, error):
        """Record why a round failed (nothing of the failing step was kept)."""
        if isinstance(error, GraphAuthError) and error.reauthorization_needed:
            self._mark_reauthorization_needed(error)
        elif isinstance(error, UserError):
            self._record_round_failure(str(error))
        elif isinstance(error, GraphError):
            self._record_round_failure(self.connection_id._graph_error_message(error))
        elif isinstance(error, StorageEmpty):
            self._record_round_failure(
                self.env._(
                    "Exchange returned an empty calendar for %(mailbox)s although "
                    "%(count)s bookings are linked to it. The sync of this room "
                    "stopped so that nothing is cancelled by mistake: check the "
                    "mailbox address and its permissions. If the calendar really is "
                    "empty, confirm the cancellations.",
                    mailbox=self.mailbox,
                    count=error.bound_count,
                )
            )
        else:
            _logger.error(
                "Exchange sync of room calendar %s crashed",
                self.id,
                exc_info=(type(error), error, error.__traceback__),
            )
            self._record_round_failure(
                self.env._(
                    "The sync stopped on an unexpected error (%(error)s); nothing of "
                    "this step was kept, and it is tried again later.",
                    error=type(error).__name__,
                )
            )

    def _cancellation_warning(self, plan):
        if not plan.needs_confirmation:
            return False
        return self.env._(
            "%(count)s meetings of this room disappeared from Exchange at once. They "
            "stay in Odoo until an Exchange sync manager confirms their cancellation.",
            count=plan.count(CANCEL_LOCAL),
        )

    def _record_round_failure(self, message):
        """The room goes to error and retries later, backing off while it keeps
        failing; other rooms carry on."""
        failures = self.failure_count + 1
        delay = min(timedelta(minutes=5) * 2 ** (failures - 1), timedelta(hours=6))
        self.sudo().write(
            {
                "state": "error",
                "last_error": message,
                "failure_count": failures,
                "next_attempt_date": fields.Datetime.now() + delay,
            }
        )
        _logger.warning("Exchange sync of room calendar %s failed", self.id)

    def action_sync_now(self):
        self.ensure_one()
        self.check_access("write")
        return self._sync_notification(self._locked_sync())

    def action_full_resync(self):
        self.ensure_one()
        self.check_access("write")
        return self._sync_notification(self._locked_sync(full=True))

    def action_confirm_cancellations(self):
        self.ensure_one()
        self.check_access("write")
        plan = self._locked_sync(full=True, confirm_cancellations=True)
        return self._sync_notification(plan)

    @api.model
    def _sync_paused(self):
        """Whether an admin paused the sync of every room (Settings)."""
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_PAUSED)
        return bool(value) and value.lower() not in ("0", "false")

    def _locked_sync(self, **options):
        if self._sync_paused():
            raise UserError(
                self.env._(
                    "The sync of every room is paused (Settings › Exchange room "
                    "sync). Resume it there to sync room %(room)s.",
                    room=self.room_id.display_name,
                )
            )
        if not self._try_lock():
            raise UserError(
                self.env._(
                    "Room %(room)s is being synced right now; try again in a minute.",
                    room=self.room_id.display_name,
                )
            )
        problem = self._company_problems().get(self.id)
        if problem:
            self._record_round_failure(problem)
            return False
        return self._sync(**options)

    def _sync_notification(self, plan):
        if plan is False:
            return self.connection_id._notification(
                self.env._("Sync failed"), self.last_error, "danger"
            )
        return self.connection_id._notification(
            self.env._("Sync done"), self.last_sync_summary, "success"
        )

    def _room_form_url(self, back_to="room"):
        """Where the Microsoft sign-in brings the admin back: the room's form, or
        the rooms overview (``back_to`` as in SIGN_IN_RETURNS), under their menu so
        that the app's navbar and the breadcrumb are there."""
        self.ensure_one()
        action = self.env.ref(SIGN_IN_RETURNS.get(back_to, SIGN_IN_RETURNS["room"]))
        path = action.sudo().path or f"action-{action.id}"
        if back_to == "overview":
            return f"/odoo/{path}"
        return f"/odoo/{path}/{self.room_id.id}"

    def _sign_in_action(self, back_to):
        """Start the Microsoft sign-in for this room; it comes back to ``back_to``
        (SIGN_IN_RETURNS). Exchange sync managers only: it changes the room's
        authorization."""
        self.ensure_one()
        self.check_access("write")
        problem = self._sign_in_problem()
        if problem:
            raise UserError(problem)
        query = urlencode({"calendar_id": self.id, "back": back_to})
        return {
            "type": "ir.actions.act_url",
            "url": f"/room_exchange_sync/oauth/start?{query}",
            "target": "self",
        }

    def _sign_in_problem(self):
        """Why a person cannot sign in for this room now, or False."""
        self.ensure_one()
        connection = self.connection_id
        if not connection:
            return self.env._("Choose a Microsoft 365 connection on the room first.")
        if connection.state != "ready":
            return self.env._(
                "Connection %(name)s is not ready: open it and click Test connection.",
                name=connection.name,
            )
        if connection.auth_mode != "delegated":
            return self.env._(
                "Connection %(name)s uses application access: no sign-in is needed, "
                "choose the room mailbox and save.",
                name=connection.name,
            )
        return False

    def _graph_client(self):
        """A Graph client acting as this room's account, or as the app.

        Raises ConnectionNotReady (a UserError) unless the connection is Ready."""
        self.ensure_one()
        connection = self.connection_id
        connection._check_ready()
        if connection.auth_mode == "application":
            return connection._app_graph_client()
        account = self.account_id
        if not account:
            raise GraphAuthError(
                self.env._("No Microsoft account has signed in for this room."),
                code="no_account",
                reauthorization_needed=True,
            )
        return connection._graph_client(account._access_token)

    def _after_sign_in(self):
        """Offer the calendars the new account can write; re-bind a known mailbox."""
        self.ensure_one()
        self._refresh_choices()
        if self.mailbox:
            try:
                self._authorize(self.mailbox)
            except UserError as error:
                self.sudo().write({"state": "not_configured", "last_error": str(error)})

    def _refresh_choices(self):
        """Rebuild the calendar picker: shared room calendars and directory rooms."""
        self.ensure_one()
        client = self._graph_client()
        found = {}
        if self.auth_mode == "delegated":
            own = (self.account_id.username or "").lower()
            for calendar in client.list_calendars("me"):
                owner = (calendar.get("owner") or {}).get("address") or ""
                if owner and owner.lower() != own and calendar.get("canEdit"):
                    found[owner.lower()] = (owner, calendar.get("name"), "shared")
        if self.connection_id.places_enabled:
            for room in client.iter_rooms():
                address = room.get("emailAddress") or ""
                if address:
                    found.setdefault(
                        address.lower(), (address, room.get("displayName"), "directory")
                    )
        self.sudo().write(
            {
                "choice_id": False,
                "choice_ids": [Command.clear()]
                + [
                    Command.create({"mailbox": address, "name": name, "source": source})
                    for address, name, source in found.values()
                ],
            }
        )
        if self.mailbox:
            self.sudo().choice_id = self.choice_ids.filtered(
                lambda choice: choice.mailbox.lower() == self.mailbox.lower()
            )[:1]

    def action_load_choices(self):
        self.ensure_one()
        self.check_access("write")
        try:
            self._refresh_choices()
        except GraphError as error:
            return self._graph_error_outcome(error)
        return False

    def action_save_calendar(self):
        """Bind the room to the chosen (or typed) room mailbox, once access is
        checked, and start its first sync."""
        self.ensure_one()
        self.check_access("write")
        mailbox = self.choice_id.mailbox or self.mailbox
        if not mailbox:
            raise UserError(
                self.env._("Choose the room's calendar or type its mailbox address.")
            )
        if not self._is_authorized_for(mailbox):
            # (the form's own save may have done it just before this button ran)
            try:
                self._authorize(mailbox)
            except GraphError as error:
                return self._graph_error_outcome(error, mailbox)
        return self.connection_id._notification(
            self.env._("Room %(room)s is authorized", room=self.room_id.display_name),
            self._first_sync_sentence(),
            "success",
        )

    def _is_authorized_for(self, mailbox):
        self.ensure_one()
        return bool(
            self.state in ("authorized", "syncing")
            and self.calendar_external_id
            and (self.mailbox or "").lower() == mailbox.lower()
        )

    def _authorize(self, mailbox):
        """Check access to ``mailbox`` and bind the room to it (``_bind_mailbox``),
        then start its first sync: the export of its future bookings (see
        ``_export_first_sync``). Raises UserError or GraphError as
        ``_bind_mailbox``."""
        self.ensure_one()
        self._bind_mailbox(mailbox)
        if not self._export_first_sync():
            self._request_sync()

    def _graph_error_outcome(self, error, mailbox=None):
        """What a button shows when Graph failed. A lost sign-in is recorded on the
        room (state, activities) and reported without rolling that record back;
        anything else is a plain UserError."""
        if isinstance(error, GraphAuthError) and error.reauthorization_needed:
            self._mark_reauthorization_needed(error)
            return self.connection_id._notification(
                self.env._("Sign in again"), self.last_error, "danger"
            )
        message = (
            self._access_problem(mailbox, error)
            if mailbox
            else self.connection_id._graph_error_message(error)
        )
        raise UserError(message) from error

    def _bind_mailbox(self, mailbox):
        """Probe read and write access to a room mailbox calendar and bind to it.

        Raises UserError naming the missing share or permission.
        """
        self.ensure_one()
        access = self._graph_client().probe_calendar_access(mailbox)
        self._bind_checked_mailbox(mailbox, access)

    def _bind_checked_mailbox(self, mailbox, access, values=None):
        """Bind to a room mailbox whose access was probed (``access``, a
        CalendarAccess: one probe, or one of a ``$batch`` of them); ``values`` are
        written along (the Microsoft account that probed it).

        Raises UserError naming the missing share or permission.
        """
        self.ensure_one()
        if not (access.can_read and access.can_write):
            raise UserError(
                self._access_problem(mailbox, access.error, access.can_read)
            )
        self.sudo().write({**(values or {}), **self._bound_values(mailbox, access)})
        self._close_reauthorization_activities()
        _logger.info("Room calendar %s bound to its mailbox", self.id)

    @api.model
    def _bound_values(self, mailbox, access):
        """What a room calendar records once ``mailbox`` passed the check
        (``access``: its CalendarAccess, with read and write)."""
        return {
            "mailbox": mailbox,
            "calendar_name": access.calendar.get("name"),
            "calendar_external_id": access.calendar.get("id"),
            "state": "authorized",
            "last_error": False,
            "sync_enabled": True,
        }

    def _access_problem(self, mailbox, error, can_read=False):
        """What an Exchange admin must do so that Odoo can write this calendar."""
        who = (
            self.account_id.username
            if self.auth_mode == "delegated"
            else self.env._("the app registration")
        )
        if isinstance(error, GraphPermissionError) or can_read or error is None:
            if self.auth_mode == "application":
                return self.env._(
                    "The app cannot write the calendar of %(mailbox)s. An Exchange "
                    "admin must include this mailbox in the app's RBAC for "
                    "Applications scope (New-ManagementRoleAssignment -App <client id> "
                    "-Role 'Application Calendars.ReadWrite' -CustomResourceScope "
                    "<scope>), or the app lacks the Calendars.ReadWrite application "
                    "permission.",
                    mailbox=mailbox,
                )
            if can_read:
                return self.env._(
                    "%(who)s can only read the calendar of %(mailbox)s. An Exchange "
                    "admin must give it edit rights: Set-MailboxFolderPermission "
                    "-Identity %(mailbox)s:\\Calendar -User %(who)s -AccessRights "
                    "Editor (or full access to the room mailbox).",
                    who=who,
                    mailbox=mailbox,
                )
            return self.env._(
                "%(who)s cannot see the calendar of %(mailbox)s. An Exchange admin "
                "must share it with edit rights: Add-MailboxFolderPermission "
                "-Identity %(mailbox)s:\\Calendar -User %(who)s -AccessRights Editor "
                "(or give full access to the room mailbox).",
                who=who,
                mailbox=mailbox,
            )
        return self.connection_id._graph_error_message(error)

    def _remove_authorization(self):
        """Stop syncing and forget the account's tokens once no room uses them.

        Bookings and their links stay, so authorizing again later resumes without
        duplicating events.
        """
        accounts = self.account_id
        self.sudo().write(
            {
                "account_id": False,
                "choice_id": False,
                "choice_ids": [Command.clear()],
                "state": "not_configured",
                "sync_enabled": False,
                "last_error": False,
            }
        )
        accounts._forget_if_unused()
        self._close_reauthorization_activities()

    def _mark_reauthorization_needed(self, error):
        """The refresh token is gone: the room waits for a new sign-in; nothing is
        deleted. Every Exchange manager gets one activity about it."""
        message = "\n".join(
            [
                self.env._(
                    "Microsoft asks for a new sign-in for room %(room)s: click "
                    "Authorize with Microsoft Account and sign in again.",
                    room=self.room_id.display_name,
                ),
                self.env._("Microsoft's answer: %(detail)s", detail=error.message)
                if error.message.startswith("AADSTS")
                else error.message,
            ]
        )
        today = fields.Date.context_today(self)
        for calendar in self.sudo():
            calendar.write({"state": "reauth_needed", "last_error": message})
            self._health_set_alert(
                calendar,
                calendar._reauthorization_summary(),
                message,
                self._alert_recipients(calendar.company_id),
                today,
            )
        _logger.warning("Room calendars %s need a new Microsoft sign-in", self.ids)

    def _reauthorization_summary(self):
        return self.env._(
            "Authorize room %(room)s again", room=self.room_id.display_name
        )

    def _close_reauthorization_activities(self):
        for calendar in self.sudo():
            self._health_set_alert(
                calendar,
                calendar._reauthorization_summary(),
                False,
                self.env["res.users"],
                False,
                feedback=self.env._("The room was authorized again."),
            )

    @api.model
    def _alert_recipients(self, company=None):
        """The people Exchange alerts about a record of ``company`` go to: the
        active Exchange sync managers who work in that company (all of them for a
        record shared by every company)."""
        return (
            self.env.ref("room_exchange_sync.room_exchange_sync_group_manager")
            .sudo()
            .all_user_ids.filtered(
                lambda user: not user.share
                and user.active
                and (not company or company in user.company_ids)
            )
        ) - self.env.ref("base.user_root")

    # Sync health cockpit and alerts (issue 8) ------------------------------------

    health = fields.Selection(
        [
            ("healthy", "Healthy"),
            ("waiting", "Not synced yet"),
            ("degraded", "Degraded"),
            ("broken", "Broken"),
            ("not_configured", "Not configured"),
        ],
        compute="_compute_health",
        store=True,
        index=True,
        help="Broken: the room is in error, waits for a new sign-in, or its sync was "
        "switched off after failures. Degraded: it syncs, but bookings are in error, "
        "overlap an Outlook meeting, cancellations wait for confirmation, or its "
        "last successful sync is older than the stale threshold (Settings, 24 hours "
        "by default). Not synced yet: authorized, its first sync has not run. Not "
        "configured: no connection, mailbox or sync yet. Time-based staleness is "
        "refreshed by the daily health check and on every change of the room.",
    )
    connection_state = fields.Selection(
        related="connection_id.state",
        string="Connection status",
        help="Status of the Microsoft 365 connection this room uses.",
    )
    last_push_date = fields.Datetime(
        string="Last booking synced",
        compute="_compute_health_details",
        help="When a booking of this room was last written to or read from Exchange "
        "(the latest sync date of its linked bookings).",
    )
    binding_pending_count = fields.Integer(
        string="Pending bookings",
        compute="_compute_health_details",
        help="Linked bookings whose change (or deletion) is not yet in Exchange.",
    )
    conflict_count = fields.Integer(
        string="Open conflicts",
        compute="_compute_health_details",
        help="Bookings of this room that overlap an Outlook meeting in Exchange.",
    )
    next_expiry_date = fields.Datetime(
        string="Next expiry",
        compute="_compute_next_expiry",
        search="_search_next_expiry_date",
        help="The earliest date at which something this room's sync depends on "
        "expires: the connection's client secret (as entered by the admin) or "
        "certificate, the change-notification subscription (renewed automatically), "
        "or, for delegated rooms, the sign-in, whose refresh token lapses after 90 "
        "days without a successful sync.",
    )
    next_expiry_reason = fields.Char(
        string="Expiring",
        compute="_compute_next_expiry",
        help="What expires at the next expiry date.",
    )
    sync_mode = fields.Selection(
        related="connection_id.auth_mode",
        string="Mode",
        store=True,
        help="How the room's calendar is reached: through a person's delegated "
        "sign-in or with the app's own access (stored copy of the connection's "
        "authentication mode, to group rooms by it).",
    )

    @api.depends(
        "state",
        "sync_enabled",
        "failure_count",
        "cancellation_pending",
        "binding_ids.sync_state",
        "directory_state",
    )
    def _compute_health(self):
        troubled = self.env["room.exchange.binding"]._read_group(
            [
                ("calendar_id", "in", self._origin.ids),
                ("sync_state", "in", ("error", "conflict")),
            ],
            ["calendar_id"],
        )
        troubled = {calendar for (calendar,) in troubled}
        conflicts = self._origin._conflict_counts()
        stale_before = fields.Datetime.now() - self._health_stale_delay()
        for calendar in self:
            stale = calendar._health_is_stale(stale_before)
            if calendar.state in ("error", "reauth_needed") or (
                not calendar.sync_enabled and calendar.failure_count
            ):
                health = "broken"
            elif calendar.state == "not_configured" or not calendar.sync_enabled:
                health = "not_configured"
            elif not calendar.last_sync_date and not stale:
                health = "waiting"
            elif (
                calendar._origin in troubled
                or conflicts.get(calendar._origin.id)
                or calendar.cancellation_pending
                or stale
                or calendar.directory_state in ("removed", "out_of_reach")
            ):
                health = "degraded"
            else:
                health = "healthy"
            calendar.health = health

    def _conflict_counts(self):
        """{calendar id: Odoo bookings of its room flagged as overlapping an Outlook
        meeting}, in one query (the Conflicts view lists those bookings)."""
        if not self.ids:
            return {}
        rows = (
            self.env["resource.booking"]
            .sudo()
            ._read_group(
                [
                    ("exchange_conflict", "=", True),
                    ("exchange_origin", "=", "odoo"),
                    ("combination_id.resource_ids", "in", self.room_id.ids),
                ],
                ["combination_id"],
                ["__count"],
            )
        )
        counts = {}
        for combination, count in rows:
            for calendar in self.filtered(
                lambda c, rooms=combination.resource_ids: c.room_id in rooms
            ):
                counts[calendar.id] = counts.get(calendar.id, 0) + count
        return counts

    @api.model
    def _health_stale_delay(self):
        """How long a syncing room may go without a successful round."""
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("room_exchange_sync.stale_hours", "24")
        )
        try:
            hours = float(value)
        except ValueError:
            hours = 24.0
        return timedelta(hours=hours if hours > 0 else 24.0)

    def _health_is_stale(self, stale_before):
        """No successful round since ``stale_before`` (the room's creation counts as
        the start for a room that never synced)."""
        self.ensure_one()
        reference = self.last_sync_date or self.create_date
        return bool(self.sync_enabled and reference and reference < stale_before)

    def _compute_health_details(self):
        ids = self._origin.ids
        Binding = self.env["room.exchange.binding"]
        pushed = dict(
            Binding._read_group(
                [("calendar_id", "in", ids)], ["calendar_id"], ["sync_date:max"]
            )
        )
        pending = dict(
            Binding._read_group(
                [
                    ("calendar_id", "in", ids),
                    ("sync_state", "in", ("pending", "deleted_local")),
                ],
                ["calendar_id"],
                ["__count"],
            )
        )
        conflicts = self._origin._conflict_counts()
        for calendar in self:
            calendar.last_push_date = pushed.get(calendar._origin, False)
            calendar.binding_pending_count = pending.get(calendar._origin, 0)
            calendar.conflict_count = conflicts.get(calendar._origin.id, 0)

    def _conflict_domain(self):
        """The Odoo bookings of this room that overlap an Outlook meeting (each row
        of the Conflicts view pairs one with the meeting)."""
        self.ensure_one()
        return [
            ("exchange_conflict", "=", True),
            ("exchange_origin", "=", "odoo"),
            ("combination_id.resource_ids", "in", self.room_id.ids),
        ]

    @api.depends(
        "connection_id.credential_type",
        "connection_id.client_secret_expiry",
        "connection_id.certificate_expiry",
        "auth_mode",
        "account_id",
        "last_sync_date",
    )
    def _compute_next_expiry(self):
        for calendar in self:
            expiries = calendar._health_expiries()
            date, reason = min(expiries) if expiries else (False, False)
            calendar.next_expiry_date = date
            calendar.next_expiry_reason = reason

    def _health_expiries(self):
        """(date, what) pairs of what this room's sync depends on."""
        self.ensure_one()
        connection = self.connection_id
        expiries = []
        if connection.credential_type == "secret" and connection.client_secret_expiry:
            expiries.append(
                (
                    fields.Datetime.to_datetime(connection.client_secret_expiry),
                    self.env._("Client secret"),
                )
            )
        if (
            connection.credential_type == "certificate"
            and connection.certificate_expiry
        ):
            expiries.append((connection.certificate_expiry, self.env._("Certificate")))
        subscription = (
            self.env["room.exchange.subscription"]
            .sudo()
            .search([("calendar_id", "in", self._origin.ids)], limit=1)
        )
        if subscription.expiration:
            expiries.append(
                (subscription.expiration, self.env._("Change notifications"))
            )
        if self.auth_mode == "delegated" and self.account_id and self.last_sync_date:
            expiries.append(
                (
                    self.last_sync_date + timedelta(days=90),
                    self.env._("Sign-in (refresh token unused for 90 days)"),
                )
            )
        return expiries

    def _search_next_expiry_date(self, operator, value):
        """Rooms by their next expiry, e.g. for the "Expiring soon" filter. The
        earliest of the expiries _health_expiries lists is before a date when one of
        them is, so each becomes a condition on stored fields."""
        if operator == "not in" and set(value) == {False}:
            return self._next_expiry_domain()
        if operator in ("<", "<="):
            return self._next_expiry_domain(operator, value)
        if operator in (">", ">="):
            before = "<=" if operator == ">" else "<"
            return self._next_expiry_domain() & ~self._next_expiry_domain(before, value)
        return NotImplemented

    @api.model
    def _next_expiry_domain(self, operator=None, value=None):
        """Rooms with something expiring, as _health_expiries sees it: at all, or
        ``operator`` (< or <=) ``value``."""
        if operator:
            limit = fields.Datetime.to_datetime(value)
            # The compute counts a secret's expiry date from its midnight (UTC).
            last_day = limit if operator == "<=" else limit - timedelta(microseconds=1)
            secret = ("client_secret_expiry", "<=", last_day.date())
            certificate = ("certificate_expiry", operator, limit)
            subscription = ("expiration", operator, limit)
            sign_in = ("last_sync_date", operator, limit - timedelta(days=90))
        else:
            secret = ("client_secret_expiry", "!=", False)
            certificate = ("certificate_expiry", "!=", False)
            subscription = ("expiration", "!=", False)
            sign_in = ("last_sync_date", "!=", False)
        credential = fields.Domain.OR(
            [
                [("credential_type", "=", "secret"), secret],
                [("credential_type", "=", "certificate"), certificate],
            ]
        )
        subscribed = (
            self.env["room.exchange.subscription"]
            .sudo()
            .search([subscription])
            .calendar_id
        )
        delegated = [
            ("auth_mode", "=", "delegated"),
            ("account_id", "!=", False),
            sign_in,
        ]
        return (
            fields.Domain("connection_id", "any", credential)
            | fields.Domain("id", "in", subscribed.ids)
            | fields.Domain(delegated)
        )

    def action_cockpit_reauthorize(self):
        self.ensure_one()
        return self._sign_in_action("overview")

    def action_open_binding_errors(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_binding_action"
        )
        action.update(
            name=self.env._("Sync errors of %(room)s", room=self.room_id.display_name),
            domain=[
                ("calendar_id", "=", self.id),
                ("sync_state", "in", ("error", "conflict")),
            ],
            context={},
        )
        return action

    def action_open_conflicts(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.resource_booking_action_exchange_conflicts"
        )
        action.update(
            name=self.env._("Conflicts of %(room)s", room=self.room_id.display_name),
            domain=self._conflict_domain(),
        )
        return action

    @api.model
    def _cron_health_check(self):
        """Refresh every room's health and keep one to-do per problem and Exchange
        manager: created once, marked done when the problem is gone."""
        calendars = self.sudo().search([])
        self.env.add_to_compute(self._fields["health"], calendars)
        calendars.flush_recordset(["health"])
        connections = (
            self.env["room.exchange.connection"]
            .sudo()
            .with_context(active_test=False)
            .search([])
        )
        for connection in connections:
            for summary, note, deadline in connection._health_problems():
                self._health_set_alert(
                    connection,
                    summary,
                    note,
                    self._alert_recipients(connection.company_id),
                    deadline,
                )
        for calendar in calendars:
            for summary, note, deadline in calendar._health_problems():
                self._health_set_alert(
                    calendar,
                    summary,
                    note,
                    self._alert_recipients(calendar.company_id),
                    deadline,
                )

    def _health_problems(self):
        """(summary, note or False, deadline) of each problem the health check
        watches on this room; a False note means the problem is absent."""
        self.ensure_one()
        room = self.room_id.display_name
        today = fields.Date.context_today(self)
        stale_before = fields.Datetime.now() - self._health_stale_delay()
        stale_note = self._health_is_stale(stale_before) and self.env._(
            "Room %(room)s has not synced successfully with Exchange since %(date)s. "
            "Open the rooms overview, check its last error and click Sync now.",
            room=room,
            date=self.last_sync_date or self.create_date,
        )
        conflicts = self.conflict_count
        conflict_note = conflicts and self.env._(
            "%(count)s bookings of room %(room)s overlap an Outlook meeting: open "
            "them from the rooms overview (Open conflicts) and move or cancel one "
            "side.",
            count=conflicts,
            room=room,
        )
        return [
            (
                self.env._("Room %(room)s does not sync", room=room),
                stale_note,
                today,
            ),
            (
                self.env._("Exchange conflicts in room %(room)s", room=room),
                conflict_note,
                today,
            ),
            (
                self.env._("Room %(room)s left the directory", room=room),
                self._directory_problem(),
                today,
            ),
        ]

    @api.model
    def _health_set_alert(self, record, summary, note, users, deadline, feedback=None):
        """Keep one open to-do per user about one problem of ``record`` while
        ``note`` describes it; mark them done once the problem is gone.

        Activities are created directly (not through activity_schedule) so that
        records without the activity mixin, such as connections, get them too."""
        Activity = self.env["mail.activity"].sudo()
        open_activities = Activity.search(
            [
                ("res_model", "=", record._name),
                ("res_id", "=", record.id),
                ("summary", "=", summary),
            ]
        )
        if not note:
            open_activities.action_feedback(
                feedback=feedback
                or self.env._("Solved: found fixed by the daily health check.")
            )
            return
        missing = users - open_activities.user_id
        if missing:
            Activity.create(
                [
                    {
                        "res_model_id": self.env["ir.model"]._get_id(record._name),
                        "res_id": record.id,
                        "activity_type_id": self.env.ref(
                            "mail.mail_activity_data_todo"
                        ).id,
                        "summary": summary,
                        "note": note,
                        "date_deadline": deadline,
                        "user_id": user.id,
                    }
                    for user in missing
                ]
            )

    # Rooms from the Microsoft 365 directory (models/room_directory.py) ------------

    def _directory_problem(self):
        """What the health check says of a room the directory no longer shows, or
        that Exchange no longer opens; False when neither."""
        self.ensure_one()
        room = self.room_id.display_name
        if self.directory_state == "removed":
            return self.env._(
                "The room mailbox %(mailbox)s of room %(room)s is no longer in the "
                "Microsoft 365 directory (deleted, or hidden from the address list). "
                "Check it with your Exchange admin; if the room is gone, remove its "
                "authorization (Odoo never deletes it by itself).",
                mailbox=self.mailbox,
                room=room,
            )
        if self.directory_state == "out_of_reach":
            return self.env._(
                "Exchange no longer opens the calendar of %(mailbox)s (room "
                "%(room)s): the mailbox left the app's RBAC for Applications scope, "
                "or the signed-in account lost its rights. Open the room's Exchange "
                "tab and click Save to see the command that grants it again.",
                mailbox=self.mailbox,
                room=room,
            )
        return False

    @api.model
    def _cron_directory_refresh(self):
        """Refresh the rooms' attributes from the directory, once a day per room,
        and flag rooms the directory no longer shows or Exchange no longer opens.

        One listing of the directory per connection, then rooms in committed steps
        of ``room_directory.REFRESH_CHUNK`` (their calendars read in ``$batch``); a
        connection whose directory cannot be read is left for the next day.
        Nothing is deleted.
        """
        calendars = self.sudo().search(
            [
                ("mailbox", "!=", False),
                ("connection_id.state", "=", "ready"),
                ("connection_id.places_enabled", "=", True),
                "|",
                ("directory_checked_date", "=", False),
                (
                    "directory_checked_date",
                    "<",
                    fields.Datetime.now() - room_directory.REFRESH_AGE,
                ),
            ]
        )
        Cron = self.env["ir.cron"]
        remaining = len(calendars)
        for connection, group in calendars.grouped("connection_id").items():
            listing = connection._directory_listing()
            for ids in split_every(room_directory.REFRESH_CHUNK, group.ids):
                chunk = group.browse(ids)
                if listing is not None:
                    chunk._directory_refresh(listing)
                remaining -= len(chunk)
                if not Cron._commit_progress(len(chunk), remaining=remaining):
                    return

    def _directory_refresh(self, listing):
        """Compare these rooms (one connection's) with ``listing`` ({lower-case
        mailbox: DirectoryRoom}); update their state and, for rooms whose attributes
        come from the directory, their attributes, noting the changes."""
        reachability = self._directory_reachability()
        now = fields.Datetime.now()
        for calendar in self:
            entry = listing.get(calendar.mailbox.lower())
            error = reachability.get(calendar.id)
            if entry is None or isinstance(error, GraphNotFound):
                state = "removed"
            elif isinstance(error, GraphPermissionError):
                state = "out_of_reach"
            elif error is not None:
                state = calendar.directory_state  # Exchange busy: unchanged
            else:
                state = "listed"
            changes = []
            room = calendar.room_id
            if entry is not None and room.room_attribute_source == "directory":
                changes = room._directory_changes(entry)
            values = {"directory_checked_date": now}
            notes = [text for _field, text in changes]
            if state != calendar.directory_state and (
                calendar.directory_state != "unknown" or state != "listed"
            ):
                notes.insert(0, calendar._directory_state_note(state))
            if state != calendar.directory_state:
                values["directory_state"] = state
            if notes:
                values["directory_note"] = "; ".join(notes)
                calendar._directory_post(notes)
            calendar.write(values)

    def _directory_reachability(self):
        """{calendar id: None or the GraphError of reading its calendar}, read in
        ``$batch`` per Microsoft account (the app's for application mode). Rooms
        whose account cannot be used now are left out."""
        found = {}
        for account, calendars in self.grouped("account_id").items():
            connection = calendars[0].connection_id
            if connection.auth_mode == "delegated" and not account:
                continue
            try:
                client = connection._directory_client(account)
                errors = client.read_calendars(calendars.mapped("mailbox"))
            except (GraphError, UserError) as error:
                _logger.info(
                    "Directory refresh of connection %s: calendars not read (%s)",
                    connection.id,
                    type(error).__name__,
                )
                continue
            for calendar in calendars:
                found[calendar.id] = errors.get(calendar.mailbox)
        return found

    def _directory_state_note(self, state):
        labels = dict(DIRECTORY_STATES)
        return self.env._(
            "directory status %(old)s → %(new)s",
            old=labels[self.directory_state],
            new=labels[state],
        )

    def _directory_post(self, notes):
        """A log note on the room's Exchange calendar: what the directory changed."""
        items = Markup("").join(Markup("<li>%s</li>") % escape(note) for note in notes)
        self.message_post(
            body=Markup("<p>%s</p><ul>%s</ul>")
            % (self.env._("Microsoft 365 directory refresh:"), items),
            subtype_xmlid="mail.mt_note",
        )


class RoomExchangeCalendarChoice(models.Model):
    """A room calendar offered by the picker after a sign-in (or from the directory)."""

    _name = "room.exchange.calendar.choice"
    _description = "Room calendar choice"
    _order = "name, mailbox"

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="calendar_id.company_id", store=True)
    mailbox = fields.Char(required=True)
    name = fields.Char()
    source = fields.Selection(
        [("shared", "Shared with the account"), ("directory", "Room directory")]
    )

    @api.depends("name", "mailbox")
    def _compute_display_name(self):
        for choice in self:
            choice.display_name = (
                f"{choice.name} <{choice.mailbox}>" if choice.name else choice.mailbox
            )
