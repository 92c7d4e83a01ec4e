# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A connection's credentials: the write-only client secret and private key, and
the certificate read and checked."""

from odoo import api, models
from odoo.exceptions import ValidationError

from ..graph import (
    CertificateInfo,
    CredentialError,
    inspect_certificate,
    load_certificate_credential,
)


class RoomExchangeConnection(models.Model):
    _inherit = "room.exchange.connection"  # pylint: disable=consider-merging-classes-inherited

    @api.depends_context("uid")
    def _compute_secret_inputs(self) -> None:
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

    def _inverse_client_secret_input(self) -> None:
        for connection in self:
            secret = (connection.client_secret_input or "").strip()
            if secret:
                connection.sudo().client_secret = secret

    def _inverse_private_key_input(self) -> None:
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
    def _compute_certificate_info(self) -> None:
        for connection in self:
            try:
                info = inspect_certificate(connection.certificate_pem or "")
            except CredentialError:
                connection.certificate_expiry = False
                continue
            connection.certificate_thumbprint = info.thumbprint
            connection.certificate_expiry = info.not_after

    def _check_certificate(
        self, key_pem, certificate_pem, thumbprint
    ) -> CertificateInfo:
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

    def _credential_error_message(self, error) -> str:
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
