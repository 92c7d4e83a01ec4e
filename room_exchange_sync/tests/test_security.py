# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Security hardening (issue 7): OAuth, access rights, webhooks, untrusted Exchange
data, secrets in logs, and the neutralization of staging copies."""

import contextlib
import copy
import json
import logging
import warnings
from datetime import datetime, timedelta
from unittest.mock import patch

import requests

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.modules.neutralize import neutralize_database
from odoo.tests import HttpCase, JsonRpcException, new_test_user, tagged

from ..graph.client import GraphClient
from ..graph.events import MAX_SUBJECT_LENGTH
from ..models.room_exchange_connection import CALLBACK_PATH
from ..models.room_exchange_subscription import NOTIFICATION_PATH
from .common import (
    ADELE,
    ALEX,
    CLIENT,
    DELEGATED_APP,
    DELEGATED_SECRET,
    MANAGER,
    ROOM_ADAMS,
    TENANT,
    RoomExchangeCase,
    next_weekday,
    rounds_started,
)

SECRET = "client-secret~do-not-leak.0123456789"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEdonotleak\n-----END PRIVATE KEY-----"
TOKEN_CACHE = '{"RefreshToken": {"k": {"secret": "refresh-token-do-not-leak"}}}'
CLIENT_STATE = "client-state-do-not-leak"
DELTA_LINK = "https://graph.example.test/v1.0/delta?$deltatoken=do-not-leak"
FLOW_DATA = '{"code_verifier": "verifier-do-not-leak"}'

# (model, secret field) pairs that no one but the system administrator reads.
SECRETS = (
    ("room.exchange.connection", "client_secret"),
    ("room.exchange.connection", "private_key"),
    ("room.exchange.account", "token_cache"),
    ("room.exchange.subscription", "client_state"),
    ("room.exchange.calendar", "delta_link"),
    ("room.exchange.auth.flow", "flow_data"),
)
# Models that booking and portal users must not read at all.
HIDDEN_MODELS = (
    "room.exchange.connection",
    "room.exchange.account",
    "room.exchange.subscription",
    "room.exchange.calendar",
    "room.exchange.binding",
    "room.exchange.auth.flow",
    "room.exchange.export.run",
)


class RecordingHandler(logging.Handler):
    """Keeps every formatted record, tracebacks included."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        try:
            self.records.append(self.format(record))
        except Exception as error:  # noqa: BLE001 - a broken record is still text
            self.records.append(f"{record.name} unformattable record: {error!r}")

    def text(self):
        return "\n".join(self.records)


class SecureDataMixin:
    """A room with every kind of secret the addon stores, written in the database."""

    @classmethod
    def make_secure_room(cls, company=None, name="Vault"):
        env = cls.env
        room = env["resource.resource"].create(
            {
                "name": name,
                "resource_type": "material",
                "calendar_id": cls.working_time.id,
                "company_id": (company or env.company).id,
            }
        )
        connection = env["room.exchange.connection"].create(
            {
                "name": f"{name} tenant",
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "company_id": (company or env.company).id,
            }
        )
        connection.sudo().write({"client_secret": SECRET, "private_key": PRIVATE_KEY})
        room.write({"exchange_connection_id": connection.id})
        calendar = room.exchange_calendar_id
        account = env["room.exchange.account"].create(
            {
                "connection_id": connection.id,
                "home_account_id": f"oid.{name}",
                "username": "adele@contoso.test",
                "token_cache": TOKEN_CACHE,
            }
        )
        calendar.sudo().write({"account_id": account.id, "delta_link": DELTA_LINK})
        subscription = env["room.exchange.subscription"].create(
            {
                "calendar_id": calendar.id,
                "external_id": f"sub-{name}",
                "client_state": CLIENT_STATE,
            }
        )
        binding = env["room.exchange.binding"].create(
            {"calendar_id": calendar.id, "external_id": f"AAMk-{name}="}
        )
        flow = env["room.exchange.auth.flow"].create(
            {
                "calendar_id": calendar.id,
                "user_id": env.uid,
                "session_hash": "0" * 64,
                "expires_at": datetime.now() + timedelta(minutes=5),
                "flow_data": FLOW_DATA,
            }
        )
        run = env["room.exchange.export.run"].create(
            {"calendar_id": calendar.id, "user_id": env.uid, "state": "done"}
        )
        return {
            "resource.resource": room,
            "room.exchange.connection": connection,
            "room.exchange.calendar": calendar,
            "room.exchange.account": account,
            "room.exchange.subscription": subscription,
            "room.exchange.binding": binding,
            "room.exchange.auth.flow": flow,
            "room.exchange.export.run": run,
        }


class TestSecurityAccess(SecureDataMixin, RoomExchangeCase):
    """No RPC path reads the addon's secrets or its records without the right."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.portal_user = new_test_user(
            cls.env, login="exchange_portal", groups="base.group_portal"
        )
        export_right = cls.env.ref("base.group_allow_export")
        for user in (cls.booking_user, cls.exchange_user, cls.manager):
            user.group_ids = [Command.link(export_right.id)]
        cls.records = cls.make_secure_room()

    def outsiders(self):
        return (self.booking_user, self.portal_user)

    @staticmethod
    def read_group(Model, domain, field):
        """The RPC read_group, deprecated since 19.0 but still served."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return Model.read_group(domain, [field], [field])

    @staticmethod
    def export(records, paths):
        """export_data; users without the export right are refused with a UserError
        first, so that refusal is turned into the AccessError it stands for."""
        if not records.env.user.has_group("base.group_allow_export"):
            with contextlib.suppress(UserError):
                records.export_data(paths)
            raise AccessError(records.env._("No export right"))
        return records.export_data(paths)

    def assert_every_read_path_refused(self, user, model, field):
        """read, search_read, export_data, web_read, web_search_read, read_group,
        formatted_read_group, web_read_group and a search on ``field``."""
        record = self.records[model].with_user(user)
        Model = self.env[model].with_user(user)
        domain = [("id", "=", record.id)]
        attempts = {
            "read": lambda: record.read([field]),
            "search_read": lambda: Model.search_read(domain, [field]),
            "export_data": lambda: self.export(record, [field]),
            "web_read": lambda: record.web_read({field: {}}),
            "web_search_read": lambda: Model.web_search_read(domain, {field: {}}),
            "read_group": lambda: self.read_group(Model, domain, field),
            "formatted_read_group": lambda: Model.formatted_read_group(
                domain, [field], ["__count"]
            ),
            "web_read_group": lambda: Model.web_read_group(
                domain, [field], ["__count"]
            ),
            "search": lambda: Model.search_count([(field, "=like", "%")]),
        }
        for path, attempt in attempts.items():
            with self.subTest(user=user.login, model=model, field=field, path=path):
                try:
                    answer = attempt()
                except AccessError:
                    continue
                self.fail(f"{path} of {model}.{field} answered: {answer!r:.300}")

    def test_outsiders_read_no_secret_by_any_path(self):
        for user in self.outsiders():
            for model, field in SECRETS:
                self.assert_every_read_path_refused(user, model, field)

    def test_outsiders_read_no_exchange_record_at_all(self):
        for user in self.outsiders():
            for model in HIDDEN_MODELS:
                self.assert_every_read_path_refused(user, model, "display_name")

    def test_exchange_user_reads_no_secret_by_any_path(self):
        for model, field in SECRETS:
            if model == "room.exchange.auth.flow":
                continue  # the whole model is for administrators only
            self.assert_every_read_path_refused(self.exchange_user, model, field)

    def test_manager_reads_no_secret_by_any_path(self):
        for model, field in SECRETS:
            if model == "room.exchange.auth.flow":
                continue
            self.assert_every_read_path_refused(self.manager, model, field)

    def test_related_paths_from_the_room_stop_at_the_secret(self):
        room = self.records["resource.resource"]
        specs = {
            "client_secret": {
                "exchange_calendar_id": {
                    "fields": {"connection_id": {"fields": {"client_secret": {}}}}
                }
            },
            "private_key": {
                "exchange_calendar_ids": {
                    "fields": {"connection_id": {"fields": {"private_key": {}}}}
                }
            },
            "token_cache": {
                "exchange_calendar_id": {
                    "fields": {"account_id": {"fields": {"token_cache": {}}}}
                }
            },
            "delta_link": {"exchange_calendar_id": {"fields": {"delta_link": {}}}},
        }
        users = (*self.outsiders(), self.exchange_user, self.manager)
        for user in users:
            for secret, spec in specs.items():
                with self.subTest(user=user.login, secret=secret):
                    with self.assertRaises(AccessError):
                        room.with_user(user).web_read(spec)
                    with self.assertRaises(AccessError):
                        self.env["resource.resource"].with_user(user).web_search_read(
                            [("id", "=", room.id)], spec
                        )
        paths = (
            "exchange_calendar_ids.connection_id.client_secret",
            "exchange_calendar_ids.connection_id.private_key",
            "exchange_calendar_ids.account_id.token_cache",
            "exchange_calendar_ids.delta_link",
        )
        for user in users:
            for path in paths:
                with self.subTest(user=user.login, path=path):
                    with self.assertRaises(AccessError):
                        self.export(room.with_user(user), [path.replace(".", "/")])
                    with self.assertRaises(AccessError):
                        self.export(
                            room.with_user(user),
                            [path.replace("_ids.", "_id.", 1).replace(".", "/")],
                        )
                    # A search on the path would reveal the secret letter by letter.
                    with self.assertRaises(AccessError):
                        self.env["resource.resource"].with_user(user).search_count(
                            [(path, "=like", "c%")]
                        )

    def test_the_round_check_sees_a_round(self):
        """The checks below would pass vacuously if no round were ever seen."""
        calendar = self.records["room.exchange.calendar"]
        with rounds_started() as started:
            calendar.sudo()._sync()
        self.assertEqual(started, [calendar.id])

    def test_outsiders_trigger_no_sync(self):
        room = self.records["resource.resource"]
        for user in self.outsiders():
            with self.subTest(user=user.login):
                with rounds_started() as started:
                    with self.assertRaises(AccessError):
                        room.with_user(user).action_exchange_sync_now()
                    self.assertFalse(started)

    def test_outsiders_trigger_no_sync_on_the_calendar(self):
        calendar = self.records["room.exchange.calendar"]
        for user in self.outsiders():
            for action in (
                "action_sync_now",
                "action_full_resync",
                "action_confirm_cancellations",
            ):
                with self.subTest(user=user.login, action=action):
                    with rounds_started() as started:
                        with contextlib.suppress(AccessError):
                            getattr(calendar.with_user(user), action)()
                        self.assertFalse(started, f"{action} ran a sync round")

    def test_outsiders_call_no_graph_through_other_buttons(self):
        calendar = self.records["room.exchange.calendar"]
        connection = self.records["room.exchange.connection"]
        Calendar = type(self.env["room.exchange.calendar"])
        Connection = type(self.env["room.exchange.connection"])
        calls = (
            (calendar, "action_load_choices", Calendar, "_refresh_choices"),
            (calendar, "action_save_calendar", Calendar, "_bind_mailbox"),
            (connection, "action_test_connection", Connection, "_check_with_microsoft"),
        )
        calendar.sudo().mailbox = ROOM_ADAMS
        connection.sudo().client_secret = SECRET
        for user in self.outsiders():
            for record, action, owner, graph_step in calls:
                with self.subTest(user=user.login, action=action):
                    with patch.object(owner, graph_step, autospec=True) as step:
                        step.return_value = "checked"
                        with contextlib.suppress(AccessError):
                            getattr(record.with_user(user), action)()
                        self.assertFalse(step.called, f"{action} reached Microsoft")

    def test_outsiders_start_no_export(self):
        room = self.records["resource.resource"]
        for user in (*self.outsiders(), self.exchange_user):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    self.env["room.exchange.export"].with_user(user).create(
                        {"room_ids": [Command.set(room.ids)]}
                    )
                with self.assertRaises(AccessError):
                    room.with_user(user).action_exchange_run_export()

    def test_multi_company_manager_sees_only_own_company(self):
        company_a = self.env.company
        company_b = self.env["res.company"].create({"name": "Fabrikam"})
        foreign = self.make_secure_room(company=company_b, name="Fabrikam room")
        manager_a = new_test_user(
            self.env,
            login="manager_company_a",
            groups=f"base.group_user,{MANAGER}",
            company_id=company_a.id,
            company_ids=[Command.set(company_a.ids)],
        )
        for model in (
            "room.exchange.connection",
            "room.exchange.calendar",
            "room.exchange.binding",
            "room.exchange.subscription",
            "room.exchange.account",
            "room.exchange.export.run",
        ):
            with self.subTest(model=model):
                Model = self.env[model].with_user(manager_a)
                self.assertIn(self.records[model], Model.search([]))
                self.assertNotIn(foreign[model], Model.search([]))
                with self.assertRaises(AccessError):
                    foreign[model].with_user(manager_a).read(["display_name"])
        # Nor through the room of company B.
        with self.assertRaises(AccessError):
            foreign["resource.resource"].with_user(manager_a).read(
                ["exchange_calendar_id"]
            )
        # A manager of both companies working in company A does not see B's either.
        manager_ab = new_test_user(
            self.env,
            login="manager_company_ab",
            groups=f"base.group_user,{MANAGER}",
            company_id=company_a.id,
            company_ids=[Command.set((company_a | company_b).ids)],
        )
        Calendar = (
            self.env["room.exchange.calendar"]
            .with_user(manager_ab)
            .with_context(allowed_company_ids=company_a.ids)
        )
        self.assertNotIn(foreign["room.exchange.calendar"], Calendar.search([]))

    def test_neutralization_disarms_a_staging_copy(self):
        records = self.records
        calendar = records["room.exchange.calendar"]
        connection = records["room.exchange.connection"]
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE room_exchange_calendar SET sync_enabled = TRUE, state = 'syncing'"
            " WHERE id = %s",
            [calendar.id],
        )
        self.env.cr.execute(
            "UPDATE room_exchange_connection SET state = 'ready',"
            " notification_url_override = 'https://odoo.example.com' WHERE id = %s",
            [connection.id],
        )
        neutralize_database(self.env.cr)
        self.env.invalidate_all()
        self.env.cr.execute(
            "SELECT count(*) FROM room_exchange_connection WHERE state != 'draft'"
            " OR client_secret IS NOT NULL OR private_key IS NOT NULL"
            " OR notification_url_override IS NOT NULL"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.env.cr.execute(
            "SELECT count(*) FROM room_exchange_account WHERE token_cache IS NOT NULL"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.env.cr.execute(
            "SELECT count(*) FROM room_exchange_calendar WHERE sync_enabled"
            " OR delta_link IS NOT NULL OR state != 'not_configured'"
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.env.cr.execute("SELECT count(*) FROM room_exchange_subscription")
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.env.cr.execute("SELECT count(*) FROM room_exchange_auth_flow")
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        # The bookings' links to their events stay: a real copy keeps its history.
        self.assertTrue(records["room.exchange.binding"].exists())
        self.assertFalse(connection.sudo().client_secret)
        # The sync cron finds nothing to do any more.
        with rounds_started() as started:
            self.env["room.exchange.calendar"]._cron_sync()
        self.assertFalse(started)


@tagged("post_install", "-at_install")
class TestSecurityOAuth(RoomExchangeCase, HttpCase):
    """The sign-in refuses what test_oauth.py does not already cover."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.redirect_uri = self.base_url() + CALLBACK_PATH
        app = self.emulator.scenario.app(DELEGATED_APP)
        if self.redirect_uri not in app.redirect_uris:
            app.redirect_uris.append(self.redirect_uri)
            self.addCleanup(app.redirect_uris.remove, self.redirect_uri)
        self.connection = self.emulator_connection(
            redirect_uri_override=self.redirect_uri
        )
        self.connection.action_test_connection()
        self.assertEqual(self.connection.state, "ready", self.connection.last_error)
        self.room.write({"exchange_connection_id": self.connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.microsoft = self.new_browser()
        self.authenticate("exchange_manager", "exchange_manager")

    def new_browser(self):
        browser = requests.Session()
        browser.trust_env = False
        browser.verify = self.emulator_server.ca_bundle_path
        return browser

    def start_sign_in(self, calendar=None):
        calendar = calendar or self.calendar
        answer = self.url_open(
            f"/room_exchange_sync/oauth/start?calendar_id={calendar.id}",
            allow_redirects=False,
        )
        self.assertIn(answer.status_code, (302, 303), answer.text[:500])
        return answer.headers["Location"]

    def sign_in(self, auth_uri, person=ADELE, browser=None):
        from tests.emulator.people import sign_in

        return sign_in(browser or self.microsoft, auth_uri, *person)

    def post_callback(self, url, fields):
        return self.url_open(url, data=fields, allow_redirects=False)

    def assert_nothing_stored(self):
        self.assertFalse(self.calendar.account_id)
        self.assertFalse(self.env["room.exchange.account"].search([]))

    def test_callback_refuses_a_get_and_keeps_the_code_out_of_the_logs(self):
        code = "authorization-code-do-not-log"
        handler = RecordingHandler()
        loggers = [logging.getLogger(name) for name in ("werkzeug", "odoo")]
        for logger in loggers:
            logger.addHandler(handler)
            self.addCleanup(logger.removeHandler, handler)
        werkzeug_logger = loggers[0]
        self.addCleanup(werkzeug_logger.setLevel, werkzeug_logger.level)
        werkzeug_logger.setLevel(logging.INFO)
        answer = self.url_open(
            f"{CALLBACK_PATH}?code={code}&state=1.2.3", allow_redirects=False
        )
        self.assertEqual(answer.status_code, 405)
        self.assert_nothing_stored()
        self.assertTrue(
            any(CALLBACK_PATH in record for record in handler.records),
            "the access log line is written",
        )
        self.assertNotIn(code, handler.text())

    def test_state_variants_are_refused(self):
        url, fields = self.sign_in(self.start_sign_in())
        flow_id, expiry, signature = fields["state"].split(".")
        other_flow = self.env["room.exchange.auth.flow"].create(
            {
                "calendar_id": self.calendar.id,
                "user_id": self.manager.id,
                "session_hash": "0" * 64,
                "expires_at": datetime.now() + timedelta(minutes=5),
            }
        )
        variants = {
            "later expiry, same signature": (
                f"{flow_id}.{int(expiry) + 3600}.{signature}",
                "altered on its way back",
            ),
            "another flow, same signature": (
                f"{other_flow.id}.{expiry}.{signature}",
                "altered on its way back",
            ),
            "unknown flow": (f"{other_flow.id + 1000}.{expiry}.{signature}", "unknown"),
            "no state": (None, "malformed"),
            "garbage": ("<script>alert(1)</script>", "malformed"),
            "too many parts": (fields["state"] + ".1", "malformed"),
        }
        for name, (state, message) in variants.items():
            with self.subTest(name):
                posted = {**fields, "state": state} if state else dict(fields)
                if state is None:
                    posted.pop("state")
                answer = self.post_callback(url, posted)
                self.assertEqual(answer.status_code, 200)
                self.assertIn(message, answer.text)
                self.assertNotIn("<script>alert(1)</script>", answer.text)
                self.assert_nothing_stored()
        # The genuine answer still works afterwards: refusals burn nothing.
        answer = self.post_callback(url, fields)
        self.assertEqual(answer.status_code, 303, answer.text[:500])
        self.assertTrue(self.calendar.account_id)

    def test_same_user_in_another_browser_session_is_refused(self):
        url, fields = self.sign_in(self.start_sign_in())
        self.authenticate("exchange_manager", "exchange_manager")
        answer = self.post_callback(url, fields)
        self.assertIn("another user", answer.text)
        self.assert_nothing_stored()

    def test_someone_elses_code_is_refused(self):
        """Code injection: the victim's state carrying the attacker's code."""
        # The attacker (another Odoo user) gets a code for their own sign-in...
        self.authenticate("admin", "admin")
        _url, attacker_fields = self.sign_in(
            self.start_sign_in(), person=ALEX, browser=self.new_browser()
        )
        # ... and slips it into the manager's callback, in the manager's session.
        self.authenticate("exchange_manager", "exchange_manager")
        victim_url, victim_fields = self.sign_in(self.start_sign_in())
        forged = {**victim_fields, "code": attacker_fields["code"]}
        if "client_info" in attacker_fields:
            forged["client_info"] = attacker_fields["client_info"]
        answer = self.post_callback(victim_url, forged)
        self.assertEqual(answer.status_code, 200, answer.text[:500])
        self.assertIn("room_exchange_oauth_error", answer.text)
        self.assert_nothing_stored()
        self.assertNotIn(attacker_fields["code"], answer.text)

    def test_redirect_uri_mismatch_stops_at_microsoft(self):
        self.connection.redirect_uri_override = (
            "https://evil.example.test" + CALLBACK_PATH
        )
        auth_uri = self.start_sign_in()
        page = self.microsoft.get(auth_uri, allow_redirects=False, timeout=30)
        self.assertFalse(page.is_redirect)
        self.assertIn("50011", page.text)
        self.assertNotIn('id="form-post"', page.text)
        self.assertNotIn("evil.example.test" + CALLBACK_PATH + "?code", page.text)
        self.assert_nothing_stored()
        flow = self.env["room.exchange.auth.flow"].search([], limit=1)
        self.assertFalse(flow.done)

    def test_outsiders_cannot_start_a_sign_in(self):
        new_test_user(self.env, login="portal_signin", groups="base.group_portal")
        for login in ("portal_signin", "exchange_user", "booking_manager"):
            with self.subTest(login=login):
                self.authenticate(login, login)
                answer = self.url_open(
                    f"/room_exchange_sync/oauth/start?calendar_id={self.calendar.id}",
                    allow_redirects=False,
                )
                self.assertEqual(answer.status_code, 403)
        self.assertFalse(self.env["room.exchange.auth.flow"].search([]))

    def test_booking_user_cannot_sync_through_call_button(self):
        self.authenticate("booking_user", "booking_user")
        with rounds_started() as started:
            with contextlib.suppress(JsonRpcException):
                self.make_jsonrpc_request(
                    "/web/dataset/call_button",
                    {
                        "model": "room.exchange.calendar",
                        "method": "action_sync_now",
                        "args": [self.calendar.ids],
                        "kwargs": {},
                    },
                )
        self.assertFalse(started, "a booking user ran a sync round")

    def test_booking_user_cannot_sync_the_room_through_call_button(self):
        self.authenticate("booking_user", "booking_user")
        with rounds_started() as started:
            with self.assertRaises(JsonRpcException) as refusal:
                self.make_jsonrpc_request(
                    "/web/dataset/call_button",
                    {
                        "model": "resource.resource",
                        "method": "action_exchange_sync_now",
                        "args": [self.room.ids],
                        "kwargs": {},
                    },
                )
        self.assertIn("AccessError", str(refusal.exception))
        self.assertFalse(started)

    def test_manager_cannot_start_a_sign_in_for_another_company(self):
        company_b = self.env["res.company"].create({"name": "Fabrikam"})
        room_b = self.room.copy({"name": "Fabrikam room", "company_id": company_b.id})
        connection_b = self.emulator_connection(
            redirect_uri_override=self.redirect_uri, company_id=company_b.id
        )
        room_b.write({"exchange_connection_id": connection_b.id})
        answer = self.url_open(
            "/room_exchange_sync/oauth/start"
            f"?calendar_id={room_b.exchange_calendar_id.id}",
            allow_redirects=False,
        )
        self.assertIn(answer.status_code, (403, 404))
        self.assertFalse(self.env["room.exchange.auth.flow"].search([]))

    def sign_in_refresh_and_sync(self):
        """A delegated sign-in, a refresh and a sync, every logger at DEBUG.

        Returns the formatted log records (the emulator's own, Microsoft's side, left
        out) and the secrets they must not contain, by kind."""
        handler = RecordingHandler()
        root = logging.getLogger()
        loggers = [root, logging.getLogger("odoo.sql_db")] + [
            logger
            for logger in logging.root.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ]
        levels = {logger: logger.level for logger in loggers}
        root.addHandler(handler)
        for logger in loggers:
            logger.setLevel(logging.DEBUG)
        # SQL queries at DEBUG are Odoo's own --log-sql switch, which prints every
        # value written, secrets included: out of scope here.
        logging.getLogger("odoo.sql_db").setLevel(logging.INFO)
        try:
            url, fields = self.sign_in(self.start_sign_in())
            answer = self.post_callback(url, fields)
            self.assertEqual(answer.status_code, 303, answer.text[:500])
            self.room.write({"exchange_mailbox": ROOM_ADAMS})
            self.room.with_user(self.manager).action_exchange_save()
            self.assertEqual(self.calendar.state, "authorized")
            start = datetime.combine(next_weekday(14), datetime.min.time())
            self.emulator.book_room(
                ADELE[0],
                ROOM_ADAMS,
                "Logged meeting",
                (start + timedelta(hours=13)).isoformat(),
                (start + timedelta(hours=14)).isoformat(),
            )
            self.emulator.identity.expire_access_tokens()
            account = self.calendar.account_id
            account._access_token(force_refresh=True)
            self.assertTrue(self.calendar._sync(), self.calendar.last_error)
            self.env.flush_all()
        finally:
            root.removeHandler(handler)
            for logger, level in levels.items():
                logger.setLevel(level)
        identity = self.emulator.identity
        cache = json.loads(account.sudo().token_cache)
        secrets = {
            "authorization code": [fields["code"]],
            "client secret": [DELEGATED_SECRET],
            "access token": list(identity._access_tokens)
            + [item["secret"] for item in cache.get("AccessToken", {}).values()],
            "refresh token": list(identity._refresh_tokens)
            + [item["secret"] for item in cache.get("RefreshToken", {}).values()],
            "id token": [item["secret"] for item in cache.get("IdToken", {}).values()],
        }
        self.assertGreater(len(secrets["access token"]), 1)
        self.assertGreater(len(secrets["refresh token"]), 1)
        for values in secrets.values():
            for value in values:
                self.assertGreater(len(value), 12)
        records = [
            record
            for record in handler.records
            if not record.startswith("tests.emulator")
        ]
        self.assertGreater(len(records), 20, "nothing was logged")
        return records, secrets

    def assert_no_secret(self, records, secrets):
        text = "\n\x1e".join(records)
        for kind, values in secrets.items():
            for value in values:
                self.assert_not_logged(value, text, kind)
        for marker in ("Bearer ", "PRIVATE KEY", "client_secret=", "refresh_token="):
            self.assert_not_logged(marker, text, marker)

    def test_no_secret_in_odoo_logs(self):
        """The addon's and Odoo's loggers, and the HTTP libraries', at DEBUG."""
        records, secrets = self.sign_in_refresh_and_sync()
        self.assert_no_secret(
            [record for record in records if not record.startswith("msal")], secrets
        )

    def test_no_secret_in_any_log(self):
        """Every logger at DEBUG, MSAL's included."""
        self.assert_no_secret(*self.sign_in_refresh_and_sync())

    def assert_not_logged(self, value, text, kind):
        if value in text:
            records = [record for record in text.split("\n\x1e") if value in record]
            where = [
                record[: record.index(value) + 20][-400:]
                if len(record) < 400
                else record[:200] + " ... " + record[record.index(value) - 200 :][:220]
                for record in records
            ]
            self.fail(f"a {kind} was logged: {where[:3]}")


@tagged("post_install", "-at_install")
class TestSecurityWebhooks(RoomExchangeCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.connection = self.ready_connection("application")
        self.connection.notification_url_override = self.base_url()
        self.room.write({"exchange_connection_id": self.connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(ROOM_ADAMS)
        self.sync_cron = self.env.ref("room_exchange_sync.ir_cron_room_exchange_sync")
        self.Subscription = self.env["room.exchange.subscription"]
        self.env.flush_all()
        # The renewal commits each chunk (outside a cron run, _commit_progress
        # commits), which a test transaction cannot: a no-op here.
        Cron = type(self.env["ir.cron"])
        with (
            self.allow_requests(all_requests=True),
            patch.object(Cron, "_commit_progress", lambda *a, **kw: float("inf")),
        ):
            self.Subscription._cron_renew()
        self.subscription = self.Subscription.search(
            [("calendar_id", "=", self.calendar.id)]
        )
        self.assertTrue(self.subscription.external_id)

    def sync_triggers(self):
        return self.env["ir.cron.trigger"].search_count(
            [("cron_id", "=", self.sync_cron.id)]
        )

    def notify(self, **values):
        notification = {
            "subscriptionId": self.subscription.external_id,
            "changeType": "updated",
            "resource": f"Users/{ROOM_ADAMS}/Events/AAMk",
            **values,
        }
        return self.url_open(
            NOTIFICATION_PATH,
            data=json.dumps({"value": [notification]}),
            headers={"Content-Type": "application/json"},
        )

    def test_missing_or_foreign_client_state_is_ignored(self):
        before = self.sync_triggers()
        cases = {
            "missing": {},
            "empty": {"clientState": ""},
            "null": {"clientState": None},
            "wrong type": {"clientState": ["x"]},
            "unknown subscription": {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "clientState": "guess",
            },
            "lifecycle without state": {"lifecycleEvent": "missed"},
        }
        self.calendar.sudo().delta_link = DELTA_LINK
        for name, values in cases.items():
            with self.subTest(name):
                answer = self.notify(**values)
                self.assertEqual(answer.status_code, 202)
        self.env.invalidate_all()
        self.assertEqual(self.sync_triggers(), before)
        self.assertFalse(self.subscription.last_notification_date)
        self.assertEqual(self.calendar.sudo().delta_link, DELTA_LINK)

    def test_malformed_payloads_get_a_4xx_not_a_traceback(self):
        bodies = {
            "value of strings": {"value": ["x", "y"]},
            "value of numbers": {"value": [1, 2.5]},
            "value of lists": {"value": [[], [{}]]},
            "null items": {"value": [None]},
            "mixed": {"value": [{"subscriptionId": "x"}, "x"]},
            "value not a list": {"value": {"subscriptionId": "x"}},
            "no value": {"values": []},
            "not an object": ["value"],
        }
        for name, body in bodies.items():
            with self.subTest(name):
                answer = self.url_open(
                    NOTIFICATION_PATH,
                    data=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                self.assertEqual(answer.status_code, 400)
                self.assertNotIn("Traceback", answer.text)

    def test_one_request_of_many_bad_notifications_logs_one_line(self):
        handler = RecordingHandler()
        logger = logging.getLogger("odoo.addons.room_exchange_sync")
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        # pytest-odoo runs Odoo's loggers at CRITICAL.
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.DEBUG)
        bad = [
            {"subscriptionId": self.subscription.external_id, "clientState": "x"}
        ] * 1000
        answer = self.url_open(
            NOTIFICATION_PATH,
            data=json.dumps({"value": bad}),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(answer.status_code, 202)
        warnings_logged = [
            record for record in handler.records if " WARNING " in record
        ]
        self.assertEqual(len(warnings_logged), 1, warnings_logged[:3])
        self.assertIn("1000 of 1000", warnings_logged[0])

    def test_forged_validation_only_echoes(self):
        before = self.sync_triggers()
        subscriptions = self.Subscription.search_count([])
        genuine = {
            "value": [
                {
                    "subscriptionId": self.subscription.external_id,
                    "clientState": self.subscription.sudo().client_state,
                    "changeType": "updated",
                }
            ]
        }
        answer = self.url_open(
            NOTIFICATION_PATH + "?validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            data=json.dumps(genuine),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(answer.status_code, 200)
        self.assertEqual(answer.text, "<script>alert(1)</script>")
        self.assertTrue(answer.headers["Content-Type"].startswith("text/plain"))
        self.assertNotIn("session_id", answer.headers.get("Set-Cookie", ""))
        self.env.invalidate_all()
        self.assertEqual(self.sync_triggers(), before)
        self.assertEqual(self.Subscription.search_count([]), subscriptions)
        self.assertFalse(self.subscription.last_notification_date)

    def test_flood_calls_no_graph_and_crashes_nothing(self):
        before = self.sync_triggers()
        self.env.flush_all()
        self.emulator.clear_log()
        statuses = []
        bodies = (
            b"{not json",
            b'{"value": 5}',
            b"[]",
            json.dumps({"value": [{"clientState": "x"}] * 50}).encode(),
            json.dumps(
                {
                    "value": [
                        {
                            "subscriptionId": self.subscription.external_id,
                            "clientState": "forged",
                        }
                    ]
                }
            ).encode(),
        )
        for index in range(200):
            answer = self.url_open(
                NOTIFICATION_PATH,
                data=bodies[index % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            statuses.append(answer.status_code)
            self.assertNotIn("Traceback", answer.text)
        self.assertEqual(len(statuses), 200)
        self.assertTrue(set(statuses) <= {202, 400}, set(statuses))
        self.assertEqual(self.emulator.request_log, [])
        self.env.invalidate_all()
        self.assertEqual(self.sync_triggers(), before)

    def test_genuine_flood_calls_no_graph(self):
        self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.sync_cron.id)]
        ).unlink()
        before = self.sync_triggers()
        self.env.flush_all()
        self.emulator.clear_log()
        client_state = self.subscription.sudo().client_state
        for _index in range(50):
            answer = self.notify(clientState=client_state)
            self.assertEqual(answer.status_code, 202)
        self.assertEqual(self.emulator.request_log, [])
        self.env.invalidate_all()
        self.assertGreater(self.sync_triggers(), before)
        self.assertTrue(self.subscription.last_notification_date)

    def test_genuine_flood_adds_a_bounded_number_of_triggers(self):
        before = self.sync_triggers()
        client_state = self.subscription.sudo().client_state
        for _index in range(50):
            self.notify(clientState=client_state)
        self.env.invalidate_all()
        self.assertLessEqual(self.sync_triggers() - before, 2)


@tagged("post_install", "-at_install")
class TestSecurityUntrustedData(RoomExchangeCase):
    """Events from Exchange are data to check, never markup to trust."""

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        connection = self.ready_connection("application")
        self.room.write({"exchange_connection_id": connection.id})
        self.calendar = self.room.exchange_calendar_id
        self.calendar._bind_mailbox(ROOM_ADAMS)
        around_the_clock = self.calendar._around_the_clock_calendar(self.env.company)
        self.room.calendar_id = around_the_clock
        self.day = next_weekday(14)

    def outlook_booking(self, subject, hour_utc=13, **kwargs):
        start = datetime.combine(self.day, datetime.min.time()) + timedelta(
            hours=hour_utc
        )
        return self.emulator.book_room(
            ADELE[0],
            ROOM_ADAMS,
            subject,
            start.isoformat(),
            (start + timedelta(hours=1)).isoformat(),
            **kwargs,
        )

    def imported(self, event_id):
        return (
            self.env["room.exchange.binding"]
            .search([("external_id", "=", event_id)])
            .booking_id
        )

    def test_html_subject_and_body_are_neutralized(self):
        subject = '<script>alert(1)</script><img src=x onerror="alert(2)">'
        body = (
            "<p>Agenda</p><script>alert(3)</script>"
            '<img src=x onerror="alert(4)"><a href="javascript:alert(5)">go</a>'
        )
        event = self.outlook_booking(subject, body=body)
        self.assertTrue(self.calendar._sync(), self.calendar.last_error)
        booking = self.imported(event["id"])
        self.assertTrue(booking)
        self.assertEqual(booking._fields["name"].type, "char")
        # Stored as the text it is: the views escape it, nothing interprets it.
        self.assertEqual(booking.name, subject)
        description = str(booking.description or "")
        self.assertIn("Agenda", description)
        for dangerous in ("<script", "alert(3)", "onerror", "javascript:"):
            self.assertNotIn(dangerous, description)
        meeting = booking.meeting_id
        if meeting:
            for dangerous in ("<script", "onerror", "javascript:"):
                self.assertNotIn(dangerous, str(meeting.description or ""))

    def malformed_events(self, template):
        def variant(event_id, change):
            event = copy.deepcopy(template)
            event["id"] = event_id
            event["iCalUId"] = event_id
            change(event)
            return event

        def nested(key, sub, value):
            return lambda event: event[key].__setitem__(sub, value)

        def put(key, value):
            return lambda event: event.__setitem__(key, value)

        return [
            # (An item without "end" is a partial delta item: it is read again.)
            variant("bad-end-type", put("end", "not an object")),
            variant("bad-zone", nested("start", "timeZone", "Mars/Olympus_Mons")),
            variant("bad-year", nested("start", "dateTime", "99999-01-01T00:00:00")),
            variant("bad-min", nested("start", "dateTime", "0001-01-01T00:00:00")),
            variant("bad-text", nested("end", "dateTime", "tomorrow at noon")),
            variant("bad-date-type", nested("start", "dateTime", 1700000000)),
            variant("bad-subject-type", put("subject", 12345)),
            variant("bad-all-day-type", put("isAllDay", "yes")),
            variant("bad-organizer", put("organizer", ["x"])),
            variant("bad-body", put("body", "<p>not an object</p>")),
            variant(
                "bad-reversed",
                nested(
                    "end", "dateTime", template["start"]["dateTime"][:10] + "T00:00"
                ),
            ),
            variant("", lambda event: None),
            {**copy.deepcopy(template), "id": ["not", "a", "string"]},
        ]

    def inject(self, extra):
        """Adds ``extra(template)`` items to the first delta page of each round."""
        original = GraphClient.iter_delta

        def iter_delta(client, mailbox, **kwargs):
            first = True
            for page in original(client, mailbox, **kwargs):
                if first and page.events:
                    page.events[:0] = extra(page.events[0])
                    first = False
                yield page

        return patch.object(GraphClient, "iter_delta", iter_delta)

    def test_malformed_events_are_skipped_one_by_one(self):
        good = self.outlook_booking("Budget review", hour_utc=9)
        long_subject = "Long " * 20000
        injected = []

        def extra(template):
            long_event = copy.deepcopy(template)
            long_event.update(id="long-subject", iCalUId="long-subject")
            long_event["subject"] = long_subject
            long_event["body"] = {"contentType": "html", "content": "<p>x</p>" * 50000}
            injected[:] = [*self.malformed_events(template), long_event]
            return injected

        bookings = self.env["resource.booking"].search_count([])
        self.assertFalse(self.env["room.exchange.binding"].search_count([]))
        with self.inject(extra):
            plan = self.calendar._sync()
        self.assertTrue(plan, self.calendar.last_error)
        self.assertEqual(self.calendar.state, "syncing")
        self.assertFalse(self.calendar.last_error)
        self.assertTrue(self.imported(good["id"]), "the good event of the round")
        long_booking = self.imported("long-subject")
        self.assertTrue(long_booking)
        self.assertLessEqual(len(long_booking.name), MAX_SUBJECT_LENGTH)
        skipped = len(injected) - 1
        self.assertIn(
            f"{skipped} Outlook items cannot be synced", self.calendar.last_sync_summary
        )
        self.assertFalse(
            self.env["room.exchange.binding"].search([("external_id", "like", "bad-")])
        )
        # Every genuine event of the room is in (the scenario seeds some), no more.
        genuine = {event["id"] for event in self.emulator.store.snapshot(ROOM_ADAMS)}
        self.assertEqual(
            self.env["resource.booking"].search_count([]),
            bookings + len(genuine) + 1,
        )

    def test_non_object_items_are_skipped(self):
        good = self.outlook_booking("Board meeting", hour_utc=10)
        with self.inject(lambda template: ["not an event", None]):
            plan = self.calendar._sync()
        self.assertTrue(plan, self.calendar.last_error)
        self.assertTrue(self.imported(good["id"]))
        self.assertIn(
            "2 Outlook items cannot be synced", self.calendar.last_sync_summary
        )
