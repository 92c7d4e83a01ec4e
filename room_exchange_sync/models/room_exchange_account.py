# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import hashlib
import logging

from odoo import fields, models

_logger = logging.getLogger(__name__)

SECRET_GROUP = "base.group_system"
# Per process: (database, account id) -> (fingerprint, TokenProvider).
_ACCOUNT_TOKEN_PROVIDERS = {}


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
    home_account_id = fields.Char(
        string="Home account", required=True, readonly=True, copy=False
    )
    username = fields.Char(readonly=True, copy=False)
    display_name_microsoft = fields.Char(
        string="Name at Microsoft", readonly=True, copy=False
    )
    token_cache = fields.Text(
        string="Token cache", groups=SECRET_GROUP, copy=False, prefetch=False
    )
    calendar_ids = fields.One2many("room.exchange.calendar", "account_id")

    _connection_account_uniq = models.Constraint(
        "UNIQUE(connection_id, home_account_id)",
        "This Microsoft account is already connected.",
    )

    def _token_provider(self):
        """A TokenProvider loaded with this account's token cache.

        It is kept per account in this process while the stored cache and the
        connection's settings stay the same, so that a sync round reuses MSAL's
        cached access token instead of a discovery request; a cache another worker
        refreshed meanwhile is picked up from the database.
        """
        self.ensure_one()
        cache_state = self.sudo().token_cache or None
        fingerprint = self._provider_fingerprint(cache_state)
        key = (self.env.cr.dbname, self.id)
        cached = _ACCOUNT_TOKEN_PROVIDERS.get(key)
        if cached is None or cached[0] != fingerprint:
            provider = self.connection_id._token_provider(cache_state=cache_state)
            cached = (fingerprint, provider)
            _ACCOUNT_TOKEN_PROVIDERS[key] = cached
        return cached[1]

    def _provider_fingerprint(self, cache_state):
        cache_hash = hashlib.sha256((cache_state or "").encode()).hexdigest()
        return (self.connection_id._token_settings_fingerprint(), cache_hash)

    def _save_token_cache(self, provider):
        """Persist the cache when MSAL changed it: refresh tokens rotate on each use."""
        if provider.cache_changed:
            cache_state = provider.serialize_cache()
            self.sudo().token_cache = cache_state
            _ACCOUNT_TOKEN_PROVIDERS[(self.env.cr.dbname, self.id)] = (
                self._provider_fingerprint(cache_state),
                provider,
            )

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
            _ACCOUNT_TOKEN_PROVIDERS.pop((self.env.cr.dbname, account.id), None)
        unused.sudo().unlink()
