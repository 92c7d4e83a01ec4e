"""The sync package's contracts: one executor per kind of action, a mapping that
takes a new exported value in one edit, binder methods for every change of a link,
and a round whose state is set once."""

import dataclasses
from datetime import datetime
from unittest.mock import patch

from odoo.tests import tagged

from .. import engine
from ..sync import SyncRound, mapping
from ..sync.executors import EXECUTORS, REMOTE_KINDS
from ..sync.local import Payloads, read_window
from .common import RoomExchangeCase


@tagged("post_install", "-at_install")
class TestSyncShape(RoomExchangeCase):
    def test_every_kind_of_action_has_one_executor(self):
        # A kind the engine gains without an executor fails here, not in a round.
        self.assertEqual(set(EXECUTORS), set(engine.ActionKind))
        self.assertEqual(
            {kind.value for kind in REMOTE_KINDS},
            {
                "create_remote",
                "update_remote",
                "adopt_remote",
                "delete_remote",
                "decline_remote",
            },
        )
        for kind in REMOTE_KINDS:
            self.assertTrue(callable(getattr(EXECUTORS[kind], "request", None)), kind)

    def row(self, **values):
        row = {
            "id": 7,
            "start": datetime(2026, 12, 7, 9),
            "stop": datetime(2026, 12, 7, 10),
            "subject": "Board",
            "description_html": "",
            "location": "Adams",
            "organizer_name": "Alex",
            "organizer_email": "alex@example.com",
            "is_private": False,
            "exchange_origin": "odoo",
        }
        row.update(values)
        return row

    def summary(self, row):
        settings = mapping.PayloadSettings(
            "Europe/Paris", "full", False, "windows", "db"
        )
        return Payloads(self.env, settings, {row["id"]: row}, datetime.now()).summary(
            row
        )

    def test_a_new_exported_value_is_one_entry_and_never_missed(self):
        """Another addon adds a value to the mapping (one ``Exported`` entry) and
        shows it in the payload: a change of that value alone changes the payload's
        summary (the cache is keyed by the snapshot), and its field is exported."""
        Booking = type(self.env["resource.booking"])
        entry = mapping.Exported(
            "booking_type", "booking.type_id", lambda b: b.type_id.id, ("type_id",)
        )
        base_payload = Booking._exchange_event_payload

        def with_type(model, snapshot, settings):
            payload = base_payload(model, snapshot, settings)
            payload["categories"] = [str(dict(snapshot.extra)["booking_type"])]
            return payload

        with (
            patch.object(
                Booking, "_exchange_exported", lambda model: (*mapping.EXPORTED, entry)
            ),
            patch.object(Booking, "_exchange_event_payload", with_type),
        ):
            self.assertIn(
                "type_id", self.env["resource.booking"]._exchange_exported_fields()
            )
            first = self.summary(self.row(booking_type=1))
            self.assertEqual(self.summary(self.row(booking_type=1)), first)
            self.assertNotEqual(self.summary(self.row(booking_type=2)), first)
            # Read by the round's own query, as the others.
            self.bind_room_for_sync(self.ready_connection("application"))
            booking = self.book_in_odoo()
            sync_round = SyncRound(self.calendar)
            window = read_window(self.env, self.calendar, *sync_round._window())
            self.assertEqual(
                window.rows[booking.id]["booking_type"], booking.type_id.id
            )

    def test_the_mapping_names_every_value_of_the_snapshot(self):
        keys = {entry.key for entry in mapping.EXPORTED}
        snapshot_keys = {
            field.name for field in dataclasses.fields(mapping.BookingSnapshot)
        }
        self.assertEqual(keys | {"booking_id"}, snapshot_keys)

    def test_a_round_sets_its_state_once(self):
        self.emulator.reset()
        self.bind_room_for_sync(self.ready_connection("application"))
        self.book_in_odoo()
        sync_round = SyncRound(self.calendar)
        before = dict(vars(sync_round))
        plan = sync_round.run()
        self.assertEqual(plan.count(engine.ActionKind.CREATE_REMOTE), 1)
        self.assertLessEqual(
            set(vars(sync_round)),
            {
                "calendar",
                "env",
                "options",
                "settings",
                "report",
                "read_only",
                "room_tz",
            },
        )
        for name in ("calendar", "env", "options", "settings", "report"):
            self.assertIs(vars(sync_round)[name], before[name], name)
