"""Scenario tests of the pure sync planner, named after vdirsyncer's sync tests."""

import random
from datetime import datetime, timedelta, timezone

import pytest
from exchange_engine import (
    ActionKind,
    ConflictPolicy,
    FieldChange,
    Interval,
    LocalItem,
    Options,
    Origin,
    Reason,
    RemoteItem,
    RemovalPolicy,
    RoundKind,
    StatusEntry,
    StorageEmpty,
    SyncPlanError,
    SyncState,
    booking_overlaps,
    find_overlaps,
    is_due,
    make_marker,
    next_retry_delay,
    parse_marker,
    parse_transaction_id,
    payload_hash,
    plan,
    transaction_id,
)
from hypothesis import given, settings
from hypothesis import strategies as st

DB = "5f0c7e1a-0000-4000-8000-00000000d8b1"
DAY = datetime(2026, 3, 2)
NOW = datetime(2026, 3, 1, 12, 0)
OPTIONS = Options(database_uuid=DB)
FULL, DELTA = RoundKind.FULL, RoundKind.INCREMENTAL
K = ActionKind


def at(hour):
    return DAY + timedelta(hours=hour)


def booking(
    bid,
    start=9,
    stop=10,
    subject="Board",
    *,
    private=False,
    active=True,
    origin=Origin.ODOO,
):
    payload = {
        "start": at(start),
        "stop": at(stop),
        "subject": subject,
        "private": private,
    }
    return LocalItem(
        booking_id=bid,
        payload_hash=payload_hash(payload),
        start=at(start) if active is not None else None,
        stop=at(stop) if active is not None else None,
        subject=subject,
        is_private=private,
        active=bool(active),
        origin=origin,
    )


def event(eid, start=9, stop=10, subject="Board", *, ck="ck1", private=False, **extra):
    return RemoteItem(
        event_id=eid,
        change_key=ck,
        start=at(start),
        stop=at(stop),
        subject=subject,
        is_private=private,
        ical_uid=f"uid-{eid}",
        **extra,
    )


def binding(
    binding_id,
    bid,
    eid,
    *,
    synced=None,
    ck="ck1",
    origin=Origin.ODOO,
    state=SyncState.SYNCED,
    **extra,
):
    synced = synced or booking(bid if bid is not None else 0, origin=origin)
    return StatusEntry(
        binding_id=binding_id,
        booking_id=bid,
        event_id=eid,
        change_key=ck,
        exported_hash=synced.payload_hash,
        origin=origin,
        state=state,
        ical_uid=f"uid-{eid}" if eid else None,
        **extra,
    )


def run(
    local=(),
    remote=(),
    status=(),
    *,
    kind=DELTA,
    policy=ConflictPolicy.ORIGIN,
    options=OPTIONS,
    now=NOW,
):
    return plan(
        local, remote, status, round_kind=kind, policy=policy, options=options, now=now
    )


def summary(result):
    return [(a.kind, a.booking_id, a.event_id) for a in result.actions]


# --- creates ------------------------------------------------------------------------


def test_create_on_odoo_side():
    result = run([booking(1)])
    (action,) = result.actions
    assert (action.kind, action.reason) == (K.CREATE_REMOTE, Reason.LOCAL_NEW)
    assert action.transaction_id == transaction_id(DB, 1)
    assert action.marker == make_marker(DB, 1)
    assert action.status is None and action.local == booking(1)


def test_create_on_exchange_side():
    ev = event("E1", series_master_id=None)
    result = run(remote=[ev])
    assert summary(result) == [(K.CREATE_LOCAL, None, "E1")]
    assert result.actions[0].remote == ev


def test_create_on_both_sides_keeps_both():
    result = run([booking(1)], [event("E1")])
    assert sorted(a.kind.value for a in result.actions) == [
        "create_local",
        "create_remote",
    ]


def test_cancelled_booking_without_binding_is_not_exported():
    assert run([booking(1, active=False), booking(2, active=None)]).actions == ()


def test_imported_booking_without_binding_is_not_exported_back():
    assert run([booking(1, origin=Origin.EXCHANGE)]).actions == ()


def test_cancelled_foreign_event_is_not_imported():
    assert run(remote=[event("E1", is_cancelled=True)]).actions == ()


def test_removal_of_unknown_event_is_ignored():
    assert run(remote=[RemoteItem.removal("E9")]).actions == ()


def test_binding_created_before_its_event_gets_create_remote():
    entry = StatusEntry(
        binding_id=7, booking_id=1, event_id=None, state=SyncState.PENDING
    )
    (action,) = run([booking(1)], status=[entry]).actions
    assert (action.kind, action.binding_id) == (K.CREATE_REMOTE, 7)
    assert action.transaction_id == transaction_id(DB, 1)


def test_binding_created_before_its_event_forgotten_when_booking_gone():
    entry = StatusEntry(binding_id=7, booking_id=1, event_id=None)
    assert summary(run([booking(1, active=False)], status=[entry])) == [
        (K.FORGET, 1, None)
    ]


# --- updates ------------------------------------------------------------------------


def test_update_odoo_side():
    result = run(
        [booking(1, subject="Board (moved)")], [event("E1")], [binding(10, 1, "E1")]
    )
    (action,) = result.actions
    assert (action.kind, action.event_id, action.conflict) == (
        K.UPDATE_REMOTE,
        "E1",
        False,
    )
    assert action.changes == (FieldChange("subject", "Board", "Board (moved)"),)


def test_update_odoo_side_without_remote_in_delta_round():
    (action,) = run([booking(1, subject="x")], [], [binding(10, 1, "E1")]).actions
    assert (action.kind, action.event_id, action.changes) == (K.UPDATE_REMOTE, "E1", ())


@pytest.mark.parametrize("origin", list(Origin))
def test_update_exchange_side(origin):
    status = [binding(10, 1, "E1", origin=origin)]
    result = run(
        [booking(1, origin=origin)],
        [event("E1", 11, 12, ck="ck2", private=True)],
        status,
    )
    (action,) = result.actions
    assert (action.kind, action.reason) == (K.UPDATE_LOCAL, Reason.REMOTE_CHANGED)
    assert action.changes == (
        FieldChange("start", at(9), at(11)),
        FieldChange("stop", at(10), at(12)),
        FieldChange("is_private", False, True),
    )
    assert action.remote.change_key == "ck2" and not action.conflict


def test_exchange_change_outside_synced_fields_only_records_change_key():
    result = run([booking(1)], [event("E1", ck="ck2")], [binding(10, 1, "E1")])
    assert summary(result) == [(K.MARK_SYNCED, 1, "E1")]


def test_sub_second_differences_are_not_changes():
    ev = RemoteItem("E1", "ck2", at(9) + timedelta(microseconds=1234), at(10), "Board")
    assert summary(run([booking(1)], [ev], [binding(10, 1, "E1")])) == [
        (K.MARK_SYNCED, 1, "E1")
    ]


def test_echo_of_our_own_write_is_ignored():
    assert run([booking(1)], [event("E1")], [binding(10, 1, "E1")]).actions == ()


def test_nothing_changed_in_full_round():
    assert (
        run([booking(1)], [event("E1")], [binding(10, 1, "E1")], kind=FULL).actions
        == ()
    )


def test_pending_binding_with_equal_sides_is_marked_synced():
    status = [binding(10, 1, "E1", state=SyncState.PENDING)]
    assert summary(run([booking(1)], [event("E1")], status)) == [
        (K.MARK_SYNCED, 1, "E1")
    ]


# --- deletes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local",
    [[booking(1, active=False)], [booking(1, active=None)], []],
    ids=["cancelled", "unscheduled", "deleted"],
)
@pytest.mark.parametrize(
    "remote",
    [[event("E1")], [event("E1", ck="ck2")], []],
    ids=["remote-same", "remote-changed", "remote-unseen"],
)
def test_delete_odoo_side(local, remote):
    result = run(local, remote, [binding(10, 1, "E1")])
    (action,) = result.actions
    assert (action.kind, action.event_id, action.reason) == (
        K.DELETE_REMOTE,
        "E1",
        Reason.LOCAL_GONE,
    )


def test_tombstone_of_unlinked_booking_deletes_remote():
    status = [binding(10, None, "E1", state=SyncState.DELETED_LOCAL)]
    assert summary(run([], [], status)) == [(K.DELETE_REMOTE, None, "E1")]


def test_deleted_local_state_wins_over_live_booking_values():
    status = [binding(10, 1, "E1", state=SyncState.DELETED_LOCAL)]
    assert summary(run([booking(1)], [], status)) == [(K.DELETE_REMOTE, 1, "E1")]


@pytest.mark.parametrize(
    ("remote", "kind"),
    [
        ([RemoteItem.removal("E1")], DELTA),
        ([event("E1", is_cancelled=True)], DELTA),
        ([event("E2")], FULL),
    ],
    ids=["removed", "is-cancelled", "absent-from-full"],
)
def test_delete_exchange_side_cancels_imported_booking(remote, kind):
    local = [booking(1, origin=Origin.EXCHANGE), booking(2, origin=Origin.EXCHANGE)]
    status = [
        binding(10, 1, "E1", origin=Origin.EXCHANGE),
        binding(11, 2, "E2", origin=Origin.EXCHANGE),
    ]
    result = run(local, remote, status, kind=kind)
    (action,) = [a for a in result.actions if a.booking_id == 1]
    assert (action.kind, action.conflict) == (K.CANCEL_LOCAL, False)


def test_absence_from_incremental_round_means_nothing():
    local = [booking(1, origin=Origin.EXCHANGE)]
    status = [binding(10, 1, "E1", origin=Origin.EXCHANGE)]
    assert run(local, [], status, kind=DELTA).actions == ()


def test_remote_removal_of_odoo_booking_recreates_by_default():
    result = run([booking(1)], [RemoteItem.removal("E1")], [binding(10, 1, "E1")])
    (action,) = result.actions
    assert (action.kind, action.binding_id, action.reason) == (
        K.CREATE_REMOTE,
        10,
        Reason.REMOTE_REMOVED,
    )
    assert action.transaction_id == transaction_id(DB, 1, "E1")
    assert action.transaction_id != transaction_id(DB, 1)


def test_remote_removal_of_odoo_booking_cancels_under_cancel_policy():
    options = Options(database_uuid=DB, removal_policy=RemovalPolicy.CANCEL)
    result = run(
        [booking(1)],
        [RemoteItem.removal("E1")],
        [binding(10, 1, "E1")],
        options=options,
    )
    assert summary(result) == [(K.CANCEL_LOCAL, 1, "E1")]


def test_deleted_remote_changed_local_recreates_even_under_cancel_policy():
    options = Options(database_uuid=DB, removal_policy=RemovalPolicy.CANCEL)
    result = run(
        [booking(1, subject="new")],
        [RemoteItem.removal("E1")],
        [binding(10, 1, "E1")],
        options=options,
    )
    assert summary(result) == [(K.CREATE_REMOTE, 1, None)]
    assert result.actions[0].binding_id == 10


def test_deleted_remote_changed_local_imported_booking_is_cancelled_as_conflict():
    result = run(
        [booking(1, subject="edited", origin=Origin.EXCHANGE)],
        [RemoteItem.removal("E1")],
        [binding(10, 1, "E1", origin=Origin.EXCHANGE)],
    )
    (action,) = result.actions
    assert (action.kind, action.conflict) == (K.CANCEL_LOCAL, True)


def test_deleted_on_both_sides_forgets_binding():
    result = run(
        [booking(1, active=False)], [RemoteItem.removal("E1")], [binding(10, 1, "E1")]
    )
    assert summary(result) == [(K.FORGET, 1, "E1")]


# --- conflicts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "origin", "kind"),
    [
        (ConflictPolicy.ORIGIN, Origin.ODOO, K.UPDATE_REMOTE),
        (ConflictPolicy.ORIGIN, Origin.EXCHANGE, K.UPDATE_LOCAL),
        # A meeting booked in Outlook is never PATCHed: Exchange wins it anyway.
        (ConflictPolicy.ODOO, Origin.EXCHANGE, K.UPDATE_LOCAL),
        (ConflictPolicy.EXCHANGE, Origin.ODOO, K.UPDATE_LOCAL),
        (ConflictPolicy.MANUAL, Origin.ODOO, K.CONFLICT),
    ],
)
def test_conflict_resolution(policy, origin, kind):
    local = [booking(1, subject="Odoo title", origin=origin)]
    remote = [event("E1", subject="Outlook title", ck="ck2")]
    result = run(local, remote, [binding(10, 1, "E1", origin=origin)], policy=policy)
    (action,) = result.actions
    assert (action.kind, action.reason, action.conflict) == (
        kind,
        Reason.BOTH_CHANGED,
        True,
    )
    if kind is K.UPDATE_REMOTE:
        expected = FieldChange("subject", "Outlook title", "Odoo title")
    else:
        expected = FieldChange("subject", "Odoo title", "Outlook title")
    assert action.changes == (expected,)


def test_both_changed_to_the_same_values_is_no_conflict():
    result = run(
        [booking(1, subject="Same")],
        [event("E1", subject="Same", ck="ck2")],
        [binding(10, 1, "E1")],
    )
    assert summary(result) == [(K.MARK_SYNCED, 1, "E1")]


def test_conflict_is_decided_by_hash_and_change_key_not_by_clock():
    # Same inputs, any "now": the outcome never depends on time.
    args = (
        [booking(1, subject="a")],
        [event("E1", subject="b", ck="ck2")],
        [binding(10, 1, "E1")],
    )
    assert run(*args, now=NOW) == run(*args, now=NOW + timedelta(days=400))


# --- adoption by marker -------------------------------------------------------------


def test_adopt_remote_event_carrying_our_marker():
    ev = event("E1", marker=make_marker(DB, 1))
    result = run([booking(1)], [ev], kind=FULL)
    (action,) = result.actions
    assert (action.kind, action.reason, action.event_id, action.status) == (
        K.ADOPT_REMOTE,
        Reason.MARKER_FOUND,
        "E1",
        None,
    )
    assert action.changes == ()


def test_adoptions_carry_the_marker_the_shell_writes_again():
    """The marker the shell sends is the engine's: on a create and on each kind of
    adoption (by marker, by transactionId, of a lost re-creation)."""
    by_marker = run([booking(1)], [event("E1", marker=make_marker(DB, 1))], kind=FULL)
    by_transaction = run(
        [booking(1)], [event("E1", transaction_id=transaction_id(DB, 1))]
    )
    twin = event("E2", transaction_id=transaction_id(DB, 1, "E1"))
    recreation = run(
        [booking(1)], [RemoteItem.removal("E1"), twin], [binding(10, 1, "E1")]
    )
    created = run([booking(1)], [], kind=FULL)
    for result in (by_marker, by_transaction, recreation, created):
        (action,) = result.actions
        assert action.kind in (K.ADOPT_REMOTE, K.CREATE_REMOTE)
        assert action.marker == make_marker(DB, 1)


def test_adopt_remote_event_by_transaction_id_in_delta_round():
    ev = event("E1", subject="old", transaction_id=transaction_id(DB, 1))
    (action,) = run([booking(1)], [ev]).actions
    assert action.kind is K.ADOPT_REMOTE
    assert action.changes == (FieldChange("subject", "old", "Board"),)


def test_recreated_event_lost_in_a_crash_is_adopted_not_duplicated():
    ev = event("E2", transaction_id=transaction_id(DB, 1, "E1"))
    result = run([booking(1)], [RemoteItem.removal("E1"), ev], [binding(10, 1, "E1")])
    assert summary(result) == [(K.ADOPT_REMOTE, 1, "E2")]
    assert result.actions[0].binding_id == 10


def test_marker_of_another_database_is_foreign():
    ev = event("E1", marker=make_marker("other-db", 1))
    assert summary(run([booking(1)], [ev], kind=FULL)) == [
        (K.CREATE_REMOTE, 1, None),
        (K.CREATE_LOCAL, None, "E1"),
    ]


def test_our_event_without_claiming_booking_is_an_orphan_not_an_import():
    ev = event("E1", marker=make_marker(DB, 99))
    result = run([], [ev], kind=FULL)
    assert result.actions == () and result.orphans == ("E1",)


def test_our_event_in_delta_without_claiming_booking_is_an_orphan():
    # The booking was deleted after a create whose answer was lost: never re-import it.
    ev = event("E1", transaction_id=transaction_id(DB, 99))
    result = run([], [ev])
    assert result.actions == () and result.orphans == ("E1",)


def test_our_unrecorded_event_of_a_cancelled_booking_is_deleted():
    ev = event("E1", transaction_id=transaction_id(DB, 1))
    result = run([booking(1, active=False)], [ev])
    assert summary(result) == [(K.DELETE_REMOTE, 1, "E1")]
    assert result.actions[0].binding_id is None


def test_second_copy_of_our_event_for_a_bound_booking_is_an_orphan():
    twin = event("E2", marker=make_marker(DB, 1))
    result = run([booking(1)], [event("E1"), twin], [binding(10, 1, "E1")], kind=FULL)
    assert result.actions == () and result.orphans == ("E2",)


def test_event_with_new_id_is_followed_by_ical_uid():
    moved = RemoteItem("E1-new", "ck1", at(9), at(10), "Board", ical_uid="uid-E1")
    result = run(
        [booking(1)], [RemoteItem.removal("E1"), moved], [binding(10, 1, "E1")]
    )
    assert summary(result) == [(K.MARK_SYNCED, 1, "E1-new")]


# --- delta replays and recurrences --------------------------------------------------


def test_delta_replay_is_harmless_last_copy_wins():
    remote = [
        event("E1", subject="v1", ck="a"),
        event("E1", subject="v2", ck="b"),
        event("E1", subject="v2", ck="b"),
    ]
    result = run([booking(1)], remote, [binding(10, 1, "E1")])
    (action,) = result.actions
    assert action.kind is K.UPDATE_LOCAL and action.remote.change_key == "b"


def test_delta_replay_of_creation_then_removal():
    remote = [event("E1"), RemoteItem.removal("E1")]
    assert run(remote=remote).actions == ()


def test_delta_replay_of_removal_then_recreation():
    remote = [RemoteItem.removal("E1"), event("E1"), event("E1")]
    assert summary(run(remote=remote)) == [(K.CREATE_LOCAL, None, "E1")]


def test_recurring_occurrences_are_imported_one_by_one():
    remote = [event(f"OCC{i}", 9 + i, 10 + i, series_master_id="M1") for i in range(3)]
    result = run(remote=remote)
    assert [a.kind for a in result.actions] == [K.CREATE_LOCAL] * 3
    assert {a.remote.series_master_id for a in result.actions} == {"M1"}


def test_removed_series_cancels_each_occurrence():
    local = [booking(i, 9 + i, 10 + i, origin=Origin.EXCHANGE) for i in range(3)]
    status = [
        binding(
            10 + i,
            i,
            f"OCC{i}",
            synced=local[i],
            origin=Origin.EXCHANGE,
            series_master_id="M1",
        )
        for i in range(3)
    ]
    remote = [RemoteItem.removal(f"OCC{i}") for i in range(3)]
    result = run(local, remote, status)
    assert summary(result) == [(K.CANCEL_LOCAL, i, f"OCC{i}") for i in range(3)]


def test_changed_exception_of_a_series_updates_only_that_occurrence():
    local = [booking(i, 9 + i, 10 + i, origin=Origin.EXCHANGE) for i in range(3)]
    status = [
        binding(10 + i, i, f"OCC{i}", synced=local[i], origin=Origin.EXCHANGE)
        for i in range(3)
    ]
    result = run(local, [event("OCC1", 15, 16, ck="ck2")], status)
    assert summary(result) == [(K.UPDATE_LOCAL, 1, "OCC1")]


# --- safety rails -------------------------------------------------------------------


def _room(n, origin=Origin.EXCHANGE):
    local = [booking(i, origin=origin) for i in range(n)]
    status = [binding(100 + i, i, f"E{i}", origin=origin) for i in range(n)]
    return local, status


def test_empty_storage_dataloss_is_refused():
    local, status = _room(5)
    result = run(local, [], status, kind=FULL)
    assert result.actions == () and isinstance(result.fatal, StorageEmpty)
    assert result.fatal.bound_count == 5
    with pytest.raises(SyncPlanError):
        result.raise_for_fatal()
    assert result.summary().startswith("refused")


def test_empty_storage_below_threshold_is_planned():
    local, status = _room(4)
    result = run(local, [], status, kind=FULL)
    assert result.fatal is None and result.count(K.CANCEL_LOCAL) == 4


def test_empty_storage_with_force_delete_is_planned_but_needs_confirmation():
    local, status = _room(6)
    options = Options(database_uuid=DB, force_delete=True)
    result = run(local, [], status, kind=FULL, options=options)
    assert result.fatal is None and result.count(K.CANCEL_LOCAL) == 6
    assert result.needs_confirmation


def test_empty_incremental_round_is_not_an_empty_storage():
    local, status = _room(6)
    result = run(local, [], status, kind=DELTA)
    assert result.fatal is None and result.actions == ()


def test_mass_cancellation_needs_confirmation():
    local, status = _room(10)
    remote = [RemoteItem.removal(f"E{i}") for i in range(6)]
    result = run(local, remote, status)
    assert result.count(K.CANCEL_LOCAL) == 6 and result.needs_confirmation
    confirmed = run(
        local,
        remote,
        status,
        options=Options(database_uuid=DB, confirm_mass_cancel=True),
    )
    assert not confirmed.needs_confirmation


def test_few_cancellations_need_no_confirmation():
    local, status = _room(4)
    remote = [RemoteItem.removal(f"E{i}") for i in range(3)]
    assert not run(local, remote, status).needs_confirmation


# --- retries ------------------------------------------------------------------------


def _failed(next_retry, attempts=1):
    return binding(
        10,
        1,
        "E1",
        state=SyncState.ERROR,
        attempts=attempts,
        next_retry=next_retry,
        error="503",
    )


def test_binding_in_error_waits_for_its_retry():
    status = [_failed(NOW + timedelta(minutes=5))]
    result = run([booking(1, subject="x")], [event("E1", ck="ck2")], status)
    assert result.actions == () and result.skipped == (10,)


def test_binding_in_error_is_retried_when_due():
    status = [_failed(NOW - timedelta(minutes=5))]
    result = run([booking(1, subject="x")], [], status)
    assert summary(result) == [(K.UPDATE_REMOTE, 1, "E1")]


def test_binding_in_error_is_left_alone_once_attempts_are_exhausted():
    status = [_failed(None, attempts=5)]
    assert run([booking(1, subject="x")], [], status).skipped == (10,)


def test_retry_time_accepts_aware_datetimes():
    entry = _failed(datetime(2026, 3, 1, 12, 5, tzinfo=timezone.utc))
    assert not is_due(entry, NOW)
    assert is_due(
        entry, datetime(2026, 3, 1, 13, 10, tzinfo=timezone(timedelta(hours=1)))
    )


def test_next_retry_delay_is_capped_exponential():
    minutes = [next_retry_delay(n) / timedelta(minutes=1) for n in (0, 1, 2, 3, 4, 5)]
    assert minutes == [10, 10, 20, 40, 80, 160]
    assert next_retry_delay(10_000) == timedelta(hours=6)


# --- status store hygiene and determinism -------------------------------------------


def test_duplicate_bindings_for_one_event_are_forgotten():
    status = [binding(11, 1, "E1"), binding(10, 1, "E1")]
    result = run([booking(1)], [event("E1")], status)
    assert [(a.kind, a.binding_id) for a in result.actions] == [(K.FORGET, 11)]


def test_actions_are_ordered_removals_before_creations():
    local = [booking(1), booking(2, active=False)]
    status = [binding(10, 2, "E2")]
    result = run(local, [event("E3", 12, 13)], status)
    assert [a.kind for a in result.actions] == [
        K.DELETE_REMOTE,
        K.CREATE_REMOTE,
        K.CREATE_LOCAL,
    ]


def test_plan_does_not_depend_on_input_order():
    local = [booking(i, subject=f"s{i % 3}") for i in range(8)]
    status = [binding(10 + i, i, f"E{i}") for i in range(6)]
    remote = [
        event(f"E{i}", subject=f"s{i % 2}", ck=f"k{i % 2}") for i in range(0, 8, 2)
    ]
    expected = run(local, remote, status, kind=FULL)
    rng = random.Random(4)
    for _ in range(5):
        rng.shuffle(local)
        rng.shuffle(status)
        rng.shuffle(remote)
        assert run(local, remote, status, kind=FULL) == expected


def test_summary_lists_counts():
    result = run([booking(1)], [event("E9")])
    assert result.summary() == "create_remote=1, create_local=1"
    assert run().summary() == "nothing to do"


ids = st.sampled_from(["E1", "E2", "E3", "E4"])
local_items = st.builds(
    booking,
    st.integers(1, 4),
    st.integers(0, 3),
    st.integers(4, 6),
    st.sampled_from(["a", "b"]),
    active=st.sampled_from([True, False, None]),
    origin=st.sampled_from(list(Origin)),
)
remote_items = st.one_of(
    st.builds(RemoteItem.removal, ids),
    st.builds(
        event,
        ids,
        st.integers(0, 3),
        st.integers(4, 6),
        st.sampled_from(["a", "b"]),
        ck=st.sampled_from(["ck1", "ck2", None]),
        is_cancelled=st.booleans(),
        transaction_id=st.sampled_from([None, transaction_id(DB, 1)]),
        marker=st.sampled_from([None, make_marker(DB, 2), "junk"]),
    ),
)
status_entries = st.builds(
    StatusEntry,
    binding_id=st.integers(1, 6),
    booking_id=st.one_of(st.none(), st.integers(1, 4)),
    event_id=st.one_of(st.none(), ids),
    change_key=st.sampled_from(["ck1", "ck2", None]),
    exported_hash=st.sampled_from([None, booking(1).payload_hash]),
    origin=st.sampled_from(list(Origin)),
    state=st.sampled_from(list(SyncState)),
    attempts=st.integers(0, 6),
    next_retry=st.one_of(st.none(), st.just(NOW + timedelta(hours=1))),
    ical_uid=st.one_of(st.none(), ids.map(lambda e: f"uid-{e}")),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(local_items, max_size=5),
    st.lists(remote_items, max_size=6),
    st.lists(status_entries, max_size=5),
    st.sampled_from(list(RoundKind)),
    st.sampled_from(list(ConflictPolicy)),
    st.sampled_from(list(RemovalPolicy)),
)
def test_plan_is_total_and_touches_each_event_and_booking_once(
    local, remote, status, kind, policy, removal
):
    options = Options(database_uuid=DB, removal_policy=removal)
    result = run(local, remote, status, kind=kind, policy=policy, options=options)
    if result.fatal is not None:
        assert result.actions == ()
        return
    event_ids = [
        a.event_id for a in result.actions if a.event_id and a.kind is not K.FORGET
    ]
    assert len(event_ids) == len(set(event_ids))
    creates = [
        a.booking_id
        for a in result.actions
        if a.kind in (K.CREATE_REMOTE, K.ADOPT_REMOTE)
    ]
    assert len(creates) == len(set(creates))
    for action in result.actions:
        if action.kind is K.CREATE_LOCAL:
            assert parse_marker(action.remote.marker, DB) is None
            assert parse_transaction_id(action.remote.transaction_id, DB) is None


# --- overlaps and hashing -----------------------------------------------------------


def test_overlapping_bookings_are_listed_in_pairs():
    items = [
        booking(1, 9, 11),
        booking(2, 10, 12, origin=Origin.EXCHANGE),
        booking(3, 11, 12),
        booking(4, 13, 14),
        booking(5, 9, 14, active=False),
    ]
    pairs = booking_overlaps(items)
    assert [(o.first.key, o.second.key, o.start, o.stop) for o in pairs] == [
        (1, 2, at(10), at(11)),
        (2, 3, at(11), at(12)),
    ]
    assert [o.is_cross_origin for o in pairs] == [True, True]


def test_touching_and_empty_intervals_do_not_overlap():
    spans = [
        Interval("a", at(9), at(10)),
        Interval("b", at(10), at(11)),
        Interval("c", at(10), at(10)),
    ]
    assert find_overlaps(spans) == ()


def test_overlaps_compare_aware_times_in_utc():
    plus1 = timezone(timedelta(hours=1))
    spans = [
        Interval("a", at(9), at(10)),
        Interval(
            "b",
            datetime(2026, 3, 2, 10, 30, tzinfo=plus1),
            datetime(2026, 3, 2, 11, 30, tzinfo=plus1),
        ),
    ]
    (overlap,) = find_overlaps(spans)
    assert (overlap.start, overlap.stop) == (at(9) + timedelta(minutes=30), at(10))


def test_payload_hash_is_canonical():
    a = {"subject": "Board", "start": at(9), "tags": ("x", "y")}
    b = {"tags": ["x", "y"], "start": at(9), "subject": "Board"}
    assert payload_hash(a) == payload_hash(b)
    assert payload_hash(a) != payload_hash({**a, "subject": "Board "})
    with pytest.raises(TypeError):
        payload_hash({"x": object()})


def test_transaction_id_is_deterministic_and_names_its_booking():
    first, again = transaction_id(DB, 42), transaction_id(DB, 42)
    recreated = transaction_id(DB, 42, "E1")
    assert first == again and len({first, recreated, transaction_id(DB, 43)}) == 3
    assert parse_transaction_id(first, DB) == parse_transaction_id(recreated, DB) == 42
    assert parse_transaction_id(first, "other-db") is None
    assert parse_transaction_id("7E163156-7762-4BEB-A1C6-729EA81755A7", DB) is None
    assert parse_transaction_id("not-a-uuid", DB) is None


def test_marker_round_trip():
    assert parse_marker(make_marker(DB, 42), DB.upper()) == 42
    for junk in (None, "", "42", f"{DB}:x", f"other:{1}"):
        assert parse_marker(junk, DB) is None


# --- meetings booked in Outlook belong to their organizer -----------------------------


@pytest.mark.parametrize("kind", [FULL, DELTA])
def test_an_outlook_meeting_changed_in_odoo_is_never_patched(kind):
    synced = booking(1, origin=Origin.EXCHANGE)
    edited = booking(1, subject="Renamed in Odoo", origin=Origin.EXCHANGE)
    status = [binding(10, 1, "E1", synced=synced, origin=Origin.EXCHANGE)]
    listed = run([edited], [event("E1")], status, kind=kind)
    assert summary(listed) == [(K.UPDATE_LOCAL, 1, "E1")]
    assert listed.actions[0].changes == (
        FieldChange("subject", "Renamed in Odoo", "Board"),
    )
    unseen = run([edited], [], status, kind=DELTA)
    assert unseen.actions == ()
    for policy in ConflictPolicy:
        both = run(
            [edited], [event("E1", ck="ck2", subject="Moved")], status, policy=policy
        )
        assert [a.kind for a in both.actions] == [K.UPDATE_LOCAL], policy


@pytest.mark.parametrize("remote", [[event("E1")], [event("E1", ck="ck2")], []])
def test_an_outlook_meeting_cancelled_in_odoo_is_declined(remote):
    cancelled = booking(1, active=False, origin=Origin.EXCHANGE)
    status = [binding(10, 1, "E1", origin=Origin.EXCHANGE)]
    result = run([cancelled], remote, status)
    assert summary(result) == [(K.DECLINE_REMOTE, 1, "E1")]
    assert result.count(K.DELETE_REMOTE) == 0


def test_a_declined_meeting_is_not_imported_again_and_forgotten_once_gone():
    cancelled = booking(1, active=False, origin=Origin.EXCHANGE)
    declined = [binding(10, 1, "E1", origin=Origin.EXCHANGE, state=SyncState.DECLINED)]
    for kind in (FULL, DELTA):
        assert (
            run([cancelled], [event("E1", ck="ck9")], declined, kind=kind).actions == ()
        )
    assert run([cancelled], [], declined, kind=DELTA).actions == ()
    for remote, kind in (([RemoteItem.removal("E1")], DELTA), ([], FULL)):
        result = run([cancelled], remote, declined, kind=kind)
        assert summary(result) == [(K.FORGET, 1, "E1")]
