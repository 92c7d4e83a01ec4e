# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One sync round of one room calendar: read Exchange, plan, execute, record.

The engine decides (``engine.plan``); a round reads both sides (remote.py,
local.py), asks the engine, has its executors carry out the plan (execution.py),
flags the overlaps and records the outcome on the room. A failure of one item is
recorded on its binding and never stops the room.
"""

import dataclasses
import functools
import logging
from datetime import datetime, time, timedelta

from .. import engine
from ..graph import same_origin
from . import exchange, seams
from .execution import Execution
from .history import History, RoundReport, round_summary
from .local import (
    SYNC_CONTEXT,
    Payloads,
    export_subset,
    in_round,
    live_bookings,
    local_items,
    read_window,
    status_entry,
)
from .mapping import PayloadSettings
from .options import RoomSettings, RoundOptions
from .overlaps import flag_overlaps
from .remote import read_changes
from .steps import run_inline

_logger = logging.getLogger(__name__)


class SyncRound:
    """Sync one room calendar once (``options``: a RoundOptions). ``run()`` returns
    the engine's plan.

    Raises GraphError (the round could not read Exchange; nothing was written) and
    engine.StorageEmpty (the safety rail refused the round).
    """

    def __init__(self, calendar, options: RoundOptions | None = None) -> None:
        self.calendar = calendar.sudo().with_context(active_test=False, **SYNC_CONTEXT)
        self.env = self.calendar.env
        self.options = options or RoundOptions()
        self.settings = RoomSettings.of(self.calendar)
        self.report = RoundReport()
        # Whether the stretch of database work running now (between two Graph
        # steps) writes nothing, so that it needs no savepoint: the first one of a
        # round whose Graph work is yielded, and the next one of a quiet round.
        self.read_only = self.settings.graph_in_threads

    @functools.cached_property
    def room_tz(self) -> str:
        return self.calendar.room_id.tz or "UTC"

    def run(self) -> engine.Plan:
        """The whole round in this thread; returns the engine's plan."""
        return run_inline(self.steps())

    def preview(self) -> tuple:
        """A dry run (``options.dry_run``): (the plan, {event id: ImportedEvent} of
        what Exchange holds), nothing executed or stored."""
        assert self.options.dry_run
        client = self.calendar._graph_client()
        start, end = self._window()
        plan, _writes, read = run_inline(
            self._pass(client, start, end, self.options.full)
        )
        return plan, read.imported

    def steps(self, read_ahead=None):
        """The round as a generator of Graph steps (steps.py): its Graph work is
        yielded (run beside other rooms' by ``run_side_by_side``), its database work
        done between the yields; returns the engine's plan. ``read_ahead``: (request,
        answer) of the first delta page read ahead for this round, or None."""
        seams.reach(seams.ROUND_STARTING, calendar=self.calendar)
        client = self.calendar._graph_client()
        start, end = self._window()
        options = self.options
        plan, writes, _read = yield from self._pass(
            client, start, end, options.full, read_ahead
        )
        if (
            options.follow_up
            and not options.dry_run
            and writes
            and not self.report.needs_full_round
        ):
            # Our own writes come back in the next delta round. Reading them now
            # (their change keys are stored: they are recognised as echoes) moves the
            # delta link past them, so that what Outlook does to them before the next
            # round, even deleting them, is reported then: Graph does not report an
            # item created and deleted between two delta rounds.
            yield from self._pass(client, start, end, False, summary=plan, retry=False)
        return plan

    def graph(self, work, *args):
        """``work(*args)`` (exchange.py: talks to Graph and touches no record):
        yielded as a step when it may run in a worker thread, else called here (a
        person's sign-in saves its rotated refresh token in the database)."""
        assert work.__module__ == exchange.__name__, work
        if self.settings.graph_in_threads:
            return (yield functools.partial(work, *args))
        return work(*args)

    def _pass(
        self, client, start, end, full, read_ahead=None, summary=None, retry=True
    ):
        """One read, plan and execution; returns (plan, writes sent, ExchangeRead)."""
        options, report = self.options, self.report
        if not options.quiet:
            self.read_only = False
        delta_link = self._incremental_link(start, end, full)
        read = yield from read_changes(
            self, client, start, end, delta_link, read_ahead, retry
        )
        if not read.complete:
            report.needs_full_round = True
        if self._nothing_changed(read):
            return self._record(engine.Plan(), read, start, end), 0, read
        if self.read_only:
            # What follows writes: it goes in stretches of its own, each one in a
            # savepoint (``room.exchange.calendar._sync_steps``).
            self.read_only = False
            yield exchange.nothing
        round_kind = read.kind
        if read.problems.absences_are_unknown():
            # An item without a usable id is one of the linked events, or not:
            # what this full round does not list is not taken for removed.
            round_kind = engine.RoundKind.INCREMENTAL
        # Read after Exchange: rooms side by side do not each hold their window
        # while their reads wait for Microsoft.
        subset = self._export_subset(round_kind, read.remote, start, end)
        window, payloads, plan, status = self._plan(
            round_kind, read, start, end, subset
        )
        if subset is not None and not plan.count(engine.ActionKind.CREATE_REMOTE):
            # The next bookings were not to create after all: the whole window.
            subset = None
            window, payloads, plan, status = self._plan(round_kind, read, start, end)
        if options.dry_run:
            return plan, 0, read
        if (
            _skipped_events_changed(plan, status, read.remote)
            or plan.needs_confirmation
        ):
            # The delta link must not move past what this round leaves undone: a
            # change waiting for its retry, or removals held for a manager (the next
            # round, a full one, finds them again; the room keeps counting them).
            report.needs_full_round = True
        # Not kept while the writes wait for Microsoft (beside other rooms' rounds):
        # the items, the window when it is read again afterwards, and the creations
        # an export step leaves for the next (its plan lists every one to export).
        plan = self._limit_creates(plan)
        del status
        history = History(self.env, self.calendar.room_id)
        execution = Execution(self, client, read, payloads, history, plan)
        del payloads
        if execution.changes_window:
            window = None
        yield from execution.run()
        if options.read_next is not None:
            options.read_next(
                self._next_read_request(client, start, end, read, execution.writes)
            )
        history.save()
        overlaps_changed = False
        if subset is None:
            # An export step that read only what it creates leaves the overlaps to
            # its last step, which reads the whole window.
            window = window or read_window(self.env, self.calendar, start, end)
            overlaps_changed = flag_overlaps(
                self.env, self.calendar.room_id, window, start, end
            )
        plan = self._record(plan, read, start, end, summary, overlaps_changed)
        return plan, execution.writes, read

    def _plan(self, round_kind, read, start, end, subset=None) -> tuple:
        """(the window read, its payloads, the engine's plan, its status entries).
        Links whose events the room lists as problems sit out."""
        window = read_window(self.env, self.calendar, start, end, subset)
        # The window's query read the room's time zone: no query of its own for
        # the cached room_tz (an idle round's budget counts them).
        self.__dict__.setdefault("room_tz", window.room_tz)
        payloads = Payloads(
            self.env, self._payload_settings(), window.rows, self.settings.now
        )
        sitting_out = self._sit_out(window, read.problems)
        bindings = [
            binding
            for binding in window.bindings
            if binding.id not in sitting_out
            and in_round(binding, window, payloads, start, end)
        ]
        local = local_items(
            window, payloads, start, end, bindings, set(sitting_out.values())
        )
        local += self._claimed_but_gone(read.remote, window, local)
        status = [status_entry(binding) for binding in bindings]
        del bindings
        options = engine.Options(
            database_uuid=self.settings.database_uuid,
            confirm_mass_cancel=self.options.confirm_cancellations,
            force_delete=self.options.confirm_cancellations,
        )
        plan = engine.plan(
            local,
            read.remote.values(),
            status,
            round_kind=round_kind,
            policy=self.settings.policy,
            options=options,
            now=self.settings.now,
        )
        plan.raise_for_fatal()
        return window, payloads, plan, status

    def _nothing_changed(self, read) -> bool:
        """A quiet room whose incremental read brought no change: nothing to plan."""
        options = self.options
        return (
            options.quiet
            and read.kind == engine.RoundKind.INCREMENTAL
            and not read.remote
            and not read.problems.kept()
            and not self.report.needs_full_round
            and not options.exporting
            and not self.calendar.cancellation_pending
        )

    def _record(self, plan, read, start, end, summary=None, overlaps_changed=False):
        """Record the round on the room calendar; returns ``plan``."""
        report, now = self.report, self.settings.now
        values = {
            "delta_link": False if report.needs_full_round else read.delta_link,
            "window_start": start,
            "window_end": end,
            "last_sync_date": now,
            "last_sync_summary": round_summary(
                self.env, summary or plan, report, read.problems
            ),
            "item_problems": read.problems.kept(),
            "cancellation_pending": (
                plan.count(engine.ActionKind.CANCEL_LOCAL)
                if plan.needs_confirmation
                else 0
            ),
        }
        if read.problems.full:
            values["last_full_sync_date"] = now
        calendar = self.calendar
        changed = {
            name: value
            for name, value in values.items()
            if name == "last_sync_date"
            or calendar._fields[name].convert_to_cache(value, calendar)
            != calendar[name]
        }
        changed["round_count"] = calendar.round_count + 1
        seams.reach(seams.ROUND_RECORDED, calendar=calendar, values=changed)
        calendar.write(changed)
        if calendar.health == "degraded" or overlaps_changed:
            # Staleness is time-based, so last_sync_date is no dependency of the
            # health (an idle round stays cheap): a stale room is fresh again now.
            # Overlaps are flagged with a plain column update: the room's health
            # counts them.
            self.env.add_to_compute(calendar._fields["health"], calendar)
        _logger.info(
            "Exchange sync of room calendar %s: %s",
            calendar.id,
            values["last_sync_summary"],
        )
        return plan

    # The window and where to read from

    def _window(self) -> tuple:
        """[today - days back, today + days ahead), re-anchored every day."""
        # In UTC: the window must not depend on who runs the round (the cron or a
        # user in another time zone), or every change of hands restarts the delta.
        connection = self.calendar.connection_id
        today = datetime.combine(self.settings.now.date(), time())
        end = today + timedelta(days=connection.sync_future_days)
        # An export's horizon stays in the window of later rounds: a bound event
        # outside the window of a full round would be taken for a removed one.
        horizons = (self.options.window_end, self.calendar.export_run_id.horizon)
        end = max([end, *(horizon for horizon in horizons if horizon)])
        return (today - timedelta(days=connection.sync_past_days), end)

    def _incremental_link(self, start, end, full) -> str | None:
        """The delta link to continue from, or None for a full round."""
        calendar = self.calendar
        if (
            not full
            and calendar.delta_link
            and calendar.window_start == start
            and calendar.window_end == end
            # A link stored before the Graph URL changed is never followed.
            and same_origin(calendar.delta_link, calendar.connection_id.graph_url or "")
        ):
            return calendar.delta_link
        return None

    def first_read_request(self, client, request_id):
        """The request of this round's first delta page (for a read ahead)."""
        start, end = self._window()
        link = self._incremental_link(start, end, self.options.full)
        return self._delta_request(client, start, end, link, request_id)

    def _next_read_request(self, client, start, end, read, writes):
        """The request of the next round's first delta page, which brings back this
        round's writes (None: there were none, or the next round is a full one)."""
        if not writes or self.report.needs_full_round or not read.delta_link:
            return None
        request_id = str(self.calendar.id)
        return self._delta_request(client, start, end, read.delta_link, request_id)

    def _delta_request(self, client, start, end, link, request_id):
        settings = self.settings
        return exchange.delta_request(
            client, settings.mailbox, start, end, link, settings.page_size, request_id
        )

    # The Odoo side, as the engine sees it

    def _payload_settings(self) -> PayloadSettings:
        """What every payload of the round is made of besides its booking."""
        calendar = self.calendar
        return PayloadSettings(
            room_tz=self.room_tz,
            privacy_mode=calendar.privacy_mode,
            include_organizer_email=calendar.include_organizer_email,
            time_zone_names=calendar.connection_id.time_zone_names,
            database_uuid=self.settings.database_uuid,
        )

    def _sit_out(self, window, problems) -> dict:
        """{binding id: booking id} of the links whose events are listed on the room
        as problems (not readable, no length): they sit out the round, nothing is
        planned for them, and each says why (state Error) until its event is
        readable again."""
        event_ids = problems.sitting_out()
        if not event_ids:
            return {}
        sitting = [b for b in window.bindings if b.external_id in event_ids]
        kept = problems.kept()
        Binding = self.env["room.exchange.binding"]
        for binding in sitting:
            message = self.env._(
                "The event in Exchange cannot be synced: %(reason)s.",
                reason=kept[binding.external_id]["reason"],
            )
            if binding.sync_state != "error" or binding.sync_error != message:
                Binding.browse(binding.id)._mark_error(message)
        return {binding.id: binding.booking_id for binding in sitting}

    def _claimed_but_gone(self, remote, window, local) -> list:
        """Items for the bookings that unbound events of ours claim (marker or
        transactionId) and that are gone: deleted, cancelled, or no longer in this
        room. Such an event is left over (its create's answer was lost, then its
        booking went): the engine deletes it, as for a cancelled booking."""
        bound = {b.external_id for b in window.bindings if b.external_id}
        known = {item.booking_id for item in local}
        uuid = self.settings.database_uuid
        claimed = set()
        for item in remote.values():
            if item.event_id in bound or not item.is_live:
                continue
            booking_id = engine.parse_marker(item.marker, uuid)
            if booking_id is None:
                booking_id = engine.parse_transaction_id(item.transaction_id, uuid)
            if booking_id is not None and booking_id not in known:
                claimed.add(booking_id)
        if not claimed:
            return []
        live = live_bookings(self.env, self.calendar.room_id, claimed)
        return [
            engine.LocalItem(
                booking_id=booking_id,
                payload_hash="",
                start=None,
                stop=None,
                active=False,
            )
            for booking_id in sorted(claimed - live)
        ]

    # The bulk export's steps

    def _export_subset(self, round_kind, remote, start, end):
        """What an export step reads of the Odoo side, or None for the whole window.

        A step of the bulk export (``max_creates``) creates the next bookings of
        the room: an incremental step that removes nothing needs only those, the
        events Exchange reported (the echoes of the last step) and the bindings
        not in sync (changes, retries, conflicts), so that a step costs the same
        however many bookings the room holds and the export stays linear. The step
        that finds nothing left to create reads the whole window, and flags the
        overlaps. Returns (ids of the next ``max_creates`` unbound bookings, event
        ids)."""
        options = self.options
        if (
            options.max_creates is None
            or options.dry_run
            or round_kind != engine.RoundKind.INCREMENTAL
            or any(item.is_gone for item in remote.values())
        ):
            return None
        limit = max(options.max_creates - self.report.kept_creates, 1)
        creations = export_subset(self.env, self.calendar, start, end, limit)
        if not creations:
            return None
        return creations, list(remote)

    def _limit_creates(self, plan) -> engine.Plan:
        """The plan with at most ``max_creates`` first creations in this run; the
        others wait for the next run (their bookings stay unbound, so that it plans
        them again). A re-creation is never deferred: an incremental round would not
        see again that its event was removed."""
        max_creates, report = self.options.max_creates, self.report
        if max_creates is None:
            return plan
        kept, deferred = [], 0
        for action in plan.actions:
            if action.kind == engine.ActionKind.CREATE_REMOTE and not (
                action.status and action.status.event_id
            ):
                if report.kept_creates >= max_creates:
                    report.deferred_creates.add(action.booking_id)
                    deferred += 1
                    continue
                report.kept_creates += 1
            kept.append(action)
        if not deferred:
            return plan
        counts = dict(plan.counts)
        counts[engine.ActionKind.CREATE_REMOTE] -= deferred
        return dataclasses.replace(plan, actions=tuple(kept), counts=counts)


def _skipped_events_changed(plan, status, remote) -> bool:
    """True when Exchange reported a change of an event whose binding waits for its
    retry: the delta link must not move past that change, so the next round lists
    the whole window and sees it."""
    waiting = {entry.event_id for entry in status if entry.binding_id in plan.skipped}
    return bool(waiting & remote.keys())
