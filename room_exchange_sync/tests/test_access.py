# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.exceptions import AccessError

from .common import CLIENT, TENANT, RoomExchangeCase


class TestAccessRights(RoomExchangeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.connection.client_secret_input = "top-secret"

    def test_booking_user_cannot_read_connections(self):
        connection = self.connection.with_user(self.booking_user)
        with self.assertRaises(AccessError):
            connection.read(["client_secret"])
        with self.assertRaises(AccessError):
            connection.read(["name"])

    def test_exchange_user_reads_status_not_secrets(self):
        connection = self.connection.with_user(self.exchange_user)
        self.assertEqual(connection.read(["name", "state"])[0]["name"], "Contoso")
        for secret in ("client_secret", "private_key"):
            with self.assertRaises(AccessError):
                connection.read([secret])
        with self.assertRaises(AccessError):
            connection.search_read([], ["client_secret"])
        with self.assertRaises(AccessError):
            connection.write({"tenant_id": "contoso.onmicrosoft.com"})

    def test_manager_sets_but_cannot_read_back_secrets(self):
        connection = self.connection.with_user(self.manager)
        connection.write({"client_secret_input": "rotated"})
        self.assertTrue(connection.has_client_secret)
        self.assertFalse(connection.client_secret_input)
        with self.assertRaises(AccessError):
            connection.read(["client_secret"])
        self.assertEqual(self.connection.sudo().client_secret, "rotated")

    def test_booking_user_cannot_change_exchange_settings_of_a_room(self):
        with self.assertRaises(AccessError):
            self.room.with_user(self.booking_user).write(
                {"exchange_mailbox": "alpha@contoso.test"}
            )

    def test_booking_manager_without_exchange_rights_cannot_either(self):
        room = self.room.with_user(self.booking_manager)
        room.write({"name": "Alpha (renamed)"})
        with self.assertRaises(AccessError):
            room.write({"exchange_mailbox": "alpha@contoso.test"})
        with self.assertRaises(AccessError):
            room.read(["exchange_state"])

    def test_exchange_manager_configures_a_room(self):
        room = self.room.with_user(self.manager)
        room.write(
            {
                "exchange_connection_id": self.connection.id,
                "exchange_mailbox": "alpha@contoso.test",
            }
        )
        calendar = self.room.exchange_calendar_id
        self.assertEqual(calendar.mailbox, "alpha@contoso.test")
        self.assertEqual(calendar.connection_id, self.connection)

    def test_exchange_user_reads_room_status_only(self):
        room = self.room.with_user(self.exchange_user)
        self.assertEqual(
            room.read(["exchange_state"])[0]["exchange_state"], "not_configured"
        )
        with self.assertRaises(AccessError):
            room.read(["exchange_mailbox"])

    def test_connections_are_kept_per_company(self):
        other_company = self.env["res.company"].create({"name": "Fabrikam"})
        foreign = self.env["room.exchange.connection"].create(
            {
                "name": "Fabrikam tenant",
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "company_id": other_company.id,
            }
        )
        Connection = self.env["room.exchange.connection"].with_user(self.manager)
        self.assertNotIn(foreign, Connection.search([]))
        with self.assertRaises(AccessError):
            foreign.with_user(self.manager).read(["name"])

    def test_token_caches_stay_server_side(self):
        account = self.env["room.exchange.account"].create(
            {
                "connection_id": self.connection.id,
                "home_account_id": "oid.tid",
                "username": "adele@contoso.test",
                "token_cache": '{"RefreshToken": {"secret": "value"}}',
            }
        )
        for user in (self.booking_user, self.exchange_user, self.manager):
            with self.assertRaises(AccessError):
                account.with_user(user).read(["token_cache"])
        with self.assertRaises(AccessError):
            account.with_user(self.booking_user).read(["username"])
        self.assertEqual(
            account.with_user(self.exchange_user).read(["username"])[0]["username"],
            "adele@contoso.test",
        )
