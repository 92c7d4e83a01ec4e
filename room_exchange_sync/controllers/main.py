# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging

from werkzeug.exceptions import Forbidden, NotFound

from odoo import http
from odoo.http import request

from ..graph import AuthFlowError, ExchangeSyncError

_logger = logging.getLogger(__name__)

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
        methods=["GET", "POST"],
        csrf=False,
        sitemap=False,
    )
    def oauth_callback(self, **params):
        """The redirect URI registered in Azure (response_mode=form_post)."""
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
        calendar._after_sign_in()
        return request.redirect(calendar._room_form_url(flow.back_to))

    def _error_page(self, message, calendar=None):
        return request.render(
            "room_exchange_sync.oauth_error",
            {
                "message": message,
                "back_url": calendar._room_form_url() if calendar else "/odoo",
                "room": calendar.room_id.sudo().display_name if calendar else False,
            },
        )
