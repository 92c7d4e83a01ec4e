# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Graph change notifications: subscriptions, the handshake, and what Odoo trusts."""

import json
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import HttpCase, tagged

from ..models.room_exchange_subscription import NOTIFICATION_PATH
from .common import ADELE, ROOM_ADAMS, RoomExchangeCase


@tagged("post_install", "-at_install")
class TestChangeNotifications(RoomExchangeCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application")
        self.connection.notification_url_override = self.base_url()
        self.room.write({"exchange_connection_id": self.connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.sync_cron = self.env.ref("room_exchange_sync.ir_cron_room_exchange_sync")
        self.Subscription = self.env["room.exchange.subscription"]

    def renew(self):
        self.env.flush_all()
        # The renewal commits each chunk (ir.cron._commit_progress commits outside
        # a cron run), which a test transaction cannot: a no-op here.
        Cron = type(self.env["ir.cron"])
        with (
            self.allow_requests(all_requests=True),
            patch.object(Cron, "_commit_progress", lambda *a, **kw: float("inf")),
        ):
            self.Subscription._cron_renew()
        return self.Subscription.search([("calendar_id", "=", self.calendar.id)])

    def deliver(self):
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.emulator.subscriptions.flush(timeout=10)
        self.env.invalidate_all()

    def sync_triggers(self):
        return self.env["ir.cron.trigger"].search_count(
            [("cron_id", "=", self.sync_cron.id)]
        )

    def test_subscription_after_a_real_handshake(self):
        subscription = self.renew()
        self.assertTrue(subscription.external_id)
        (remote,) = self.emulator.subscriptions.list()
        self.assertEqual(remote["id"], subscription.external_id)
        self.assertEqual(remote["notificationUrl"], self.base_url() + NOTIFICATION_PATH)
        self.assertEqual(remote["resource"], f"/users/{ROOM_ADAMS}/events")
        self.assertGreater(subscription.expiration, fields.Datetime.now())

    def test_outlook_change_wakes_the_sync_up(self):
        subscription = self.renew()
        self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.sync_cron.id)]
        ).unlink()
        before = self.sync_triggers()
        start = datetime.now().replace(microsecond=0) + timedelta(days=3)
        self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            "Notified meeting",
            start.isoformat(),
            (start + timedelta(hours=1)).isoformat(),
        )
        self.deliver()
        self.assertGreater(self.sync_triggers(), before)
        self.assertTrue(subscription.last_notification_date)
        deliveries = self.emulator.subscriptions.deliveries()
        self.assertTrue(any(d.get("status") == 202 for d in deliveries), deliveries)

    def test_wrong_client_state_is_ignored(self):
        subscription = self.renew()
        before = self.sync_triggers()
        forged = {
            "value": [
                {
                    "subscriptionId": subscription.external_id,
                    "clientState": "guessed",
                    "changeType": "updated",
                    "resource": "Users/x/Events/y",
                }
            ]
        }
        with self.assertLogs(
            "odoo.addons.room_exchange_sync.models.room_exchange_subscription",
            level="WARNING",
        ):
            answer = self.url_open(
                NOTIFICATION_PATH,
                data=json.dumps(forged),
                headers={"Content-Type": "application/json"},
            )
        self.assertEqual(answer.status_code, 202)
        self.assertEqual(self.sync_triggers(), before)
        self.assertFalse(subscription.last_notification_date)

    def test_validation_handshake_echoes_the_token(self):
        answer = self.url_open(
            NOTIFICATION_PATH + "?validationToken=a%20b%2Bc%3Cd", data=b"x"
        )
        self.assertEqual(answer.status_code, 200)
        self.assertEqual(answer.text, "a b+c<d")
        self.assertTrue(answer.headers["Content-Type"].startswith("text/plain"))

    def test_garbage_is_refused_without_traceback(self):
        answer = self.url_open(NOTIFICATION_PATH, data=b"{not json")
        self.assertEqual(answer.status_code, 400)
        self.assertNotIn("Traceback", answer.text)

    def test_missed_notifications_force_a_full_round(self):
        subscription = self.renew()
        self.calendar._sync()
        self.assertTrue(self.calendar.sudo().delta_link)
        self.emulator.subscriptions.send_lifecycle(subscription.external_id, "missed")
        self.deliver()
        self.assertFalse(self.calendar.sudo().delta_link)

    def test_removed_subscription_is_recreated(self):
        subscription = self.renew()
        old_id = subscription.external_id
        self.emulator.subscriptions.send_lifecycle(old_id, "subscriptionRemoved")
        self.deliver()
        renewed = self.renew()
        self.assertTrue(renewed.external_id)
        self.assertNotEqual(renewed.external_id, old_id)

    def test_renewed_well_before_expiry(self):
        subscription = self.renew()
        subscription.expiration = fields.Datetime.now() + timedelta(hours=1)
        renewed = self.renew()
        self.assertEqual(renewed, subscription)
        self.assertGreater(
            renewed.expiration, fields.Datetime.now() + timedelta(hours=24)
        )

    def test_delegated_rooms_are_polled_only(self):
        self.connection.auth_mode = "delegated"
        self.assertFalse(self.connection._notification_base_url())
        self.assertFalse(self.renew())
