"""The sync planner: local bookings + remote events + bindings -> a list of actions.

Public API:

- ``plan(local, remote, status, *, round_kind, policy, options, now) -> Plan``;
- ``Plan`` (actions, ``needs_confirmation``, ``fatal``, skipped bindings, orphan events,
  counts) and ``Options`` (safety rails, removal policy, retry limit, database uuid);
- ``next_retry_delay(attempts)`` and ``is_due(entry, now, max_attempts)``: retry
  backoff.

The decision for a binding is a lookup in ``DECISIONS`` keyed by the state of its
booking (``LocalState``) and of its event (``RemoteState``); the package docstring has
the table in prose. "Changed" means the payload hash or the changeKey moved, never a
clock comparison.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .errors import StorageEmpty, SyncPlanError
from .hashing import (
    make_marker,
    parse_marker,
    parse_transaction_id,
    transaction_id,
)
from .items import (
    SYNCED_FIELDS,
    Action,
    ActionKind,
    ConflictPolicy,
    FieldChange,
    FieldValue,
    LocalItem,
    Origin,
    Reason,
    RemoteItem,
    RemovalPolicy,
    RoundKind,
    StatusEntry,
    SyncState,
)

RETRY_BASE = timedelta(minutes=10)
RETRY_CAP = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Options:
    """Knobs of one planning round (per room calendar).

    ``database_uuid``: Odoo's ``database.uuid``, used to recognise our markers.
    ``empty_guard_min_bindings``: a FULL round listing no event while at least this many
    events are bound is refused with ``StorageEmpty`` unless ``force_delete``.
    ``mass_cancel_share`` / ``mass_cancel_min``: more than this share of the bound
    events, and at least this many, cancelled locally in one plan sets
    ``needs_confirmation`` unless ``confirm_mass_cancel``.
    ``max_attempts``: a binding in error after this many attempts waits for a human.
    """

    database_uuid: str = ""
    removal_policy: RemovalPolicy = RemovalPolicy.RECREATE
    empty_guard_min_bindings: int = 5
    force_delete: bool = False
    mass_cancel_share: float = 0.5
    mass_cancel_min: int = 5
    confirm_mass_cancel: bool = False
    max_attempts: int = 5


_ORDER = {kind: rank for rank, kind in enumerate(ActionKind)}


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of ``plan()``.

    ``actions`` are ordered: binding bookkeeping, then removals (which free time slots
    in the room), then updates, then creations. ``skipped`` lists bindings waiting for a
    retry; ``orphans`` lists events carrying our marker that no booking claims
    (reported, never imported nor deleted).
    """

    actions: tuple[Action, ...] = ()
    needs_confirmation: bool = False
    fatal: SyncPlanError | None = None
    skipped: tuple[int, ...] = ()
    orphans: tuple[str, ...] = ()
    counts: Mapping[ActionKind, int] = field(default_factory=dict)

    def count(self, kind: ActionKind) -> int:
        """Return how many actions of ``kind`` the plan holds."""
        return self.counts.get(kind, 0)

    def raise_for_fatal(self) -> None:
        """Raise ``fatal`` if the planner refused the round.

        Raises:
            SyncPlanError: the plan's ``fatal`` error (e.g. ``StorageEmpty``).
        """
        if self.fatal is not None:
            raise self.fatal

    def summary(self) -> str:
        """Return a one-line summary for logs and ``last_sync_summary``."""
        if self.fatal is not None:
            return f"refused: {self.fatal}"
        parts = [f"{kind.value}={n}" for kind, n in self.counts.items() if n]
        if self.skipped:
            parts.append(f"skipped={len(self.skipped)}")
        if self.orphans:
            parts.append(f"orphans={len(self.orphans)}")
        if self.needs_confirmation:
            parts.append("needs_confirmation")
        return ", ".join(parts) or "nothing to do"


def next_retry_delay(
    attempts: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP
) -> timedelta:
    """Return how long to wait after the ``attempts``-th failed attempt.

    Capped exponential backoff: 10, 20, 40, 80, 160 minutes…, at most 6 hours
    (queue_job's 10-minute default, doubled per attempt); ``attempts`` below one counts
    as one. A Graph ``Retry-After`` longer than this delay should win in the shell.
    """
    exponent = min(max(attempts, 1) - 1, 32)
    return min(base * (2**exponent), cap)


def _utc_naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def is_due(entry: StatusEntry, now: datetime, max_attempts: int = 5) -> bool:
    """Return whether the planner may act on ``entry`` at ``now``.

    Only bindings in ``error`` wait: until ``next_retry``, and for good once
    ``attempts`` reached ``max_attempts`` (the shell resets ``attempts`` on a user edit
    or "Retry").
    """
    if entry.state is not SyncState.ERROR:
        return True
    if entry.attempts >= max_attempts:
        return False
    if entry.next_retry is None:
        return True
    return _utc_naive(entry.next_retry) <= _utc_naive(now)


class LocalState(enum.Enum):
    """State of a binding's booking against the binding."""

    SAME = "same"
    CHANGED = "changed"
    GONE = "gone"


class RemoteState(enum.Enum):
    """State of a binding's event against the binding."""

    SAME = "same"
    CHANGED = "changed"
    REMOVED = "removed"
    UNSEEN = "unseen"


class Decision(enum.Enum):
    """Row outcome of the decision table, refined by policies in ``_Planner``."""

    NOTHING = "nothing"
    PUSH = "push"
    PULL = "pull"
    RESOLVE = "resolve"
    REMOTE_GONE = "remote_gone"
    REMOTE_GONE_LOCAL_EDITED = "remote_gone_local_edited"
    DELETE_REMOTE = "delete_remote"
    FORGET = "forget"


L, R, D = LocalState, RemoteState, Decision
DECISIONS: Mapping[tuple[LocalState, RemoteState], Decision] = {
    (L.SAME, R.SAME): D.NOTHING,
    (L.SAME, R.UNSEEN): D.NOTHING,
    (L.SAME, R.CHANGED): D.PULL,
    (L.SAME, R.REMOVED): D.REMOTE_GONE,
    (L.CHANGED, R.SAME): D.PUSH,
    (L.CHANGED, R.UNSEEN): D.PUSH,
    (L.CHANGED, R.CHANGED): D.RESOLVE,
    (L.CHANGED, R.REMOVED): D.REMOTE_GONE_LOCAL_EDITED,
    (L.GONE, R.SAME): D.DELETE_REMOTE,
    (L.GONE, R.CHANGED): D.DELETE_REMOTE,
    (L.GONE, R.UNSEEN): D.DELETE_REMOTE,
    (L.GONE, R.REMOVED): D.FORGET,
}
del L, R, D


def _norm(value: FieldValue) -> FieldValue:
    if isinstance(value, datetime):
        return _utc_naive(value).replace(microsecond=0)
    return value


def _diff(
    source: LocalItem | RemoteItem, target: LocalItem | RemoteItem
) -> tuple[FieldChange, ...]:
    """Changes made by writing ``source``'s values onto ``target`` (old = target's)."""
    changes = []
    for name in SYNCED_FIELDS:
        old, new = getattr(target, name), getattr(source, name)
        if _norm(old) != _norm(new):
            changes.append(FieldChange(name, old, new))
    return tuple(changes)


def _local_state(entry: StatusEntry, local: LocalItem | None) -> LocalState:
    if entry.state is SyncState.DELETED_LOCAL or local is None or not local.is_live:
        return LocalState.GONE
    if local.payload_hash == entry.exported_hash:
        return LocalState.SAME
    return LocalState.CHANGED


def _remote_state(
    entry: StatusEntry, remote: RemoteItem | None, round_kind: RoundKind
) -> RemoteState:
    if remote is None:
        return (
            RemoteState.REMOVED if round_kind is RoundKind.FULL else RemoteState.UNSEEN
        )
    if remote.is_gone:
        return RemoteState.REMOVED
    if not remote.is_live:
        # Delta rows may in theory carry only changed properties
        # (docs/graph.md#partial-delta-items);
        # an incomplete row cannot be compared, the shell should re-GET it.
        return RemoteState.UNSEEN
    if remote.change_key is not None and remote.change_key == entry.change_key:
        return RemoteState.SAME
    return RemoteState.CHANGED


def _dedupe_remote(remote: Iterable[RemoteItem]) -> dict[str, RemoteItem]:
    # Delta rounds may replay an item anywhere in the page sequence; the last copy wins.
    items: dict[str, RemoteItem] = {}
    for item in remote:
        items.pop(item.event_id, None)
        items[item.event_id] = item
    return items


def _dedupe_status(
    status: Iterable[StatusEntry],
) -> tuple[list[StatusEntry], list[StatusEntry]]:
    """Split bindings into kept ones and redundant ones (lowest binding id wins).

    Redundant: a second binding of one event, or a binding without event for a booking
    that has another binding.
    """
    entries = sorted(
        {e.binding_id: e for e in status}.values(), key=lambda e: e.binding_id
    )
    linked_bookings = {e.booking_id for e in entries if e.event_id is not None}
    kept: list[StatusEntry] = []
    duplicates: list[StatusEntry] = []
    seen_events: set[str] = set()
    seen_unlinked: set[int | None] = set()
    for entry in entries:
        if entry.event_id is not None:
            redundant = entry.event_id in seen_events
            seen_events.add(entry.event_id)
        else:
            redundant = entry.booking_id is not None and (
                entry.booking_id in linked_bookings or entry.booking_id in seen_unlinked
            )
            seen_unlinked.add(entry.booking_id)
        (duplicates if redundant else kept).append(entry)
    return kept, duplicates


class _Planner:
    """Working state of one ``plan()`` call; handlers append to ``self.actions``."""

    def __init__(
        self,
        local: Iterable[LocalItem],
        remote: Iterable[RemoteItem],
        status: Iterable[StatusEntry],
        round_kind: RoundKind,
        policy: ConflictPolicy,
        options: Options,
        now: datetime,
    ) -> None:
        self.locals = {item.booking_id: item for item in local}
        self.remotes = _dedupe_remote(remote)
        self.entries, self.duplicates = _dedupe_status(status)
        self.round_kind = round_kind
        self.policy = policy
        self.options = options
        self.now = now
        self.actions: list[Action] = []
        self.skipped: list[int] = []
        self.orphans: list[str] = []
        self.bound_bookings: set[int] = set()
        bound_events = {e.event_id for e in self.entries if e.event_id is not None}
        self.consumed: set[str] = set(bound_events)
        self.unbound = [
            r
            for eid, r in sorted(self.remotes.items())
            if eid not in bound_events and r.is_live
        ]
        self.claims: dict[int, list[str]] = {}
        for item in self.unbound:
            booking_id = self._claimed_booking(item)
            if booking_id is not None:
                self.claims.setdefault(booking_id, []).append(item.event_id)

    def _claimed_booking(self, item: RemoteItem) -> int | None:
        db = self.options.database_uuid
        booking_id = parse_marker(item.marker, db)
        if booking_id is None:
            booking_id = parse_transaction_id(item.transaction_id, db)
        return booking_id

    def _take_claim(self, booking_id: int) -> RemoteItem | None:
        for event_id in self.claims.get(booking_id, ()):
            if event_id not in self.consumed:
                self.consumed.add(event_id)
                return self.remotes[event_id]
        return None

    def _emit(self, kind: ActionKind, reason: Reason, **values: object) -> None:
        local, status = values.get("local"), values.get("status")
        booking_id = None
        if isinstance(local, LocalItem):
            booking_id = local.booking_id
        elif isinstance(status, StatusEntry):
            booking_id = status.booking_id
        self.actions.append(Action(kind, reason, booking_id=booking_id, **values))

    def bound_count(self) -> int:
        return sum(
            1
            for e in self.entries
            if e.event_id is not None and e.state is not SyncState.DELETED_LOCAL
        )

    def empty_guard(self) -> StorageEmpty | None:
        if self.round_kind is not RoundKind.FULL or self.options.force_delete:
            return None
        if any(not item.removed for item in self.remotes.values()):
            return None
        bound = self.bound_count()
        if bound >= max(1, self.options.empty_guard_min_bindings):
            return StorageEmpty(bound)
        return None

    def run(self) -> Plan:
        fatal = self.empty_guard()
        if fatal is not None:
            return Plan(fatal=fatal)
        for entry in self.duplicates:
            self._emit(ActionKind.FORGET, Reason.DUPLICATE_BINDING, status=entry)
        for entry in self.entries:
            self._entry(entry)
        for booking_id in sorted(self.locals):
            if booking_id not in self.bound_bookings:
                self._new_local(self.locals[booking_id])
        for item in self.unbound:
            if item.event_id not in self.consumed:
                self._new_remote(item)
        return self._finish()

    def _finish(self) -> Plan:
        actions = sorted(self.actions, key=lambda a: _ORDER[a.kind])
        counts = Counter(a.kind for a in actions)
        cancels = counts[ActionKind.CANCEL_LOCAL]
        opts = self.options
        needs_confirmation = (
            not opts.confirm_mass_cancel
            and cancels >= opts.mass_cancel_min
            and cancels > opts.mass_cancel_share * self.bound_count()
        )
        return Plan(
            actions=tuple(actions),
            needs_confirmation=needs_confirmation,
            skipped=tuple(self.skipped),
            orphans=tuple(self.orphans),
            counts={kind: counts[kind] for kind in ActionKind if counts[kind]},
        )

    def _entry(self, entry: StatusEntry) -> None:
        # One event per booking: a later binding of an already bound booking is treated
        # as a tombstone, so its event is deleted rather than kept as a twin.
        twin = entry.booking_id in self.bound_bookings
        if entry.booking_id is not None:
            self.bound_bookings.add(entry.booking_id)
        if not is_due(entry, self.now, self.options.max_attempts):
            self.skipped.append(entry.binding_id)
            return
        if entry.state is SyncState.DECLINED:
            self._declined(entry)
            return
        local = None
        if entry.booking_id is not None and not twin:
            local = self.locals.get(entry.booking_id)
        if entry.event_id is None:
            self._unlinked(entry, local)
            return
        remote = self._remote_of(entry)
        if (remote is None or remote.is_gone) and local is not None and local.is_live:
            twin = self._take_recreation(entry)
            if twin is not None:
                self._emit(
                    ActionKind.ADOPT_REMOTE,
                    Reason.MARKER_FOUND,
                    local=local,
                    remote=twin,
                    status=entry,
                    changes=_diff(local, twin),
                    marker=make_marker(self.options.database_uuid, local.booking_id),
                )
                return
        decision = DECISIONS[
            (_local_state(entry, local), _remote_state(entry, remote, self.round_kind))
        ]
        _HANDLERS[decision](self, entry, local, remote)

    def _declined(self, entry: StatusEntry) -> None:
        # The room declined this meeting (cancelled in Odoo): it is never imported
        # again while the organizer keeps it, and forgotten once it is gone.
        remote = self.remotes.get(entry.event_id) if entry.event_id else None
        if _remote_state(entry, remote, self.round_kind) is RemoteState.REMOVED:
            self._emit(ActionKind.FORGET, Reason.REMOTE_REMOVED, status=entry)

    def _remote_of(self, entry: StatusEntry) -> RemoteItem | None:
        remote = self.remotes.get(entry.event_id) if entry.event_id else None
        if (remote is not None and not remote.is_gone) or not entry.ical_uid:
            return remote
        # The same meeting under a new id (moved item, id format change after a
        # re-authorization) keeps its iCalUId: follow it instead of importing a twin.
        for item in self.unbound:
            if item.ical_uid == entry.ical_uid and item.event_id not in self.consumed:
                if self._claimed_booking(item) not in (None, entry.booking_id):
                    continue
                self.consumed.add(item.event_id)
                return item
        return remote

    def _take_recreation(self, entry: StatusEntry) -> RemoteItem | None:
        # A re-creation whose Graph answer was lost: its transactionId names the event
        # it replaced, which proves that event is gone even if a delta round is silent.
        if entry.booking_id is None or entry.event_id is None:
            return None
        expected = transaction_id(
            self.options.database_uuid, entry.booking_id, entry.event_id
        )
        for event_id in self.claims.get(entry.booking_id, ()):
            item = self.remotes[event_id]
            if event_id not in self.consumed and item.transaction_id == expected:
                self.consumed.add(event_id)
                return item
        return None

    def _unlinked(self, entry: StatusEntry, local: LocalItem | None) -> None:
        if local is None or not local.is_live or entry.state is SyncState.DELETED_LOCAL:
            self._emit(ActionKind.FORGET, Reason.LOCAL_GONE, status=entry)
        else:
            self._create_or_adopt(local, entry, None)

    def _new_local(self, local: LocalItem) -> None:
        # An imported booking that lost its binding is not exported back: the meeting
        # already exists in the room and would be duplicated.
        if local.is_live and local.origin is Origin.ODOO:
            self._create_or_adopt(local, None, None)

    def _new_remote(self, item: RemoteItem) -> None:
        booking_id = self._claimed_booking(item)
        if booking_id is None:
            self._emit(ActionKind.CREATE_LOCAL, Reason.REMOTE_NEW, remote=item)
            return
        local = self.locals.get(booking_id)
        if local is not None and not local.is_live:
            # Created for a booking that was cancelled before the create was recorded.
            self._emit(
                ActionKind.DELETE_REMOTE, Reason.LOCAL_GONE, local=local, remote=item
            )
        else:
            self.orphans.append(item.event_id)

    def _create_or_adopt(
        self, local: LocalItem, entry: StatusEntry | None, previous_event: str | None
    ) -> None:
        db = self.options.database_uuid
        found = self._take_claim(local.booking_id)
        if found is not None:
            self._emit(
                ActionKind.ADOPT_REMOTE,
                Reason.MARKER_FOUND,
                local=local,
                remote=found,
                status=entry,
                changes=_diff(local, found),
                marker=make_marker(db, local.booking_id),
            )
            return
        self._emit(
            ActionKind.CREATE_REMOTE,
            Reason.REMOTE_REMOVED if previous_event else Reason.LOCAL_NEW,
            local=local,
            status=entry,
            transaction_id=transaction_id(db, local.booking_id, previous_event),
            marker=make_marker(db, local.booking_id),
        )

    def _nothing(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        moved = remote is not None and remote.event_id != entry.event_id
        if moved or entry.state is not SyncState.SYNCED:
            self._emit(
                ActionKind.MARK_SYNCED,
                Reason.ALREADY_EQUAL,
                local=local,
                remote=remote,
                status=entry,
            )

    def _push(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        if entry.origin is Origin.EXCHANGE:
            # A meeting booked in Outlook belongs to its organizer: never PATCHed.
            # What changed in Odoo is put back from the event once it is listed.
            if remote is not None:
                self._pull(entry, local, remote)
            return
        changes = _diff(local, remote) if remote is not None else ()
        self._emit(
            ActionKind.UPDATE_REMOTE,
            Reason.LOCAL_CHANGED,
            local=local,
            remote=remote,
            status=entry,
            changes=changes,
        )

    def _pull(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        changes = _diff(remote, local)
        kind = ActionKind.UPDATE_LOCAL if changes else ActionKind.MARK_SYNCED
        reason = Reason.REMOTE_CHANGED if changes else Reason.ALREADY_EQUAL
        self._emit(
            kind, reason, local=local, remote=remote, status=entry, changes=changes
        )

    def _winner(self, entry: StatusEntry) -> Origin | None:
        if self.policy is ConflictPolicy.ORIGIN:
            return entry.origin
        if self.policy is ConflictPolicy.ODOO:
            return Origin.ODOO
        if self.policy is ConflictPolicy.EXCHANGE:
            return Origin.EXCHANGE
        return None

    def _resolve(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        if not _diff(local, remote):
            self._emit(
                ActionKind.MARK_SYNCED,
                Reason.ALREADY_EQUAL,
                local=local,
                remote=remote,
                status=entry,
            )
            return
        # A meeting booked in Outlook belongs to its organizer, whatever the policy.
        winner = Origin.EXCHANGE if entry.origin is Origin.EXCHANGE else None
        winner = winner or self._winner(entry)
        if winner is Origin.ODOO:
            kind, changes = ActionKind.UPDATE_REMOTE, _diff(local, remote)
        elif winner is Origin.EXCHANGE:
            kind, changes = ActionKind.UPDATE_LOCAL, _diff(remote, local)
        else:
            kind, changes = ActionKind.CONFLICT, _diff(remote, local)
        self._emit(
            kind,
            Reason.BOTH_CHANGED,
            local=local,
            remote=remote,
            status=entry,
            changes=changes,
            conflict=True,
        )

    def _remote_gone(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        if (
            entry.origin is Origin.ODOO
            and self.options.removal_policy is RemovalPolicy.RECREATE
        ):
            self._create_or_adopt(local, entry, entry.event_id)
        else:
            self._cancel(entry, local, remote, edited=False)

    def _remote_gone_local_edited(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        if entry.origin is Origin.ODOO:
            self._create_or_adopt(local, entry, entry.event_id)
        else:
            self._cancel(entry, local, remote, edited=True)

    def _cancel(
        self,
        entry: StatusEntry,
        local: LocalItem | None,
        remote: RemoteItem | None,
        *,
        edited: bool,
    ) -> None:
        self._emit(
            ActionKind.CANCEL_LOCAL,
            Reason.REMOTE_REMOVED,
            local=local,
            remote=remote,
            status=entry,
            conflict=edited,
        )

    def _delete_remote(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        live = remote if remote is not None and not remote.is_gone else None
        if entry.origin is Origin.EXCHANGE:
            # Cancelled in Odoo: the room declines the organizer's meeting (the
            # organizer learns the room is no longer booked) instead of deleting it.
            self._emit(
                ActionKind.DECLINE_REMOTE,
                Reason.LOCAL_GONE,
                local=local,
                remote=live,
                status=entry,
            )
            return
        self._emit(
            ActionKind.DELETE_REMOTE,
            Reason.LOCAL_GONE,
            local=local,
            remote=live,
            status=entry,
        )

    def _forget(
        self, entry: StatusEntry, local: LocalItem | None, remote: RemoteItem | None
    ) -> None:
        self._emit(
            ActionKind.FORGET,
            Reason.REMOTE_REMOVED,
            local=local,
            remote=remote,
            status=entry,
        )


_HANDLERS = {
    Decision.NOTHING: _Planner._nothing,
    Decision.PUSH: _Planner._push,
    Decision.PULL: _Planner._pull,
    Decision.RESOLVE: _Planner._resolve,
    Decision.REMOTE_GONE: _Planner._remote_gone,
    Decision.REMOTE_GONE_LOCAL_EDITED: _Planner._remote_gone_local_edited,
    Decision.DELETE_REMOTE: _Planner._delete_remote,
    Decision.FORGET: _Planner._forget,
}

DEFAULT_OPTIONS = Options()


def plan(
    local: Iterable[LocalItem],
    remote: Iterable[RemoteItem],
    status: Iterable[StatusEntry],
    *,
    round_kind: RoundKind,
    policy: ConflictPolicy = ConflictPolicy.ORIGIN,
    options: Options = DEFAULT_OPTIONS,
    now: datetime,
) -> Plan:
    """Plan one sync round of one room calendar.

    :param local: the room's bookings in the sync window, including cancelled ones that
        still have a binding.
    :param remote: the events of this round, in the order Graph returned them (replays
        allowed; the last copy of an id wins).
    :param status: the room's bindings, including tombstones.
    :param now: only used to skip bindings whose retry is not due.
    :return: a ``Plan``; never raises. A refused round is a plan with ``fatal`` set and
        no actions (see ``StorageEmpty``).
    """
    return _Planner(local, remote, status, round_kind, policy, options, now).run()
