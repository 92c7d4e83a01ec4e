# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room's sync health, as the rooms overview (the cockpit) shows it: healthy,
not synced yet, degraded, broken or not configured; the counts behind it (pending
bookings, overlaps with Outlook meetings), the next expiry of what the sync depends
on, and the overview's buttons."""

from datetime import timedelta
from types import NotImplementedType

from odoo import api, fields, models


class RoomExchangeCalendarHealth(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    health = fields.Selection(
        [
            ("healthy", "Healthy"),
            ("waiting", "Not synced yet"),
            ("degraded", "Degraded"),
            ("broken", "Broken"),
            ("not_configured", "Not configured"),
        ],
        compute="_compute_health",
        store=True,
        index=True,
        help="Broken: the room is in error, waits for a new sign-in, or its sync was "
        "switched off after failures. Degraded: it syncs, but bookings are in error, "
        "overlap an Outlook meeting, cancellations wait for confirmation, or its "
        "last successful sync is older than the stale threshold (Settings, 24 hours "
        "by default). Not synced yet: authorized, its first sync has not run. Not "
        "configured: no connection, mailbox or sync yet. Time-based staleness is "
        "refreshed by the daily health check and on every change of the room.",
    )
    connection_state = fields.Selection(
        related="connection_id.state",
        string="Connection status",
        help="Status of the Microsoft 365 connection this room uses.",
    )
    last_push_date = fields.Datetime(
        string="Last booking synced",
        compute="_compute_health_details",
        help="When a booking of this room was last written to or read from Exchange "
        "(the latest sync date of its linked bookings).",
    )
    binding_pending_count = fields.Integer(
        string="Pending bookings",
        compute="_compute_health_details",
        help="Linked bookings whose change (or deletion) is not yet in Exchange.",
    )
    overlap_count = fields.Integer(
        string="Open overlaps",
        compute="_compute_health_details",
        help="Bookings of this room that overlap an Outlook meeting in Exchange.",
    )
    next_expiry_date = fields.Datetime(
        string="Next expiry",
        compute="_compute_next_expiry",
        search="_search_next_expiry_date",
        help="The earliest date at which something this room's sync depends on "
        "expires: the connection's client secret (as entered by the admin) or "
        "certificate, the change-notification subscription (renewed automatically), "
        "or, for delegated rooms, the sign-in, whose refresh token lapses after 90 "
        "days without a successful sync.",
    )
    next_expiry_reason = fields.Char(
        string="Expiring",
        compute="_compute_next_expiry",
        help="What expires at the next expiry date.",
    )
    sync_mode = fields.Selection(
        related="connection_id.auth_mode",
        string="Mode",
        store=True,
        help="How the room's calendar is reached: through a person's delegated "
        "sign-in or with the app's own access (stored copy of the connection's "
        "authentication mode, to group rooms by it).",
    )

    @api.depends(
        "state",
        "sync_enabled",
        "failure_count",
        "cancellation_pending",
        "binding_ids.sync_state",
        "directory_state",
    )
    def _compute_health(self) -> None:
        troubled = self.env["room.exchange.binding"]._read_group(
            [
                ("calendar_id", "in", self._origin.ids),
                ("sync_state", "in", ("error", "conflict")),
            ],
            ["calendar_id"],
        )
        troubled = {calendar for (calendar,) in troubled}
        overlaps = self._origin._overlap_counts()
        stale_before = fields.Datetime.now() - self._health_stale_delay()
        for calendar in self:
            stale = calendar._health_is_stale(stale_before)
            if calendar.state in ("error", "reauth_needed") or (
                not calendar.sync_enabled and calendar.failure_count
            ):
                health = "broken"
            elif calendar.state == "not_configured" or not calendar.sync_enabled:
                health = "not_configured"
            elif not calendar.last_sync_date and not stale:
                health = "waiting"
            elif (
                calendar._origin in troubled
                or overlaps.get(calendar._origin.id)
                or calendar.cancellation_pending
                or stale
                or calendar.directory_state in ("removed", "out_of_reach")
            ):
                health = "degraded"
            else:
                health = "healthy"
            calendar.health = health

    def _overlap_counts(self) -> dict[int, int]:
        """{calendar id: Odoo bookings of its room flagged as overlapping an Outlook
        meeting}, in one query (the Overlaps view lists those bookings)."""
        if not self.ids:
            return {}
        rows = (
            self.env["resource.booking"]
            .sudo()
            ._read_group(
                [
                    ("exchange_overlap", "=", True),
                    ("exchange_origin", "=", "odoo"),
                    ("combination_id.resource_ids", "in", self.room_id.ids),
                ],
                ["combination_id"],
                ["__count"],
            )
        )
        counts = {}
        for combination, count in rows:
            for calendar in self.filtered(
                lambda c, rooms=combination.resource_ids: c.room_id in rooms
            ):
                counts[calendar.id] = counts.get(calendar.id, 0) + count
        return counts

    @api.model
    def _health_stale_delay(self) -> timedelta:
        """How long a syncing room may go without a successful round."""
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("room_exchange_sync.stale_hours", "24")
        )
        try:
            hours = float(value)
        except ValueError:
            hours = 24.0
        return timedelta(hours=hours if hours > 0 else 24.0)

    def _health_is_stale(self, stale_before) -> bool:
        """No successful round since ``stale_before`` (the room's creation counts as
        the start for a room that never synced)."""
        self.ensure_one()
        reference = self.last_sync_date or self.create_date
        return bool(self.sync_enabled and reference and reference < stale_before)

    def _compute_health_details(self) -> None:
        ids = self._origin.ids
        Binding = self.env["room.exchange.binding"]
        pushed = dict(
            Binding._read_group(
                [("calendar_id", "in", ids)], ["calendar_id"], ["sync_date:max"]
            )
        )
        pending = dict(
            Binding._read_group(
                [
                    ("calendar_id", "in", ids),
                    ("sync_state", "in", ("pending", "deleted_local")),
                ],
                ["calendar_id"],
                ["__count"],
            )
        )
        overlaps = self._origin._overlap_counts()
        for calendar in self:
            calendar.last_push_date = pushed.get(calendar._origin, False)
            calendar.binding_pending_count = pending.get(calendar._origin, 0)
            calendar.overlap_count = overlaps.get(calendar._origin.id, 0)

    def _overlap_domain(self) -> list:
        """The Odoo bookings of this room that overlap an Outlook meeting (each row
        of the Overlaps view pairs one with the meeting)."""
        self.ensure_one()
        return [
            ("exchange_overlap", "=", True),
            ("exchange_origin", "=", "odoo"),
            ("combination_id.resource_ids", "in", self.room_id.ids),
        ]

    @api.depends(
        "connection_id.credential_type",
        "connection_id.client_secret_expiry",
        "connection_id.certificate_expiry",
        "auth_mode",
        "account_id",
        "last_sync_date",
    )
    def _compute_next_expiry(self) -> None:
        for calendar in self:
            expiries = calendar._health_expiries()
            date, reason = min(expiries) if expiries else (False, False)
            calendar.next_expiry_date = date
            calendar.next_expiry_reason = reason

    def _health_expiries(self) -> list[tuple]:
        """(date, what) pairs of what this room's sync depends on."""
        self.ensure_one()
        connection = self.connection_id
        expiries = []
        if connection.credential_type == "secret" and connection.client_secret_expiry:
            expiries.append(
                (
                    fields.Datetime.to_datetime(connection.client_secret_expiry),
                    self.env._("Client secret"),
                )
            )
        if (
            connection.credential_type == "certificate"
            and connection.certificate_expiry
        ):
            expiries.append((connection.certificate_expiry, self.env._("Certificate")))
        subscription = (
            self.env["room.exchange.subscription"]
            .sudo()
            .search([("calendar_id", "in", self._origin.ids)], limit=1)
        )
        if subscription.expiration:
            expiries.append(
                (subscription.expiration, self.env._("Change notifications"))
            )
        if self.auth_mode == "delegated" and self.account_id and self.last_sync_date:
            expiries.append(
                (
                    self.last_sync_date + timedelta(days=90),
                    self.env._("Sign-in (refresh token unused for 90 days)"),
                )
            )
        return expiries

    def _search_next_expiry_date(
        self, operator, value
    ) -> fields.Domain | NotImplementedType:
        """Rooms by their next expiry, e.g. for the "Expiring soon" filter. The
        earliest of the expiries _health_expiries lists is before a date when one of
        them is, so each becomes a condition on stored fields."""
        if operator == "not in" and set(value) == {False}:
            return self._next_expiry_domain()
        if operator in ("<", "<="):
            return self._next_expiry_domain(operator, value)
        if operator in (">", ">="):
            before = "<=" if operator == ">" else "<"
            return self._next_expiry_domain() & ~self._next_expiry_domain(before, value)
        return NotImplemented

    @api.model
    def _next_expiry_domain(self, operator=None, value=None) -> fields.Domain:
        """Rooms with something expiring, as _health_expiries sees it: at all, or
        ``operator`` (< or <=) ``value``."""
        if operator:
            limit = fields.Datetime.to_datetime(value)
            # The compute counts a secret's expiry date from its midnight (UTC).
            last_day = limit if operator == "<=" else limit - timedelta(microseconds=1)
            secret = ("client_secret_expiry", "<=", last_day.date())
            certificate = ("certificate_expiry", operator, limit)
            subscription = ("expiration", operator, limit)
            sign_in = ("last_sync_date", operator, limit - timedelta(days=90))
        else:
            secret = ("client_secret_expiry", "!=", False)
            certificate = ("certificate_expiry", "!=", False)
            subscription = ("expiration", "!=", False)
            sign_in = ("last_sync_date", "!=", False)
        credential = fields.Domain.OR(
            [
                [("credential_type", "=", "secret"), secret],
                [("credential_type", "=", "certificate"), certificate],
            ]
        )
        subscribed = (
            self.env["room.exchange.subscription"]
            .sudo()
            .search([subscription])
            .calendar_id
        )
        delegated = [
            ("auth_mode", "=", "delegated"),
            ("account_id", "!=", False),
            sign_in,
        ]
        return (
            fields.Domain("connection_id", "any", credential)
            | fields.Domain("id", "in", subscribed.ids)
            | fields.Domain(delegated)
        )

    def action_cockpit_reauthorize(self) -> dict:
        self.ensure_one()
        return self._sign_in_action("overview")

    def action_open_binding_errors(self) -> dict:
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_binding_action"
        )
        action.update(
            name=self.env._("Sync errors of %(room)s", room=self.room_id.display_name),
            domain=[
                ("calendar_id", "=", self.id),
                ("sync_state", "in", ("error", "conflict")),
            ],
            context={},
        )
        return action

    def action_open_overlaps(self) -> dict:
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.resource_booking_action_exchange_overlaps"
        )
        action.update(
            name=self.env._("Overlaps of %(room)s", room=self.room_id.display_name),
            domain=self._overlap_domain(),
        )
        return action
