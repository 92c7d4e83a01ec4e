# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Every public method × every role, over JSON-RPC (issue 14).

The methods are not listed by hand: every public method (no leading underscore)
that the addon defines on a model it defines or extends is found in the registry
and called through ``/web/dataset/call_kw`` as a portal user, an internal user, an
Exchange sync User and an Exchange sync Manager of another company, on a record of
that model in the first company. Each call must be refused with an AccessError,
unless ``ALLOWED`` says the method is meant for that role; a new button without an
access check therefore fails this test.
"""

import inspect
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import Command
from odoo.tests import HttpCase, JsonRpcException, new_test_user, tagged

from ..models.resource_resource import ResourceResource
from .common import MANAGER, USER, RoomExchangeCase
from .test_security import SecureDataMixin

ADDON = "odoo.addons.room_exchange_sync"
# ORM entry points the addon overrides: they are guarded by ir.model.access and
# record rules, which test_security.py and test_companies.py read and write through.
ORM_METHODS = {"create", "write", "unlink", "copy", "read", "search", "default_get"}
ROLES = ("portal", "internal", "exchange_user", "other_company_manager")
ACCESS_ERROR = "odoo.exceptions.AccessError"
# (model, method, role) calls that are meant to work. Reviewed: each only opens a
# view of records the role may read, or asks the sync to push a booking the role may
# edit; none changes a setting or reaches Microsoft.
ALLOWED = {
    ("room.exchange.calendar", "action_open_binding_errors", "exchange_user"),
    ("room.exchange.calendar", "action_open_overlaps", "exchange_user"),
    ("room.exchange.connection", "action_open_rooms", "exchange_user"),
    ("room.exchange.connection", "action_open_room_health", "exchange_user"),
    ("resource.resource", "action_exchange_open_settings", "exchange_user"),
}


def addon_public_methods(env):
    """{model name: sorted public method names the addon defines on it}."""
    found = {}
    for model_name in env.registry:
        for klass in type(env[model_name]).__mro__:
            if not klass.__module__.startswith(ADDON + "."):
                continue
            for name, value in vars(klass).items():
                if (
                    not name.startswith("_")
                    and inspect.isfunction(value)
                    and name not in ORM_METHODS
                ):
                    found.setdefault(model_name, set()).add(name)
    return {model: sorted(names) for model, names in found.items()}


@tagged("post_install", "-at_install")
class TestAccessMatrix(SecureDataMixin, RoomExchangeCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        company_b = env["res.company"].create({"name": "Fabrikam"})
        cls.users = {
            "portal": new_test_user(
                env, login="matrix_portal", groups="base.group_portal"
            ),
            "internal": new_test_user(
                env, login="matrix_internal", groups="base.group_user"
            ),
            "exchange_user": new_test_user(
                env, login="matrix_exchange_user", groups=f"base.group_user,{USER}"
            ),
            "other_company_manager": new_test_user(
                env,
                login="matrix_manager_b",
                groups=f"base.group_user,{MANAGER}",
                company_id=company_b.id,
                company_ids=[Command.set(company_b.ids)],
            ),
        }
        cls.records = cls.make_secure_room()
        calendar = cls.records["room.exchange.calendar"]
        calendar.sudo().write({"mailbox": "room.vault@contoso.test"})
        choice = env["room.exchange.calendar.choice"].create(
            {"calendar_id": calendar.id, "mailbox": "room.vault@contoso.test"}
        )
        around_the_clock = calendar._around_the_clock_calendar(env.company)
        cls.records["resource.resource"].calendar_id = around_the_clock
        booking_type = env["resource.booking.type"].create(
            {"name": "Matrix", "resource_calendar_id": around_the_clock.id}
        )
        combination = env["resource.booking.combination"].create(
            {"resource_ids": [Command.set(cls.records["resource.resource"].ids)]}
        )
        booking = env["resource.booking"].create(
            {
                "name": "Matrix booking",
                "type_id": booking_type.id,
                "combination_auto_assign": False,
                "combination_id": combination.id,
                "partner_ids": [Command.set(env.user.partner_id.ids)],
                "start": datetime.now().replace(microsecond=0) + timedelta(days=9),
                "duration": 1,
            }
        )
        export = env["room.exchange.export"].create(
            {"room_ids": [Command.set(cls.records["resource.resource"].ids)]}
        )
        cls.records.update(
            {
                "room.exchange.calendar.choice": choice,
                "resource.booking": booking,
                "calendar.event": booking.meeting_id,
                "room.exchange.export": export,
                "room.exchange.export.line": env["room.exchange.export.line"].create(
                    {"wizard_id": export.id, "calendar_id": calendar.id}
                ),
                "res.config.settings": env["res.config.settings"].create({}),
            }
        )
        directory = env["room.exchange.directory"].create(
            {"connection_id": cls.records["room.exchange.connection"].id}
        )
        cls.records["room.exchange.directory"] = directory
        cls.records["room.exchange.directory.room"] = env[
            "room.exchange.directory.room"
        ].create(
            {
                "directory_id": directory.id,
                "mailbox": "room.vault@contoso.test",
                "name": "Vault",
                "to_map": True,
            }
        )

    def call(self, role, model, method):
        """The outcome of one call over JSON-RPC: "ok" or the error's name."""
        login = self.users[role].login
        self.authenticate(login, login)
        try:
            self.make_jsonrpc_request(
                f"/web/dataset/call_kw/{model}/{method}",
                {
                    "model": model,
                    "method": method,
                    "args": [self.records[model].ids],
                    "kwargs": {},
                },
            )
        except JsonRpcException as error:
            return str(error)
        return "ok"

    def test_every_public_method_refuses_every_role_it_is_not_meant_for(self):
        methods = addon_public_methods(self.env)
        self.assertIn(
            "action_exchange_remove_authorization", methods["resource.resource"]
        )
        missing = set(methods) - set(self.records)
        self.assertFalse(missing, "add a record of these models to the matrix")
        wrong = []
        for model, names in methods.items():
            for method in names:
                for role in ROLES:
                    outcome = self.call(role, model, method)
                    allowed = (model, method, role) in ALLOWED
                    if (outcome == ACCESS_ERROR) == allowed:
                        wrong.append(f"{model}.{method} as {role}: {outcome}")
        self.assertFalse(wrong, "\n".join(wrong))
        for model, method, role in ALLOWED:
            self.assertIn(method, methods.get(model, ()), (model, method, role))

    def test_the_matrix_finds_a_new_button_without_a_check(self):
        def action_exchange_new_button(self):
            return True

        # As if the addon's own class had gained a button without any check.
        action_exchange_new_button.__module__ = ResourceResource.__module__
        with patch.object(
            ResourceResource,
            "action_exchange_new_button",
            action_exchange_new_button,
            create=True,
        ):
            methods = addon_public_methods(self.env)
            self.assertIn("action_exchange_new_button", methods["resource.resource"])
            self.assertEqual(
                self.call(
                    "exchange_user", "resource.resource", "action_exchange_new_button"
                ),
                "ok",
            )
