# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Change-notification subscriptions for many rooms: created in committed chunks that
a concurrent sync cannot fail, and reconciled with what Microsoft keeps. Rows are
committed through connections of their own (a test's transaction cannot commit) and
deleted again at the end."""

import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import TransactionCase, tagged

from ..models import room_exchange_subscription
from ..models.room_exchange_subscription import NOTIFICATION_PATH
from .common import (
    APP_ONLY_APP,
    APP_ONLY_SECRET,
    EMULATOR_TENANT,
    EmulatorCaseMixin,
)

ROOMS = 6


class _Endpoint(BaseHTTPRequestHandler):
    """Odoo's webhook as Graph's validation sees it: echoes the token."""

    def do_POST(self):
        token = parse_qs(urlsplit(self.path).query).get("validationToken")
        body = token[0].encode() if token else b""
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet."""


@tagged("post_install", "-at_install")
class TestSubscriptionsAtScale(EmulatorCaseMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_emulator()
        cls.endpoint = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
        threading.Thread(target=cls.endpoint.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.endpoint.server_close)
        cls.addClassCleanup(cls.endpoint.shutdown)
        cls.base = f"http://127.0.0.1:{cls.endpoint.server_address[1]}"

    def real_env(self):
        cr = sql_db.db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(cr.close)
        return api.Environment(cr, SUPERUSER_ID, {})

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.addCleanup(self.emulator.reset)
        self.emulator.scenario.app(APP_ONLY_APP).rbac_scope = None
        env = self.real_env()
        server = self.emulator_server
        connection = env["room.exchange.connection"].create(
            {
                "name": "Subscriptions at scale",
                "cloud": "custom",
                "custom_authority_url": server.base_url,
                "custom_graph_url": server.graph_url,
                "custom_ca_bundle": server.ca_bundle_path,
                "tenant_id": EMULATOR_TENANT,
                "client_id": APP_ONLY_APP,
                "client_secret_input": APP_ONLY_SECRET,
                "auth_mode": "application",
                "notification_url_override": self.base,
            }
        )
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        rooms = env["resource.resource"]
        calendars = env["room.exchange.calendar"]
        for index in range(ROOMS):
            mailbox = f"subscribed.room{index}@contoso.test"
            self.emulator.add_room(mailbox, f"Subscribed room {index}")
            rooms |= rooms.create(
                {
                    "name": f"Subscribed room {index}",
                    "resource_type": "material",
                    "calendar_id": env.ref("resource.resource_calendar_std").id,
                }
            )
            calendars |= calendars.create(
                {
                    "room_id": rooms[-1].id,
                    "connection_id": connection.id,
                    "mailbox": mailbox,
                    "state": "authorized",
                }
            )
        # sync_enabled without the booking set-up records (nothing else to clean).
        env.cr.execute(
            "UPDATE room_exchange_calendar SET sync_enabled = TRUE WHERE id = ANY(%s)",
            [calendars.ids],
        )
        env.cr.commit()
        self.ids = {
            "connection": connection.id,
            "rooms": rooms.ids,
            "calendars": calendars.ids,
        }
        self.addCleanup(self.delete_committed_rows)

    def delete_committed_rows(self):
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '10s'")
            cr.execute(
                "DELETE FROM room_exchange_calendar WHERE id = ANY(%s)",
                [self.ids["calendars"]],
            )
            cr.execute(
                "DELETE FROM resource_resource WHERE id = ANY(%s)", [self.ids["rooms"]]
            )
            cr.execute(
                "DELETE FROM room_exchange_connection WHERE id = %s",
                [self.ids["connection"]],
            )
            # A cursor this test opened itself, to clean up what it committed.
            cr.commit()  # pylint: disable=invalid-commit

    def calendars_in(self, env):
        return env["room.exchange.calendar"].browse(self.ids["calendars"])

    def remote_ids(self):
        return {
            item["id"]
            for item in self.emulator.subscriptions.list(client_id=APP_ONLY_APP)
            if item["notificationUrl"] == self.base + NOTIFICATION_PATH
        }

    def saved_ids(self):
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            cr.execute(
                "SELECT external_id FROM room_exchange_subscription"
                " WHERE calendar_id = ANY(%s)",
                [self.ids["calendars"]],
            )
            return {row[0] for row in cr.fetchall()}

    def test_chunks_survive_a_concurrent_sync(self):
        sync, renewal = self.real_env(), self.real_env()
        renewal.cr.execute("SET lock_timeout = '5s'")
        renewal.cr.execute("SELECT 1")  # the renewal's snapshot begins
        # A sync locks and writes every room, commits, and locks them again: rooms
        # changed since the renewal began, and held while it runs.
        synced = self.calendars_in(sync)._try_lock()
        self.assertEqual(len(synced), ROOMS)
        synced.write({"last_sync_summary": "Synced meanwhile"})
        sync.cr.commit()
        self.assertEqual(len(self.calendars_in(sync)._try_lock()), ROOMS)
        commits = []
        Cron = type(renewal["ir.cron"])
        original = Cron._commit_progress

        def counted(cron, *args, **kwargs):
            commits.append(args)
            return original(cron, *args, **kwargs)

        try:
            with (
                patch.object(room_exchange_subscription, "SUBSCRIPTION_CHUNK", 2),
                patch.object(Cron, "_commit_progress", counted),
            ):
                renewal["room.exchange.subscription"]._cron_renew()
        finally:
            sync.cr.rollback()
            renewal.cr.rollback()
        # Three chunks of two rooms, each committed; all saved, none orphaned.
        self.assertGreaterEqual(len(commits), 3)
        saved = self.saved_ids()
        self.assertEqual(len(saved), ROOMS)
        self.assertEqual(saved, self.remote_ids())

    def test_a_subscription_not_saved_is_deleted_at_microsoft(self):
        env = self.real_env()
        Subscription = type(env["room.exchange.subscription"])
        original = Subscription.create
        calls = []

        def failing_third(model, vals_list):
            calls.append(vals_list)
            if len(calls) == 3:
                raise ValueError("not saved")
            return original(model, vals_list)

        try:
            with patch.object(Subscription, "create", failing_third):
                env["room.exchange.subscription"]._cron_renew()
        finally:
            env.cr.rollback()
        # The third room's subscription was deleted at Microsoft; the others saved.
        self.assertEqual(self.remote_ids(), self.saved_ids())
        self.assertEqual(len(self.saved_ids()), ROOMS - 1)

    def test_reconciliation_deletes_unknown_subscriptions_only(self):
        env = self.real_env()
        env["room.exchange.subscription"]._cron_renew()
        env.cr.commit()
        known = self.saved_ids()
        self.assertEqual(len(known), ROOMS)
        calendar = self.calendars_in(env)[0]
        client = calendar._graph_client()
        lifetime = timedelta(minutes=calendar.connection_id.subscription_minutes)
        now = datetime.utcnow().replace(microsecond=0)

        def subscribe(url, expiration):
            return client.create_subscription(
                calendar.mailbox,
                notification_url=url + NOTIFICATION_PATH,
                lifecycle_url=url + "/lifecycle",
                client_state="left-behind",
                expiration=expiration,
            )["id"]

        # Left behind an hour ago (by a crash before Odoo's commit): deleted.
        orphan = subscribe(self.base, now + lifetime - timedelta(hours=1))
        # Created a minute ago (maybe a renewal not committed yet): kept for now.
        recent = subscribe(self.base, now + lifetime - timedelta(minutes=1))
        # Another database's (another notification URL): never ours to delete.
        other = subscribe(self.base + "/other", now + lifetime - timedelta(hours=1))
        deleted = env["room.exchange.subscription"]._reconcile(calendar.connection_id)
        self.assertEqual(deleted, 1)
        remote = {
            item["id"]
            for item in self.emulator.subscriptions.list(client_id=APP_ONLY_APP)
        }
        self.assertNotIn(orphan, remote)
        self.assertTrue({recent, other} | known <= remote)

    def test_reconciliation_reads_every_page(self):
        env = self.real_env()
        env["room.exchange.subscription"]._cron_renew()
        env.cr.commit()
        calendar = self.calendars_in(env)[0]
        self.emulator.graph.subscriptions_page_size = 2
        self.addCleanup(setattr, self.emulator.graph, "subscriptions_page_size", 100)
        env.cr.execute(
            "DELETE FROM room_exchange_subscription WHERE calendar_id = ANY(%s)",
            [self.ids["calendars"]],
        )
        env.cr.commit()
        # Odoo forgot them all (as after a restore of an older backup) and they
        # were made over an hour ago.
        with patch.object(
            room_exchange_subscription, "RECONCILE_GRACE", timedelta(minutes=-5)
        ):
            deleted = env["room.exchange.subscription"]._reconcile(
                calendar.connection_id
            )
        self.assertEqual(deleted, ROOMS)
        self.assertFalse(self.remote_ids())
