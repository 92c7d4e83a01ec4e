# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, html_sanitize
from odoo.tools.intervals import Intervals

from ..sync import mapping
from ..sync.local import event_payload

USER = "room_exchange_sync.room_exchange_sync_group_user"

# Fields whose change may end (or start) an overlap with a booking of the other side.
OVERLAP_FIELDS = {"active", "start", "stop", "duration", "combination_id", "meeting_id"}
# What a meeting booked in Outlook holds, besides what its event shows, that only its
# organizer changes (in Outlook): Odoo refuses to write these outside the sync; it
# may only cancel it.
OUTLOOK_OWNED_EXTRA = frozenset({"partner_ids", "combination_auto_assign"})
BOOKING_MANAGER = "resource_booking.group_manager"


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
        "room.exchange.binding",
        "booking_id",
        string="Exchange links",
        groups=USER,
        readonly=True,
    )
    exchange_organizer_name = fields.Char(
        string="Outlook organizer", readonly=True, copy=False
    )
    exchange_organizer_email = fields.Char(
        string="Outlook organizer e-mail", readonly=True, copy=False, groups=USER
    )
    exchange_overlap = fields.Boolean(
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
            ("removed", "Removed from Exchange"),
            ("declined", "Declined in Exchange"),
        ],
        string="Exchange sync",
        compute="_compute_exchange_sync_state",
        groups=USER,
    )
    combination_capacity = fields.Integer(
        related="combination_id.capacity",
        string="Capacity",
        help="How many people the chosen room (combination) seats; 0: unknown.",
    )
    exchange_overlap_with_id = fields.Many2one(
        "resource.booking",
        string="Clashes with",
        compute="_compute_exchange_overlap_with_id",
        help="The booking of the other side (an Outlook meeting for a booking made "
        "in Odoo) that holds the same room at the same time.",
    )
    exchange_overlap_with_organizer = fields.Char(
        string="Its organizer", compute="_compute_exchange_overlap_with_id"
    )
    exchange_overlap_with_start = fields.Datetime(
        string="Its start", compute="_compute_exchange_overlap_with_id"
    )
    exchange_overlap_with_stop = fields.Datetime(
        string="Its end", compute="_compute_exchange_overlap_with_id"
    )

    # The next bookings a step of the bulk export creates, in order
    # (sync/local.py: export_subset): read from an index, whatever the statistics say.
    _exchange_export_idx = models.Index(
        "(start, id) WHERE active AND exchange_origin = 'odoo'"
    )

    @api.depends("exchange_binding_ids.sync_state", "combination_id", "active")
    def _compute_exchange_sync_state(self):
        order = ["error", "conflict", "pending", "synced", "declined"]
        for booking in self:
            states = set(booking.exchange_binding_ids.mapped("sync_state"))
            states = {"pending" if s == "deleted_local" else s for s in states}
            worst = next((state for state in order if state in states), False)
            if not worst and booking._exchange_calendars():
                # A cancelled booking whose events are gone is done with: final.
                worst = "pending" if booking.active else "removed"
            booking.exchange_sync_state = worst or "not_synced"

    @api.depends("exchange_overlap", "start", "stop", "combination_id")
    def _compute_exchange_overlap_with_id(self):
        for booking in self:
            other = (
                booking._exchange_overlapping()[:1]
                if booking.exchange_overlap
                else self.browse()
            )
            booking.exchange_overlap_with_id = other
            booking.exchange_overlap_with_organizer = other.exchange_organizer_name
            booking.exchange_overlap_with_start = other.start
            booking.exchange_overlap_with_stop = other.stop

    def _exchange_overlapping(self):
        """The live bookings of the other side (Odoo or Outlook) that hold one of this
        booking's synced rooms at the same time: what its overlap flag is about."""
        self.ensure_one()
        booking = self._origin
        rooms = booking._exchange_calendars().room_id
        if not (booking.active and booking.start and booking.stop and rooms):
            return self.browse()
        return self.search(
            [
                ("id", "!=", booking.id),
                ("exchange_origin", "!=", booking.exchange_origin),
                ("combination_id.resource_ids", "in", rooms.ids),
                ("start", "<", booking.stop),
                ("stop", ">", booking.start),
            ],
            order="start, id",
        )

    def action_exchange_open_overlap(self):
        """The booking this one clashes with (the Outlook meeting and its organizer,
        or the Odoo booking)."""
        self.ensure_one()
        self.check_access("read")
        other = self.exchange_overlap_with_id
        if not other:
            return {"type": "ir.actions.act_window_close"}
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": other.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_exchange_resync(self):
        """Push this booking to Exchange again at the next round (and now): its
        links forget what was exported and any retry delay."""
        self.check_access("write")
        bindings = self.sudo().exchange_binding_ids.filtered("booking_id")
        bindings._mark_pending(resend=True)
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
        if not self.env.context.get("exchange_sync"):
            self._check_outlook_meetings_untouched(vals)
        rooms = None
        if OVERLAP_FIELDS & set(vals) and not self.env.context.get("exchange_sync"):
            rooms = self.sudo().filtered("exchange_overlap")._exchange_calendars()
        result = super().write(vals)
        if self._exchange_exported_fields() & set(vals):
            self._exchange_mark_pending()
        if rooms:
            self._exchange_refresh_overlaps(rooms)
        return result

    def _check_outlook_meetings_untouched(self, vals) -> None:
        """Meetings booked in Outlook belong to their organizer: Odoo changes them
        only through the sync, and may only cancel them."""
        owned = self._exchange_exported_fields() - {"active", "meeting_id"}
        touched = (owned | OUTLOOK_OWNED_EXTRA) & set(vals)
        if not touched and vals.get("active") is not True:
            return
        outlook = self.filtered(lambda booking: booking.exchange_origin == "exchange")
        if outlook:
            raise UserError(
                self.env._(
                    "%(meeting)s was booked in Outlook by %(organizer)s: change it in "
                    "Outlook. In Odoo, a booking manager may only cancel it (the room "
                    "then declines it).",
                    meeting=outlook[0].display_name,
                    organizer=outlook[0].exchange_organizer_name
                    or self.env._("its organizer"),
                )
            )

    def action_cancel(self):
        """Cancel these bookings; for a meeting booked in Outlook (booking managers
        only), the room declines it in Exchange at the next sync, telling its
        organizer, and it is not imported again."""
        outlook = self.filtered(lambda booking: booking.exchange_origin == "exchange")
        if outlook and not self.env.user.has_group(BOOKING_MANAGER):
            raise AccessError(
                self.env._(
                    "Only booking managers can cancel a meeting booked in Outlook."
                )
            )
        result = super(ResourceBooking, self - outlook).action_cancel()
        if outlook:
            outlook.check_access("write")
            # Its meeting holds a room, not the manager: a private one is not even
            # readable by them, and goes with the booking all the same.
            super(
                ResourceBooking, outlook.sudo().with_context(exchange_cancel=True)
            ).action_cancel()
            for booking in outlook:
                booking.message_post(
                    body=self.env._(
                        "Cancelled in Odoo: the room declines this Outlook meeting at "
                        "the next sync, and %(organizer)s is told.",
                        organizer=booking.exchange_organizer_name
                        or self.env._("its organizer"),
                    ),
                    subtype_xmlid="mail.mt_note",
                )
        return result

    @api.model
    def _exchange_refresh_overlaps(self, calendars):
        """Flag the bookings of these rooms as the sync would, now: a booking
        cancelled or moved in Odoo no longer clashes, nor does the meeting it
        clashed with, and the Overlaps view and the rooms' health say so at once
        (the sync's next round checks Exchange's side again)."""
        bookings = (
            self.sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("exchange_overlap", "=", True),
                    ("combination_id.resource_ids", "in", calendars.room_id.ids),
                ]
            )
        )
        cleared = bookings.filtered(lambda booking: not booking._exchange_overlapping())
        if not cleared:
            return
        # A plain column update, as the sync's own (sync/overlaps.py): a
        # write would re-validate the schedule that the overlap fails.
        self.env.cr.execute(
            SQL(
                "UPDATE resource_booking SET exchange_overlap = FALSE"
                " WHERE id = ANY(%s)",
                cleared.ids,
            )
        )
        cleared.invalidate_recordset(["exchange_overlap"])
        self.env.add_to_compute(calendars._fields["health"], calendars)

    def unlink(self):
        bindings = self.sudo().exchange_binding_ids
        bindings._mark_deleted()
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
        self.sudo().exchange_binding_ids._mark_pending()
        self._exchange_request_sync()

    def _exchange_request_sync(self):
        if self.env.context.get("room_exchange_no_export"):
            return
        self._exchange_calendars()._request_sync()

    # The mapping (sync/mapping.py): overridable, as microsoft_calendar's hooks

    @api.model
    def _exchange_exported(self) -> tuple:
        """The values of a booking that its Exchange event shows (``Exported``
        entries); another addon adds its own here, and uses them in
        ``_exchange_event_payload``."""
        return mapping.EXPORTED

    @api.model
    def _exchange_exported_fields(self) -> frozenset:
        """The booking fields whose change must reach Exchange."""
        return mapping.exported_fields(self._exchange_exported())

    @api.model
    def _exchange_event_payload(self, snapshot, settings) -> dict:
        """The Graph event JSON of a booking's ``snapshot`` (sync/mapping.py) in a
        room of these ``settings`` (a PayloadSettings)."""
        return event_payload(snapshot, settings)

    @api.model
    def _exchange_values_from_event(self, event, calendar) -> dict:
        """The values of a booking imported from an Outlook meeting (``event``: an
        ImportedEvent) of ``calendar``'s room."""
        body = "" if event.is_private else html_sanitize(event.body_html or "")
        values = {
            "name": event.subject,
            "description": body,
            "type_id": calendar.booking_type_id.id,
            "partner_ids": [fields.Command.set(calendar.partner_id.ids)],
            "combination_id": calendar.combination_id.id,
            "combination_auto_assign": False,
            "start": event.start,
            "duration": (event.stop - event.start).total_seconds() / 3600,
            "exchange_origin": "exchange",
            "exchange_organizer_name": event.organizer_name,
            "location": calendar.room_id.name,
        }
        if calendar.include_organizer_email:
            values["exchange_organizer_email"] = event.organizer_email
        return values

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
    @api.depends_context("exchange_sync", "exchange_cancel")
    def _compute_is_modifiable(self):
        result = super()._compute_is_modifiable()
        context = self.env.context
        if not context.get("exchange_sync") and not context.get("exchange_cancel"):
            for booking in self.filtered(lambda b: b.exchange_origin == "exchange"):
                booking.is_modifiable = False
        return result

    # Room capacity (models/resource_booking_type.py: a type's minimum) -----------

    @api.constrains("combination_id", "type_id")
    def _check_room_min_capacity(self):
        for booking in self:
            booking_type = booking.type_id
            combination = booking.combination_id
            if combination and not booking_type._fits_capacity(combination):
                raise ValidationError(
                    self.env._(
                        "Bookings of type %(type)s need a room for at least "
                        "%(minimum)s people; %(room)s seats %(capacity)s.",
                        type=booking_type.display_name,
                        minimum=booking_type.room_min_capacity,
                        room=combination.name,
                        capacity=combination.capacity
                        or self.env._("an unknown number of people"),
                    )
                )

    def _get_intervals(self, start_dt, end_dt, combination=None):
        """Free slots of a type with a minimum room capacity count only the
        combinations that seat it."""
        booking_type = self.type_id
        if combination or self.combination_id or not booking_type.room_min_capacity:
            return super()._get_intervals(start_dt, end_dt, combination)
        fitting = booking_type.combination_rel_ids.combination_id.filtered(
            booking_type._fits_capacity
        )
        if not fitting:
            return Intervals([])
        return super()._get_intervals(start_dt, end_dt, fitting)
