# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import functools
import hashlib
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..graph import (
    CredentialError,
    GraphAuthError,
    GraphClient,
    GraphConfigurationError,
    GraphError,
    GraphPermissionError,
    GraphRetryableError,
    TokenProvider,
    check_https_url,
    cloud_endpoints,
    inspect_certificate,
    is_guid,
    is_tenant_id,
    load_certificate_credential,
)
from ..graph.http import shared_session
from .room_directory import check_manager

_logger = logging.getLogger(__name__)

CALLBACK_PATH = "/room_exchange_sync/oauth/callback"
SECRET_GROUP = "base.group_system"
# Per process: (database, connection id) -> (settings fingerprint, TokenProvider).
_APP_TOKEN_PROVIDERS = {}
# One number rather than a (connect, read) pair: Odoo's test harness, which wraps
# requests during tests, compares the timeout with an int.
GRAPH_TIMEOUT = 60.0
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
    def _compute_endpoints(self):
        for connection in self:
            endpoints = connection._endpoints()
            connection.authority_url = (
                endpoints.authority_url((connection.tenant_id or "").strip())
                if endpoints
                else False
            )
            connection.graph_url = endpoints.graph_url if endpoints else False

    @api.depends_context("uid")
    def _compute_secret_inputs(self):
        stored = {
            record.id: record
            for record in self.sudo().with_context(active_test=False).filtered("id")
        }
        for connection in self:
            connection.client_secret_input = False
            connection.private_key_input = False
            secret_holder = stored.get(connection.id)
            connection.has_client_secret = bool(
                secret_holder and secret_holder.client_secret
            )
            connection.has_private_key = bool(
                secret_holder and secret_holder.private_key
            )

    def _inverse_client_secret_input(self):
        for connection in self:
            secret = (connection.client_secret_input or "").strip()
            if secret:
                connection.sudo().client_secret = secret

    def _inverse_private_key_input(self):
        for connection in self:
            pasted = connection.private_key_input
            if not pasted:
                continue
            info = connection._check_certificate(
                pasted,
                connection.certificate_pem or pasted,
                connection.certificate_thumbprint,
            )
            connection.sudo().private_key = info.private_key_pem
            connection.certificate_pem = info.certificate_pem

    @api.depends("certificate_pem")
    def _compute_certificate_info(self):
        for connection in self:
            try:
                info = inspect_certificate(connection.certificate_pem or "")
            except CredentialError:
                connection.certificate_expiry = False
                continue
            connection.certificate_thumbprint = info.thumbprint
            connection.certificate_expiry = info.not_after

    @api.depends("redirect_uri_override")
    def _compute_redirect_uri(self):
        for connection in self:
            connection.redirect_uri = (
                connection.redirect_uri_override
                or connection.get_base_url().rstrip("/") + CALLBACK_PATH
            )

    def _compute_room_count(self):
        counts = dict(
            self.env["room.exchange.calendar"]._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for connection in self:
            connection.room_count = counts.get(connection, 0)

    @api.constrains("sync_past_days", "sync_future_days")
    def _check_sync_window(self):
        for connection in self:
            if not 0 <= connection.sync_past_days <= 365:
                raise ValidationError(
                    self.env._("Sync days back must be between 0 and 365.")
                )
            if not 1 <= connection.sync_future_days <= 1095:
                raise ValidationError(
                    self.env._(
                        "Sync days ahead must be between 1 and 1095: Exchange refuses "
                        "calendar windows much longer than that."
                    )
                )

    @api.constrains("tenant_id")
    def _check_tenant_id(self):
        for connection in self:
            if not is_tenant_id(connection.tenant_id):
                raise ValidationError(
                    self.env._(
                        "The tenant of connection %(name)s must be the Directory "
                        "(tenant) ID, a GUID such as "
                        "72f988bf-86f1-41af-91ab-2d7cd011db47, or a verified domain "
                        "such as contoso.onmicrosoft.com; %(value)r is neither.",
                        name=connection.name,
                        value=connection.tenant_id,
                    )
                )

    @api.constrains("client_id")
    def _check_client_id(self):
        for connection in self:
            if not is_guid(connection.client_id):
                raise ValidationError(
                    self.env._(
                        "The Application (client) ID of connection %(name)s must be "
                        "a GUID as shown on the app registration's Overview page; "
                        "%(value)r is not.",
                        name=connection.name,
                        value=connection.client_id,
                    )
                )

    @api.constrains("cloud", "custom_authority_url", "custom_graph_url")
    def _check_custom_endpoints(self):
        for connection in self.filtered(lambda c: c.cloud == "custom"):
            for label, url in (
                (self.env._("authority host"), connection.custom_authority_url),
                (self.env._("Graph URL"), connection.custom_graph_url),
            ):
                try:
                    check_https_url(url)
                except CredentialError as error:
                    raise ValidationError(
                        self.env._(
                            "The custom %(label)s of connection %(name)s must be an "
                            "https URL with a host name; %(value)r is not.",
                            label=label,
                            name=connection.name,
                            value=url or "",
                        )
                    ) from error

    @api.constrains("redirect_uri_override")
    def _check_redirect_uri_override(self):
        for connection in self.filtered("redirect_uri_override"):
            uri = connection.redirect_uri_override
            # Entra ID accepts plain http only for localhost redirect URIs.
            local = uri.startswith(("http://localhost", "http://127.0.0.1"))
            try:
                check_https_url(uri) if not local else None
            except CredentialError as error:
                raise ValidationError(
                    self.env._(
                        "The redirect URI of connection %(name)s must be an https URL "
                        "(plain http is accepted by Microsoft only for localhost); "
                        "%(value)r is not.",
                        name=connection.name,
                        value=uri,
                    )
                ) from error

    @api.constrains("certificate_pem", "certificate_thumbprint")
    def _check_certificate_pem(self):
        for connection in self.filtered("certificate_pem"):
            connection._check_certificate(
                connection.sudo().private_key,
                connection.certificate_pem,
                connection.certificate_thumbprint,
            )

    def write(self, vals):
        moved = self._endpoints_moved_by_non_admin(vals)
        result = super().write(vals)
        if moved:
            moved._forget_credentials(keep_pasted=vals)
        if DRAFT_ON_CHANGE & set(vals) and "state" not in vals:
            self.filtered(lambda c: c.state == "ready").write({"state": "draft"})
        return result

    def _endpoints_moved_by_non_admin(self, vals):
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

    def _forget_credentials(self, keep_pasted=()):
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

    def _check_ready(self) -> None:
        """Refuse to reach Microsoft through a connection that is not Ready: its
        endpoints or credentials changed since its last successful test."""
        for connection in self:
            if connection.state != "ready":
                raise ConnectionNotReady(
                    self.env._(
                        "Connection %(name)s is not ready: open it and click Test "
                        "connection.",
                        name=connection.name,
                    )
                )

    def action_test_connection(self):
        self.ensure_one()
        self.check_access("write")
        problems = self._configuration_problems()
        if not problems:
            try:
                summary = self._check_with_microsoft()
            except GraphError as error:
                problems = [self._graph_error_message(error)]
        if problems:
            message = "\n".join(problems)
            self.write({"state": "error", "last_error": message})
            return self._notification(
                self.env._("Connection test failed"), message, "danger"
            )
        self.write({"state": "ready", "last_error": False})
        _logger.info("Exchange connection %s: test succeeded", self.id)
        return self._notification(
            self.env._("Connection test succeeded"), summary, "success"
        )

    def _check_with_microsoft(self):
        """Get an app token and, where possible, make one Graph call.

        Returns a sentence for the admin; raises GraphError.
        """
        provider = self._token_provider()
        provider.access_token(None)
        if self.auth_mode == "delegated":
            return self.env._(
                "Microsoft accepted the app's credentials for tenant %(tenant)s. "
                "Authorize each room with a Microsoft account to finish.",
                tenant=self.tenant_id,
            )
        client = self._graph_client(lambda: provider.access_token(None))
        if self.places_enabled:
            rooms = list(client.iter_rooms(page_size=100))
            return self.env._(
                "Microsoft accepted the app's credentials; %(count)s room mailboxes "
                "are visible in the directory.",
                count=len(rooms),
            )
        mailbox = self.calendar_ids.filtered("mailbox")[:1].mailbox
        if mailbox:
            client.get_calendar(mailbox)
            return self.env._(
                "Microsoft accepted the app's credentials and the calendar of "
                "%(mailbox)s is reachable.",
                mailbox=mailbox,
            )
        return self.env._(
            "Microsoft accepted the app's credentials. Choose a room mailbox on a room "
            "to check calendar access."
        )

    def action_open_rooms(self):
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

    def _token_provider(self, cache_state=None):
        """MSAL access for this app registration; ``cache_state`` is a serialized
        token cache (one per signed-in account)."""
        self.ensure_one()
        endpoints = self._endpoints()
        sudo = self.sudo()
        if self.credential_type == "certificate":
            credential = {
                "private_key": sudo.private_key or "",
                "thumbprint": self.certificate_thumbprint or "",
            }
        else:
            credential = sudo.client_secret or ""
        return TokenProvider(
            client_id=self.client_id.strip(),
            authority=endpoints.authority_url(self.tenant_id.strip()),
            credential=credential,
            graph_resource=endpoints.graph_host,
            verify=self._tls_verify(),
            cache_state=cache_state,
            places=self.places_enabled,
        )

    def _graph_client(self, token_source):
        self.ensure_one()
        return GraphClient(
            graph_url=self._endpoints().graph_url,
            token_source=token_source,
            session=shared_session(),
            verify=self._tls_verify(),
            timeout=GRAPH_TIMEOUT,
        )

    def _app_graph_client(self):
        """A Graph client with app-only tokens (application mode).

        The token provider is kept per connection in this process while the settings
        stay the same: MSAL then serves its cached app token, instead of a discovery
        request and a new token on every sync round.
        """
        settings = self._token_settings_fingerprint()
        key = (self.env.cr.dbname, self.id)
        cached = _APP_TOKEN_PROVIDERS.get(key)
        if cached is None or cached[0] != settings:
            cached = (settings, self._token_provider())
            _APP_TOKEN_PROVIDERS[key] = cached
        return self._graph_client(functools.partial(cached[1].access_token, None))

    def _token_settings_fingerprint(self):
        sudo = self.sudo()
        sudo.fetch(["client_secret", "private_key"])
        values = (
            self.client_id,
            self.tenant_id,
            self.authority_url,
            self.graph_url,
            self.credential_type,
            sudo.client_secret,
            sudo.private_key,
            self.certificate_thumbprint,
            sudo.custom_ca_bundle,
            self.places_enabled,
        )
        return hashlib.sha256(repr(values).encode()).hexdigest()

    def _tls_verify(self):
        bundle = self.sudo().custom_ca_bundle
        return bundle if self.cloud == "custom" and bundle else True

    def _graph_error_message(self, error):
        """What failed at Microsoft and what to do, in plain words; Microsoft's own
        text (an AADSTS code and its description) and the Graph request-id follow,
        each on a line of its own."""
        message = error.message if isinstance(error, GraphError) else str(error)
        detail = getattr(error, "detail", None)
        if isinstance(error, GraphAuthError) and message.startswith("AADSTS"):
            message, detail = (
                self.env._("Microsoft did not accept the sign-in"),
                message,
            )
        if isinstance(error, GraphConfigurationError):
            text = self.env._(
                "Microsoft refused the app registration of %(name)s: %(detail)s",
                name=self.name,
                detail=message,
            )
        elif isinstance(error, GraphAuthError):
            text = self.env._("Microsoft sign-in failed: %(detail)s", detail=message)
        elif isinstance(error, GraphPermissionError):
            text = self.env._(
                "Microsoft Graph denied access: %(detail)s", detail=message
            )
        elif isinstance(error, GraphRetryableError):
            text = self.env._(
                "Microsoft could not be reached or is busy (%(detail)s); try again "
                "in a few minutes.",
                detail=message,
            )
        else:
            text = message
        lines = [text]
        if detail:
            lines.append(self.env._("Microsoft's answer: %(detail)s", detail=detail))
        request_id = getattr(error, "request_id", None)
        if request_id:
            lines.append(self.env._("Graph request-id: %(id)s", id=request_id))
        return "\n".join(lines)

    def _notification_base_url(self):
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

    def _endpoints(self):
        """The cloud endpoints, or None while a custom cloud lacks its URLs."""
        self.ensure_one()
        try:
            return cloud_endpoints(
                self.cloud, self.custom_authority_url, self.custom_graph_url
            )
        except (KeyError, ValueError):
            return None

    def _configuration_problems(self):
        """Sentences naming what keeps this connection from working, if anything."""
        self.ensure_one()
        problems = []
        if not self._endpoints():
            problems.append(
                self.env._("The custom cloud needs an authority host and a Graph URL.")
            )
        if self.credential_type == "secret" and not self.has_client_secret:
            problems.append(
                self.env._(
                    "No client secret is set: create one under Certificates & "
                    "secrets in the app registration and paste its Value."
                )
            )
        if self.credential_type == "certificate":
            if not self.has_private_key:
                problems.append(
                    self.env._("No private key is set for the certificate credential.")
                )
            elif (
                self.certificate_expiry
                and self.certificate_expiry < fields.Datetime.now()
            ):
                problems.append(
                    self.env._(
                        "The certificate expired on %(date)s: upload a new one to "
                        "the app registration and here.",
                        date=self.certificate_expiry,
                    )
                )
        return problems

    def _check_certificate(self, key_pem, certificate_pem, thumbprint):
        """Parse a certificate credential (or the certificate alone when no key is
        given) and return its CertificateInfo, or raise a ValidationError saying why."""
        try:
            if key_pem:
                return load_certificate_credential(key_pem, certificate_pem, thumbprint)
            return inspect_certificate(certificate_pem, thumbprint)
        except CredentialError as error:
            raise ValidationError(
                self.env._(
                    "Connection %(name)s: %(message)s",
                    name=self.name,
                    message=self._credential_error_message(error),
                )
            ) from error

    def _credential_error_message(self, error):
        messages = {
            "no_private_key": self.env._(
                "No private key was found: paste the PEM block that starts with "
                "-----BEGIN PRIVATE KEY----- (unencrypted)."
            ),
            "bad_private_key": self.env._(
                "The private key could not be read; it must be an unencrypted PEM "
                "private key."
            ),
            "no_certificate": self.env._(
                "No certificate was found: paste the public certificate (PEM block "
                "-----BEGIN CERTIFICATE-----) that was uploaded to the app "
                "registration."
            ),
            "bad_certificate": self.env._(
                "The certificate is not a valid PEM certificate."
            ),
            "key_mismatch": self.env._(
                "The private key does not belong to the certificate."
            ),
            "bad_thumbprint": self.env._(
                "The thumbprint must be the 40 hexadecimal characters shown in the "
                "Azure portal."
            ),
            "thumbprint_mismatch": self.env._(
                "The thumbprint does not match the certificate, whose thumbprint is "
                "%(actual)s.",
                actual=error.detail,
            ),
        }
        return messages.get(error.reason, error.reason)

    def _notification(self, title, message, kind):
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

    # Sync health cockpit and alerts (issue 8) ------------------------------------

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
        help="Rooms of this connection that sync, with bookings in error or "
        "conflict, cancellations waiting or a stale last sync.",
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

    def _compute_room_health_counts(self):
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

    def action_open_room_health(self):
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

    def action_test_connection_logged(self):
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

    def _health_problems(self):
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

    # Rooms from the Microsoft 365 directory (models/room_directory.py) ------------

    def action_open_room_directory(self):
        """The *Rooms from Microsoft 365* screen of this connection."""
        self.ensure_one()
        check_manager(self.env)
        return self.env["room.exchange.directory"]._action_start(self)

    def _directory_account(self):
        """The Microsoft account that reads the directory in delegated mode: the one
        that signed in (or refreshed its sign-in) most recently."""
        self.ensure_one()
        if self.auth_mode != "delegated":
            return self.env["room.exchange.account"]
        return self.env["room.exchange.account"].search(
            [("connection_id", "=", self.id)],
            order="write_date desc, id desc",
            limit=1,
        )

    def _directory_listing(self):
        """{lower-case mailbox: DirectoryRoom} of the connection's directory, or
        None when it cannot be read now (logged; the daily job tries again)."""
        self.ensure_one()
        try:
            client = self._directory_client(self._directory_account())
            rooms = client.list_directory_rooms()
        except (GraphError, UserError) as error:
            _logger.warning(
                "Directory refresh of connection %s: the directory was not read (%s)",
                self.id,
                type(error).__name__,
            )
            return None
        return {room.mailbox.lower(): room for room in rooms}

    def _directory_client(self, account=None):
        """A Graph client for the directory and the rooms' checks: the app's, or the
        account's (delegated). Raises UserError when none can be made."""
        self.ensure_one()
        if self.state != "ready":
            raise UserError(
                self.env._(
                    "Connection %(name)s is not ready: open it and click Test "
                    "connection.",
                    name=self.name,
                )
            )
        if not self.places_enabled:
            raise UserError(
                self.env._(
                    "Connection %(name)s may not read the room directory: grant the "
                    "app the Place.Read.All permission (with admin consent), then "
                    "tick Pick rooms from the directory on the connection.",
                    name=self.name,
                )
            )
        if self.auth_mode == "application":
            return self._app_graph_client()
        if not account:
            raise UserError(
                self.env._(
                    "Sign in with a Microsoft account that may edit the room "
                    "calendars first (Sign in with Microsoft)."
                )
            )
        return self._graph_client(account._access_token)
