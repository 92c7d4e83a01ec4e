# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A connection's room directory (Graph Places, models/room_directory.py): reading
it, and the button that opens *Rooms from Microsoft 365*."""

import logging

from odoo import models
from odoo.exceptions import UserError

from ..graph import DirectoryRoom, GraphClient, GraphError
from .room_directory import check_manager

_logger = logging.getLogger(__name__)


class RoomExchangeConnection(models.Model):
    _inherit = "room.exchange.connection"  # pylint: disable=consider-merging-classes-inherited

    def action_open_room_directory(self) -> dict:
        """The *Rooms from Microsoft 365* screen of this connection."""
        self.ensure_one()
        check_manager(self.env)
        return self.env["room.exchange.directory"]._action_start(self)

    def _directory_account(self) -> models.Model:
        """The Microsoft account that reads the directory in delegated mode: the one
        that signed in (or refreshed its sign-in) most recently."""
        self.ensure_one()
        if self.auth_mode != "delegated":
            return self.env["room.exchange.account"]
        return self.env["room.exchange.account"].search(
            [("connection_id", "=", self.id)],
            order="write_date desc, id desc",
            limit=1,
        )

    def _directory_listing(self) -> dict[str, DirectoryRoom] | None:
        """{lower-case mailbox: DirectoryRoom} of the connection's directory, or
        None when it cannot be read now (logged; the daily job tries again)."""
        self.ensure_one()
        try:
            client = self._directory_client(self._directory_account())
            rooms = client.list_directory_rooms()
        except (GraphError, UserError) as error:
            _logger.warning(
                "Directory refresh of connection %s: the directory was not read (%s)",
                self.id,
                type(error).__name__,
            )
            return None
        return {room.mailbox.lower(): room for room in rooms}

    def _directory_client(self, account=None) -> GraphClient:
        """A Graph client for the directory and the rooms' checks: the app's, or the
        account's (delegated). Raises UserError when none can be made."""
        self.ensure_one()
        self._check_ready()
        if not self.places_enabled:
            raise UserError(
                self.env._(
                    "Connection %(name)s may not read the room directory: grant the "
                    "app the Place.Read.All permission (with admin consent), then "
                    "tick Pick rooms from the directory on the connection.",
                    name=self.name,
                )
            )
        if self.auth_mode == "application":
            return self._app_graph_client()
        if not account:
            raise UserError(
                self.env._(
                    "Sign in with a Microsoft account that may edit the room "
                    "calendars first (Sign in with Microsoft)."
                )
            )
        return self._graph_client(account._access_token)
