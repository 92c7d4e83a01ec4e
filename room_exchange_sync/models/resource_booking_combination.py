# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Room capacity where resource_booking lets it count.

resource_booking has no notion of seats: a booking holds a *combination* of
resources. The capacity of a room (``resource.resource.room_capacity``, from the
Microsoft 365 directory or entered in Odoo) becomes the capacity of a combination:
the seats of its rooms together, shown with its name wherever a combination is
chosen (the booking form, the booking type, the portal). A booking type may require a
minimum (models/resource_booking_type.py).
"""

from odoo import api, fields, models


class ResourceBookingCombination(models.Model):
    _inherit = "resource.booking.combination"

    capacity = fields.Integer(
        compute="_compute_capacity",
        store=True,
        help="How many people the combination seats: the capacities of its rooms "
        "added up (0: unknown, when a room's capacity is not known).",
    )

    @api.depends("resource_ids.room_capacity", "resource_ids.resource_type")
    def _compute_capacity(self):
        for combination in self:
            rooms = combination.resource_ids.filtered(
                lambda resource: resource.resource_type == "material"
            )
            capacities = rooms.mapped("room_capacity")
            combination.capacity = (
                sum(capacities) if capacities and all(capacities) else 0
            )

    @api.depends("name", "capacity")
    def _compute_display_name(self):
        result = super()._compute_display_name()
        for combination in self.filtered("capacity"):
            combination.display_name = self.env._(
                "%(name)s (%(count)s seats)",
                name=combination.display_name,
                count=combination.capacity,
            )
        return result
