# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.exceptions import UserError
from odoo.tests import tagged

from tests.emulator.certificates import self_signed_certificate as make_certificate

from .common import (
    APP_ONLY_APP,
    ROOM_ADAMS,
    ROOM_DUNE,
    RoomExchangeCase,
)


@tagged("post_install", "-at_install")
class TestApplicationMode(RoomExchangeCase):
    """App-only access: one connection test, then rooms pick their mailbox."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()

    def test_connection_test_gets_a_token_and_calls_graph(self):
        connection = self.emulator_connection("application", places_enabled=True)
        action = connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("4 room mailboxes", action["params"]["message"])
        paths = [entry.get("path", "") for entry in self.emulator.request_log]
        self.assertTrue(any("/oauth2/v2.0/token" in path for path in paths))
        self.assertTrue(any("/places/microsoft.graph.room" in path for path in paths))

    def test_room_picks_its_mailbox_from_the_directory(self):
        connection = self.emulator_connection("application", places_enabled=True)
        connection.action_test_connection()
        room = self.room.with_user(self.manager)
        room.write({"exchange_connection_id": connection.id})
        self.assertFalse(room.exchange_can_authorize, "no per-room sign-in app-only")
        self.assertTrue(room.exchange_can_save)
        room.action_exchange_load_choices()
        calendar = self.room.exchange_calendar_id
        choice = calendar.choice_ids.filtered(lambda c: c.mailbox == ROOM_ADAMS)
        self.assertEqual(choice.source, "directory")
        room.write({"exchange_choice_id": choice.id})
        room.action_exchange_save()
        self.assertEqual(calendar.state, "authorized")
        self.assertEqual(calendar.mailbox, ROOM_ADAMS)

    def test_mailbox_outside_the_rbac_scope_is_explained(self):
        connection = self.emulator_connection("application")
        connection.action_test_connection()
        room = self.room.with_user(self.manager)
        room.write(
            {"exchange_connection_id": connection.id, "exchange_mailbox": ROOM_DUNE}
        )
        with self.assertRaisesRegex(UserError, "RBAC for Applications scope"):
            room.action_exchange_save()
        self.assertEqual(self.room.exchange_calendar_id.state, "not_configured")

    def test_certificate_credential(self):
        key_pem, cert_pem, _thumbprint = make_certificate("app-only")
        self.emulator.scenario.add_certificate(APP_ONLY_APP, cert_pem)
        connection = self.emulator_connection(
            "application", credential_type="certificate"
        )
        connection.private_key_input = key_pem + cert_pem
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)

    def test_wrong_secret_is_named(self):
        connection = self.emulator_connection("application")
        connection.client_secret_input = "not-the-secret"
        action = connection.action_test_connection()
        self.assertEqual(connection.state, "error")
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("secret", connection.last_error.lower())
        self.assertNotIn("not-the-secret", connection.last_error)

    def test_expired_secret_is_named(self):
        connection = self.emulator_connection("application")
        self.emulator.identity.expire_client_secret(APP_ONLY_APP)
        connection.action_test_connection()
        self.assertEqual(connection.state, "error")
        self.assertIn("expired", connection.last_error.lower())

    def test_unknown_tenant_is_named(self):
        connection = self.emulator_connection(
            "application", tenant_id="11111111-2222-3333-4444-555555555555"
        )
        connection.action_test_connection()
        self.assertEqual(connection.state, "error")
        self.assertIn("tenant", connection.last_error.lower())

    def test_unreachable_authority_is_named(self):
        connection = self.emulator_connection(
            "application",
            custom_authority_url="https://127.0.0.1:9",
            custom_graph_url="https://127.0.0.1:9",
        )
        connection.action_test_connection()
        self.assertEqual(connection.state, "error")
        self.assertIn("could not be reached", connection.last_error)
