# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models

USER = "room_exchange_sync.room_exchange_sync_group_user"

# Writes made by the sync itself: no mail to anyone, no chatter noise, no export of what
# was just imported, and no push to personal Outlook/Google calendars (booking_platform
# §2.9c).
SYNC_CONTEXT = {
    "room_exchange_no_export": True,
    "exchange_sync": True,
    "no_mail_to_attendees": True,
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    "no_calendar_sync": True,
}
# Fields whose change must reach Exchange (what booking_payload reads).
EXPORTED_FIELDS = {
    "name",
    "start",
    "duration",
    "stop",
    "active",
    "description",
    "location",
    "combination_id",
    "meeting_id",
    "user_id",
    "type_id",
}


class ResourceBooking(models.Model):
    _inherit = "resource.booking"

    exchange_origin = fields.Selection(
        [("odoo", "Odoo"), ("exchange", "Exchange")],
        string="Booked in",
        default="odoo",
        required=True,
        readonly=True,
        copy=False,
        index=True,
    )
    exchange_binding_ids = fields.One2many(
        "room.exchange.binding", "booking_id", groups=USER, readonly=True
    )
    exchange_organizer_name = fields.Char(
        string="Outlook organizer", readonly=True, copy=False
    )
    exchange_organizer_email = fields.Char(
        string="Outlook organizer e-mail", readonly=True, copy=False, groups=USER
    )
    exchange_conflict = fields.Boolean(
        string="Overlaps an Exchange meeting",
        readonly=True,
        copy=False,
        index=True,
        help="An Outlook meeting and this booking hold the same room at the same time.",
    )
    exchange_sync_state = fields.Selection(
        [
            ("not_synced", "Not synced"),
            ("pending", "Pending"),
            ("synced", "Synced"),
            ("conflict", "Conflict"),
            ("error", "Error"),
        ],
        string="Exchange sync",
        compute="_compute_exchange_sync_state",
        groups=USER,
    )

    @api.depends("exchange_binding_ids.sync_state", "combination_id")
    def _compute_exchange_sync_state(self):
        order = ["error", "conflict", "pending", "synced"]
        for booking in self:
            states = set(booking.exchange_binding_ids.mapped("sync_state"))
            states = {"pending" if s == "deleted_local" else s for s in states}
            worst = next((state for state in order if state in states), False)
            if not worst:
                worst = "pending" if booking._exchange_calendars() else "not_synced"
            booking.exchange_sync_state = worst

    def action_exchange_resync(self):
        """Push this booking to Exchange again at the next round (and now): its
        links forget what was exported and any retry delay."""
        self.check_access("write")
        bindings = self.sudo().exchange_binding_ids.filtered("booking_id")
        bindings.write(
            {
                "sync_state": "pending",
                "local_hash": False,
                "sync_attempts": 0,
                "next_retry_date": False,
            }
        )
        self._exchange_calendars()._request_sync()
        return self.env["room.exchange.connection"]._notification(
            self.env._("Re-sync requested"),
            self.env._("The booking is pushed to Exchange again within a minute."),
            "info",
        )

    def _exchange_calendars(self):
        """The synced room calendars these bookings' rooms belong to."""
        rooms = self.sudo().combination_id.resource_ids
        return rooms.exchange_calendar_ids.filtered("sync_enabled")

    @api.model_create_multi
    def create(self, vals_list):
        bookings = super().create(vals_list)
        bookings._exchange_request_sync()
        return bookings

    def write(self, vals):
        result = super().write(vals)
        if EXPORTED_FIELDS & set(vals):
            self._exchange_mark_pending()
        return result

    def unlink(self):
        bindings = self.sudo().exchange_binding_ids
        bindings.write({"sync_state": "deleted_local"})
        calendars = self._exchange_calendars()
        result = super().unlink()
        if bindings or calendars:
            calendars._request_sync()
        return result

    def _exchange_mark_pending(self):
        """Flag what Exchange must hear about; the cron compares payload hashes, so
        this only makes the change visible and wakes the sync up early."""
        if self.env.context.get("room_exchange_no_export"):
            return
        self.sudo().exchange_binding_ids.filtered(
            lambda binding: binding.sync_state in ("synced", "error")
        ).write({"sync_state": "pending"})
        self._exchange_request_sync()

    def _exchange_request_sync(self):
        if self.env.context.get("room_exchange_no_export"):
            return
        self._exchange_calendars()._request_sync()

    def _sync_meeting(self):
        if not self.env.context.get("room_exchange_import"):
            return super()._sync_meeting()
        new = self.filtered(lambda booking: booking.start and not booking.meeting_id)
        result = super(ResourceBooking, self - new)._sync_meeting()
        if new:
            new._exchange_create_meetings()
        return result

    def _exchange_create_meetings(self):
        """The meetings of bookings imported from Exchange, in one ``create``.

        resource_booking creates a meeting per booking (its attendee auto-confirmation
        travels in the context) and subscribes its organizer to each: an import of k
        Outlook meetings would cost k times a dozen queries. Those meetings hold a
        room, not people, so nothing of that applies to them.
        """
        vals_list = []
        for booking in self:
            vals = booking._prepare_meeting_vals()
            vals.pop("resource_booking_ids")
            time_zone = booking.type_id.resource_calendar_id.tz
            if time_zone:
                vals["event_tz"] = time_zone
            vals_list.append(vals)
        # The "contact" paragraph would name the room's technical partner.
        meetings = (
            self.env["calendar.event"]
            .with_context(skip_contact_description=True)
            .create(vals_list)
        )
        linking = self.with_context(syncing_booking_ids=self.ids)
        for booking, meeting in zip(linking, meetings, strict=True):
            booking.meeting_id = meeting

    def _check_scheduling(self):
        # Exchange is the source of truth for meetings booked in Outlook: importing one
        # never fails because the room looks busy or closed in Odoo.
        return super(
            ResourceBooking, self.filtered(lambda b: b.exchange_origin != "exchange")
        )._check_scheduling()

    @api.depends("exchange_origin")
    def _compute_is_modifiable(self):
        result = super()._compute_is_modifiable()
        if not self.env.context.get("exchange_sync"):
            for booking in self.filtered(lambda b: b.exchange_origin == "exchange"):
                booking.is_modifiable = False
        return result
