# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The admin's first ten minutes, in Debian's Chromium driven by Playwright (issue 16).

The README's flows click by click: create and test a connection (wrong, then right),
authorize a room (sign-in, pick, save with either save), export its existing bookings,
sync an Outlook meeting in, resolve an overlap, authorize a revoked room again from the
rooms overview, remove the authorization. After each click the test waits for what the
click produced to be on the screen (never for a fixed time), then compares what the
screen shows (status, counts, sentences, messages, buttons offered) with the database.

Every ``type="object"`` button of the addon's views is clicked by one of these tests
(or by test_export_browser.py): BUTTONS maps each to the test that clicks it, and
test_every_button_is_clicked checks that the map covers the views.
"""

import re
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from lxml import etree

from odoo import Command
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged

from ..models.room_exchange_calendar import STATES
from ..models.room_exchange_connection import CALLBACK_PATH
from .common import (
    ADELE,
    ALEX,
    DELEGATED_APP,
    DELEGATED_SECRET,
    EMULATOR_TENANT,
    MANAGER,
    MEGAN,
    ROOM_ADAMS,
    BrowserMixin,
    RoomExchangeCase,
    next_weekday,
)

ADDON = Path(__file__).resolve().parent.parent

# The Exchange tab's row of buttons in each step of the room's authorization
# (resource.resource.exchange_setup_step), and the one primary among them.
TAB_BUTTONS = {
    "no_connection": set(),
    "connection_not_ready": set(),
    "sign_in": {"action_exchange_authorize"},
    "choose_calendar": {
        "action_exchange_save",
        "action_exchange_load_choices",
        "action_exchange_remove_authorization",
    },
    "authorized": {
        "action_exchange_sync_now",
        "action_exchange_open_settings",
        "action_exchange_full_resync",
        "action_exchange_remove_authorization",
    },
    "error": {
        "action_exchange_sync_now",
        "action_exchange_authorize",
        "action_exchange_open_settings",
        "action_exchange_full_resync",
        "action_exchange_remove_authorization",
    },
    "reauth_needed": {
        "action_exchange_authorize",
        "action_exchange_open_settings",
        "action_exchange_remove_authorization",
    },
}
TAB_BUTTONS["save"] = TAB_BUTTONS["choose_calendar"]
TAB_PRIMARY = {
    "sign_in": "action_exchange_authorize",
    "choose_calendar": "action_exchange_save",
    "save": "action_exchange_save",
    "reauth_needed": "action_exchange_authorize",
    "error": "action_exchange_sync_now",
}

# Every object button of the addon's views, and the test that clicks it.
BUTTONS = {
    "action_test_connection": "test_connection_wrong_then_right",
    "action_open_rooms": "test_connection_wrong_then_right",
    "action_exchange_authorize": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_load_choices": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_save": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_refresh": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_run_export": "test_authorize_with_the_tabs_save_and_export",
    "action_preview": "test_authorize_with_the_tabs_save_and_export",
    "action_run": "test_authorize_with_the_tabs_save_and_export",
    "action_refresh": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_open_settings": "test_authorize_with_the_tabs_save_and_export",
    "action_sync_now": "test_authorize_with_the_tabs_save_and_export",
    "action_full_resync": "test_authorize_with_the_tabs_save_and_export",
    "action_exchange_sync_now": "test_odoos_save_outlook_meeting_and_overlap",
    "action_exchange_resync": "test_odoos_save_outlook_meeting_and_overlap",
    "action_open_overlaps": "test_odoos_save_outlook_meeting_and_overlap",
    "action_exchange_open_overlap": "test_odoos_save_outlook_meeting_and_overlap",
    "get_formview_action": "test_odoos_save_outlook_meeting_and_overlap",
    "action_cancel": "test_odoos_save_outlook_meeting_and_overlap",
    "action_open_binding_errors": "test_odoos_save_outlook_meeting_and_overlap",
    "action_cockpit_reauthorize": "test_revoked_room_authorized_again_then_removed",
    "action_open_room_health": "test_revoked_room_authorized_again_then_removed",
    "action_exchange_full_resync": "test_revoked_room_authorized_again_then_removed",
    "action_exchange_remove_authorization": (
        "test_revoked_room_authorized_again_then_removed"
    ),
    "action_exchange_confirm_cancellations": "test_cancellations_wait_for_a_manager",
    # Rooms from Microsoft 365 (test_room_directory_browser.py).
    "action_open_room_directory": "test_map_a_floor_from_the_connection",
    "action_map_selected": "test_map_a_floor_from_the_connection",
    "action_map": "test_map_a_floor_from_the_connection",
    "action_load": "test_from_the_rooms_list_map_export_and_sign_in",
    "action_export": "test_from_the_rooms_list_map_export_and_sign_in",
    "action_sign_in": "test_from_the_rooms_list_map_export_and_sign_in",
}


def squash(text):
    return re.sub(r"\s+", " ", text or "").strip()


class TestEveryButtonIsCovered(TransactionCase):
    def test_every_button_is_clicked(self):
        """Each object button of the addon's views is in BUTTONS (a new button gets
        a browser test that clicks it)."""
        found = set()
        for path in [*ADDON.glob("views/*.xml"), *ADDON.glob("wizards/*.xml")]:
            for button in etree.parse(str(path)).iter("button"):
                if button.get("type") == "object":
                    found.add(button.get("name"))
        self.assertEqual(found - set(BUTTONS), set(), "buttons no test clicks")
        self.assertEqual(set(BUTTONS) - found, set(), "BUTTONS lists gone buttons")


@tagged("post_install", "-at_install")
class TestAdminFlows(BrowserMixin, RoomExchangeCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(
            cls.env,
            login="exchange_admin",
            groups=f"base.group_user,base.group_system,{MANAGER}",
            tz="Europe/Brussels",
            name="Exchange Admin",
        )

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.redirect_uri = self.base_url() + CALLBACK_PATH
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(
            self.redirect_uri
        )
        # The room is bookable around the clock, with one single-room combination
        # and a booking type, as the demo sets it up.
        Calendar = self.env["room.exchange.calendar"]
        self.room.calendar_id = Calendar._around_the_clock_calendar(self.env.company)
        self.combination = self.single_room_combination(self.room)
        self.booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Meeting room",
                "resource_calendar_id": self.room.calendar_id.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": self.combination.id})
                ],
            }
        )
        self.requester = self.env["res.partner"].create({"name": "Requester"})
        self.day = next_weekday(14)
        self.clicked = set()
        self.page = self.open_browser()
        self.page_errors = []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.addCleanup(self.check_no_page_error)

    def check_no_page_error(self):
        self.assertFalse(self.page_errors, "JavaScript errors in the page")

    # set-up helpers

    def connection_to_emulator(self):
        connection = self.emulator_connection(redirect_uri_override=self.redirect_uri)
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready", connection.last_error)
        return connection

    def book(self, name, hour_utc, hours=1.0, day=None):
        return self.book_in_odoo(
            hour_utc, hours, name, day=day, combination=self.combination
        )

    def run_export_cron(self):
        """The export's cron job, as Odoo's cron runner calls it (outside a cron,
        _commit_progress would commit the test's transaction)."""
        with patch.object(
            type(self.env["ir.cron"]), "_commit_progress", return_value=1e9
        ):
            self.env["room.exchange.export.run"]._cron_export()

    # browser helpers

    @contextmanager
    def browsing(self):
        """The browser may talk to Odoo; the database is read once it is done."""
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            yield self.page
        self.env.invalidate_all()

    def click(self, name, scope=None, confirm=False):
        """Click the visible button ``name`` (in ``scope``), and the confirmation
        dialog's confirm button when asked to."""
        scope = scope or self.page
        scope.locator(f"button[name={name}]:visible").first.click()
        self.clicked.add(name)
        if confirm:
            self.page.locator(".modal-dialog .modal-footer .btn-primary").click()

    def toast(self, text):
        self.page.locator(".o_notification_content", has_text=text).first.wait_for()

    def open_room(self):
        page = self.page
        page.goto(f"{self.base_url()}/odoo/exchange-rooms/{self.room.id}")
        self.open_exchange_tab()

    def open_exchange_tab(self):
        self.page.click("a.nav-link:has-text('Exchange')")
        self.page.locator("div[name=exchange_buttons]").wait_for(state="attached")

    def wait_status(self, label):
        self.page.locator(
            f"div[name=exchange_state] .badge:text-is('{label}')"
        ).wait_for()

    def sign_in_at_microsoft(self, person=ADELE, back="**/odoo/exchange-rooms/*"):
        """Microsoft's (the emulator's) sign-in page, and its consent page the first
        time the account uses the app."""
        page = self.page
        page.fill("#username", person[0])
        page.fill("#password", person[1])
        page.click("#sign-in")
        page.locator("#accept, .o_action_manager").first.wait_for()
        if page.locator("#accept").count():
            page.click("#accept")
        page.wait_for_url(back)
        page.locator(".o_action_manager .o_view_controller").first.wait_for()

    def texts(self, selector):
        return [squash(text) for text in self.page.locator(selector).all_inner_texts()]

    def text(self, selector):
        found = self.texts(selector)
        return found[0] if found else None

    def read_tab(self):
        """What the room's Exchange tab shows."""
        row = self.page.locator("div[name=exchange_buttons] button[name]")
        buttons = {row.nth(i).get_attribute("name") for i in range(row.count())}
        primary = {
            row.nth(i).get_attribute("name")
            for i in range(row.count())
            if "btn-primary" in (row.nth(i).get_attribute("class") or "")
        }
        box = "div[name=exchange_export_box]"
        return {
            "status": self.text("div[name=exchange_state] .badge"),
            "sentence": self.text(".o_field_widget[name=exchange_next_step]"),
            "error": self.text(
                "div[name=exchange_error_box] [name=exchange_last_error]"
            ),
            "buttons": buttons,
            "primary": primary,
            "last_sync": self.text(".o_field_widget[name=exchange_last_sync_summary]"),
            "linked": self.text(".o_field_widget[name=exchange_binding_count]"),
            "export_sentence": self.text(f"{box} [name=exchange_export_message]"),
            "export_progress": self.text(f"{box} [name=exchange_export_progress]"),
            "export_state": self.text(f"{box} [name=exchange_export_state] .badge"),
            "export_buttons": set(
                self.page.locator(f"{box} button[name]").evaluate_all(
                    "buttons => buttons.map(b => b.getAttribute('name'))"
                )
            ),
            "navbar_app": self.text(".o_menu_brand"),
        }

    def assertTabMatchesDatabase(self, room=None):
        """The Exchange tab as the browser shows it is the room as the database
        holds it: status, next step, error, buttons, counts and the export box."""
        room = (room or self.room).with_user(self.admin)
        shown = self.read_tab()
        calendar = room.sudo().exchange_calendar_ids[:1]
        state = calendar.state or "not_configured"
        self.assertEqual(shown["status"], dict(STATES)[state])
        self.assertEqual(shown["sentence"], squash(room.exchange_next_step))
        self.assertEqual(shown["error"], squash(calendar.last_error) or None)
        step = room.exchange_setup_step
        expected = set(TAB_BUTTONS[step])
        if room.exchange_sync_paused:
            expected -= {"action_exchange_sync_now", "action_exchange_full_resync"}
        self.assertEqual(shown["buttons"], expected, f"buttons in step {step}")
        self.assertEqual(
            shown["primary"], {TAB_PRIMARY[step]} if step in TAB_PRIMARY else set()
        )
        if "action_exchange_remove_authorization" in shown["buttons"]:
            remove = self.page.locator(
                "button[name=action_exchange_remove_authorization]"
            )
            self.assertIn("btn-outline-danger", remove.get_attribute("class"))
        self.assertEqual(shown["last_sync"], squash(calendar.last_sync_summary) or None)
        if state != "not_configured":
            self.assertEqual(shown["linked"], str(calendar.binding_count))
        self.assertEqual(
            shown["export_sentence"], squash(room.exchange_export_message) or None
        )
        if room.exchange_export_state not in (False, "none"):
            self.assertEqual(
                shown["export_progress"], squash(room.exchange_export_progress)
            )
            run = calendar.export_run_id
            states = dict(run._fields["state"].selection)
            self.assertEqual(shown["export_state"], states[run.state])
        self.assertEqual(
            "action_exchange_run_export" in shown["export_buttons"],
            room.exchange_can_export,
        )
        self.assertEqual(
            "action_exchange_refresh" in shown["export_buttons"],
            calendar.export_run_id.state in ("queued", "running"),
        )
        self.assertTrue(shown["navbar_app"], "the navbar lost its app")
        return shown

    def authorize_room(self, save="tab"):
        """Authorize with Microsoft Account, sign in, pick Adams, and save with the
        tab's Save or with Odoo's own save of the form."""
        page = self.page
        with self.browsing():
            self.sign_in_to_odoo(page, "exchange_admin")
            self.open_room()
        shown = self.assertTabMatchesDatabase()
        self.assertEqual(shown["status"], "Not configured")
        self.assertIn("Authorize with Microsoft Account", shown["sentence"])

        with self.browsing():
            self.click("action_exchange_authorize")
            self.sign_in_at_microsoft()
            self.assertIn("Rooms", self.text(".o_breadcrumb"))
            self.open_exchange_tab()
            self.page.locator("div[name=exchange_choice_id]").wait_for()
        shown = self.assertTabMatchesDatabase()
        self.assertIn("choose the room calendar", shown["sentence"])
        if save == "tab":
            with self.browsing():
                self.click("action_exchange_load_choices")
                # Buttons are disabled while theirs runs, the reload included.
                page.locator(
                    "button[name=action_exchange_load_choices]:not([disabled])"
                ).wait_for()
            self.assertTabMatchesDatabase()
            self.assertIn(
                ROOM_ADAMS,
                self.room.exchange_calendar_id.choice_ids.mapped("mailbox"),
            )

        with self.browsing():
            page.fill("div[name=exchange_choice_id] input", "Adams")
            page.click(".o-autocomplete--dropdown-item:has-text('Adams')")
            if save == "tab":
                self.click("action_exchange_save")
                self.toast(f"Room {self.room.name} is authorized")
            else:
                page.locator(".o_form_button_save").click()
            self.wait_status("Authorized")
        return self.assertTabMatchesDatabase()

    # the flows

    def test_connection_wrong_then_right(self):
        """Microsoft 365 connections › New, a wrong secret, Test connection; the
        right secret, Test connection: each time the form shows the state the test
        produced, not the one before."""
        page = self.page
        server = self.emulator_server
        with self.browsing():
            self.sign_in_to_odoo(page, "exchange_admin")
            page.goto(f"{self.base_url()}/odoo/exchange-connections/new")
            page.fill("div[name=name] input", "Contoso tenant")
            page.locator("div[name=cloud] .o_select_menu_toggler").click()
            page.locator(".o_select_menu_item:has-text('Custom endpoints')").click()
            page.fill("div[name=custom_authority_url] input", server.base_url)
            page.fill("div[name=custom_graph_url] input", server.graph_url)
            page.fill("div[name=custom_ca_bundle] input", server.ca_bundle_path)
            page.fill("div[name=tenant_id] input", EMULATOR_TENANT)
            page.fill("div[name=client_id] input", DELEGATED_APP)
            page.fill("div[name=client_secret_input] input", "not-the-secret")
            page.fill("div[name=redirect_uri_override] input", self.redirect_uri)
            self.click("action_test_connection_logged")
            self.clicked.add("action_test_connection")
            self.toast("Connection test failed")
            page.locator(
                ".o_statusbar_status .o_arrow_button_current[data-value=error]"
            ).wait_for()
        connection = self.env["room.exchange.connection"].search(
            [("name", "=", "Contoso tenant")]
        )
        self.assertEqual(connection.state, "error")
        self.assertIn("The client secret is wrong", connection.last_error)
        # Plain words first; Microsoft's own text as a detail.
        first_line, detail = connection.last_error.split("\n")[:2]
        self.assertNotIn("AADSTS", first_line)
        self.assertIn("AADSTS7000215", detail)
        self.assertEqual(
            self.text("div[name=last_error]"), squash(connection.last_error)
        )

        with self.browsing():
            page.fill("div[name=client_secret_input] input", DELEGATED_SECRET)
            self.click("action_test_connection_logged")
            self.toast("Connection test succeeded")
            page.locator(
                ".o_statusbar_status .o_arrow_button_current[data-value=ready]"
            ).wait_for()
        self.assertEqual(connection.state, "ready")
        self.assertFalse(connection.last_error)
        self.assertEqual(page.locator("div[name=last_error]").count(), 0)
        self.assertEqual(
            page.locator(".o_statusbar_status .o_arrow_button_current").get_attribute(
                "data-value"
            ),
            connection.state,
        )
        # Every option the README documents is on the form.
        for name in (
            "conflict_policy",
            "sync_past_days",
            "sync_future_days",
            "time_zone_names",
            "places_enabled",
            "redirect_uri_override",
            "client_secret_expiry",
        ):
            self.assertEqual(page.locator(f"div[name={name}]").count(), 1, name)

        with self.browsing():
            self.click("action_open_rooms")
            page.locator(".o_view_nocontent").wait_for()
        self.assertFalse(connection.calendar_ids)
        self.assertIn("No room syncs with Exchange yet", self.text(".o_view_nocontent"))
        self.assertEqual(
            self.clicked & {"action_test_connection"}, {"action_test_connection"}
        )

    def test_authorize_with_the_tabs_save_and_export(self):
        """Sign in, pick the calendar, the tab's Save: the room is authorized and its
        first sync is the export of its future bookings, whose progress and summary
        the tab shows; then Run the Export for a booking beyond the sync window, and
        the room calendar's own form."""
        page = self.page
        bookings = self.book("Board review", 9) | self.book("Budget call", 11)
        bookings |= self.book("Team lunch", 13)
        self.room.exchange_connection_id = self.connection_to_emulator()
        shown = self.authorize_room(save="tab")
        calendar = self.room.exchange_calendar_id
        self.assertEqual(calendar.state, "authorized")
        self.assertEqual(calendar.mailbox, ROOM_ADAMS)
        self.assertEqual(calendar.export_run_id.state, "queued")
        self.assertEqual(calendar.export_run_id.total_count, 3)
        self.assertEqual(shown["export_state"], "Queued")
        self.assertEqual(shown["export_progress"], "0 of 3 exported")
        self.assertIn("first sync sends its future bookings", shown["sentence"])

        self.run_export_cron()
        self.assertEqual(calendar.export_run_id.state, "done")
        self.assertEqual(len(bookings.exchange_binding_ids.filtered("external_id")), 3)
        with self.browsing():
            self.click("action_exchange_refresh")
            page.locator(
                "div[name=exchange_export_state] .badge:text-is('Done')"
            ).wait_for()
        shown = self.assertTabMatchesDatabase()
        self.assertEqual(shown["export_progress"], "3 of 3 exported")
        self.assertEqual(
            shown["export_sentence"],
            "All 3 future bookings of this room are in Exchange.",
        )
        self.assertIn(
            "3 exported", self.text(".o_field_widget[name=exchange_export_summary]")
        )
        self.assertNotIn("00:00:00", calendar.export_run_id.summary)

        # A booking made since: until the next sync, the box offers to send it now.
        far = self.book("Annual review", 9, day=self.day + timedelta(days=30))
        with self.browsing():
            page.reload()
            self.open_exchange_tab()
            page.locator("button[name=action_exchange_run_export]").wait_for()
        shown = self.assertTabMatchesDatabase()
        self.assertEqual(
            shown["export_sentence"],
            "Not in Exchange yet: 1 of this room's 4 future bookings.",
        )
        with self.browsing():
            self.click("action_exchange_run_export")
            dialog = page.locator(".modal:has-text('Outlook/Exchange Bulk Export')")
            dialog.locator("div[name=to_export_count]").wait_for()
            self.click("action_preview", dialog)
            dialog.locator("div[name=to_export_count]:has-text('1')").wait_for()
            self.click("action_run", dialog)
            dialog.locator("div[name=export_running]").wait_for()
        self.assertEqual(calendar.export_run_id.state, "queued")
        self.run_export_cron()
        self.assertTrue(far.exchange_binding_ids.external_id)
        with self.browsing():
            self.click("action_refresh", dialog)
            dialog.locator(".o_data_row :text-is('Done')").wait_for()
            dialog.locator("button[special=cancel]").click()
            page.locator(
                "div[name=exchange_export_progress]:has-text('1 of 1')"
            ).wait_for()
        self.assertTabMatchesDatabase()

        # The room calendar's form: its navbar, its chatter (the export's notes),
        # and its own buttons.
        with self.browsing():
            self.click("action_exchange_open_settings")
            page.locator(".o_form_view .o_statusbar_status").wait_for()
            page.reload()
            page.locator(".o_form_view .o_statusbar_status").wait_for()
            page.locator(".o-mail-Message:has-text('Export of room')").first.wait_for()
        self.assertTrue(self.text(".o_menu_brand"), "the navbar lost its app")
        with self.browsing():
            self.click("action_sync_now")
            self.toast("Sync done")
            page.locator(
                "div[name=last_sync_summary]:has-text('Nothing to do')"
            ).wait_for()
        self.assertCalendarFormMatchesDatabase(calendar)
        with self.browsing():
            self.click("action_full_resync")
            self.toast("Sync done")
            page.locator("button[name=action_full_resync]:not([disabled])").wait_for()
        self.assertCalendarFormMatchesDatabase(calendar)
        self.assertLessEqual(
            set(b for b, t in BUTTONS.items() if t == self._testMethodName),
            self.clicked,
        )

    def assertCalendarFormMatchesDatabase(self, calendar):
        calendar.invalidate_recordset()
        current = self.page.locator(".o_statusbar_status .o_arrow_button_current")
        self.assertEqual(current.get_attribute("data-value"), calendar.state)
        self.assertEqual(
            self.text(".o_field_widget[name=last_sync_summary]"),
            squash(calendar.last_sync_summary),
        )
        self.assertEqual(
            self.text(".o_field_widget[name=binding_count]"),
            str(calendar.binding_count),
        )
        self.assertEqual(
            self.text(".o_field_widget[name=health] .badge"),
            dict(calendar._fields["health"].selection)[calendar.health],
        )

    def test_odoos_save_outlook_meeting_and_overlap(self):
        """Odoo's own save authorizes too; an Outlook meeting arrives with Sync now
        and is among the room's bookings; an overlap is paired with its meeting in
        Overlaps, and cancelling the Odoo booking resolves it."""
        page = self.page
        board = self.book("Board review", 9)
        self.room.exchange_connection_id = self.connection_to_emulator()
        self.authorize_room(save="form")
        calendar = self.room.exchange_calendar_id
        self.assertEqual(calendar.state, "authorized")
        self.assertEqual(calendar.export_run_id.state, "queued")
        self.run_export_cron()

        # A meeting booked in Outlook by someone else arrives with Sync now.
        self.book_in_outlook("Design review", person=MEGAN, hour_utc=15)
        with self.browsing():
            self.click("action_exchange_sync_now")
            self.toast("1 imported from Outlook")
            page.locator(
                ".o_field_widget[name=exchange_last_sync_summary]"
                ":has-text('1 imported from Outlook')"
            ).wait_for()
        self.assertTabMatchesDatabase()
        meeting = self.env["resource.booking"].search([("name", "=", "Design review")])
        self.assertEqual(meeting.exchange_origin, "exchange")

        # Exchange sync › Room bookings shows it, without removing any filter.
        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/exchange-room-bookings?view_type=list")
            page.locator(".o_data_row:has-text('Design review')").wait_for()
        Booking = self.env["resource.booking"]
        rooms_filter = [
            (
                "combination_id.resource_ids.exchange_calendar_ids.sync_enabled",
                "=",
                True,
            )
        ]
        self.assertEqual(
            len(self.texts(".o_data_row")), Booking.search_count(rooms_filter)
        )

        # Re-sync this booking, on the booking's form.
        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/resource.booking/{board.id}")
            self.click("action_exchange_resync")
            self.toast("Re-sync requested")
            page.locator(
                ".o_field_widget[name=exchange_sync_state] .badge:text-is('Pending')"
            ).wait_for()
        self.assertEqual(board.exchange_binding_ids.sync_state, "pending")

        # An Outlook meeting over the Odoo booking: the overview shows an overlap.
        self.book_in_outlook("Walk-in", person=ALEX, hour_utc=9.25, hours=0.5)
        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/exchange-sync")
            card = page.locator(".o_kanban_record:has-text('Alpha')")
            self.click("action_sync_now", card)
            self.toast("Sync done")
            card = page.locator(".o_kanban_record:has-text('Alpha')")
            card.locator(".badge:text-is('Degraded')").wait_for()
        self.assertTrue(board.exchange_overlap)
        self.assertEqual(calendar.health, "degraded")
        self.assertEqual(calendar.overlap_count, 1)
        self.assertIn("Overlaps: 1", squash(card.inner_text()))

        with self.browsing():
            self.click("action_open_overlaps", card)
            row = page.locator(".o_data_row:has-text('Board review')")
            row.wait_for()
        self.assertEqual(len(self.texts(".o_data_row")), 1)
        walk_in = Booking.search([("name", "=", "Walk-in")])
        self.assertEqual(board.exchange_overlap_with_id, walk_in)
        cells = squash(row.inner_text())
        self.assertIn("Walk-in", cells)
        self.assertIn(walk_in.exchange_organizer_name, cells)

        with self.browsing():
            self.click("action_exchange_open_overlap", row)
            page.locator(".o_form_view div[name=exchange_overlap_alert]").wait_for()
            alert = self.text("div[name=exchange_overlap_alert]")
            page.locator(".o_breadcrumb a").last.click()
            row = page.locator(".o_data_row:has-text('Board review')")
            self.click("get_formview_action", row)
            page.locator(".o_form_view div[name=exchange_overlap_alert]").wait_for()
            page.locator(".o_breadcrumb a").last.click()
            row = page.locator(".o_data_row:has-text('Board review')")
            self.click("action_cancel", row, confirm=True)
            page.locator(".o_view_nocontent:has-text('No overlap')").wait_for()
        self.assertIn("An Odoo booking holds this room", alert)
        self.assertIn("Board review", alert)
        self.assertFalse(board.active)
        self.assertFalse(board.exchange_overlap)
        self.assertFalse(walk_in.exchange_overlap)
        self.assertEqual(calendar.overlap_count, 0)
        self.assertEqual(calendar.health, "healthy")

        # A booking Exchange refused: the overview sends to it.
        self.env["room.exchange.binding"].search(
            [("booking_id", "=", meeting.id)]
        ).write({"sync_state": "error", "sync_error": "Exchange said no"})
        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/exchange-sync")
            card = page.locator(".o_kanban_record:has-text('Alpha')")
            card.locator(".badge:text-is('Degraded')").wait_for()
            self.click("action_open_binding_errors", card)
            page.locator(".o_data_row:has-text('Exchange said no')").wait_for()
        self.assertEqual(len(self.texts(".o_data_row")), calendar.binding_error_count)
        self.assertLessEqual(
            set(b for b, t in BUTTONS.items() if t == self._testMethodName),
            self.clicked,
        )

    def test_revoked_room_authorized_again_then_removed(self):
        """Microsoft revokes the sign-in: Sync now says so and the tab offers to sign
        in again; Re-authorize on the rooms overview comes back to the overview;
        Remove Authorization leaves the room not configured, its bookings kept."""
        page = self.page
        self.book("Board review", 9)
        connection = self.connection_to_emulator()
        self.room.exchange_connection_id = connection
        self.authorize_room(save="tab")
        calendar = self.room.exchange_calendar_id
        self.run_export_cron()
        self.assertTrue(calendar.last_sync_date)

        self.emulator.identity.expire_access_tokens()
        self.emulator.identity.revoke_refresh_tokens(upn=ADELE[0])
        with self.browsing():
            page.reload()
            self.open_exchange_tab()
            self.click("action_exchange_full_resync")
            self.toast("Sync failed")
            self.wait_status("Needs re-authorization")
        shown = self.assertTabMatchesDatabase()
        self.assertEqual(calendar.state, "reauth_needed")
        self.assertIn("sign in again", shown["sentence"])
        self.assertTrue(shown["error"].startswith("Microsoft asks for a new sign-in"))

        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/exchange-sync")
            card = page.locator(".o_kanban_record:has-text('Alpha')")
            card.locator(".badge:text-is('Broken')").wait_for()
            self.click("action_cockpit_reauthorize", card)
            self.sign_in_at_microsoft(back="**/odoo/exchange-sync")
            page.locator(
                ".o_kanban_record:has-text('Alpha') .badge:text-is('Healthy')"
            ).wait_for()
        self.assertEqual(calendar.state, "authorized")
        self.assertEqual(calendar.health, "healthy")
        self.assertFalse(
            calendar.activity_ids.filtered(lambda a: "again" in (a.summary or ""))
        )
        self.assertEqual(self.text(".o_menu_brand"), "Exchange sync")

        with self.browsing():
            page.goto(f"{self.base_url()}/odoo/exchange-connections/{connection.id}")
            self.click("action_open_room_health")
            page.locator(".o_kanban_record:has-text('Alpha')").wait_for()
        self.assertEqual(
            len(self.texts(".o_kanban_record:not(.o_kanban_ghost)")),
            self.env["room.exchange.calendar"].search_count(
                [("connection_id", "=", connection.id), ("health", "=", "healthy")]
            ),
        )

        bindings = calendar.binding_ids
        with self.browsing():
            self.open_room()
            self.click("action_exchange_remove_authorization", confirm=True)
            self.wait_status("Not configured")
        self.assertTabMatchesDatabase()
        self.assertEqual(calendar.state, "not_configured")
        self.assertFalse(calendar.sync_enabled)
        self.assertTrue(bindings.exists())
        self.assertLessEqual(
            set(b for b, t in BUTTONS.items() if t == self._testMethodName),
            self.clicked,
        )

    def test_cancellations_wait_for_a_manager(self):
        """Outlook loses most of the room's meetings at once: the tab says so and
        offers Confirm the cancellations, which cancels them in Odoo."""
        page = self.page
        connection = self.connection_to_emulator()
        self.room.exchange_connection_id = connection
        self.authorize_room(save="tab")
        calendar = self.room.exchange_calendar_id
        events = [
            self.book_in_outlook(f"Meeting {hour}", person=MEGAN, hour_utc=hour)
            for hour in range(8, 14)
        ]
        self.assertTrue(calendar._sync(), calendar.last_error)
        for event in events:
            self.emulator.store.delete_event(ROOM_ADAMS, event["id"])
        with self.browsing():
            page.reload()
            self.open_exchange_tab()
            self.click("action_exchange_sync_now")
            self.toast("Sync done")
            page.locator(
                "button[name=action_exchange_confirm_cancellations]"
            ).wait_for()
        self.assertTabMatchesDatabase()
        self.assertEqual(calendar.cancellation_pending, 6)
        with self.browsing():
            self.click("action_exchange_confirm_cancellations", confirm=True)
            self.toast("Sync done")
            page.locator("div[name=exchange_error_box]").wait_for(state="detached")
        self.assertTabMatchesDatabase()
        self.assertFalse(calendar.cancellation_pending)
        cancelled = (
            self.env["resource.booking"]
            .with_context(active_test=False)
            .search(
                [("name", "like", "Meeting "), ("exchange_origin", "=", "exchange")]
            )
        )
        self.assertEqual(len(cancelled), 6)
        self.assertFalse(any(cancelled.mapped("active")))
        self.assertLessEqual(
            set(b for b, t in BUTTONS.items() if t == self._testMethodName),
            self.clicked,
        )
