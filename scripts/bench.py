"""Sync benchmark: the real two-way sync against a naive baseline, in one run.

Usage::

    make bench                          # = python3 scripts/bench.py
    python3 scripts/bench.py --bookings 200 --latency 20 --imports 50,200 \\
        [--no-memory] [--no-update] [--details] [--emulator-in-process]
    python3 scripts/bench.py --export [--export-bookings 2000] [--export-rooms 10] \\
        [--export-large [--export-large-bookings 20000]] [--export-budget 400/4] \\
        [--export-budget-bookings 800] [--latency 20] [--no-memory] \\
        [--emulator-in-process]

Needs the test database made by ``make setup`` (room_exchange_sync_test, or
$ODOO_TEST_DB): it is copied into a throwaway database (room_exchange_bench_<pid>),
where the addon is updated to the working tree's code (--no-update skips that), and
which is dropped at the end. The Microsoft emulator (tests/emulator) runs over HTTPS
in a process of its own (``python -m tests.emulator``, driven through its admin API
under /_emulator/), as Microsoft's servers would: its CPU work does not compete with
Odoo's for this process's GIL, so the wall times are Odoo's and the network's, and
the baseline runs against the same emulator in the same run. --emulator-in-process
runs it on a thread of the bench's process instead, as before. It adds a fixed
latency to every Graph HTTP request (--latency, ms; a $batch envelope pays it once),
so that round trips dominate as with the real Graph. Odoo runs in the bench's process
through its ORM (one cursor, SUPERUSER).

Scenarios:

- export, naive baseline: N bookings of one room pushed with one sequential POST per
  booking through the same GraphClient (``client.send(create_event_request(...))``,
  as Odoo's own Outlook sync does), each followed by writing its binding; rolled
  back afterwards;
- export, sync: the same N bookings pushed by ``room.exchange.calendar._sync()`` (delta
  read, engine plan, ``GraphClient.batch`` of 20);
- sync #2: the next round reads back the echo of its own N writes;
- idle: one more ``_sync()`` with nothing to do (targets: 1 Graph request, <= 10 SQL
  queries per room);
- import k: k meetings booked in Outlook (``emulator.book_room``), then one ``_sync()``
  (a first, full round), for each k of --imports; rolled back afterwards.

Bulk export (--export runs these instead of the scenarios above; several minutes, as
the baseline sends one request per booking, and the traced pass and --export-large
repeat the set-up):

- export, naive baseline: --export-bookings bookings spread over --export-rooms rooms
  (the emulator's default rooms, then rooms added with ``emulator.add_room``; the
  app-only app's RBAC scope is lifted), one sequential POST per booking as above;
- export, wizard preview: ``room.exchange.export`` opened on the rooms as the list
  action does, ``action_preview()`` (reads Exchange only);
- export, cron: ``action_run()`` then ``room.exchange.export.run._cron_export()``, the
  product's own path, with real commits (``ir.cron._commit_progress`` outside a cron
  just commits) in the throwaway database; the export's pacing is off
  (export_budget_requests 0), chunk size the product's default;
- export, paced: --export-budget-bookings more bookings of one room exported the same
  way while the emulator enforces --export-budget (requests/seconds per app and
  mailbox) and export_budget_requests/_seconds say the same: sustained rate =
  requests the mailbox received / wall time, and 429s;
- memory: a second, traced pass of the export for --export-bookings, and with
  --export-large one for --export-large-bookings (peak MB of the cron's run).

Targets printed (met / NOT met, never asserted): >= 18x fewer round trips and >= 30x
shorter wall time than the baseline, peak memory flat (at most x2 for x10 bookings),
paced rate >= 90% of the budget with no 429, every booking exported exactly once.

Columns: Graph req = Graph operations (a $batch item counts as one), round trips =
HTTP requests the process made (Graph + token/OpenID discovery, the part in brackets),
429 = throttled answers, SQL = queries executed on the cursor (savepoints included; the
block ends with cr.flush(), so pending ORM writes and precommit hooks count), SQL/item
= per exported booking or imported meeting, peak MB = tracemalloc peak above the start
of the scenario in the bench's process, i.e. Odoo's side only (the emulator runs in
its own; with --emulator-in-process its allocations count too).
tracemalloc slows Python code down about 2-3x, so the scenarios run twice, each pass in
a fresh database and emulator: wall times and counts come from an untraced pass, peak
MB from a second, traced one (--no-memory skips it). Ratios are baseline / sync.
Nothing is asserted: the target lines are informative and the exit status is 0 unless
the bench itself failed (1, e.g. "run make setup first").

Sample output (defaults: N=200, 20 ms latency; about 60 s in all with set-up, update and
the traced pass; addon at commit 9561dbd, with the emulator then in the bench's
process)::

    room_exchange_sync bench: N=200 bookings, latency 20 ms/Graph request, imports k=50,200

    | scenario                       | Graph req | round trips [auth] | 429 | wall s |  SQL | SQL/item | peak MB | x round trips | x wall | x SQL | x peak MB |
    |--------------------------------|-----------|--------------------|-----|--------|------|----------|---------|---------------|--------|-------|-----------|
    | export: naive 1 POST/booking   |       200 |            202 [2] |   0 |   4.98 |  211 |      1.1 |     1.2 |               |        |       |           |
    | export: _sync() ($batch of 20) |       201 |             13 [2] |   0 |   1.47 | 2029 |     10.1 |     4.0 |         15.5x |   3.4x |  0.1x |      0.3x |
    | sync #2: echo of own writes    |         4 |              6 [2] |   0 |   0.20 |   18 |          |     2.1 |               |        |       |           |
    | idle: nothing to do            |         1 |              3 [2] |   0 |   0.12 |   18 |          |     1.4 |               |        |       |           |
    | import k=50: 1st sync          |         1 |              3 [2] |   0 |   0.62 | 1136 |     22.7 |     1.0 |               |        |       |           |
    | import k=200: 1st sync         |         4 |              6 [2] |   0 |   2.24 | 4419 |     22.1 |     2.8 |               |        |       |           |

      export: naive 1 POST/booking: 200 events in Adams
      export: _sync() ($batch of 20): create_remote=200
      sync #2: echo of own writes: nothing to do
      idle: nothing to do: nothing to do
      import k=50: 1st sync: create_local=50
      import k=200: 1st sync: create_local=200

    import growth: 22.7 SQL/item at k=50, 22.1 at k=200; total x3.9 for x4 items (linear: a constant cost per item); wall 12.5 vs 11.2 ms/item

    target export round trips reduced ~N/20 = 10x: Graph HTTP requests 200 -> 11 = 18.2x (with auth 15.5x): met
    target idle cycle 1 Graph request: 1 (+2 token/discovery requests): met
    target idle cycle <= 10 SQL queries per room: 18: NOT met
    429 answers seen: 0
"""  # noqa: E501

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_support import (  # noqa: E402
    ADELE,
    ROOM_ADAMS,
    TEMPLATE_DB,
    BenchSetupError,
    Measurement,
    Meter,
    add_run_options,
    bench_mailboxes,
    configure_odoo,
    load_registry,
    mailbox_usage,
    set_up_connection,
    start_emulator,
    throwaway_database,
)

SLOTS_PER_DAY = 8  # one-hour bookings from 07:00 to 15:00 UTC
IDLE_QUERY_TARGET = 10


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/bench.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--bookings", type=int, default=200, help="N bookings exported (200)"
    )
    parser.add_argument(
        "--imports",
        default="50,200",
        help="comma-separated numbers of Outlook meetings imported (50,200)",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the second, tracemalloc pass (no peak MB column)",
    )
    add_run_options(parser)
    group = parser.add_argument_group("bulk export (--export runs only these)")
    group.add_argument(
        "--export",
        action="store_true",
        help="bench the Outlook/Exchange Bulk Export (wizard + export cron) instead "
        "of the sync scenarios",
    )
    group.add_argument(
        "--export-bookings", type=int, default=2000, help="bookings exported (2000)"
    )
    group.add_argument(
        "--export-rooms", type=int, default=10, help="rooms they are spread over (10)"
    )
    group.add_argument(
        "--export-large",
        action="store_true",
        help="also measure the peak memory of a larger export (--export-large-bookings"
        "; takes minutes)",
    )
    group.add_argument(
        "--export-large-bookings",
        type=int,
        default=20000,
        help="bookings of the --export-large pass (20000)",
    )
    group.add_argument(
        "--export-budget",
        default="400/4",
        help="scaled-down mailbox budget the emulator enforces for the pacing "
        "scenario, requests/seconds (400/4); 0 skips that scenario",
    )
    group.add_argument(
        "--export-budget-bookings",
        type=int,
        default=800,
        help="bookings of one room exported under that budget (800)",
    )
    parser.add_argument(
        "--details", action="store_true", help="print Graph routes and SQL writes"
    )
    args = parser.parse_args(argv)
    args.imports = [int(k) for k in args.imports.split(",") if k.strip()]
    if args.bookings < 1 or any(k < 1 for k in args.imports):
        parser.error("--bookings and --imports need positive numbers")
    if min(args.export_bookings, args.export_rooms, args.export_large_bookings) < 1:
        parser.error("--export-bookings/-rooms/-large-bookings need positive numbers")
    try:
        requests, seconds = (args.export_budget.split("/") + ["600"])[:2]
        args.export_budget = (int(requests), float(seconds))
    except ValueError:
        parser.error("--export-budget is requests/seconds, e.g. 400/4")
    return args


# -- Odoo set-up (as room_exchange_sync/tests/test_sync.py setUp) -----------------


def slot(index, first_day):
    """The index-th one-hour slot: 8 a day from 07:00 UTC, from first_day on."""
    day = first_day + timedelta(days=index // SLOTS_PER_DAY)
    return datetime.combine(day, datetime.min.time()) + timedelta(
        hours=7 + index % SLOTS_PER_DAY
    )


def set_up_bound_room(env, connection, mailbox, name="Bench room"):
    """A room bound to ``mailbox`` with a 24/7 working time; returns its calendar."""
    working_time = env["resource.calendar"].create(
        {"name": f"{name} office hours", "tz": "Europe/Brussels"}
    )
    room = env["resource.resource"].create(
        {
            "name": name,
            "resource_type": "material",
            "calendar_id": working_time.id,
            "tz": "Europe/Brussels",
        }
    )
    room.write({"exchange_connection_id": connection.id})
    calendar = room.exchange_calendar_id
    calendar._bind_mailbox(mailbox)
    if calendar.state != "authorized":
        raise BenchSetupError(f"binding {mailbox} failed: {calendar.last_error}")
    room.calendar_id = calendar._around_the_clock_calendar(env.company)
    return calendar


def set_up_booking_type(env, calendars):
    """A booking type offering every room's combination, and a requester."""
    from odoo import Command

    booking_type = env["resource.booking.type"].create(
        {
            "name": "Bench meeting room",
            "resource_calendar_id": calendars[:1].room_id.calendar_id.id,
            "duration": 1,
            "combination_rel_ids": [
                Command.create({"combination_id": calendar.combination_id.id})
                for calendar in calendars
            ],
        }
    )
    requester = env["res.partner"].create({"name": "Bench requester"})
    return booking_type, requester


def set_up_room(env, emulator):
    """A ready app-only connection to the emulator, a room bound to Adams with a 24/7
    working time, a booking type and a requester; returns (calendar, type, partner)."""
    connection = set_up_connection(env, emulator)
    calendar = set_up_bound_room(env, connection, ROOM_ADAMS)
    booking_type, requester = set_up_booking_type(env, calendar)
    return calendar, booking_type, requester


def create_bookings(
    env,
    calendar,
    booking_type,
    requester,
    count,
    first_day,
    prefix="Odoo booking",
    first_index=0,
):
    from odoo import Command

    return env["resource.booking"].create(
        [
            {
                "name": f"{prefix} {index + 1}",
                "type_id": booking_type.id,
                "combination_auto_assign": False,
                "combination_id": calendar.combination_id.id,
                "partner_ids": [Command.set(requester.ids)],
                "start": slot(index, first_day),
                "duration": 1.0,
            }
            for index in range(first_index, first_index + count)
        ]
    )


def create_bookings_in_chunks(
    registry, calendar_id, type_id, requester_id, count, first_day, prefix, chunk=250
):
    """``create_bookings`` in committed chunks, each in a transaction of its own;
    returns (ids, names). resource_booking gives each new booking's meeting an
    environment of its own, and Odoo looks a new environment up among all those of
    its transaction: one create of thousands of bookings takes quadratic time."""
    import odoo
    from odoo import api

    ids, names = [], []
    for offset in range(0, count, chunk):
        with registry.cursor() as cr:
            env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
            bookings = create_bookings(
                env,
                env["room.exchange.calendar"].browse(calendar_id),
                env["resource.booking.type"].browse(type_id),
                env["res.partner"].browse(requester_id),
                min(chunk, count - offset),
                first_day,
                prefix=prefix,
                first_index=offset,
            )
            ids += bookings.ids
            names += bookings.mapped("name")
    return ids, names


# -- scenarios -------------------------------------------------------------------


def sync(calendar, measurement):
    plan = calendar._sync()
    if plan is False:
        raise RuntimeError(f"_sync() failed: {calendar.last_error}")
    measurement.note = (plan.summary() + measurement.note)[:70]
    return plan


def naive_export(env, calendar, bookings):
    """One POST per booking with the sync's own GraphClient and payloads, then one
    binding written per booking, as a per-item sync would."""
    from odoo import fields

    from odoo.addons.room_exchange_sync import engine
    from odoo.addons.room_exchange_sync.graph import create_event_request
    from odoo.addons.room_exchange_sync.sync import SyncRound
    from odoo.addons.room_exchange_sync.sync.local import Payloads

    calendar = calendar.sudo()
    client = calendar._graph_client()
    # Payloads exactly as the sync builds them.
    sync_round = SyncRound(calendar)
    payloads = Payloads(
        env, sync_round._payload_settings(), {}, sync_round.settings.now
    )
    Binding = env["room.exchange.binding"].sudo()
    now = fields.Datetime.now()
    for booking in bookings:
        payload = payloads.of_record(booking)
        event = client.send(
            create_event_request(
                calendar.mailbox,
                payload,
                transaction_id=f"odoo-bench-{booking.id}",
                marker=engine.make_marker(
                    sync_round.settings.database_uuid, booking.id
                ),
            )
        )
        Binding.create(
            {
                "calendar_id": calendar.id,
                "booking_id": booking.id,
                "origin": "odoo",
                "external_id": event["id"],
                "remote_etag": event.get("changeKey"),
                "ical_uid": event.get("iCalUId"),
                "local_hash": engine.payload_hash(payload),
                "sync_state": "synced",
                "sync_date": now,
            }
        )


def run(args):
    configure_odoo(args.log_level)
    results = run_pass(args, memory=False)
    if not args.no_memory:
        print("bench: again with tracemalloc, for the peak MB column", file=sys.stderr)
        traced = run_pass(args, memory=True)
        for key, m in results.items():
            other = traced[key]
            m.peak_mb = other.peak_mb
            if (other.queries, other.round_trips) != (m.queries, m.round_trips):
                m.note += (
                    f" (traced pass: {other.queries} SQL, {other.round_trips} round "
                    "trips)"
                )
    report(args, results)


def run_pass(args, memory):
    """All scenarios once, in a fresh database and emulator; returns the
    measurements by key."""
    import odoo
    from odoo import api

    latency = args.latency / 1000.0
    budget = max(10000, 10 * (args.bookings + sum(args.imports)))
    emulator = start_emulator(latency, budget, in_process=args.emulator_in_process)
    meter = None
    results: dict[str, Measurement] = {}
    try:
        meter = Meter(emulator, memory=memory, texts=args.details and not memory)
        with throwaway_database() as dbname:
            print(
                f"bench: database {dbname} (copy of {TEMPLATE_DB}), emulator "
                f"{emulator.base_url} ({emulator.where}), latency "
                f"{args.latency:g} ms",
                file=sys.stderr,
            )
            registry = load_registry(dbname, update=args.update)
            with registry.cursor() as cr:
                setup_env = api.Environment(
                    cr, odoo.SUPERUSER_ID, {"tracking_disable": True}
                )
                env = api.Environment(cr, odoo.SUPERUSER_ID, {})  # as the cron
                started = time.perf_counter()
                calendar, booking_type, requester = set_up_room(setup_env, emulator)
                cr.commit()
                # As the cron: the room found by search(), hence a sound prefetch set
                # (a record kept across commits through room.exchange_calendar_id has
                # none, and then every binding is read with its own SELECT).
                calendar = env["room.exchange.calendar"].search(
                    [("id", "=", calendar.id)]
                )
                first_day = datetime.now().date() + timedelta(days=2)

                # Import: k Outlook meetings, one first (full) round; rolled back.
                for k in args.imports:
                    emulator.reset()
                    for index in range(k):
                        start = slot(index, first_day)
                        emulator.book_room(
                            ADELE,
                            ROOM_ADAMS,
                            f"Outlook meeting {index + 1}",
                            start.isoformat(),
                            (start + timedelta(hours=1)).isoformat(),
                        )
                    with meter.measure(f"import k={k}: 1st sync", cr) as m:
                        sync(calendar, m)
                    m.items = k
                    imported = env["resource.booking"].search_count(
                        [("exchange_origin", "=", "exchange")]
                    )
                    if imported != k:
                        m.note = f"only {imported}/{k} imported! " + m.note
                    results[f"import{k}"] = m
                    cr.rollback()
                    cr.reset()

                # Export: N bookings made in Odoo (committed set-up).
                emulator.reset()
                bookings = create_bookings(
                    setup_env,
                    calendar,
                    booking_type,
                    requester,
                    args.bookings,
                    first_day,
                )
                cr.commit()
                print(
                    f"bench: set-up done in {time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )

                with meter.measure("export: naive 1 POST/booking", cr) as m:
                    naive_export(env, calendar, bookings.with_env(env))
                m.items = args.bookings
                m.note = f"{len(emulator.snapshot(ROOM_ADAMS))} events in Adams"
                results["baseline"] = m
                cr.rollback()
                cr.reset()
                emulator.reset()

                with meter.measure("export: _sync() ($batch of 20)", cr) as m:
                    sync(calendar, m)
                m.items = args.bookings
                results["export"] = m
                events = len(emulator.snapshot(ROOM_ADAMS))
                if events != args.bookings:
                    m.note = f"{events}/{args.bookings} events! " + m.note
                cr.commit()

                with meter.measure("sync #2: echo of own writes", cr) as m:
                    sync(calendar, m)
                results["echo"] = m
                cr.commit()

                with meter.measure("idle: nothing to do", cr) as m:
                    sync(calendar, m)
                results["idle"] = m
                cr.commit()
    finally:
        emulator.stop()
        if meter is not None:
            meter.close()
    return results


# -- bulk export (--export) ------------------------------------------------------

EXPORT_CHECKS = {}  # label -> problems seen (duplicates, missing events...)


def export_settings(env, budget=None):
    """The export's pacing: ``budget`` = (requests, seconds), or None for the
    product's default (10,000 requests per 600 s and mailbox); the chunk size
    stays the product's default."""
    from odoo.addons.room_exchange_sync import sync
    from odoo.addons.room_exchange_sync.models import room_exchange_export_run as export

    params = env["ir.config_parameter"].sudo()
    requests, seconds = budget or (export.DEFAULT_BUDGET, export.DEFAULT_BUDGET_SECONDS)
    params.set_param(export.PARAM_BUDGET, str(requests))
    params.set_param(export.PARAM_BUDGET_SECONDS, str(seconds))
    sync.MAILBOX_BUDGET.forget()
    return env["room.exchange.export.run"]._settings()


def export_check(emulator, calendars, bookings_by_mailbox):
    """Problems with the exported events: missing, duplicated, unbound."""
    problems = []
    for calendar in calendars:
        if calendar.export_run_id.state != "done":
            problems.append(
                f"{calendar.mailbox}: export {calendar.export_run_id.state}"
            )
    for mailbox, names in bookings_by_mailbox.items():
        subjects = collections.Counter(
            event.get("subject") for event in emulator.snapshot(mailbox)
        )
        missing = [name for name in names if not subjects[name]]
        twice = [name for name in names if subjects[name] > 1]
        if missing or twice:
            problems.append(
                f"{mailbox}: {len(missing)} missing, {len(twice)} duplicated"
            )
    return problems


def run_export_wizard(env, rooms):
    """The wizard as the rooms' list action opens it: preview, then Run the Export
    (which only queues the rooms for the cron job)."""
    wizard = (
        env["room.exchange.export"]
        .with_context(active_model="resource.resource", active_ids=rooms.ids)
        .create({})
    )
    wizard.action_preview()
    return wizard


def export_pass(args, count, *, memory, baseline, budget_check):
    """One bulk export of ``count`` bookings spread over --export-rooms rooms in a
    fresh database and emulator: the naive baseline (optional), the wizard's
    preview, the export cron job, then (optional) a one-room export under a
    scaled-down mailbox budget. Returns the measurements by key."""
    import odoo
    from odoo import api

    latency = args.latency / 1000.0
    rooms_count = args.export_rooms
    emulator = start_emulator(
        latency,
        10000,
        log_limit=max(20000, 2 * count + 5 * args.export_budget[0]),
        in_process=args.emulator_in_process,
    )
    results: dict[str, Measurement] = {}
    meter = None
    try:
        mailboxes = bench_mailboxes(emulator, rooms_count)
        with throwaway_database() as dbname:
            print(
                f"bench: export of {count} bookings in {rooms_count} rooms, database "
                f"{dbname}, emulator {emulator.where}, latency {args.latency:g} ms"
                + (" (tracemalloc)" if memory else ""),
                file=sys.stderr,
            )
            registry = load_registry(dbname, update=args.update)
            with registry.cursor() as cr:
                setup_env = api.Environment(
                    cr, odoo.SUPERUSER_ID, {"tracking_disable": True}
                )
                env = api.Environment(cr, odoo.SUPERUSER_ID, {})  # as the cron
                started = time.perf_counter()
                connection = set_up_connection(setup_env, emulator)
                calendars = setup_env["room.exchange.calendar"]
                for index, mailbox in enumerate(mailboxes):
                    calendars |= set_up_bound_room(
                        setup_env, connection, mailbox, f"Bench room {index + 1}"
                    )
                booking_type, requester = set_up_booking_type(setup_env, calendars)
                first_day = datetime.now().date() + timedelta(days=2)
                cr.commit()
                per_room = {}
                names = {}
                for index, calendar in enumerate(calendars):
                    share = count // rooms_count + (index < count % rooms_count)
                    per_room[calendar.id], names[calendar.mailbox] = (
                        create_bookings_in_chunks(
                            registry,
                            calendar.id,
                            booking_type.id,
                            requester.id,
                            share,
                            first_day,
                            prefix=f"Room {index + 1} booking",
                        )
                    )
                # The product's default pacing (bursts fit in its budget).
                export_settings(setup_env)
                cr.commit()
                print(
                    f"bench: set-up done in {time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
                meter = Meter(emulator, memory=memory)
                calendars = env["room.exchange.calendar"].search(
                    [("id", "in", calendars.ids)], order="id"
                )

                if baseline:
                    label = "export: naive 1 POST/booking"
                    with meter.measure(label, cr) as m:
                        for calendar in calendars:
                            bookings = env["resource.booking"].browse(
                                per_room[calendar.id]
                            )
                            naive_export(env, calendar, bookings)
                    m.items = count
                    events = sum(len(emulator.snapshot(b)) for b in mailboxes)
                    m.note = f"{events} events in {rooms_count} rooms"
                    results["baseline"] = m
                    cr.rollback()
                    cr.reset()
                    emulator.reset()
                    bench_mailboxes(emulator, rooms_count)

                rooms = calendars.room_id
                with meter.measure("export: wizard preview (reads)", cr) as m:
                    wizard = run_export_wizard(env, rooms)
                m.items = count
                m.note = (
                    f"{wizard.to_export_count} bookings to export, "
                    f"{wizard.overlap_count} overlaps"
                )
                results["preview"] = m
                wizard.action_run()
                cr.commit()
                label = f"export: cron ({count} bookings, {rooms_count} rooms)"
                with meter.measure(label, cr) as m:
                    env["room.exchange.export.run"]._cron_export()
                m.items = count
                calendars.invalidate_recordset()
                problems = export_check(emulator, calendars, names)
                done = sum(calendars.export_run_id.mapped("exported_count"))
                m.note = f"{done} exported" + (
                    f"; PROBLEMS: {'; '.join(problems[:3])}" if problems else ""
                )
                EXPORT_CHECKS[label] = problems
                results["export"] = m
                cr.commit()

                if budget_check and args.export_budget[0]:
                    results["budget"] = export_under_budget(
                        args, env, cr, meter, emulator, calendars[:1], booking_type
                    )
    finally:
        emulator.stop()
        if meter is not None:
            meter.close()
    return results


def export_under_budget(args, env, cr, meter, emulator, calendar, booking_type):
    """One room's export, paced by the product under the budget the emulator
    enforces (--export-budget): its sustained rate, and 429s."""
    budget, seconds = args.export_budget
    count = args.export_budget_bookings
    requester = env["res.partner"].search([("name", "=", "Bench requester")])
    days = -(-args.export_bookings // args.export_rooms // SLOTS_PER_DAY)
    first_day = datetime.now().date() + timedelta(days=days + 4)
    bookings = create_bookings(
        env(context={"tracking_disable": True}),
        calendar,
        booking_type,
        requester,
        count,
        first_day,
        prefix="Paced booking",
    )
    _chunk, paced = export_settings(env, (budget, seconds))
    cr.commit()
    run_export_wizard(env, calendar.room_id).action_run()
    cr.commit()
    emulator.configure_throttle(budget=budget, window_seconds=seconds)
    emulator.reset_throttle()
    label = f"export: paced, budget {budget}/{seconds:g} s"
    with meter.measure(label, cr) as m:
        env["room.exchange.export.run"]._cron_export()
    m.items = count
    usage = mailbox_usage(emulator, calendar.mailbox)
    calendar.invalidate_recordset()
    problems = export_check(
        emulator, calendar, {calendar.mailbox: bookings.mapped("name")}
    )
    EXPORT_CHECKS[label] = problems
    m.usage = usage
    m.note = (
        f"{usage['requests']} requests to {calendar.mailbox}, "
        f"{usage['throttled']} throttled, export budget {paced[0]} per {paced[1]:g} s"
        + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
    )
    cr.commit()
    return m


def run_export(args):
    configure_odoo(args.log_level)
    results = export_pass(
        args, args.export_bookings, memory=False, baseline=True, budget_check=True
    )
    peaks = {}
    if not args.no_memory:
        sizes = [args.export_bookings]
        if args.export_large:
            sizes.append(args.export_large_bookings)
        for count in sizes:
            print(f"bench: export of {count} with tracemalloc", file=sys.stderr)
            traced = export_pass(
                args, count, memory=True, baseline=False, budget_check=False
            )
            peaks[count] = traced
        for key in ("preview", "export"):
            results[key].peak_mb = peaks[args.export_bookings][key].peak_mb
    report_export(args, results, peaks)


def _table(header, table):
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            )
            + " |"
        )

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print(line(cells))


def report_export(args, results, peaks):
    base, export = results["baseline"], results["export"]
    rows = [base, results["preview"], export] + (
        [results["budget"]] if "budget" in results else []
    )
    header = [
        "scenario",
        "Graph req",
        "round trips [auth]",
        "429",
        "wall s",
        "SQL",
        "SQL/item",
        "peak MB",
        "x round trips",
        "x wall",
    ]
    table = []
    for m in rows:
        ratios = ["", ""]
        if m is export:
            ratios = [
                _ratio(base.round_trips, m.round_trips),
                _ratio(base.wall, m.wall),
            ]
        table.append([*_measurement_cells(m), *ratios])
    print()
    print(
        f"room_exchange_sync bench, bulk export: {args.export_bookings} bookings in "
        f"{args.export_rooms} rooms, latency {args.latency:g} ms/Graph request, "
        "export_chunk_size and pacing (10,000 requests per 600 s and mailbox) "
        "default, but in the paced row"
    )
    print()
    _table(header, table)
    print()
    for m in rows:
        if m.note.strip():
            print(f"  {m.label}: {m.note.strip()}")
    if len(peaks) > 1:
        print()
        for count, traced in peaks.items():
            m = traced["export"]
            print(
                f"  memory, export of {count}: peak {m.peak_mb:.1f} MB "
                f"(traced pass: {m.wall:.1f} s, {m.queries} SQL, {m.round_trips} "
                f"round trips; {m.note.strip()})"
            )

    def target(text, met):
        print(f"target {text}: {'met' if met else 'NOT met'}")

    print()
    ratio = base.round_trips / max(export.round_trips, 1)
    target(
        f"round trips >= 18x fewer than the baseline: {base.round_trips} -> "
        f"{export.round_trips} = {ratio:.1f}x",
        ratio >= 18,
    )
    ratio = base.wall / max(export.wall, 1e-9)
    target(
        f"wall time >= 30x shorter than the baseline: {base.wall:.2f} s -> "
        f"{export.wall:.2f} s = {ratio:.1f}x",
        ratio >= 30,
    )
    if len(peaks) > 1:
        (small, a), (large, b) = list(peaks.items())[0], list(peaks.items())[-1]
        a, b = a["export"].peak_mb, b["export"].peak_mb
        # "Flat": x10 bookings may not cost more than 2x the memory.
        target(
            f"memory flat as bookings grow: peak {a:.1f} MB at {small}, {b:.1f} MB "
            f"at {large} (x{b / max(a, 1e-9):.1f} for x{large / small:g} bookings; "
            "flat = at most x2)",
            b <= 2 * a,
        )
    else:
        print("target memory flat as bookings grow: not measured (--export-large)")
    if "budget" in results:
        m = results["budget"]
        budget, seconds = args.export_budget
        rate = m.usage["requests"] / max(m.wall, 1e-9)
        share = rate / (budget / seconds)
        target(
            f"paced export >= 90% of the mailbox budget ({budget / seconds:g} req/s) "
            f"with no 429: {m.usage['requests']} requests in {m.wall:.2f} s = "
            f"{rate:.1f} req/s = {share:.0%}, {m.usage['throttled']} x 429",
            share >= 0.9 and not m.usage["throttled"] and not m.throttled,
        )
    problems = [p for found in EXPORT_CHECKS.values() for p in found]
    target(
        "every booking exported once (no duplicate, none missing)"
        + (f": {'; '.join(problems[:5])}" if problems else ""),
        not problems,
    )
    print(f"429 answers seen: {sum(m.throttled for m in rows)}")


# -- report ----------------------------------------------------------------------


def _measurement_cells(m):
    """A scenario's columns from Graph req to peak MB (the ratios follow)."""
    return [
        m.label,
        str(m.graph_requests),
        f"{m.round_trips} [{m.auth_http}]",
        str(m.throttled),
        f"{m.wall:.2f}",
        str(m.queries),
        f"{m.queries / m.items:.1f}" if m.items else "",
        "-" if m.peak_mb is None else f"{m.peak_mb:.1f}",
    ]


def _ratio(a, b):
    if a is None or b is None:
        return "-"
    if b == 0:
        return "inf" if a else "-"
    return f"{a / b:.1f}x"


def _counts(pairs):
    return ", ".join(f"{key} {value}" for key, value in pairs)


def report(args, results):
    base, export = results["baseline"], results["export"]
    rows = [results["baseline"], export, results["echo"], results["idle"]] + [
        results[f"import{k}"] for k in args.imports
    ]
    header = [
        "scenario",
        "Graph req",
        "round trips [auth]",
        "429",
        "wall s",
        "SQL",
        "SQL/item",
        "peak MB",
        "x round trips",
        "x wall",
        "x SQL",
        "x peak MB",
    ]
    table = []
    for m in rows:
        ratios = ["", "", "", ""]
        if m is export:
            ratios = [
                _ratio(base.round_trips, m.round_trips),
                _ratio(base.wall, m.wall),
                _ratio(base.queries, m.queries),
                _ratio(base.peak_mb, m.peak_mb),
            ]
        table.append([*_measurement_cells(m), *ratios])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            )
            + " |"
        )

    print()
    print(
        f"room_exchange_sync bench: N={args.bookings} bookings, latency "
        f"{args.latency:g} ms/Graph request, imports k="
        + ",".join(map(str, args.imports))
    )
    print()
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print(line(cells))
    print()
    for m in rows:
        if m.note.strip():
            print(f"  {m.label}: {m.note.strip()}")

    if args.details:
        for m in rows:
            print(f"\n{m.label}")
            print("  Graph:", _counts(sorted(m.routes.items())))
            print("  SQL verbs:", _counts(m.verbs.most_common()))
            print("  SQL writes:", _counts(m.writes.most_common(12)))
        idle = results["idle"]
        print(f"\nidle round, its {idle.queries} queries (count, first 150 chars):")
        for text, count in idle.texts.most_common():
            print(f"  {count:3d}  {text}")

    if len(args.imports) >= 2:
        (k1, k2) = args.imports[0], args.imports[-1]
        a, b = results[f"import{k1}"], results[f"import{k2}"]
        growth = (b.queries / k2) / max(a.queries / k1, 1e-9)
        shape = (
            "faster than linear"
            if growth > 1.25
            else "sub-linear"
            if growth < 0.8
            else "linear: a constant cost per item"
        )
        print(
            f"\nimport growth: {a.queries / k1:.1f} SQL/item at k={k1}, "
            f"{b.queries / k2:.1f} at k={k2}; total "
            f"x{b.queries / max(a.queries, 1):.1f}"
            f" for x{k2 / k1:g} items ({shape}); wall {a.wall / k1 * 1000:.1f} vs "
            f"{b.wall / k2 * 1000:.1f} ms/item"
        )

    print()
    target = args.bookings / 20
    graph_ratio = base.graph_http / max(export.graph_http, 1)
    met = graph_ratio >= 0.9 * target
    print(
        f"target export round trips reduced ~N/20 = {target:g}x: Graph HTTP requests "
        f"{base.graph_http} -> {export.graph_http} = {graph_ratio:.1f}x "
        f"(with auth {_ratio(base.round_trips, export.round_trips)}): "
        f"{'met' if met else 'NOT met'}"
    )
    idle = results["idle"]
    met = idle.graph_http == 1 and idle.graph_requests == 1
    print(
        f"target idle cycle 1 Graph request: {idle.graph_http} "
        f"(+{idle.auth_http} token/discovery requests): {'met' if met else 'NOT met'}"
    )
    met = idle.queries <= IDLE_QUERY_TARGET
    print(
        f"target idle cycle <= {IDLE_QUERY_TARGET} SQL queries per room: "
        f"{idle.queries}: {'met' if met else 'NOT met'}"
    )
    throttled = sum(m.throttled for m in rows)
    print(f"429 answers seen: {throttled}")


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.export:
            run_export(args)
        else:
            run(args)
    except BenchSetupError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
