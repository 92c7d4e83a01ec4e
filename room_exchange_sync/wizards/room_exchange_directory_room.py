# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""*Rooms from Microsoft 365*: one room of the directory in one session of the
screen, its match in Odoo, and what mapping it did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from odoo import fields, models
from odoo.exceptions import UserError

from ..models.room_directory import check_manager

if TYPE_CHECKING:
    from odoo.orm.types import Self

MATCHES = [
    ("mapped", "Mapped"),
    ("mailbox", "Same mailbox"),
    ("name", "Same name"),
    ("new", "New room"),
]
RESULTS = [
    ("mapped", "Mapped"),
    ("already", "Already mapped"),
    ("refused", "Refused"),
    ("skipped", "Skipped"),
]


class RoomExchangeDirectoryRoom(models.TransientModel):
    """A room of the directory, in one session of the screen."""

    _name = "room.exchange.directory.room"
    _description = "Rooms from Microsoft 365: one room"
    _order = "building, floor_number, floor, name, id"
    _check_company_auto = True

    directory_id = fields.Many2one(
        "room.exchange.directory",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(related="directory_id.company_id")
    mailbox = fields.Char(string="Room mailbox", required=True, readonly=True)
    name = fields.Char(required=True, readonly=True)
    capacity = fields.Integer(
        readonly=True, aggregator=None, help="0: not given by the directory."
    )
    building = fields.Char(readonly=True)
    floor = fields.Char(readonly=True)
    floor_number = fields.Integer(string="Floor number", readonly=True, aggregator=None)
    room_list = fields.Char(
        string="Room list",
        readonly=True,
        help="The room list (usually a building) holding the room.",
    )
    equipment = fields.Char(readonly=True)
    wheelchair_accessible = fields.Boolean(
        string="Wheelchair accessible", readonly=True
    )
    match = fields.Selection(
        MATCHES,
        string="Status",
        readonly=True,
        help="Mapped: an Odoo room already syncs with this mailbox through the "
        "connection. Same mailbox or Same name: an existing Odoo room matches and "
        "will be used once you confirm it. New room: an Odoo room will be created.",
    )
    room_id = fields.Many2one(
        "resource.resource",
        string="Odoo room",
        readonly=True,
        check_company=True,
        help="The Odoo room mapped to this mailbox, or the one that matches it.",
    )
    calendar_id = fields.Many2one(
        "room.exchange.calendar", readonly=True, check_company=True
    )
    to_map = fields.Boolean(string="To map", help="Chosen for the batch.")
    use_match = fields.Boolean(
        string="Use this Odoo room",
        default=True,
        help="Map the mailbox to the matching Odoo room; unticked, a new Odoo room "
        "is created instead.",
    )
    result = fields.Selection(RESULTS, readonly=True)
    result_message = fields.Text(string="Details", readonly=True)

    def action_map_selected(self) -> dict:
        """*Map* on the rooms selected in the list: the confirmation step."""
        check_manager(self.env)
        self.check_access("write")
        directory = self.directory_id
        if len(directory) != 1:
            raise UserError(self.env._("Select rooms of one list."))
        directory.line_ids.write({"to_map": False, "result": False})
        self.write({"to_map": True, "result_message": False})
        directory.state = "confirm"
        return directory._reopen()

    def _creates_room(self) -> bool:
        self.ensure_one()
        return self.match == "new" or (
            self.match in ("mailbox", "name") and not self.use_match
        )

    def _prepare_results(self) -> Self:
        """Mark the rooms there is nothing to do for; return those to map."""
        todo = self.browse()
        for line in self:
            if line.match == "mapped":
                line.write(
                    {
                        "result": "already",
                        "result_message": self.env._(
                            "Already syncs as %(room)s.", room=line.room_id.display_name
                        ),
                    }
                )
                continue
            problem = line._match_problem()
            if problem:
                line.write({"result": "skipped", "result_message": problem})
                continue
            todo |= line
        return todo

    def _match_problem(self) -> str | bool:
        """Why the matched Odoo room cannot take this mailbox, or False."""
        self.ensure_one()
        if self._creates_room():
            return False
        calendar = self.room_id.exchange_calendar_ids[:1]
        connection = self.directory_id.connection_id
        if (
            calendar
            and calendar.connection_id
            and calendar.connection_id != connection
            and calendar.sync_enabled
        ):
            return self.env._(
                "%(room)s already syncs with %(mailbox)s through connection "
                "%(connection)s: remove that authorization first, or untick Use "
                "this Odoo room to create a new one.",
                room=self.room_id.display_name,
                mailbox=calendar.mailbox,
                connection=calendar.connection_id.name,
            )
        return False
