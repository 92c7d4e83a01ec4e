# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

SYNC_STATES = [
    ("pending", "Pending"),
    ("synced", "Synced"),
    ("error", "Error"),
    ("conflict", "Conflict"),
    ("deleted_local", "Deleted in Odoo"),
    ("declined", "Declined in Exchange"),
]


class RoomExchangeBinding(models.Model):
    """The link between one booking and one event of one room's Exchange calendar.

    A booking of several synced rooms has one binding per room. A binding outlives its
    booking so that a deletion can still be pushed to Exchange.
    """

    _name = "room.exchange.binding"
    _description = "Exchange event binding"
    _order = "id desc"
    _check_company_auto = True

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="calendar_id.company_id", store=True)
    booking_id = fields.Many2one("resource.booking", ondelete="set null", index=True)
    external_id = fields.Char(
        string="Graph event ID", index=True, copy=False, readonly=True
    )
    ical_uid = fields.Char(string="iCalUId", copy=False, readonly=True)
    series_master_id = fields.Char(string="Series master", copy=False, readonly=True)
    remote_etag = fields.Char(
        string="Change key",
        copy=False,
        readonly=True,
        help="The event's changeKey when it was last synced: a different one means "
        "the event changed in Exchange.",
    )
    local_hash = fields.Char(
        string="Local hash",
        copy=False,
        readonly=True,
        help="Hash of the event payload last written to Exchange: a different one "
        "means the booking changed in Odoo.",
    )
    origin = fields.Selection(
        [("odoo", "Odoo"), ("exchange", "Exchange")], default="odoo", required=True
    )
    sync_state = fields.Selection(
        SYNC_STATES,
        string="Status",
        default="pending",
        required=True,
        index=True,
        copy=False,
    )
    sync_error = fields.Text(string="Error", copy=False, readonly=True)
    sync_date = fields.Datetime(string="Last synced", copy=False, readonly=True)
    sync_attempts = fields.Integer(string="Attempts", copy=False, readonly=True)
    next_retry_date = fields.Datetime(string="Next retry", copy=False, readonly=True)
    room_id = fields.Many2one(related="calendar_id.room_id")

    @api.constrains("booking_id", "calendar_id")
    def _check_booking_company(self):
        """A booking belongs to the company of its type (resource_booking's rule):
        it is bound only to the Exchange calendar of a room of that company."""
        for binding in self.sudo():
            booking_company = binding.booking_id.type_id.company_id
            if booking_company and booking_company != binding.company_id:
                raise ValidationError(
                    self.env._(
                        "A booking of another company cannot be linked to the "
                        "Exchange calendar of room %(room)s.",
                        room=binding.room_id.display_name,
                    )
                )

    _calendar_external_uniq = models.Constraint(
        "UNIQUE(calendar_id, external_id)",
        "An Exchange event is linked to at most one booking per room.",
    )
    _calendar_booking_uniq = models.Constraint(
        "UNIQUE(calendar_id, booking_id)",
        "A booking is linked to at most one event per room calendar.",
    )
