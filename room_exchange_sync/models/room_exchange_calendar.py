# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The Exchange room mailbox calendar of one Odoo room (``room.exchange.calendar``):
the model, its fields, its constraints, create and write.

What the model does lives beside it, one concern a file, each extending the model
(``_inherit``):

- room_exchange_calendar_booking_setup.py: what bookings of a synced room need
  (its single-room combination, the booking type and requester of imported meetings);
- room_exchange_calendar_sign_in.py: the Microsoft sign-in, the calendar picker, the
  Graph client of a room, and a sign-in Microsoft asks to renew;
- room_exchange_calendar_mailbox.py: binding the room to its room mailbox once access
  is checked, a change of mailbox, connection or account, removing the authorization;
- room_exchange_calendar_schedule.py: which rooms are due and the sync cron;
- room_exchange_calendar_sync.py: one room's round, its lock, its outcome, and the
  Sync now buttons;
- room_exchange_calendar_health.py: the health and counts the rooms overview shows;
- room_exchange_calendar_alerts.py: the daily health check and the to-dos it keeps;
- room_exchange_calendar_directory.py: the daily Microsoft 365 directory refresh.
"""

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, email_normalize

# Settings › Exchange room sync › Pause the sync: no round, no export while set.
PARAM_PAUSED = "room_exchange_sync.paused"
# Calendar settings that change the events written for its bookings.
PAYLOAD_SETTINGS = {"privacy_mode", "include_organizer_email"}

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

    _room_uniq = models.Constraint(
        "UNIQUE(room_id)", "A room has at most one Exchange calendar."
    )

    @api.depends("item_problems")
    def _compute_item_problem_text(self) -> None:
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

    def _compute_binding_counts(self) -> None:
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
    def _check_mailbox(self) -> None:
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
    def _check_mailbox_unique(self) -> None:
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
    def _check_sync_requirements(self) -> None:
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
    def _check_company_consistency(self) -> None:
        problems = self._company_problems()
        if problems:
            raise ValidationError("\n".join(problems.values()))

    def _company_problems(self) -> dict[int, str]:
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
    def create(self, vals_list) -> models.Model:
        calendars = super().create(vals_list)
        calendars.filtered("sync_enabled")._prepare_booking_setup()
        return calendars

    def write(self, vals) -> bool:
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

    def _sync_requirement_problems(self) -> list[str]:
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
