# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A connection's health: its rooms counted by health, its chatter history of
connection tests, and the expiries of its secret and certificate that the daily
health check watches."""

from datetime import date

from odoo import fields, models


class RoomExchangeConnection(models.Model):
    _inherit = "room.exchange.connection"  # pylint: disable=consider-merging-classes-inherited

    client_secret_expiry = fields.Date(
        string="Client secret expires on",
        tracking=True,
        copy=False,
        help="The Expires date that the Azure portal shows for the client secret "
        "(Certificates & secrets). Microsoft does not tell it to Odoo: enter it "
        "here so that Exchange managers get a to-do 30 days before the secret "
        "expires. Update it whenever you paste a new secret.",
    )
    room_healthy_count = fields.Integer(
        string="Healthy rooms",
        compute="_compute_room_health_counts",
        help="Rooms of this connection that sync without problems.",
    )
    room_degraded_count = fields.Integer(
        string="Degraded rooms",
        compute="_compute_room_health_counts",
        help="Rooms of this connection that sync, with bookings in error, in "
        "conflict or overlapping a meeting, cancellations waiting or a stale last "
        "sync.",
    )
    room_broken_count = fields.Integer(
        string="Broken rooms",
        compute="_compute_room_health_counts",
        help="Rooms of this connection in error or waiting for a new sign-in.",
    )
    room_waiting_count = fields.Integer(
        string="Rooms not synced yet",
        compute="_compute_room_health_counts",
        help="Rooms of this connection that are authorized and wait for their first "
        "sync.",
    )
    room_not_configured_count = fields.Integer(
        string="Rooms not configured",
        compute="_compute_room_health_counts",
        help="Rooms of this connection that do not sync yet.",
    )

    def _compute_room_health_counts(self) -> None:
        counts = {
            (connection, health): count
            for connection, health, count in self.env[
                "room.exchange.calendar"
            ]._read_group(
                [("connection_id", "in", self._origin.ids)],
                ["connection_id", "health"],
                ["__count"],
            )
        }
        for connection in self:
            origin = connection._origin
            connection.room_healthy_count = counts.get((origin, "healthy"), 0)
            connection.room_degraded_count = counts.get((origin, "degraded"), 0)
            connection.room_broken_count = counts.get((origin, "broken"), 0)
            connection.room_waiting_count = counts.get((origin, "waiting"), 0)
            connection.room_not_configured_count = counts.get(
                (origin, "not_configured"), 0
            )

    def action_open_room_health(self) -> dict:
        """The rooms overview of this connection, limited to the health named by
        the button's context (``health``), if any."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_calendar_action_cockpit"
        )
        domain = [("connection_id", "=", self.id)]
        health = self.env.context.get("health")
        if health:
            domain.append(("health", "=", health))
        action.update(
            name=self.env._("Rooms of %(name)s", name=self.name),
            domain=domain,
            context={"default_connection_id": self.id},
        )
        return action

    def action_test_connection_logged(self) -> dict:
        """Test connection, keeping the result in the chatter as its history."""
        self.ensure_one()
        result = self.action_test_connection()
        params = result.get("params") or {}
        self.message_post(
            body=self.env._(
                "%(title)s: %(message)s",
                title=params.get("title"),
                message=params.get("message") or "",
            ),
            subtype_xmlid="mail.mt_note",
        )
        return result

    def _health_problems(self) -> list[tuple[str, str | bool, date]]:
        """(summary, note or False, deadline) of each expiry the daily health check
        watches on this connection; a False note means no alert is due."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        soon = fields.Date.add(today, days=30)
        secret_expiry = (
            self.active
            and self.credential_type == "secret"
            and self.client_secret_expiry
        )
        secret_note = (
            secret_expiry
            and secret_expiry <= soon
            and self.env._(
                "The client secret of connection %(name)s expires on %(date)s. Create "
                "a new secret under Certificates & secrets of the app registration, "
                "paste its Value on the connection and update its expiry date.",
                name=self.name,
                date=secret_expiry,
            )
        )
        certificate_expiry = (
            self.active
            and self.credential_type == "certificate"
            and self.certificate_expiry
        )
        certificate_note = (
            certificate_expiry
            and certificate_expiry.date() <= soon
            and self.env._(
                "The certificate of connection %(name)s expires on %(date)s. Upload "
                "a new certificate to the app registration and paste it, with its "
                "private key, on the connection.",
                name=self.name,
                date=certificate_expiry,
            )
        )
        return [
            (
                self.env._("Renew the client secret of %(name)s", name=self.name),
                secret_note,
                min(secret_expiry or today, soon),
            ),
            (
                self.env._("Renew the certificate of %(name)s", name=self.name),
                certificate_note,
                min(certificate_expiry.date() if certificate_expiry else today, soon),
            ),
        ]
