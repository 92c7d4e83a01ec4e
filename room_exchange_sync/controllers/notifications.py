# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import json
import logging

from odoo import http
from odoo.http import request

from ..models.room_exchange_subscription import LIFECYCLE_PATH, NOTIFICATION_PATH

_logger = logging.getLogger(__name__)


class RoomExchangeNotificationController(http.Controller):
    """Microsoft Graph change and lifecycle notifications.

    Graph drops a notification that is not answered within 3 seconds, so nothing here
    calls Graph: a valid notification only wakes the sync cron of its room up.
    """

    @http.route(
        [NOTIFICATION_PATH, LIFECYCLE_PATH],
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        sitemap=False,
        save_session=False,
    )
    def graph_notification(self, validationToken=None, **_kwargs):
        if validationToken is not None:
            # The subscription handshake: echo the (already URL-decoded) token as
            # plain text, nothing else.
            return request.make_response(
                validationToken, headers=[("Content-Type", "text/plain")]
            )
        try:
            notifications = json.loads(request.httprequest.get_data() or b"{}")["value"]
        except (ValueError, KeyError, TypeError):
            return request.make_response("", status=400)
        if not isinstance(notifications, list) or not all(
            isinstance(notification, dict) for notification in notifications
        ):
            return request.make_response("", status=400)
        request.env["room.exchange.subscription"].sudo()._receive(notifications)
        return request.make_response("", status=202)
