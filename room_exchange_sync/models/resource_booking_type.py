# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A booking type's minimum room capacity: automatic assignment, the portal's free
slots and the bookings themselves (models/resource_booking.py) only take the
combinations that seat that many (models/resource_booking_combination.py)."""

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResourceBookingType(models.Model):
    _inherit = "resource.booking.type"

    room_min_capacity = fields.Integer(
        string="Minimum room capacity",
        help="Only rooms (combinations) seating at least this many people are "
        "assigned to bookings of this type, offered on the portal or accepted on "
        "a booking; a combination whose capacity is unknown does not qualify. 0: "
        "no minimum.",
    )

    @api.constrains("room_min_capacity")
    def _check_room_min_capacity(self):
        if any(booking_type.room_min_capacity < 0 for booking_type in self):
            raise ValidationError(
                self.env._("The minimum room capacity cannot be negative.")
            )

    def _get_combinations_priorized(self):
        combinations = super()._get_combinations_priorized()
        return combinations.filtered(self._fits_capacity)

    def _fits_capacity(self, combination):
        """Whether ``combination`` seats this type's minimum."""
        minimum = self.room_min_capacity
        return not minimum or combination.capacity >= minimum
