# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import Command, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import email_normalize

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
    _order = "room_id"
    _rec_name = "room_id"

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
    mailbox = fields.Char(
        string="Room mailbox",
        help="The e-mail address (SMTP address or user principal name) of the room "
        "mailbox in Exchange Online, e.g. room-alpha@contoso.com.",
    )
    calendar_name = fields.Char(readonly=True, copy=False)
    calendar_external_id = fields.Char(string="Calendar ID", readonly=True, copy=False)
    sync_enabled = fields.Boolean(
        help="When enabled, bookings of this room are kept in sync with its room "
        "mailbox calendar."
    )
    state = fields.Selection(
        STATES, default="not_configured", required=True, readonly=True, copy=False
    )
    last_sync_date = fields.Datetime(
        string="Last successful sync", readonly=True, copy=False
    )
    last_error = fields.Text(readonly=True, copy=False)
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
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Technical requester",
        readonly=True,
        copy=False,
        help="Requester of imported meetings. It has no e-mail address, so Odoo never "
        "sends invitations for them.",
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
                raise ValidationError(
                    self.env._(
                        "The room mailbox %(mailbox)s is already used by room "
                        "%(room)s: two Odoo rooms cannot sync with the same Exchange "
                        "calendar.",
                        mailbox=calendar.mailbox,
                        room=twin.room_id.display_name,
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

    @api.model_create_multi
    def create(self, vals_list):
        calendars = super().create(vals_list)
        calendars.filtered("sync_enabled")._prepare_booking_setup()
        return calendars

    def write(self, vals):
        result = super().write(vals)
        if vals.get("sync_enabled") or "room_id" in vals:
            self.filtered("sync_enabled")._prepare_booking_setup()
        return result

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
                                "name": f"{day} 24h",
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
