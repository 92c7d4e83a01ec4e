# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One sync round of one room calendar: read Exchange, plan, execute.

The engine decides (``engine.plan``); this module only adapts records into engine items,
and carries out the actions: Graph writes in ``$batch`` requests, Odoo writes with the
sync context. A failure of one item is recorded on its binding and never stops the room.
"""

import collections
import dataclasses
import functools
import hashlib
import logging
import threading
from datetime import datetime, time, timedelta

from markupsafe import Markup

from odoo import fields
from odoo.exceptions import UserError
from odoo.tools import SQL, html_sanitize
from odoo.tools.mail import generate_tracking_message_id

from .. import engine
from ..graph import (
    BatchRequest,
    BookingSnapshot,
    EventDataError,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    MailboxBudget,
    SyncStateExpired,
    booking_payload,
    is_partial_event,
    parse_event,
    same_origin,
)
from ..graph.client import BATCH_LIMIT
from ..graph.steps import run_inline
from .resource_booking import SYNC_CONTEXT
from .sync_problems import NO_LENGTH, NOT_IMPORTED, UNREADABLE, ItemProblems

_logger = logging.getLogger(__name__)

POLICIES = {
    "origin": engine.ConflictPolicy.ORIGIN,
    "odoo": engine.ConflictPolicy.ODOO,
    "exchange": engine.ConflictPolicy.EXCHANGE,
}

# What a round reads of its room's bindings: plain rows of one query, not records (a
# room's window may hold thousands, and a round looks at each of them).
BindingRow = collections.namedtuple(
    "BindingRow",
    [
        "id",
        "booking_id",
        "external_id",
        "remote_etag",
        "local_hash",
        "origin",
        "sync_state",
        "ical_uid",
        "series_master_id",
        "sync_error",
        "sync_attempts",
        "next_retry_date",
    ],
)

# Actions written to Exchange (the others are carried out in Odoo only).
REMOTE_KINDS = {
    engine.ActionKind.CREATE_REMOTE,
    engine.ActionKind.UPDATE_REMOTE,
    engine.ActionKind.ADOPT_REMOTE,
    engine.ActionKind.DELETE_REMOTE,
    engine.ActionKind.DECLINE_REMOTE,
}
# Remote actions that end a link rather than write an event's payload.
ENDING_KINDS = {engine.ActionKind.DELETE_REMOTE, engine.ActionKind.DECLINE_REMOTE}

PARAM_DELTA_PAGE_SIZE = "room_exchange_sync.delta_page_size"
PARAM_DELTA_REREAD_PARTIAL = "room_exchange_sync.delta_reread_partial"
DEFAULT_DELTA_PAGE_SIZE = 200

# The columns of _load_local's rows an event's payload is made of (_row_payload).
PAYLOAD_COLUMNS = (
    "id",
    "start",
    "stop",
    "name",
    "description",
    "location",
    "user_name",
    "user_email",
    "privacy",
    "exchange_origin",
)


class _BoundedCache:
    """A dict keeping its ``size`` most recently stored entries (thread-safe)."""

    def __init__(self, size):
        self.size = size
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._entries.get(key)

    def put(self, key, value):
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


# (payload hash, subject, private) by the digest of a row and the room's settings.
PAYLOAD_SUMMARIES = _BoundedCache(20000)

# What this process sent to each mailbox under a budget (SyncRound.budget holds
# across rounds, e.g. the steps of an export).
MAILBOX_BUDGET = MailboxBudget()


def _nothing():
    """A Graph step that does nothing: ends a stretch of database work."""


def _partial_id(event):
    """The id of a partial delta item (None for a full one, or one without an id)."""
    if is_partial_event(event) and isinstance(event.get("id"), str):
        return event["id"]
    return None


def reread_partial_events(env):
    """Whether delta items that carry only some properties are read again in full
    (UNCONFIRMED whether Outlook sends them: docs/graph.md#partial-delta-items)."""
    value = env["ir.config_parameter"].sudo().get_param(PARAM_DELTA_REREAD_PARTIAL)
    return (value or "true").strip().lower() not in ("0", "false", "no", "off")


def delta_page_size(env):
    """Events per delta page asked of Graph (``Prefer: odata.maxpagesize``; Graph's
    default and maximum are not documented, and it may answer with fewer)."""
    value = env["ir.config_parameter"].sudo().get_param(PARAM_DELTA_PAGE_SIZE)
    try:
        return max(int(value), 1) if value else DEFAULT_DELTA_PAGE_SIZE
    except ValueError:
        return DEFAULT_DELTA_PAGE_SIZE


class SyncRound:
    """Sync one room calendar once. ``run()`` returns the engine's plan.

    Raises GraphError (the round could not read Exchange; nothing was written) and
    engine.StorageEmpty (the safety rail refused the round).
    """

    def __init__(
        self,
        calendar,
        *,
        full=False,
        confirm_cancellations=False,
        window_end=None,
        dry_run=False,
        max_creates=None,
        budget=None,
        read_ahead=None,
        follow_up=True,
        read_next=None,
        quiet=False,
    ):
        self.calendar = calendar.sudo().with_context(active_test=False, **SYNC_CONTEXT)
        self.env = self.calendar.env
        self.connection = self.calendar.connection_id
        self.room = self.calendar.room_id
        self.mailbox = self.calendar.mailbox
        self.full = full
        self.confirm_cancellations = confirm_cancellations
        self.now = fields.Datetime.now()
        self.database_uuid = (
            self.env["ir.config_parameter"].get_param("database.uuid") or ""
        )
        # What this round (and its follow-up) did, to report only that: actions done
        # by kind, the ids of actions not done, and failures recorded on bindings.
        self.done = collections.Counter()
        self.undone = set()
        self.failures = 0
        # The room's problem items as this round sees them (sync_problems.py).
        self.problems = None
        self.following_up = False
        self.remote_writes = 0
        self.needs_full_round = False
        self.imported = {}
        self.payloads = {}
        # What this round did to each booking, for its chatter: {booking id: [text]}.
        self.history = {}
        self.remote_texts = None
        # Bulk export (room_exchange_export_run.py): ``window_end`` reaches further
        # ahead than the sync window; ``dry_run`` plans without executing or storing
        # anything; ``max_creates`` leaves the creations beyond it for the next round;
        # ``budget`` (requests, seconds) is the share of the mailbox's request budget
        # its writes may use.
        self.window_end = window_end
        self.dry_run = dry_run
        self.max_creates = max_creates
        self.budget = budget
        self.kept_creates = 0
        self.deferred_creates = set()
        # The bulk export reads the first delta pages of its rooms in $batch
        # requests: ``read_ahead`` is (request, a callable that waits for its
        # BatchResult, or None) of this room; ``follow_up=False``
        # leaves reading the echoes of this round's writes to its next step.
        self.read_ahead = read_ahead
        self.follow_up = follow_up
        # ``read_next(request)`` is told, once this round's writes are answered, the
        # request of the next round's first page (None: nothing to read ahead), so
        # that the echoes can be read while the round finishes.
        self.read_next = read_next
        # A person's sign-in (delegated) writes its rotated refresh token to the
        # database whenever it takes a token: its Graph calls stay in this thread.
        self.graph_in_threads = self.calendar.auth_mode == "application"
        # ``quiet``: nothing was asked of the room and its linked bookings are all in
        # sync (the scheduler knows it for a group of rooms at once): when Exchange
        # reports no change either, the round only records its new delta link,
        # without reading the room's window (an idle room costs about one query).
        self.quiet = quiet
        # Whether the stretch of database work running now (between two Graph
        # steps) writes nothing, so that it needs no savepoint: the first one of a
        # round whose Graph work is yielded, and the next one of a quiet round.
        self.read_only = self.graph_in_threads
        self.page_size = delta_page_size(self.env)
        self.reread_partial = reread_partial_events(self.env)
        # Loaded once per round (_load_local): the room's bindings (BindingRow), and
        # what the payloads and the overlap check read of its bookings, {booking id:
        # row}.
        self.bindings = None
        self.rows = {}
        self.origins = {}
        self.room_tz = None
        self.payload_settings = None
        self.local_changed = False
        self.live_binding_ids = None

    def run(self):
        """The whole round in this thread; returns the engine's plan."""
        return run_inline(self.steps())

    def steps(self):
        """The round as a generator of Graph steps (graph/steps.py): its Graph work
        is yielded (run beside other rooms' by ``run_side_by_side``), its database
        work done between the yields; returns the engine's plan."""
        client = self.calendar._graph_client()
        start, end = self._window()
        plan = yield from self._round(client, start, end)
        if (
            self.follow_up
            and not self.dry_run
            and self.remote_writes
            and not self.needs_full_round
        ):
            # Our own writes come back in the next delta round. Reading them now
            # (their change keys are stored: they are recognised as echoes) moves the
            # delta link past them, so that what Outlook does to them before the next
            # round, even deleting them, is reported then: Graph does not report an
            # item created and deleted between two delta rounds.
            self.full, self.remote_writes, self.following_up = False, 0, True
            yield from self._round(client, start, end, summary=plan)
        return plan

    def _graph(self, work, *args):
        """``work(*args)``, which talks to Graph and touches no record: yielded as a
        step when it may run in a worker thread, else called here (a person's
        sign-in saves its rotated refresh token in the database)."""
        if self.graph_in_threads:
            return (yield functools.partial(work, *args))
        return work(*args)

    def _round(self, client, start, end, summary=None):
        if not self.quiet:
            self.read_only = False
        round_kind, remote, delta_link = yield from self._read_exchange(
            client, start, end
        )
        if self._nothing_changed(round_kind, remote):
            return self._record_round(engine.Plan(), start, end, delta_link)
        if self.read_only:
            # What follows writes: it goes in stretches of its own, each one in a
            # savepoint (``room.exchange.calendar._sync_steps``).
            self.read_only = False
            yield _nothing
        if self.problems.absences_are_unknown():
            # An item without a usable id is one of the linked events, or not:
            # what this full round does not list is not taken for removed.
            round_kind = engine.RoundKind.INCREMENTAL
        # Read after Exchange: rooms side by side do not each hold their window
        # while their reads wait for Microsoft.
        subset = self._export_subset(round_kind, remote, start, end)
        self._load_local(start, end, subset)
        plan, local, status = self._plan(round_kind, remote, start, end)
        if subset is not None and not plan.count(engine.ActionKind.CREATE_REMOTE):
            # The next bookings were not to create after all: the whole window.
            subset = None
            self._load_local(start, end)
            plan, local, status = self._plan(round_kind, remote, start, end)
        if self.dry_run:
            return plan
        if self._skipped_events_changed(plan, status, remote) or (
            plan.needs_confirmation
        ):
            # The delta link must not move past what this round leaves undone: a
            # change waiting for its retry, or removals held for a manager (the next
            # round, a full one, finds them again; the room keeps counting them).
            self.needs_full_round = True
        # Not kept while the writes wait for Microsoft (beside other rooms' rounds):
        # the items, and the creations an export step leaves for the next (its plan
        # lists every booking still to export).
        plan = self._limit_creates(plan)
        del local, status, remote
        yield from self._execute(client, plan)
        if self.read_next is not None:
            self.read_next(self._next_read_request(client, start, end, delta_link))
        self._write_history()
        overlaps_changed = False
        if subset is None:
            # An export step that read only what it creates leaves the overlaps to
            # its last step, which reads the whole window.
            if self.local_changed:
                self._load_local(start, end)
            overlaps_changed = self._flag_overlaps(start, end)
        return self._record_round(
            plan, start, end, delta_link, summary, overlaps_changed
        )

    def _plan(self, round_kind, remote, start, end):
        """(the engine's plan from what ``_load_local`` read, its local items, its
        status entries). Links whose events the room lists as problems sit out."""
        sitting_out = self._sit_out(self.problems.sitting_out())
        bindings = [
            binding
            for binding in self._round_bindings(start, end)
            if binding.id not in sitting_out
        ]
        local = self._local_items(start, end, bindings, set(sitting_out.values()))
        local += self._claimed_but_gone(remote, local)
        status = self._status_entries(bindings)
        del bindings
        options = engine.Options(
            database_uuid=self.database_uuid,
            confirm_mass_cancel=self.confirm_cancellations,
            force_delete=self.confirm_cancellations,
        )
        plan = engine.plan(
            local,
            remote.values(),
            status,
            round_kind=round_kind,
            policy=POLICIES[self.connection.conflict_policy],
            options=options,
            now=self.now,
        )
        plan.raise_for_fatal()
        return plan, local, status

    def _nothing_changed(self, round_kind, remote):
        """A quiet room whose incremental read brought no change: nothing to plan."""
        return (
            self.quiet
            and round_kind == engine.RoundKind.INCREMENTAL
            and not remote
            and not self.problems.kept()
            and not self.needs_full_round
            and not self.dry_run
            and self.max_creates is None
            and self.window_end is None
            and not self.calendar.cancellation_pending
        )

    def _record_round(
        self, plan, start, end, delta_link, summary=None, overlaps_changed=False
    ):
        """Record the round on the room calendar; returns ``plan``."""
        values = {
            "delta_link": False if self.needs_full_round else delta_link,
            "window_start": start,
            "window_end": end,
            "last_sync_date": self.now,
            "last_sync_summary": self._summary(summary or plan),
            "item_problems": self.problems.kept(),
            "cancellation_pending": (
                plan.count(engine.ActionKind.CANCEL_LOCAL)
                if plan.needs_confirmation
                else 0
            ),
        }
        if self.problems.full:
            values["last_full_sync_date"] = self.now
        calendar = self.calendar
        changed = {
            name: value
            for name, value in values.items()
            if name == "last_sync_date"
            or calendar._fields[name].convert_to_cache(value, calendar)
            != calendar[name]
        }
        changed["round_count"] = calendar.round_count + 1
        calendar.write(changed)
        if calendar.health == "degraded" or overlaps_changed:
            # Staleness is time-based, so last_sync_date is no dependency of the
            # health (an idle round stays cheap): a stale room is fresh again now.
            # Overlaps are flagged with a plain column update: the room's health
            # counts them.
            self.env.add_to_compute(calendar._fields["health"], calendar)
        _logger.info(
            "Exchange sync of room calendar %s: %s",
            self.calendar.id,
            values["last_sync_summary"],
        )
        return plan

    @staticmethod
    def _skipped_events_changed(plan, status, remote):
        """True when Exchange reported a change of an event whose binding waits for
        its retry: the delta link must not move past that change, so the next round
        lists the whole window and sees it."""
        waiting = {
            entry.event_id for entry in status if entry.binding_id in plan.skipped
        }
        return bool(waiting & remote.keys())

    # Reading Exchange

    def _window(self):
        """[today - days back, today + days ahead), re-anchored every day."""
        # In UTC: the window must not depend on who runs the round (the cron or a
        # user in another time zone), or every change of hands restarts the delta.
        today = datetime.combine(self.now.date(), time())
        end = today + timedelta(days=self.connection.sync_future_days)
        # An export's horizon stays in the window of later rounds: a bound event
        # outside the window of a full round would be taken for a removed one.
        horizons = (self.window_end, self.calendar.export_run_id.horizon)
        end = max([end, *(horizon for horizon in horizons if horizon)])
        return (today - timedelta(days=self.connection.sync_past_days), end)

    def _incremental_link(self, start, end):
        """The delta link to continue from, or None for a full round."""
        calendar = self.calendar
        if (
            not self.full
            and calendar.delta_link
            and calendar.window_start == start
            and calendar.window_end == end
            # A link stored before the Graph URL changed is never followed.
            and same_origin(calendar.delta_link, self.connection.graph_url or "")
        ):
            return calendar.delta_link
        return None

    def _next_read_request(self, client, start, end, delta_link):
        """The request of the next round's first delta page, which brings back this
        round's writes (None: there were none, or the next round is a full one)."""
        if not self.remote_writes or self.needs_full_round or not delta_link:
            return None
        request_id = str(self.calendar.id)
        return self._delta_request(client, start, end, delta_link, request_id)

    def first_read_request(self, client, request_id):
        """The request of this round's first delta page (for a read ahead)."""
        start, end = self._window()
        link = self._incremental_link(start, end)
        return self._delta_request(client, start, end, link, request_id)

    def _delta_request(self, client, start, end, delta_link, request_id="delta"):
        """The first delta page of the window (from ``delta_link``, or a full one)."""
        return client.delta_request(
            self.mailbox,
            start=start,
            end=end,
            delta_link=delta_link,
            page_size=self.page_size,
            request_id=request_id,
        )

    def _read_exchange(self, client, start, end):
        """Return (round kind, {event id: RemoteItem}, new delta link)."""
        calendar = self.calendar
        delta_link = self._incremental_link(start, end)
        incremental = bool(delta_link)
        try:
            events, removed, link = yield from self._graph(
                self._delta_round, client, start, end, delta_link
            )
        except SyncStateExpired:
            _logger.info(
                "Room calendar %s: delta token expired, full round", calendar.id
            )
            incremental = False
            events, removed, link = yield from self._graph(
                self._delta_round, client, start, end, None
            )
        except GraphPermissionError:
            if calendar.auth_mode != "delegated":
                raise
            # Exchange has been reported to refuse delta paging on room calendars
            # reached through a delegated share (403 on the nextLink): list the window
            # page by page instead, without a delta link.
            _logger.warning(
                "Room calendar %s: delta refused, listing the window", calendar.id
            )
            events = yield from self._graph(self._calendar_view, client, start, end)
            removed, link, incremental = [], False, False
        self.problems = ItemProblems(calendar.item_problems, full=not incremental)
        events, removed = yield from self._complete_partial_events(
            client, events, removed
        )
        remote = {}
        for event in events:
            item = self._remote_item(event)
            if item is not None:
                remote[item.event_id] = item
        for event_id in removed:
            self.problems.readable(event_id)
            remote[event_id] = engine.RemoteItem.removal(event_id)
        kind = engine.RoundKind.INCREMENTAL if incremental else engine.RoundKind.FULL
        return kind, remote, link

    def _complete_partial_events(self, client, events, removed):
        """Delta items that carry only what changed are read again in full (one $batch
        GET each; system parameter ``room_exchange_sync.delta_reread_partial``, on by
        default), and so are the meetings an earlier round could not import (the
        delta does not list them again). An event gone meanwhile is a removal; one
        that cannot be read now is left to the next round, a full one (this round's
        delta link is dropped)."""
        partial_ids = set()
        if self.reread_partial:
            partial_ids = {_partial_id(event) for event in events} - {None}
        retry_ids = set()
        if not self.following_up:
            listed = {
                event["id"]
                for event in events
                if isinstance(event, dict)
                and isinstance(event.get("id"), str)
                and _partial_id(event) is None
            }
            retry_ids = self.problems.retry_ids() - listed - set(removed)
        if not partial_ids and not retry_ids:
            return events, removed
        _logger.info(
            "Room calendar %s: %s partial delta items and %s meetings not imported "
            "yet, read again",
            self.calendar.id,
            len(partial_ids),
            len(retry_ids),
        )
        event_ids = sorted(partial_ids | retry_ids)
        results = yield from self._graph(self._read_events, client, event_ids)
        full = []
        for event_id, result in zip(event_ids, results, strict=True):
            if result.error is None and isinstance(result.body, dict):
                full.append(result.body)
            elif isinstance(result.error, GraphNotFound):
                removed = [*removed, event_id]
            else:
                self.needs_full_round = True
        kept = [
            event
            for event in events
            if not (self.reread_partial and _partial_id(event) is not None)
        ]
        return kept + full, removed

    def _read_events(self, client, event_ids):
        """GET each event, in $batch requests; results in the same order (Graph's
        ids are case-sensitive, a batch's request ids are not: numbered instead)."""
        base = f"/users/{self.mailbox}/events"
        return client.batch(
            [
                BatchRequest(str(index), "GET", f"{base}/{event_id}")
                for index, event_id in enumerate(event_ids)
            ]
        )

    def _calendar_view(self, client, start, end):
        return list(client.iter_calendar_view(self.mailbox, start, end))

    def _delta_round(self, client, start, end, delta_link):
        events, removed, link = [], [], None
        pages = client.iter_delta(
            self.mailbox,
            start=start,
            end=end,
            delta_link=delta_link,
            page_size=self.page_size,
            first_page=self._take_read_ahead(client, start, end, delta_link),
        )
        for page in pages:
            events.extend(page.events)
            removed.extend(page.removed_ids)
            link = page.delta_link or link
        return events, removed, link

    def _take_read_ahead(self, client, start, end, delta_link):
        """The first page read ahead for this round, if it is the one this round
        reads (another worker may have moved the delta link meanwhile)."""
        if self.read_ahead is None:
            return None
        request, answer = self.read_ahead
        self.read_ahead = None
        wanted = self._delta_request(client, start, end, delta_link)
        if request.url != wanted.url:
            return None
        result = answer()
        if result is None:
            return None
        if result.error is not None:
            raise result.error
        return result.body

    def _remote_item(self, event):
        """The engine's item of a Graph event; None for an event that cannot be
        read or mirrored (recorded on the room with the reason: it never cancels or
        changes anything) and for series masters (their occurrences are listed)."""
        if not isinstance(event, dict):
            self._unreadable(None, self.env._("it is not an object"))
            return None
        if event.get("type") == "seriesMaster":
            return None
        try:
            imported = parse_event(
                event,
                room_time_zone=self._room_tz(),
                private_subject=self.env._("Private meeting"),
            )
        except EventDataError as error:
            event_id = event.get("id") if error.field != "id" else None
            self._unreadable(
                event_id,
                self.env._(
                    "its %(field)s cannot be read (%(reason)s)",
                    field=error.field,
                    reason=error.reason,
                ),
            )
            return None
        if imported.start == imported.stop and not imported.is_cancelled:
            # A booking cannot last no time (resource_booking gives it its type's
            # duration): the meeting is listed on the room, its booking unchanged.
            self.problems.add(
                imported.event_id,
                NO_LENGTH,
                self.env._(
                    "the meeting lasts no time in Outlook (%(start)s): a booking "
                    "cannot, so Odoo keeps it as it was",
                    start=fields.Datetime.to_string(imported.start),
                ),
            )
            return None
        self.problems.readable(imported.event_id)
        self.imported[imported.event_id] = imported
        return engine.RemoteItem(
            event_id=imported.event_id,
            change_key=imported.change_key,
            start=imported.start,
            stop=imported.stop,
            subject=imported.subject,
            is_private=imported.is_private,
            is_cancelled=imported.is_cancelled,
            ical_uid=imported.ical_uid or None,
            series_master_id=imported.series_master_id or None,
            transaction_id=imported.transaction_id or None,
            marker=imported.marker or None,
        )

    def _unreadable(self, event_id, reason):
        self.problems.add(event_id, UNREADABLE, reason)
        _logger.warning(
            "Room calendar %s: Exchange item %s cannot be read (%s)",
            self.calendar.id,
            "with an id" if event_id else "without an id",
            reason,
        )

    def _sit_out(self, event_ids):
        """{binding id: booking id} of the links whose events are listed on the room
        as problems (not readable, no length): they sit out the round, nothing is
        planned for them, and each says why (state Error) until its event is
        readable again."""
        if not event_ids:
            return {}
        sitting = [b for b in self.bindings if b.external_id in event_ids]
        kept = self.problems.kept()
        Binding = self.env["room.exchange.binding"]
        for binding in sitting:
            message = self.env._(
                "The event in Exchange cannot be synced: %(reason)s.",
                reason=kept[binding.external_id]["reason"],
            )
            if binding.sync_state != "error" or binding.sync_error != message:
                Binding.browse(binding.id).write(
                    {"sync_state": "error", "sync_error": message}
                )
        return {binding.id: binding.booking_id for binding in sitting}

    # The Odoo side

    def _room_tz(self):
        if self.room_tz is None:
            self.room_tz = self.room.tz or "UTC"
        return self.room_tz

    def _load_local(self, start, end, subset=None):
        """Read what a round needs of the Odoo side in two queries: the room's
        bindings, and the fields of its bookings (those in the window and the bound
        ones) that the payloads, the engine and the overlap check use.

        ``subset`` (an export step's, ``_export_subset``): (the bookings to create
        next, the ids of the events Exchange reported): only those bookings, the
        bindings of those events and the bindings not in sync are read, with
        their bookings."""
        self.env.flush_all()
        bindings_where = SQL("calendar_id = %s", self.calendar.id)
        if subset is not None:
            bindings_where = SQL(
                "%s AND (sync_state != 'synced' OR external_id = ANY(%s))",
                bindings_where,
                list(subset[1]),
            )
        self.env.cr.execute(
            SQL(
                "SELECT %s FROM room_exchange_binding WHERE %s ORDER BY id DESC",
                SQL(", ").join(map(SQL.identifier, BindingRow._fields)),
                bindings_where,
            )
        )
        self.bindings = [BindingRow._make(row) for row in self.env.cr.fetchall()]
        bound_ids = [b.booking_id for b in self.bindings if b.booking_id]
        in_room = self._in_room(SQL("room.id"))
        in_window = SQL(
            "(booking.start < %s AND booking.stop > %s AND %s)", end, start, in_room
        )
        if subset is not None:
            in_window = SQL("booking.id = ANY(%s)", subset[0])
        self.env.cr.execute(
            SQL(
                """
                SELECT room.tz, booking.*
                  FROM resource_resource room
             LEFT JOIN LATERAL (
                    SELECT booking.id, booking.active, booking.start, booking.stop,
                           booking.name, booking.description, booking.location,
                           booking.exchange_origin, booking.exchange_conflict,
                           partner.name AS user_name, partner.email AS user_email,
                           meeting.privacy, %(in_room)s AS in_room
                      FROM resource_booking booking
                 LEFT JOIN res_users users ON users.id = booking.user_id
                 LEFT JOIN res_partner partner ON partner.id = users.partner_id
                 LEFT JOIN calendar_event meeting ON meeting.id = booking.meeting_id
                     WHERE booking.id = ANY(%(bound)s) OR %(in_window)s
                  ) booking ON TRUE
                 WHERE room.id = %(room)s
              ORDER BY booking.id
                """,
                in_room=in_room,
                bound=bound_ids,
                in_window=in_window,
                room=self.room.id,
            )
        )
        rows = self.env.cr.dictfetchall()
        self.room_tz = (rows[0]["tz"] if rows else None) or "UTC"
        self.rows = {row["id"]: row for row in rows if row["id"]}
        self.payloads = {}
        self.local_changed = False

    def _in_room(self, room_id):
        """SQL: the booking (``booking``) holds the room ``room_id`` (SQL)."""
        rel_field = self.env["resource.booking.combination"]._fields["resource_ids"]
        return SQL(
            "EXISTS(SELECT 1 FROM %s rel WHERE rel.%s = booking.combination_id"
            " AND rel.%s = %s)",
            SQL.identifier(rel_field.relation),
            SQL.identifier(rel_field.column1),
            SQL.identifier(rel_field.column2),
            room_id,
        )

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
        if (
            self.max_creates is None
            or self.dry_run
            or round_kind != engine.RoundKind.INCREMENTAL
            or any(item.is_gone for item in remote.values())
        ):
            return None
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT booking.id FROM resource_booking booking
                 WHERE booking.active AND booking.exchange_origin = 'odoo'
                   AND booking.start < %(end)s AND booking.stop > %(start)s
                   AND %(in_room)s
                   AND NOT EXISTS (
                        SELECT 1 FROM room_exchange_binding binding
                         WHERE binding.calendar_id = %(calendar)s
                           AND binding.booking_id = booking.id)
              ORDER BY booking.start, booking.id
                 LIMIT %(limit)s
                """,
                start=start,
                end=end,
                in_room=self._in_room(self.room.id),
                calendar=self.calendar.id,
                limit=max(self.max_creates - self.kept_creates, 1),
            )
        )
        creations = [row[0] for row in self.env.cr.fetchall()]
        if not creations:
            return None
        return creations, list(remote)

    def _in_round(self, binding, start, end):
        """Whether a binding takes part in a round over [start, end).

        Exchange lists only the window, so a booking outside it (moved far ahead, or
        in the past as the window moves on every day) is absent from a full round
        without being removed. Tombstones and cancelled or unscheduled bookings
        always take part: their events must go.
        """
        row = self.rows.get(binding.booking_id)
        if not row or not row["active"] or not row["start"]:
            return True
        if row["start"] < end and row["stop"] > start:
            return True
        # Outside the window, a booking takes part only when it changed since its
        # event was written (moved out of the window in Odoo): the event follows it.
        return self._row_summary(row)[0] != (binding.local_hash or "")

    def _round_bindings(self, start, end):
        return [
            binding for binding in self.bindings if self._in_round(binding, start, end)
        ]

    def _room_bookings(self, start, end, bindings, sitting_out=()):
        """The rows of the bookings that take part in the round (``bindings``: the
        round's, from ``_round_bindings``; ``sitting_out``: bookings whose links
        sit the round out)."""
        bound = {binding.booking_id for binding in bindings}
        return [
            row
            for booking_id, row in self.rows.items()
            if booking_id in bound
            or (
                booking_id not in sitting_out
                and row["in_room"]
                and row["start"]
                and row["start"] < end
                and row["stop"] > start
            )
        ]

    def _local_items(self, start, end, bindings, sitting_out=()):
        items = []
        for row in self._room_bookings(start, end, bindings, sitting_out):
            live = row["active"] and bool(row["start"]) and row["in_room"]
            payload_hash, subject, is_private = self._row_summary(row)
            items.append(
                engine.LocalItem(
                    booking_id=row["id"],
                    payload_hash=payload_hash,
                    start=row["start"] or None,
                    stop=row["stop"] or None,
                    subject=subject,
                    is_private=is_private,
                    active=live,
                    origin=engine.Origin(row["exchange_origin"]),
                )
            )
        return items

    def _claimed_but_gone(self, remote, local):
        """Items for the bookings that unbound events of ours claim (marker or
        transactionId) and that are gone: deleted, cancelled, or no longer in this
        room. Such an event is left over (its create's answer was lost, then its
        booking went): the engine deletes it, as for a cancelled booking."""
        bound = {b.external_id for b in self.bindings if b.external_id}
        known = {item.booking_id for item in local}
        claimed = set()
        for item in remote.values():
            if item.event_id in bound or not item.is_live:
                continue
            booking_id = engine.parse_marker(item.marker, self.database_uuid)
            if booking_id is None:
                booking_id = engine.parse_transaction_id(
                    item.transaction_id, self.database_uuid
                )
            if booking_id is not None and booking_id not in known:
                claimed.add(booking_id)
        if not claimed:
            return []
        self.env.cr.execute(
            SQL(
                "SELECT booking.id FROM resource_booking booking"
                " WHERE booking.id = ANY(%s) AND booking.active"
                " AND booking.start IS NOT NULL AND %s",
                list(claimed),
                self._in_room(self.room.id),
            )
        )
        live = {booking_id for (booking_id,) in self.env.cr.fetchall()}
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

    def _row_summary(self, row):
        """(payload hash, subject, private) of a row's event, from the process's
        cache when the row and the room's settings are what they were: a round looks
        at every booking of its window, and most have not changed since the last."""
        key = None
        if row["name"] and row["start"] and row["stop"]:
            values = (self._payload_settings(), *map(row.get, PAYLOAD_COLUMNS))
            key = hashlib.blake2b(repr(values).encode(), digest_size=16).digest()
            summary = PAYLOAD_SUMMARIES.get(key)
            if summary is not None:
                return summary
        payload = self._payload_of(row["id"])
        summary = (
            engine.payload_hash(payload),
            payload.get("subject") or "",
            payload.get("sensitivity") == "private",
        )
        if key is not None:
            PAYLOAD_SUMMARIES.put(key, summary)
        return summary

    def _payload_settings(self):
        """What every payload of the round is made of besides its row."""
        if self.payload_settings is None:
            calendar = self.calendar
            self.payload_settings = (
                self._room_tz(),
                calendar.privacy_mode,
                calendar.include_organizer_email,
                self.connection.time_zone_names,
                self.database_uuid,
            )
        return self.payload_settings

    def _payload_of(self, booking_id):
        """The event JSON of a booking, computed once per round when needed."""
        payload = self.payloads.get(booking_id)
        if payload is None:
            row = self.rows.get(booking_id)
            if row is not None:
                payload = self._row_payload(row)
            else:
                payload = self._payload(self.env["resource.booking"].browse(booking_id))
            self.payloads[booking_id] = payload
        return payload

    def _row_payload(self, row):
        """``_payload`` from a row of ``_load_local`` (no query, unless the booking
        has no name of its own: its display name is then computed)."""
        name = row["name"]
        if not name:
            name = self.env["resource.booking"].browse(row["id"]).display_name
        return self._snapshot_payload(
            BookingSnapshot(
                booking_id=row["id"],
                start=row["start"] or self.now,
                stop=row["stop"] or self.now,
                subject=name or "",
                description_html=str(row["description"] or ""),
                location=row["location"] or "",
                organizer_name=row["user_name"] or "",
                organizer_email=row["user_email"] or "",
                is_private=row["privacy"] == "private",
            ),
            row["exchange_origin"],
        )

    def _payload(self, booking):
        return self._snapshot_payload(
            BookingSnapshot(
                booking_id=booking.id,
                start=booking.start or self.now,
                stop=booking.stop or self.now,
                subject=booking.name or booking.display_name or "",
                description_html=str(booking.description or ""),
                location=booking.location or "",
                organizer_name=booking.user_id.name or "",
                organizer_email=booking.user_id.email or "",
                is_private=booking.meeting_id.privacy == "private",
            ),
            booking.exchange_origin,
        )

    def _snapshot_payload(self, snapshot, origin):
        # What the room shows of the bookings made in Odoo (privacy mode, booker's
        # e-mail) is no part of a meeting booked in Outlook: changing it must not
        # rewrite those meetings.
        own = origin != "exchange"
        return booking_payload(
            snapshot,
            room_time_zone=self._room_tz(),
            privacy=self.calendar.privacy_mode if own else "full",
            include_organizer_email=own and self.calendar.include_organizer_email,
            time_zone_names=self.connection.time_zone_names,
            marker=engine.make_marker(self.database_uuid, snapshot.booking_id),
        )

    def _status_entries(self, bindings):
        entries = []
        for binding in bindings:
            entries.append(
                engine.StatusEntry(
                    binding_id=binding.id,
                    booking_id=binding.booking_id or None,
                    event_id=binding.external_id or None,
                    change_key=binding.remote_etag or None,
                    exported_hash=binding.local_hash or None,
                    origin=engine.Origin(binding.origin),
                    state=engine.SyncState(binding.sync_state),
                    ical_uid=binding.ical_uid or None,
                    series_master_id=binding.series_master_id or None,
                    error=binding.sync_error or None,
                    attempts=binding.sync_attempts or 0,
                    next_retry=binding.next_retry_date or None,
                )
            )
        return entries

    # Executing the plan

    def _execute(self, client, plan):
        remote_actions, local_actions = [], []
        for action in plan.actions:
            kind = action.kind
            if kind == engine.ActionKind.CANCEL_LOCAL and plan.needs_confirmation:
                continue
            if (
                kind == engine.ActionKind.UPDATE_REMOTE
                and action.status is not None
                and action.status.origin is engine.Origin.EXCHANGE
            ):
                # Never reached (the engine pulls these): an organizer's meeting is
                # never PATCHed by the room.
                _logger.warning(
                    "Room calendar %s: an update of an Outlook meeting was refused",
                    self.calendar.id,
                )
                continue
            if kind in REMOTE_KINDS:
                remote_actions.append(action)
            else:
                local_actions.append(action)
        if local_actions:
            self.local_changed = True
            self._isolated(
                local_actions,
                self._execute_local_batch,
                self._execute_local,
                lambda action: action,
            )
        if remote_actions and self.graph_in_threads:
            self._release_window(remote_actions)
        yield from self._execute_remote_paced(client, remote_actions)

    def _release_window(self, actions):
        """Keep only what ``actions`` need while they wait for Microsoft beside other
        rooms' rounds (their payloads and origins), so that memory does not grow with
        the rooms' sizes; the rest of the window is read again afterwards."""
        for action in actions:
            if action.kind not in ENDING_KINDS and action.booking_id:
                self._payload_of(action.booking_id)
        self.origins = {
            booking_id: self.rows[booking_id]["exchange_origin"]
            for booking_id in self.payloads
            if booking_id in self.rows
        }
        self.bindings = None
        self.rows = {}
        self.local_changed = True

    def _isolated(self, items, run_all, run_one, action_of):
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
                self.calendar.id,
                len(items),
                type(error).__name__,
            )
        else:
            self._count_done(action_of(item) for item in items)
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
                    self.calendar.id,
                    action.kind.value,
                    type(error).__name__,
                )
                self._record_failure(action, error)
            else:
                self._count_done([action])

    def _count_done(self, actions):
        for action in actions:
            if id(action) not in self.undone:
                self.done[action.kind] += 1

    def _prefetch_bindings(self, actions):
        """Which bindings of ``actions`` still exist, in one query."""
        ids = {action.binding_id for action in actions if action.status}
        Binding = self.env["room.exchange.binding"]
        self.live_binding_ids = set(Binding.browse(ids).exists()._ids)

    def _execute_local_batch(self, actions):
        self._prefetch_bindings(actions)
        imports = []
        for action in actions:
            if action.kind == engine.ActionKind.CREATE_LOCAL:
                imports.append(action)
            else:
                self._execute_local(action)
        if imports:
            self._import_batch(imports)

    def _execute_local(self, action):
        kind = action.kind
        binding = self._binding(action)
        if kind == engine.ActionKind.FORGET:
            binding.unlink()
        elif kind == engine.ActionKind.MARK_SYNCED:
            binding.write(self._synced_values(action, binding))
        elif kind == engine.ActionKind.CONFLICT:
            binding.write(
                {
                    "sync_state": "conflict",
                    "sync_error": self._changes_text(action),
                }
            )
        elif kind == engine.ActionKind.CREATE_LOCAL:
            self._import(action)
        elif kind == engine.ActionKind.UPDATE_LOCAL:
            self._update_booking(action, binding)
        elif kind == engine.ActionKind.CANCEL_LOCAL:
            self._cancel_booking(action, binding)

    def _binding(self, action):
        """The binding an action is about (empty when it has none yet)."""
        Binding = self.env["room.exchange.binding"]
        if not action.status:
            return Binding
        if self.live_binding_ids is not None:
            if action.binding_id in self.live_binding_ids:
                return Binding.browse(action.binding_id)
            return Binding
        return Binding.browse(action.binding_id).exists()

    def _synced_values(self, action, binding, booking=None):
        values = {
            "sync_state": "synced",
            "sync_error": False,
            "sync_attempts": 0,
            "next_retry_date": False,
            "sync_date": self.now,
        }
        if action.remote is not None:
            values.update(
                external_id=action.remote.event_id,
                remote_etag=action.remote.change_key or binding.remote_etag,
                ical_uid=action.remote.ical_uid or binding.ical_uid,
                series_master_id=action.remote.series_master_id
                or binding.series_master_id,
            )
        booking = booking or binding.booking_id
        if action.kind in REMOTE_KINDS and action.local is not None:
            # What was written to Exchange is the booking as the round read it.
            values["local_hash"] = action.local.payload_hash
        elif booking and booking.id in self.payloads:
            values["local_hash"] = engine.payload_hash(self.payloads[booking.id])
        elif action.local is not None:
            values["local_hash"] = action.local.payload_hash
        return values

    def _import(self, action):
        self._import_batch([action])

    def _import_values(self, imported):
        calendar = self.calendar
        body = "" if imported.is_private else html_sanitize(imported.body_html or "")
        values = {
            "name": imported.subject,
            "description": body,
            "type_id": calendar.booking_type_id.id,
            "partner_ids": [fields.Command.set(calendar.partner_id.ids)],
            "combination_id": calendar.combination_id.id,
            "combination_auto_assign": False,
            "start": imported.start,
            "duration": (imported.stop - imported.start).total_seconds() / 3600,
            "exchange_origin": "exchange",
            "exchange_organizer_name": imported.organizer_name,
            "location": self.room.name,
        }
        if calendar.include_organizer_email:
            values["exchange_organizer_email"] = imported.organizer_email
        return values

    def _import_batch(self, actions):
        """Create the bookings of Exchange meetings, then their bindings: one
        ``create`` each for the whole list."""
        events = [self.imported[action.remote.event_id] for action in actions]
        bookings = (
            self.env["resource.booking"]
            .with_context(room_exchange_import=True)
            .create([self._import_values(imported) for imported in events])
            .with_context(room_exchange_import=False)
        )
        private = self.env["calendar.event"]
        for booking, imported in zip(bookings, events, strict=True):
            if imported.is_private:
                private |= booking.meeting_id
        if private:
            private.privacy = "private"
        Binding = self.env["room.exchange.binding"]
        vals_list = []
        for booking, action in zip(bookings, actions, strict=True):
            self._note(
                booking.id,
                self.env._(
                    "Imported from the Exchange calendar of %(room)s (booked in "
                    "Outlook).",
                    room=self.room.display_name,
                ),
            )
            self.payloads[booking.id] = self._payload(booking)
            vals_list.append(
                {
                    **self._new_binding_values(booking.id, "exchange"),
                    **self._synced_values(action, Binding, booking),
                }
            )
        self._create_synced_bindings(vals_list)

    def _update_booking(self, action, binding):
        booking = binding.booking_id
        values = {}
        changes = {change.field: change.new for change in action.changes}
        if "start" in changes or "stop" in changes:
            start = changes.get("start") or booking.start
            stop = changes.get("stop") or booking.stop
            values.update(start=start, duration=(stop - start).total_seconds() / 3600)
        # Only "Busy only" hides the subject from Exchange; otherwise a rename in
        # Outlook is a rename of the booking.
        own_subject = booking.exchange_origin == "exchange" or (
            self.calendar.privacy_mode != "busy"
        )
        if "subject" in changes and own_subject:
            values["name"] = changes["subject"]
        if "is_private" in changes and booking.meeting_id:
            booking.meeting_id.privacy = "private" if changes["is_private"] else False
        if values:
            booking.write(values)
        self.payloads[booking.id] = self._payload(booking)
        binding.write(self._synced_values(action, binding))
        if action.conflict:
            self._note(booking.id, self._conflict_message(action, winner="Exchange"))
        else:
            self._note(
                booking.id,
                self.env._(
                    "Updated from the Exchange calendar of %(room)s: %(changes)s.",
                    room=self.room.display_name,
                    changes=", ".join(self._change_labels(action)),
                ),
            )

    def _cancel_booking(self, action, binding):
        booking = binding.booking_id
        if booking.active:
            booking.action_cancel()
            self._note(
                booking.id,
                self.env._(
                    "Cancelled because the meeting was cancelled or removed in the "
                    "Exchange calendar of %(room)s.",
                    room=self.room.display_name,
                ),
            )
        binding.unlink()

    def _execute_remote(self, client, actions):
        if not actions:
            return
        self.remote_writes += len(actions)
        requests_by_id = {}
        for index, action in enumerate(actions):
            request = self._batch_request(str(index), action)
            requests_by_id[request.id] = (request, action)
        results = yield from self._graph(
            self._send, client, [request for request, _a in requests_by_id.values()]
        )
        answered = [(requests_by_id[result.id][1], result) for result in results]
        self._isolated(
            answered,
            lambda pairs: self._apply_remote_results(client, pairs),
            lambda pair: self._apply_remote_result(client, *pair),
            lambda pair: pair[0],
        )

    def _send(self, client, requests):
        """The $batch requests of a round's writes, once they fit in the mailbox's
        ``budget`` (they count from when Microsoft has received them all)."""
        if not self.budget:
            return client.batch(requests)
        budget, seconds = self.budget
        with MAILBOX_BUDGET.spend(
            self.mailbox or "", len(requests), budget=budget, seconds=seconds
        ):
            return client.batch(requests)

    def _limit_creates(self, plan):
        """The plan with at most ``max_creates`` first creations in this run; the
        others wait for the next run (their bookings stay unbound, so that it plans
        them again). A re-creation is never deferred: an incremental round would not
        see again that its event was removed."""
        if self.max_creates is None:
            return plan
        kept, deferred = [], 0
        for action in plan.actions:
            if action.kind == engine.ActionKind.CREATE_REMOTE and not (
                action.status and action.status.event_id
            ):
                if self.kept_creates >= self.max_creates:
                    self.deferred_creates.add(action.booking_id)
                    deferred += 1
                    continue
                self.kept_creates += 1
            kept.append(action)
        if not deferred:
            return plan
        counts = dict(plan.counts)
        counts[engine.ActionKind.CREATE_REMOTE] -= deferred
        return dataclasses.replace(plan, actions=tuple(kept), counts=counts)

    def _execute_remote_paced(self, client, actions):
        """``_execute_remote`` in groups of as many $batch requests as may be in
        flight when the round has a ``budget`` (each group waits until it fits)."""
        if not self.budget:
            return (yield from self._execute_remote(client, actions))
        requests, _seconds = self.budget
        group = max(min(BATCH_LIMIT * client.max_in_flight_per_mailbox, requests), 1)
        for offset in range(0, len(actions), group):
            yield from self._execute_remote(client, actions[offset : offset + group])

    def _batch_request(self, request_id, action):
        base = f"/users/{self.mailbox}"
        kind = action.kind
        if kind == engine.ActionKind.DELETE_REMOTE:
            return BatchRequest(
                request_id, "DELETE", f"{base}/events/{action.event_id}"
            )
        if kind == engine.ActionKind.DECLINE_REMOTE:
            return BatchRequest(
                request_id,
                "POST",
                f"{base}/events/{action.event_id}/decline",
                {
                    "comment": self.env._(
                        "The booking of room %(room)s was cancelled in Odoo.",
                        room=self.room.display_name,
                    ),
                    "sendResponse": True,
                },
            )
        payload = dict(self._payload_of(action.booking_id))
        if kind == engine.ActionKind.CREATE_REMOTE:
            payload["transactionId"] = action.transaction_id
            return BatchRequest(request_id, "POST", f"{base}/calendar/events", payload)
        headers = None
        if kind == engine.ActionKind.UPDATE_REMOTE:
            # The marker was written with the event; an adoption writes it again.
            payload.pop("singleValueExtendedProperties", None)
            change_key = action.status.change_key if action.status else None
            if change_key and not action.conflict:
                headers = {"If-Match": f'W/"{change_key}"'}
        event_id = action.remote.event_id if action.remote else action.event_id
        return BatchRequest(
            request_id, "PATCH", f"{base}/events/{event_id}", payload, headers
        )

    def _apply_remote_results(self, client, pairs):
        """Record the answers of one $batch: the bindings to create in one
        ``create``, the others written (and flushed together)."""
        self._prefetch_bindings([action for action, _result in pairs])
        Binding = self.env["room.exchange.binding"]
        unbound = [
            action.booking_id
            for action, result in pairs
            if result.error is None
            and action.kind not in ENDING_KINDS
            and not self._binding(action)
        ]
        existing = {}
        if unbound:
            for binding in Binding.search(
                [
                    ("calendar_id", "=", self.calendar.id),
                    ("booking_id", "in", unbound),
                ]
            ):
                existing.setdefault(binding.booking_id.id, binding)
        to_create = []
        for action, result in pairs:
            if result.error is not None and not isinstance(result.error, GraphNotFound):
                self._record_failure(action, result.error)
                continue
            binding = self._binding(action) or existing.get(action.booking_id)
            if binding or result.error is not None:
                self._apply_remote_result(client, action, result, binding)
                continue
            booking = self.env["resource.booking"].browse(action.booking_id)
            values = self._remote_synced_values(action, result, Binding, booking)
            values.update(
                self._new_binding_values(booking.id, self._origin_of(booking))
            )
            to_create.append(values)
            self._note_remote(action)
        if to_create:
            self._create_synced_bindings(to_create)

    def _create_synced_bindings(self, vals_list):
        """Bindings created synced leave the room's health as it was (it counts
        those in error or conflict): not recomputed after every batch of them."""
        calendar = self.calendar
        with self.env.protecting([calendar._fields["health"]], calendar):
            self.env["room.exchange.binding"].create(vals_list)

    def _new_binding_values(self, booking_id, origin):
        """A new binding of this room (its company given: not recomputed with an
        UPDATE after the INSERT)."""
        return {
            "calendar_id": self.calendar.id,
            "company_id": self.calendar.company_id.id,
            "booking_id": booking_id,
            "origin": origin,
        }

    def _origin_of(self, booking):
        """Where a booking was made, from the round's rows (read with the others)."""
        row = self.rows.get(booking.id)
        if row:
            return row["exchange_origin"]
        return self.origins.get(booking.id) or booking.exchange_origin

    def _remote_synced_values(self, action, result, binding, booking):
        event = result.body or {}
        remote = engine.RemoteItem(
            event_id=event.get("id") or action.event_id,
            change_key=event.get("changeKey"),
            ical_uid=event.get("iCalUId"),
            series_master_id=event.get("seriesMasterId"),
        )
        return self._synced_values(
            engine.Action(
                kind=action.kind,
                reason=action.reason,
                remote=remote,
                local=action.local,
            ),
            binding,
            booking,
        )

    def _apply_remote_result(self, client, action, result, binding=None):
        kind = action.kind
        Binding = self.env["room.exchange.binding"]
        binding = binding or self._binding(action)
        if result.error is not None:
            if isinstance(result.error, GraphNotFound):
                self._event_gone(action, binding)
                return
            raise result.error
        if kind == engine.ActionKind.DELETE_REMOTE:
            binding.unlink()
            self._note_remote(action)
            return
        if kind == engine.ActionKind.DECLINE_REMOTE:
            # Kept, declined: the meeting is not imported again while its organizer
            # keeps it; its removal, once read, forgets the link.
            binding.write(
                {
                    "sync_state": "declined",
                    "sync_error": False,
                    "sync_date": self.now,
                    "next_retry_date": False,
                }
            )
            self._note_remote(action)
            return
        booking = self.env["resource.booking"].browse(action.booking_id)
        if not binding:
            binding = Binding.search(
                [
                    ("calendar_id", "=", self.calendar.id),
                    ("booking_id", "=", booking.id),
                ],
                limit=1,
            ) or Binding.create(
                self._new_binding_values(booking.id, self._origin_of(booking))
            )
        binding.write(self._remote_synced_values(action, result, binding, booking))
        self._note_remote(action)

    def _event_gone(self, action, binding):
        """The event disappeared from Exchange although this round's read did not say
        so (deleted meanwhile). A deletion is then done; an update re-creates it in
        the next round, which the unbound booking asks for at once."""
        if action.kind in ENDING_KINDS:
            binding.unlink()
            return
        self.undone.add(id(action))
        binding.write(
            {"external_id": False, "remote_etag": False, "sync_state": "pending"}
        )
        self.calendar._request_sync()

    def _record_failure(self, action, error):
        """A failed item waits for its retry, visibly (its binding in error, or the
        room's list of meetings not imported); nothing else of the room is
        affected. A change read from Exchange that could not be applied is read
        again by the next round, a full one."""
        self.undone.add(id(action))
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
            message = self.connection._graph_error_message(error)
        elif isinstance(error, UserError):
            message = str(error)
        else:
            message = self.env._(
                "Odoo could not record it (%(error)s).", error=type(error).__name__
            )
        if action.kind not in REMOTE_KINDS:
            self.needs_full_round = True
        if action.kind == engine.ActionKind.CREATE_LOCAL:
            self.problems.add(
                action.remote.event_id,
                NOT_IMPORTED,
                self.env._(
                    "the meeting could not be imported: %(error)s", error=message
                ),
            )
            return
        self.failures += 1
        if not binding and action.booking_id:
            binding = Binding.create(
                self._new_binding_values(action.booking_id, "odoo")
            )
        if not binding:
            return
        attempts = binding.sync_attempts + 1
        if attempts == 1 and binding.booking_id:
            self._note(
                binding.booking_id.id,
                self.env._(
                    "Could not be synced with the Exchange calendar of %(room)s: "
                    "%(error)s It is tried again automatically.",
                    room=self.room.display_name,
                    error=message,
                ),
            )
        binding.write(
            {
                "sync_state": "error",
                "sync_error": message,
                "sync_attempts": attempts,
                "next_retry_date": self.now + engine.next_retry_delay(attempts),
            }
        )
        if isinstance(error, GraphConflict):
            # The event changed in Exchange after this round read it: the next full
            # round reads it again and the conflict policy decides.
            self.needs_full_round = True

    # Reporting

    def _flag_overlaps(self, start, end):
        """Keep Outlook meetings and Odoo bookings that hold the room at the same time,
        and flag both so that someone decides (Conflicts view). Returns whether a
        flag changed."""
        rows = [
            row
            for row in self.rows.values()
            if row["active"]
            and row["in_room"]
            and row["start"]
            and row["start"] < end
            and row["stop"] > start
        ]
        intervals = [
            engine.Interval(
                key=row["id"],
                start=row["start"],
                stop=row["stop"],
                origin=engine.Origin(row["exchange_origin"]),
            )
            for row in rows
        ]
        flagged = set()
        for overlap in engine.find_overlaps(intervals):
            if overlap.is_cross_origin:
                flagged.update((overlap.first.key, overlap.second.key))
        losing_flag = [
            row for row in rows if row["exchange_conflict"] and row["id"] not in flagged
        ]
        flagged |= self._flagged_in_other_rooms(losing_flag)
        changed = [
            row["id"]
            for row in rows
            if bool(row["exchange_conflict"]) != (row["id"] in flagged)
        ]
        if not changed:
            return False
        # A plain column update: resource.booking.write() would re-validate the Odoo
        # booking's schedule, which the overlapping Exchange meeting now fails
        # (docs/resource_booking.md#overlapping-bookings-are-frozen), and refuse the
        # flag that reports it.
        self.env.cr.execute(
            SQL(
                "UPDATE resource_booking SET exchange_conflict = id = ANY(%s)"
                " WHERE id = ANY(%s)",
                list(flagged),
                changed,
            )
        )
        for booking_id in changed:
            self.rows[booking_id]["exchange_conflict"] = booking_id in flagged
        self.env["resource.booking"].browse(changed).invalidate_recordset(
            ["exchange_conflict"]
        )
        return True

    def _flagged_in_other_rooms(self, rows):
        """Of these bookings, the ids that still overlap a meeting of the other origin
        in another room they hold: this room's round must not clear their flag."""
        Booking = self.env["resource.booking"]
        still = set()
        for row in rows:
            booking = Booking.browse(row["id"])
            others = booking.combination_id.resource_ids - self.room
            if others and Booking.search_count(
                [
                    ("id", "!=", row["id"]),
                    ("combination_id.resource_ids", "in", others.ids),
                    ("exchange_origin", "!=", row["exchange_origin"]),
                    ("start", "<", row["stop"]),
                    ("stop", ">", row["start"]),
                ],
                limit=1,
            ):
                still.add(row["id"])
        return still

    def _summary(self, plan):
        """The round in a line an admin can read (translated; the engine's own
        summary goes to the log): what was done, not what was planned."""
        kinds = engine.ActionKind
        done = self.done
        held = plan.count(kinds.CANCEL_LOCAL) if plan.needs_confirmation else 0
        problems = collections.Counter(
            problem["kind"] for problem in self.problems.kept().values()
        )
        counted = [
            (done[kinds.CREATE_REMOTE], self.env._("%(n)s added to Exchange")),
            (done[kinds.UPDATE_REMOTE], self.env._("%(n)s changed in Exchange")),
            (
                done[kinds.ADOPT_REMOTE],
                self.env._("%(n)s linked to existing events"),
            ),
            (done[kinds.DELETE_REMOTE], self.env._("%(n)s removed from Exchange")),
            (done[kinds.DECLINE_REMOTE], self.env._("%(n)s declined in Exchange")),
            (done[kinds.CREATE_LOCAL], self.env._("%(n)s imported from Outlook")),
            (done[kinds.UPDATE_LOCAL], self.env._("%(n)s updated from Outlook")),
            (done[kinds.CANCEL_LOCAL], self.env._("%(n)s cancelled from Outlook")),
            (
                held,
                self.env._("%(n)s cancellations from Outlook wait for confirmation"),
            ),
            (done[kinds.CONFLICT], self.env._("%(n)s conflicts")),
            (
                self.failures,
                self.env._("%(n)s could not be synced (tried again later)"),
            ),
            (len(plan.skipped), self.env._("%(n)s waiting for a retry")),
            (
                len(self.deferred_creates),
                self.env._("%(n)s left for the next export step"),
            ),
            (
                problems[NOT_IMPORTED],
                self.env._("%(n)s Outlook meetings not imported yet (see the room)"),
            ),
            (
                problems[UNREADABLE] + problems[NO_LENGTH],
                self.env._("%(n)s Outlook items cannot be synced (see the room)"),
            ),
        ]
        parts = [text % {"n": number} for number, text in counted if number]
        return (", ".join(parts) or self.env._("Nothing to do"))[:250]

    def _change_labels(self, action):
        labels = {
            "start": self.env._("start"),
            "stop": self.env._("end"),
            "subject": self.env._("title"),
            "is_private": self.env._("privacy"),
        }
        return [labels.get(change.field, change.field) for change in action.changes]

    def _changes_text(self, action):
        return "\n".join(
            f"{label}: {change.old} → {change.new}"
            for label, change in zip(
                self._change_labels(action), action.changes, strict=True
            )
        )

    def _conflict_message(self, action, winner):
        return self.env._(
            "Changed both in Odoo and in Exchange since the last sync; the "
            "%(winner)s version was kept. Overwritten: %(changes)s",
            winner=winner,
            changes=self._changes_text(action) or "-",
        )

    # The booking's sync history (its chatter)

    def _note(self, booking_id, text):
        self.history.setdefault(booking_id, []).append(text)

    def _note_remote(self, action):
        """What a write to Exchange did, in the words of its booking's chatter."""
        if action.conflict:
            self._note(action.booking_id, self._conflict_message(action, "Odoo"))
            return
        texts = self._remote_texts()
        if action.booking_id and action.kind in texts:
            self._note(
                action.booking_id, texts[action.kind] % {"room": self.room.display_name}
            )

    def _remote_texts(self):
        if self.remote_texts is None:
            self.remote_texts = self._translated_remote_texts()
        return self.remote_texts

    def _translated_remote_texts(self):
        return {
            engine.ActionKind.CREATE_REMOTE: self.env._(
                "Added to the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.UPDATE_REMOTE: self.env._(
                "Changes sent to the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.ADOPT_REMOTE: self.env._(
                "Linked to its event already in the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.DELETE_REMOTE: self.env._(
                "Removed from the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.DECLINE_REMOTE: self.env._(
                "Declined in the Exchange calendar of %(room)s: its organizer was "
                "told that the room is no longer booked."
            ),
        }

    def _snapshot(self):
        """What a stretch of items adds to the round's own bookkeeping (history,
        what was not done, failures, problem items), to restore when its savepoint
        rolls them back."""
        return (
            {key: list(texts) for key, texts in self.history.items()},
            set(self.undone),
            self.failures,
            dict(self.problems.seen),
        )

    def _restore(self, snapshot):
        history, undone, failures, seen = snapshot
        self.history, self.undone, self.failures = history, undone, failures
        self.problems.seen = seen

    def _write_history(self):
        """One log note per booking this round touched, all in one INSERT."""
        if not self.history:
            return
        bookings = self.env["resource.booking"].browse(list(self.history)).exists()
        if bookings:
            log_notes(
                bookings,
                {
                    booking.id: Markup("<p>%s</p>")
                    % Markup("<br/>").join(self.history[booking.id])
                    for booking in bookings
                },
            )
        self.history = {}


def log_notes(records, bodies):
    """What ``records._message_log_batch(bodies)`` stores (internal notes that notify
    nobody, by the current user), written with one INSERT: a bulk export notes
    thousands of bookings, and ``mail.message.create`` spends about half a
    millisecond on each in generic inverse-field and sanitizing code. ``bodies``
    ({record id: Markup}) are our own texts, their parameters escaped."""
    env = records.env
    author_id, email_from = records._message_compute_author(None, None)
    reply_to = env["mail.thread"]._notify_get_reply_to(
        default=email_from, author_id=author_id
    )[False]
    now = env.cr.now()
    env.cr.execute(
        SQL(
            """
            INSERT INTO mail_message (
                model, res_id, body, message_type, subtype_id, is_internal,
                author_id, email_from, reply_to, message_id, email_add_signature,
                date, create_uid, create_date, write_uid, write_date)
            SELECT %(model)s, note.res_id, note.body, 'notification', %(subtype)s,
                   TRUE, %(author)s, %(email_from)s, %(reply_to)s, %(message_id)s,
                   FALSE, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM unnest(%(res_ids)s::int[], %(bodies)s::text[]) AS note(res_id, body)
            """,
            model=records._name,
            subtype=env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
            author=author_id or None,
            email_from=email_from or None,
            reply_to=reply_to or None,
            message_id=generate_tracking_message_id("message-notify"),
            now=now,
            uid=env.uid,
            res_ids=records.ids,
            bodies=[str(bodies[record_id]) for record_id in records.ids],
        )
    )
    records.invalidate_recordset(
        ["message_ids", "message_needaction", "message_needaction_counter"]
    )
