# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import hashlib
import json
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import consteq
from odoo.tools.misc import hmac

from ..graph import AuthFlowError

_logger = logging.getLogger(__name__)

HMAC_SCOPE = "room_exchange_sync.oauth"
FLOW_LIFETIME = timedelta(minutes=10)
SECRET_GROUP = "base.group_system"


def session_fingerprint(session_id):
    """What is stored of the browser session: a hash, never the session id itself."""
    return hashlib.sha256((session_id or "").encode()).hexdigest()


class RoomExchangeAuthFlow(models.Model):
    """A Microsoft sign-in in progress for one room.

    MSAL's flow (PKCE verifier, nonce) stays on the server. The ``state`` sent to
    Microsoft is ``<id>.<expiry>.<hmac>``: the HMAC binds it to this record, the room,
    the Odoo user and the browser session, so a tampered, replayed, expired or foreign
    callback is refused before MSAL sees it.
    """

    _name = "room.exchange.auth.flow"
    _description = "Microsoft sign-in in progress"
    _order = "id desc"

    calendar_id = fields.Many2one(
        "room.exchange.calendar", ondelete="cascade", index=True
    )
    connection_id = fields.Many2one(
        "room.exchange.connection",
        ondelete="cascade",
        index=True,
        help="Set for a sign-in started from Rooms from Microsoft 365 (no room): the "
        "account then serves the rooms mapped from the directory.",
    )
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade")
    session_hash = fields.Char(string="Session hash", required=True)
    flow_data = fields.Text(string="Flow data", groups=SECRET_GROUP)
    expires_at = fields.Datetime(string="Expires at", required=True)
    done = fields.Boolean()
    back_to = fields.Selection(
        [("room", "The room"), ("overview", "The rooms overview")],
        string="Back to",
        default="room",
        required=True,
        help="Where the admin started the sign-in, and returns to.",
    )

    _room_or_connection = models.Constraint(
        "CHECK(calendar_id IS NOT NULL OR connection_id IS NOT NULL)",
        "A Microsoft sign-in is for a room or for a connection.",
    )

    @api.model
    def _start(self, calendar, session_id, back_to="room"):
        """Create the flow; return the Microsoft sign-in URL for the browser."""
        flow = self.sudo().create(
            {
                "calendar_id": calendar.id,
                "user_id": self.env.uid,
                "session_hash": session_fingerprint(session_id),
                "expires_at": fields.Datetime.now() + FLOW_LIFETIME,
                "back_to": back_to if back_to == "overview" else "room",
            }
        )
        connection = calendar.connection_id
        provider = connection._token_provider()
        msal_flow = provider.start_sign_in(
            connection.redirect_uri,
            state=flow._state_token(),
            login_hint=calendar.account_id.username or None,
        )
        flow.flow_data = json.dumps(msal_flow)
        _logger.info("Exchange sign-in started for room calendar %s", calendar.id)
        return msal_flow["auth_uri"]

    @api.model
    def _start_for_connection(self, connection, session_id):
        """A sign-in for ``connection`` rather than a room (Rooms from Microsoft
        365); return the Microsoft sign-in URL for the browser."""
        flow = self.sudo().create(
            {
                "connection_id": connection.id,
                "user_id": self.env.uid,
                "session_hash": session_fingerprint(session_id),
                "expires_at": fields.Datetime.now() + FLOW_LIFETIME,
            }
        )
        msal_flow = connection._token_provider().start_sign_in(
            connection.redirect_uri, state=flow._state_token()
        )
        flow.flow_data = json.dumps(msal_flow)
        _logger.info("Exchange sign-in started for connection %s", connection.id)
        return msal_flow["auth_uri"]

    def _signature(self, expiry):
        return hmac(
            self.env(su=True),
            HMAC_SCOPE,
            (
                self.id,
                expiry,
                self.calendar_id.id,
                self.user_id.id,
                self.session_hash,
                *((self.connection_id.id,) if self.connection_id else ()),
            ),
        )

    def _state_token(self):
        self.ensure_one()
        expiry = int(self.expires_at.timestamp())
        return f"{self.id}.{expiry}.{self._signature(expiry)}"

    @api.model
    def _from_state(self, state, session_id):
        """The pending flow a callback's ``state`` designates, checked.

        Raises AuthFlowError with reason ``malformed``, ``unknown``, ``tampered``,
        ``foreign`` (another user or browser session), ``replayed`` or ``expired``.
        """
        try:
            flow_id, expiry, signature = (state or "").split(".")
            flow_id, expiry = int(flow_id), int(expiry)
        except ValueError as error:
            raise AuthFlowError("malformed") from error
        flow = self.sudo().browse(flow_id).exists()
        if not flow:
            raise AuthFlowError("unknown")
        if not consteq(signature, flow._signature(expiry)):
            raise AuthFlowError("tampered")
        if flow.user_id.id != self.env.uid or not consteq(
            flow.session_hash, session_fingerprint(session_id)
        ):
            raise AuthFlowError("foreign")
        if flow.done:
            raise AuthFlowError("replayed")
        now = fields.Datetime.now()
        if int(flow.expires_at.timestamp()) != expiry or flow.expires_at < now:
            raise AuthFlowError("expired")
        return flow

    def _finish(self, auth_response):
        """Redeem the authorization code through MSAL; attach the account to the room.

        Returns the room calendar (empty for a sign-in of a connection). Raises
        AuthFlowError or a GraphError; in both cases no token is stored.
        """
        self.ensure_one()
        self.done = True
        calendar = self.calendar_id
        connection = calendar.connection_id or self.connection_id
        provider = connection._token_provider()
        signed_in = provider.finish_sign_in(json.loads(self.flow_data), auth_response)
        Account = self.env["room.exchange.account"].sudo()
        account = Account.search(
            [
                ("connection_id", "=", connection.id),
                ("home_account_id", "=", signed_in.home_account_id),
            ],
            limit=1,
        ) or Account.create(
            {
                "connection_id": connection.id,
                "home_account_id": signed_in.home_account_id,
            }
        )
        account.write(
            {
                "username": signed_in.username,
                "display_name_microsoft": signed_in.name,
                "token_cache": provider.serialize_cache(),
            }
        )
        if not calendar:
            _logger.info(
                "Exchange sign-in finished for connection %s (account %s)",
                connection.id,
                account.id,
            )
            return calendar
        previous = calendar.account_id
        calendar.sudo().account_id = account
        if previous != account:
            previous._forget_if_unused()
        _logger.info(
            "Exchange sign-in finished for room calendar %s (account %s)",
            calendar.id,
            account.id,
        )
        return calendar

    @api.model
    def _refusal_message(self, reason):
        messages = {
            "malformed": self.env._(
                "This sign-in answer is not one Odoo started (its state is malformed)."
            ),
            "unknown": self.env._("This sign-in is unknown or was already cleaned up."),
            "tampered": self.env._(
                "This sign-in answer was altered on its way back (state signature "
                "mismatch)."
            ),
            "foreign": self.env._(
                "This sign-in was started by another user or in another browser "
                "session; start it again from the room."
            ),
            "replayed": self.env._("This sign-in answer was already used."),
            "expired": self.env._(
                "This sign-in took too long and expired; start it again from the room."
            ),
        }
        return messages.get(reason, messages["malformed"])

    @api.autovacuum
    def _gc_expired_flows(self):
        self.sudo().search(
            [("expires_at", "<", fields.Datetime.now() - timedelta(hours=1))]
        ).unlink()
