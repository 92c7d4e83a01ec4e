# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Chaos soak (issue 7): a busy organisation, a flaky Microsoft, and convergence.

A seeded driver acts like an organisation for ``ROOM_SOAK_OPERATIONS`` operations on
two synced rooms (Adams and Baker, app-only connection to the emulator):

- people, in Outlook (the emulator's behaviour methods): book single meetings and
  recurring series, move and shorten meetings, change or cancel one occurrence of a
  series, cancel a meeting or a whole series, delete a meeting outright, make a
  meeting private;
- staff, in Odoo: create, reschedule, cancel and delete bookings (a booking Odoo
  refuses, e.g. because the room is taken, is counted as ``refused``), and a booking
  manager cancels a meeting booked in Outlook (the room declines it);
- an Exchange manager removes a room's authorization and authorizes it again;
- the emulator expires delta tokens and access tokens now and then (refresh-token
  revocation is left out: it applies to delegated connections only, and these rooms
  use the app-only one);
- the sync runs in between (``calendar._sync()``, sometimes ``full=True``), while the
  emulator injects a random mix of 429/503 with ``Retry-After``, 504, connection
  resets, timeouts after the change was applied, 410 on delta and latency.

Then the faults stop and the sync runs until a cycle over every room plans nothing
(at most ``CONVERGENCE_CYCLES``), and the final state is checked against the
emulator's store and an oracle of what people and staff did:

- every live Odoo booking of a synced room has exactly one event in that room's
  calendar, with the same times; cancelled or deleted ones have none;
- every live Outlook meeting or occurrence in the window has exactly one active
  imported booking with the same times; a cancelled or deleted one has none;
- no duplicate on either side (subjects, transaction ids, bindings);
- nothing a person did is lost: the store still holds each person's last change
  (the sync never wrote an Outlook meeting back) and Odoo mirrors it;
- every round that failed left the room in ``error`` with a message, every item
  that failed left its binding in ``error`` with a message; after convergence
  nothing is left in error.

Time is simulated where the add-on waits for it: before a sync the driver sometimes
(always while converging) lets the retry time of failed bindings pass, and it ignores
the room's ``next_attempt_date`` back-off (the cron honours it). The Graph client's
sleeps (Retry-After, back-off) are recorded but not slept, so a run takes seconds.

A seed replays exactly: the same operations, the same faults on the same requests,
the same event ids. Everything the run does is one sequence of requests (the rounds
run one room at a time, in this thread), the emulator draws its faults from one
generator seeded by the run and its event ids from another (``store.seed_ids``), it
serves a ``$batch``'s items one at a time in request order (a schedule Graph may
also choose; ``batch_max_parallel=1``) and its real-time throttle is off (the soak
injects its own seeded 429s). Each run prints a fingerprint of its operations and
requests: two runs of a seed print the same one, and ``test_a_seed_replays_exactly``
checks it.

CI runs the default (150 operations, a fixed seed). On demand, one seed, longer::

    ROOM_SOAK_SEED=4242 ROOM_SOAK_OPERATIONS=20000 python3 -m pytest -p pytest_odoo \\
        --odoo-database=<db> --odoo-addons-path=<odoo>/addons,<repo> \\
        room_exchange_sync/tests/test_soak.py -q -s -k test_chaos_soak

or wide, many seeds (``A-B`` or a comma list) in one run, each rolled back after it,
ending with a one-line summary (``scripts/soak.py`` runs it for you)::

    ROOM_SOAK_SEEDS=1-200 ROOM_SOAK_OPERATIONS=300 python3 -m pytest ... \\
        room_exchange_sync/tests/test_soak.py -q -s -k test_chaos_soak

``ROOM_SOAK_FAULT_RATE`` (default 0.25) sets the share of Graph requests that fail.
A failing run prints its seed and the command that reproduces it.
"""

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import tagged

from ..models import room_exchange_connection
from .common import ADELE, ALEX, MEGAN, ROOM_ADAMS, RoomExchangeCase

_logger = logging.getLogger(__name__)

ROOM_BAKER = "room.baker@contoso.test"
PEOPLE = (ADELE[0], ALEX[0], MEGAN[0])
DEFAULT_SEED = 20261124
DEFAULT_OPERATIONS = 150
CONVERGENCE_CYCLES = 6
FAULT_KINDS = [
    "429",
    "503",
    "504",
    "reset",
    "timeout_after_apply",
    "delta_expired",
    "latency",
]
# (operation, weight)
OPERATIONS = [
    ("outlook_book", 14),
    ("outlook_book_series", 3),
    ("outlook_move", 8),
    ("outlook_shorten", 4),
    ("outlook_cancel", 4),
    ("outlook_delete", 2),
    ("outlook_private", 3),
    ("outlook_change_occurrence", 4),
    ("outlook_cancel_occurrence", 3),
    ("outlook_cancel_series", 1),
    ("odoo_create", 14),
    ("odoo_reschedule", 8),
    ("odoo_cancel", 4),
    ("odoo_delete", 3),
    ("odoo_change_room", 3),
    ("odoo_cancel_outlook_meeting", 2),
    ("room_reauthorize", 2),
    ("expire_delta", 2),
    ("expire_access_tokens", 1),
    ("sync", 18),
    ("sync_full", 3),
]


def utc(text):
    """A Graph ``dateTime`` (UTC) as a naive datetime to the second."""
    return datetime.fromisoformat(text[:19])


class Room:
    def __init__(self, name, resource, calendar, mailbox):
        self.name = name
        self.resource = resource
        self.calendar = calendar
        self.mailbox = mailbox
        self.removed = False
        self.back_after = 0


class SoakDriver:
    """Plays the organisation against one test case; keeps the oracle."""

    def __init__(self, case, seed, operations, fault_rate):
        self.case = case
        self.env = case.env
        self.emulator = case.emulator
        self.rng = random.Random(seed)
        self.seed = seed
        self.operations = operations
        self.fault_rate = fault_rate
        self.rooms = case.rooms
        self.day0 = datetime.combine(fields.Date.today(), datetime.min.time())
        self.counts = Counter()
        self.trace = []
        self.sync_outcomes = Counter()
        self.failures_seen = Counter()
        self.silent = []
        self.sleeps = []
        self.cycles = 0
        self.done = 0
        # Long runs spread over more days so that rooms do not fill up.
        self.horizon = min(360, max(24, operations // 40))
        self.serial = 0
        # Oracle. Odoo side: booking id -> (room index, name, start, stop) while live;
        # names of bookings staff cancelled or deleted.
        self.odoo_live = {}
        self.odoo_gone = set()
        # Outlook side: event id -> {"room", "start", "stop", "state"} for single
        # meetings (state: live / cancelled / deleted); series id -> {"room",
        # "occurrences": {day: [start, stop, state]}, "cancelled"}.
        self.singles = {}
        self.series = {}

    # helpers

    def log_op(self, kind):
        self.counts[kind] += 1

    def slot(self, minutes=(30, 60, 90, 120)):
        day = self.day0 + timedelta(days=self.rng.randint(2, self.horizon))
        start = day + timedelta(
            hours=self.rng.randint(6, 19), minutes=30 * self.rng.randint(0, 1)
        )
        return start, start + timedelta(minutes=self.rng.choice(minutes))

    def live_singles(self):
        return [k for k, v in self.singles.items() if v["state"] == "live"]

    def live_series(self):
        return [k for k, v in self.series.items() if not v["cancelled"]]

    # people, in Outlook

    def outlook_book(self):
        room_index = self.rng.randrange(len(self.rooms))
        start, stop = self.slot()
        sensitivity = "private" if self.rng.random() < 0.1 else None
        event = self.emulator.book_room(
            self.rng.choice(PEOPLE),
            self.rooms[room_index].mailbox,
            f"Outlook {self.next_serial()}",
            start.isoformat(),
            stop.isoformat(),
            sensitivity=sensitivity,
        )
        self.singles[event["id"]] = {
            "room": room_index,
            "start": start,
            "stop": stop,
            "state": "live",
        }

    def outlook_book_series(self):
        room_index = self.rng.randrange(len(self.rooms))
        start, stop = self.slot(minutes=(15, 30, 60))
        count = self.rng.randint(2, 4)
        event = self.emulator.book_room(
            self.rng.choice(PEOPLE),
            self.rooms[room_index].mailbox,
            f"Series {self.next_serial()}",
            start.isoformat(),
            stop.isoformat(),
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": count,
                    "startDate": start.date().isoformat(),
                },
            },
        )
        self.series[event["id"]] = {
            "room": room_index,
            "cancelled": False,
            "occurrences": {
                (start + timedelta(days=n)).date(): [
                    start + timedelta(days=n),
                    stop + timedelta(days=n),
                    "live",
                ]
                for n in range(count)
            },
        }

    def _pick_single(self):
        live = self.live_singles()
        if not live:
            return None, None
        event_id = self.rng.choice(sorted(live))
        return event_id, self.singles[event_id]

    def outlook_move(self):
        event_id, meeting = self._pick_single()
        if not event_id:
            return False
        start, stop = self.slot()
        subject = None
        if self.rng.random() < 0.3:
            subject = f"Outlook {self.next_serial()} (moved)"
        self.emulator.update_booking(
            self.rooms[meeting["room"]].mailbox,
            event_id,
            subject=subject,
            start=start.isoformat(),
            end=stop.isoformat(),
        )
        meeting.update(start=start, stop=stop)
        return True

    def outlook_shorten(self):
        event_id, meeting = self._pick_single()
        if not event_id or meeting["stop"] - meeting["start"] <= timedelta(minutes=15):
            return False
        stop = meeting["stop"] - timedelta(minutes=15)
        self.emulator.update_booking(
            self.rooms[meeting["room"]].mailbox,
            event_id,
            start=meeting["start"].isoformat(),
            end=stop.isoformat(),
        )
        meeting["stop"] = stop
        return True

    def outlook_cancel(self):
        event_id, meeting = self._pick_single()
        if not event_id:
            return False
        self.emulator.cancel_booking(self.rooms[meeting["room"]].mailbox, event_id)
        meeting["state"] = "cancelled"
        return True

    def outlook_delete(self):
        event_id, meeting = self._pick_single()
        if not event_id:
            return False
        self.emulator.store.delete_event(self.rooms[meeting["room"]].mailbox, event_id)
        meeting["state"] = "deleted"
        return True

    def outlook_private(self):
        event_id, meeting = self._pick_single()
        if not event_id:
            return False
        self.emulator.make_private(self.rooms[meeting["room"]].mailbox, event_id)
        return True

    def _pick_occurrence(self):
        live = self.live_series()
        if not live:
            return None, None, None
        series_id = self.rng.choice(sorted(live))
        series = self.series[series_id]
        days = sorted(d for d, o in series["occurrences"].items() if o[2] == "live")
        if not days:
            return None, None, None
        return series_id, series, self.rng.choice(days)

    def outlook_change_occurrence(self):
        series_id, series, day = self._pick_occurrence()
        if not series_id:
            return False
        occurrence = series["occurrences"][day]
        start = occurrence[0] + timedelta(minutes=30 * self.rng.choice((-2, -1, 1, 2)))
        stop = start + (occurrence[1] - occurrence[0])
        self.emulator.change_occurrence(
            self.rooms[series["room"]].mailbox,
            series_id,
            day,
            start=start.isoformat(),
            end=stop.isoformat(),
        )
        occurrence[0], occurrence[1] = start, stop
        return True

    def outlook_cancel_occurrence(self):
        series_id, series, day = self._pick_occurrence()
        if not series_id:
            return False
        self.emulator.change_occurrence(
            self.rooms[series["room"]].mailbox, series_id, day, cancel=True
        )
        series["occurrences"][day][2] = "deleted"
        return True

    def outlook_cancel_series(self):
        live = self.live_series()
        if not live:
            return False
        series_id = self.rng.choice(sorted(live))
        series = self.series[series_id]
        self.emulator.cancel_booking(self.rooms[series["room"]].mailbox, series_id)
        series["cancelled"] = True
        return True

    # staff, in Odoo

    def next_serial(self):
        self.serial += 1
        return self.serial

    def room_set(self):
        """One room mostly; now and then both (a booking of a room combination)."""
        if self.rng.random() < 0.15:
            return frozenset(range(len(self.rooms)))
        return frozenset({self.rng.randrange(len(self.rooms))})

    def odoo_create(self):
        rooms = self.room_set()
        start, stop = self.slot(minutes=(60, 120))
        name = f"Odoo {self.next_serial()}"
        try:
            with self.env.cr.savepoint():
                booking = self.case.book_in_odoo(rooms, start, stop, name)
        except Exception as error:  # noqa: BLE001 - Odoo refused it, as for a person
            self.counts["refused"] += 1
            _logger.debug("soak: booking refused: %s", error)
            return False
        self.odoo_live[booking.id] = (rooms, name, start, stop)
        return True

    def odoo_change_room(self):
        """Staff move a booking to another room (or combination)."""
        booking = self._pick_booking()
        if not booking:
            return False
        rooms, name, start, stop = self.odoo_live[booking.id]
        new_rooms = self.room_set()
        if new_rooms == rooms:
            return False
        try:
            with self.env.cr.savepoint():
                booking.combination_id = self.case.combinations[new_rooms]
                booking.flush_recordset()
        except Exception as error:  # noqa: BLE001 - Odoo refused it
            self.counts["refused"] += 1
            _logger.debug("soak: room change refused: %s", error)
            booking.invalidate_recordset()
            return False
        self.odoo_live[booking.id] = (new_rooms, name, start, stop)
        return True

    def _pick_booking(self):
        if not self.odoo_live:
            return None
        booking_id = self.rng.choice(sorted(self.odoo_live))
        return self.env["resource.booking"].browse(booking_id)

    def odoo_reschedule(self):
        booking = self._pick_booking()
        if not booking:
            return False
        rooms, name, _start, _stop = self.odoo_live[booking.id]
        start, stop = self.slot(minutes=(60, 120))
        try:
            with self.env.cr.savepoint():
                booking.write(
                    {"start": start, "duration": (stop - start).total_seconds() / 3600}
                )
                booking.flush_recordset()
        except Exception as error:  # noqa: BLE001 - Odoo refused it
            self.counts["refused"] += 1
            _logger.debug("soak: reschedule refused: %s", error)
            booking.invalidate_recordset()
            return False
        self.odoo_live[booking.id] = (rooms, name, start, stop)
        return True

    def odoo_cancel(self):
        booking = self._pick_booking()
        if not booking:
            return False
        booking.action_cancel()
        self.odoo_gone.add(self.odoo_live.pop(booking.id)[1])
        return True

    def odoo_delete(self):
        booking = self._pick_booking()
        if not booking:
            return False
        self.odoo_gone.add(self.odoo_live.pop(booking.id)[1])
        booking.unlink()
        return True

    def odoo_cancel_outlook_meeting(self):
        """A booking manager cancels a meeting booked in Outlook: the room declines
        it, and it leaves the room's calendar."""
        bindings = self.env["room.exchange.binding"].search(
            [
                ("origin", "=", "exchange"),
                ("external_id", "in", self.live_singles()),
                ("booking_id.active", "=", True),
            ],
            order="external_id",
        )
        if not bindings:
            return False
        binding = self.rng.choice(list(bindings))
        binding.booking_id.with_user(self.case.booking_manager).action_cancel()
        self.singles[binding.external_id]["state"] = "declined"
        return True

    # the Exchange manager, the emulator

    def room_reauthorize(self):
        """An Exchange manager removes a room's authorization; it is authorized
        again some operations later (see chaos())."""
        present = [room for room in self.rooms if not room.removed]
        if not present:
            return False
        room = self.rng.choice(present)
        room.resource.action_exchange_remove_authorization()
        room.removed = True
        room.back_after = self.done + self.rng.randint(3, 25)
        self.counts["room_removed"] += 1
        return True

    def authorize(self, room):
        try:
            with self.env.cr.savepoint():
                room.calendar._bind_mailbox(room.mailbox)
        except Exception as error:  # noqa: BLE001 - Graph failed: try again later
            self.counts["authorize_failed"] += 1
            self.failures_seen[f"authorize: {type(error).__name__}"] += 1
            return False
        room.removed = False
        self.counts["room_authorized"] += 1
        return True

    def expire_access_tokens(self):
        """Every access token answers 401: the client must sign in again."""
        self.emulator.identity.expire_access_tokens()
        return True

    def expire_delta(self):
        self.emulator.store.expire_delta_tokens(self.rng.choice(self.rooms).mailbox)
        return True

    # the sync

    def let_retry_time_pass(self):
        self.env["room.exchange.binding"].search([("sync_state", "=", "error")]).write(
            {"next_retry_date": fields.Datetime.now() - timedelta(seconds=1)}
        )

    def sync(self, full=False):
        for room in self.rooms:
            if room.removed:
                continue
            if self.rng.random() < 0.5:
                self.let_retry_time_pass()
            self.sync_room(room, full=full)
        return True

    def sync_full(self):
        return self.sync(full=True)

    def sync_room(self, room, full=False):
        calendar = room.calendar
        plan = calendar._sync(full=full)
        if plan is False:
            self.sync_outcomes["failed"] += 1
            if calendar.state != "error" or not calendar.last_error:
                self.silent.append(
                    f"round of {room.name} failed with state {calendar.state} and "
                    f"no message"
                )
            self.failures_seen[f"round: {(calendar.last_error or '')[:60]}"] += 1
        else:
            self.sync_outcomes["ok"] += 1
            if plan.needs_confirmation:
                self.sync_outcomes["needs_confirmation"] += 1
                if not calendar.last_error:
                    self.silent.append(
                        f"{room.name}: mass cancellation held back without a message"
                    )
        for binding in calendar.binding_ids.filtered(lambda b: b.sync_state == "error"):
            if not binding.sync_error:
                self.silent.append(f"binding {binding.id} in error without a message")
            self.failures_seen[f"binding: {binding.sync_error[:60]}"] += 1
        return plan

    # phases

    def chaos(self):
        kinds = [kind for kind, _weight in OPERATIONS]
        weights = [weight for _kind, weight in OPERATIONS]
        self.emulator.faults.set_random(
            seed=self.seed,
            rate=self.fault_rate,
            kinds=FAULT_KINDS,
            retry_after=1.0,
            hold=0.05,
        )
        while self.done < self.operations:
            for room in self.rooms:
                if room.removed and room.back_after <= self.done:
                    self.authorize(room)
            kind = self.rng.choices(kinds, weights)[0]
            if getattr(self, kind)() is False:
                continue
            self.log_op(kind)
            self.trace.append(kind)
            self.done += 1
        self.fault_stats = self.emulator.faults.stats()
        self.requests = self.emulator.counters().get("total", 0)
        self.fingerprint = self.replay_fingerprint()
        self.emulator.faults.clear()

    def replay_fingerprint(self):
        """What must be the same when a seed is run again: the operations, and each
        Graph request with its path (event ids included, query left out: delta
        tokens carry a salt), status and dropped connection."""
        requests = [
            (e["method"], e["path"].split("?")[0], e["status"], e.get("dropped"))
            for e in self.emulator.request_log
            if e["route"] != "identity"
        ]
        text = json.dumps([self.trace, requests], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def converge(self):
        """Faults off: authorize removed rooms, then sync until nothing is planned."""
        for room in self.rooms:
            if room.removed:
                self.case.assertTrue(self.authorize(room), "authorizing again failed")
        for cycle in range(1, CONVERGENCE_CYCLES + 1):
            self.cycles = cycle
            self.let_retry_time_pass()
            quiet = True
            for room in self.rooms:
                plan = self.sync_room(room)
                if plan is False:
                    quiet = False
                    continue
                if plan.needs_confirmation:
                    # An Exchange sync manager reads the warning and confirms.
                    self.counts["confirmed_cancellations"] += 1
                    room.calendar.action_confirm_cancellations()
                    quiet = False
                elif plan.actions:
                    quiet = False
            if quiet:
                return True
        return False

    def report(self):
        faults = {k: v for k, v in self.fault_stats.items() if v}
        return (
            f"Soak seed={self.seed}: {sum(self.counts[k] for k, _w in OPERATIONS)} "
            f"operations {dict(sorted(self.counts.items()))}; {self.requests} Graph "
            f"requests, faults injected {faults}; client waits {len(self.sleeps)} "
            f"({sum(self.sleeps):.0f}s not slept); sync rounds "
            f"{dict(self.sync_outcomes)}; failures made visible "
            f"{sum(self.failures_seen.values())} "
            f"({len(self.failures_seen)} distinct); "
            f"converged in {self.cycles} cycle(s); replay {self.fingerprint}."
        )

    # invariants

    def check(self):
        problems = list(self.silent)
        for index, room in enumerate(self.rooms):
            problems += self.check_room(index, room)
        problems += self.check_overlap_flags()
        return problems

    def check_room(self, index, room):
        problems = []
        calendar = room.calendar
        if calendar.state != "syncing":
            problems.append(f"state {calendar.state}: {calendar.last_error}")
        view = self.emulator.store.calendar_view(
            room.mailbox,
            calendar.window_start.replace(tzinfo=UTC),
            calendar.window_end.replace(tzinfo=UTC),
        )
        outlook, odoo_events = [], []
        for item in view:
            if (
                item["id"] in self.singles
                or item.get("seriesMasterId") in self.series
                or item["id"] in self.initial_events
            ):
                outlook.append(item)
            else:
                odoo_events.append(item)
        bindings = self.env["room.exchange.binding"].search(
            [("calendar_id", "=", calendar.id)]
        )
        by_event = {}
        for binding in bindings:
            if binding.sync_state != "synced":
                problems.append(
                    f"binding {binding.id} left {binding.sync_state}: "
                    f"{binding.sync_error}"
                )
            if binding.external_id:
                by_event.setdefault(binding.external_id, []).append(binding)
        for event_id, items in by_event.items():
            if len(items) > 1:
                problems.append(f"event {event_id} has {len(items)} bindings")
        problems += self.check_staff_bookings(index, room, odoo_events)
        problems += self.check_odoo_events(index, room, odoo_events)
        problems += self.check_outlook(index, room, outlook, by_event)
        return [f"{room.name}: {problem}" for problem in problems]

    def room_bookings(self, room, origin):
        return self.env["resource.booking"].search(
            [
                ("exchange_origin", "=", origin),
                ("active", "=", True),
                ("combination_id.resource_ids", "in", room.resource.ids),
            ]
        )

    def check_staff_bookings(self, index, room, odoo_events):
        """Every live staff booking: unchanged, one event at its times, bound."""
        problems = []
        Booking = self.env["resource.booking"].with_context(active_test=False)
        for booking_id, (rooms, title, b_start, b_stop) in self.odoo_live.items():
            if index not in rooms:
                continue
            booking = Booking.browse(booking_id)
            if not booking.exists() or not booking.active:
                problems.append(f"staff booking {title} lost in Odoo")
                continue
            if (booking.start, booking.stop) != (b_start, b_stop):
                problems.append(
                    f"staff booking {title} is {booking.start}-{booking.stop} "
                    f"instead of {b_start}-{b_stop}"
                )
            events = [e for e in odoo_events if e.get("subject") == title]
            if len(events) != 1:
                problems.append(f"{title} has {len(events)} events")
                continue
            event = events[0]
            times = (utc(event["start"]["dateTime"]), utc(event["end"]["dateTime"]))
            if times != (b_start, b_stop):
                problems.append(
                    f"event of {title} at {times} instead of {(b_start, b_stop)}"
                )
            binding = booking.exchange_binding_ids.filtered(
                lambda b: b.calendar_id == room.calendar
            )
            if binding.external_id != event["id"]:
                problems.append(f"{title} is not bound to its event")
        for booking in self.room_bookings(room, "odoo"):
            if booking.id not in self.odoo_live:
                problems.append(
                    f"active Odoo booking {booking.name} ({booking.id}) that no "
                    f"staff member left live"
                )
        return problems

    def check_odoo_events(self, index, room, odoo_events):
        """No event for a cancelled/deleted/moved-away booking, no duplicate."""
        problems = []
        expected_titles = {
            title
            for (rooms, title, _s, _e) in self.odoo_live.values()
            if index in rooms
        }
        for event in odoo_events:
            if event.get("isCancelled"):
                continue
            title = event.get("subject")
            if title in self.odoo_gone:
                problems.append(f"{title} was cancelled in Odoo, still has an event")
            elif title not in expected_titles:
                problems.append(f"unexpected event {title} {event['id']}")
        transaction_ids = Counter(
            e.get("transactionId") for e in odoo_events if e.get("transactionId")
        )
        for value, count in transaction_ids.items():
            if count > 1:
                problems.append(f"{count} events share transactionId {value}")
        return problems

    def expected_outlook(self, index):
        """({key: (start, stop)} of live meetings/occurrences, keys of gone ones);
        a key is an event id, or (series id, day) for an occurrence."""
        live, gone = {}, set()
        for event_id, meeting in self.singles.items():
            if meeting["room"] != index:
                continue
            if meeting["state"] == "live":
                live[event_id] = (meeting["start"], meeting["stop"])
            else:
                gone.add(event_id)
        for series_id, series in self.series.items():
            if series["room"] != index:
                continue
            for day, (o_start, o_stop, state) in series["occurrences"].items():
                key = (series_id, day)
                if series["cancelled"] or state != "live":
                    gone.add(key)
                else:
                    live[key] = (o_start, o_stop)
        return live, gone

    def check_outlook(self, index, room, outlook, by_event):
        """Each person's last change is in the store and mirrored by exactly one
        active booking; a cancelled meeting has none."""
        problems = []
        live, gone = self.expected_outlook(index)
        seen = set()
        for item in outlook:
            key = self.outlook_key(item, live, gone)
            times = (utc(item["start"]["dateTime"]), utc(item["end"]["dateTime"]))
            cancelled = bool(item.get("isCancelled"))
            active = self.env["resource.booking"].browse(
                [b.booking_id.id for b in by_event.get(item["id"], [])]
            )
            active = active.filtered("active")
            if key in live or (key not in gone and key in self.initial_events):
                seen.add(key)
                want = live.get(key, times)
                if cancelled or times != want:
                    problems.append(
                        f"Outlook meeting {key} lost the person's change: store has "
                        f"{times} cancelled={cancelled}, person set {want}"
                    )
                problems += self.check_import(key, item, times, active)
                continue
            if not cancelled:
                problems.append(
                    f"Outlook meeting {key} cancelled by its organizer is live again"
                )
            if active:
                problems.append(
                    f"Outlook meeting {key} was cancelled, booking {active.ids} "
                    f"still active"
                )
        calendar = room.calendar
        for key in set(live) - seen:
            if self.in_window(live[key], calendar.window_start, calendar.window_end):
                problems.append(f"Outlook meeting {key} missing from Exchange")
        imported = self.room_bookings(room, "exchange")
        expected = sum(1 for item in outlook if not item.get("isCancelled"))
        if len(imported) != expected:
            problems.append(
                f"{len(imported)} active imported bookings for {expected} live "
                f"Outlook meetings"
            )
        return problems

    def outlook_key(self, item, live, gone):
        master = item.get("seriesMasterId")
        if master not in self.series:
            return item["id"]
        key = (master, utc(item["start"]["dateTime"]).date())
        if key in live or key in gone:
            return key
        return self.occurrence_key(master, item)

    @staticmethod
    def check_import(key, item, times, active):
        if len(active) != 1:
            return [f"Outlook meeting {key} has {len(active)} active bookings"]
        if (active.start, active.stop) != times:
            return [
                f"booking of {key} is {active.start}-{active.stop}, the meeting {times}"
            ]
        subject = (
            "Private meeting"
            if item.get("sensitivity") == "private"
            else item.get("subject")
        )
        if active.name != subject:
            return [
                f"booking of {key} is named {active.name!r}, the meeting {subject!r}"
            ]
        return []

    def check_overlap_flags(self):
        """A booking is flagged iff, in one of its synced rooms, it holds the room at
        the same time as a booking of the other origin (Outlook vs Odoo)."""
        flagged = set()
        everyone = self.env["resource.booking"]
        for room in self.rooms:
            bookings = self.env["resource.booking"].search(
                [
                    ("combination_id.resource_ids", "in", room.resource.ids),
                    ("active", "=", True),
                ]
            )
            everyone |= bookings
            ordered = bookings.sorted(lambda b: (b.start, b.id))
            for index, first in enumerate(ordered):
                for second in ordered[index + 1 :]:
                    if second.start >= first.stop:
                        break
                    if first.exchange_origin != second.exchange_origin:
                        flagged.update((first.id, second.id))
        wrong = everyone.filtered(lambda b: b.exchange_overlap != (b.id in flagged))
        return [
            f"booking {b.name} ({b.id}, rooms "
            f"{b.combination_id.resource_ids.mapped('name')}) "
            f"exchange_overlap={b.exchange_overlap}"
            for b in wrong
        ]

    def occurrence_key(self, master, item):
        """The (series, day) an exception belongs to, by its time in the oracle."""
        times = (utc(item["start"]["dateTime"]), utc(item["end"]["dateTime"]))
        for day, (o_start, o_stop, _state) in self.series[master][
            "occurrences"
        ].items():
            if (o_start, o_stop) == times:
                return (master, day)
        return (master, times)

    @staticmethod
    def in_window(times, start, end):
        return times[0] < end and times[1] > start


@tagged("post_install", "-at_install")
class TestChaosSoak(RoomExchangeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.baker = cls.env["resource.resource"].create(
            {
                "name": "Baker",
                "resource_type": "material",
                "calendar_id": cls.working_time.id,
                "tz": "Europe/Brussels",
            }
        )

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        # Replayable runs: a $batch's items one at a time, in request order.
        self.emulator.set_switches(batch_max_parallel=1)
        self.addCleanup(self.emulator.set_switches, batch_max_parallel=4)
        self.addCleanup(self.emulator.store.seed_ids, None)
        connection = self.ready_connection("application")
        self.rooms = []
        combinations = []
        around_the_clock = self.env[
            "room.exchange.calendar"
        ]._around_the_clock_calendar(self.env.company)
        for name, resource, mailbox in (
            ("Adams", self.room, ROOM_ADAMS),
            ("Baker", self.baker, ROOM_BAKER),
        ):
            resource.write({"exchange_connection_id": connection.id})
            calendar = resource.exchange_calendar_id
            calendar._bind_mailbox(mailbox)
            self.assertEqual(calendar.state, "authorized")
            resource.calendar_id = around_the_clock
            combinations.append(calendar.combination_id)
            self.rooms.append(Room(name, resource, calendar, mailbox))
        both = self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set((self.room | self.baker).ids)]}
        )
        self.combinations = {
            frozenset({0}): combinations[0],
            frozenset({1}): combinations[1],
            frozenset({0, 1}): both,
        }
        self.booking_type = self.env["resource.booking.type"].create(
            {
                "name": "Meeting room",
                "resource_calendar_id": around_the_clock.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": combination.id})
                    for combination in self.combinations.values()
                ],
            }
        )
        self.requester = self.env["res.partner"].create({"name": "Requester"})

    def book_in_odoo(self, rooms, start, stop, name):
        return (
            self.env["resource.booking"]
            .with_context(tracking_disable=True)
            .create(
                {
                    "name": name,
                    "type_id": self.booking_type.id,
                    "combination_auto_assign": False,
                    "combination_id": self.combinations[rooms].id,
                    "partner_ids": [Command.set(self.requester.ids)],
                    "start": start,
                    "duration": (stop - start).total_seconds() / 3600,
                }
            )
        )

    def new_driver(self, seed, operations, fault_rate=0.25):
        driver = SoakDriver(self, seed, operations, fault_rate)
        window_start = datetime.now() - timedelta(days=30)
        driver.initial_events = set()
        for room in self.rooms:
            for item in self.emulator.store.calendar_view(
                room.mailbox,
                window_start.replace(tzinfo=UTC),
                (window_start + timedelta(days=500)).replace(tzinfo=UTC),
            ):
                driver.initial_events.add(item["id"])
        return driver

    def graph_client_recording_sleeps(self, driver):
        Connection = type(self.env["room.exchange.connection"])
        original = Connection._graph_client

        def graph_client(connection, token_source):
            client = original(connection, token_source)
            client.sleep = driver.sleeps.append
            return client

        return patch.object(Connection, "_graph_client", graph_client)

    def run_soak(self, seed, operations, rate):
        """One soak run from the state setUp left, replayable by its seed; returns
        (report, problems)."""
        self.emulator.store.seed_ids(seed)
        self.emulator.reset()
        self.emulator.throttle.configure(enabled=False)
        # Tokens of an earlier run were issued by the emulator before its reset.
        room_exchange_connection._APP_TOKEN_PROVIDERS.clear()
        for room in self.rooms:
            room.removed, room.back_after = False, 0
        driver = self.new_driver(seed, operations, rate)
        began = time.monotonic()
        try:
            with self.graph_client_recording_sleeps(driver):
                driver.chaos()
                converged = driver.converge()
        except Exception as error:
            self.emulator.faults.clear()
            raise AssertionError(
                f"soak crashed ({type(error).__name__}: {error}); reproduce: "
                f"{rerun_command(seed, operations)}"
            ) from error
        problems = driver.check()
        if not converged:
            problems.insert(0, f"no convergence within {CONVERGENCE_CYCLES} cycles")
        report = driver.report() + f" {time.monotonic() - began:.1f}s."
        return report, problems

    def run_soak_rolled_back(self, seed, operations, rate):
        """``run_soak``, then the database back to where it was."""
        outcome = []
        with contextlib.suppress(_RollBack):
            try:
                with self.env.cr.savepoint():
                    outcome.append(self.run_soak(seed, operations, rate))
                    raise _RollBack()
            finally:
                self.env.invalidate_all()
        return outcome[0]

    def test_chaos_soak(self):
        operations = int(os.environ.get("ROOM_SOAK_OPERATIONS") or DEFAULT_OPERATIONS)
        rate = float(os.environ.get("ROOM_SOAK_FAULT_RATE") or 0.25)
        seeds = os.environ.get("ROOM_SOAK_SEEDS")
        if seeds:
            self.run_wide(parse_seeds(seeds), operations, rate)
            return
        seed = int(os.environ.get("ROOM_SOAK_SEED") or DEFAULT_SEED)
        report, problems = self.run_soak(seed, operations, rate)
        sys.stdout.write(report + "\n")
        _logger.info("%s", report)
        if problems:
            self.fail(
                f"{report}\n{len(problems)} problem(s):\n- "
                + "\n- ".join(problems[:40])
                + f"\nReproduce: {rerun_command(seed, operations)}"
            )

    def run_wide(self, seeds, operations, rate):
        """Every seed, each rolled back after it; one line sums them up."""
        began = time.monotonic()
        failed = {}
        for seed in seeds:
            report, problems = self.run_soak_rolled_back(seed, operations, rate)
            _logger.info("%s", report)
            if problems:
                failed[seed] = problems
                sys.stdout.write(
                    f"{report}\n{len(problems)} problem(s):\n- "
                    + "\n- ".join(problems[:20])
                    + f"\nReproduce: {rerun_command(seed, operations)}\n"
                )
        summary = (
            f"Soak wide: {len(seeds)} seeds x {operations} operations "
            f"(fault rate {rate}): {len(seeds) - len(failed)} passed, {len(failed)} "
            f"failed{' (seeds ' + ', '.join(map(str, failed)) + ')' if failed else ''}"
            f" in {time.monotonic() - began:.0f}s."
        )
        sys.stdout.write(summary + "\n")
        self.assertFalse(failed, summary)

    def test_a_seed_replays_exactly(self):
        """Two runs of one seed: the same operations, the same requests with the
        same faults and answers, the same outcome."""
        first, first_problems = self.run_soak_rolled_back(DEFAULT_SEED, 60, 0.25)
        second, second_problems = self.run_soak_rolled_back(DEFAULT_SEED, 60, 0.25)
        fingerprint = re.compile(r"replay (\w+)")
        self.assertEqual(
            fingerprint.search(first).group(1), fingerprint.search(second).group(1)
        )
        # Operations, requests and faults (the client's back-off jitter aside).
        self.assertEqual(
            first.split("; client waits")[0], second.split("; client waits")[0]
        )
        numbers = re.compile(r"\d+")
        self.assertEqual(
            [numbers.sub("#", problem) for problem in first_problems],
            [numbers.sub("#", problem) for problem in second_problems],
        )


class _RollBack(Exception):
    """Leaves a savepoint without keeping what was done in it."""


def parse_seeds(text):
    """``"1-200"`` or ``"3,7,11"`` as a list of seeds."""
    seeds = []
    for part in text.split(","):
        low, _dash, high = part.strip().partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def rerun_command(seed, operations):
    return (
        f"ROOM_SOAK_SEED={seed} ROOM_SOAK_OPERATIONS={operations} "
        f"python3 -m pytest -p pytest_odoo --odoo-database=<db> "
        f"--odoo-addons-path=<odoo>/addons,<repo> "
        f"room_exchange_sync/tests/test_soak.py -q -s -k test_chaos_soak"
    )


@tagged("post_install", "-at_install")
class TestSoakReductions(TestChaosSoak):
    """Minimal deterministic reproductions of what the soak found."""

    def test_chaos_soak(self):
        """Run by TestChaosSoak only."""

    def test_a_seed_replays_exactly(self):
        """Run by TestChaosSoak only."""

    def at(self, days, hour):
        day = datetime.combine(fields.Date.today(), datetime.min.time())
        return day + timedelta(days=days, hours=hour)

    def sync_all(self):
        for room in self.rooms:
            self.assertTrue(room.calendar._sync(), room.calendar.last_error)

    def test_overlap_flag_of_a_two_room_booking(self):
        adams, _baker = self.rooms
        start = self.at(3, 9)
        booking = self.book_in_odoo(
            frozenset({0, 1}), start, start + timedelta(hours=1), "Odoo both"
        )
        self.emulator.book_room(
            ADELE[0],
            adams.mailbox,
            "Walk-in",
            start.isoformat(),
            (start + timedelta(minutes=30)).isoformat(),
        )
        self.sync_all()
        self.assertTrue(booking.exchange_overlap)
        self.sync_all()
        self.assertTrue(booking.exchange_overlap)

    def test_booking_moved_beyond_the_window_leaves_no_stale_event(self):
        adams, _baker = self.rooms
        start = self.at(3, 9)
        booking = self.book_in_odoo(
            frozenset({0}), start, start + timedelta(hours=1), "Odoo far"
        )
        self.sync_all()
        far = self.at(adams.calendar.connection_id.sync_future_days + 30, 9)
        booking.write({"start": far, "duration": 1})
        self.sync_all()
        self.sync_all()
        events = [
            e
            for e in self.emulator.store.snapshot(adams.mailbox)
            if e.get("subject") == "Odoo far"
        ]
        self.assertEqual(booking.exchange_binding_ids.sync_state, "synced")
        self.assertFalse(
            [e for e in events if utc(e["start"]["dateTime"]) == start],
            "the event still holds the room at the old time",
        )
        self.assertEqual([utc(e["start"]["dateTime"]) for e in events], [far])
