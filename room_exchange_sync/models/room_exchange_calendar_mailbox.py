# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A room and its room mailbox: binding the room to a mailbox once read and write
access to its calendar is checked (and what an Exchange admin must grant when it is
not), starting afresh when the mailbox, connection or account changes (and leaving
the old calendar when it is another one), and removing the authorization."""

import logging

from markupsafe import Markup

from odoo import Command, api, models
from odoo.exceptions import UserError

from ..graph import GraphAuthError, GraphError, GraphPermissionError
from ..sync import SYNC_CONTEXT, log_notes

_logger = logging.getLogger(__name__)


class RoomExchangeCalendarMailbox(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    def action_save_calendar(self) -> dict:
        """Bind the room to the chosen (or typed) room mailbox, once access is
        checked, and start its first sync."""
        self.ensure_one()
        self.check_access("write")
        mailbox = self.choice_id.mailbox or self.mailbox
        if not mailbox:
            raise UserError(
                self.env._("Choose the room's calendar or type its mailbox address.")
            )
        if not self._is_authorized_for(mailbox):
            # (the form's own save may have done it just before this button ran)
            try:
                self._authorize(mailbox)
            except GraphError as error:
                return self._graph_error_outcome(error, mailbox)
        return self.connection_id._notification(
            self.env._("Room %(room)s is authorized", room=self.room_id.display_name),
            self._first_sync_sentence(),
            "success",
        )

    def _is_authorized_for(self, mailbox) -> bool:
        self.ensure_one()
        return bool(
            self.state in ("authorized", "syncing")
            and self.calendar_external_id
            and (self.mailbox or "").lower() == mailbox.lower()
        )

    def _authorize(self, mailbox) -> None:
        """Check access to ``mailbox`` and bind the room to it (``_bind_mailbox``),
        then start its first sync: the export of its future bookings (see
        ``_export_first_sync``). Raises UserError or GraphError as
        ``_bind_mailbox``."""
        self.ensure_one()
        self._bind_mailbox(mailbox)
        if not self._export_first_sync():
            self._request_sync()

    def _graph_error_outcome(self, error, mailbox=None) -> dict:
        """What a button shows when Graph failed. A lost sign-in is recorded on the
        room (state, activities) and reported without rolling that record back;
        anything else is a plain UserError."""
        if isinstance(error, GraphAuthError) and error.reauthorization_needed:
            self._mark_reauthorization_needed(error)
            return self.connection_id._notification(
                self.env._("Sign in again"), self.last_error, "danger"
            )
        message = (
            self._access_problem(mailbox, error)
            if mailbox
            else self.connection_id._graph_error_message(error)
        )
        raise UserError(message) from error

    def _bind_mailbox(self, mailbox) -> None:
        """Probe read and write access to a room mailbox calendar and bind to it.

        Raises UserError naming the missing share or permission.
        """
        self.ensure_one()
        access = self._graph_client().probe_calendar_access(mailbox)
        self._bind_checked_mailbox(mailbox, access)

    def _bind_checked_mailbox(self, mailbox, access, values=None) -> None:
        """Bind to a room mailbox whose access was probed (``access``, a
        CalendarAccess: one probe, or one of a ``$batch`` of them); ``values`` are
        written along (the Microsoft account that probed it).

        Raises UserError naming the missing share or permission.
        """
        self.ensure_one()
        if not (access.can_read and access.can_write):
            raise UserError(
                self._access_problem(mailbox, access.error, access.can_read)
            )
        self.sudo().write({**(values or {}), **self._bound_values(mailbox, access)})
        self._close_reauthorization_activities()
        _logger.info("Room calendar %s bound to its mailbox", self.id)

    @api.model
    def _bound_values(self, mailbox, access) -> dict:
        """What a room calendar records once ``mailbox`` passed the check
        (``access``: its CalendarAccess, with read and write)."""
        return {
            "mailbox": mailbox,
            "calendar_name": access.calendar.get("name"),
            "calendar_external_id": access.calendar.get("id"),
            "state": "authorized",
            "last_error": False,
            "sync_enabled": True,
        }

    def _access_problem(self, mailbox, error, can_read=False) -> str:
        """What an Exchange admin must do so that Odoo can write this calendar."""
        who = (
            self.account_id.username
            if self.auth_mode == "delegated"
            else self.env._("the app registration")
        )
        if isinstance(error, GraphPermissionError) or can_read or error is None:
            if self.auth_mode == "application":
                return self.env._(
                    "The app cannot write the calendar of %(mailbox)s. An Exchange "
                    "admin must include this mailbox in the app's RBAC for "
                    "Applications scope (New-ManagementRoleAssignment -App <client id> "
                    "-Role 'Application Calendars.ReadWrite' -CustomResourceScope "
                    "<scope>), or the app lacks the Calendars.ReadWrite application "
                    "permission.",
                    mailbox=mailbox,
                )
            if can_read:
                return self.env._(
                    "%(who)s can only read the calendar of %(mailbox)s. An Exchange "
                    "admin must give it edit rights: Set-MailboxFolderPermission "
                    "-Identity %(mailbox)s:\\Calendar -User %(who)s -AccessRights "
                    "Editor (or full access to the room mailbox).",
                    who=who,
                    mailbox=mailbox,
                )
            return self.env._(
                "%(who)s cannot see the calendar of %(mailbox)s. An Exchange admin "
                "must share it with edit rights: Add-MailboxFolderPermission "
                "-Identity %(mailbox)s:\\Calendar -User %(who)s -AccessRights Editor "
                "(or give full access to the room mailbox).",
                who=who,
                mailbox=mailbox,
            )
        return self.connection_id._graph_error_message(error)

    def _calendar_moves(self, vals) -> dict:
        """{calendar: (old mailbox, old calendar id, whether the calendar may be
        another)} for the rooms whose mailbox, connection or account ``vals``
        change: each must start reading afresh."""
        moves = {}
        mailbox = vals.get("mailbox")
        for calendar in self:
            other_mailbox = (
                "mailbox" in vals
                and (mailbox or "").strip().lower()
                != (calendar.mailbox or "").strip().lower()
            )
            other_connection = (
                "connection_id" in vals
                and vals["connection_id"] != calendar.connection_id.id
            )
            other_account = (
                "account_id" in vals and vals["account_id"] != calendar.account_id.id
            )
            # Save checking the calendar of a mailbox changed before.
            checked = "calendar_external_id" in vals and bool(
                calendar.previous_calendar_external_id
            )
            if other_mailbox or other_connection or other_account or checked:
                moves[calendar] = (
                    calendar.previous_mailbox or calendar.mailbox,
                    calendar.previous_calendar_external_id
                    or calendar.calendar_external_id,
                    bool(other_mailbox or other_connection or checked),
                )
        return moves

    def _read_afresh(self, old_mailbox, old_calendar_id, new_calendar, vals) -> None:
        """After a change of mailbox, connection or account: forget the delta link
        (the next round lists the whole window of the calendar now configured). When
        the Exchange calendar may be another one, whether it is one is known once
        Save checks the new one (its calendar id): until then the room waits for
        that check; then, if it is another calendar, the room leaves the old one."""
        values = {"delta_link": False, "window_start": False, "window_end": False}
        if new_calendar:
            if "calendar_external_id" in vals:
                values.update(
                    previous_mailbox=False, previous_calendar_external_id=False
                )
                if old_calendar_id and old_calendar_id != self.calendar_external_id:
                    self._leave_calendar(old_mailbox)
            elif old_calendar_id:
                values.update(
                    previous_mailbox=old_mailbox,
                    previous_calendar_external_id=old_calendar_id,
                    calendar_external_id=False,
                    calendar_name=False,
                )
                if self.state in ("authorized", "syncing", "error"):
                    values.update(
                        state="not_configured",
                        last_error=self.env._(
                            "The room's mailbox or connection changed: click Save to "
                            "check access to its calendar before it syncs again."
                        ),
                    )
        self.sudo().write(values)

    def _leave_calendar(self, old_mailbox) -> None:
        """This room's Exchange calendar is another one now. Its links to the old
        calendar's events go: the events Odoo wrote there stay in it (Odoo no
        longer changes them) and its bookings are written to the new calendar at
        the next round; the meetings imported from the old calendar no longer hold
        this room, so their bookings are cancelled. The room's chatter says so."""
        self.ensure_one()
        bindings = self.sudo().binding_ids
        imported = bindings.filtered(lambda b: b.origin == "exchange").booking_id
        imported = imported.filtered("active")
        written = bindings.filtered(
            lambda b: b.origin == "odoo" and b.external_id and b.booking_id
        )
        bindings.unlink()
        if imported:
            imported.with_context(**SYNC_CONTEXT).action_cancel()
            log_notes(
                imported,
                dict.fromkeys(
                    imported.ids,
                    Markup("<p>%s</p>")
                    % self.env._(
                        "Cancelled: this meeting was booked in Outlook in the calendar "
                        "of %(old)s, which is no longer the Exchange calendar of room "
                        "%(room)s.",
                        old=old_mailbox,
                        room=self.room_id.display_name,
                    ),
                ),
            )
        self.message_post(
            body=self.env._(
                "The room's Exchange calendar changed from %(old)s to %(new)s. "
                "%(written)s events Odoo wrote into %(old)s stay there (Odoo no longer "
                "changes them; remove them in Outlook if they should go); the room's "
                "bookings are written to %(new)s at the next sync. %(imported)s "
                "bookings of meetings booked in %(old)s were cancelled in Odoo.",
                old=old_mailbox,
                new=self.mailbox,
                written=len(written),
                imported=len(imported),
            ),
            subtype_xmlid="mail.mt_note",
        )
        _logger.info(
            "Room calendar %s moved to another calendar: %s links dropped",
            self.id,
            len(bindings),
        )

    def _remove_authorization(self) -> None:
        """Stop syncing and forget the account's tokens once no room uses them.

        Bookings and their links stay, so authorizing again later resumes without
        duplicating events.
        """
        accounts = self.account_id
        self.sudo().write(
            {
                "account_id": False,
                "choice_id": False,
                "choice_ids": [Command.clear()],
                "state": "not_configured",
                "sync_enabled": False,
                "last_error": False,
            }
        )
        accounts._forget_if_unused()
        self._close_reauthorization_activities()
