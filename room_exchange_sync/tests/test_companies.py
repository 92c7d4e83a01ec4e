# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every relational field × two companies (issue 14).

A manager of company B, who cannot see company A's Exchange records, tries to
attach each of them by id to company B's room through JSON-RPC: every write is
refused. Which fields are checked is not a hand-made list either: every relational
field of the addon's models must carry ``check_company`` or be in ``BY_DESIGN``
with the reason it cannot point to another company.
"""

from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, JsonRpcException, new_test_user, tagged

from ..graph import GraphAuthError
from .common import MANAGER, ROOM_ADAMS, RoomExchangeCase

ADDON_MODELS_PREFIX = "room.exchange."
# Relational fields that need no check_company, and why; a new relational field
# of the addon that is neither checked nor listed here fails the test below.
BY_DESIGN = {
    ("room.exchange.account", "connection_id"): "its company is the connection's",
    ("room.exchange.binding", "calendar_id"): "its company is the calendar's",
    ("room.exchange.binding", "booking_id"): "_check_booking_company",
    ("room.exchange.calendar", "room_id"): "its company is the room's",
    ("room.exchange.calendar", "combination_id"): "_check_company_consistency",
    ("room.exchange.export.run", "user_id"): "who started the export",
    ("room.exchange.calendar.choice", "calendar_id"): "its company is the calendar's",
    ("room.exchange.subscription", "calendar_id"): "its company is the calendar's",
    ("room.exchange.sync.request", "calendar_id"): "made by the server for a room",
    ("room.exchange.auth.flow", "calendar_id"): "made by the sign-in after checks",
    ("room.exchange.auth.flow", "user_id"): "the user who started the sign-in",
    ("room.exchange.auth.flow", "connection_id"): "made by the sign-in after checks",
    ("room.exchange.export", "room_ids"): "the wizard checks access to each room",
    ("room.exchange.export.line", "wizard_id"): "its own wizard",
    ("room.exchange.export.line", "room_id"): "copied from the checked wizard",
    ("room.exchange.export.line", "calendar_id"): "copied from the checked wizard",
}


def addon_relational_fields(env):
    """(model, field) of every stored relational field of the addon's own models
    (but their company, create/write users and mail.thread's fields)."""
    found = set()
    for model_name in env.registry:
        if not model_name.startswith(ADDON_MODELS_PREFIX):
            continue
        for name, field in env[model_name]._fields.items():
            if (
                field.relational
                and field.store
                and not field.related
                and name not in ("create_uid", "write_uid")
                and field.comodel_name != "res.company"
                and not field.comodel_name.startswith("mail.")
                and field.type != "one2many"
            ):
                found.add((model_name, name))
    return found


@tagged("post_install", "-at_install")
class TestCompanies(RoomExchangeCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.company_a = env.company
        cls.company_b = env["res.company"].create({"name": "Fabrikam"})
        cls.manager_b = new_test_user(
            env,
            login="manager_b",
            groups=f"base.group_user,{MANAGER}",
            company_id=cls.company_b.id,
            company_ids=[Command.set(cls.company_b.ids)],
        )
        cls.side_a = cls.make_side(cls.company_a, "Adams", "application")
        cls.side_b = cls.make_side(cls.company_b, "Baker", "application")

    @classmethod
    def make_side(cls, company, name, mode):
        """A room of ``company`` with its calendar, connection, account, choice,
        booking type, requester and a booking with its binding."""
        env = cls.env
        connection = env["room.exchange.connection"].create(
            {
                "name": f"{name} tenant",
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555",
                "auth_mode": mode,
                "company_id": company.id,
            }
        )
        around_the_clock = env["room.exchange.calendar"]._around_the_clock_calendar(
            company
        )
        room = env["resource.resource"].create(
            {
                "name": name,
                "resource_type": "material",
                "calendar_id": around_the_clock.id,
                "company_id": company.id,
            }
        )
        calendar = env["room.exchange.calendar"].create(
            {
                "room_id": room.id,
                "connection_id": connection.id,
                "mailbox": f"room.{name.lower()}@contoso.test",
                "sync_enabled": True,
            }
        )
        account = env["room.exchange.account"].create(
            {"connection_id": connection.id, "home_account_id": f"oid.{name}"}
        )
        choice = env["room.exchange.calendar.choice"].create(
            {"calendar_id": calendar.id, "mailbox": calendar.mailbox}
        )
        booking = env["resource.booking"].create(
            {
                "name": f"{name} booking",
                "type_id": calendar.booking_type_id.id,
                "combination_auto_assign": False,
                "combination_id": calendar.combination_id.id,
                "partner_ids": [Command.set(calendar.partner_id.ids)],
                "start": fields.Datetime.now().replace(microsecond=0)
                + timedelta(days=8),
                "duration": 1,
            }
        )
        binding = env["room.exchange.binding"].create(
            {"calendar_id": calendar.id, "booking_id": booking.id}
        )
        run = env["room.exchange.export.run"].create({"calendar_id": calendar.id})
        return {
            "room": room,
            "calendar": calendar,
            "connection": connection,
            "account": account,
            "choice": choice,
            "booking_type": calendar.booking_type_id,
            "partner": calendar.partner_id,
            "combination": calendar.combination_id,
            "booking": booking,
            "binding": binding,
            "run": run,
        }

    def rpc(self, model, method, args):
        self.authenticate("manager_b", "manager_b")
        try:
            self.make_jsonrpc_request(
                f"/web/dataset/call_kw/{model}/{method}",
                {"model": model, "method": method, "args": args, "kwargs": {}},
            )
        except JsonRpcException as error:
            return str(error)
        return "ok"

    def test_every_relational_field_is_company_checked(self):
        unchecked = sorted(
            (model, name)
            for model, name in addon_relational_fields(self.env)
            if not self.env[model]._fields[name].check_company
            and (model, name) not in BY_DESIGN
        )
        self.assertFalse(
            unchecked,
            "add check_company=True (and _check_company_auto) or a reviewed "
            "constraint to BY_DESIGN",
        )
        for model, name in BY_DESIGN:
            self.assertIn(name, self.env[model]._fields, (model, name))
        for model in {model for model, _name in addon_relational_fields(self.env)}:
            checked = [
                field
                for field in self.env[model]._fields.values()
                if getattr(field, "check_company", False) and field.store
            ]
            if checked:
                self.assertTrue(self.env[model]._check_company_auto, model)

    def test_company_b_manager_cannot_attach_company_a_records(self):
        a, b = self.side_a, self.side_b
        attempts = {
            "room → A's connection": (
                "resource.resource",
                b["room"],
                {"exchange_connection_id": a["connection"].id},
            ),
            "calendar → A's connection": (
                "room.exchange.calendar",
                b["calendar"],
                {"connection_id": a["connection"].id},
            ),
            "calendar → A's account": (
                "room.exchange.calendar",
                b["calendar"],
                {"account_id": a["account"].id},
            ),
            "calendar → A's choice": (
                "room.exchange.calendar",
                b["calendar"],
                {"choice_id": a["choice"].id},
            ),
            "calendar → A's booking type": (
                "room.exchange.calendar",
                b["calendar"],
                {"booking_type_id": a["booking_type"].id},
            ),
            "calendar → A's requester": (
                "room.exchange.calendar",
                b["calendar"],
                {"partner_id": a["partner"].id},
            ),
            "calendar → A's combination": (
                "room.exchange.calendar",
                b["calendar"],
                {"combination_id": a["combination"].id},
            ),
            "binding → A's booking": (
                "room.exchange.binding",
                b["binding"],
                {"booking_id": a["booking"].id},
            ),
            "subscription on A's calendar": (
                "room.exchange.subscription",
                None,
                {"calendar_id": a["calendar"].id, "external_id": "sub-x"},
            ),
            "export run on A's calendar": (
                "room.exchange.export.run",
                None,
                {"calendar_id": a["calendar"].id},
            ),
            "B's calendar → A's export run": (
                "room.exchange.calendar",
                b["calendar"],
                {"export_run_id": a["run"].id},
            ),
            "binding on A's calendar": (
                "room.exchange.binding",
                None,
                {"calendar_id": a["calendar"].id, "external_id": "AAMk-x"},
            ),
            "B's calendar with A's connection": (
                "room.exchange.calendar",
                None,
                {
                    "room_id": self.env["resource.resource"]
                    .create(
                        {
                            "name": "Crystal",
                            "resource_type": "material",
                            "company_id": self.company_b.id,
                        }
                    )
                    .id,
                    "connection_id": a["connection"].id,
                },
            ),
        }
        before = {
            key: record.read(list(values))[0] if record else None
            for key, (_model, record, values) in attempts.items()
        }
        for key, (model, record, values) in attempts.items():
            with self.subTest(key):
                if record:
                    outcome = self.rpc(model, "write", [record.ids, values])
                else:
                    outcome = self.rpc(model, "create", [values])
                self.assertNotEqual(outcome, "ok")
                self.assertIn(
                    outcome,
                    (
                        "odoo.exceptions.UserError",
                        "odoo.exceptions.ValidationError",
                        "odoo.exceptions.AccessError",
                    ),
                )
                if record:
                    record.invalidate_recordset()
                    self.assertEqual(record.read(list(values))[0], before[key])

    def test_a_room_whose_records_disagree_does_not_sync(self):
        calendar = self.side_b["calendar"]
        ready = self.ready_connection("application", company_id=self.company_a.id)
        # Written before the checks existed (or by SQL): a room of B on A's tenant.
        self.env.cr.execute(
            "UPDATE room_exchange_calendar SET connection_id = %s, state = "
            "'authorized', mailbox = %s WHERE id = %s",
            (ready.id, ROOM_ADAMS, calendar.id),
        )
        calendar.invalidate_recordset()
        self.emulator.clear_log()
        self.patch(type(self.env["ir.cron"]), "_commit_progress", lambda *a, **k: 1e9)
        self.env["room.exchange.calendar"]._cron_sync()
        self.assertEqual(calendar.state, "error")
        self.assertIn("another company", calendar.last_error)
        calendar.next_attempt_date = False
        answer = calendar.with_user(self.manager_b).action_sync_now()
        self.assertEqual(answer["params"]["title"], "Sync failed")
        self.assertIn("another company", answer["params"]["message"])
        self.assertIn("another company", calendar._export_room_problem())
        self.assertEqual(self.emulator.request_log, [], "no request reached Graph")

    def test_alerts_go_to_the_managers_of_the_room_company_only(self):
        calendar = self.side_b["calendar"]
        calendar._mark_reauthorization_needed(
            GraphAuthError("Revoked", reauthorization_needed=True)
        )
        activities = self.env["mail.activity"].search(
            [("res_model", "=", calendar._name), ("res_id", "=", calendar.id)]
        )
        self.assertIn(self.manager_b, activities.user_id)
        self.assertNotIn(self.manager, activities.user_id, "a manager of company A")
        for user in activities.user_id:
            self.assertIn(self.company_b, user.company_ids)

    def test_errors_do_not_name_another_company_room(self):
        shared = self.env["room.exchange.connection"].create(
            {
                "name": "Shared tenant",
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555",
                "company_id": False,
            }
        )
        self.side_a["calendar"].write(
            {"connection_id": shared.id, "mailbox": "room.shared@contoso.test"}
        )
        outcome = self.rpc(
            "room.exchange.calendar",
            "write",
            [
                self.side_b["calendar"].ids,
                {"connection_id": shared.id, "mailbox": "room.shared@contoso.test"},
            ],
        )
        self.assertEqual(outcome, "odoo.exceptions.ValidationError")
        calendar_b = self.side_b["calendar"].with_user(self.manager_b)
        with self.assertRaises(Exception) as refusal:
            calendar_b.write(
                {"connection_id": shared.id, "mailbox": "room.shared@contoso.test"}
            )
        self.assertNotIn("Adams", str(refusal.exception))
        self.assertIn("another company", str(refusal.exception))
