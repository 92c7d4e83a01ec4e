"""Value objects of the sync planner: what goes into ``plan()`` and what comes out.

Public API:

- enums ``Origin``, ``SyncState``, ``ConflictPolicy``, ``RemovalPolicy``, ``RoundKind``,
  ``ActionKind``, ``Reason``;
- inputs ``LocalItem`` (one Odoo booking), ``RemoteItem`` (one Graph event or removal
  seen in this round), ``StatusEntry`` (one ``room.exchange.binding`` row);
- outputs ``FieldChange`` and ``Action``;
- ``SYNCED_FIELDS``: the fields compared between a booking and its event.

Times are naive UTC ``datetime`` values (send Graph ``Prefer: outlook.timezone="UTC"``);
they are compared at second precision because Graph returns seven fractional digits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

SYNCED_FIELDS: tuple[str, ...] = ("start", "stop", "subject", "is_private")

FieldValue = datetime | str | bool | None


class Origin(enum.Enum):
    """The side on which a booking was first created."""

    ODOO = "odoo"
    EXCHANGE = "exchange"


class SyncState(enum.Enum):
    """``room.exchange.binding.sync_state``."""

    PENDING = "pending"
    SYNCED = "synced"
    ERROR = "error"
    CONFLICT = "conflict"
    DELETED_LOCAL = "deleted_local"
    DECLINED = "declined"


class ConflictPolicy(enum.Enum):
    """Who wins when both sides changed since the last sync.

    ``ORIGIN``: the side that created the booking; ``ODOO`` / ``EXCHANGE``: always that
    side; ``MANUAL``: nobody, the binding is flagged ``conflict`` for a human.
    """

    ORIGIN = "origin"
    ODOO = "odoo"
    EXCHANGE = "exchange"
    MANUAL = "manual"


class RemovalPolicy(enum.Enum):
    """What to do when the event of an Odoo-origin booking disappears from the room.

    ``RECREATE`` (default): the booking stays and its event is created again; Odoo is
    the system of record for bookings made in Odoo, and Exchange reports an event moved
    out of the sync window as removed, so cancelling would lose customer bookings
    silently. ``CANCEL``: the booking is cancelled in Odoo, as if the room declined it.
    """

    RECREATE = "recreate"
    CANCEL = "cancel"


class RoundKind(enum.Enum):
    """How the remote items of a round were obtained.

    ``FULL``: the whole window was listed, so a bound event that is absent is gone.
    ``INCREMENTAL``: a delta round, only changes and ``@removed`` entries; absence means
    nothing.
    """

    FULL = "full"
    INCREMENTAL = "incremental"


class ActionKind(enum.Enum):
    """What the shell must do for one action (see the package docstring for details)."""

    FORGET = "forget"
    MARK_SYNCED = "mark_synced"
    CONFLICT = "conflict"
    DELETE_REMOTE = "delete_remote"
    DECLINE_REMOTE = "decline_remote"
    CANCEL_LOCAL = "cancel_local"
    UPDATE_REMOTE = "update_remote"
    UPDATE_LOCAL = "update_local"
    ADOPT_REMOTE = "adopt_remote"
    CREATE_REMOTE = "create_remote"
    CREATE_LOCAL = "create_local"


class Reason(enum.Enum):
    """Why an action was planned; stable codes for logs and chatter messages."""

    LOCAL_NEW = "local_new"
    LOCAL_CHANGED = "local_changed"
    LOCAL_GONE = "local_gone"
    REMOTE_NEW = "remote_new"
    REMOTE_CHANGED = "remote_changed"
    REMOTE_REMOVED = "remote_removed"
    BOTH_CHANGED = "both_changed"
    ALREADY_EQUAL = "already_equal"
    MARKER_FOUND = "marker_found"
    DUPLICATE_BINDING = "duplicate_binding"


@dataclass(frozen=True, slots=True)
class LocalItem:
    """One Odoo booking of the room, as plain values.

    ``payload_hash`` is ``hashing.payload_hash()`` of exactly the payload the shell
    would send to Graph; ``active`` is False for cancelled, unscheduled or archived
    bookings.
    """

    booking_id: int
    payload_hash: str
    start: datetime | None
    stop: datetime | None
    subject: str = ""
    is_private: bool = False
    active: bool = True
    origin: Origin = Origin.ODOO

    @property
    def is_live(self) -> bool:
        """True when the booking should exist as an event in the room."""
        return self.active and self.start is not None and self.stop is not None


@dataclass(frozen=True, slots=True)
class RemoteItem:
    """One Graph event (or ``@removed`` entry) of the room seen in this round.

    ``event_id`` is the immutable id (``Prefer: IdType="ImmutableId"``). ``marker`` is
    the value of our extended property when the shell has it (never on delta rows);
    ``transaction_id`` is Graph's ``transactionId``, which delta rows do carry.
    """

    event_id: str
    change_key: str | None = None
    start: datetime | None = None
    stop: datetime | None = None
    subject: str = ""
    is_private: bool = False
    is_cancelled: bool = False
    removed: bool = False
    ical_uid: str | None = None
    series_master_id: str | None = None
    transaction_id: str | None = None
    marker: str | None = None

    @classmethod
    def removal(cls, event_id: str) -> RemoteItem:
        """Return the item for a delta ``{"id": …, "@removed": {…}}`` row."""
        return cls(event_id=event_id, removed=True)

    @property
    def is_gone(self) -> bool:
        """True for ``@removed`` rows and cancelled meetings."""
        return self.removed or self.is_cancelled

    @property
    def is_live(self) -> bool:
        """True for a complete, not cancelled event."""
        return not self.is_gone and self.start is not None and self.stop is not None


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One ``room.exchange.binding``: the last synced state of a (booking, event) pair.

    ``event_id`` is None for a binding created before its event (outbox style);
    ``booking_id`` is None once the booking was deleted (the binding is a tombstone).
    """

    binding_id: int
    booking_id: int | None
    event_id: str | None
    change_key: str | None = None
    exported_hash: str | None = None
    origin: Origin = Origin.ODOO
    state: SyncState = SyncState.SYNCED
    ical_uid: str | None = None
    series_master_id: str | None = None
    error: str | None = None
    attempts: int = 0
    next_retry: datetime | None = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field the action overwrites: ``old`` is lost, ``new`` is written."""

    field: str
    old: FieldValue
    new: FieldValue


@dataclass(frozen=True, slots=True)
class Action:
    """One step for the shell; see the package docstring for each kind's contract.

    ``conflict`` is True when the action overwrites a concurrent change of the other
    side; ``changes`` then lists what is lost, for the booking's chatter.
    ``transaction_id`` (CREATE_REMOTE) and ``marker`` (CREATE_REMOTE, ADOPT_REMOTE)
    are what the shell sends: the marker is the only one written to Exchange.
    """

    kind: ActionKind
    reason: Reason
    booking_id: int | None = None
    local: LocalItem | None = None
    remote: RemoteItem | None = None
    status: StatusEntry | None = None
    changes: tuple[FieldChange, ...] = ()
    conflict: bool = False
    transaction_id: str | None = None
    marker: str | None = None

    @property
    def event_id(self) -> str | None:
        """The Graph event the action targets (the remote item's id comes first).

        None for CREATE_REMOTE, whose event does not exist yet.
        """
        if self.kind is ActionKind.CREATE_REMOTE:
            return None
        if self.remote is not None:
            return self.remote.event_id
        return self.status.event_id if self.status is not None else None

    @property
    def binding_id(self) -> int | None:
        """The binding to update or delete, None when the shell must create one."""
        return self.status.binding_id if self.status is not None else None
