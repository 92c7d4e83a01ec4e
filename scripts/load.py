"""Load test (issue 7): many rooms, two cron workers syncing concurrently.

Usage::

    make load                           # = python3 scripts/load.py (200 rooms x 50)
    python3 scripts/load.py --rooms 20 --bookings-per-room 10     # quick, < 1 minute
    python3 scripts/load.py --rooms 200 --bookings-per-room 50 --cycles 4 \\
        --latency 20 [--no-update] [--log-level warn]

Needs the test database made by ``make setup`` (room_exchange_sync_test, or
$ODOO_TEST_DB): it is copied into a throwaway database (room_exchange_bench_<pid>),
the addon is updated there to the working tree's code (--no-update skips it), and the
copy is dropped at the end. The Microsoft emulator (tests/emulator) runs in this
process over HTTPS with --rooms extra room mailboxes (room.load001@contoso.test...),
empty calendars, the app-only daemon's RBAC scope opened to every mailbox, and a fixed
latency per Graph request.

Set-up (this process, through the ORM): one ready app-only connection, --rooms rooms
each bound to its own mailbox (``_bind_mailbox``) with a 24/7 working time, one booking
type and --bookings-per-room future one-hour bookings per room, committed.

Then two "cron workers" run: two OS processes (``scripts/load.py --worker``), each with
its own registry and cursor, each calling ``env["room.exchange.calendar"]._cron_sync()``
once per cycle, at the same time, with the product's real commits
(``ir.cron._commit_progress`` commits after each group of rooms synced side by side;
``_try_lock`` skips a room another worker holds). Cycle 1 is the initial export of every booking; the next ones
have nothing to do (idle). Between two cycles the cron's interval passes: the rooms'
last rounds are moved that far back, so that they are due again. Each worker reports the rooms it synced (``_sync_steps``
rounds), the rooms it found locked, and the SQL queries it ran (``cr.sql_log_count``:
in each room's own stretches of its round, and in all, with the lock, the search and
the commits); Graph requests
per mailbox come from the emulator's counters (a ``$batch`` item counts as one
request of its mailbox).

Columns: due = rooms ``_cron_sync`` had to process; synced = rounds (both
workers); twice = rooms synced more than once in the cycle; starved = due rooms synced
by no worker; locked = ``_try_lock`` refusals; Graph/sync = Graph requests of the
room mailboxes / rounds (token requests excluded), then per distinct room and
the most one mailbox got; SQL/sync = queries of the rounds / rounds, and
in brackets all the workers' queries (search, locks, commits too) / rounds.
Budgets of the sync issue for an idle room: 1 Graph request and <= 10 SQL queries.
Nothing is asserted: the exit status is 0 unless the script itself failed (1, e.g.
"run make setup first").

Sample output (``--rooms 20 --bookings-per-room 10``: about 40 s with set-up and the
addon update; 20 ms latency, 2 CPUs, working tree of 2026-11-24)::

    | cycle | kind   | due | synced (per worker) | twice | starved | locked | Graph/sync [/room, max] | SQL/sync [all] | wall s |
    |-------|--------|-----|---------------------|-------|---------|--------|-------------------------|----------------|--------|
    |     1 | export |  20 |    22 (      11+11) |     2 |       0 |     18 |     11.00 [12.10,  13] |  29.8 [  37.2] |   2.91 |
    |     2 | idle   |  20 |    39 (      20+19) |    19 |       0 |      1 |      1.00 [ 1.95,   2] |  11.1 [  14.2] |   2.55 |
    |     3 | idle   |  20 |    37 (      18+19) |    17 |       0 |      3 |      1.00 [ 1.85,   2] |  11.1 [  14.4] |   2.10 |

    set-up 14.5 s; events in the room calendars at the end: 200 (expected 200)
    cycle 1: synced twice: room.load002@contoso.test, room.load015@contoso.test
    cycle 2: synced twice: room.load002@contoso.test, room.load003@contoso.test, ...
    cycle 3: synced twice: room.load002@contoso.test, room.load003@contoso.test, ...

    every room processed exactly once per cycle: NOT met
    target idle room 1 Graph request: 1.95 per room: NOT met
    target idle room <= 10 SQL queries: 11.1 in _sync, 14.4 with lock/search/commit: NOT met

The defaults (``make load``: 200 rooms x 50 bookings, set-up about 5 minutes, the
cycles 45 s)::

    | cycle | kind   | due | synced (per worker) | twice | starved | locked | Graph/sync [/room, max] | SQL/sync [all] | wall s |
    |-------|--------|-----|---------------------|-------|---------|--------|-------------------------|----------------|--------|
    |     1 | export | 200 |   203 (    102+101) |     3 |       0 |    197 |     51.25 [52.02,  53] |  70.2 [  78.1] |  25.16 |
    |     2 | idle   | 200 |   236 (    118+118) |    36 |       0 |    164 |      1.00 [ 1.18,   2] |  11.0 [  16.1] |   8.24 |
    |     3 | idle   | 200 |   268 (    134+134) |    68 |       0 |    132 |      1.00 [ 1.34,   2] |  11.0 [  15.5] |   9.32 |

    set-up 288.7 s; events in the room calendars at the end: 10000 (expected 10000)

(Figures from before issue 18, which changed the scheduling: ``_cron_sync`` now asks
for the due rooms before every group and a room just synced is no longer due, see
scripts/bench_campus.py. Then, a room synced twice in a cycle: ``_cron_sync`` listed
the due rooms once, and a room
another worker has finished and committed is no longer locked, so the slower worker
syncs it again: 1.00 Graph request per ``_sync`` call, but up to 2 per room. Odoo
itself never runs one ``ir.cron`` in two workers at once: its job lock is
``FOR NO KEY UPDATE SKIP LOCKED``.)
"""  # noqa: E501

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_support import (  # noqa: E402
    APP_ONLY_APP,
    REPO_ROOT,
    TEMPLATE_DB,
    BenchSetupError,
    add_run_options,
    configure_odoo,
    load_registry,
    set_up_connection,
    throwaway_database,
)

IDLE_GRAPH_TARGET = 1
IDLE_QUERY_TARGET = 10
SLOTS_PER_DAY = 8


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/load.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rooms", type=int, default=200, help="rooms (200)")
    parser.add_argument(
        "--bookings-per-room",
        type=int,
        default=50,
        help="future bookings per room (50)",
    )
    parser.add_argument(
        "--cycles",
        type=int,
        default=3,
        help="sync cycles: the first exports, the others are idle (3)",
    )
    parser.add_argument("--workers", type=int, default=2, help="cron workers (2)")
    add_run_options(parser, emulator_in_process=False)
    parser.add_argument(
        "--details",
        action="store_true",
        help="print the SQL statements of one room's _sync() in each cycle",
    )
    # internal: one cron worker process
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rooms < 1 or args.bookings_per_room < 0 or args.cycles < 1:
        parser.error("--rooms and --cycles need positive numbers")
    if args.workers < 1:
        parser.error("--workers needs a positive number")
    return args


def room_address(index):
    return f"room.load{index + 1:03d}@contoso.test"


# -- the emulator ------------------------------------------------------------------


def start_emulator(args):
    """The default scenario without its meetings, plus --rooms room mailboxes, with
    the app-only daemon allowed on every mailbox (rbac_scope null)."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    from tests.emulator import EmulatorServer

    path = os.path.join(REPO_ROOT, "tests", "emulator", "scenarios", "default.json")
    with open(path, encoding="utf-8") as handle:
        scenario = json.load(handle)
    scenario["events"] = []
    scenario["rooms"] += [
        {
            "email": room_address(index),
            "display_name": f"Load room {index + 1:03d}",
            "capacity": 8,
            "time_zone": "UTC",
        }
        for index in range(args.rooms)
    ]
    for app in scenario["apps"]:
        if app["client_id"] == APP_ONLY_APP:
            app["rbac_scope"] = None
    budget = max(10000, 20 * args.bookings_per_room)
    server = EmulatorServer(
        scenario=scenario,
        latency=args.latency / 1000.0 or None,
        throttle_options={"budget": budget, "max_concurrent": 4},
        log_limit=1000,
    ).start()
    os.environ["REQUESTS_CA_BUNDLE"] = server.ca_bundle_path
    os.environ["CURL_CA_BUNDLE"] = server.ca_bundle_path
    return server


# -- set-up (this process) ---------------------------------------------------------


def set_up(env, server, args):
    """Connection, rooms bound to their mailboxes, bookings; returns the calendar
    ids by mailbox."""
    from odoo import Command

    connection = set_up_connection(env, server, "Emulator (load)")
    working_time = env["resource.calendar"].create(
        {"name": "Load office hours", "tz": "UTC"}
    )
    around_the_clock = None
    calendars = env["room.exchange.calendar"]
    for index in range(args.rooms):
        room = env["resource.resource"].create(
            {
                "name": f"Load room {index + 1:03d}",
                "resource_type": "material",
                "calendar_id": working_time.id,
                "tz": "UTC",
            }
        )
        room.write({"exchange_connection_id": connection.id})
        calendar = room.exchange_calendar_id
        calendar._bind_mailbox(room_address(index))
        if calendar.state != "authorized":
            raise BenchSetupError(
                f"binding {room_address(index)} failed: {calendar.last_error}"
            )
        around_the_clock = around_the_clock or calendar._around_the_clock_calendar(
            env.company
        )
        room.calendar_id = around_the_clock
        calendars |= calendar
    env.cr.commit()
    requester = env["res.partner"].create({"name": "Load requester"})
    first_day = datetime.now().date() + timedelta(days=2)
    for done, calendar in enumerate(calendars, start=1):
        # One booking type per room: a type shared by every room's combination
        # makes each booking's availability check look at all of them (slow).
        booking_type = env["resource.booking.type"].create(
            {
                "name": f"Load meeting room {done:03d}",
                "resource_calendar_id": around_the_clock.id,
                "duration": 1,
                "combination_rel_ids": [
                    Command.create({"combination_id": calendar.combination_id.id})
                ],
            }
        )
        env["resource.booking"].create(
            [
                {
                    "name": f"Load booking {calendar.id}-{index + 1}",
                    "type_id": booking_type.id,
                    "combination_auto_assign": False,
                    "combination_id": calendar.combination_id.id,
                    "partner_ids": [Command.set(requester.ids)],
                    "start": datetime.combine(
                        first_day + timedelta(days=index // SLOTS_PER_DAY),
                        datetime.min.time(),
                    )
                    + timedelta(hours=7 + index % SLOTS_PER_DAY),
                    "duration": 1.0,
                }
                for index in range(args.bookings_per_room)
            ]
        )
        env.cr.commit()
        env.invalidate_all()
        if done % 20 == 0 or done == len(calendars):
            print(
                f"load: set-up: bookings of {done}/{len(calendars)} rooms",
                file=sys.stderr,
            )
    return {calendar.mailbox.lower(): calendar.id for calendar in calendars}


# -- one cron worker (a subprocess) ------------------------------------------------


def worker_main(args):
    """Read 'cycle N' lines on stdin; for each, run ``_cron_sync()`` once and print
    one JSON line of what happened."""
    configure_odoo(args.log_level)
    import odoo
    from odoo import api

    registry = load_registry(args.db)
    Calendar = registry["room.exchange.calendar"]
    original_sync, original_lock = Calendar._sync_steps, Calendar._try_lock
    record = {}

    def counting_sync(self, *a, **kw):
        """``_sync_steps``, counting the queries of this room's own stretches (the
        cron runs rooms side by side: their stretches interleave)."""
        steps = original_sync(self, *a, **kw)
        queries, started = 0, time.perf_counter()
        thread = threading.current_thread()
        hooks = list(getattr(thread, "query_hooks", ()))
        texts = []
        first = args.details and not record["statements"]

        def hook(_cr, query, _params, _start, _delay):
            text = query.decode() if isinstance(query, bytes) else str(query)
            texts.append(" ".join(text.split())[:160])

        value, error = None, None
        try:
            while True:
                before = self.env.cr.sql_log_count
                if first:
                    thread.query_hooks = [*hooks, hook]
                try:
                    work = steps.throw(error) if error else steps.send(value)
                except StopIteration as stop:
                    return stop.value
                finally:
                    thread.query_hooks = hooks
                    queries += self.env.cr.sql_log_count - before
                try:
                    value, error = (yield work), None
                except Exception as exc:  # noqa: BLE001 - handed to the round
                    value, error = None, exc
        finally:
            if texts:
                record["statements"] = texts
            record["synced"].append(
                [self.id, queries, time.perf_counter() - started, self.state]
            )

    def counting_lock(self):
        locked = original_lock(self)
        record["refused"].extend((self - locked).ids)
        return locked

    Calendar._sync_steps = counting_sync
    Calendar._try_lock = counting_lock
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        record.clear()
        record.update(synced=[], refused=[], due=None, error=None, statements=[])
        with registry.cursor() as cr:
            env = api.Environment(cr, odoo.SUPERUSER_ID, {})
            model = env["room.exchange.calendar"]
            before = cr.sql_log_count
            started = time.perf_counter()
            try:
                # what the cron's search finds due, read before it runs
                record["due"] = model.search_count(
                    [
                        ("sync_enabled", "=", True),
                        ("state", "in", ("authorized", "syncing", "error")),
                    ]
                )
                before = cr.sql_log_count
                model._cron_sync()
                cr.commit()
            except Exception:  # noqa: BLE001 - reported, the run goes on
                record["error"] = traceback.format_exc()[-2000:]
                cr.rollback()
            record["wall"] = time.perf_counter() - started
            record["sql"] = cr.sql_log_count - before
        print(json.dumps(record), flush=True)
    return 0


def start_workers(args, dbname):
    workers = []
    for _ in range(args.workers):
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"]
            + [f"--db={dbname}", f"--log-level={args.log_level}"]
            + (["--details"] if args.details else []),
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        workers.append(process)
    for process in workers:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("a worker process died at start (see stderr)")
    return workers


def run_cycle(workers):
    for process in workers:
        process.stdin.write("cycle\n")
        process.stdin.flush()
    results = []
    for process in workers:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("a worker process died during a cycle (see stderr)")
        results.append(json.loads(line))
    return results


def stop_workers(workers):
    for process in workers:
        try:
            process.stdin.close()
            process.wait(timeout=30)
        except Exception:  # noqa: BLE001
            process.kill()
            process.wait()


# -- the run -----------------------------------------------------------------------


def interval_passes(registry, calendar_ids):
    """The sync cron's interval passes (for the scheduler, whose due rooms depend on
    the time since their last round): the rooms' last rounds move that far back."""
    import odoo
    from odoo import api

    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        polled, _notified = env["room.exchange.calendar"]._poll_intervals()
        cr.execute(
            "UPDATE room_exchange_calendar SET last_sync_date = last_sync_date - %s"
            " WHERE id = ANY(%s)",
            [polled, calendar_ids],
        )


def mailbox_counts(emulator, mailboxes):
    by_mailbox = emulator.counters().get("by_mailbox", {})
    folded = collections.Counter()
    for key, value in by_mailbox.items():
        folded[str(key).lower()] += value
    return {mailbox: folded.get(mailbox, 0) for mailbox in mailboxes}


def run(args):
    import odoo
    from odoo import api

    configure_odoo(args.log_level)
    server = start_emulator(args)
    emulator = server.emulator
    workers = []
    rows = []
    try:
        with throwaway_database() as dbname:
            print(
                f"load: database {dbname} (copy of {TEMPLATE_DB}), emulator "
                f"{server.base_url}, {args.rooms} rooms x {args.bookings_per_room} "
                f"bookings, {args.workers} workers, latency {args.latency:g} ms",
                file=sys.stderr,
            )
            started = time.perf_counter()
            registry = load_registry(dbname, update=args.update)
            with registry.cursor() as cr:
                env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
                calendar_ids = set_up(env, server, args)
                cr.commit()
            setup_wall = time.perf_counter() - started
            print(f"load: set-up done in {setup_wall:.1f} s", file=sys.stderr)
            mailboxes = list(calendar_ids)
            by_id = {cid: mailbox for mailbox, cid in calendar_ids.items()}
            workers = start_workers(args, dbname)
            for cycle in range(1, args.cycles + 1):
                if cycle > 1:
                    interval_passes(registry, list(by_id))
                before = mailbox_counts(emulator, mailboxes)
                cycle_started = time.perf_counter()
                results = run_cycle(workers)
                wall = time.perf_counter() - cycle_started
                after = mailbox_counts(emulator, mailboxes)
                rows.append(
                    summarise(cycle, results, before, after, by_id, wall, emulator)
                )
                print(f"load: cycle {cycle} done in {wall:.1f} s", file=sys.stderr)
            stop_workers(workers)
            workers = []
            registry_events = sum(
                len(emulator.store.snapshot(mailbox)) for mailbox in mailboxes
            )
            report(args, rows, setup_wall, registry_events)
    finally:
        stop_workers(workers)
        server.stop()


def summarise(cycle, results, before, after, by_id, wall, emulator):
    synced = collections.Counter()
    sync_sql = 0
    all_sql = 0
    refused = 0
    errors = []
    failed_rooms = set()
    per_worker = []
    for result in results:
        per_worker.append(len(result["synced"]))
        for calendar_id, queries, _seconds, state in result["synced"]:
            synced[calendar_id] += 1
            sync_sql += queries
            if state == "error":
                failed_rooms.add(calendar_id)
        refused += len(result["refused"])
        all_sql += result["sql"]
        if result["error"]:
            errors.append(result["error"])
    due = set(by_id)
    graph = sum(after[m] - before[m] for m in after)
    requests_by_room = {m: after[m] - before[m] for m in after}
    twice = sorted(cid for cid, n in synced.items() if n > 1)
    starved = sorted(due - set(synced))
    count = sum(synced.values()) or 1
    return {
        "cycle": cycle,
        "due": len(due),
        "synced": sum(synced.values()),
        "rooms": len(synced),
        "per_worker": per_worker,
        "twice": twice,
        "starved": starved,
        "refused": refused,
        "graph_per_room": graph / count,
        "graph_per_distinct_room": graph / (len(synced) or 1),
        "graph_max_room": max(requests_by_room.values(), default=0),
        "sql_per_room": sync_sql / count,
        "all_sql_per_room": all_sql / count,
        "wall": wall,
        "errors": errors,
        "failed_rooms": sorted(failed_rooms),
        "by_id": by_id,
        "statements": next((r["statements"] for r in results if r["statements"]), []),
    }


def report(args, rows, setup_wall, events):
    print()
    print(
        f"room_exchange_sync load: {args.rooms} rooms x {args.bookings_per_room} "
        f"future bookings, {args.workers} cron workers (OS processes) running "
        f"_cron_sync() concurrently, latency {args.latency:g} ms/Graph request"
    )
    print()
    header = (
        "| cycle | kind   | due | synced (per worker) | twice | starved | locked "
        "| Graph/sync [/room, max] | SQL/sync [all] | wall s |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for row in rows:
        kind = "export" if row["cycle"] == 1 else "idle"
        per_worker = "+".join(str(n) for n in row["per_worker"])
        print(
            f"| {row['cycle']:>5} | {kind:<6} | {row['due']:>3} "
            f"| {row['synced']:>5} ({per_worker:>11}) | {len(row['twice']):>5} "
            f"| {len(row['starved']):>7} | {row['refused']:>6} "
            f"| {row['graph_per_room']:>9.2f} [{row['graph_per_distinct_room']:>5.2f}, "
            f"{row['graph_max_room']:>3}] "
            f"| {row['sql_per_room']:>5.1f} [{row['all_sql_per_room']:>6.1f}] "
            f"| {row['wall']:>6.2f} |"
        )
    print()
    print(
        f"set-up {setup_wall:.1f} s; events in the room calendars at the end: {events}"
        f" (expected {args.rooms * args.bookings_per_room})"
    )
    for row in rows:
        by_id = row["by_id"]
        if row["twice"]:
            print(
                f"cycle {row['cycle']}: synced twice: "
                + ", ".join(by_id[c] for c in row["twice"][:10])
                + (" ..." if len(row["twice"]) > 10 else "")
            )
        if row["starved"]:
            print(
                f"cycle {row['cycle']}: starved: "
                + ", ".join(by_id[c] for c in row["starved"][:10])
                + (" ..." if len(row["starved"]) > 10 else "")
            )
        if row["failed_rooms"]:
            print(f"cycle {row['cycle']}: rooms in error: {len(row['failed_rooms'])}")
        if row["statements"]:
            print(f"cycle {row['cycle']}: the SQL of one room's _sync():")
            for text in row["statements"]:
                print(f"    {text}")
        for error in row["errors"]:
            print(f"cycle {row['cycle']}: worker error:\n{error}")
    idle = rows[1:]
    print()
    if not idle:
        print("no idle cycle (--cycles 1): no budget figures")
        return
    once = all(not r["twice"] and not r["starved"] for r in rows)
    graph = max(r["graph_per_distinct_room"] for r in idle)
    sql = max(r["sql_per_room"] for r in idle)
    sql_all = max(r["all_sql_per_room"] for r in idle)
    print(
        "every room processed exactly once per cycle: " + ("met" if once else "NOT met")
    )
    print(
        f"target idle room {IDLE_GRAPH_TARGET} Graph request: {graph:.2f} per room: "
        + ("met" if graph <= IDLE_GRAPH_TARGET else "NOT met")
    )
    print(
        f"target idle room <= {IDLE_QUERY_TARGET} SQL queries: {sql:.1f} in _sync, "
        f"{sql_all:.1f} with lock/search/commit: "
        + ("met" if sql <= IDLE_QUERY_TARGET else "NOT met")
    )


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM ends like Ctrl-C: the throwaway database is dropped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.worker:
        return worker_main(args)
    try:
        run(args)
    except BenchSetupError as error:
        print(f"load: {error}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
