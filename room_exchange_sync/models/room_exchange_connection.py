# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A Microsoft 365 connection: one tenant reached through one Entra ID app
registration, its settings, and what changing them does.

The connection's other concerns are ``_inherit`` extensions of the same model:
reaching Microsoft (room_exchange_connection_graph.py), its credentials
(room_exchange_connection_credentials.py), the checks of its settings
(room_exchange_connection_checks.py), its health (room_exchange_connection_health.py)
and its room directory (room_exchange_connection_directory.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..graph import CloudEndpoints, cloud_endpoints

if TYPE_CHECKING:
    from odoo.orm.types import Self

_logger = logging.getLogger(__name__)

CALLBACK_PATH = "/room_exchange_sync/oauth/callback"
SECRET_GROUP = "base.group_system"
# Per process: (database, connection id) -> (settings fingerprint, TokenProvider).
_APP_TOKEN_PROVIDERS = {}
# Where the credentials go: changing one of these sends them to another host.
ENDPOINT_FIELDS = frozenset({"cloud", "custom_authority_url", "custom_graph_url"})
# Settings whose change puts a Ready connection back to Draft, to be tested again.
DRAFT_ON_CHANGE = ENDPOINT_FIELDS | {
    "custom_ca_bundle",
    "tenant_id",
    "client_id",
    "auth_mode",
    "credential_type",
    "client_secret_input",
    "private_key_input",
    "certificate_pem",
    "certificate_thumbprint",
}


class ConnectionNotReady(UserError):
    """A connection that is not Ready was asked to reach Microsoft."""


class RoomExchangeConnection(models.Model):
    """One Microsoft 365 tenant reached through one Entra ID app registration."""

    _name = "room.exchange.connection"
    _description = "Microsoft 365 connection for room sync"
    _inherit = ["mail.thread"]
    _order = "name, id"

    name = fields.Char(
        required=True,
        tracking=True,
        help="A name for this connection, shown on the rooms that use it, e.g. the "
        "organisation's name.",
    )
    active = fields.Boolean(
        default=True,
        help="Archive the connection to hide it; its rooms keep their settings.",
    )
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        help="The company whose rooms may use this connection (by default the "
        "current one). Empty: all companies.",
    )
    cloud = fields.Selection(
        [
            ("global", "Global (Microsoft 365)"),
            ("usgov_high", "US Government GCC High"),
            ("usgov_dod", "US Government DoD"),
            ("china", "China (operated by 21Vianet)"),
            ("custom", "Custom endpoints"),
        ],
        default="global",
        required=True,
        tracking=True,
        help="The Microsoft cloud of the tenant. It decides where people sign in "
        "(the Entra ID authority) and which Microsoft Graph endpoint is called. "
        "GCC (moderate) tenants use Global.",
    )
    custom_authority_url = fields.Char(
        string="Custom authority host",
        help="https URL of the Entra ID (or compatible) sign-in host, without the "
        "tenant, e.g. https://login.example.test. Used only with the Custom cloud.",
    )
    custom_graph_url = fields.Char(
        string="Custom Graph URL",
        help="https URL of the Microsoft Graph endpoint, e.g. "
        "https://graph.example.test. "
        "Used only with the Custom cloud.",
    )
    custom_ca_bundle = fields.Char(
        string="Custom CA bundle",
        groups=SECRET_GROUP,
        help="Path, on the Odoo server, of a PEM file of certificate authorities to "
        "trust for the custom endpoints (a private or test CA). Empty: the system's "
        "trusted authorities.",
    )
    places_enabled = fields.Boolean(
        string="Pick rooms from the directory",
        help="Offer the tenant's room mailboxes (Microsoft Graph Places API) when a "
        "room's calendar is chosen. Needs the Place.Read.All permission with admin "
        "consent.",
    )
    conflict_policy = fields.Selection(
        [
            ("origin", "The side that created the booking wins"),
            ("odoo", "Odoo wins"),
            ("exchange", "Exchange wins"),
        ],
        string="Conflict policy",
        default="origin",
        required=True,
        help="When a booking was changed both in Odoo and in Outlook since the last "
        "sync, whose change is kept. The overwritten values are posted on the "
        "booking's chatter.",
    )
    sync_past_days = fields.Integer(
        string="Sync days back",
        default=7,
        help="Meetings that ended more than this many days ago are not synced.",
    )
    sync_future_days = fields.Integer(
        string="Sync days ahead",
        default=365,
        help="Meetings starting further ahead than this are not synced yet; the "
        "window moves forward every day.",
    )
    time_zone_names = fields.Selection(
        [("windows", "Windows names"), ("iana", "IANA names")],
        string="Time zone names",
        default="windows",
        required=True,
        help="How time zones are written into Exchange events. Microsoft documents "
        "Windows names (e.g. Romance Standard Time); IANA names (Europe/Paris) are "
        "not confirmed to be accepted everywhere.",
    )
    notification_url_override = fields.Char(
        string="Notification base URL",
        groups=SECRET_GROUP,
        help="Public https address at which Microsoft Graph reaches this Odoo for "
        "change notifications (application mode only). Empty: web.base.url. Without "
        "a public https address, rooms are polled only.",
    )
    subscription_minutes = fields.Integer(
        string="Subscription lifetime (minutes)",
        default=4230,
        help="How long each change-notification subscription is requested for; it is "
        "renewed at half its lifetime. Microsoft's documented maximum for Outlook "
        "events is either 4230 or 10080 minutes depending on the page version.",
    )
    authority_url = fields.Char(string="Authority URL", compute="_compute_endpoints")
    graph_url = fields.Char(string="Graph URL", compute="_compute_endpoints")
    tenant_id = fields.Char(
        required=True,
        tracking=True,
        help="Directory (tenant) ID of the Microsoft 365 organisation (a GUID, shown "
        "on the app registration's Overview page), or one of its verified domains "
        "such as contoso.onmicrosoft.com.",
    )
    client_id = fields.Char(
        string="Application (client) ID",
        required=True,
        tracking=True,
        help="The Application (client) ID of the app registration in Microsoft "
        "Entra ID (a GUID).",
    )
    auth_mode = fields.Selection(
        [
            ("delegated", "Delegated: a person signs in for each room"),
            ("application", "Application: app-only access for the whole tenant"),
        ],
        string="Authentication mode",
        default="delegated",
        required=True,
        tracking=True,
        help="Delegated: an admin clicks Authorize with Microsoft Account on each "
        "room and signs in with an account that the room calendar is shared with "
        "(permission Calendars.ReadWrite.Shared). Application: the app itself "
        "reaches the room mailboxes (application permission Calendars.ReadWrite, "
        "scoped to room mailboxes with Exchange RBAC for Applications); no per-room "
        "sign-in, and change notifications become possible.",
    )
    credential_type = fields.Selection(
        [("secret", "Client secret"), ("certificate", "Certificate")],
        string="Credential type",
        default="secret",
        required=True,
        tracking=True,
        help="How Odoo proves to Entra ID that it is the app: a client secret, or "
        "a certificate whose public part is uploaded to the app registration "
        "(recommended by Microsoft for production).",
    )
    client_secret = fields.Char(
        string="Stored client secret", groups=SECRET_GROUP, copy=False, prefetch=False
    )
    client_secret_input = fields.Char(
        string="Client secret",
        compute="_compute_secret_inputs",
        inverse="_inverse_client_secret_input",
        help="The secret's Value (not its ID) from Certificates & secrets. It is "
        "stored write-only: it is never shown again.",
    )
    has_client_secret = fields.Boolean(
        string="Secret stored",
        compute="_compute_secret_inputs",
        help="A client secret is stored. Paste a new Value to replace it.",
    )
    private_key = fields.Text(
        string="Stored private key", groups=SECRET_GROUP, copy=False, prefetch=False
    )
    private_key_input = fields.Text(
        string="Private key",
        compute="_compute_secret_inputs",
        inverse="_inverse_private_key_input",
        help="The certificate's private key in PEM format "
        "(-----BEGIN PRIVATE KEY-----). "
        "A PEM file holding both the key and the certificate may be pasted as a "
        "whole. Stored write-only.",
    )
    has_private_key = fields.Boolean(
        string="Private key stored",
        compute="_compute_secret_inputs",
        help="A private key is stored. Paste a new one to replace it.",
    )
    certificate_pem = fields.Text(
        string="Certificate",
        copy=False,
        help="The public certificate (PEM) that was uploaded to the app "
        "registration. It is used to check the thumbprint and its expiry.",
    )
    certificate_thumbprint = fields.Char(
        string="Certificate thumbprint",
        compute="_compute_certificate_info",
        store=True,
        readonly=False,
        copy=False,
        help="The certificate's thumbprint as the Azure portal shows it (SHA-1, "
        "hexadecimal). It is read from the certificate; a value typed here must "
        "match it.",
    )
    certificate_expiry = fields.Datetime(
        string="Certificate expires on",
        compute="_compute_certificate_info",
        store=True,
        copy=False,
        help="When the certificate expires, read from it. Exchange sync managers get "
        "a to-do 30 days before; upload a new certificate to the app registration "
        "and here in time.",
    )
    redirect_uri_override = fields.Char(
        string="Redirect URI override",
        help="Leave empty to use this database's web.base.url. Set it when Odoo is "
        "reached through another public address than web.base.url.",
    )
    redirect_uri = fields.Char(
        string="Redirect URI",
        compute="_compute_redirect_uri",
        help="Register exactly this URI as a Web redirect URI of the app "
        "registration (Authentication page).",
    )
    state = fields.Selection(
        [("draft", "Draft"), ("ready", "Ready"), ("error", "Error")],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    last_error = fields.Text(string="Last error", readonly=True, copy=False)
    calendar_ids = fields.One2many("room.exchange.calendar", "connection_id")
    room_count = fields.Integer(string="Rooms", compute="_compute_room_count")

    @api.depends("cloud", "custom_authority_url", "custom_graph_url", "tenant_id")
    def _compute_endpoints(self) -> None:
        for connection in self:
            endpoints = connection._endpoints()
            connection.authority_url = (
                endpoints.authority_url((connection.tenant_id or "").strip())
                if endpoints
                else False
            )
            connection.graph_url = endpoints.graph_url if endpoints else False

    @api.depends("redirect_uri_override")
    def _compute_redirect_uri(self) -> None:
        for connection in self:
            connection.redirect_uri = (
                connection.redirect_uri_override
                or connection.get_base_url().rstrip("/") + CALLBACK_PATH
            )

    def _compute_room_count(self) -> None:
        counts = dict(
            self.env["room.exchange.calendar"]._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for connection in self:
            connection.room_count = counts.get(connection, 0)

    def write(self, vals) -> bool:
        moved = self._endpoints_moved_by_non_admin(vals)
        result = super().write(vals)
        if moved:
            moved._forget_credentials(keep_pasted=vals)
        if DRAFT_ON_CHANGE & set(vals) and "state" not in vals:
            self.filtered(lambda c: c.state == "ready").write({"state": "draft"})
        return result

    def _endpoints_moved_by_non_admin(self, vals) -> Self:
        """The connections whose endpoints ``vals`` moves, when the writer may not
        read their secret: whoever points a secret at a new host must paste it."""
        if self.env.su or self.env.user.has_group(SECRET_GROUP):
            return self.browse()
        changed = ENDPOINT_FIELDS & set(vals)
        return self.filtered(
            lambda connection: any(
                connection._fields[name].convert_to_cache(vals[name], connection)
                != connection[name]
                for name in changed
            )
        )

    def _forget_credentials(self, keep_pasted=()) -> None:
        """Delete the stored client secret and private key (unless ``keep_pasted``
        holds new ones) and the signed-in accounts' tokens of these connections."""
        values = {}
        if not keep_pasted or "client_secret_input" not in keep_pasted:
            values["client_secret"] = False
        if not keep_pasted or "private_key_input" not in keep_pasted:
            values["private_key"] = False
        sudo = self.sudo()
        sudo.write(values)
        accounts = sudo.env["room.exchange.account"].search(
            [("connection_id", "in", self.ids)]
        )
        accounts.write({"token_cache": False})
        for connection in self:
            _APP_TOKEN_PROVIDERS.pop((self.env.cr.dbname, connection.id), None)
        _logger.info(
            "Exchange connections %s: endpoints changed, stored credentials deleted",
            self.ids,
        )

    def action_open_rooms(self) -> dict:
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_calendar_action"
        )
        action.update(
            name=self.env._("Rooms of %(name)s", name=self.name),
            domain=[("connection_id", "=", self.id)],
            context={"default_connection_id": self.id},
        )
        return action

    def _notification_base_url(self) -> str | bool:
        """Where Graph can post change notifications, or False to poll only.

        Graph requires a public https URL; custom (test or sovereign) endpoints are
        trusted to decide for themselves.
        """
        self.ensure_one()
        if self.auth_mode != "application" or self.state != "ready":
            return False
        base = (self.sudo().notification_url_override or self.get_base_url()).rstrip(
            "/"
        )
        if base.startswith("https://") or self.cloud == "custom":
            return base
        return False

    def _endpoints(self) -> CloudEndpoints | None:
        """The cloud endpoints, or None while a custom cloud lacks its URLs."""
        self.ensure_one()
        try:
            return cloud_endpoints(
                self.cloud, self.custom_authority_url, self.custom_graph_url
            )
        except (KeyError, ValueError):
            return None

    def _notification(self, title, message, kind) -> dict:
        """A toast, then the screen reloaded: the button that returns it leaves the
        form or list showing the state it produced, not the one before."""
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": kind,
                "sticky": kind == "danger",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
