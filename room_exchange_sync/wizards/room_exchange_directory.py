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
"""

import logging

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import split_every

from odoo.addons.base.models.res_partner import _tz_get

from ..graph import (
    DirectoryRoom,
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
)
from ..models.room_directory import check_manager
from .dialogs import dialog_action

_logger = logging.getLogger(__name__)

# Room calendars in these states are mapped: mapping them again changes nothing.
MAPPED_STATES = ("authorized", "syncing", "error")
# Rooms bound together in one savepoint (room by room when one of them fails).
MAP_GROUP = 25
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
    def _compute_counts(self):
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

    # -- opening -----------------------------------------------------------------

    @api.model
    def _action_start(self, connection=None):
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

    def _check_session(self):
        """Every public method: Exchange sync managers only, on their own session
        (record rules: its creator's, in their companies)."""
        self.ensure_one()
        check_manager(self.env)
        self.check_access("write")

    def _reopen(self):
        self.ensure_one()
        return dialog_action(self, self.env._("Rooms from Microsoft 365"))

    def action_load(self):
        """Read the directory (rooms, room lists) and open its rooms."""
        self._check_session()
        self.line_ids.unlink()
        self.env["room.exchange.directory.room"].create(self._line_values())
        self.state = "choose"
        return self.action_open_rooms()

    def action_open_rooms(self):
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

    def action_sign_in(self):
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

    def _client(self):
        self.ensure_one()
        connection = self.connection_id
        if connection.auth_mode == "delegated" and (
            self.account_id.connection_id != connection
        ):
            self.account_id = connection._directory_account()
        return connection._directory_client(self.account_id)

    def _graph_failure(self, error):
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

    def _line_values(self):
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

    def _companies(self):
        return [self.company_id.id, False]

    # -- mapping -----------------------------------------------------------------

    def action_map(self):
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

    def action_export(self):
        """The bulk export of the mapped rooms' future bookings, with its preview."""
        self._check_session()
        rooms = self.line_ids.filtered(lambda line: line.result == "mapped").room_id
        if not rooms:
            raise UserError(self.env._("No room was mapped by this batch."))
        return self.env["room.exchange.export"]._action_open(rooms)


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

    def action_map_selected(self):
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

    def _creates_room(self):
        self.ensure_one()
        return self.match == "new" or (
            self.match in ("mailbox", "name") and not self.use_match
        )

    def _prepare_results(self):
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

    def _match_problem(self):
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

    def _failure(self, error):
        """Why Odoo could not record this room (its savepoint was rolled back)."""
        if isinstance(error, UserError):
            return str(error)
        return self.env._(
            "Odoo could not save room %(room)s: %(detail)s",
            room=self.name,
            detail=getattr(getattr(error, "diag", None), "message_primary", None)
            or type(error).__name__,
        )

    def _refusal(self, access):
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

    def _map(self, access):
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

    def _bind(self, access):
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

    def _room_values(self):
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
