# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""*Rooms from Microsoft 365*: reading the directory, and matching its rooms to the
Odoo rooms and room calendars that already have them (by mailbox, else by name)."""

from typing import Any

from odoo import models
from odoo.exceptions import UserError

from ..graph import GraphAuthError, GraphClient, GraphError

# Room calendars in these states are mapped: mapping them again changes nothing.
MAPPED_STATES = ("authorized", "syncing", "error")


class RoomExchangeDirectory(models.TransientModel):
    _inherit = "room.exchange.directory"

    def _client(self) -> GraphClient:
        self.ensure_one()
        connection = self.connection_id
        if connection.auth_mode == "delegated" and (
            self.account_id.connection_id != connection
        ):
            self.account_id = connection._directory_account()
        return connection._directory_client(self.account_id)

    def _graph_failure(self, error) -> str:
        """A Graph failure of the whole batch, as a message for the admin."""
        connection = self.connection_id
        if isinstance(error, GraphAuthError) and error.reauthorization_needed:
            return self.env._(
                "Microsoft asks %(account)s to sign in again: click Sign in with "
                "Microsoft. (%(detail)s)",
                account=self.account_id.username or self.env._("the account"),
                detail=error.message,
            )
        return connection._graph_error_message(error)

    def _line_values(self) -> list[dict[str, Any]]:
        """One line per directory room, with what Odoo already has of it."""
        self.ensure_one()
        try:
            rooms = self._client().list_directory_rooms()
        except GraphError as error:
            raise UserError(self._graph_failure(error)) from error
        connection = self.connection_id
        Calendar = self.env["room.exchange.calendar"]
        calendars = Calendar.search(
            [("mailbox", "!=", False), ("company_id", "in", self._companies())]
        ).grouped(lambda calendar: calendar.mailbox.lower())
        odoo_rooms = self.env["resource.resource"].search(
            [
                ("resource_type", "=", "material"),
                ("company_id", "in", self._companies()),
            ]
        )
        by_name = odoo_rooms.grouped(lambda room: room.name.strip().lower())
        values = []
        for room in rooms:
            line = {
                "directory_id": self.id,
                "mailbox": room.mailbox,
                "name": room.name,
                "capacity": room.capacity or 0,
                "building": room.building,
                "floor": room.floor,
                "floor_number": room.floor_number,
                "room_list": room.room_list,
                "equipment": ", ".join(room.equipment or []),
                "wheelchair_accessible": room.wheelchair_accessible,
                "match": "new",
            }
            known = calendars.get(room.mailbox.lower(), Calendar)
            mine = known.filtered(lambda c: c.connection_id == connection)[:1]
            if mine:
                line.update(calendar_id=mine.id, room_id=mine.room_id.id)
                line["match"] = "mapped" if mine.state in MAPPED_STATES else "mailbox"
            elif known:
                line.update(room_id=known[0].room_id.id, match="mailbox")
            else:
                namesakes = by_name.get(room.name.strip().lower())
                free = namesakes and namesakes.filtered(
                    lambda r: not r.exchange_calendar_ids.filtered("mailbox")
                )
                if free:
                    line.update(room_id=free[0].id, match="name")
            values.append(line)
        return values

    def _companies(self) -> list[int | bool]:
        return [self.company_id.id, False]
