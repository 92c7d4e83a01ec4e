# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..engine import next_retry_delay

SYNC_STATES = [
    ("pending", "Pending"),
    ("synced", "Synced"),
    ("error", "Error"),
    ("conflict", "Conflict"),
    ("deleted_local", "Deleted in Odoo"),
    ("declined", "Declined in Exchange"),
]


class RoomExchangeBinding(models.Model):
    """The link between one booking and one event of one room's Exchange calendar.

    A booking of several synced rooms has one binding per room. A binding outlives its
    booking so that a deletion can still be pushed to Exchange.

    Its state changes only through the binder methods below (the OCA connector's
    vocabulary): ``_bind`` links bookings to events, ``_mark_synced``,
    ``_mark_failed``, ``_mark_error``, ``_mark_conflict``, ``_mark_pending``,
    ``_mark_deleted``, ``_mark_declined`` and ``_detach`` record what happened, and
    ``_forget`` ends the link. Another addon may ``_inherit`` them.
    """

    _name = "room.exchange.binding"
    _description = "Exchange event binding"
    _order = "id desc"
    _check_company_auto = True

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="calendar_id.company_id", store=True)
    booking_id = fields.Many2one("resource.booking", ondelete="set null", index=True)
    external_id = fields.Char(
        string="Graph event ID", index=True, copy=False, readonly=True
    )
    ical_uid = fields.Char(string="iCalUId", copy=False, readonly=True)
    series_master_id = fields.Char(string="Series master", copy=False, readonly=True)
    remote_etag = fields.Char(
        string="Change key",
        copy=False,
        readonly=True,
        help="The event's changeKey when it was last synced: a different one means "
        "the event changed in Exchange.",
    )
    local_hash = fields.Char(
        string="Local hash",
        copy=False,
        readonly=True,
        help="Hash of the event payload last written to Exchange: a different one "
        "means the booking changed in Odoo.",
    )
    origin = fields.Selection(
        [("odoo", "Odoo"), ("exchange", "Exchange")], default="odoo", required=True
    )
    sync_state = fields.Selection(
        SYNC_STATES,
        string="Status",
        default="pending",
        required=True,
        index=True,
        copy=False,
    )
    sync_error = fields.Text(string="Error", copy=False, readonly=True)
    sync_date = fields.Datetime(string="Last synced", copy=False, readonly=True)
    sync_attempts = fields.Integer(string="Attempts", copy=False, readonly=True)
    next_retry_date = fields.Datetime(string="Next retry", copy=False, readonly=True)
    room_id = fields.Many2one(related="calendar_id.room_id")

    _calendar_external_uniq = models.Constraint(
        "UNIQUE(calendar_id, external_id)",
        "An Exchange event is linked to at most one booking per room.",
    )
    _calendar_booking_uniq = models.Constraint(
        "UNIQUE(calendar_id, booking_id)",
        "A booking is linked to at most one event per room calendar.",
    )
    # What a step of the bulk export reads of its room's links (sync/local.py:
    # read_window and export_subset): those not in sync, and those its last step
    # created; so that a step's cost does not grow with the room's links.
    _calendar_unsynced_idx = models.Index("(calendar_id) WHERE sync_state != 'synced'")
    _calendar_created_idx = models.Index(
        "(calendar_id, create_date) WHERE origin = 'odoo'"
    )

    @api.constrains("booking_id", "calendar_id")
    def _check_booking_company(self):
        """A booking belongs to the company of its type (resource_booking's rule):
        it is bound only to the Exchange calendar of a room of that company."""
        for binding in self.sudo():
            booking_company = binding.booking_id.type_id.company_id
            if booking_company and booking_company != binding.company_id:
                raise ValidationError(
                    self.env._(
                        "A booking of another company cannot be linked to the "
                        "Exchange calendar of room %(room)s.",
                        room=binding.room_id.display_name,
                    )
                )

    # The binder: every change of a link's state

    @api.model
    def _bind(self, calendar, bookings, synced=None) -> "RoomExchangeBinding":
        """New links of ``calendar``: ``bookings`` is a list of (booking id, origin);
        ``synced`` (same order, or None) the ``_synced_values`` of each when its
        event is already written. Links created synced leave the room's health as
        it was (it counts those in error or conflict): not recomputed after every
        batch of them."""
        vals_list = [
            {
                "calendar_id": calendar.id,
                # Given, not recomputed with an UPDATE after the INSERT.
                "company_id": calendar.company_id.id,
                "booking_id": booking_id,
                "origin": origin,
                **(synced[index] if synced else {}),
            }
            for index, (booking_id, origin) in enumerate(bookings)
        ]
        if not synced:
            return self.create(vals_list)
        with self.env.protecting([calendar._fields["health"]], calendar):
            return self.create(vals_list)

    def _synced_values(self, now, event=None, local_hash=None) -> dict:
        """What a link in sync holds (``self``: the link so far, or none): ``event``
        an engine.RemoteItem of its event as Exchange returned it, ``local_hash``
        the hash of the payload its event shows."""
        values = {
            "sync_state": "synced",
            "sync_error": False,
            "sync_attempts": 0,
            "next_retry_date": False,
            "sync_date": now,
        }
        if event is not None:
            values.update(
                external_id=event.event_id,
                remote_etag=event.change_key or self.remote_etag,
                ical_uid=event.ical_uid or self.ical_uid,
                series_master_id=event.series_master_id or self.series_master_id,
            )
        if local_hash is not None:
            values["local_hash"] = local_hash
        return values

    def _mark_synced(self, now, event=None, local_hash=None) -> None:
        """The booking and its event agree (as ``_synced_values``)."""
        self.write(self._synced_values(now, event, local_hash))

    def _mark_failed(self, message, now) -> None:
        """A write failed: shown in error, tried again after a growing delay."""
        attempts = self.sync_attempts + 1
        self.write(
            {
                "sync_state": "error",
                "sync_error": message,
                "sync_attempts": attempts,
                "next_retry_date": now + next_retry_delay(attempts),
            }
        )

    def _mark_error(self, message) -> None:
        """The link cannot be synced now (its event cannot be read): it sits out the
        rounds, saying why, until its event is readable again."""
        changed = self.filtered(
            lambda link: link.sync_state != "error" or link.sync_error != message
        )
        changed.write({"sync_state": "error", "sync_error": message})

    def _mark_conflict(self, message) -> None:
        """Both sides changed what cannot be merged: someone decides."""
        self.write({"sync_state": "conflict", "sync_error": message})

    def _mark_pending(self, resend=False) -> None:
        """Exchange must hear about the booking at the next round (``resend``: its
        event is written again whatever the round compares, at once)."""
        if not resend:
            self.filtered(lambda link: link.sync_state in ("synced", "error")).write(
                {"sync_state": "pending"}
            )
            return
        self.write(
            {
                "sync_state": "pending",
                "local_hash": False,
                "sync_attempts": 0,
                "next_retry_date": False,
            }
        )

    def _mark_deleted(self) -> None:
        """The booking is deleted in Odoo: its event goes at the next round."""
        self.write({"sync_state": "deleted_local"})

    def _mark_declined(self, now) -> None:
        """The room declined the Outlook meeting: kept, so that it is not imported
        again while its organizer keeps it; its removal, once read, forgets it."""
        self.write(
            {
                "sync_state": "declined",
                "sync_error": False,
                "sync_date": now,
                "next_retry_date": False,
            }
        )

    def _detach(self) -> None:
        """The event is gone from Exchange: the booking waits to be written again."""
        self.write(
            {"external_id": False, "remote_etag": False, "sync_state": "pending"}
        )

    def _forget(self) -> None:
        """The link ends (the booking or the event is gone for good)."""
        self.unlink()
