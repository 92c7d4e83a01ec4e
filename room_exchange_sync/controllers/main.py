# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging
import re

from werkzeug.exceptions import Forbidden, NotFound

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request

from ..graph import AuthFlowError, ExchangeSyncError
from ..models.room_exchange_connection import CALLBACK_PATH

_logger = logging.getLogger(__name__)
_QUERY_OF_CALLBACK = re.compile(re.escape(CALLBACK_PATH) + r"\?[^\s\"]*")


class _RedactCallbackQuery(logging.Filter):
    """Keeps the query string of a request to the OAuth callback (a code, should
    anyone send it there with a GET) out of the HTTP access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _QUERY_OF_CALLBACK.sub(CALLBACK_PATH + "?[redacted]", arg)
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


def _install_access_log_filter() -> None:
    werkzeug_logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _RedactCallbackQuery) for f in werkzeug_logger.filters):
        werkzeug_logger.addFilter(_RedactCallbackQuery())


_install_access_log_filter()

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
CALLBACK_FIELDS = ("code", "state", "error", "error_description", "client_info")


class RoomExchangeOAuthController(http.Controller):
    """Microsoft sign-in for a room: start, and the redirect URI's callback."""

    @http.route(
        "/room_exchange_sync/oauth/start", type="http", auth="user", methods=["GET"]
    )
    def oauth_start(self, calendar_id=None, back=None, **_kwargs):
        if not request.env.user.has_group(MANAGER):
            raise Forbidden()
        try:
            calendar = request.env["room.exchange.calendar"].browse(int(calendar_id))
            calendar.check_access("write")
        except (TypeError, ValueError) as error:
            raise NotFound() from error
        if not calendar.exists():
            raise NotFound()
        problem = calendar._sign_in_problem()
        if problem:
            return self._error_page(problem, calendar)
        try:
            auth_uri = request.env["room.exchange.auth.flow"]._start(
                calendar, request.session.sid, back
            )
        except ExchangeSyncError as error:
            return self._error_page(
                calendar.connection_id._graph_error_message(error), calendar
            )
        return request.redirect(auth_uri, local=False)

    @http.route(
        "/room_exchange_sync/oauth/callback",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        sitemap=False,
    )
    def oauth_callback(self, **params):
        """The redirect URI registered in Azure. The sign-in asks Microsoft for
        ``response_mode=form_post``: the code travels in a POST body, never in a URL
        that proxies and access logs keep; a GET is refused (405)."""
        fields = {key: params[key] for key in CALLBACK_FIELDS if key in params}
        if not request.session.uid:
            if request.httprequest.method == "POST" and not params.get("resubmitted"):
                # Microsoft posts the form from its own site, and browsers do not send
                # Odoo's session cookie (SameSite=Lax by default) on such a cross-site
                # POST; posting the same fields again from this page makes the request
                # same-site, so the session comes along.
                return request.render(
                    "room_exchange_sync.oauth_resubmit", {"fields": fields}
                )
            return self._error_page(
                request.env._(
                    "You are not signed in to Odoo in this browser. Sign in to Odoo, "
                    "then click Authorize with Microsoft Account again."
                )
            )
        Flow = request.env["room.exchange.auth.flow"]
        try:
            flow = Flow._from_state(fields.get("state"), request.session.sid)
        except AuthFlowError as error:
            _logger.warning("Exchange sign-in callback refused: %s", error.reason)
            return self._error_page(Flow._refusal_message(error.reason))
        calendar = flow.calendar_id
        if not calendar:
            return self._connection_sign_in_finished(flow, fields)
        try:
            flow._finish(fields)
        except ExchangeSyncError as error:
            _logger.warning(
                "Exchange sign-in for room calendar %s failed: %s",
                calendar.id,
                type(error).__name__,
            )
            return self._error_page(
                calendar.connection_id._graph_error_message(error), calendar
            )
        try:
            calendar._after_sign_in()
        except (ExchangeSyncError, UserError) as error:
            message = (
                calendar.connection_id._graph_error_message(error)
                if isinstance(error, ExchangeSyncError)
                else str(error)
            )
            return self._error_page(message, calendar)
        return request.redirect(calendar._room_form_url(flow.back_to))

    @http.route(
        "/room_exchange_sync/oauth/start_directory",
        type="http",
        auth="user",
        methods=["GET"],
    )
    def oauth_start_directory(self, connection_id=None, **_kwargs):
        """A sign-in for a connection (Rooms from Microsoft 365): the account then
        serves every room mapped from the directory that it may edit."""
        if not request.env.user.has_group(MANAGER):
            raise Forbidden()
        try:
            connection = request.env["room.exchange.connection"].browse(
                int(connection_id)
            )
            connection.check_access("write")
        except (TypeError, ValueError) as error:
            raise NotFound() from error
        if not connection.exists():
            raise NotFound()
        if connection.state != "ready" or connection.auth_mode != "delegated":
            return self._error_page(
                request.env._(
                    "Connection %(name)s is not a ready delegated connection: open it "
                    "and click Test connection.",
                    name=connection.name,
                )
            )
        try:
            auth_uri = request.env["room.exchange.auth.flow"]._start_for_connection(
                connection, request.session.sid
            )
        except ExchangeSyncError as error:
            return self._error_page(connection._graph_error_message(error))
        return request.redirect(auth_uri, local=False)

    def _connection_sign_in_finished(self, flow, fields):
        """Back from a sign-in of a connection: to the connection, whose Rooms from
        Microsoft 365 now uses the account."""
        connection = flow.connection_id
        try:
            flow._finish(fields)
        except ExchangeSyncError as error:
            _logger.warning(
                "Exchange sign-in for connection %s failed: %s",
                connection.id,
                type(error).__name__,
            )
            return self._error_page(connection._graph_error_message(error))
        return request.redirect(f"/odoo/room.exchange.connection/{connection.id}")

    def _error_page(self, message, calendar=None):
        return request.render(
            "room_exchange_sync.oauth_error",
            {
                "message": message,
                "back_url": calendar._room_form_url() if calendar else "/odoo",
                "room": calendar.room_id.sudo().display_name if calendar else False,
            },
        )
