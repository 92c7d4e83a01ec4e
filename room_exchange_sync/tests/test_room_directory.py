# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Rooms from Microsoft 365 (wizards/room_exchange_directory.py) and the daily
directory refresh (models/room_directory.py), against the emulator over HTTPS with
its campus scenario: 300 rooms in 6 buildings with room lists, every 10th room
outside the app's RBAC scope, every 3rd only readable by Adele."""

from datetime import datetime, timedelta
from unittest.mock import patch

import requests
from lxml import etree

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from ..models import room_directory
from ..models.room_exchange_connection import CALLBACK_PATH
from .common import ADELE, DELEGATED_APP, MANAGER, RoomExchangeCase

CAMPUS_BUILDINGS = 6
CAMPUS_ROOMS = 300
PROBE_SUBJECT = "Odoo room sync permission check"


class DirectoryCaseMixin:
    """The emulator with the campus scenario, and the screen as a manager uses it."""

    @classmethod
    def start_emulator(cls):
        from tests.emulator import EmulatorServer
        from tests.emulator.campus import campus_scenario

        scenario = campus_scenario(CAMPUS_BUILDINGS, CAMPUS_ROOMS)
        cls.emulator_server = EmulatorServer(scenario=scenario).start()
        cls.addClassCleanup(cls.emulator_server.stop)
        cls.emulator = cls.emulator_server.emulator

    def campus_room(self, index):
        """The ``index``-th campus room (1-based), as the scenario numbers them."""
        return self.emulator.scenario.rooms[3 + index]

    def open_screen(self, connection, user=None):
        """*Rooms from Microsoft 365* from the connection's button; returns the
        session (room.exchange.directory) whose rooms the action lists."""
        user = user or self.manager
        action = connection.with_user(user).action_open_room_directory()
        self.assertEqual(action["res_model"], "room.exchange.directory.room")
        ((_field, _operator, directory_id),) = action["domain"]
        return self.env["room.exchange.directory"].with_user(user).browse(directory_id)

    def lines(self, directory, domain=()):
        return (
            self.env["room.exchange.directory.room"]
            .with_user(directory.env.user)
            .search([("directory_id", "=", directory.id), *domain])
        )

    def map_rooms(self, directory, domain):
        """Select the rooms of ``domain`` in the list, Map, confirm: the session."""
        chosen = self.lines(directory, domain)
        self.assertTrue(chosen)
        action = chosen.action_map_selected()
        self.assertEqual(action["res_id"], directory.id)
        self.assertEqual(directory.state, "confirm")
        directory.action_map()
        self.assertEqual(directory.state, "done")
        return chosen

    def assertRefused(self, chosen, mailboxes, *texts):
        """Exactly ``mailboxes`` were refused, with ``texts`` and the mailbox in
        the reason, and no Odoo room; returns their lines."""
        refused = chosen.filtered(lambda line: line.result == "refused")
        self.assertEqual(set(refused.mapped("mailbox")), set(mailboxes))
        for line in refused:
            for text in (*texts, line.mailbox):
                self.assertIn(text, line.result_message)
            self.assertFalse(line.room_id)
        return refused

    def graph_http(self):
        """Graph HTTP round trips since the log was last cleared ($batch = 1)."""
        return [
            entry
            for entry in self.emulator.request_log
            if entry["path"].startswith("/v1.0") and not entry["batch"]
        ]

    def probe_events_left(self, mailboxes):
        return [
            event
            for mailbox in mailboxes
            for event in self.emulator.store.snapshot(mailbox)
            if event.get("subject") == PROBE_SUBJECT
        ]


@tagged("post_install", "-at_install")
class TestRoomsFromDirectory(DirectoryCaseMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application", places_enabled=True)

    def test_the_screen_lists_the_tenants_rooms_with_their_room_lists(self):
        self.emulator.clear_log()
        directory = self.open_screen(self.connection)
        lines = self.lines(directory)
        self.assertEqual(len(lines), CAMPUS_ROOMS + 4)
        # 4 pages of 100 rooms, 1 page of room lists, the 6 room lists' first pages
        # in one $batch: one request per page.
        self.assertEqual(len(self.graph_http()), 4 + 1 + 1)
        place = self.campus_room(7)  # atrium.202
        line = lines.filtered(lambda line: line.mailbox == place.email)
        self.assertRecordValues(
            line,
            [
                {
                    "name": place.display_name,
                    "capacity": place.capacity,
                    "building": "Atrium",
                    "floor": "Floor 2",
                    "room_list": "Atrium rooms",
                    "match": "new",
                    "room_id": False,
                }
            ],
        )
        Line = self.env["room.exchange.directory.room"]
        by_building = dict(
            Line._read_group(
                [("directory_id", "=", directory.id)], ["building"], ["__count"]
            )
        )
        self.assertEqual(by_building["Atrium"], 50)
        self.assertEqual(by_building["Brussels HQ"], 4)
        by_list = dict(
            Line._read_group(
                [("directory_id", "=", directory.id)], ["room_list"], ["__count"]
            )
        )
        # Every 25th room is in no room list, nor are the four default rooms.
        self.assertEqual(by_list["Atrium rooms"], 48)
        self.assertEqual(by_list[False], 4 + CAMPUS_ROOMS // 25)

    def test_the_screen_opens_from_the_rooms_list(self):
        Room = self.env["resource.resource"].with_user(self.manager)
        rooms = self.env.ref("room_exchange_sync.resource_resource_action_rooms")
        arch = Room.with_context(**safe_eval(rooms.context)).get_views(
            [(False, "list")]
        )["views"]["list"]["arch"]
        button = etree.fromstring(arch).xpath(
            "//header/button[@name='action_open_room_directory']"
        )
        self.assertTrue(button)
        # The only connection that may read the directory: its rooms at once.
        action = Room.action_open_room_directory()
        self.assertEqual(action["res_model"], "room.exchange.directory.room")
        # Two of them: the screen asks which one.
        self.ready_connection("application", places_enabled=True)
        action = Room.action_open_room_directory()
        self.assertEqual(
            (action["res_model"], action["target"]), ("room.exchange.directory", "new")
        )
        self.assertNotIn("res_id", action)
        Directory = self.env["room.exchange.directory"].with_user(self.manager)
        directory = Directory.create({"connection_id": self.connection.id})
        action = directory.action_load()
        self.assertEqual(action["domain"], [("directory_id", "=", directory.id)])
        self.assertEqual(len(directory.line_ids), CAMPUS_ROOMS + 4)

    def test_filters_and_grouping_of_the_screen(self):
        directory = self.open_screen(self.connection)
        self.map_rooms(directory, [("mailbox", "=", self.campus_room(1).email)])
        directory = self.open_screen(self.connection)
        Line = self.env["room.exchange.directory.room"].with_user(self.manager)
        search = Line.get_views([(False, "search")])["views"]["search"]["arch"]
        arch = etree.fromstring(search)

        def filtered(name):
            node = arch.xpath(f"//filter[@name='{name}']")[0]
            domain = safe_eval(node.get("domain"))
            return self.lines(directory, domain)

        self.assertEqual(len(filtered("mapped")), 1)
        self.assertEqual(len(filtered("not_mapped")), CAMPUS_ROOMS + 4 - 1)
        for name in ("group_building", "group_floor", "group_room_list"):
            node = arch.xpath(f"//filter[@name='{name}']")[0]
            group_by = safe_eval(node.get("context"))["group_by"]
            groups = Line._read_group(
                [("directory_id", "=", directory.id)], [group_by], ["__count"]
            )
            self.assertGreater(len(groups), 5, name)
        # The search box finds a room by its name or its mailbox.
        field = arch.xpath("//field[@name='name']")[0]
        domain = safe_eval(field.get("filter_domain"), {"self": "beacon.3"})
        self.assertEqual(len(self.lines(directory, domain)), 10)

    def test_map_new_and_existing_rooms(self):
        floor_1 = [self.campus_room(index) for index in range(1, 50, 5)]
        mailboxes = [place.email for place in floor_1]
        # An Odoo room with the name of one, a room with the mailbox of another.
        namesake = self.env["resource.resource"].create(
            {
                "name": floor_1[2].display_name,
                "resource_type": "material",
                "calendar_id": self.working_time.id,
            }
        )
        self.room.write({"exchange_mailbox": floor_1[3].email})
        by_mailbox = self.room.exchange_calendar_id
        rooms_before = self.env["resource.resource"].search_count([])
        directory = self.open_screen(self.connection)
        chosen = self.lines(
            directory, [("building", "=", "Atrium"), ("floor", "=", "Floor 1")]
        )
        self.assertEqual(sorted(chosen.mapped("mailbox")), sorted(mailboxes))
        chosen.action_map_selected()
        # The matches are shown for confirmation before anything is written.
        self.assertEqual(
            {(line.room_id, line.match) for line in directory.match_line_ids},
            {(namesake, "name"), (self.room, "mailbox")},
        )
        self.assertEqual(
            (
                directory.to_map_count,
                directory.to_create_count,
                directory.to_match_count,
            ),
            (10, 8, 2),
        )
        self.emulator.clear_log()
        directory.action_map()
        # The access checks of ten rooms: reads, probe events, deletions, each one
        # $batch (20 requests per round trip) where one at a time takes 40.
        self.assertEqual(len(self.graph_http()), 3)
        self.assertEqual(
            set(chosen.mapped("result")), {"mapped"}, chosen.mapped("result_message")
        )
        self.assertEqual(directory.mapped_count, 10)
        self.assertEqual(
            self.env["resource.resource"].search_count([]), rooms_before + 8
        )
        self.assertFalse(self.probe_events_left(mailboxes))
        for place in floor_1:
            line = chosen.filtered(
                lambda line, place=place: line.mailbox == place.email
            )
            calendar = line.calendar_id
            room = line.room_id
            self.assertRecordValues(
                calendar,
                [
                    {
                        "connection_id": self.connection.id,
                        "mailbox": place.email,
                        "state": "authorized",
                        "sync_enabled": True,
                        "directory_state": "listed",
                    }
                ],
            )
            self.assertTrue(calendar.calendar_external_id)
            self.assertTrue(calendar.combination_id)
            self.assertEqual(room.room_capacity, place.capacity)
            self.assertEqual(
                (room.room_building, room.room_floor, room.room_attribute_source),
                ("Atrium", "Floor 1", "directory"),
            )
            devices = [place.video_device_name, place.display_device_name]
            self.assertEqual(
                room.room_equipment or "",
                ", ".join(place.tags + [d for d in devices if d]),
            )
        # Matched rooms are reused: the name one keeps its record, the mailbox one
        # its room calendar (and its name).
        self.assertEqual(
            chosen.filtered(lambda line: line.mailbox == floor_1[2].email).room_id,
            namesake,
        )
        self.assertEqual(self.room.exchange_calendar_id, by_mailbox)
        self.assertEqual(self.room.name, "Alpha")
        created = chosen.room_id - namesake - self.room
        self.assertEqual(
            sorted(created.mapped("name")),
            sorted(p.display_name for p in floor_1 if p not in floor_1[2:4]),
        )
        self.assertEqual(
            set(created.mapped("calendar_id")), {self.env.company.resource_calendar_id}
        )

    def test_a_match_can_be_refused_for_a_new_room(self):
        place = self.campus_room(1)
        namesake = self.env["resource.resource"].create(
            {"name": place.display_name, "resource_type": "material"}
        )
        directory = self.open_screen(self.connection)
        line = self.lines(directory, [("mailbox", "=", place.email)])
        line.action_map_selected()
        self.assertEqual(directory.match_line_ids, line)
        directory.write(
            {"match_line_ids": [Command.update(line.id, {"use_match": False})]}
        )
        self.assertEqual(directory.to_create_count, 1)
        directory.action_map()
        self.assertEqual(line.result, "mapped")
        self.assertNotEqual(line.room_id, namesake)
        self.assertEqual(line.room_id.name, place.display_name)
        self.assertFalse(namesake.exchange_calendar_ids)

    def test_rooms_outside_the_rbac_scope_are_refused_with_the_command(self):
        floor_5 = [self.campus_room(index) for index in range(5, 51, 5)]
        outside = {place.email for place in floor_5[1::2]}  # indexes 10, 20...
        rooms_before = self.env["resource.resource"].search_count([])
        directory = self.open_screen(self.connection)
        chosen = self.map_rooms(
            directory, [("building", "=", "Atrium"), ("floor", "=", "Floor 5")]
        )
        self.assertRefused(chosen, outside, "RBAC for Applications")
        self.assertEqual(len(chosen.filtered(lambda line: line.result == "mapped")), 5)
        self.assertEqual(
            self.env["resource.resource"].search_count([]), rooms_before + 5
        )
        self.assertEqual((directory.mapped_count, directory.refused_count), (5, 5))

    def test_a_second_run_maps_only_what_is_missing(self):
        directory = self.open_screen(self.connection)
        floor = [("building", "=", "Beacon"), ("floor", "=", "Floor 5")]
        first = self.map_rooms(directory, floor)
        mapped = first.filtered(lambda line: line.result == "mapped")
        self.assertEqual(len(mapped), 5)  # the other five are outside the scope
        rooms_before = self.env["resource.resource"].search_count([])
        self.emulator.scenario.app(self.connection.client_id).rbac_scope = None
        directory = self.open_screen(self.connection)
        self.assertEqual(
            set(self.lines(directory, floor).mapped("match")), {"mapped", "new"}
        )
        self.emulator.clear_log()
        again = self.map_rooms(directory, floor)
        self.assertEqual(
            sorted(again.mapped("result")), ["already"] * 5 + ["mapped"] * 5
        )
        # Only the missing rooms were checked: 4 requests each.
        batched = [e for e in self.emulator.request_log if e["batch"]]
        self.assertEqual(len(batched), 5 * 4)
        self.assertEqual(
            self.env["resource.resource"].search_count([]), rooms_before + 5
        )
        self.assertEqual(
            len(
                self.env["room.exchange.calendar"].search(
                    [("mailbox", "in", again.mapped("mailbox"))]
                )
            ),
            10,
        )

    def test_a_failing_room_never_undoes_the_others(self):
        directory = self.open_screen(self.connection)
        domain = [("building", "=", "Cedar"), ("floor", "=", "Floor 1")]
        broken = self.lines(directory, domain)[3]
        Calendar = type(self.env["room.exchange.calendar"])
        original = Calendar._prepare_booking_setup

        def setup(calendars):
            original(calendars)
            if broken.mailbox in calendars.mapped("mailbox"):
                raise ValidationError(calendars.env._("The room broke after binding."))

        with patch.object(Calendar, "_prepare_booking_setup", setup):
            chosen = self.map_rooms(directory, domain)
        failed = chosen.filtered(lambda line: line.mailbox == broken.mailbox)
        self.assertEqual(failed.result, "refused")
        self.assertIn("broke after binding", failed.result_message)
        self.assertFalse(failed.room_id)
        self.assertFalse(
            self.env["room.exchange.calendar"].search(
                [("mailbox", "=", broken.mailbox)]
            )
        )
        self.assertFalse(
            self.env["resource.resource"].search([("name", "=", failed.name)])
        )
        others = chosen - failed
        self.assertEqual(set(others.mapped("result")), {"mapped"})
        self.assertEqual(set(others.calendar_id.mapped("state")), {"authorized"})

    def test_new_rooms_need_a_working_time_and_time_zone(self):
        directory = self.open_screen(self.connection)
        self.lines(directory)[:2].action_map_selected()
        directory.working_time_id = False
        self.emulator.clear_log()
        with self.assertRaisesRegex(UserError, "working time"):
            directory.action_map()
        self.assertFalse(self.graph_http())

    def test_export_of_the_mapped_rooms_bookings(self):
        place = self.campus_room(2)
        # An existing Odoo room with future bookings, matched by name.
        self.room.name = place.display_name
        Calendar = self.env["room.exchange.calendar"]
        self.room.calendar_id = Calendar._around_the_clock_calendar(self.env.company)
        combination = self.single_room_combination(self.room)
        booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Meeting room",
                "resource_calendar_id": self.room.calendar_id.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": combination.id})
                ],
            }
        )
        requester = self.env["res.partner"].create({"name": "Requester"})
        start = datetime.combine(
            fields.Date.today() + timedelta(days=10), datetime.min.time()
        ) + timedelta(hours=9)
        self.env["resource.booking"].create(
            [
                {
                    "name": f"Board {hour}",
                    "type_id": booking_type.id,
                    "combination_auto_assign": False,
                    "combination_id": combination.id,
                    "partner_ids": [Command.set(requester.ids)],
                    "start": start + timedelta(hours=hour),
                    "duration": 1.0,
                }
                for hour in (0, 2)
            ]
        )
        directory = self.open_screen(self.connection)
        chosen = self.map_rooms(
            directory, [("mailbox", "in", [place.email, self.campus_room(3).email])]
        )
        self.assertEqual(set(chosen.mapped("result")), {"mapped"})
        action = directory.action_export()
        wizard = self.env["room.exchange.export"].browse(action["res_id"])
        self.assertEqual(wizard.state, "preview")
        self.assertEqual(wizard.room_ids, chosen.room_id)
        self.assertEqual(wizard.to_export_count, 2)
        self.assertEqual(self.emulator.store.snapshot(place.email), [])


@tagged("post_install", "-at_install")
class TestDelegatedDirectory(DirectoryCaseMixin, RoomExchangeCase):
    """One signed-in account serves every room it may edit. A TransactionCase runs
    the sign-in's steps directly (as test_sync_scenarios does); the controller's
    route is exercised in TestDirectorySignInRoute."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("delegated", places_enabled=True)
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(
            self.connection.redirect_uri
        )

    def sign_in(self, person=ADELE):
        from tests.emulator.people import sign_in

        microsoft = requests.Session()
        microsoft.trust_env = False
        microsoft.verify = self.emulator_server.ca_bundle_path
        Flow = self.env["room.exchange.auth.flow"].with_user(self.manager)
        auth_uri = Flow._start_for_connection(
            self.connection.with_user(self.manager), "test-session"
        )
        url, fields_ = sign_in(microsoft, auth_uri, *person)
        flow = Flow._from_state(fields_["state"], "test-session")
        self.assertFalse(flow._finish(fields_))
        return self.env["room.exchange.account"].search(
            [("connection_id", "=", self.connection.id)]
        )

    def test_without_an_account_the_screen_asks_to_sign_in(self):
        action = self.connection.with_user(self.manager).action_open_room_directory()
        self.assertEqual(action["res_model"], "room.exchange.directory")
        directory = self.env["room.exchange.directory"].browse(action["res_id"])
        self.assertEqual(directory.state, "choose")
        with self.assertRaisesRegex(UserError, "Sign in with a Microsoft account"):
            directory.with_user(self.manager).action_load()
        url = directory.with_user(self.manager).action_sign_in()["url"]
        self.assertEqual(
            url,
            f"/room_exchange_sync/oauth/start_directory?connection_id={self.connection.id}",
        )

    def test_one_account_serves_the_rooms_it_may_edit(self):
        account = self.sign_in()
        self.assertEqual(account.username.lower(), ADELE[0].lower())
        directory = self.open_screen(self.connection)
        self.assertEqual(directory.account_id, account)
        floor_1 = [self.campus_room(index) for index in range(1, 50, 5)]
        read_only = {place.email for place in floor_1 if floor_1.index(place) % 3 == 1}
        chosen = self.map_rooms(
            directory, [("building", "=", "Atrium"), ("floor", "=", "Floor 1")]
        )
        refused = self.assertRefused(
            chosen,
            read_only,
            "can only read the calendar",
            "Set-MailboxFolderPermission",
            account.username,
        )
        mapped = chosen - refused
        self.assertEqual(len(mapped), 7)
        self.assertEqual(set(mapped.calendar_id.mapped("account_id")), {account})
        self.assertEqual(set(mapped.calendar_id.mapped("state")), {"authorized"})
        self.assertEqual(set(mapped.calendar_id.mapped("auth_mode")), {"delegated"})
        self.assertFalse(self.probe_events_left(mapped.mapped("mailbox")))

    def test_a_revoked_sign_in_is_reported_for_the_batch(self):
        self.sign_in()
        directory = self.open_screen(self.connection)
        self.lines(directory)[:3].action_map_selected()
        self.emulator.identity.expire_access_tokens()
        self.emulator.identity.revoke_refresh_tokens(upn=ADELE[0])
        with self.assertRaisesRegex(UserError, "sign in again"):
            directory.action_map()


@tagged("post_install", "-at_install")
class TestDirectoryRefresh(DirectoryCaseMixin, RoomExchangeCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application", places_enabled=True)
        directory = self.open_screen(self.connection)
        self.mapped = self.map_rooms(
            directory, [("building", "=", "Delta"), ("floor", "=", "Floor 1")]
        )
        self.assertEqual(set(self.mapped.mapped("result")), {"mapped"})
        self.calendars = self.mapped.calendar_id
        # The mapping counts as a check: back-date it so that the job is due.
        self.calendars.write(
            {"directory_checked_date": fields.Datetime.now() - timedelta(days=1)}
        )

    def run_cron(self, chunk=None):
        """The cron job's own code (its server action); its committed steps are
        recorded instead of committed (the test transaction must not commit)."""
        commits = []

        def no_commit(cron, processed=0, *, remaining=None, deactivate=False):
            commits.append((processed, remaining))
            return float("inf")

        Cron = type(self.env["ir.cron"])
        cron = self.env.ref("room_exchange_sync.ir_cron_room_exchange_directory")
        self.assertTrue(cron.active)
        with (
            patch.object(Cron, "_commit_progress", no_commit),
            patch.object(room_directory, "REFRESH_CHUNK", chunk or 100),
        ):
            cron.ir_actions_server_id.run()
        self.env.invalidate_all()
        return commits

    def calendar_of(self, place):
        return self.calendars.filtered(lambda c: c.mailbox == place.email)

    def test_attribute_changes_reach_odoo_and_are_noted(self):
        places = [self.emulator.scenario.room(m) for m in self.mapped.mapped("mailbox")]
        changed, renamed, untouched = places[0], places[1], places[2]
        self.emulator.update_room(
            changed.email, capacity=42, floor_label="Mezzanine", tags=["piano"]
        )
        self.emulator.update_room(renamed.email, display_name="Delta Lounge")
        self.emulator.update_room(untouched.email, capacity=99)
        kept = self.calendar_of(untouched).room_id
        kept.room_attribute_source = "odoo"
        kept_capacity = kept.room_capacity
        commits = self.run_cron(chunk=4)
        self.assertEqual(commits, [(4, 6), (4, 2), (2, 0)])
        room = self.calendar_of(changed).room_id
        self.assertEqual((room.room_capacity, room.room_floor), (42, "Mezzanine"))
        self.assertTrue(room.room_equipment.startswith("piano"))
        note = self.calendar_of(changed).message_ids[:1].body
        self.assertIn("capacity", note)
        self.assertIn("42", note)
        self.assertIn("Mezzanine", note)
        self.assertIn("capacity", self.calendar_of(changed).directory_note)
        self.assertEqual(self.calendar_of(renamed).room_id.name, "Delta Lounge")
        self.assertEqual(kept.room_capacity, kept_capacity)
        self.assertNotEqual(kept.room_capacity, 99)
        self.assertEqual(set(self.calendars.mapped("directory_state")), {"listed"})
        # Checked today: the next run has nothing to do, and asks Graph nothing.
        self.emulator.clear_log()
        self.assertEqual(self.run_cron(), [])
        self.assertFalse(self.emulator.request_log)

    def test_rooms_that_leave_the_directory_are_flagged_never_deleted(self):
        places = [self.emulator.scenario.room(m) for m in self.mapped.mapped("mailbox")]
        hidden, deleted, descoped = places[0], places[1], places[2]
        self.emulator.update_room(hidden.email, hidden=True)
        self.emulator.remove_room(deleted.email)
        app = self.emulator.scenario.app(self.connection.client_id)
        app.rbac_scope = [a for a in app.rbac_scope if a != descoped.email]
        self.run_cron()
        self.assertEqual(self.calendar_of(hidden).directory_state, "removed")
        self.assertEqual(self.calendar_of(deleted).directory_state, "removed")
        self.assertEqual(self.calendar_of(descoped).directory_state, "out_of_reach")
        others = self.calendars - self.calendar_of(hidden) - self.calendar_of(deleted)
        others -= self.calendar_of(descoped)
        self.assertEqual(set(others.mapped("directory_state")), {"listed"})
        # Nothing deleted; flagged on the rooms overview.
        flagged = self.calendar_of(hidden) | self.calendar_of(deleted)
        flagged |= self.calendar_of(descoped)
        self.assertTrue(flagged.exists() and flagged.room_id.exists())
        self.assertIn(
            "Not in the directory", self.calendar_of(hidden).message_ids[:1].body
        )
        # Syncing, not in error yet: the directory makes them degraded.
        flagged.write({"state": "syncing", "last_sync_date": fields.Datetime.now()})
        self.assertEqual(set(flagged.mapped("health")), {"degraded"})
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_calendar_action_cockpit"
        )
        search = self.env["room.exchange.calendar"].get_views(
            [(action["search_view_id"][0], "search")]
        )["views"]["search"]["arch"]
        node = etree.fromstring(search).xpath("//filter[@name='left_directory']")[0]
        self.assertEqual(
            self.env["room.exchange.calendar"].search(safe_eval(node.get("domain"))),
            flagged,
        )
        # The daily health check gives the managers a to-do about each.
        self.env["room.exchange.calendar"]._cron_health_check()
        for calendar in flagged:
            todo = self.env["mail.activity"].search(
                [
                    ("res_model", "=", "room.exchange.calendar"),
                    ("res_id", "=", calendar.id),
                    ("summary", "like", "left the directory"),
                ]
            )
            self.assertIn(self.manager, todo.user_id)
        # Back in the directory: listed again, the to-do closed.
        self.emulator.update_room(hidden.email, hidden=False)
        self.calendars.write(
            {"directory_checked_date": fields.Datetime.now() - timedelta(days=1)}
        )
        self.run_cron()
        self.assertEqual(self.calendar_of(hidden).directory_state, "listed")
        self.env["room.exchange.calendar"]._cron_health_check()
        self.assertFalse(
            self.env["mail.activity"].search(
                [
                    ("res_model", "=", "room.exchange.calendar"),
                    ("res_id", "=", self.calendar_of(hidden).id),
                    ("summary", "like", "left the directory"),
                ]
            )
        )

    def test_an_unreadable_directory_changes_nothing(self):
        self.emulator.faults.add(
            {
                "kind": "status",
                "status": 403,
                "code": "ErrorAccessDenied",
                "path": "/places/",
                "times": None,
            }
        )
        commits = self.run_cron()
        self.assertEqual(commits, [(10, 0)])
        self.assertEqual(set(self.calendars.mapped("directory_state")), {"listed"})
        self.assertTrue(
            all(
                date < fields.Datetime.now() - timedelta(hours=20)
                for date in self.calendars.mapped("directory_checked_date")
            )
        )


@tagged("post_install", "-at_install")
class TestDirectoryAccess(DirectoryCaseMixin, RoomExchangeCase):
    """Only Exchange sync managers, and only within their companies."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application", places_enabled=True)

    def test_non_managers_are_refused_everywhere(self):
        directory = self.open_screen(self.connection)
        line = self.lines(directory)[:1]
        for user in (self.exchange_user, self.booking_manager, self.booking_user):
            with self.assertRaises(AccessError, msg=user.login):
                self.connection.with_user(user).action_open_room_directory()
            with self.assertRaises(AccessError, msg=user.login):
                self.env["resource.resource"].with_user(
                    user
                ).action_open_room_directory()
            with self.assertRaises(AccessError, msg=user.login):
                self.env["room.exchange.directory"].with_user(user).create(
                    {"connection_id": self.connection.id}
                )
            for method in (
                "action_load",
                "action_open_rooms",
                "action_sign_in",
                "action_map",
                "action_export",
            ):
                with self.assertRaises(AccessError, msg=f"{user.login} {method}"):
                    getattr(directory.with_user(user), method)()
            with self.assertRaises(AccessError, msg=user.login):
                line.with_user(user).action_map_selected()

    def test_a_session_is_its_managers_own(self):
        directory = self.open_screen(self.connection)
        other = new_test_user(
            self.env,
            login="other_exchange_manager",
            groups=f"base.group_user,{MANAGER}",
        )
        with self.assertRaises(AccessError):
            directory.with_user(other).action_map()
        self.assertFalse(
            self.env["room.exchange.directory.room"]
            .with_user(other)
            .search([("directory_id", "=", directory.id)])
        )

    def test_company_boundaries(self):
        company_b = self.env["res.company"].create({"name": "Fabrikam"})
        manager_b = new_test_user(
            self.env,
            login="exchange_manager_b",
            groups="base.group_user,room_exchange_sync.room_exchange_sync_group_manager",
            company_id=company_b.id,
            company_ids=[Command.set(company_b.ids)],
        )
        self.connection.company_id = self.env.company
        # The connection of company A is out of reach of B's manager...
        with self.assertRaises(AccessError):
            self.connection.with_user(manager_b).action_open_room_directory()
        with self.assertRaises(UserError):  # AccessError or ValidationError
            self.env["room.exchange.directory"].with_user(manager_b).create(
                {"connection_id": self.connection.id}
            ).action_load()
        with self.assertRaises(AccessError):
            self.room.with_user(manager_b).action_open_room_directory()
        # ...and so are A's sessions and their rooms.
        directory = self.open_screen(self.connection)
        for method in ("action_load", "action_open_rooms", "action_map"):
            with self.assertRaises(AccessError, msg=method):
                getattr(directory.with_user(manager_b), method)()
        with self.assertRaises(AccessError):
            self.lines(directory)[:1].with_user(manager_b).action_map_selected()
        # A's rooms are never matched into B's session.
        connection_b = self.ready_connection(
            "application", places_enabled=True, company_id=company_b.id
        )
        self.room.name = self.campus_room(1).display_name
        directory_b = self.open_screen(connection_b.with_user(manager_b), manager_b)
        line = self.lines(directory_b, [("mailbox", "=", self.campus_room(1).email)])
        self.assertEqual((line.match, line.room_id.id), ("new", False))
        # B's new rooms belong to B.
        self.map_rooms(directory_b, [("mailbox", "=", self.campus_room(1).email)])
        self.assertEqual(line.room_id.company_id, company_b)
        self.assertEqual(line.calendar_id.connection_id, connection_b)


@tagged("post_install", "-at_install")
class TestRoomCapacity(RoomExchangeCase):
    """Capacity where a person chooses a room, and a booking type's minimum."""

    def setUp(self):
        super().setUp()
        self.env = self.env(context=dict(self.env.context, tracking_disable=True))
        self.small = self.room
        self.small.room_capacity = 4
        Room = self.env["resource.resource"]
        self.large = Room.create(
            {"name": "Omega", "resource_type": "material", "room_capacity": 12}
        )
        self.unknown = Room.create({"name": "Zeta", "resource_type": "material"})
        around_the_clock = self.env[
            "room.exchange.calendar"
        ]._around_the_clock_calendar(self.env.company)
        (self.small | self.large | self.unknown).calendar_id = around_the_clock
        self.combinations = {
            room: self.single_room_combination(room)
            for room in (self.small, self.large, self.unknown)
        }
        self.booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Workshop",
                "resource_calendar_id": around_the_clock.id,
                "duration": 1,
                "combination_assignment": "sorted",
                "room_min_capacity": 10,
                "combination_rel_ids": [
                    Command.create({"combination_id": c.id, "sequence": index})
                    for index, c in enumerate(self.combinations.values())
                ],
            }
        )
        self.requester = self.env["res.partner"].create({"name": "Requester"})
        self.start = datetime.combine(
            fields.Date.today() + timedelta(days=7), datetime.min.time()
        ) + timedelta(hours=9)

    def book(self, combination=None):
        values = {
            "name": "Workshop",
            "type_id": self.booking_type.id,
            "partner_ids": [Command.set(self.requester.ids)],
            "start": self.start,
            "duration": 1.0,
        }
        if combination:
            values.update(combination_auto_assign=False, combination_id=combination.id)
        return self.env["resource.booking"].create(values)

    def test_capacity_shows_where_a_room_is_chosen(self):
        small = self.combinations[self.small]
        self.assertEqual(small.capacity, 4)
        self.assertEqual(small.display_name, "Alpha (4 seats)")
        self.assertEqual(self.combinations[self.unknown].display_name, "Zeta")
        both = self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set((self.small | self.large).ids)]}
        )
        self.assertEqual(both.capacity, 16)
        self.small.room_capacity = 6
        self.assertEqual(small.capacity, 6)
        self.assertEqual(both.capacity, 18)
        form = self.env["resource.booking"].get_views([(False, "form")])["views"][
            "form"
        ]["arch"]
        self.assertIn('name="combination_capacity"', form)
        rooms = self.env["resource.resource"].get_views([(False, "list")])["views"][
            "list"
        ]["arch"]
        self.assertIn('name="room_capacity"', rooms)

    def test_a_type_minimum_keeps_small_rooms_out(self):
        # Auto-assignment skips the rooms too small or of unknown capacity.
        booking = self.book()
        self.assertEqual(booking.combination_id, self.combinations[self.large])
        self.assertEqual(booking.combination_capacity, 12)
        # Choosing a small room by hand is refused.
        with self.assertRaisesRegex(ValidationError, "at least 10 people"):
            self.book(self.combinations[self.small])
        with self.assertRaisesRegex(ValidationError, "unknown number"):
            self.book(self.combinations[self.unknown])
        # The free slots count only the rooms big enough.
        booking.action_cancel()
        probe = self.env["resource.booking"].new({"type_id": self.booking_type.id})
        tz_start = fields.Datetime.context_timestamp(probe, self.start)
        with_minimum = probe._get_intervals(tz_start, tz_start + timedelta(hours=1))
        self.assertTrue(with_minimum)
        self.large.room_capacity = 8
        self.assertFalse(probe._get_intervals(tz_start, tz_start + timedelta(hours=1)))
        self.booking_type.room_min_capacity = 0
        self.assertTrue(probe._get_intervals(tz_start, tz_start + timedelta(hours=1)))


@tagged("post_install", "-at_install")
class TestDirectorySignInRoute(DirectoryCaseMixin, RoomExchangeCase, HttpCase):
    """Delegated mode: *Sign in with Microsoft* on the screen, through Odoo's
    routes and the emulator's sign-in pages; the account then serves the screen."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        redirect_uri = self.base_url() + CALLBACK_PATH
        self.emulator.scenario.app(DELEGATED_APP).redirect_uris.append(redirect_uri)
        self.connection = self.ready_connection(
            "delegated", places_enabled=True, redirect_uri_override=redirect_uri
        )
        self.microsoft = requests.Session()
        self.microsoft.trust_env = False
        self.microsoft.verify = self.emulator_server.ca_bundle_path

    def start(self, connection_id=None):
        return self.url_open(
            "/room_exchange_sync/oauth/start_directory"
            f"?connection_id={connection_id or self.connection.id}",
            allow_redirects=False,
        )

    def test_sign_in_from_the_screen(self):
        from tests.emulator.people import sign_in

        self.authenticate("exchange_manager", "exchange_manager")
        answer = self.start()
        self.assertIn(answer.status_code, (302, 303), answer.text[:300])
        url, fields_ = sign_in(self.microsoft, answer.headers["Location"], *ADELE)
        self.assertEqual(url, self.connection.redirect_uri)
        back = self.url_open(url, data=fields_, allow_redirects=False)
        self.assertEqual(back.status_code, 303, back.text[:300])
        self.assertTrue(
            back.headers["Location"].endswith(
                f"/odoo/room.exchange.connection/{self.connection.id}"
            )
        )
        account = self.env["room.exchange.account"].search(
            [("connection_id", "=", self.connection.id)]
        )
        self.assertEqual(account.username.lower(), ADELE[0].lower())
        self.assertFalse(account.calendar_ids)
        # The screen now lists the directory with that account.
        directory = self.open_screen(self.connection)
        self.assertEqual(directory.account_id, account)
        self.assertEqual(len(self.lines(directory)), CAMPUS_ROOMS + 4)
        # The answer cannot be used twice.
        again = self.url_open(url, data=fields_, allow_redirects=False)
        self.assertIn("already used", again.text)

    def test_the_route_refuses_others(self):
        self.authenticate("exchange_user", "exchange_user")
        self.assertEqual(self.start().status_code, 403)
        self.authenticate("exchange_manager", "exchange_manager")
        self.assertEqual(self.start(connection_id="nope").status_code, 404)
        app = self.ready_connection("application", places_enabled=True)
        answer = self.start(app.id)
        self.assertEqual(answer.status_code, 200)
        self.assertIn("not a ready delegated connection", answer.text)
        self.assertFalse(self.env["room.exchange.auth.flow"].search([]))
