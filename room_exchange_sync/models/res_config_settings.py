# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models

from .room_exchange_calendar import PARAM_PAUSED

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
PARAM_STALE_HOURS = "room_exchange_sync.stale_hours"


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
    room_exchange_connection_summary = fields.Char(
        string="Connections",
        compute="_compute_room_exchange_connection_count",
        groups=MANAGER,
    )
    room_exchange_sync_paused = fields.Boolean(
        string="Pause the sync",
        config_parameter=PARAM_PAUSED,
        help="Stop syncing every room with Exchange (scheduled syncs, Sync now and "
        "bulk exports) until this is switched off again; nothing is lost, the next "
        "sync catches up.",
    )
    room_exchange_stale_hours = fields.Integer(
        string="Warn after (hours without a sync)",
        config_parameter=PARAM_STALE_HOURS,
        default=24,
        help="A syncing room whose last successful sync is older than this is "
        "shown as Degraded, and Exchange sync managers get a to-do from the daily "
        "health check.",
    )

    @api.depends_context("company")
    def _compute_room_exchange_connection_count(self):
        Connection = self.env["room.exchange.connection"]
        total = Connection.search_count([])
        ready = Connection.search_count([("state", "=", "ready")])
        if not total:
            summary = self.env._("No connection yet")
        elif ready == total:
            summary = (
                self.env._("%(total)s connections, all ready", total=total)
                if total > 1
                else self.env._("1 connection, ready")
            )
        else:
            summary = self.env._(
                "%(ready)s of %(total)s connections ready", ready=ready, total=total
            )
        for settings in self:
            settings.room_exchange_connection_count = total
            settings.room_exchange_ready_count = ready
            settings.room_exchange_connection_summary = summary

    def set_values(self):
        was_paused = self.env["room.exchange.calendar"]._sync_paused()
        result = super().set_values()
        if was_paused and not self.env["room.exchange.calendar"]._sync_paused():
            # Resumed: catch up now rather than at the next interval.
            for xmlid in (
                "room_exchange_sync.ir_cron_room_exchange_sync",
                "room_exchange_sync.ir_cron_room_exchange_export",
            ):
                self.env.ref(xmlid).sudo()._trigger()
        return result
