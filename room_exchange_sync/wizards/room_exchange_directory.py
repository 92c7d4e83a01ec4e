# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""*Rooms from Microsoft 365*: the tenant's rooms (Graph Places), and many of them
mapped to Odoo rooms at once.

- ``room.exchange.directory`` is one session of the screen: the connection (and, in
  delegated mode, the Microsoft account that reads the directory and whose rights
  are checked), the batch's working time and time zone, and its results;
- ``room.exchange.directory.room`` is one room of the directory in that session:
  its attributes, the Odoo room it is mapped to or matches, and what mapping it did.

The flow: ``_action_start`` (from a connection or the rooms' list) loads the
directory and opens its rooms as a list (filters, grouping by building, floor and
room list, search); *Map* on the selected rooms opens the confirmation, which shows
the Odoo rooms matched by mailbox or by name before anything is written;
``action_map`` checks read and write access of every room in ``$batch``
(``GraphClient.probe_calendar_access_many``, the check of the room tab's *Save*),
then creates or updates the rooms that passed, MAP_GROUP to a savepoint, and the
rooms of a group that failed again one by one, each in a savepoint of its own, so
that a failing room never undoes the others. Running it again maps only what is
missing.

Where it lives: the session and its actions here; reading the directory and
matching its rooms to Odoo rooms in room_exchange_directory_listing.py; a room of
the session in room_exchange_directory_room.py; checking, creating and binding the
rooms in room_exchange_directory_mapping.py.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import split_every

from odoo.addons.base.models.res_partner import _tz_get

from ..graph import GraphError
from ..models.room_directory import check_manager
from .dialogs import dialog_action

_logger = logging.getLogger(__name__)

# Rooms bound together in one savepoint (room by room when one of them fails).
MAP_GROUP = 25


class RoomExchangeDirectory(models.TransientModel):
    """One session of the *Rooms from Microsoft 365* screen."""

    _name = "room.exchange.directory"
    _description = "Rooms from Microsoft 365"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        help="The company of the rooms created or mapped.",
    )
    connection_id = fields.Many2one(
        "room.exchange.connection",
        string="Microsoft 365 connection",
        required=True,
        check_company=True,
        domain="[('state', '=', 'ready'), ('company_id', 'in', [company_id, False])]",
        help="The tenant whose directory is listed, and through which the rooms "
        "will sync.",
    )
    auth_mode = fields.Selection(related="connection_id.auth_mode")
    account_id = fields.Many2one(
        "room.exchange.account",
        string="Microsoft account",
        check_company=True,
        domain="[('connection_id', '=', connection_id)]",
        help="Delegated mode: the signed-in account that reads the directory and "
        "serves every room it may edit; rooms it cannot edit are reported with the "
        "command that grants the right.",
    )
    state = fields.Selection(
        [("choose", "Choose"), ("confirm", "Confirm"), ("done", "Done")],
        default="choose",
        required=True,
    )
    line_ids = fields.One2many("room.exchange.directory.room", "directory_id")
    working_time_id = fields.Many2one(
        "resource.calendar",
        string="Working time",
        check_company=True,
        default=lambda self: self.env.company.resource_calendar_id,
        help="The working time of the Odoo rooms this batch creates (when people may "
        "book them in Odoo; meetings booked in Outlook block them at any hour).",
    )
    tz = fields.Selection(
        _tz_get,
        string="Time zone",
        default=lambda self: self.env.user.tz or "UTC",
        help="The time zone of the Odoo rooms this batch creates.",
    )
    to_map_count = fields.Integer(string="Rooms", compute="_compute_counts")
    to_create_count = fields.Integer(string="New Odoo rooms", compute="_compute_counts")
    to_match_count = fields.Integer(
        string="Existing Odoo rooms", compute="_compute_counts"
    )
    to_skip_count = fields.Integer(string="Already mapped", compute="_compute_counts")
    mapped_count = fields.Integer(string="Mapped", compute="_compute_counts")
    already_count = fields.Integer(
        string="Were already mapped", compute="_compute_counts"
    )
    refused_count = fields.Integer(string="Refused", compute="_compute_counts")
    chosen_line_ids = fields.One2many(
        "room.exchange.directory.room",
        "directory_id",
        string="Rooms to map",
        domain=[("to_map", "=", True)],
    )
    match_line_ids = fields.One2many(
        "room.exchange.directory.room",
        "directory_id",
        string="Matched Odoo rooms",
        domain=[("to_map", "=", True), ("match", "in", ("mailbox", "name"))],
    )

    @api.depends(
        "line_ids.to_map", "line_ids.match", "line_ids.use_match", "line_ids.result"
    )
    def _compute_counts(self) -> None:
        for directory in self:
            chosen = directory.line_ids.filtered("to_map")
            creating = chosen.filtered(lambda line: line._creates_room())
            skipped = chosen.filtered(lambda line: line.match == "mapped")
            directory.to_map_count = len(chosen)
            directory.to_skip_count = len(skipped)
            directory.to_create_count = len(creating)
            directory.to_match_count = len(chosen) - len(creating) - len(skipped)
            results = chosen.mapped("result")
            directory.mapped_count = results.count("mapped")
            directory.already_count = results.count("already")
            directory.refused_count = results.count("refused") + results.count(
                "skipped"
            )

    @api.model
    def _action_start(self, connection=None) -> dict:
        """The screen for ``connection`` (or the only ready one that may read the
        directory): its rooms when they can be listed at once, else the form to
        choose the connection or the account."""
        check_manager(self.env)
        if connection is None:
            candidates = self.env["room.exchange.connection"].search(
                [("state", "=", "ready"), ("places_enabled", "=", True)]
            )
            connection = candidates if len(candidates) == 1 else None
        if not connection:
            # Which connection: the form, for a new session.
            return dialog_action(self, self.env._("Rooms from Microsoft 365"))
        directory = self.create(
            {
                "connection_id": connection.id,
                "company_id": (connection.company_id or self.env.company).id,
                "account_id": connection._directory_account().id,
            }
        )
        if connection.auth_mode == "application" or directory.account_id:
            return directory.action_load()
        return directory._reopen()

    def _check_session(self) -> None:
        """Every public method: Exchange sync managers only, on their own session
        (record rules: its creator's, in their companies)."""
        self.ensure_one()
        check_manager(self.env)
        self.check_access("write")

    def _reopen(self) -> dict:
        self.ensure_one()
        return dialog_action(self, self.env._("Rooms from Microsoft 365"))

    def action_load(self) -> dict:
        """Read the directory (rooms, room lists) and open its rooms."""
        self._check_session()
        self.line_ids.unlink()
        self.env["room.exchange.directory.room"].create(self._line_values())
        self.state = "choose"
        return self.action_open_rooms()

    def action_open_rooms(self) -> dict:
        """The directory's rooms as a list: filter, group, search, select, Map."""
        self._check_session()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "room_exchange_sync.room_exchange_directory_room_action"
        )
        action.update(
            domain=[("directory_id", "=", self.id)],
            context={"search_default_group_building": 1},
        )
        return action

    def action_sign_in(self) -> dict:
        """Delegated mode: sign in with the Microsoft account that will serve the
        rooms (then come back to this screen from the connection)."""
        self._check_session()
        connection = self.connection_id
        if connection.auth_mode != "delegated":
            raise UserError(
                self.env._(
                    "Connection %(name)s uses application access: nobody signs in.",
                    name=connection.name,
                )
            )
        return {
            "type": "ir.actions.act_url",
            "url": "/room_exchange_sync/oauth/start_directory"
            f"?connection_id={connection.id}",
            "target": "self",
        }

    def action_map(self) -> dict:
        """Map the chosen rooms: check access in ``$batch``, then create or update
        their Odoo rooms (``_map``); the results stay on the lines."""
        self._check_session()
        lines = self.line_ids.filtered("to_map")
        if not lines:
            raise UserError(
                self.env._("Select the rooms to map in the list first, then Map.")
            )
        todo = lines._prepare_results()
        if todo.filtered(lambda line: line._creates_room()) and not (
            self.working_time_id and self.tz
        ):
            raise UserError(
                self.env._(
                    "Choose the working time and the time zone of the new Odoo rooms."
                )
            )
        try:
            client = self._client()
            access = client.probe_calendar_access_many(todo.mapped("mailbox"))
        except GraphError as error:
            raise UserError(self._graph_failure(error)) from error
        results = {}
        for ids in split_every(MAP_GROUP, todo.ids):
            results.update(todo.browse(ids)._map(access))
        # After the rooms: their savepoints would flush the lines one by one.
        calendars = self.env["room.exchange.calendar"]
        for line, (calendar, values) in results.items():
            line.write(values)
            calendars |= calendar
        calendars._request_sync()
        self.state = "done"
        _logger.info(
            "Rooms from Microsoft 365 (connection %s): %s mapped, %s refused",
            self.connection_id.id,
            self.mapped_count,
            self.refused_count,
        )
        return self._reopen()

    def action_export(self) -> dict:
        """The bulk export of the mapped rooms' future bookings, with its preview."""
        self._check_session()
        rooms = self.line_ids.filtered(lambda line: line.result == "mapped").room_id
        if not rooms:
            raise UserError(self.env._("No room was mapped by this batch."))
        return self.env["room.exchange.export"]._action_open(rooms)
