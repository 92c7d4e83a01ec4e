# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One pass's plan carried out: local actions in savepoints, remote ones in
``$batch`` requests paced to the mailbox's budget, each by its executor
(executors.py)."""

import logging

from odoo.exceptions import UserError

from .. import engine
from ..graph import GraphConflict, GraphError, GraphNotFound
from ..graph.client import BATCH_LIMIT
from . import exchange
from .executors import EXECUTORS, REMOTE_KINDS, ImportMeeting
from .problems import NOT_IMPORTED

_logger = logging.getLogger(__name__)
Kind = engine.ActionKind


class Execution:
    """Carrying out one pass's plan. The executors share it: the round, what it
    read of Exchange (``read``), the payloads of its bookings and its history."""

    def __init__(self, sync_round, client, read, payloads, history, plan) -> None:
        self.round = sync_round
        self.env = sync_round.env
        self.calendar = sync_round.calendar
        self.settings = sync_round.settings
        self.report = sync_round.report
        self.client = client
        self.read = read
        self.payloads = payloads
        self.history = history
        self.live_binding_ids = None
        self.local_actions, self.remote_actions = self._split(plan)

    @property
    def writes(self) -> int:
        """How many writes the plan sends to Exchange."""
        return len(self.remote_actions)

    @property
    def changes_window(self) -> bool:
        """Whether carrying out the plan changes the Odoo side (or lets go of it
        while its writes wait for Microsoft), so that it is read again afterwards."""
        return bool(
            self.local_actions
            or (self.remote_actions and self.settings.graph_in_threads)
        )

    def _split(self, plan) -> tuple:
        """(the actions carried out in Odoo, the writes to Exchange) of ``plan``."""
        remote_actions, local_actions = [], []
        for action in plan.actions:
            kind = action.kind
            if kind == Kind.CANCEL_LOCAL and plan.needs_confirmation:
                continue
            if (
                kind == Kind.UPDATE_REMOTE
                and action.status is not None
                and action.status.origin is engine.Origin.EXCHANGE
            ):
                # Never reached (the engine pulls these): an organizer's meeting is
                # never PATCHed by the room.
                _logger.warning(
                    "Room calendar %s: an update of an Outlook meeting was refused",
                    self.settings.id,
                )
                continue
            if kind in REMOTE_KINDS:
                remote_actions.append(action)
            else:
                local_actions.append(action)
        return local_actions, remote_actions

    def run(self):
        """Steps carrying out the plan: the local actions first, then the writes to
        Exchange."""
        local_actions, remote_actions = self.local_actions, self.remote_actions
        if local_actions:
            self._isolated(
                local_actions, self._run_local_batch, self._run_local, lambda a: a
            )
        if remote_actions and self.settings.graph_in_threads:
            # Only what the writes need while they wait for Microsoft beside other
            # rooms' rounds, so that memory does not grow with the rooms' sizes.
            self.payloads = self.payloads.released(
                action.booking_id
                for action in remote_actions
                if not EXECUTORS[action.kind].ending and action.booking_id
            )
        yield from self._run_remote_paced(remote_actions)

    # Odoo

    def _run_local_batch(self, actions) -> None:
        self._prefetch_bindings(actions)
        imports = []
        for action in actions:
            if action.kind == Kind.CREATE_LOCAL:
                imports.append(action)
            else:
                self._run_local(action)
        if imports:
            ImportMeeting().run_batch(self, imports)

    def _run_local(self, action) -> None:
        EXECUTORS[action.kind].run(self, action, self.binding(action))

    def binding(self, action):
        """The binding an action is about (empty when it has none yet)."""
        Binding = self.env["room.exchange.binding"]
        if not action.status:
            return Binding
        if self.live_binding_ids is not None:
            if action.binding_id in self.live_binding_ids:
                return Binding.browse(action.binding_id)
            return Binding
        return Binding.browse(action.binding_id).exists()

    def _prefetch_bindings(self, actions) -> None:
        """Which bindings of ``actions`` still exist, in one query."""
        ids = {action.binding_id for action in actions if action.status}
        Binding = self.env["room.exchange.binding"]
        self.live_binding_ids = set(Binding.browse(ids).exists()._ids)

    def local_hash(self, action, booking_id) -> str | None:
        """The hash of the payload a link's event shows after ``action``."""
        if action.kind in REMOTE_KINDS and action.local is not None:
            # What was written to Exchange is the booking as the round read it.
            return action.local.payload_hash
        if booking_id in self.payloads.built:
            return engine.payload_hash(self.payloads.built[booking_id])
        if action.local is not None:
            return action.local.payload_hash
        return None

    def synced_values(self, action, binding, booking_id=None) -> dict:
        """What ``binding`` holds once ``action`` is done."""
        booking_id = booking_id or binding.booking_id.id
        return binding._synced_values(
            self.settings.now, action.remote, self.local_hash(action, booking_id)
        )

    def answer_values(self, action, result, binding) -> dict:
        """``synced_values`` after Exchange answered a write with ``result``."""
        event = result.body or {}
        remote = engine.RemoteItem(
            event_id=event.get("id") or action.event_id,
            change_key=event.get("changeKey"),
            ical_uid=event.get("iCalUId"),
            series_master_id=event.get("seriesMasterId"),
        )
        return binding._synced_values(
            self.settings.now,
            remote,
            self.local_hash(action, action.booking_id or binding.booking_id.id),
        )

    def origin_of(self, booking_id) -> str:
        return self.payloads.origin(self.env["resource.booking"].browse(booking_id))

    # Exchange

    def _run_remote_paced(self, actions):
        """``_run_remote`` in groups of as many $batch requests as may be in flight
        when the round has a ``budget`` (each group waits until it fits)."""
        budget = self.round.options.budget
        if not budget:
            return (yield from self._run_remote(actions))
        group = max(
            min(BATCH_LIMIT * self.client.max_in_flight_per_mailbox, budget[0]), 1
        )
        for offset in range(0, len(actions), group):
            yield from self._run_remote(actions[offset : offset + group])

    def _run_remote(self, actions):
        if not actions:
            return
        requests = {}
        for index, action in enumerate(actions):
            request = EXECUTORS[action.kind].request(self, str(index), action)
            requests[request.id] = (request, action)
        results = yield from self.round.graph(
            exchange.send_writes,
            self.client,
            self.settings.mailbox,
            [request for request, _action in requests.values()],
            self.round.options.budget,
        )
        answered = [(requests[result.id][1], result) for result in results]
        self._isolated(
            answered, self._record_answers, self._record_answer, lambda pair: pair[0]
        )

    def _record_answers(self, pairs) -> None:
        """Record the answers of one $batch: the bindings to create in one
        ``create``, the others written (and flushed together)."""
        self._prefetch_bindings([action for action, _result in pairs])
        Binding = self.env["room.exchange.binding"]
        unbound = [
            action.booking_id
            for action, result in pairs
            if result.error is None
            and not EXECUTORS[action.kind].ending
            and not self.binding(action)
        ]
        existing = {}
        if unbound:
            domain = [
                ("calendar_id", "=", self.calendar.id),
                ("booking_id", "in", unbound),
            ]
            for binding in Binding.search(domain):
                existing.setdefault(binding.booking_id.id, binding)
        new, synced = [], []
        for action, result in pairs:
            if result.error is not None and not isinstance(result.error, GraphNotFound):
                self.record_failure(action, result.error)
                continue
            binding = self.binding(action) or existing.get(action.booking_id)
            if binding or result.error is not None:
                self._record_answer((action, result), binding)
                continue
            new.append((action.booking_id, self.origin_of(action.booking_id)))
            synced.append(self.answer_values(action, result, Binding))
            self.history.note_remote(action)
        if new:
            Binding._bind(self.calendar, new, synced)

    def _record_answer(self, pair, binding=None) -> None:
        action, result = pair
        binding = binding or self.binding(action)
        if result.error is None:
            EXECUTORS[action.kind].answered(self, action, result, binding)
        elif isinstance(result.error, GraphNotFound):
            self._event_gone(action, binding)
        else:
            raise result.error

    def _event_gone(self, action, binding) -> None:
        """The event disappeared from Exchange although this round's read did not
        say so (deleted meanwhile). A deletion is then done; an update re-creates it
        in the next round, which the unbound booking asks for at once."""
        if EXECUTORS[action.kind].ending:
            binding._forget()
            return
        self.report.undone.add(id(action))
        binding._detach()
        self.calendar._request_sync()

    # Failures

    def _isolated(self, items, run_all, run_one, action_of) -> None:
        """Carry out ``items`` in one savepoint with ``run_all``; should that fail,
        again one by one (``run_one``), each in its own savepoint, so that a failing
        item is recorded on its binding and never stops the others. What is done is
        counted once its savepoint is released."""
        before = self._snapshot()
        try:
            with self.env.cr.savepoint():
                run_all(items)
        except Exception as error:  # noqa: BLE001 - retried item by item below
            self._restore(before)
            _logger.info(
                "Room calendar %s: %s items at once failed (%s), one by one now",
                self.settings.id,
                len(items),
                type(error).__name__,
            )
        else:
            self.report.count_done(action_of(item) for item in items)
            return
        finally:
            self.live_binding_ids = None
        for item in items:
            action = action_of(item)
            before = self._snapshot()
            try:
                with self.env.cr.savepoint():
                    run_one(item)
            except Exception as error:  # noqa: BLE001 - recorded on the binding
                self._restore(before)
                _logger.warning(
                    "Room calendar %s: %s failed: %s",
                    self.settings.id,
                    action.kind.value,
                    type(error).__name__,
                )
                self.record_failure(action, error)
            else:
                self.report.count_done([action])

    def _snapshot(self) -> tuple:
        """What a stretch of items adds to the round's own bookkeeping (history,
        what was not done, failures, problem items), to restore when its savepoint
        rolls them back."""
        return (
            self.history.snapshot(),
            set(self.report.undone),
            self.report.failures,
            dict(self.read.problems.seen),
        )

    def _restore(self, snapshot) -> None:
        notes, undone, failures, seen = snapshot
        self.history.restore(notes)
        self.report.undone, self.report.failures = undone, failures
        self.read.problems.seen = seen

    def record_failure(self, action, error) -> None:
        """A failed item waits for its retry, visibly (its binding in error, or the
        room's list of meetings not imported); nothing else of the room is
        affected. A change read from Exchange that could not be applied is read
        again by the next round, a full one."""
        report = self.report
        report.undone.add(id(action))
        Binding = self.env["room.exchange.binding"]
        binding = (
            Binding.browse(action.binding_id).exists() if action.status else Binding
        )
        if isinstance(error, GraphConflict):
            message = self.env._(
                "The event changed in Exchange while Odoo updated it; it is read "
                "again at the next sync."
            )
        elif isinstance(error, GraphError):
            message = self.calendar.connection_id._graph_error_message(error)
        elif isinstance(error, UserError):
            message = str(error)
        else:
            message = self.env._(
                "Odoo could not record it (%(error)s).", error=type(error).__name__
            )
        if action.kind not in REMOTE_KINDS or isinstance(error, GraphConflict):
            # The next full round reads it again (the conflict policy decides).
            report.needs_full_round = True
        if action.kind == Kind.CREATE_LOCAL:
            self.read.problems.add(
                action.remote.event_id,
                NOT_IMPORTED,
                self.env._(
                    "the meeting could not be imported: %(error)s", error=message
                ),
            )
            return
        report.failures += 1
        if not binding and action.booking_id:
            binding = Binding._bind(self.calendar, [(action.booking_id, "odoo")])
        if not binding:
            return
        if not binding.sync_attempts and binding.booking_id:
            self.history.note(
                binding.booking_id.id,
                self.env._(
                    "Could not be synced with the Exchange calendar of %(room)s: "
                    "%(error)s It is tried again automatically.",
                    room=self.history.room_name,
                    error=message,
                ),
            )
        binding._mark_failed(message, self.settings.now)
