# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Secrets never go where a non-admin can point them (issue 14).

An Exchange sync manager who is not a Settings administrator cannot read the
client secret or the refresh tokens. Here such a manager, through JSON-RPC, points
each place a secret or a token is sent to at a host he controls (a capturing HTTPS
listener whose certificate the connection trusts, which answers as a willing
accomplice would) and clicks what sends them: nothing secret ever reaches it.
"""

import json

from odoo.tests import HttpCase, JsonRpcException, tagged

from tests.capturing_listener import CapturingListener

from .common import (
    ADELE,
    APP_ONLY_SECRET,
    DELEGATED_APP,
    DELEGATED_SECRET,
    ROOM_ADAMS,
    RoomExchangeCase,
)

ROOM_BAKER = "room.baker@contoso.test"


@tagged("post_install", "-at_install")
class TestSecretEndpoints(RoomExchangeCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.listener = CapturingListener().start()
        cls.addClassCleanup(cls.listener.stop)
        # The listener's certificate is as valid as a public one would be.
        cls.bundle = cls.listener.bundle_with(cls.emulator_server.ca_bundle_path)

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.listener.requests.clear()
        # The crons run in the test transaction (outside a cron, it would commit).
        self.patch(type(self.env["ir.cron"]), "_commit_progress", lambda *a, **k: 1e9)
        self.delegated = self.ready_connection(
            "delegated", custom_ca_bundle=self.bundle
        )
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(
            self.delegated.redirect_uri
        )
        self.app_only = self.ready_connection(
            "application", custom_ca_bundle=self.bundle
        )
        self.room.write({"exchange_connection_id": self.delegated.id})
        self.delegated_calendar = self.room.exchange_calendar_id
        self.sign_in(self.delegated_calendar)
        self.delegated_calendar._bind_mailbox(ROOM_ADAMS)
        self.room_b = self.room.copy({"name": "Beta"})
        self.room_b.write({"exchange_connection_id": self.app_only.id})
        self.app_calendar = self.room_b.exchange_calendar_id
        self.app_calendar._bind_mailbox(ROOM_BAKER)
        self.assertTrue(self.app_calendar._sync(), self.app_calendar.last_error)
        self.refresh_token = self.stored_refresh_token()
        self.assertTrue(self.refresh_token)
        self.listener.requests.clear()

    def sign_in(self, calendar):
        import requests

        from tests.emulator.people import sign_in

        microsoft = requests.Session()
        microsoft.trust_env = False
        microsoft.verify = self.emulator_server.ca_bundle_path
        Flow = self.env["room.exchange.auth.flow"].with_user(self.manager)
        auth_uri = Flow._start(calendar.with_user(self.manager), "test-session")
        _url, fields = sign_in(microsoft, auth_uri, *ADELE)
        flow = Flow._from_state(fields["state"], "test-session")
        flow._finish(fields)

    def stored_refresh_token(self):
        cache = json.loads(self.delegated_calendar.account_id.sudo().token_cache)
        return next(iter(cache["RefreshToken"].values()))["secret"]

    def as_manager(self, model, method, args):
        """``method`` over JSON-RPC as an Exchange manager (no Settings admin)."""
        self.assertFalse(self.manager.has_group("base.group_system"))
        self.authenticate("exchange_manager", "exchange_manager")
        try:
            return self.make_jsonrpc_request(
                f"/web/dataset/call_kw/{model}/{method}",
                {"model": model, "method": method, "args": args, "kwargs": {}},
            )
        except JsonRpcException as error:
            return str(error)

    def assert_nothing_secret_reached_the_listener(self):
        text = self.listener.text()
        for secret in (DELEGATED_SECRET, APP_ONLY_SECRET, self.refresh_token):
            self.assertNotIn(secret, text)
        self.assertNotIn("Bearer", text, "an access token reached the listener")
        self.assertNotIn("client_assertion", text)

    def test_authority_moved_then_test_connection(self):
        self.as_manager(
            "room.exchange.connection",
            "write",
            [self.delegated.ids, {"custom_authority_url": self.listener.url}],
        )
        self.delegated.invalidate_recordset()
        self.assertEqual(self.delegated.state, "draft")
        self.assertFalse(self.delegated.sudo().client_secret)
        self.assertFalse(self.delegated_calendar.account_id.sudo().token_cache)
        answer = self.as_manager(
            "room.exchange.connection", "action_test_connection", [self.delegated.ids]
        )
        self.assertIn("No client secret", json.dumps(answer))
        self.assert_nothing_secret_reached_the_listener()
        self.assertEqual(self.listener.requests, [])

    def test_authority_moved_then_a_delegated_room_syncs(self):
        self.as_manager(
            "room.exchange.connection",
            "write",
            [self.delegated.ids, {"custom_authority_url": self.listener.url}],
        )
        answer = self.as_manager(
            "resource.resource", "action_exchange_sync_now", [self.room.ids]
        )
        self.assertIn("not ready", json.dumps(answer))
        self.env["room.exchange.calendar"]._cron_sync()
        self.assert_nothing_secret_reached_the_listener()
        self.assertEqual(self.listener.requests, [])

    def test_authority_moved_with_a_new_secret_keeps_only_that_one(self):
        self.as_manager(
            "room.exchange.connection",
            "write",
            [
                self.delegated.ids,
                {
                    "custom_authority_url": self.listener.url,
                    "client_secret_input": "the-manager-own-secret",
                },
            ],
        )
        self.as_manager(
            "room.exchange.connection", "action_test_connection", [self.delegated.ids]
        )
        self.assertEqual(self.delegated.sudo().client_secret, "the-manager-own-secret")
        # What the manager pasted went where he pointed it; nothing stored did.
        self.assert_nothing_secret_reached_the_listener()

    def test_graph_url_moved_then_sync_export_and_subscriptions(self):
        self.as_manager(
            "room.exchange.connection",
            "write",
            [self.app_only.ids, {"custom_graph_url": self.listener.url + "/v1.0"}],
        )
        self.assertEqual(self.app_only.state, "draft")
        answer = self.as_manager(
            "resource.resource", "action_exchange_sync_now", [self.room_b.ids]
        )
        self.assertIn("not ready", json.dumps(answer))
        self.env["room.exchange.calendar"]._cron_sync()
        self.app_calendar._export_queue(
            self.app_calendar.window_start,
            self.app_calendar.window_end,
            self.env.user,
        )
        self.env["room.exchange.export.run"]._cron_export()
        self.assertEqual(self.app_calendar.export_run_id.state, "failed")
        self.assertIn("not ready", self.app_calendar.export_run_id.summary)
        self.env["room.exchange.subscription"].create(
            {"calendar_id": self.app_calendar.id, "external_id": "sub-1"}
        )
        self.env["room.exchange.subscription"]._cron_renew()
        self.assert_nothing_secret_reached_the_listener()
        self.assertEqual(self.listener.requests, [])

    def test_a_stored_link_to_another_host_is_never_followed(self):
        calendar = self.app_calendar
        calendar.sudo().delta_link = (
            f"{self.listener.url}/v1.0/users/{ROOM_BAKER}/calendarView/delta"
            "?$deltatoken=stolen"
        )
        self.emulator.clear_log()
        plan = calendar._sync()
        self.assertTrue(plan, calendar.last_error)
        self.assertEqual(calendar.last_full_sync_date, calendar.last_sync_date)
        self.assertTrue(calendar.sudo().delta_link.startswith(self.app_only.graph_url))
        self.assert_nothing_secret_reached_the_listener()
        self.assertEqual(self.listener.requests, [])

    def test_the_ca_bundle_is_for_settings_administrators_only(self):
        answer = self.as_manager(
            "room.exchange.connection",
            "write",
            [self.app_only.ids, {"custom_ca_bundle": "/tmp/anything.pem"}],
        )
        self.assertEqual(answer, "odoo.exceptions.AccessError")
        self.assertEqual(self.app_only.sudo().custom_ca_bundle, self.bundle)

    def test_a_settings_administrator_moves_endpoints_with_the_secret(self):
        admin = self.env.ref("base.user_admin")
        self.delegated.with_user(admin).write(
            {"custom_authority_url": self.emulator_server.base_url + "/"}
        )
        self.assertEqual(self.delegated.state, "draft")
        self.assertEqual(self.delegated.sudo().client_secret, DELEGATED_SECRET)
        self.assertTrue(self.delegated_calendar.account_id.sudo().token_cache)
