# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Rooms from Microsoft 365 as an Exchange manager does it, in Debian's Chromium
driven by Playwright: from the connection, filter by building and floor, select the
rooms, Map, confirm, read the results."""

from odoo.tests import HttpCase, tagged

from .common import BrowserMixin, RoomExchangeCase
from .test_room_directory import CAMPUS_BUILDINGS, DirectoryCaseMixin


@tagged("post_install", "-at_install")
class TestDirectoryInBrowser(
    DirectoryCaseMixin, BrowserMixin, RoomExchangeCase, HttpCase
):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application", places_enabled=True)
        self.page = self.open_browser()

    def search(self, field, text):
        """Type ``text`` in the search box and pick "Search <field> for: <text>"."""
        page = self.page
        page.fill(".o_searchview_input", text)
        page.locator(".o_searchview_autocomplete .o-dropdown-item").filter(
            has_text=f"Search {field} for:"
        ).click()
        page.locator(f".o_searchview_facet:has-text('{text}')").wait_for()

    def test_map_a_floor_from_the_connection(self):
        page = self.page
        floor = [self.campus_room(index) for index in range(1, 50, 5)]  # Atrium 1
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.sign_in_to_odoo(page, "exchange_manager")
            page.goto(
                f"{self.base_url()}/odoo/room.exchange.connection/{self.connection.id}"
            )
            page.click("button[name=action_open_room_directory]")
            # Grouped by building: 6 buildings of the campus and the default one.
            groups = page.locator(".o_list_view .o_group_header")
            groups.first.wait_for()
            self.assertEqual(groups.count(), CAMPUS_BUILDINGS + 1)
            self.search("Building", "Atrium")
            self.search("Floor", "Floor 1")
            page.locator(".o_list_view .o_group_header:has-text('Atrium (10)')").click()
            rows = page.locator(".o_list_view .o_data_row")
            page.wait_for_function(
                "() => document.querySelectorAll('.o_list_view .o_data_row')"
                ".length === 10"
            )
            self.assertEqual(
                sorted(rows.locator("td[name=mailbox]").all_inner_texts()),
                sorted(place.email for place in floor),
            )
            page.click("thead .o_list_record_selector input")
            page.click("button[name=action_map_selected]")
            dialog = page.locator(".modal:has(button[name=action_map])")
            dialog.locator("div[name=confirm_summary]").wait_for()
            self.assertIn(
                "10", dialog.locator("div[name=confirm_summary]").inner_text()
            )
            dialog.locator("button[name=action_map]").click()
            summary = page.locator(".modal div[name=done_summary]")
            summary.wait_for()
            self.assertIn("10 mapped", " ".join(summary.inner_text().split()))
            results = page.locator(".modal div[name=chosen_line_ids] .o_data_row")
            self.assertEqual(results.count(), 10)
            self.assertEqual(
                set(results.locator("td[name=result]").all_inner_texts()), {"Mapped"}
            )
            page.locator(".modal button[name=action_open_rooms]").click()
            page.locator(".modal").wait_for(state="detached")
            # Back in the list, the floor's rooms show as mapped.
            page.locator(".o_list_view .o_group_header").first.click()
            mapped = page.locator(".o_data_row td[name=match]:has-text('Mapped')")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.o_data_row td[name=match]')]"
                ".filter(cell => cell.innerText.includes('Mapped')).length === 10"
            )
            self.assertEqual(mapped.count(), 10)
        self.env.invalidate_all()
        calendars = self.env["room.exchange.calendar"].search(
            [("mailbox", "in", [place.email for place in floor])]
        )
        self.assertEqual(len(calendars), 10)
        self.assertEqual(set(calendars.mapped("state")), {"authorized"})
        self.assertEqual(
            sorted(calendars.room_id.mapped("name")),
            sorted(place.display_name for place in floor),
        )

    def choose_connection(self, name):
        page = self.page
        dialog = page.locator(".modal:has(div[name=connection_id])")
        dialog.locator("div[name=connection_id] input").fill(name)
        page.locator(".o-autocomplete--dropdown-item").filter(
            has_text=name
        ).first.click()
        return dialog

    def test_from_the_rooms_list_map_export_and_sign_in(self):
        """Every other button of the screen: from the rooms' list, choose the
        connection, Show the rooms, map one, Export their bookings; then, for a
        delegated connection, Sign in with Microsoft."""
        page = self.page
        delegated = self.ready_connection("delegated", places_enabled=True)
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.sign_in_to_odoo(page, "exchange_manager")
            page.goto(f"{self.base_url()}/odoo/exchange-rooms")
            page.click("button[name=action_open_room_directory]")
            dialog = self.choose_connection(self.connection.name)
            dialog.locator("button[name=action_load]").click()
            page.locator(".o_list_view .o_group_header").first.click()
            row = page.locator(".o_list_view .o_data_row").first
            row.wait_for()
            mailbox = row.locator("td[name=mailbox]").inner_text().strip()
            name = row.locator("td[name=name]").inner_text().strip()
            row.locator(".o_list_record_selector input").click()
            page.click("button[name=action_map_selected]")
            page.locator(".modal button[name=action_map]").click()
            page.locator(".modal div[name=done_summary]").wait_for()
            page.locator(".modal button[name=action_export]").click()
            # The bulk export's preview, for the room just mapped.
            preview = page.locator(".modal:has(div[name=line_ids])")
            preview.wait_for()
            self.assertIn(name, preview.inner_text())
            page.goto(f"{self.base_url()}/odoo/exchange-rooms")
            page.click("button[name=action_open_room_directory]")
            dialog = self.choose_connection(delegated.name)
            dialog.locator("button[name=action_sign_in]").click()
            page.wait_for_url(f"{self.emulator_server.base_url}/**")
        self.env.invalidate_all()
        calendar = self.env["room.exchange.calendar"].search(
            [("mailbox", "=", mailbox)]
        )
        self.assertEqual(calendar.state, "authorized")
        self.assertTrue(
            self.env["room.exchange.auth.flow"]
            .sudo()
            .search([("connection_id", "=", delegated.id)])
        )
