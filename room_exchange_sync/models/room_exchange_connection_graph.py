# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""How a connection reaches Microsoft: the connection test, MSAL tokens, Graph
clients, and Graph failures in plain words."""

import functools
import hashlib
import logging

from odoo import models

from ..graph import (
    GraphAuthError,
    GraphClient,
    GraphConfigurationError,
    GraphError,
    GraphPermissionError,
    GraphRetryableError,
    TokenProvider,
)
from ..graph.http import shared_session
from .room_exchange_connection import _APP_TOKEN_PROVIDERS, ConnectionNotReady

_logger = logging.getLogger(__name__)

# One number rather than a (connect, read) pair: Odoo's test harness, which wraps
# requests during tests, compares the timeout with an int.
GRAPH_TIMEOUT = 60.0


class RoomExchangeConnection(models.Model):
    _inherit = "room.exchange.connection"  # pylint: disable=consider-merging-classes-inherited

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

    def action_test_connection(self) -> dict:
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

    def _check_with_microsoft(self) -> str:
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

    def _token_provider(self, cache_state=None) -> TokenProvider:
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

    def _graph_client(self, token_source) -> GraphClient:
        self.ensure_one()
        return GraphClient(
            graph_url=self._endpoints().graph_url,
            token_source=token_source,
            session=shared_session(),
            verify=self._tls_verify(),
            timeout=GRAPH_TIMEOUT,
        )

    def _app_graph_client(self) -> GraphClient:
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

    def _token_settings_fingerprint(self) -> str:
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

    def _tls_verify(self) -> str | bool:
        bundle = self.sudo().custom_ca_bundle
        return bundle if self.cloud == "custom" and bundle else True

    def _graph_error_message(self, error) -> str:
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
