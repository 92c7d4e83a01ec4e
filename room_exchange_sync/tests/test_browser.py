# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sign-in as an admin clicks it, in Debian's Chromium driven by Playwright."""

import resource
import shutil

from odoo.tests import HttpCase, tagged

from odoo.addons.room_exchange_sync.models.room_exchange_connection import (
    CALLBACK_PATH,
)

from .common import ADELE, DELEGATED_APP, ROOM_ADAMS, RoomExchangeCase

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@tagged("post_install", "-at_install")
class TestAuthorizeInBrowser(RoomExchangeCase, HttpCase):
    def setUp(self):
        super().setUp()
        if not CHROMIUM:
            self.fail("Chromium is not installed: run 'make setup' (apt chromium).")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.fail("Playwright is not installed: run 'make setup'.")
        self.emulator.reset()
        redirect_uri = self.base_url() + CALLBACK_PATH
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(redirect_uri)
        connection = self.emulator_connection(redirect_uri_override=redirect_uri)
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        self.room.write({"exchange_connection_id": connection.id})
        # Odoo limits the address space of its process (limit_memory_hard), and
        # Chromium needs far more virtual memory than that; as Odoo's own browser
        # tests do, the browser (spawned by Playwright's driver) runs without it.
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        try:
            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        self.addCleanup(playwright.stop)
        self.addCleanup(browser.close)
        # The emulator's CA is made at start; this browser profile need not trust it.
        self.page = browser.new_context(ignore_https_errors=True).new_page()
        self.page.set_default_timeout(20000)

    def test_authorize_pick_calendar_and_save(self):
        page = self.page
        # The browser's requests read the database; pending test writes must be in it.
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            page.goto(f"{self.base_url()}/web/login?db={self.env.cr.dbname}")
            page.fill("input[name=login]", "exchange_manager")
            page.fill("input[name=password]", "exchange_manager")
            page.click("button[type=submit]")
            page.wait_for_url("**/odoo**")
            page.goto(f"{self.base_url()}/odoo/resource.resource/{self.room.id}")
            page.click("a.nav-link:has-text('Exchange')")
            page.click("button[name=action_exchange_authorize]")
            # Microsoft's (the emulator's) sign-in and consent pages.
            page.fill("#username", ADELE[0])
            page.fill("#password", ADELE[1])
            page.click("#sign-in")
            page.click("#accept")
            # Back on the room, after the form_post and its same-site resubmission.
            page.wait_for_url(f"**/odoo/resource.resource/{self.room.id}**")
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
