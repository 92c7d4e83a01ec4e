# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Signing in to Microsoft for a room: the sign-in's start and where it returns,
the Graph client a room's calendar is reached with (its account's, or the app's),
the calendar picker filled after a sign-in (``room.exchange.calendar.choice``), and
a sign-in Microsoft asks to renew (the room's state and its managers' to-dos)."""

import logging
from urllib.parse import urlencode

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..graph import GraphAuthError, GraphClient, GraphError

_logger = logging.getLogger(__name__)

# Where the Microsoft sign-in returns to: the room, or the rooms overview.
SIGN_IN_RETURNS = {
    "room": "room_exchange_sync.resource_resource_action_rooms",
    "overview": "room_exchange_sync.room_exchange_calendar_action_cockpit",
}


class RoomExchangeCalendarSignIn(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    choice_ids = fields.One2many("room.exchange.calendar.choice", "calendar_id")
    choice_id = fields.Many2one(
        "room.exchange.calendar.choice",
        string="Calendar",
        domain="[('calendar_id', '=', id)]",
        copy=False,
        help="Room calendars this account (or the app) can write to.",
        check_company=True,
    )

    def _room_form_url(self, back_to="room") -> str:
        """Where the Microsoft sign-in brings the admin back: the room's form, or
        the rooms overview (``back_to`` as in SIGN_IN_RETURNS), under their menu so
        that the app's navbar and the breadcrumb are there."""
        self.ensure_one()
        action = self.env.ref(SIGN_IN_RETURNS.get(back_to, SIGN_IN_RETURNS["room"]))
        path = action.sudo().path or f"action-{action.id}"
        if back_to == "overview":
            return f"/odoo/{path}"
        return f"/odoo/{path}/{self.room_id.id}"

    def _sign_in_action(self, back_to) -> dict:
        """Start the Microsoft sign-in for this room; it comes back to ``back_to``
        (SIGN_IN_RETURNS). Exchange sync managers only: it changes the room's
        authorization."""
        self.ensure_one()
        self.check_access("write")
        problem = self._sign_in_problem()
        if problem:
            raise UserError(problem)
        query = urlencode({"calendar_id": self.id, "back": back_to})
        return {
            "type": "ir.actions.act_url",
            "url": f"/room_exchange_sync/oauth/start?{query}",
            "target": "self",
        }

    def _sign_in_problem(self) -> str | bool:
        """Why a person cannot sign in for this room now, or False."""
        self.ensure_one()
        connection = self.connection_id
        if not connection:
            return self.env._("Choose a Microsoft 365 connection on the room first.")
        if connection.state != "ready":
            return self.env._(
                "Connection %(name)s is not ready: open it and click Test connection.",
                name=connection.name,
            )
        if connection.auth_mode != "delegated":
            return self.env._(
                "Connection %(name)s uses application access: no sign-in is needed, "
                "choose the room mailbox and save.",
                name=connection.name,
            )
        return False

    def _graph_client(self) -> GraphClient:
        """A Graph client acting as this room's account, or as the app.

        Raises ConnectionNotReady (a UserError) unless the connection is Ready."""
        self.ensure_one()
        connection = self.connection_id
        connection._check_ready()
        if connection.auth_mode == "application":
            return connection._app_graph_client()
        account = self.account_id
        if not account:
            raise GraphAuthError(
                self.env._("No Microsoft account has signed in for this room."),
                code="no_account",
                reauthorization_needed=True,
            )
        return connection._graph_client(account._access_token)

    def _after_sign_in(self) -> None:
        """Offer the calendars the new account can write; re-bind a known mailbox."""
        self.ensure_one()
        self._refresh_choices()
        if self.mailbox:
            try:
                self._authorize(self.mailbox)
            except UserError as error:
                self.sudo().write({"state": "not_configured", "last_error": str(error)})

    def _refresh_choices(self) -> None:
        """Rebuild the calendar picker: shared room calendars and directory rooms."""
        self.ensure_one()
        client = self._graph_client()
        found = {}
        if self.auth_mode == "delegated":
            own = (self.account_id.username or "").lower()
            for calendar in client.list_calendars("me"):
                owner = (calendar.get("owner") or {}).get("address") or ""
                if owner and owner.lower() != own and calendar.get("canEdit"):
                    found[owner.lower()] = (owner, calendar.get("name"), "shared")
        if self.connection_id.places_enabled:
            for room in client.iter_rooms():
                address = room.get("emailAddress") or ""
                if address:
                    found.setdefault(
                        address.lower(), (address, room.get("displayName"), "directory")
                    )
        self.sudo().write(
            {
                "choice_id": False,
                "choice_ids": [Command.clear()]
                + [
                    Command.create({"mailbox": address, "name": name, "source": source})
                    for address, name, source in found.values()
                ],
            }
        )
        if self.mailbox:
            self.sudo().choice_id = self.choice_ids.filtered(
                lambda choice: choice.mailbox.lower() == self.mailbox.lower()
            )[:1]

    def action_load_choices(self) -> dict | bool:
        self.ensure_one()
        self.check_access("write")
        try:
            self._refresh_choices()
        except GraphError as error:
            return self._graph_error_outcome(error)
        return False

    def _mark_reauthorization_needed(self, error) -> None:
        """The refresh token is gone: the room waits for a new sign-in; nothing is
        deleted. Every Exchange manager gets one activity about it."""
        message = "\n".join(
            [
                self.env._(
                    "Microsoft asks for a new sign-in for room %(room)s: click "
                    "Authorize with Microsoft Account and sign in again.",
                    room=self.room_id.display_name,
                ),
                self.env._("Microsoft's answer: %(detail)s", detail=error.message)
                if error.message.startswith("AADSTS")
                else error.message,
            ]
        )
        today = fields.Date.context_today(self)
        for calendar in self.sudo():
            calendar.write({"state": "reauth_needed", "last_error": message})
            self._health_set_alert(
                calendar,
                calendar._reauthorization_summary(),
                message,
                self._alert_recipients(calendar.company_id),
                today,
            )
        _logger.warning("Room calendars %s need a new Microsoft sign-in", self.ids)

    def _reauthorization_summary(self) -> str:
        return self.env._(
            "Authorize room %(room)s again", room=self.room_id.display_name
        )

    def _close_reauthorization_activities(self) -> None:
        for calendar in self.sudo():
            self._health_set_alert(
                calendar,
                calendar._reauthorization_summary(),
                False,
                self.env["res.users"],
                False,
                feedback=self.env._("The room was authorized again."),
            )


class RoomExchangeCalendarChoice(models.Model):
    """A room calendar offered by the picker after a sign-in (or from the directory)."""

    _name = "room.exchange.calendar.choice"
    _description = "Room calendar choice"
    _order = "name, mailbox"

    calendar_id = fields.Many2one(
        "room.exchange.calendar", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="calendar_id.company_id", store=True)
    mailbox = fields.Char(required=True)
    name = fields.Char()
    source = fields.Selection(
        [("shared", "Shared with the account"), ("directory", "Room directory")]
    )

    @api.depends("name", "mailbox")
    def _compute_display_name(self) -> None:
        for choice in self:
            choice.display_name = (
                f"{choice.name} <{choice.mailbox}>" if choice.name else choice.mailbox
            )
