# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""*Rooms from Microsoft 365*: mapping the chosen rooms, once their calendars'
access is checked: creating or updating their Odoo rooms and binding their room
calendars, group by group in savepoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg2

from odoo import models
from odoo.exceptions import UserError

from ..graph import DirectoryRoom, GraphNotFound, GraphPermissionError

if TYPE_CHECKING:
    from odoo.orm.types import Self


class RoomExchangeDirectoryRoom(models.TransientModel):
    _inherit = "room.exchange.directory.room"

    def _failure(self, error) -> str:
        """Why Odoo could not record this room (its savepoint was rolled back)."""
        if isinstance(error, UserError):
            return str(error)
        return self.env._(
            "Odoo could not save room %(room)s: %(detail)s",
            room=self.name,
            detail=getattr(getattr(error, "diag", None), "message_primary", None)
            or type(error).__name__,
        )

    def _refusal(self, access) -> str:
        """Why ``access`` (the probe of this room) does not allow mapping it."""
        directory = self.directory_id
        error = access.error
        if error is not None and not isinstance(
            error, GraphPermissionError | GraphNotFound
        ):
            return directory.connection_id._graph_error_message(error)
        probe = self.env["room.exchange.calendar"].new(
            {
                "connection_id": directory.connection_id.id,
                "account_id": directory.account_id.id,
            }
        )
        return probe._access_problem(self.mailbox, error, access.can_read)

    def _map(self, access) -> dict[Self, tuple[models.Model, dict[str, Any]]]:
        """Create or update these rooms' Odoo rooms and bind them: {line: (room
        calendar or an empty one, the line's result)}, for the caller to write.

        A room that failed its check is refused. The others are bound together in
        one savepoint; should one of them fail, the group is bound again room by
        room, each in a savepoint of its own, so that a failing room never undoes
        the others (one savepoint per room for every room costs a flush per room).
        """
        Calendar = self.env["room.exchange.calendar"]
        outcomes = {}
        passed = self.browse()
        for line in self:
            checked = access[line.mailbox]
            if checked.can_read and checked.can_write:
                passed |= line
            else:
                refusal = {
                    "result": "refused",
                    "result_message": line._refusal(checked),
                }
                outcomes[line] = (Calendar, refusal)
        try:
            with self.env.cr.savepoint():
                bound = passed._bind(access)
        except (UserError, psycopg2.IntegrityError):
            bound = {}
            for line in passed:
                try:
                    with self.env.cr.savepoint():
                        bound.update(line._bind(access))
                except (UserError, psycopg2.IntegrityError) as error:
                    refusal = {
                        "result": "refused",
                        "result_message": line._failure(error),
                    }
                    outcomes[line] = (Calendar, refusal)
        for line, calendar in bound.items():
            outcomes[line] = (
                calendar,
                {
                    "result": "mapped",
                    "room_id": calendar.room_id.id,
                    "calendar_id": calendar.id,
                    "match": "mapped",
                    "result_message": False,
                },
            )
        return outcomes

    def _bind(self, access) -> dict[Self, models.Model]:
        """Bind these rooms' mailboxes on the connection ({line: room calendar}):
        new Odoo rooms and their room calendars are created in one go each, the
        matched Odoo rooms get the directory's attributes and are bound one by one.
        """
        directory = self.directory_id
        settings = {
            "connection_id": directory.connection_id.id,
            "account_id": directory.account_id.id,
            "directory_state": "listed",
        }
        new = self.filtered(lambda line: line._creates_room())
        rooms = self.env["resource.resource"].create(
            [
                {
                    **line._room_values(),
                    "resource_type": "material",
                    "company_id": directory.company_id.id,
                    "calendar_id": directory.working_time_id.id,
                    "tz": directory.tz,
                }
                for line in new
            ]
        )
        # New room calendars are created bound: the check was the Save's.
        Calendar = self.env["room.exchange.calendar"]
        created = Calendar.create(
            [
                {
                    "room_id": room.id,
                    **settings,
                    **Calendar._bound_values(line.mailbox, access[line.mailbox]),
                }
                for line, room in zip(new, rooms, strict=True)
            ]
        )
        bound = dict(zip(new, created, strict=True))
        for line in self - new:
            room = line.room_id
            room.write(line._room_values())
            calendar = room.exchange_calendar_ids[:1]
            if calendar:
                calendar._bind_checked_mailbox(
                    line.mailbox, access[line.mailbox], settings
                )
            else:
                calendar = Calendar.create(
                    {
                        "room_id": room.id,
                        **settings,
                        **Calendar._bound_values(line.mailbox, access[line.mailbox]),
                    }
                )
            bound[line] = calendar
        return bound

    def _room_values(self) -> dict[str, Any]:
        """The room's attributes from the directory, which keeps them current from
        now on; an existing room keeps its name (it may have been matched by its
        mailbox)."""
        self.ensure_one()
        entry = DirectoryRoom(
            mailbox=self.mailbox,
            name=self.name,
            capacity=self.capacity,
            building=self.building,
            floor_label=self.floor,
            equipment=self.equipment.split(", ") if self.equipment else [],
        )
        values = self.env["resource.resource"]._directory_values(entry)
        values["room_attribute_source"] = "directory"
        if not self._creates_room():
            del values["name"]
        return values
