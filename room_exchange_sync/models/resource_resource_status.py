# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Where a room's Exchange authorization stands: its status read from its room
calendar, the next step and its sentence, and the buttons that make sense now."""

from odoo import api, fields, models

from .resource_resource import MANAGER, USER
from .room_exchange_calendar import STATES


class ResourceResource(models.Model):
    _inherit = "resource.resource"  # pylint: disable=consider-merging-classes-inherited

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
    def _compute_exchange_status(self) -> None:
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
    def _compute_exchange_oauth_ready(self) -> None:
        ready = bool(
            self.env["room.exchange.connection"].search_count(
                [("state", "=", "ready")], limit=1
            )
        )
        for room in self:
            room.exchange_oauth_ready = ready

    def _compute_exchange_setup(self) -> None:
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

    def _exchange_step(self, calendar) -> str:
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

    def _exchange_step_sentence(self, step, calendar, connection) -> str:
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

    def _compute_exchange_actions(self) -> None:
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
