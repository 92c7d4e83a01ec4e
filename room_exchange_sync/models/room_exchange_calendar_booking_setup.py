# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the bookings of a synced room need in Odoo, created when its sync is
switched on: the room's own single-room booking combination, and the booking type
(with a 24/7 availability calendar) and technical requester of the meetings
imported from its Exchange calendar."""

from odoo import Command, api, models


class RoomExchangeCalendarBookingSetup(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    def _prepare_booking_setup(self) -> None:
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

    def _single_room_combination(self) -> models.Model:
        self.ensure_one()
        Combination = self.env["resource.booking.combination"].sudo()
        for combination in Combination.search(
            [("resource_ids", "in", self.room_id.ids)]
        ):
            if combination.resource_ids == self.room_id:
                return combination
        return Combination.create({"resource_ids": [Command.set(self.room_id.ids)]})

    def _exchange_booking_type(self) -> models.Model:
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
    def _around_the_clock_calendar(self, company) -> models.Model:
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
