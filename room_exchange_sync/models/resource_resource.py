# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

from ..graph import GraphError
from .room_directory import DIRECTORY_STATES, check_manager
from .room_exchange_calendar import STATES
from .room_exchange_export_run import EXPORT_STATES

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
    exchange_auth_mode = fields.Selection(
        [("delegated", "Delegated"), ("application", "Application")],
        string="Authentication mode",
        compute="_compute_exchange_status",
        groups=USER,
    )
    exchange_account_name = fields.Char(
        string="Signed in as", compute="_compute_exchange_status", groups=USER
    )
    exchange_state = fields.Selection(
        STATES,
        string="Exchange status",
        compute="_compute_exchange_status",
        groups=USER,
    )
    exchange_calendar_name = fields.Char(
        string="Exchange calendar name", compute="_compute_exchange_status", groups=USER
    )
    exchange_calendar_external_id = fields.Char(
        string="Exchange calendar ID", compute="_compute_exchange_status", groups=USER
    )
    exchange_last_sync_date = fields.Datetime(
        string="Last successful sync", compute="_compute_exchange_status", groups=USER
    )
    exchange_last_error = fields.Text(
        string="Last sync error", compute="_compute_exchange_status", groups=USER
    )
    exchange_binding_count = fields.Integer(
        string="Linked bookings", compute="_compute_exchange_status", groups=USER
    )
    exchange_binding_error_count = fields.Integer(
        string="Bookings in error", compute="_compute_exchange_status", groups=USER
    )
    exchange_last_sync_summary = fields.Char(
        string="Last sync", compute="_compute_exchange_status", groups=USER
    )
    exchange_item_problem_text = fields.Text(
        string="Outlook items not synced",
        compute="_compute_exchange_status",
        groups=USER,
    )
    exchange_cancellation_pending = fields.Integer(
        string="Cancellations to confirm",
        compute="_compute_exchange_status",
        groups=USER,
    )
    exchange_oauth_ready = fields.Boolean(
        string="A Microsoft 365 connection is ready",
        compute="_compute_exchange_oauth_ready",
        groups=USER,
    )
    exchange_setup_step = fields.Selection(
        [
            ("no_connection", "Choose a connection"),
            ("connection_not_ready", "Test the connection"),
            ("sign_in", "Sign in"),
            ("choose_calendar", "Choose the room calendar"),
            ("save", "Save"),
            ("authorized", "Authorized"),
            ("error", "Error"),
            ("reauth_needed", "Sign in again"),
        ],
        string="Next step",
        compute="_compute_exchange_setup",
        groups=USER,
        help="Where the room's authorization stands: it decides the sentence and the "
        "buttons of the Exchange tab.",
    )
    exchange_next_step = fields.Char(
        string="What to do next",
        compute="_compute_exchange_setup",
        groups=USER,
    )
    exchange_sync_paused = fields.Boolean(
        string="Sync paused",
        compute="_compute_exchange_setup",
        groups=USER,
        help="An admin paused the sync of every room in Settings.",
    )
    exchange_can_authorize = fields.Boolean(
        string="Can sign in", compute="_compute_exchange_actions", groups=MANAGER
    )
    exchange_can_save = fields.Boolean(
        string="Can save", compute="_compute_exchange_actions", groups=MANAGER
    )
    exchange_can_remove_authorization = fields.Boolean(
        string="Can remove the authorization",
        compute="_compute_exchange_actions",
        groups=MANAGER,
    )
    exchange_can_sync = fields.Boolean(
        string="Can sync", compute="_compute_exchange_actions", groups=MANAGER
    )
    exchange_can_export = fields.Boolean(
        string="Can export", compute="_compute_exchange_actions", groups=MANAGER
    )

    exchange_export_state = fields.Selection(
        selection=[("none", "No export"), *EXPORT_STATES],
        string="Export",
        compute="_compute_exchange_export",
        groups=USER,
    )
    exchange_export_progress = fields.Char(
        string="Export progress", compute="_compute_exchange_export", groups=USER
    )
    exchange_export_failed = fields.Integer(
        string="Export failures", compute="_compute_exchange_export", groups=USER
    )
    exchange_export_summary = fields.Text(
        string="Last export", compute="_compute_exchange_export", groups=USER
    )
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
    exchange_export_message = fields.Char(
        string="Bookings in Exchange",
        compute="_compute_exchange_export",
        groups=USER,
        help="Whether this room's future bookings are all in Exchange, or how its "
        "export is doing.",
    )

    @api.depends("exchange_calendar_ids")
    def _compute_exchange_calendar_id(self):
        for room in self:
            room.exchange_calendar_id = room.exchange_calendar_ids[:1]

    # One compute method per setting: while a field is written, Odoo protects every
    # field of its compute method from recomputation, and the shared inverse below
    # must still read the current values of the settings not being written.
    @api.depends("exchange_calendar_ids.connection_id")
    def _compute_exchange_connection_id(self):
        for room in self:
            room.exchange_connection_id = room.exchange_calendar_ids[:1].connection_id

    @api.depends("exchange_calendar_ids.mailbox")
    def _compute_exchange_mailbox(self):
        for room in self:
            room.exchange_mailbox = room.exchange_calendar_ids[:1].mailbox

    @api.depends("exchange_calendar_ids.sync_enabled")
    def _compute_exchange_sync_enabled(self):
        for room in self:
            room.exchange_sync_enabled = room.exchange_calendar_ids[:1].sync_enabled

    @api.depends("exchange_calendar_ids.choice_id")
    def _compute_exchange_choice_id(self):
        for room in self:
            room.exchange_choice_id = room.exchange_calendar_ids[:1].choice_id

    def _inverse_exchange_settings(self):
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

    def _exchange_authorize_on_save(self, calendar):
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

    @api.depends(
        "exchange_calendar_ids.state",
        "exchange_calendar_ids.calendar_name",
        "exchange_calendar_ids.last_sync_date",
        "exchange_calendar_ids.last_error",
        "exchange_calendar_ids.connection_id.auth_mode",
        "exchange_calendar_ids.account_id.username",
        "exchange_calendar_ids.last_sync_summary",
        "exchange_calendar_ids.cancellation_pending",
        "exchange_calendar_ids.item_problems",
    )
    def _compute_exchange_status(self):
        for room in self:
            calendar = room.exchange_calendar_ids[:1]
            room.exchange_state = calendar.state or "not_configured"
            room.exchange_calendar_name = calendar.calendar_name
            room.exchange_calendar_external_id = calendar.calendar_external_id
            room.exchange_last_sync_date = calendar.last_sync_date
            room.exchange_last_error = calendar.last_error
            room.exchange_binding_count = calendar.binding_count
            room.exchange_binding_error_count = calendar.binding_error_count
            room.exchange_auth_mode = calendar.connection_id.auth_mode
            room.exchange_last_sync_summary = calendar.last_sync_summary
            room.exchange_cancellation_pending = calendar.cancellation_pending
            room.exchange_account_name = calendar.account_id.username
            room.exchange_item_problem_text = calendar.item_problem_text

    @api.depends_context("company")
    def _compute_exchange_oauth_ready(self):
        ready = bool(
            self.env["room.exchange.connection"].search_count(
                [("state", "=", "ready")], limit=1
            )
        )
        for room in self:
            room.exchange_oauth_ready = ready

    def _compute_exchange_setup(self):
        paused = self.env["room.exchange.calendar"]._sync_paused()
        for room in self:
            calendar = room.exchange_calendar_ids[:1].sudo()
            connection = calendar.connection_id
            step = room._exchange_step(calendar)
            room.exchange_setup_step = step
            room.exchange_sync_paused = paused
            room.exchange_next_step = room._exchange_step_sentence(
                step, calendar, connection
            )

    def _exchange_step(self, calendar):
        """Where this room's authorization stands (exchange_setup_step)."""
        connection = calendar.connection_id
        if calendar.state in ("authorized", "syncing", "error", "reauth_needed"):
            return "authorized" if calendar.state == "syncing" else calendar.state
        if not connection:
            return "no_connection"
        if connection.state != "ready":
            return "connection_not_ready"
        if connection.auth_mode == "delegated" and not calendar.account_id:
            return "sign_in"
        if not (calendar.choice_id or calendar.mailbox):
            return "choose_calendar"
        return "save"

    def _exchange_step_sentence(self, step, calendar, connection):
        mailbox = calendar.choice_id.mailbox or calendar.mailbox
        if step == "no_connection":
            return self.env._(
                "Choose the Microsoft 365 connection that reaches this room's mailbox."
            )
        if step == "connection_not_ready":
            return self.env._(
                "Connection %(name)s is not ready: open it and click Test connection.",
                name=connection.name,
            )
        if step == "sign_in":
            return self.env._(
                "Next: click Authorize with Microsoft Account and sign in with an "
                "account that can edit this room's calendar."
            )
        if step == "choose_calendar":
            return self.env._(
                "Next: choose the room calendar (or type the room mailbox), then "
                "click Save: Odoo checks that it can read and write it."
            )
        if step == "save":
            return self.env._(
                "Next: click Save to check that Odoo can read and write the calendar "
                "of %(mailbox)s and start syncing.",
                mailbox=mailbox,
            )
        if step == "reauth_needed":
            return self.env._(
                "Microsoft no longer accepts the sign-in: click Authorize with "
                "Microsoft Account and sign in again. Nothing was deleted."
            )
        if step == "error":
            return self.env._(
                "The last sync failed (the reason is below). It is tried again "
                "later; once the cause is fixed, click Sync now."
            )
        if not calendar.sync_enabled:
            return self.env._(
                "Authorized, but Sync with Exchange is off: tick it to sync this "
                "room with %(mailbox)s.",
                mailbox=mailbox,
            )
        if not calendar.last_sync_date and calendar._export_under_way():
            return self.env._(
                "Authorized: this room syncs with %(mailbox)s. Its first sync sends "
                "its future bookings to Exchange (Outlook/Exchange Bulk Export, "
                "below).",
                mailbox=mailbox,
            )
        if not calendar.last_sync_date:
            return self.env._(
                "Authorized: this room syncs with %(mailbox)s. Its first sync has "
                "not run yet.",
                mailbox=mailbox,
            )
        return self.env._("This room syncs with %(mailbox)s.", mailbox=mailbox)

    def _compute_exchange_actions(self):
        """Which Exchange buttons make sense now; the others are hidden, and the
        tab's sentence (exchange_next_step) says what to do."""
        paused = self.env["room.exchange.calendar"]._sync_paused()
        for room in self:
            calendar = room.exchange_calendar_ids[:1]
            step = room.exchange_setup_step
            delegated = calendar.connection_id.auth_mode == "delegated"
            room.exchange_can_authorize = delegated and (
                step in ("sign_in", "reauth_needed")
                or (step == "error" and calendar.connection_id.state == "ready")
            )
            room.exchange_can_save = step in ("choose_calendar", "save")
            room.exchange_can_remove_authorization = bool(
                calendar and (calendar.account_id or calendar.state != "not_configured")
            )
            room.exchange_can_export = bool(calendar) and not calendar._export_problem()
            room.exchange_can_sync = bool(
                not paused
                and calendar.sync_enabled
                and calendar.state in ("authorized", "syncing", "error")
            )

    def _exchange_calendar(self, access="write"):
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

    def action_exchange_load_choices(self):
        return self._exchange_calendar().action_load_choices()

    def action_exchange_save(self):
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

    def action_exchange_run_export(self) -> dict:
        """Open the bulk export wizard (wizards/room_exchange_export.py)."""
        return self.env["room.exchange.export"]._action_open(self)

    def action_exchange_refresh(self):
        """Show the export's progress as it is now (the form reloads)."""
        self.ensure_one()
        self._exchange_calendar().check_access("read")
        return False

    def _compute_exchange_export(self):
        for room in self:
            calendar = room.exchange_calendar_ids[:1].sudo()
            run = calendar.export_run_id
            room.exchange_export_state = run.state or "none"
            room.exchange_export_failed = run.failed_count
            room.exchange_export_summary = run.summary
            room.exchange_export_progress, room.exchange_export_message = (
                calendar._export_status() if calendar else (False, False)
            )

    # Rooms from the Microsoft 365 directory (models/room_directory.py) ------------

    @api.depends(
        "exchange_calendar_ids.directory_state", "exchange_calendar_ids.directory_note"
    )
    def _compute_exchange_directory(self):
        for room in self:
            calendar = room.exchange_calendar_ids[:1]
            room.exchange_directory_state = calendar.directory_state or "unknown"
            room.exchange_directory_note = calendar.directory_note

    def _directory_values(self, entry):
        """The fields of a room from its directory entry (a DirectoryRoom)."""
        return {
            "name": entry.name,
            "room_capacity": entry.capacity or 0,
            "room_building": entry.building or False,
            "room_floor": entry.floor or False,
            "room_equipment": ", ".join(entry.equipment or []) or False,
        }

    def _directory_changes(self, entry):
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

    def action_open_room_directory(self):
        """The *Rooms from Microsoft 365* screen, from the rooms' list (with or
        without rooms selected: they must be readable)."""
        check_manager(self.env)
        self.check_access("read")
        return self.env["room.exchange.directory"]._action_start()
