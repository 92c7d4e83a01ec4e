# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room's entry in the Microsoft 365 directory (models/room_directory.py): its
state, the attributes it brings to the room, and the *Rooms from Microsoft 365*
button of the rooms' list."""

from typing import Any

from odoo import api, fields, models

from .resource_resource import USER
from .room_directory import DIRECTORY_STATES, check_manager


class ResourceResource(models.Model):
    _inherit = "resource.resource"  # pylint: disable=consider-merging-classes-inherited

    exchange_directory_state = fields.Selection(
        DIRECTORY_STATES,
        string="Directory",
        compute="_compute_exchange_directory",
        groups=USER,
        help="Whether the room mailbox is still in the Microsoft 365 directory and "
        "within reach (daily directory refresh).",
    )
    exchange_directory_note = fields.Char(
        string="Directory changes",
        compute="_compute_exchange_directory",
        groups=USER,
        help="What the last directory refresh changed on the room.",
    )

    @api.depends(
        "exchange_calendar_ids.directory_state", "exchange_calendar_ids.directory_note"
    )
    def _compute_exchange_directory(self) -> None:
        for room in self:
            calendar = room.exchange_calendar_ids[:1]
            room.exchange_directory_state = calendar.directory_state or "unknown"
            room.exchange_directory_note = calendar.directory_note

    def _directory_values(self, entry) -> dict[str, Any]:
        """The fields of a room from its directory entry (a DirectoryRoom)."""
        return {
            "name": entry.name,
            "room_capacity": entry.capacity or 0,
            "room_building": entry.building or False,
            "room_floor": entry.floor or False,
            "room_equipment": ", ".join(entry.equipment or []) or False,
        }

    def _directory_changes(self, entry) -> list[tuple[str, str]]:
        """Bring the room in line with its directory entry (a DirectoryRoom); return
        [(field, sentence)] of what changed."""
        self.ensure_one()
        wanted = self._directory_values(entry)
        changes = []
        for name, value in wanted.items():
            old = self[name]
            if (old or False) == (value or False):
                continue
            label = self._fields[name]._description_string(self.env)
            changes.append(
                (
                    name,
                    self.env._(
                        "%(field)s %(old)s → %(new)s",
                        field=label.lower() if name != "name" else label,
                        old=old or "-",
                        new=value or "-",
                    ),
                )
            )
        if changes:
            self.sudo().write({name: wanted[name] for name, _text in changes})
        return changes

    def action_open_room_directory(self) -> dict:
        """The *Rooms from Microsoft 365* screen, from the rooms' list (with or
        without rooms selected: they must be readable)."""
        check_manager(self.env)
        self.check_access("read")
        return self.env["room.exchange.directory"]._action_start()
