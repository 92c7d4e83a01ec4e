"""Pure sync planner between Odoo room bookings and an Exchange room calendar.

No Odoo, no Graph, stdlib only: ``plan()`` is a function of data, in the shape of
vdirsyncer's sync (status store, then a pure decision table, then actions). The Odoo
shell adapts records into items, calls ``plan()``, and executes the actions one by one.

Public API
==========

- ``plan(local, remote, status, *, round_kind, policy=ConflictPolicy.ORIGIN,
  options=Options(), now) -> Plan``
- ``Plan``: ``actions``, ``needs_confirmation``, ``fatal``, ``skipped``, ``orphans``,
  ``counts``, ``count(kind)``, ``raise_for_fatal()``, ``summary()``
- ``Options``: ``database_uuid``, ``removal_policy``, ``empty_guard_min_bindings`` (5),
  ``force_delete``, ``mass_cancel_share`` (0.5), ``mass_cancel_min`` (5),
  ``confirm_mass_cancel``, ``max_attempts`` (5)
- items: ``LocalItem``, ``RemoteItem``, ``StatusEntry``, ``Action``, ``FieldChange``,
  ``SYNCED_FIELDS``; enums ``ActionKind``, ``Reason``, ``Origin``, ``SyncState``,
  ``ConflictPolicy``, ``RemovalPolicy``, ``RoundKind``
- retry: ``next_retry_delay(attempts)``, ``is_due(entry, now, max_attempts)``
- identity: ``payload_hash(payload)``, ``make_marker``, ``parse_marker``,
  ``transaction_id``, ``parse_transaction_id``
- overlaps: ``Interval``, ``Overlap``, ``find_overlaps``, ``booking_overlaps``
- errors: ``SyncPlanError``, ``StorageEmpty``

Decision table
==============

For each binding, the booking is SAME (payload hash equals the binding's exported hash),
CHANGED, or GONE (missing, cancelled, unscheduled, or binding ``deleted_local``); the
event is SAME (changeKey equals the binding's), CHANGED, REMOVED (``@removed``,
``isCancelled``, or absent from a FULL round) or UNSEEN (absent from an INCREMENTAL
round).

- SAME / SAME or UNSEEN: nothing (our own echo comes back with our changeKey);
  MARK_SYNCED if the binding was not ``synced`` or the event was found under a new id.
- SAME / CHANGED: UPDATE_LOCAL with the differing fields, MARK_SYNCED if none differ.
- CHANGED / SAME or UNSEEN: UPDATE_REMOTE. A meeting booked in Outlook (origin
  exchange) belongs to its organizer and is never PATCHed: once its event is listed
  its values are put back (UPDATE_LOCAL, or MARK_SYNCED when they agree); unseen,
  nothing.
- CHANGED / CHANGED: MARK_SYNCED if the synced fields agree, else a conflict resolved by
  the policy: ORIGIN (the binding's origin wins), ODOO (UPDATE_REMOTE), EXCHANGE
  (UPDATE_LOCAL), MANUAL (CONFLICT); a meeting booked in Outlook always gets
  UPDATE_LOCAL. The action has ``conflict=True`` and ``changes`` holds what is
  overwritten.
- SAME / REMOVED: origin exchange: CANCEL_LOCAL; origin odoo:
  ``Options.removal_policy``, RECREATE (default: CREATE_REMOTE, or ADOPT_REMOTE if an
  event with our marker exists) or CANCEL (CANCEL_LOCAL).
- CHANGED / REMOVED: origin odoo: re-create (the local edit shows the booking is
  wanted); origin exchange: CANCEL_LOCAL with ``conflict=True``.
- GONE / SAME, CHANGED or UNSEEN: DELETE_REMOTE (a local cancellation wins); for a
  meeting booked in Outlook, DECLINE_REMOTE (the room declines it).
- GONE / REMOVED: FORGET.
- A ``declined`` binding: FORGET once its event is REMOVED, else nothing (the meeting
  is not imported again while its organizer keeps it).

Without a binding: a live Odoo-origin booking gets ADOPT_REMOTE when an unbound event
carries our marker or the booking's transactionId, else CREATE_REMOTE; an unbound live
event without our marker gets CREATE_LOCAL; an unbound event with our marker that no
booking claims (or whose booking is live and bound to another event) is listed in
``Plan.orphans``, never imported; one whose booking is cancelled gets DELETE_REMOTE
without binding; unknown removals are ignored. A binding with no event id (created
before its event) is handled like a booking without binding. Of several bindings for
one event the lowest id is kept and the others get FORGET; a booking's later bindings
are treated as tombstones (their events are deleted). A bound event that is gone while
the room holds our re-creation of it (its transactionId names the old event) is adopted.

Safety rails: a FULL round without any event while at least
``empty_guard_min_bindings`` events are bound returns ``Plan(fatal=StorageEmpty)`` with
no actions; more CANCEL_LOCAL than ``mass_cancel_share`` of the bound events (and at
least ``mass_cancel_min``) sets ``needs_confirmation``. Bindings in ``error`` whose
retry is not due are left alone and listed in ``Plan.skipped``.

What the shell does per action
==============================

After any successful action that keeps the binding, write ``remote.event_id``,
``ical_uid``, ``series_master_id`` from the action into the binding and set it
``synced``.

- CREATE_REMOTE: POST the booking's payload with ``transaction_id`` and ``marker`` as
  the marker extended property (``graph.create_event_request``); store the returned
  id, iCalUId, changeKey and ``local.payload_hash`` on ``status`` (or a new binding,
  origin odoo).
- ADOPT_REMOTE: bind the booking to ``remote`` (on ``status`` or a new binding), then do
  UPDATE_REMOTE writing ``marker`` again (``graph.update_event_request(...,
  marker=action.marker)``; ``changes`` tells whether the event differs at all).
- UPDATE_REMOTE: PATCH the booking's payload onto ``event_id``; store the returned
  changeKey and ``local.payload_hash``. With ``conflict``, post ``changes`` to the
  chatter.
- DELETE_REMOTE: DELETE ``event_id`` (404/410 count as success), then delete the
  binding if ``status`` is set.
- DECLINE_REMOTE: decline ``event_id`` in the room's calendar, telling the organizer
  (404 counts as success), then set the binding ``declined``.
- CREATE_LOCAL: create a booking (origin exchange) from ``remote``, then a binding with
  the remote ids and changeKey, and the hash of the new booking's payload as exported
  hash.
- UPDATE_LOCAL: write ``changes`` (field -> ``new``) on the booking without re-export;
  store ``remote.change_key`` and the booking's new payload hash.
- CANCEL_LOCAL: cancel the booking (never unlink), then delete the binding. Skip these
  and ask an admin when ``needs_confirmation``.
- MARK_SYNCED: store ``remote.change_key`` (if any) and ``local.payload_hash`` (if any).
- CONFLICT: set the binding ``conflict`` with ``changes`` as the message; write nothing.
- FORGET: delete the binding.

A 404 on UPDATE_REMOTE or ADOPT_REMOTE means the event is gone although this round did
not say so: re-plan that one binding with ``[RemoteItem.removal(event_id)]`` as remote
items (INCREMENTAL) and execute the result. Store the new deltaLink only after a round's
actions ran, so that a crash replays the round.
"""

from .errors import StorageEmpty, SyncPlanError
from .hashing import (
    make_marker,
    parse_marker,
    parse_transaction_id,
    payload_hash,
    transaction_id,
)
from .items import (
    SYNCED_FIELDS,
    Action,
    ActionKind,
    ConflictPolicy,
    FieldChange,
    LocalItem,
    Origin,
    Reason,
    RemovalPolicy,
    RemoteItem,
    RoundKind,
    StatusEntry,
    SyncState,
)
from .overlaps import Interval, Overlap, booking_overlaps, find_overlaps
from .plan import Options, Plan, is_due, next_retry_delay, plan

__all__ = [
    "SYNCED_FIELDS",
    "Action",
    "ActionKind",
    "ConflictPolicy",
    "FieldChange",
    "Interval",
    "LocalItem",
    "Options",
    "Origin",
    "Overlap",
    "Plan",
    "Reason",
    "RemovalPolicy",
    "RemoteItem",
    "RoundKind",
    "StatusEntry",
    "StorageEmpty",
    "SyncPlanError",
    "SyncState",
    "booking_overlaps",
    "find_overlaps",
    "is_due",
    "make_marker",
    "next_retry_delay",
    "parse_marker",
    "parse_transaction_id",
    "payload_hash",
    "plan",
    "transaction_id",
]
