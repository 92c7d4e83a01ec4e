# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import models


class CalendarEvent(models.Model):
    _inherit = "calendar.event"

    def write(self, vals):
        if {"start", "stop", "duration", "name", "allday"} & set(vals) and not (
            self.env.context.get("exchange_sync")
        ):
            # Moving the meeting of a booking made in Outlook, e.g. in the Calendar
            # app: refused with the booking's own explanation.
            self.sudo().resource_booking_ids._check_outlook_meetings_untouched(
                {"start": True}
            )
        result = super().write(vals)
        # Moving a booking's meeting in the Calendar app changes the booking through
        # recomputation only, without resource.booking.write().
        if {"start", "stop", "duration", "name", "allday"} & set(vals):
            self.sudo().resource_booking_ids._exchange_mark_pending()
        return result

    def _skip_send_mail_status_update(self):
        # Meetings imported from Exchange were already announced by Outlook.
        if self.sudo().resource_booking_ids.filtered(
            lambda booking: booking.exchange_origin == "exchange"
        ):
            return True
        return super()._skip_send_mail_status_update()
