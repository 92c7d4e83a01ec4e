# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import consteq, split_every

from ..graph import GraphError, GraphNotFound

_logger = logging.getLogger(__name__)

NOTIFICATION_PATH = "/room_exchange_sync/graph/notifications"
LIFECYCLE_PATH = "/room_exchange_sync/graph/lifecycle"
RENEW_CRON = "room_exchange_sync.ir_cron_room_exchange_subscriptions"
# Rooms subscribed per committed step of the renewal cron.
SUBSCRIPTION_CHUNK = 20
# Unknown subscriptions younger than this are left to the next reconciliation.
RECONCILE_GRACE = timedelta(minutes=15)


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
        and drop those of rooms that no longer do, in committed chunks (Microsoft
        answers each creation only after a round trip to our endpoint: thousands of
        rooms take minutes, and must never be one transaction). A run that reaches
        its time limit is run again by Odoo and goes on with the rooms still to do.
        Once every room is done, subscriptions of ours at Microsoft that Odoo does
        not know are deleted (``_reconcile``)."""
        Cron = self.env["ir.cron"]
        calendars = self.env["room.exchange.calendar"].search(
            [("sync_enabled", "=", True), ("state", "in", ("authorized", "syncing"))]
        )
        wanted = calendars.filtered(lambda c: c.connection_id._notification_base_url())
        wanted -= wanted.browse(list(wanted._company_problems()))
        unwanted = self.search([("calendar_id", "not in", wanted.ids)])
        to_do = self._to_subscribe(wanted)
        left = len(unwanted) + len(to_do)
        for chunk in split_every(SUBSCRIPTION_CHUNK, unwanted.ids, self.browse):
            chunk._drop()
            left -= len(chunk)
            if not Cron._commit_progress(len(chunk), remaining=left):
                return
        done = 0
        for chunk in split_every(SUBSCRIPTION_CHUNK, to_do.ids, to_do.browse):
            for calendar in chunk:
                try:
                    with self.env.cr.savepoint():
                        self._ensure_for(calendar)
                except GraphError as error:
                    _logger.warning(
                        "Room calendar %s: change notifications unavailable (%s)",
                        calendar.id,
                        type(error).__name__,
                    )
                except Exception:  # noqa: BLE001 - one room never stops the others
                    _logger.warning(
                        "Room calendar %s: subscription not saved, tried again at "
                        "the next run",
                        calendar.id,
                        exc_info=True,
                    )
            done += len(chunk)
            if not Cron._commit_progress(len(chunk), remaining=len(to_do) - done):
                # Odoo runs the job again once its cron threads look for jobs:
                # a trigger due now notifies them.
                self.env.ref(RENEW_CRON).sudo()._trigger()
                return
        for connection in wanted.connection_id:
            self._reconcile(connection)
            Cron._commit_progress()

    @api.model
    def _to_subscribe(self, calendars):
        """The rooms of ``calendars`` without a subscription, or with one to renew
        (at half its lifetime)."""
        now = fields.Datetime.now()
        fresh = self.browse()
        for subscription in self.search([("calendar_id", "in", calendars.ids)]):
            minutes = subscription.calendar_id.connection_id.subscription_minutes
            if (
                subscription.external_id
                and subscription.expiration
                and subscription.expiration - now > timedelta(minutes=minutes) / 2
            ):
                fresh |= subscription
        return calendars - fresh.calendar_id

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
        try:
            with self.env.cr.savepoint():
                subscription = self.sudo().create(
                    {
                        "calendar_id": calendar.id,
                        "external_id": answer["id"],
                        "client_state": client_state,
                        "expiration": _naive(answer.get("expirationDateTime")),
                    }
                )
        except Exception:
            # Not saved (e.g. the room changed meanwhile): never leave it behind
            # at Microsoft, the next run subscribes again.
            self._delete_at_microsoft(client, answer["id"])
            raise
        _logger.info("Room calendar %s: change notifications on", calendar.id)
        return subscription

    @api.model
    def _reconcile(self, connection):
        """Delete the subscriptions of ours (this database's notification URL) that
        Microsoft keeps and Odoo does not know: left behind by a crash between
        Microsoft's answer and Odoo's commit, or by an older version. The app lists
        the subscriptions it created (GET /subscriptions, every page); one created
        in the last minutes may belong to a renewal not yet committed, and is left
        to the next run."""
        base = connection._notification_base_url()
        calendar = self.env["room.exchange.calendar"].search(
            [("connection_id", "=", connection.id)], limit=1
        )
        if not base or not calendar:
            return 0
        client = calendar._graph_client()
        known = set(
            self.with_context(active_test=False)
            .search([("external_id", "!=", False)])
            .mapped("external_id")
        )
        lifetime = timedelta(minutes=connection.subscription_minutes)
        # A subscription created less than this long ago may be a renewal's.
        created_before = fields.Datetime.now() - RECONCILE_GRACE
        deleted = 0
        try:
            remote = list(client.iter_subscriptions())
        except GraphError as error:
            _logger.warning(
                "Connection %s: subscriptions not listed (%s)",
                connection.id,
                type(error).__name__,
            )
            return 0
        for item in remote:
            expiration = _naive(item.get("expirationDateTime"))
            if (
                item.get("notificationUrl") != base + NOTIFICATION_PATH
                or item.get("id") in known
                or not expiration
                or expiration - lifetime > created_before
            ):
                continue
            deleted += self._delete_at_microsoft(client, item["id"])
        if deleted:
            _logger.info(
                "Connection %s: %s unknown subscriptions deleted at Microsoft",
                connection.id,
                deleted,
            )
        return deleted

    @api.model
    def _delete_at_microsoft(self, client, subscription_id):
        """Delete one subscription at Microsoft; whether it went (or was gone)."""
        try:
            client.delete_subscription(subscription_id)
        except GraphNotFound:
            return True
        except GraphError as error:
            _logger.warning(
                "Subscription %s not deleted at Microsoft (%s)",
                subscription_id,
                type(error).__name__,
            )
            return False
        return True

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
            self.env.ref(RENEW_CRON)._trigger()
        if event == "missed":
            calendar.sudo().delta_link = False
        return calendar

    def _drop(self):
        for subscription in self.filtered("external_id"):
            try:
                client = subscription.calendar_id._graph_client()
            except (GraphError, UserError) as error:
                # A connection that is not Ready is never used (its endpoints may
                # have moved): the subscription expires at Microsoft by itself.
                _logger.info(
                    "Subscription %s not deleted at Microsoft (%s)",
                    subscription.id,
                    type(error).__name__,
                )
                continue
            self._delete_at_microsoft(client, subscription.external_id)
        self.unlink()


def _naive(text):
    """Graph's ISO date (``...Z``, 7 fractional digits) as a naive UTC datetime."""
    return fields.Datetime.to_datetime((text or "")[:19].replace("T", " ")) or False
