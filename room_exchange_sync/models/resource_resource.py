# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room (``resource.resource``): its attributes (capacity, building, floor,
equipment) and the Exchange settings of its Exchange tab, which write its room
calendar, with the tab's buttons.

The tab's other concerns are ``_inherit`` extensions of the same model: where the
room's authorization stands (resource_resource_status.py), its export
(resource_resource_export.py) and its directory entry (resource_resource_directory.py).
"""

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..graph import GraphError

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
USER = "room_exchange_sync.room_exchange_sync_group_user"
# Set by the Rooms action (room_exchange_calendar_views.xml): Odoo's own save of the
# room form authorizes the chosen calendar, as the tab's Save does.
AUTHORIZE_ON_SAVE = "room_exchange_authorize_on_save"


class ResourceResource(models.Model):
    _inherit = "resource.resource"

    room_capacity = fields.Integer(
        string="Capacity",
        help="How many people the room seats (0: unknown). It is shown where a room "
        "is chosen, and a booking type may require a minimum.",
    )
    room_building = fields.Char(
        string="Building", help="The building the room is in, as the directory says."
    )
    room_floor = fields.Char(
        string="Floor", help="The floor the room is on: its label, else its number."
    )
    room_equipment = fields.Char(
        string="Equipment",
        help="What the room offers: the directory's tags and its audio, video and "
        "display devices.",
    )
    room_attribute_source = fields.Selection(
        [("odoo", "Entered in Odoo"), ("directory", "Microsoft 365 directory")],
        string="Attributes from",
        default="odoo",
        required=True,
        help="Microsoft 365 directory: every day the room's name, capacity, building, "
        "floor and equipment are refreshed from its entry in the directory (rooms "
        "connected from Microsoft 365 start so), and each change is noted on its "
        "Exchange calendar. Entered in Odoo: they are left as they are.",
    )
    exchange_calendar_ids = fields.One2many(
        "room.exchange.calendar", "room_id", string="Exchange calendars", groups=USER
    )
    exchange_calendar_id = fields.Many2one(
        "room.exchange.calendar",
        string="Exchange calendar",
        compute="_compute_exchange_calendar_id",
        groups=USER,
    )
    exchange_connection_id = fields.Many2one(
        "room.exchange.connection",
        string="Microsoft 365 connection",
        compute="_compute_exchange_connection_id",
        inverse="_inverse_exchange_settings",
        groups=MANAGER,
        help="The Microsoft 365 tenant and app registration that reach this room's "
        "mailbox.",
    )
    exchange_mailbox = fields.Char(
        string="Room mailbox",
        compute="_compute_exchange_mailbox",
        inverse="_inverse_exchange_settings",
        groups=MANAGER,
        help="The e-mail address of the room mailbox in Exchange Online, e.g. "
        "room-alpha@contoso.com.",
    )
    exchange_sync_enabled = fields.Boolean(
        string="Sync with Exchange",
        compute="_compute_exchange_sync_enabled",
        inverse="_inverse_exchange_settings",
        groups=MANAGER,
        help="Keep this room's bookings and its Exchange room calendar in sync.",
    )
    exchange_choice_id = fields.Many2one(
        "room.exchange.calendar.choice",
        string="Room calendar",
        compute="_compute_exchange_choice_id",
        inverse="_inverse_exchange_settings",
        groups=MANAGER,
        help="The room calendars this Microsoft account (or the app) can write to: "
        "calendars shared with the account, and room mailboxes of the directory "
        "when the connection may read it. Or type the mailbox address below.",
    )

    @api.depends("exchange_calendar_ids")
    def _compute_exchange_calendar_id(self) -> None:
        for room in self:
            room.exchange_calendar_id = room.exchange_calendar_ids[:1]

    # One compute method per setting: while a field is written, Odoo protects every
    # field of its compute method from recomputation, and the shared inverse below
    # must still read the current values of the settings not being written.
    @api.depends("exchange_calendar_ids.connection_id")
    def _compute_exchange_connection_id(self) -> None:
        for room in self:
            room.exchange_connection_id = room.exchange_calendar_ids[:1].connection_id

    @api.depends("exchange_calendar_ids.mailbox")
    def _compute_exchange_mailbox(self) -> None:
        for room in self:
            room.exchange_mailbox = room.exchange_calendar_ids[:1].mailbox

    @api.depends("exchange_calendar_ids.sync_enabled")
    def _compute_exchange_sync_enabled(self) -> None:
        for room in self:
            room.exchange_sync_enabled = room.exchange_calendar_ids[:1].sync_enabled

    @api.depends("exchange_calendar_ids.choice_id")
    def _compute_exchange_choice_id(self) -> None:
        for room in self:
            room.exchange_choice_id = room.exchange_calendar_ids[:1].choice_id

    def _inverse_exchange_settings(self) -> None:
        Calendar = self.env["room.exchange.calendar"]
        for room in self:
            values = {
                "connection_id": room.exchange_connection_id.id,
                "mailbox": (room.exchange_mailbox or "").strip() or False,
                "sync_enabled": room.exchange_sync_enabled,
            }
            calendar = room.exchange_calendar_ids[:1]
            if room.exchange_choice_id and calendar:
                values["choice_id"] = room.exchange_choice_id.id
                values["mailbox"] = room.exchange_choice_id.mailbox
            if calendar:
                calendar.write(values)
            elif any(values.values()):
                calendar = Calendar.create({"room_id": room.id, **values})
            if self.env.context.get(AUTHORIZE_ON_SAVE) and (
                room.exchange_choice_id or room.exchange_mailbox
            ):
                room._exchange_authorize_on_save(calendar)

    def _exchange_authorize_on_save(self, calendar) -> None:
        """Check and bind the chosen room calendar when the room can be authorized
        now (a ready connection, and a signed-in account in delegated mode); else
        the tab says what is missing."""
        mailbox = calendar.choice_id.mailbox or calendar.mailbox
        if (
            not mailbox
            or self._exchange_step(calendar) not in ("save", "authorized", "error")
            or calendar._is_authorized_for(mailbox)
            or (
                calendar.connection_id.auth_mode == "delegated"
                and not calendar.account_id
            )
        ):
            return
        try:
            calendar._authorize(mailbox)
        except GraphError as error:
            calendar._graph_error_outcome(error, mailbox)

    def _exchange_calendar(self, access="write") -> models.Model:
        """The room's Exchange calendar, once the user's ``access`` to it is
        checked: every button of the tab works on it, and only Exchange sync
        managers may change it (users of the Exchange sync User group read it)."""
        self.ensure_one()
        calendar = self.exchange_calendar_ids[:1]
        if not calendar:
            raise UserError(
                self.env._(
                    "Choose a Microsoft 365 connection on the Exchange tab of %(room)s "
                    "first.",
                    room=self.display_name,
                )
            )
        calendar.check_access(access)
        return calendar

    def action_exchange_authorize(self) -> dict:
        return self._exchange_calendar()._sign_in_action("room")

    def action_exchange_load_choices(self) -> dict | bool:
        return self._exchange_calendar().action_load_choices()

    def action_exchange_save(self) -> dict:
        return self._exchange_calendar().action_save_calendar()

    def action_exchange_remove_authorization(self) -> None:
        self._exchange_calendar()._remove_authorization()

    def action_exchange_sync_now(self) -> dict:
        return self._exchange_calendar().action_sync_now()

    def action_exchange_full_resync(self) -> dict:
        return self._exchange_calendar().action_full_resync()

    def action_exchange_confirm_cancellations(self) -> dict:
        return self._exchange_calendar().action_confirm_cancellations()

    def action_exchange_open_settings(self) -> dict:
        return {
            "type": "ir.actions.act_window",
            "res_model": "room.exchange.calendar",
            "res_id": self._exchange_calendar(access="read").id,
            "view_mode": "form",
        }
