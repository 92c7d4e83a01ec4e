# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import contextlib
import resource
import shutil
from datetime import datetime, timedelta

from odoo import SUPERUSER_ID, Command, api, sql_db
from odoo.tests import TransactionCase, new_test_user

from ..sync import seams

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
USER = "room_exchange_sync.room_exchange_sync_group_user"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"


# The default scenario of tests/emulator (scenarios/default.json).
EMULATOR_TENANT = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
DELEGATED_APP = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
DELEGATED_SECRET = "delegated-app-secret~Valid.2028"
APP_ONLY_APP = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
APP_ONLY_SECRET = "app-only-secret~Valid.2028"
ADELE = ("AdeleV@contoso.test", "Adele-Pa55!")  # write shares on every room
ALEX = ("AlexW@contoso.test", "Alex-Pa55!")  # read-only shares
MEGAN = ("MeganB@contoso.test", "Megan-Pa55!")  # no share
ROOM_ADAMS = "room.adams@contoso.test"
ROOM_DUNE = "room.dune@contoso.test"  # outside the app-only RBAC scope


class EmulatorCaseMixin:
    """Starts the Microsoft emulator (tests/emulator) once per class over HTTPS, and
    builds connections that point at it."""

    @classmethod
    def start_emulator(cls):
        from tests.emulator import EmulatorServer

        cls.emulator_server = EmulatorServer().start()
        cls.addClassCleanup(cls.emulator_server.stop)
        cls.emulator = cls.emulator_server.emulator

    def emulator_connection(self, mode="delegated", **values):
        server = self.emulator_server
        delegated = mode == "delegated"
        connection = self.env["room.exchange.connection"].create(
            {
                "name": f"Emulator ({mode})",
                "cloud": "custom",
                "custom_authority_url": server.base_url,
                "custom_graph_url": server.graph_url,
                "custom_ca_bundle": server.ca_bundle_path,
                "tenant_id": EMULATOR_TENANT,
                "client_id": DELEGATED_APP if delegated else APP_ONLY_APP,
                "client_secret_input": (
                    DELEGATED_SECRET if delegated else APP_ONLY_SECRET
                ),
                "auth_mode": mode,
                **values,
            }
        )
        return connection


def next_weekday(days_ahead, weekday=2):
    """A date at least ``days_ahead`` days from now falling on ``weekday`` (Wed)."""
    day = datetime.now().date() + timedelta(days=days_ahead)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


class RoomExchangeCase(EmulatorCaseMixin, TransactionCase):
    """Users of each role, a room with a working time, a draft connection, and the
    Microsoft emulator (tests/emulator) for connections that must reach Microsoft."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_emulator()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.manager = new_test_user(
            cls.env, login="exchange_manager", groups=f"base.group_user,{MANAGER}"
        )
        cls.exchange_user = new_test_user(
            cls.env, login="exchange_user", groups=f"base.group_user,{USER}"
        )
        cls.booking_user = new_test_user(
            cls.env,
            login="booking_user",
            groups="base.group_user,resource_booking.group_user",
        )
        cls.booking_manager = new_test_user(
            cls.env,
            login="booking_manager",
            groups="base.group_user,resource_booking.group_manager",
        )
        cls.working_time = cls.env["resource.calendar"].create(
            {"name": "Office hours", "tz": "Europe/Brussels"}
        )
        cls.room = cls.env["resource.resource"].create(
            {
                "name": "Alpha",
                "resource_type": "material",
                "calendar_id": cls.working_time.id,
                "tz": "Europe/Brussels",
            }
        )
        cls.connection = cls.env["room.exchange.connection"].create(
            {"name": "Contoso", "tenant_id": TENANT, "client_id": CLIENT}
        )

    def ready_connection(self, mode="delegated", **values):
        """A connection to the emulator whose test succeeded (state ready)."""
        connection = self.emulator_connection(mode, **values)
        connection.action_test_connection()
        self.assertEqual(connection.state, "ready")
        return connection

    def bind_room_for_sync(self, connection, mailbox=ROOM_ADAMS):
        """Bind the test room to a room mailbox through ``connection``, bookable
        around the clock as Exchange meetings may be. Sets ``calendar``,
        ``around_the_clock``, ``booking_type``, ``requester`` and ``day`` (a Wednesday
        two weeks ahead)."""
        self.room.write({"exchange_connection_id": connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(mailbox)
        self.assertEqual(self.calendar.state, "authorized", self.calendar.last_error)
        self.around_the_clock = self.calendar._around_the_clock_calendar(
            self.env.company
        )
        self.room.calendar_id = self.around_the_clock
        self.booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Meeting room",
                "resource_calendar_id": self.around_the_clock.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": self.calendar.combination_id.id})
                ],
            }
        )
        self.requester = self.env["res.partner"].create({"name": "Requester"})
        self.day = next_weekday(14)

    def app_rooms(self, connection, count, prefix="sched"):
        """``count`` rooms bound (without the access probe) to new room mailboxes of
        the emulator, which the app-only app may open."""
        self.emulator.scenario.app(APP_ONLY_APP).rbac_scope = None
        Calendar = self.env["room.exchange.calendar"]
        around_the_clock = Calendar._around_the_clock_calendar(self.env.company)
        calendars = Calendar
        for index in range(count):
            mailbox = f"{prefix}.room{index:03d}@contoso.test"
            self.emulator.add_room(mailbox, f"Room {prefix} {index}")
            room = self.env["resource.resource"].create(
                {
                    "name": f"Room {prefix} {index}",
                    "resource_type": "material",
                    "calendar_id": around_the_clock.id,
                    "tz": "UTC",
                }
            )
            calendars |= Calendar.create(
                {
                    "room_id": room.id,
                    "connection_id": connection.id,
                    "mailbox": mailbox,
                    "state": "authorized",
                    "sync_enabled": True,
                }
            )
        return calendars

    def book_in_odoo(
        self,
        hour_utc=9,
        hours=1.0,
        name="Odoo board review",
        day=None,
        start=None,
        combination=None,
    ):
        """A booking made in Odoo in the bound room (``bind_room_for_sync``), on
        ``day`` (default ``self.day``) at ``hour_utc``, or at ``start``."""
        if start is None:
            start = datetime.combine(day or self.day, datetime.min.time()) + timedelta(
                hours=hour_utc
            )
        return (
            self.env["resource.booking"]
            .with_context(tracking_disable=True)
            .create(
                {
                    "name": name,
                    "type_id": self.booking_type.id,
                    "combination_auto_assign": False,
                    "combination_id": (combination or self.calendar.combination_id).id,
                    "partner_ids": [Command.set(self.requester.ids)],
                    "start": start,
                    "duration": hours,
                }
            )
        )

    def book_in_outlook(self, subject, hour_utc, hours=1.0, person=ADELE, day=None):
        """A meeting ``person`` books with the room Adams in Outlook, on ``day``
        (default ``self.day``) at ``hour_utc``."""
        start = datetime.combine(day or self.day, datetime.min.time()) + timedelta(
            hours=hour_utc
        )
        return self.emulator.book_room(
            person[0],
            ROOM_ADAMS,
            subject,
            start.isoformat(),
            (start + timedelta(hours=hours)).isoformat(),
        )

    def single_room_combination(self, room):
        return self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set(room.ids)]}
        )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


class CommittedRoomMixin:
    """A room calendar committed through a connection of its own (a test's
    transaction cannot commit), for tests with several real database connections;
    deleted again at the end."""

    def real_env(self):
        cr = sql_db.db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(cr.close)
        return api.Environment(cr, SUPERUSER_ID, {"active_test": False})

    def setUp(self):
        super().setUp()
        env = self.real_env()
        connection = env["room.exchange.connection"].create(
            {
                "name": "Concurrency test",
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "state": "ready",
            }
        )
        room = env["resource.resource"].create(
            {
                "name": "Concurrency room",
                "resource_type": "material",
                "calendar_id": env.ref("resource.resource_calendar_std").id,
                "tz": "Europe/Brussels",
            }
        )
        calendar = env["room.exchange.calendar"].create(
            {
                "room_id": room.id,
                "connection_id": connection.id,
                "mailbox": ROOM_ADAMS,
                "state": "authorized",
            }
        )
        # sync_enabled without the booking set-up records (nothing else to clean).
        env.cr.execute(
            "UPDATE room_exchange_calendar SET sync_enabled = TRUE WHERE id = %s",
            [calendar.id],
        )
        env.cr.commit()
        self.row_ids = (connection.id, room.id, calendar.id)
        self.addCleanup(self.delete_committed_rows)

    def delete_committed_rows(self):
        connection_id, room_id, calendar_id = self.row_ids
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '10s'")
            cr.execute(
                "DELETE FROM room_exchange_calendar WHERE id = %s", [calendar_id]
            )
            cr.execute("DELETE FROM resource_resource WHERE id = %s", [room_id])
            cr.execute(
                "DELETE FROM room_exchange_connection WHERE id = %s", [connection_id]
            )
            # A cursor this test opened itself, to clean up what it committed.
            cr.commit()  # pylint: disable=invalid-commit

    def calendar_in(self, env):
        return env["room.exchange.calendar"].browse(self.row_ids[2])


class BrowserMixin:
    """Debian's Chromium driven by Playwright, for tests of what people click."""

    def open_browser(self):
        """A new page; the browser is closed when the test ends."""
        if not CHROMIUM:
            self.fail("Chromium is not installed: run 'make setup' (apt chromium).")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.fail("Playwright is not installed: run 'make setup'.")
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
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.set_default_timeout(20000)
        return page

    def sign_in_to_odoo(self, page, login):
        """Log in through Odoo's login page (call inside ``allow_requests``)."""
        page.goto(f"{self.base_url()}/web/login?db={self.env.cr.dbname}")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", login)
        page.click("button[type=submit]")
        # The first page after a login may build Odoo's asset bundles, which takes
        # far longer than a click on a busy machine.
        page.wait_for_url("**/odoo**", timeout=90000)


@contextlib.contextmanager
def rounds_started():
    """The room calendars whose sync round started in the block (a list, filled as
    rounds start, before any Graph call)."""
    started = []
    with seams.hooked(
        seams.ROUND_STARTING, lambda calendar: started.append(calendar.id)
    ):
        yield started
