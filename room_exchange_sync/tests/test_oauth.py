# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from datetime import timedelta
from unittest.mock import patch

import requests

from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.room_exchange_sync.models.room_exchange_connection import (
    CALLBACK_PATH,
)

from .common import (
    ADELE,
    ALEX,
    DELEGATED_APP,
    MEGAN,
    ROOM_ADAMS,
    RoomExchangeCase,
)


@tagged("post_install", "-at_install")
class TestMicrosoftSignIn(RoomExchangeCase, HttpCase):
    """The whole delegated sign-in: Odoo's controller, MSAL and the emulator."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        redirect_uri = self.base_url() + CALLBACK_PATH
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(redirect_uri)
        self.connection = self.emulator_connection(redirect_uri_override=redirect_uri)
        self.connection.action_test_connection()
        self.assertEqual(self.connection.state, "ready", self.connection.last_error)
        self.room.write({"exchange_connection_id": self.connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.microsoft = requests.Session()
        self.microsoft.trust_env = False
        self.microsoft.verify = self.emulator_server.ca_bundle_path
        self.authenticate("exchange_manager", "exchange_manager")

    def start_sign_in(self):
        answer = self.url_open(
            f"/room_exchange_sync/oauth/start?calendar_id={self.calendar.id}",
            allow_redirects=False,
        )
        self.assertIn(answer.status_code, (302, 303), answer.text[:500])
        return answer.headers["Location"]

    def person_signs_in(self, person=ADELE, consent=True):
        """Returns where Microsoft sends the browser back, and the posted fields."""
        from tests.emulator.people import sign_in

        return sign_in(self.microsoft, self.start_sign_in(), *person, consent=consent)

    def post_callback(self, url, fields):
        return self.url_open(url, data=fields, allow_redirects=False)

    def test_sign_in_pick_calendar_and_save(self):
        url, fields = self.person_signs_in()
        self.assertEqual(url, self.connection.redirect_uri)
        answer = self.post_callback(url, fields)
        self.assertEqual(answer.status_code, 303, answer.text[:500])
        self.assertTrue(
            answer.headers["Location"].endswith(f"/odoo/exchange-rooms/{self.room.id}")
        )
        account = self.calendar.account_id
        self.assertEqual(account.username.lower(), ADELE[0].lower())
        self.assertIn("RefreshToken", account.sudo().token_cache)
        offered = set(self.calendar.choice_ids.mapped("mailbox"))
        self.assertIn(ROOM_ADAMS, offered)
        choice = self.calendar.choice_ids.filtered(lambda c: c.mailbox == ROOM_ADAMS)
        self.room.with_user(self.manager).write({"exchange_choice_id": choice.id})
        self.room.with_user(self.manager).action_exchange_save()
        self.assertEqual(self.calendar.state, "authorized")
        self.assertEqual(self.calendar.mailbox, ROOM_ADAMS)
        self.assertTrue(self.calendar.calendar_external_id)
        self.assertTrue(self.calendar.sync_enabled)
        probes = [
            entry
            for entry in self.emulator.request_log
            if entry.get("method") == "POST" and "/events" in entry.get("path", "")
        ]
        self.assertTrue(probes, "saving must probe write access")
        self.assertFalse(
            self.emulator.store.snapshot(ROOM_ADAMS)
            and any(
                event.get("subject") == "Odoo room sync permission check"
                for event in self.emulator.store.snapshot(ROOM_ADAMS)
            ),
            "the write probe must clean up after itself",
        )

    def test_second_room_reuses_the_account(self):
        self.post_callback(*self.person_signs_in())
        second_room = self.room.copy({"name": "Beta"})
        second_room.write({"exchange_connection_id": self.connection.id})
        self.calendar = second_room.exchange_calendar_id
        self.post_callback(*self.person_signs_in())
        self.assertEqual(
            self.calendar.account_id, self.room.exchange_calendar_id.account_id
        )
        self.assertEqual(self.env["room.exchange.account"].search_count([]), 1)

    def test_consent_refused(self):
        url, fields = self.person_signs_in(consent=False)
        self.assertEqual(fields.get("error"), "access_denied")
        answer = self.post_callback(url, fields)
        self.assertEqual(answer.status_code, 200)
        self.assertIn("room_exchange_oauth_error", answer.text)
        self.assertIn(f"/odoo/exchange-rooms/{self.room.id}", answer.text)
        self.assertFalse(self.calendar.account_id)
        self.assertFalse(self.env["room.exchange.account"].search([]))

    def test_tampered_state(self):
        url, fields = self.person_signs_in()
        flow_id, expiry, signature = fields["state"].split(".")
        fields["state"] = f"{flow_id}.{expiry}.{signature[:-2]}00"
        answer = self.post_callback(url, fields)
        self.assertIn("altered on its way back", answer.text)
        self.assertFalse(self.calendar.account_id)

    def test_replayed_callback(self):
        url, fields = self.person_signs_in()
        self.post_callback(url, fields)
        self.calendar.account_id = False
        answer = self.post_callback(url, fields)
        self.assertIn("already used", answer.text)
        self.assertFalse(self.calendar.account_id)

    def test_expired_flow(self):
        url, posted = self.person_signs_in()
        flow = self.env["room.exchange.auth.flow"].search([], limit=1)
        later = fields.Datetime.now() + timedelta(minutes=11)
        with patch.object(fields.Datetime, "now", return_value=later):
            answer = self.post_callback(url, posted)
        self.assertIn("expired", answer.text)
        self.assertFalse(flow.calendar_id.account_id)

    def test_callback_in_another_session(self):
        url, fields = self.person_signs_in()
        self.authenticate("admin", "admin")
        answer = self.post_callback(url, fields)
        self.assertIn("another user", answer.text)
        self.assertFalse(self.calendar.account_id)

    def browser_without_odoo_session(self):
        """A browser whose Odoo session cookie is not sent: on a single-database
        server, Odoo still knows the database, as ?db= tells it here."""
        browser = requests.Session()
        with self.allow_requests(all_requests=True):
            browser.get(
                self.base_url() + "/web/login",
                params={"db": self.env.cr.dbname},
                timeout=30,
            )
        return browser

    def test_cross_site_post_without_session_is_resubmitted(self):
        url, fields = self.person_signs_in()
        browser = self.browser_without_odoo_session()
        with self.allow_requests(all_requests=True):
            anonymous = browser.post(
                url, data=fields, timeout=30, allow_redirects=False
            )
        self.assertEqual(anonymous.status_code, 200)
        self.assertIn('id="room_exchange_resubmit"', anonymous.text)
        self.assertIn(fields["state"], anonymous.text)
        self.assertFalse(self.calendar.account_id)
        answer = self.post_callback(url, {**fields, "resubmitted": "1"})
        self.assertEqual(answer.status_code, 303)
        self.assertTrue(self.calendar.account_id)

    def test_callback_without_odoo_session(self):
        browser = self.browser_without_odoo_session()
        with self.allow_requests(all_requests=True):
            answer = browser.post(
                self.base_url() + CALLBACK_PATH,
                data={"state": "1.2.3", "resubmitted": "1"},
                timeout=30,
            )
        self.assertEqual(answer.status_code, 200, answer.text[:800])
        self.assertIn("not signed in to Odoo", answer.text)

    def test_read_only_share_is_explained(self):
        self.post_callback(*self.person_signs_in(ALEX))
        self.room.write({"exchange_mailbox": ROOM_ADAMS})
        with self.assertRaisesRegex(Exception, "can only read the calendar"):
            self.room.with_user(self.manager).action_exchange_save()
        self.assertNotEqual(self.calendar.state, "authorized")

    def test_no_share_is_explained(self):
        self.post_callback(*self.person_signs_in(MEGAN))
        self.room.write({"exchange_mailbox": ROOM_ADAMS})
        with self.assertRaisesRegex(Exception, "cannot see the calendar"):
            self.room.with_user(self.manager).action_exchange_save()

    def test_revoked_refresh_token_asks_for_a_new_sign_in(self):
        self.post_callback(*self.person_signs_in())
        self.room.write({"exchange_mailbox": ROOM_ADAMS})
        self.room.with_user(self.manager).action_exchange_save()
        self.emulator.identity.expire_access_tokens()
        self.emulator.identity.revoke_refresh_tokens(upn=ADELE[0])
        token_cache = self.calendar.account_id.sudo().token_cache
        action = self.room.with_user(self.manager).action_exchange_load_choices()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("new sign-in", action["params"]["message"])
        self.assertEqual(self.calendar.state, "reauth_needed")
        self.assertEqual(self.calendar.account_id.sudo().token_cache, token_cache)
        activities = self.calendar.activity_ids
        self.assertIn(self.manager, activities.user_id)
        self.room.with_user(self.manager).action_exchange_load_choices()
        self.assertEqual(len(self.calendar.activity_ids), len(activities))

    def test_remove_authorization_keeps_bookings_and_forgets_tokens(self):
        self.post_callback(*self.person_signs_in())
        self.room.write({"exchange_mailbox": ROOM_ADAMS})
        self.room.with_user(self.manager).action_exchange_save()
        binding = self.env["room.exchange.binding"].create(
            {"calendar_id": self.calendar.id, "external_id": "AAMk-kept="}
        )
        self.room.with_user(self.manager).action_exchange_remove_authorization()
        self.assertEqual(self.calendar.state, "not_configured")
        self.assertFalse(self.calendar.sync_enabled)
        self.assertFalse(self.env["room.exchange.account"].search([]))
        self.assertTrue(binding.exists())
        self.assertEqual(self.calendar.mailbox, ROOM_ADAMS)

    def test_booking_user_cannot_start_a_sign_in(self):
        self.authenticate("booking_user", "booking_user")
        answer = self.url_open(
            f"/room_exchange_sync/oauth/start?calendar_id={self.calendar.id}",
            allow_redirects=False,
        )
        self.assertEqual(answer.status_code, 403)
        self.assertFalse(self.env["room.exchange.auth.flow"].search([]))

    def test_idle_rounds_reuse_the_signed_in_token(self):
        self.post_callback(*self.person_signs_in())
        self.room.write({"exchange_mailbox": ROOM_ADAMS})
        self.room.with_user(self.manager).action_exchange_save()
        self.assertTrue(self.calendar._sync())
        self.emulator.clear_log()
        self.assertTrue(self.calendar._sync())
        paths = [entry.get("path", "") for entry in self.emulator.request_log]
        self.assertTrue(any("/v1.0/" in path for path in paths))
        self.assertFalse(
            [p for p in paths if "/oauth2/" in p or "openid-configuration" in p],
            "an idle round must not sign in again",
        )
