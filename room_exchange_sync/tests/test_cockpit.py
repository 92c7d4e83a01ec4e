# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sync health cockpit (room health, next expiry, one-click fixes) and the
daily health check that raises and closes alerts."""

from datetime import datetime, timedelta

from lxml import etree

from odoo import fields
from odoo.tests import HttpCase, tagged
from odoo.tools.safe_eval import safe_eval

from ..graph import GraphAuthError
from .common import ADELE, ROOM_ADAMS, BrowserMixin, RoomExchangeCase


@tagged("post_install", "-at_install")
class TestSyncHealthCockpit(RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.app_connection = self.ready_connection("application")
        self.bind_room_for_sync(self.app_connection)

    # helpers

    def start_at(self, hour_utc):
        return datetime.combine(self.day, datetime.min.time()) + timedelta(
            hours=hour_utc
        )

    def outlook_booking(self, subject, hour_utc=13, hours=1.0):
        start = self.start_at(hour_utc)
        return self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            subject,
            start.isoformat(),
            (start + timedelta(hours=hours)).isoformat(),
        )

    def sync(self):
        self.assertTrue(self.calendar._sync(), self.calendar.last_error)

    def open_alerts(self, record, summary=None):
        domain = [("res_model", "=", record._name), ("res_id", "=", record.id)]
        if summary:
            domain.append(("summary", "=", summary))
        return self.env["mail.activity"].search(domain)

    def assertOneAlertPerManager(self, alerts):
        self.assertTrue(alerts)
        self.assertIn(self.manager, alerts.user_id)
        self.assertEqual(len(alerts), len(alerts.user_id))
        self.assertEqual(len(set(alerts.mapped("summary"))), 1)

    def run_health_check(self):
        self.env["room.exchange.calendar"]._cron_health_check()

    def bare_calendar(self, name="Beta", **values):
        room = self.env["resource.resource"].create(
            {
                "name": name,
                "resource_type": "material",
                "calendar_id": self.working_time.id,
            }
        )
        return self.env["room.exchange.calendar"].create({"room_id": room.id, **values})

    # health

    def test_healthy_after_a_sync(self):
        self.book_in_odoo()
        self.sync()
        self.assertEqual(self.calendar.health, "healthy")
        self.assertEqual(self.calendar.binding_pending_count, 0)
        self.assertEqual(self.calendar.binding_error_count, 0)
        self.assertEqual(self.calendar.last_push_date, self.calendar.last_sync_date)
        self.assertEqual(self.calendar.sync_mode, "application")

    def test_not_configured(self):
        calendar = self.bare_calendar()
        self.assertEqual(calendar.health, "not_configured")
        self.assertFalse(calendar.next_expiry_date)
        calendar.connection_id = self.connection
        self.assertEqual(calendar.health, "not_configured")

    def test_degraded_by_a_binding_in_error(self):
        booking = self.book_in_odoo()
        self.sync()
        booking.exchange_binding_ids.write(
            {"sync_state": "error", "sync_error": "Graph said no"}
        )
        self.assertEqual(self.calendar.health, "degraded")
        self.assertEqual(self.calendar.binding_error_count, 1)
        action = self.calendar.action_open_binding_errors()
        self.assertEqual(action["res_model"], "room.exchange.binding")
        self.assertEqual(
            self.env["room.exchange.binding"].search(action["domain"]),
            booking.exchange_binding_ids,
        )

    def test_degraded_when_stale_or_cancellations_wait(self):
        self.sync()
        self.assertEqual(self.calendar.health, "healthy")
        self.calendar.sudo().cancellation_pending = 3
        self.assertEqual(self.calendar.health, "degraded")
        self.calendar.sudo().cancellation_pending = 0
        self.assertEqual(self.calendar.health, "healthy")
        self.env["ir.config_parameter"].set_param("room_exchange_sync.stale_hours", 2)
        self.calendar.sudo().last_sync_date = fields.Datetime.now() - timedelta(hours=3)
        # Time passing is noticed by the daily health check, not by the write.
        self.env["room.exchange.calendar"]._cron_health_check()
        self.assertEqual(self.calendar.health, "degraded")
        # The next successful round makes the room fresh again.
        self.sync()
        self.assertEqual(self.calendar.health, "healthy")

    def test_broken_by_an_invalid_secret(self):
        self.sync()
        self.app_connection.client_secret_input = "no-longer-valid~secret"
        self.assertFalse(self.calendar._sync())
        self.assertEqual(self.calendar.state, "error")
        self.assertEqual(self.calendar.health, "broken")
        # Sync switched off after the failures: still broken, not "not configured".
        self.calendar.sudo().sync_enabled = False
        self.assertEqual(self.calendar.health, "broken")

    def test_broken_when_a_new_sign_in_is_needed(self):
        self.sync()
        self.calendar._mark_reauthorization_needed(
            GraphAuthError("The refresh token was revoked", reauthorization_needed=True)
        )
        self.assertEqual(self.calendar.health, "broken")

    def test_connection_summary_counts_rooms_by_health(self):
        self.sync()
        self.bare_calendar(connection_id=self.app_connection.id)
        self.assertEqual(self.app_connection.room_healthy_count, 1)
        self.assertEqual(self.app_connection.room_not_configured_count, 1)
        self.assertEqual(self.app_connection.room_broken_count, 0)
        action = self.app_connection.with_context(
            health="healthy"
        ).action_open_room_health()
        self.assertEqual(
            self.env["room.exchange.calendar"].search(action["domain"]), self.calendar
        )

    def test_test_connection_result_is_kept_in_the_chatter(self):
        before = len(self.app_connection.message_ids)
        result = self.app_connection.action_test_connection_logged()
        self.assertEqual(result["params"]["type"], "success")
        messages = self.app_connection.message_ids
        self.assertEqual(len(messages), before + 1)
        self.assertIn("Connection test succeeded", messages[0].body)

    def test_exchange_users_can_read_the_overview(self):
        self.book_in_odoo()
        self.sync()
        names = [
            "health",
            "sync_mode",
            "connection_state",
            "last_push_date",
            "binding_pending_count",
            "binding_error_count",
            "overlap_count",
            "next_expiry_date",
            "next_expiry_reason",
        ]
        for user in (self.exchange_user, self.manager):
            values = self.calendar.with_user(user).read(names)[0]
            self.assertEqual(values["health"], "healthy")
            counts = self.app_connection.with_user(user).read(["room_healthy_count"])
            self.assertEqual(counts[0]["room_healthy_count"], 1)
            self.calendar.with_user(user).action_open_overlaps()

    # next expiry

    def test_next_expiry_is_the_earliest_dependency(self):
        self.assertFalse(self.calendar.next_expiry_date)
        in_ten_days = fields.Date.today() + timedelta(days=10)
        self.app_connection.client_secret_expiry = in_ten_days
        self.assertEqual(
            self.calendar.next_expiry_date, fields.Datetime.to_datetime(in_ten_days)
        )
        self.assertEqual(self.calendar.next_expiry_reason, "Client secret")
        soon = fields.Datetime.now().replace(microsecond=0) + timedelta(days=2)
        self.env["room.exchange.subscription"].create(
            {"calendar_id": self.calendar.id, "expiration": soon}
        )
        self.calendar.invalidate_recordset(["next_expiry_date", "next_expiry_reason"])
        self.assertEqual(self.calendar.next_expiry_date, soon)
        self.assertEqual(self.calendar.next_expiry_reason, "Change notifications")

    def test_next_expiry_of_a_delegated_room_is_the_refresh_token(self):
        connection = self.emulator_connection("delegated")
        account = self.env["room.exchange.account"].create(
            {"connection_id": connection.id, "home_account_id": "adele.home"}
        )
        last_sync = fields.Datetime.now().replace(microsecond=0) - timedelta(days=5)
        calendar = self.bare_calendar(connection_id=connection.id)
        calendar.sudo().write({"account_id": account.id, "last_sync_date": last_sync})
        self.assertEqual(calendar.next_expiry_date, last_sync + timedelta(days=90))
        self.assertIn("refresh token", calendar.next_expiry_reason)
        connection.client_secret_expiry = fields.Date.today() + timedelta(days=30)
        calendar.invalidate_recordset(["next_expiry_date", "next_expiry_reason"])
        self.assertEqual(calendar.next_expiry_reason, "Client secret")

    def filter_domain(self, search_view, name):
        """The domain of the filter ``name`` of the search view ``search_view``."""
        arch = etree.fromstring(self.env.ref(search_view).arch)
        (node,) = arch.xpath(f"//filter[@name='{name}']")
        return safe_eval(node.get("domain"))

    def test_expiring_soon_filter(self):
        today = fields.Date.today()
        soon = self.emulator_connection(
            "application", client_secret_expiry=today + timedelta(days=10)
        )
        later = self.emulator_connection(
            "application", client_secret_expiry=today + timedelta(days=90)
        )
        soon_room = self.bare_calendar("Soon", connection_id=soon.id)
        later_room = self.bare_calendar("Later", connection_id=later.id)
        Calendar = self.env["room.exchange.calendar"].with_user(self.exchange_user)
        for view in ("calendar_view_search_cockpit", "calendar_view_search"):
            domain = self.filter_domain(
                f"room_exchange_sync.room_exchange_{view}", "expiring_soon"
            )
            found = Calendar.search(domain)
            self.assertIn(soon_room, found)
            self.assertNotIn(later_room, found)
            self.assertNotIn(self.calendar, found)
        # The search agrees with the computed field, whatever the operator.
        limit = fields.Datetime.now() + timedelta(days=30)
        rooms = Calendar.search([("id", "in", (soon_room + later_room).ids)])
        for operator, value, expected in (
            ("<=", limit, soon_room),
            (">", limit, later_room),
            ("!=", False, soon_room + later_room),
            ("=", False, Calendar),
        ):
            self.assertEqual(
                rooms.filtered_domain([("next_expiry_date", operator, value)]),
                expected,
            )
            self.assertEqual(
                Calendar.search(
                    [("id", "in", rooms.ids), ("next_expiry_date", operator, value)]
                ),
                expected,
                operator,
            )
        domain = self.filter_domain(
            "room_exchange_sync.room_exchange_connection_view_search",
            "expiring_soon",
        )
        found = self.env["room.exchange.connection"].search(domain)
        self.assertIn(soon, found)
        self.assertNotIn(later, found)

    # one-click fixes

    def test_fix_buttons_return_the_right_actions(self):
        self.book_in_odoo()
        action = self.calendar.action_sync_now()
        self.assertEqual(action["params"]["type"], "success")
        action = self.calendar.action_full_resync()
        self.assertEqual(action["params"]["type"], "success")
        self.assertTrue(self.calendar.last_full_sync_date)
        action = self.calendar.action_open_overlaps()
        self.assertEqual(action["res_model"], "resource.booking")
        self.assertIn(("exchange_overlap", "=", True), action["domain"])
        self.assertIn(
            ("combination_id.resource_ids", "in", self.room.ids), action["domain"]
        )

    def test_reauthorize_opens_the_sign_in_of_the_room(self):
        connection = self.ready_connection("delegated")
        calendar = self.bare_calendar(connection_id=connection.id)
        action = calendar.action_cockpit_reauthorize()
        self.assertEqual(action["type"], "ir.actions.act_url")
        self.assertIn(f"calendar_id={calendar.id}", action["url"])

    def flag_overlap(self, bookings, flag=True):
        """Flag bookings as the sync round does (a plain column update)."""
        self.env.cr.execute(
            "UPDATE resource_booking SET exchange_overlap = %s WHERE id = ANY(%s)",
            (flag, bookings.ids),
        )
        bookings.invalidate_recordset(["exchange_overlap"])
        self.calendar.invalidate_recordset(["overlap_count"])

    def test_open_overlaps_lists_the_room_overlaps(self):
        booking = self.book_in_odoo(hour_utc=9)
        other = self.book_in_odoo(hour_utc=11, name="Elsewhere")
        self.sync()
        self.assertEqual(self.calendar.overlap_count, 0)
        self.flag_overlap(booking)
        self.assertEqual(self.calendar.overlap_count, 1)
        action = self.calendar.action_open_overlaps()
        found = self.env["resource.booking"].search(action["domain"])
        self.assertIn(booking, found)
        self.assertNotIn(other, found)

    # alerts

    def test_secret_expiry_alert_is_raised_once_and_closed_when_renewed(self):
        self.connection.client_secret_expiry = fields.Date.today() + timedelta(days=10)
        self.run_health_check()
        alerts = self.open_alerts(self.connection)
        self.assertOneAlertPerManager(alerts)
        self.assertIn("Renew the client secret", alerts[0].summary)
        self.run_health_check()
        self.assertEqual(self.open_alerts(self.connection), alerts)
        self.connection.client_secret_expiry = fields.Date.today() + timedelta(days=60)
        self.run_health_check()
        self.assertFalse(self.open_alerts(self.connection))

    def test_certificate_expiry_alert(self):
        self.connection.credential_type = "certificate"
        expiry = fields.Datetime.now() + timedelta(days=5)
        # certificate_expiry is read from the PEM; set it as the compute would.
        self.env.cr.execute(
            "UPDATE room_exchange_connection SET certificate_expiry = %s WHERE id = %s",
            (expiry, self.connection.id),
        )
        self.connection.invalidate_recordset(["certificate_expiry"])
        self.run_health_check()
        alerts = self.open_alerts(self.connection)
        self.assertOneAlertPerManager(alerts)
        self.assertIn("Renew the certificate", alerts[0].summary)

    def test_stale_room_alert_is_raised_once_and_closed_after_a_sync(self):
        self.sync()
        self.run_health_check()
        self.assertFalse(self.open_alerts(self.calendar))
        self.calendar.sudo().last_sync_date = fields.Datetime.now() - timedelta(
            hours=30
        )
        self.run_health_check()
        alerts = self.open_alerts(self.calendar)
        self.assertOneAlertPerManager(alerts)
        self.assertIn("does not sync", alerts[0].summary)
        self.assertEqual(self.calendar.health, "degraded")
        self.run_health_check()
        self.assertEqual(self.open_alerts(self.calendar), alerts)
        self.sync()
        self.run_health_check()
        self.assertFalse(self.open_alerts(self.calendar))
        self.assertEqual(self.calendar.health, "healthy")

    def test_health_check_refreshes_staleness(self):
        self.sync()
        # Bypass the ORM: nothing but the clock changed since the last sync.
        self.env.cr.execute(
            "UPDATE room_exchange_calendar SET last_sync_date = %s WHERE id = %s",
            (fields.Datetime.now() - timedelta(days=2), self.calendar.id),
        )
        self.calendar.invalidate_recordset()
        self.assertEqual(self.calendar.health, "healthy")
        self.run_health_check()
        self.calendar.invalidate_recordset()
        self.assertEqual(self.calendar.health, "degraded")

    def test_overlap_alert_waits_for_the_overlaps(self):
        booking = self.book_in_odoo(hour_utc=9)
        self.sync()
        self.run_health_check()
        self.assertFalse(self.open_alerts(self.calendar))
        self.flag_overlap(booking)
        self.run_health_check()
        alerts = self.open_alerts(self.calendar)
        self.assertOneAlertPerManager(alerts)
        self.assertIn("Overlaps", alerts[0].summary)
        self.run_health_check()
        self.assertEqual(self.open_alerts(self.calendar), alerts)
        self.flag_overlap(booking, False)
        self.run_health_check()
        self.assertFalse(self.open_alerts(self.calendar))


@tagged("post_install", "-at_install")
class TestCockpitInBrowser(BrowserMixin, RoomExchangeCase, HttpCase):
    """The rooms overview and the connection's summary render, and their buttons
    work, in Chromium (Playwright), as test_browser does."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.app_connection = self.ready_connection("application")
        self.room.write({"exchange_connection_id": self.app_connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.assertTrue(self.calendar._sync(), self.calendar.last_error)
        self.page = self.open_browser()
        self.page_errors = []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def test_overview_and_connection_summary(self):
        page = self.page
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.sign_in_to_odoo(page, "exchange_manager")
            page.goto(
                f"{self.base_url()}/odoo/action-"
                "room_exchange_sync.room_exchange_calendar_action_cockpit"
            )
            card = page.locator(".o_kanban_record:has-text('Alpha')")
            card.locator("span:text-is('Healthy')").wait_for()
            self.assertEqual(
                card.locator("button[name=action_open_overlaps]").count(), 0
            )
            card.locator("button[name=action_sync_now]").click()
            page.wait_for_selector(".o_notification:has-text('Sync done')")
            page.click(".o_switch_view.o_list")
            row = page.locator(".o_data_row:has-text('Alpha')")
            row.locator("button[name=action_full_resync]").wait_for()
            page.goto(
                f"{self.base_url()}/odoo/room.exchange.connection/"
                f"{self.app_connection.id}"
            )
            page.locator(
                "button[name=action_open_room_health]:has-text('Healthy')"
            ).click()
            page.locator(".o_kanban_record:has-text('Alpha')").wait_for()
            page.goto(
                f"{self.base_url()}/odoo/room.exchange.calendar/{self.calendar.id}"
            )
            page.locator("div[name=health] span:text-is('Healthy')").wait_for()
            self.assertEqual(
                page.locator("button[name=action_cockpit_reauthorize]").count(), 0
            )
        self.assertFalse(self.page_errors)
