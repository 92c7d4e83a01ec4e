# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import fields, models


class RoomExchangeSyncRequest(models.Model):
    """A room asked to sync soon: a change notification from Microsoft, or a change
    of one of its bookings in Odoo.

    Rows are only ever inserted (by the request that notices the change) and deleted
    (by the round that takes them, holding the room's lock), so that marking a room
    due never waits for, nor conflicts with, a sync that holds the room's calendar
    row. The scheduler (``room.exchange.calendar._cron_sync``) takes requested rooms
    before the others.
    """

    _name = "room.exchange.sync.request"
    _description = "Exchange room sync request"
    _log_access = False
    _order = "id"

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    requested_at = fields.Datetime(
        string="Requested at", required=True, default=fields.Datetime.now
    )
