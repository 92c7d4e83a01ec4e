# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from lxml import etree

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form
from odoo.tools.safe_eval import safe_eval

from .common import ROOM_ADAMS, RoomExchangeCase


class TestRoomExchangeTab(RoomExchangeCase):
    def room_form_arch(self, user):
        views = (
            self.env["resource.resource"].with_user(user).get_views([(False, "form")])
        )
        return etree.fromstring(views["views"]["form"]["arch"])

    def test_form_has_exchange_tab_for_exchange_users(self):
        arch = self.room_form_arch(self.manager)
        page = arch.xpath("//notebook/page[@name='exchange']")
        self.assertTrue(page, "the room form must carry an Exchange tab")
        self.assertTrue(arch.xpath("//div[@name='exchange_oauth_alert']"))
        self.assertTrue(arch.xpath("//field[@name='exchange_mailbox']"))

    def test_exchange_tab_hidden_from_other_room_editors(self):
        arch = self.room_form_arch(self.booking_manager)
        self.assertFalse(arch.xpath("//page[@name='exchange']"))

    def test_status_only_for_exchange_users(self):
        arch = self.room_form_arch(self.exchange_user)
        self.assertTrue(arch.xpath("//field[@name='exchange_state']"))
        self.assertFalse(arch.xpath("//field[@name='exchange_mailbox']"))

    def test_alert_until_a_connection_is_ready(self):
        form = Form(self.room.with_user(self.manager))
        self.assertFalse(form.exchange_oauth_ready)
        self.assertEqual(form.exchange_state, "not_configured")
        self.ready_connection()
        self.room.invalidate_recordset(["exchange_oauth_ready"])
        self.assertTrue(Form(self.room.with_user(self.manager)).exchange_oauth_ready)

    def test_no_dead_buttons(self):
        form = Form(self.room.with_user(self.manager))
        self.assertFalse(form.exchange_can_authorize)
        self.assertFalse(form.exchange_can_remove_authorization)
        self.assertFalse(form.exchange_can_export)

    def test_configure_room_through_the_form(self):
        """Odoo's own save of the form authorizes the room (the tab's Save is not
        needed, issue 16): the booking set-up is made."""
        self.emulator.reset()
        connection = self.ready_connection("application")
        rooms = self.env.ref("room_exchange_sync.resource_resource_action_rooms")
        room = self.room.with_user(self.manager).with_context(
            **safe_eval(rooms.context)
        )
        with Form(room) as form:
            form.exchange_connection_id = connection
            form.exchange_mailbox = ROOM_ADAMS
        calendar = self.room.exchange_calendar_id
        self.assertEqual(calendar.state, "authorized", calendar.last_error)
        self.assertTrue(calendar.sync_enabled)
        self.assertEqual(calendar.combination_id.resource_ids, self.room)
        self.assertEqual(calendar.booking_type_id.name, "Exchange room booking")
        self.assertIn(
            calendar.combination_id,
            calendar.booking_type_id.combination_rel_ids.combination_id,
        )
        self.assertFalse(calendar.partner_id.email)
        attendances = calendar.booking_type_id.resource_calendar_id.attendance_ids
        self.assertEqual(len(attendances), 7)
        self.assertEqual(set(attendances.mapped("hour_to")), {24.0})

    def test_only_managers_start_a_sign_in(self):
        """Re-authorize (rooms overview) and Authorize (the tab) start a Microsoft
        sign-in: an Exchange sync user is refused before anything else."""
        self.room.write({"exchange_connection_id": self.ready_connection().id})
        calendar = self.room.exchange_calendar_id
        with self.assertRaises(AccessError):
            calendar.with_user(self.exchange_user).action_cockpit_reauthorize()
        action = calendar.with_user(self.manager).action_cockpit_reauthorize()
        self.assertIn("back=overview", action["url"])
        action = self.room.with_user(self.manager).action_exchange_authorize()
        self.assertIn("back=room", action["url"])

    def test_existing_single_room_combination_is_reused(self):
        combination = self.single_room_combination(self.room)
        self.room.with_user(self.manager).write(
            {
                "exchange_connection_id": self.connection.id,
                "exchange_mailbox": "alpha@contoso.test",
                "exchange_sync_enabled": True,
            }
        )
        self.assertEqual(self.room.exchange_calendar_id.combination_id, combination)

    def test_enabling_sync_explains_what_is_missing(self):
        flexible_room = self.env["resource.resource"].create(
            {"name": "Beta", "resource_type": "material", "calendar_id": False}
        )
        with self.assertRaises(ValidationError) as caught:
            flexible_room.with_user(self.manager).write({"exchange_sync_enabled": True})
        message = str(caught.exception)
        self.assertIn("has no working time", message)
        self.assertIn("no Microsoft 365 connection", message)
        self.assertIn("room mailbox address is missing", message)
        self.assertFalse(flexible_room.exchange_calendar_id)

    def test_people_are_not_rooms(self):
        person = self.env["resource.resource"].create(
            {"name": "Adele", "resource_type": "user", "user_id": self.manager.id}
        )
        with self.assertRaisesRegex(ValidationError, "only material resources"):
            person.write(
                {
                    "exchange_connection_id": self.connection.id,
                    "exchange_mailbox": "adele@contoso.test",
                    "exchange_sync_enabled": True,
                }
            )

    def test_mailbox_must_be_an_address(self):
        with self.assertRaisesRegex(ValidationError, "is not an e-mail address"):
            self.room.write({"exchange_mailbox": "room alpha"})

    def test_one_mailbox_one_room(self):
        values = {
            "exchange_connection_id": self.connection.id,
            "exchange_mailbox": "alpha@contoso.test",
        }
        self.room.write(values)
        twin = self.room.copy({"name": "Alpha twin"})
        with self.assertRaisesRegex(ValidationError, "already used by room"):
            twin.write({**values, "exchange_mailbox": "ALPHA@contoso.test"})

    def test_settings_page_links_to_connections(self):
        admin = self.env.ref("base.user_admin")
        views = (
            self.env["res.config.settings"]
            .with_user(admin)
            .get_views([(False, "form")])
        )
        arch = etree.fromstring(views["views"]["form"]["arch"])
        self.assertTrue(arch.xpath("//app[@name='room_exchange_sync']"))
