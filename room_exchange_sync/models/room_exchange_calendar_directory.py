# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room and the Microsoft 365 directory (see models/room_directory.py): whether
its mailbox is still in the directory and within reach, refreshed by the daily job
``_cron_directory_refresh`` with the room's attributes, the changes noted on the
room; flagged rooms are never deleted."""

import logging

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import split_every

from ..graph import GraphError, GraphNotFound, GraphPermissionError
from . import room_directory
from .room_directory import DIRECTORY_STATES

_logger = logging.getLogger(__name__)


class RoomExchangeCalendarDirectory(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    directory_state = fields.Selection(
        DIRECTORY_STATES,
        string="Directory",
        default="unknown",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        help="Whether the room mailbox is still in the Microsoft 365 directory and "
        "within reach, as the daily directory refresh found it. Not in the "
        "directory: the room was deleted or hidden from the address list. Out of "
        "reach: Exchange refuses to open its calendar (application mode: the "
        "mailbox left the app's RBAC for Applications scope; delegated mode: the "
        "signed-in account lost its rights). Such rooms are flagged on the rooms "
        "overview, never deleted.",
    )
    directory_checked_date = fields.Datetime(
        string="Directory checked on",
        readonly=True,
        copy=False,
        help="When the daily directory refresh last checked this room.",
    )
    directory_note = fields.Char(
        string="Directory changes",
        readonly=True,
        copy=False,
        help="What the last directory refresh changed on the room.",
    )

    def _directory_problem(self) -> str | bool:
        """What the health check says of a room the directory no longer shows, or
        that Exchange no longer opens; False when neither."""
        self.ensure_one()
        room = self.room_id.display_name
        if self.directory_state == "removed":
            return self.env._(
                "The room mailbox %(mailbox)s of room %(room)s is no longer in the "
                "Microsoft 365 directory (deleted, or hidden from the address list). "
                "Check it with your Exchange admin; if the room is gone, remove its "
                "authorization (Odoo never deletes it by itself).",
                mailbox=self.mailbox,
                room=room,
            )
        if self.directory_state == "out_of_reach":
            return self.env._(
                "Exchange no longer opens the calendar of %(mailbox)s (room "
                "%(room)s): the mailbox left the app's RBAC for Applications scope, "
                "or the signed-in account lost its rights. Open the room's Exchange "
                "tab and click Save to see the command that grants it again.",
                mailbox=self.mailbox,
                room=room,
            )
        return False

    @api.model
    def _cron_directory_refresh(self) -> None:
        """Refresh the rooms' attributes from the directory, once a day per room,
        and flag rooms the directory no longer shows or Exchange no longer opens.

        One listing of the directory per connection, then rooms in committed steps
        of ``room_directory.REFRESH_CHUNK`` (their calendars read in ``$batch``); a
        connection whose directory cannot be read is left for the next day.
        Nothing is deleted.
        """
        calendars = self.sudo().search(
            [
                ("mailbox", "!=", False),
                ("connection_id.state", "=", "ready"),
                ("connection_id.places_enabled", "=", True),
                "|",
                ("directory_checked_date", "=", False),
                (
                    "directory_checked_date",
                    "<",
                    fields.Datetime.now() - room_directory.REFRESH_AGE,
                ),
            ]
        )
        Cron = self.env["ir.cron"]
        remaining = len(calendars)
        for connection, group in calendars.grouped("connection_id").items():
            listing = connection._directory_listing()
            for ids in split_every(room_directory.REFRESH_CHUNK, group.ids):
                chunk = group.browse(ids)
                if listing is not None:
                    chunk._directory_refresh(listing)
                remaining -= len(chunk)
                if not Cron._commit_progress(len(chunk), remaining=remaining):
                    return

    def _directory_refresh(self, listing) -> None:
        """Compare these rooms (one connection's) with ``listing`` ({lower-case
        mailbox: DirectoryRoom}); update their state and, for rooms whose attributes
        come from the directory, their attributes, noting the changes."""
        reachability = self._directory_reachability()
        now = fields.Datetime.now()
        for calendar in self:
            entry = listing.get(calendar.mailbox.lower())
            error = reachability.get(calendar.id)
            if entry is None or isinstance(error, GraphNotFound):
                state = "removed"
            elif isinstance(error, GraphPermissionError):
                state = "out_of_reach"
            elif error is not None:
                state = calendar.directory_state  # Exchange busy: unchanged
            else:
                state = "listed"
            changes = []
            room = calendar.room_id
            if entry is not None and room.room_attribute_source == "directory":
                changes = room._directory_changes(entry)
            values = {"directory_checked_date": now}
            notes = [text for _field, text in changes]
            if state != calendar.directory_state and (
                calendar.directory_state != "unknown" or state != "listed"
            ):
                notes.insert(0, calendar._directory_state_note(state))
            if state != calendar.directory_state:
                values["directory_state"] = state
            if notes:
                values["directory_note"] = "; ".join(notes)
                calendar._directory_post(notes)
            calendar.write(values)

    def _directory_reachability(self) -> dict:
        """{calendar id: None or the GraphError of reading its calendar}, read in
        ``$batch`` per Microsoft account (the app's for application mode). Rooms
        whose account cannot be used now are left out."""
        found = {}
        for account, calendars in self.grouped("account_id").items():
            connection = calendars[0].connection_id
            if connection.auth_mode == "delegated" and not account:
                continue
            try:
                client = connection._directory_client(account)
                errors = client.read_calendars(calendars.mapped("mailbox"))
            except (GraphError, UserError) as error:
                _logger.info(
                    "Directory refresh of connection %s: calendars not read (%s)",
                    connection.id,
                    type(error).__name__,
                )
                continue
            for calendar in calendars:
                found[calendar.id] = errors.get(calendar.mailbox)
        return found

    def _directory_state_note(self, state) -> str:
        labels = dict(DIRECTORY_STATES)
        return self.env._(
            "directory status %(old)s → %(new)s",
            old=labels[self.directory_state],
            new=labels[state],
        )

    def _directory_post(self, notes) -> None:
        """A log note on the room's Exchange calendar: what the directory changed."""
        items = Markup("").join(Markup("<li>%s</li>") % escape(note) for note in notes)
        self.message_post(
            body=Markup("<p>%s</p><ul>%s</ul>")
            % (self.env._("Microsoft 365 directory refresh:"), items),
            subtype_xmlid="mail.mt_note",
        )
