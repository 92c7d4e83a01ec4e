# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo.exceptions import ValidationError

from tests.emulator.certificates import self_signed_certificate as make_certificate

from .common import (
    CLIENT,
    DELEGATED_SECRET,
    TENANT,
    RoomExchangeCase,
)


class TestConnectionSettings(RoomExchangeCase):
    def create_connection(self, **values):
        return self.env["room.exchange.connection"].create(
            {"name": "Test", "tenant_id": TENANT, "client_id": CLIENT, **values}
        )

    def test_cloud_decides_endpoints(self):
        expected = {
            "global": (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            "usgov_high": (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            "usgov_dod": (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            "china": (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        }
        for cloud, (authority, graph) in expected.items():
            self.connection.cloud = cloud
            self.assertEqual(self.connection.authority_url, f"{authority}/{TENANT}")
            self.assertEqual(self.connection.graph_url, f"{graph}/v1.0")

    def test_custom_cloud_takes_https_endpoints(self):
        connection = self.create_connection(
            cloud="custom",
            custom_authority_url="https://127.0.0.1:8443/",
            custom_graph_url="https://127.0.0.1:8443/v1.0",
        )
        self.assertEqual(connection.authority_url, f"https://127.0.0.1:8443/{TENANT}")
        self.assertEqual(connection.graph_url, "https://127.0.0.1:8443/v1.0")

    def test_custom_cloud_refuses_plain_http(self):
        with self.assertRaisesRegex(ValidationError, "must be an https URL"):
            self.create_connection(
                cloud="custom",
                custom_authority_url="http://login.example.test",
                custom_graph_url="https://graph.example.test",
            )
        with self.assertRaisesRegex(ValidationError, "Graph URL .* must be an https"):
            self.create_connection(
                cloud="custom",
                custom_authority_url="https://login.example.test",
                custom_graph_url="graph.example.test",
            )

    def test_tenant_is_guid_or_domain(self):
        self.assertTrue(self.create_connection(tenant_id="contoso.onmicrosoft.com"))
        for bad in ("contoso", "not a tenant", "1234-5678", "https://contoso.com"):
            with self.assertRaisesRegex(ValidationError, "Directory \\(tenant\\) ID"):
                self.create_connection(tenant_id=bad)

    def test_client_id_is_guid(self):
        with self.assertRaisesRegex(ValidationError, "must be a GUID"):
            self.create_connection(client_id="my-app")

    def test_redirect_uri_follows_base_url_and_can_be_overridden(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", "https://odoo.example.com"
        )
        self.connection.invalidate_recordset(["redirect_uri"])
        self.assertEqual(
            self.connection.redirect_uri,
            "https://odoo.example.com/room_exchange_sync/oauth/callback",
        )
        self.connection.redirect_uri_override = "https://rooms.example.com/cb"
        self.assertEqual(self.connection.redirect_uri, "https://rooms.example.com/cb")
        self.connection.redirect_uri_override = "http://localhost:8069/cb"
        with self.assertRaisesRegex(ValidationError, "only for localhost"):
            self.connection.redirect_uri_override = "http://rooms.example.com/cb"

    def test_secret_is_write_only(self):
        self.assertFalse(self.connection.has_client_secret)
        self.connection.client_secret_input = "  the-secret-value "
        self.connection.invalidate_recordset()
        self.assertTrue(self.connection.has_client_secret)
        self.assertFalse(self.connection.client_secret_input)
        self.assertEqual(self.connection.sudo().client_secret, "the-secret-value")
        form_values = self.connection.web_read(
            {"client_secret_input": {}, "has_client_secret": {}}
        )[0]
        self.assertFalse(form_values["client_secret_input"])

    def test_certificate_credential_checked_and_thumbprint_read(self):
        key_pem, cert_pem, thumbprint = make_certificate()
        connection = self.create_connection(credential_type="certificate")
        connection.private_key_input = key_pem + cert_pem
        self.assertEqual(connection.certificate_thumbprint, thumbprint)
        self.assertTrue(connection.has_private_key)
        self.assertTrue(connection.certificate_expiry)
        self.assertFalse(connection.private_key_input)
        self.assertIn("BEGIN PRIVATE KEY", connection.sudo().private_key)
        self.assertNotIn("BEGIN CERTIFICATE", connection.sudo().private_key)

    def test_certificate_must_match_thumbprint(self):
        key_pem, cert_pem, _thumbprint = make_certificate()
        with self.assertRaisesRegex(ValidationError, "does not match the certificate"):
            self.create_connection(
                credential_type="certificate",
                certificate_pem=cert_pem,
                certificate_thumbprint="AB" * 20,
            )
        with self.assertRaisesRegex(ValidationError, "40 hexadecimal characters"):
            self.create_connection(
                credential_type="certificate",
                certificate_pem=cert_pem,
                certificate_thumbprint="not-a-thumbprint",
            )

    def test_private_key_must_belong_to_certificate(self):
        _key, cert_pem, _thumbprint = make_certificate()
        other_key, _cert, _other = make_certificate("other")
        connection = self.create_connection(
            credential_type="certificate", certificate_pem=cert_pem
        )
        with self.assertRaisesRegex(
            ValidationError, "does not belong to the certificate"
        ):
            connection.private_key_input = other_key
        self.assertFalse(connection.has_private_key)

    def test_garbage_certificate_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "No certificate was found"):
            self.create_connection(
                credential_type="certificate", certificate_pem="hello"
            )

    def test_garbage_private_key_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "No private key was found"):
            self.create_connection(
                credential_type="certificate", private_key_input="not a key"
            )

    def test_test_connection_reports_missing_secret(self):
        action = self.connection.action_test_connection()
        self.assertEqual(self.connection.state, "error")
        self.assertIn("No client secret is set", self.connection.last_error)
        self.assertEqual(action["params"]["type"], "danger")

    def test_test_connection_succeeds_when_complete(self):
        connection = self.emulator_connection()
        action = connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        self.assertFalse(connection.last_error)
        self.assertEqual(action["params"]["type"], "success")

    def test_changing_settings_requires_a_new_test(self):
        connection = self.ready_connection()
        connection.tenant_id = "contoso.onmicrosoft.com"
        self.assertEqual(connection.state, "draft")

    def test_secret_never_logged(self):
        with self.assertLogs(level="DEBUG") as logs:
            connection = self.ready_connection()
            connection.action_test_connection()
        self.assertTrue(logs.output)
        self.assertFalse(any(DELEGATED_SECRET in line for line in logs.output))
        # The emulator's access tokens are JWTs, which all start with "eyJ".
        leaks = [line for line in logs.output if "eyJ" in line]
        self.assertFalse(leaks)
