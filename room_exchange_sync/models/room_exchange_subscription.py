# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import consteq

from ..graph import GraphError, GraphNotFound

_logger = logging.getLogger(__name__)

NOTIFICATION_PATH = "/room_exchange_sync/graph/notifications"
LIFECYCLE_PATH = "/room_exchange_sync/graph/lifecycle"


class RoomExchangeSubscription(models.Model):
    """A Graph change-notification subscription on one room mailbox (app-only).

    Notifications only wake the sync up early; polling stays the safety net.
    """

    _name = "room.exchange.subscription"
    _description = "Exchange change notification subscription"
    _rec_name = "calendar_id"

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="calendar_id.company_id", store=True)
    external_id = fields.Char(string="Subscription ID", readonly=True, index=True)
    client_state = fields.Char(
        string="Client state", groups="base.group_system", copy=False
    )
    expiration = fields.Datetime(readonly=True)
    last_notification_date = fields.Datetime(string="Last notification", readonly=True)

    _calendar_uniq = models.Constraint(
        "UNIQUE(calendar_id)", "A room calendar has one subscription."
    )

    @api.model
    def _cron_renew(self):
        """Create, renew or recreate the subscriptions of app-only rooms that sync,
        and drop those of rooms that no longer do."""
        calendars = self.env["room.exchange.calendar"].search(
            [("sync_enabled", "=", True), ("state", "in", ("authorized", "syncing"))]
        )
        wanted = calendars.filtered(lambda c: c.connection_id._notification_base_url())
        wanted -= wanted.browse(list(wanted._company_problems()))
        (self.search([]).filtered(lambda s: s.calendar_id not in wanted))._drop()
        for calendar in wanted:
            try:
                with self.env.cr.savepoint():
                    self._ensure_for(calendar)
            except GraphError as error:
                _logger.warning(
                    "Room calendar %s: change notifications unavailable (%s)",
                    calendar.id,
                    type(error).__name__,
                )

    @api.model
    def _ensure_for(self, calendar):
        subscription = self.search([("calendar_id", "=", calendar.id)])
        connection = calendar.connection_id
        lifetime = timedelta(minutes=connection.subscription_minutes)
        now = fields.Datetime.now()
        client = calendar._graph_client()
        if subscription.external_id:
            if subscription.expiration - now > lifetime / 2:
                return subscription
            try:
                answer = client.renew_subscription(
                    subscription.external_id, now + lifetime
                )
            except GraphNotFound:
                _logger.info(
                    "Room calendar %s: subscription gone, new one", calendar.id
                )
            else:
                subscription.expiration = _naive(answer.get("expirationDateTime"))
                return subscription
        subscription.unlink()
        client_state = secrets.token_urlsafe(32)
        base = connection._notification_base_url()
        answer = client.create_subscription(
            calendar.mailbox,
            notification_url=base + NOTIFICATION_PATH,
            lifecycle_url=base + LIFECYCLE_PATH,
            client_state=client_state,
            expiration=now + lifetime,
        )
        _logger.info("Room calendar %s: change notifications on", calendar.id)
        return self.sudo().create(
            {
                "calendar_id": calendar.id,
                "external_id": answer["id"],
                "client_state": client_state,
                "expiration": _naive(answer.get("expirationDateTime")),
            }
        )

    @api.model
    def _receive(self, notifications):
        """Trust only notifications whose clientState matches their subscription."""
        by_id = {
            subscription.external_id: subscription
            for subscription in self.search(
                [
                    (
                        "external_id",
                        "in",
                        [str(n.get("subscriptionId")) for n in notifications],
                    )
                ]
            )
        }
        to_sync = self.env["room.exchange.calendar"]
        ignored = 0
        for notification in notifications:
            subscription = by_id.get(str(notification.get("subscriptionId")))
            given = str(notification.get("clientState") or "")
            if not subscription or not consteq(given, subscription.client_state or ""):
                ignored += 1
                continue
            subscription.last_notification_date = fields.Datetime.now()
            to_sync |= subscription._lifecycle(notification.get("lifecycleEvent"))
        if ignored:
            # One line per request, however many notifications it carried.
            _logger.warning(
                "Graph notifications ignored: %s of %s with an unknown subscription "
                "or a wrong clientState",
                ignored,
                len(notifications),
            )
        to_sync._request_sync()

    def _lifecycle(self, event):
        """React to a lifecycle event; return the calendars to sync."""
        calendar = self.calendar_id
        if event in ("reauthorizationRequired", "subscriptionRemoved"):
            # Renewal (or re-creation) happens in the renewal cron, outside the 3 s
            # Graph gives this request; the notifications missed meanwhile are caught
            # by the sync itself.
            self.expiration = fields.Datetime.now()
            if event == "subscriptionRemoved":
                self.external_id = False
            self.env.ref(
                "room_exchange_sync.ir_cron_room_exchange_subscriptions"
            )._trigger()
        if event == "missed":
            calendar.sudo().delta_link = False
        return calendar

    def _drop(self):
        for subscription in self:
            try:
                subscription.calendar_id._graph_client().delete_subscription(
                    subscription.external_id
                )
            except (GraphError, UserError) as error:
                # A connection that is not Ready is never used (its endpoints may
                # have moved): the subscription expires at Microsoft by itself.
                _logger.info(
                    "Subscription %s not deleted at Microsoft (%s)",
                    subscription.id,
                    type(error).__name__,
                )
        self.unlink()


def _naive(text):
    """Graph's ISO date (``...Z``, 7 fractional digits) as a naive UTC datetime."""
    return fields.Datetime.to_datetime((text or "")[:19].replace("T", " ")) or False
