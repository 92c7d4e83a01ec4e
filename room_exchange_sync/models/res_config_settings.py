# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import fields, models

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    room_exchange_connection_count = fields.Integer(
        string="Microsoft 365 connections",
        compute="_compute_room_exchange_connection_count",
        groups=MANAGER,
        help="How many Microsoft 365 connections (tenant and app registration) are "
        "set up. Manage connections opens them.",
    )
    room_exchange_ready_count = fields.Integer(
        string="Ready connections",
        compute="_compute_room_exchange_connection_count",
        groups=MANAGER,
        help="How many of those connections passed Test connection (state Ready). "
        "Rooms can be authorized only through a Ready connection.",
    )

    def _compute_room_exchange_connection_count(self):
        Connection = self.env["room.exchange.connection"]
        total = Connection.search_count([])
        ready = Connection.search_count([("state", "=", "ready")])
        for settings in self:
            settings.room_exchange_connection_count = total
            settings.room_exchange_ready_count = ready
