# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room's bulk export to Exchange, as its Exchange tab shows it."""

from odoo import fields, models

from .resource_resource import USER
from .room_exchange_export_run import EXPORT_STATES


class ResourceResource(models.Model):
    _inherit = "resource.resource"  # pylint: disable=consider-merging-classes-inherited

    exchange_export_state = fields.Selection(
        selection=[("none", "No export"), *EXPORT_STATES],
        string="Export",
        compute="_compute_exchange_export",
        groups=USER,
    )
    exchange_export_progress = fields.Char(
        string="Export progress", compute="_compute_exchange_export", groups=USER
    )
    exchange_export_failed = fields.Integer(
        string="Export failures", compute="_compute_exchange_export", groups=USER
    )
    exchange_export_summary = fields.Text(
        string="Last export", compute="_compute_exchange_export", groups=USER
    )
    exchange_export_message = fields.Char(
        string="Bookings in Exchange",
        compute="_compute_exchange_export",
        groups=USER,
        help="Whether this room's future bookings are all in Exchange, or how its "
        "export is doing.",
    )

    def _compute_exchange_export(self) -> None:
        for room in self:
            calendar = room.exchange_calendar_ids[:1].sudo()
            run = calendar.export_run_id
            room.exchange_export_state = run.state or "none"
            room.exchange_export_failed = run.failed_count
            room.exchange_export_summary = run.summary
            room.exchange_export_progress, room.exchange_export_message = (
                calendar._export_status() if calendar else (False, False)
            )

    def action_exchange_run_export(self) -> dict:
        """Open the bulk export wizard (wizards/room_exchange_export.py)."""
        return self.env["room.exchange.export"]._action_open(self)

    def action_exchange_refresh(self) -> bool:
        """Show the export's progress as it is now (the form reloads)."""
        self.ensure_one()
        self._exchange_calendar().check_access("read")
        return False
