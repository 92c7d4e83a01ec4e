"""Hypothesis state machine: people edit both sides; planner plus tiny executor sync.

The Odoo side and the Exchange side are dictionaries; the Exchange side keeps a change
log that plays the role of a delta round (replays included) and dedupes creates by
``transactionId``. A sync may crash after a POST, before its binding is stored. After
every clean sync both sides hold the same live bookings, every binding links exactly one
live booking to one live event, and a second round (delta or full) plans nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from exchange_engine import (
    ActionKind,
    ConflictPolicy,
    LocalItem,
    Options,
    Origin,
    RemoteItem,
    RoundKind,
    StatusEntry,
    StorageEmpty,
    SyncState,
    payload_hash,
    plan,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

DB = "0b6f4c1e-aaaa-4bbb-8ccc-000000000001"
DAY = datetime(2026, 5, 4)
NOW = datetime(2026, 5, 1)
K = ActionKind

hours = st.integers(0, 20)
lengths = st.integers(1, 3)
subjects = st.sampled_from(["Board", "Standup", "Training"])


@dataclass
class Booking:
    start: datetime
    stop: datetime
    subject: str
    private: bool = False
    active: bool = True
    origin: Origin = Origin.ODOO

    def payload(self):
        return {
            "start": self.start,
            "stop": self.stop,
            "subject": self.subject,
            "private": self.private,
        }


@dataclass
class Event:
    start: datetime
    stop: datetime
    subject: str
    private: bool
    change_key: str
    ical_uid: str
    transaction_id: str | None = None
    marker: str | None = None
    series_master_id: str | None = None


class Exchange:
    """A room mailbox: events, a change log (the next delta round) and a counter."""

    def __init__(self):
        self.events: dict[str, Event] = {}
        self.log: list[RemoteItem] = []
        self.counter = 0

    def _next(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def item(self, event_id, *, with_marker=False):
        ev = self.events[event_id]
        return RemoteItem(
            event_id=event_id,
            change_key=ev.change_key,
            start=ev.start,
            stop=ev.stop,
            subject=ev.subject,
            is_private=ev.private,
            ical_uid=ev.ical_uid,
            series_master_id=ev.series_master_id,
            transaction_id=ev.transaction_id,
            marker=ev.marker if with_marker else None,
        )

    def _touch(self, event_id):
        self.events[event_id].change_key = self._next("ck")
        self.log.append(self.item(event_id))

    def create(self, values, *, transaction_id=None, marker=None, master=None):
        for event_id, ev in self.events.items():
            if transaction_id is not None and ev.transaction_id == transaction_id:
                return event_id
        event_id = self._next("AAMk")
        self.events[event_id] = Event(
            values["start"],
            values["stop"],
            values["subject"],
            values["private"],
            "",
            f"uid-{event_id}",
            transaction_id,
            marker,
            master,
        )
        self._touch(event_id)
        return event_id

    def update(self, event_id, values):
        ev = self.events[event_id]
        ev.start, ev.stop = values["start"], values["stop"]
        ev.subject, ev.private = values["subject"], values["private"]
        self._touch(event_id)

    def delete(self, event_id):
        if self.events.pop(event_id, None) is not None:
            self.log.append(RemoteItem.removal(event_id))


class SyncMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.bookings: dict[int, Booking] = {}
        self.exchange = Exchange()
        self.bindings: dict[int, StatusEntry] = {}
        self.next_id = 0
        self.clean = True

    def _new_id(self):
        self.next_id += 1
        return self.next_id

    # --- the Odoo side --------------------------------------------------------------

    def local_item(self, booking_id):
        b = self.bookings[booking_id]
        return LocalItem(
            booking_id,
            payload_hash(b.payload()),
            b.start,
            b.stop,
            b.subject,
            b.private,
            b.active,
            b.origin,
        )

    def live_bookings(self):
        return sorted(i for i, b in self.bookings.items() if b.active)

    def editable_bookings(self):
        """Odoo refuses edits to meetings booked in Outlook (only cancelling them)."""
        return [
            i for i in self.live_bookings() if self.bookings[i].origin is Origin.ODOO
        ]

    @rule(start=hours, length=lengths, subject=subjects)
    def staff_books_in_odoo(self, start, length, subject):
        at = DAY + timedelta(hours=start)
        self.bookings[self._new_id()] = Booking(
            at, at + timedelta(hours=length), subject
        )
        self.clean = False

    @precondition(lambda self: self.editable_bookings())
    @rule(
        data=st.data(),
        shift=st.integers(-2, 2),
        subject=subjects,
        private=st.booleans(),
    )
    def staff_edits_in_odoo(self, data, shift, subject, private):
        b = self.bookings[data.draw(st.sampled_from(self.editable_bookings()))]
        b.start += timedelta(hours=shift)
        b.stop += timedelta(hours=shift)
        b.subject, b.private = subject, private
        self.clean = False

    @precondition(lambda self: self.live_bookings())
    @rule(data=st.data())
    def staff_cancels_in_odoo(self, data):
        self.bookings[data.draw(st.sampled_from(self.live_bookings()))].active = False
        self.clean = False

    # --- the Exchange side ----------------------------------------------------------

    def event_ids(self):
        return sorted(self.exchange.events)

    @rule(start=hours, length=lengths, subject=subjects, private=st.booleans())
    def people_book_in_outlook(self, start, length, subject, private):
        at = DAY + timedelta(hours=start)
        self.exchange.create(
            {
                "start": at,
                "stop": at + timedelta(hours=length),
                "subject": subject,
                "private": private,
            }
        )
        self.clean = False

    @rule(start=hours, count=st.integers(2, 4), subject=subjects)
    def people_book_a_series(self, start, count, subject):
        master = f"M{self._new_id()}"
        for day in range(count):
            at = DAY + timedelta(days=day, hours=start)
            self.exchange.create(
                {
                    "start": at,
                    "stop": at + timedelta(hours=1),
                    "subject": subject,
                    "private": False,
                },
                master=master,
            )
        self.clean = False

    @precondition(lambda self: self.exchange.events)
    @rule(data=st.data(), shift=st.integers(-2, 2), subject=subjects)
    def people_edit_in_outlook(self, data, shift, subject):
        event_id = data.draw(st.sampled_from(self.event_ids()))
        ev = self.exchange.events[event_id]
        self.exchange.update(
            event_id,
            {
                "start": ev.start + timedelta(hours=shift),
                "stop": ev.stop + timedelta(hours=shift),
                "subject": subject,
                "private": ev.private,
            },
        )
        self.clean = False

    @precondition(lambda self: self.exchange.events)
    @rule(data=st.data())
    def people_delete_in_outlook(self, data):
        self.exchange.delete(data.draw(st.sampled_from(self.event_ids())))
        self.clean = False

    @precondition(
        lambda self: any(e.series_master_id for e in self.exchange.events.values())
    )
    @rule(data=st.data())
    def people_delete_a_series(self, data):
        masters = sorted(
            {
                e.series_master_id
                for e in self.exchange.events.values()
                if e.series_master_id
            }
        )
        master = data.draw(st.sampled_from(masters))
        for event_id, ev in list(self.exchange.events.items()):
            if ev.series_master_id == master:
                self.exchange.delete(event_id)
        self.clean = False

    @precondition(
        lambda self: any(
            e.event_id in self.exchange.events
            and e.booking_id in self.editable_bookings()
            for e in self.bindings.values()
        )
    )
    @rule(data=st.data(), odoo=subjects, outlook=subjects, shift=st.integers(-2, 2))
    def both_sides_edit_the_same_booking(self, data, odoo, outlook, shift):
        pairs = sorted(
            (e.booking_id, e.event_id)
            for e in self.bindings.values()
            if e.event_id in self.exchange.events
            and e.booking_id in self.editable_bookings()
        )
        booking_id, event_id = data.draw(st.sampled_from(pairs))
        self.bookings[booking_id].subject = odoo
        ev = self.exchange.events[event_id]
        self.exchange.update(
            event_id,
            {
                "start": ev.start + timedelta(hours=shift),
                "stop": ev.stop + timedelta(hours=shift),
                "subject": outlook,
                "private": ev.private,
            },
        )
        self.clean = False

    # --- sync -----------------------------------------------------------------------

    def round_items(self, kind, replay):
        if kind is RoundKind.FULL:
            items = [self.exchange.item(e, with_marker=True) for e in self.event_ids()]
        else:
            items = list(self.exchange.log)
            if replay:
                latest = {i.event_id: i for i in items}
                items += list(latest.values())[: len(latest) // 2 + 1]
        return items

    def make_plan(self, kind, policy, remote, **options):
        return plan(
            [self.local_item(i) for i in sorted(self.bookings)],
            remote,
            list(self.bindings.values()),
            round_kind=kind,
            policy=policy,
            options=Options(database_uuid=DB, confirm_mass_cancel=True, **options),
            now=NOW,
        )

    @rule(
        kind=st.sampled_from(list(RoundKind)),
        replay=st.booleans(),
        policy=st.sampled_from(
            [ConflictPolicy.ORIGIN, ConflictPolicy.ODOO, ConflictPolicy.EXCHANGE]
        ),
        crash=st.booleans(),
    )
    def sync(self, kind, replay, policy, crash):
        remote = self.round_items(kind, replay)
        result = self.make_plan(kind, policy, remote)
        if result.fatal is not None:
            assert isinstance(result.fatal, StorageEmpty) and not self.exchange.events
            assert result.actions == ()
            result = self.make_plan(kind, policy, remote, force_delete=True)
        consumed, self.exchange.log = self.exchange.log, []
        for action in result.actions:
            self.execute(action, crash=crash)
        crashed = crash and result.count(K.CREATE_REMOTE) > 0
        if crashed:
            # The shell stores the new deltaLink only after the round: replay it.
            self.exchange.log = consumed + self.exchange.log
        self.clean = not crashed

    # --- the tiny executor ----------------------------------------------------------

    def bind(self, action, event_id, booking_id, origin):
        ev = self.exchange.events[event_id]
        binding_id = action.binding_id or self._new_id()
        self.bindings[binding_id] = StatusEntry(
            binding_id=binding_id,
            booking_id=booking_id,
            event_id=event_id,
            change_key=ev.change_key,
            exported_hash=payload_hash(self.bookings[booking_id].payload()),
            origin=origin,
            ical_uid=ev.ical_uid,
            series_master_id=ev.series_master_id,
        )

    def replan_as_removed(self, action):
        """What the shell does on a 404: re-plan that binding with a removal."""
        result = plan(
            [self.local_item(action.booking_id)],
            [RemoteItem.removal(action.event_id)],
            [action.status],
            round_kind=RoundKind.INCREMENTAL,
            options=Options(database_uuid=DB),
            now=NOW,
        )
        for follow_up in result.actions:
            self.execute(follow_up)

    def execute(self, action, *, crash=False):
        kind, booking_id = action.kind, action.booking_id
        if kind is K.CREATE_REMOTE:
            event_id = self.exchange.create(
                self.bookings[booking_id].payload(),
                transaction_id=action.transaction_id,
                marker=action.marker,
            )
            if not crash:  # the answer is lost before the binding is committed
                self.bind(action, event_id, booking_id, Origin.ODOO)
        elif kind in (K.UPDATE_REMOTE, K.ADOPT_REMOTE):
            if action.event_id not in self.exchange.events:
                self.replan_as_removed(action)
                return
            self.exchange.update(action.event_id, self.bookings[booking_id].payload())
            origin = action.status.origin if action.status else Origin.ODOO
            self.bind(action, action.event_id, booking_id, origin)
        elif kind is K.CREATE_LOCAL:
            r = action.remote
            booking_id = self._new_id()
            self.bookings[booking_id] = Booking(
                r.start, r.stop, r.subject, r.is_private, origin=Origin.EXCHANGE
            )
            self.bind(action, r.event_id, booking_id, Origin.EXCHANGE)
        elif kind is K.UPDATE_LOCAL:
            b = self.bookings[booking_id]
            for change in action.changes:
                setattr(
                    b,
                    "private" if change.field == "is_private" else change.field,
                    change.new,
                )
            self.bind(action, action.event_id, booking_id, action.status.origin)
        elif kind is K.MARK_SYNCED:
            self.bind(action, action.event_id, booking_id, action.status.origin)
        elif kind is K.CANCEL_LOCAL:
            self.bookings[booking_id].active = False
            del self.bindings[action.binding_id]
        elif kind is K.DELETE_REMOTE:
            self.exchange.delete(action.event_id)
            self.bindings.pop(action.binding_id, None)
        elif kind is K.DECLINE_REMOTE:
            # The room declines the organizer's meeting, which leaves its calendar;
            # the shell keeps a declined binding until the removal is read, here
            # both happen at once.
            self.exchange.delete(action.event_id)
            self.bindings.pop(action.binding_id, None)
        elif kind is K.FORGET:
            del self.bindings[action.binding_id]
        else:
            raise AssertionError(f"unexpected {action}")

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def both_sides_agree_after_a_clean_sync(self):
        if not self.clean:
            return
        live = set(self.live_bookings())
        events = self.exchange.events
        entries = list(self.bindings.values())
        assert sorted(e.booking_id for e in entries) == sorted(live)
        assert sorted(e.event_id for e in entries) == sorted(events)
        for entry in entries:
            b, ev = self.bookings[entry.booking_id], events[entry.event_id]
            assert (b.start, b.stop, b.subject, b.private) == (
                ev.start,
                ev.stop,
                ev.subject,
                ev.private,
            )
            assert entry.change_key == ev.change_key
            assert entry.exported_hash == payload_hash(b.payload())
            assert entry.state is SyncState.SYNCED

    @invariant()
    def a_second_round_plans_nothing(self):
        if not self.clean:
            return
        for kind in RoundKind:
            remote = self.round_items(kind, replay=True)
            result = self.make_plan(kind, ConflictPolicy.ORIGIN, remote)
            if result.fatal is None:
                assert result.actions == (), result.actions
                assert result.orphans == ()


SyncMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None
)
TestSyncMachine = SyncMachine.TestCase
