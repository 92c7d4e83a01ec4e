# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What a connection's settings must be: the constraints on them, and the
problems that keep a connection from working."""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..graph import CredentialError, check_https_url, is_guid, is_tenant_id


class RoomExchangeConnection(models.Model):
    _inherit = "room.exchange.connection"  # pylint: disable=consider-merging-classes-inherited

    @api.constrains("sync_past_days", "sync_future_days")
    def _check_sync_window(self) -> None:
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
    def _check_tenant_id(self) -> None:
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
    def _check_client_id(self) -> None:
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
    def _check_custom_endpoints(self) -> None:
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
    def _check_redirect_uri_override(self) -> None:
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
    def _check_certificate_pem(self) -> None:
        for connection in self.filtered("certificate_pem"):
            connection._check_certificate(
                connection.sudo().private_key,
                connection.certificate_pem,
                connection.certificate_thumbprint,
            )

    def _configuration_problems(self) -> list[str]:
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
