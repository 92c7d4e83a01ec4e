# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sign-in as an admin clicks it, in Debian's Chromium driven by Playwright."""

from odoo.tests import HttpCase, tagged

from odoo.addons.room_exchange_sync.models.room_exchange_connection import (
    CALLBACK_PATH,
)

from .common import ADELE, DELEGATED_APP, ROOM_ADAMS, BrowserMixin, RoomExchangeCase


@tagged("post_install", "-at_install")
class TestAuthorizeInBrowser(BrowserMixin, RoomExchangeCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        redirect_uri = self.base_url() + CALLBACK_PATH
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(redirect_uri)
        connection = self.emulator_connection(redirect_uri_override=redirect_uri)
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        self.room.write({"exchange_connection_id": connection.id})
        self.page = self.open_browser()

    def test_authorize_pick_calendar_and_save(self):
        page = self.page
        # The browser's requests read the database; pending test writes must be in it.
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.sign_in_to_odoo(page, "exchange_manager")
            page.goto(f"{self.base_url()}/odoo/resource.resource/{self.room.id}")
            page.click("a.nav-link:has-text('Exchange')")
            page.click("button[name=action_exchange_authorize]")
            # Microsoft's (the emulator's) sign-in and consent pages.
            page.fill("#username", ADELE[0])
            page.fill("#password", ADELE[1])
            page.click("#sign-in")
            page.click("#accept")
            # Back on the room, after the form_post and its same-site resubmission.
            page.wait_for_url(f"**/odoo/exchange-rooms/{self.room.id}**")
            page.click("a.nav-link:has-text('Exchange')")
            page.fill("div[name=exchange_choice_id] input", "Adams")
            page.click(".o-autocomplete--dropdown-item:has-text('Adams')")
            page.click("button[name=action_exchange_save]")
            page.wait_for_selector(
                "div[name=exchange_state] :text-is('Authorized')", timeout=20000
            )
        calendar = self.room.exchange_calendar_id
        calendar.invalidate_recordset()
        self.assertEqual(calendar.state, "authorized")
        self.assertEqual(calendar.mailbox, ROOM_ADAMS)
        self.assertEqual(calendar.account_id.username.lower(), ADELE[0].lower())
