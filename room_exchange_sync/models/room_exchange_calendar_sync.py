# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One room's sync round: the room's lock, the round (``SyncRound``) run as Graph
steps with a savepoint per stretch of database work, and its outcome recorded on the
room (synced, or failed and retried later, backing off); the buttons Sync now, Full
resync and Confirm cancellations, and the pause switch of Settings."""

import logging
from contextlib import nullcontext
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..engine import ActionKind, Plan, StorageEmpty
from ..graph import GraphAuthError, GraphError
from ..sync import RoundOptions, SyncRound, run_inline
from ..sync.steps import Steps
from .room_exchange_calendar import PARAM_PAUSED

CANCEL_LOCAL = ActionKind.CANCEL_LOCAL

_logger = logging.getLogger(__name__)


class RoomExchangeCalendarSync(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    def _try_lock(self) -> models.Model:
        """Lock these room calendars for a round (one query); returns those locked,
        the others being synced by another worker. A row another transaction
        changed since ours began cannot be locked under Odoo's repeatable-read
        isolation: that room is simply busy (the others are then locked one by
        one)."""
        try:
            with self.env.cr.savepoint(flush=False):
                # FOR NO KEY UPDATE: rows that reference the room (a sync request,
                # a subscription) can still be inserted while it syncs.
                return self.try_lock_for_update(allow_referencing=True)
        except psycopg2.errors.SerializationFailure:
            if len(self) == 1:
                return self.browse()
            return self.browse().union(*(calendar._try_lock() for calendar in self))

    def _sync(self, **options) -> Plan | bool:
        """Run one round and record its outcome on the room; never raises for Graph
        or data problems (they are the room's state and last error). Returns the
        engine's plan, or False when the round failed. ``options``: those of
        RoundOptions (sync/options.py)."""
        return run_inline(self._sync_steps(RoundOptions(**options)))

    def _sync_steps(self, options=None, read_ahead=None) -> Steps[Plan | bool]:
        """``_sync`` as a generator of Graph steps (sync/steps.py), for running
        several rooms side by side (``options``: a RoundOptions; ``read_ahead``: the
        round's first delta page read ahead, see SyncRound.steps). Each stretch of
        database work between two Graph steps is one savepoint: a failure rolls
        that stretch back and ends the round (what earlier stretches recorded stays
        true: bindings of events written)."""
        self.ensure_one()
        sync_round = SyncRound(self, options)
        steps = sync_round.steps(read_ahead)
        del read_ahead  # a read ahead page is the round's to drop once read
        value, error = None, None
        while True:
            # A round whose Graph work is yielded reads Exchange before it writes
            # anything: a stretch that writes nothing needs no savepoint (an idle
            # round stays cheap; SyncRound.read_only).
            savepoint = not sync_round.read_only
            try:
                with self.env.cr.savepoint() if savepoint else nullcontext():
                    try:
                        work = steps.throw(error) if error else steps.send(value)
                    except StopIteration as stop:
                        plan = stop.value
                        break
            except Exception as failure:  # noqa: BLE001 - the room's outcome
                steps.close()
                self._record_round_error(failure)
                return False
            try:
                value, error = (yield work), None
            except Exception as failure:  # noqa: BLE001 - thrown into the round
                value, error = None, failure
        outcome = {
            "state": "syncing",
            "last_error": self._cancellation_warning(plan),
            "failure_count": 0,
            "next_attempt_date": False,
        }
        # An idle round changes nothing here: no write, no recomputation.
        changed = {key: value for key, value in outcome.items() if self[key] != value}
        if changed:
            self.sudo().write(changed)
        return plan

    def _record_round_error(self, error) -> None:
        """Record why a round failed (nothing of the failing step was kept)."""
        if isinstance(error, GraphAuthError) and error.reauthorization_needed:
            self._mark_reauthorization_needed(error)
        elif isinstance(error, UserError):
            self._record_round_failure(str(error))
        elif isinstance(error, GraphError):
            self._record_round_failure(self.connection_id._graph_error_message(error))
        elif isinstance(error, StorageEmpty):
            self._record_round_failure(
                self.env._(
                    "Exchange returned an empty calendar for %(mailbox)s although "
                    "%(count)s bookings are linked to it. The sync of this room "
                    "stopped so that nothing is cancelled by mistake: check the "
                    "mailbox address and its permissions. If the calendar really is "
                    "empty, confirm the cancellations.",
                    mailbox=self.mailbox,
                    count=error.bound_count,
                )
            )
        else:
            _logger.error(
                "Exchange sync of room calendar %s crashed",
                self.id,
                exc_info=(type(error), error, error.__traceback__),
            )
            self._record_round_failure(
                self.env._(
                    "The sync stopped on an unexpected error (%(error)s); nothing of "
                    "this step was kept, and it is tried again later.",
                    error=type(error).__name__,
                )
            )

    def _cancellation_warning(self, plan) -> str | bool:
        if not plan.needs_confirmation:
            return False
        return self.env._(
            "%(count)s meetings of this room disappeared from Exchange at once. They "
            "stay in Odoo until an Exchange sync manager confirms their cancellation.",
            count=plan.count(CANCEL_LOCAL),
        )

    def _record_round_failure(self, message) -> None:
        """The room goes to error and retries later, backing off while it keeps
        failing; other rooms carry on."""
        failures = self.failure_count + 1
        delay = min(timedelta(minutes=5) * 2 ** (failures - 1), timedelta(hours=6))
        self.sudo().write(
            {
                "state": "error",
                "last_error": message,
                "failure_count": failures,
                "next_attempt_date": fields.Datetime.now() + delay,
            }
        )
        _logger.warning("Exchange sync of room calendar %s failed", self.id)

    def action_sync_now(self) -> dict:
        self.ensure_one()
        self.check_access("write")
        return self._sync_notification(self._locked_sync())

    def action_full_resync(self) -> dict:
        self.ensure_one()
        self.check_access("write")
        return self._sync_notification(self._locked_sync(full=True))

    def action_confirm_cancellations(self) -> dict:
        self.ensure_one()
        self.check_access("write")
        plan = self._locked_sync(full=True, confirm_cancellations=True)
        return self._sync_notification(plan)

    @api.model
    def _sync_paused(self) -> bool:
        """Whether an admin paused the sync of every room (Settings)."""
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_PAUSED)
        return bool(value) and value.lower() not in ("0", "false")

    def _locked_sync(self, **options) -> Plan | bool:
        if self._sync_paused():
            raise UserError(
                self.env._(
                    "The sync of every room is paused (Settings › Exchange room "
                    "sync). Resume it there to sync room %(room)s.",
                    room=self.room_id.display_name,
                )
            )
        if not self._try_lock():
            raise UserError(
                self.env._(
                    "Room %(room)s is being synced right now; try again in a minute.",
                    room=self.room_id.display_name,
                )
            )
        problem = self._company_problems().get(self.id)
        if problem:
            self._record_round_failure(problem)
            return False
        return self._sync(**options)

    def _sync_notification(self, plan) -> dict:
        if plan is False:
            return self.connection_id._notification(
                self.env._("Sync failed"), self.last_error, "danger"
            )
        return self.connection_id._notification(
            self.env._("Sync done"), self.last_sync_summary, "success"
        )
