# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging

from odoo import fields, models

_logger = logging.getLogger(__name__)

SECRET_GROUP = "base.group_system"


class RoomExchangeAccount(models.Model):
    """A Microsoft account that signed in (delegated mode), with its MSAL token cache.

    One account may serve many rooms; its tokens are deleted when no room uses it.
    """

    _name = "room.exchange.account"
    _description = "Microsoft account for room sync"
    _order = "username, id"
    _rec_name = "username"

    connection_id = fields.Many2one(
        "room.exchange.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True)
    home_account_id = fields.Char(required=True, readonly=True, copy=False)
    username = fields.Char(readonly=True, copy=False)
    display_name_microsoft = fields.Char(
        string="Name at Microsoft", readonly=True, copy=False
    )
    token_cache = fields.Text(groups=SECRET_GROUP, copy=False, prefetch=False)
    calendar_ids = fields.One2many("room.exchange.calendar", "account_id")

    _connection_account_uniq = models.Constraint(
        "UNIQUE(connection_id, home_account_id)",
        "This Microsoft account is already connected.",
    )

    def _token_provider(self):
        """A TokenProvider loaded with this account's token cache."""
        self.ensure_one()
        return self.connection_id._token_provider(
            cache_state=self.sudo().token_cache or None
        )

    def _save_token_cache(self, provider):
        """Persist the cache when MSAL changed it: refresh tokens rotate on each use."""
        if provider.cache_changed:
            self.sudo().token_cache = provider.serialize_cache()

    def _access_token(self, force_refresh=False):
        """A valid access token for this account; saves the rotated refresh token.

        ``force_refresh`` skips the cached access token (Graph said it is no longer
        valid, e.g. after a revocation). Raises GraphAuthError when the account must
        sign in again.
        """
        self.ensure_one()
        provider = self._token_provider()
        try:
            return provider.access_token(
                self.home_account_id, force_refresh=force_refresh
            )
        finally:
            self._save_token_cache(provider)

    def _forget_if_unused(self):
        """Delete accounts (and their tokens) that no room uses any more."""
        unused = self.filtered(lambda account: not account.calendar_ids)
        for account in unused:
            _logger.info("Exchange account %s: unused, tokens deleted", account.id)
        unused.sudo().unlink()
