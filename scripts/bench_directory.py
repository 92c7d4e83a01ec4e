#!/usr/bin/env python3
"""Rooms from Microsoft 365 benchmark: listing and mapping many rooms in one go, next
to the naive path (one room at a time, as the room's Exchange tab does), in one run.

Usage::

    make bench-directory                # = python3 scripts/bench_directory.py
    python3 scripts/bench_directory.py [--rooms 500] [--buildings 10] [--latency 20] \\
        [--no-update] [--emulator-in-process] [--log-level warn]

As scripts/bench.py (same plumbing, scripts/bench_support.py): a throwaway copy of
the test database made by ``make setup`` (room_exchange_sync_test, or
$ODOO_TEST_DB), where the addon is updated to the working tree's code; the Microsoft
emulator over HTTPS in a process of its own, with --latency ms added to every Graph
HTTP request (a ``$batch`` envelope pays it once), serving the campus scenario
(tests/emulator/campus.py) with --rooms rooms in --buildings buildings, one room
list per building, every room within the app's RBAC scope. Odoo runs in this
process through its ORM, as the admin user (an Exchange sync manager).

Scenarios (each measured: Graph HTTP round trips, Graph requests counting ``$batch``
items, SQL queries, wall time):

- naive: for each room, create the Odoo room, choose the connection and type the
  mailbox on its Exchange tab, and click Save (the tab's read/write check: 4 Graph
  requests); rolled back afterwards;
- listing: *Rooms from Microsoft 365* opened from the connection (the directory's
  rooms, room lists and each room list's rooms);
- mapping: every room of the campus selected, *Map*, confirmed: the same checks in
  ``$batch``, then each Odoo room created and bound in a savepoint of its own.

Targets (printed as met / NOT met, never asserted): the listing in at most one HTTP
request per page of the directory; the mapping in at most 1/10 of the naive path's
round trips; listing and mapping in under a minute of wall time.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import sys
import time

from bench_support import (
    REPO_ROOT,
    TEMPLATE_DB,
    BenchSetupError,
    Meter,
    add_run_options,
    configure_odoo,
    load_registry,
    set_up_connection,
    start_emulator,
    throwaway_database,
)

PLACES_PAGE = 100  # rooms and room lists per page (Graph's default, our page size)
WALL_TARGET = 60.0
ROUND_TRIP_RATIO_TARGET = 10.0


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rooms", type=int, default=500, help="rooms (500)")
    parser.add_argument("--buildings", type=int, default=10, help="buildings (10)")
    add_run_options(parser)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="write a cProfile of the mapping to FILE (pstats format)",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="also print the most frequent SQL queries of each scenario",
    )
    return parser.parse_args(argv)


def campus(args) -> dict:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.emulator.campus import campus_scenario

    scenario = campus_scenario(
        args.buildings, args.rooms, out_of_scope_every=0, read_only_every=0
    )
    scenario["events"] = []
    return scenario


def naive(env, connection, places, working_time):
    """One room at a time, as an admin does it on the room's Exchange tab."""
    Room = env["resource.resource"]
    mapped = 0
    for place in places:
        room = Room.create(
            {
                "name": place["display_name"],
                "resource_type": "material",
                "calendar_id": working_time.id,
                "tz": "Europe/Brussels",
                "room_capacity": place.get("capacity") or 0,
            }
        )
        room.write(
            {
                "exchange_connection_id": connection.id,
                "exchange_mailbox": place["email"],
            }
        )
        room.action_exchange_save()
        mapped += room.exchange_calendar_id.state == "authorized"
    return mapped


def directory_pages(scenario) -> int:
    """Pages of the directory at PLACES_PAGE: rooms, room lists, each list's rooms."""
    rooms = scenario["rooms"]
    pages = math.ceil(len(rooms) / PLACES_PAGE)
    pages += max(1, math.ceil(len(scenario["room_lists"]) / PLACES_PAGE))
    for room_list in scenario["room_lists"]:
        members = sum(1 for r in rooms if r.get("room_list") == room_list["email"])
        pages += max(1, math.ceil(members / PLACES_PAGE))
    return pages


def run(args):
    import odoo
    from odoo import api

    configure_odoo(args.log_level)
    scenario = campus(args)
    places = scenario["rooms"][4:]  # the campus (the default rooms come first)
    emulator = start_emulator(
        args.latency / 1000.0,
        10**7,
        log_limit=max(20000, 10 * args.rooms),
        in_process=args.emulator_in_process,
        scenario=scenario,
    )
    meter = Meter(emulator, memory=False, texts=args.details)
    results = {}
    checks = []
    try:
        with throwaway_database() as dbname:
            print(
                f"bench: database {dbname} (copy of {TEMPLATE_DB}), emulator "
                f"{emulator.base_url} ({emulator.where}), latency {args.latency:g} ms, "
                f"{len(places)} rooms in {args.buildings} buildings",
                file=sys.stderr,
            )
            registry = load_registry(dbname, update=args.update)
            with registry.cursor() as cr:
                root = api.Environment(cr, odoo.SUPERUSER_ID, {})
                connection = set_up_connection(root, emulator)
                connection.places_enabled = True
                admin = root.ref("base.user_admin")
                env = api.Environment(cr, admin.id, {})
                working_time = env.company.resource_calendar_id
                cr.commit()
                connection = connection.with_env(env)

                started = time.perf_counter()
                with meter.measure("naive: one room at a time", cr) as m:
                    mapped = naive(env, connection, places, working_time)
                m.items = mapped
                results["naive"] = m
                print(
                    f"bench: naive path done in {time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
                cr.rollback()
                cr.reset()
                env.invalidate_all()

                with meter.measure("Rooms from Microsoft 365: listing", cr) as m:
                    action = connection.action_open_room_directory()
                ((_name, _operator, directory_id),) = action["domain"]
                directory = env["room.exchange.directory"].browse(directory_id)
                m.items = len(directory.line_ids)
                results["listing"] = m
                chosen = directory.line_ids.filtered(
                    lambda line: line.building != "Brussels HQ"
                )
                profile = cProfile.Profile() if args.profile else None
                with meter.measure("Rooms from Microsoft 365: mapping", cr) as m:
                    chosen.action_map_selected()
                    if profile:
                        profile.enable()
                    directory.action_map()
                    if profile:
                        profile.disable()
                        profile.dump_stats(args.profile)
                m.items = directory.mapped_count
                results["mapping"] = m
                calendars = chosen.calendar_id
                if directory.mapped_count != len(places):
                    checks.append(
                        f"{directory.mapped_count} of {len(places)} rooms mapped: "
                        + "; ".join(
                            chosen.filtered(lambda line: line.result != "mapped")[
                                :3
                            ].mapped("result_message")
                        )
                    )
                if set(calendars.mapped("state")) != {"authorized"}:
                    checks.append("some mapped rooms are not authorized")
                leftovers = [
                    event
                    for place in places[:: max(1, len(places) // 10)]
                    for event in emulator.snapshot(place["email"])
                ]
                if leftovers:
                    checks.append(f"{len(leftovers)} probe events left in Exchange")
                cr.rollback()
    finally:
        emulator.stop()
        meter.close()
    report(args, scenario, results, checks)
    return 0 if not checks else 1


def report(args, scenario, results, checks):
    naive_m, listing, mapping = (
        results["naive"],
        results["listing"],
        results["mapping"],
    )
    header = ("", "rooms", "round trips", "Graph requests", "SQL", "wall s")
    rows = [
        (m.label, m.items, m.round_trips, m.graph_requests, m.queries, f"{m.wall:.1f}")
        for m in (naive_m, listing, mapping)
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(6)]

    def line(cells):
        return (
            "| "
            + " | ".join(
                str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
                for i, cell in enumerate(cells)
            )
            + " |"
        )

    print(
        f"\nRooms from Microsoft 365: {args.rooms} rooms in {args.buildings} "
        f"buildings, {args.latency:g} ms per Graph request\n"
    )
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    pages = directory_pages(scenario)
    listing_http = listing.graph_http
    ratio = naive_m.round_trips / max(1, mapping.round_trips)
    wall = listing.wall + mapping.wall
    per_room_sql = (
        mapping.queries / max(1, mapping.items),
        naive_m.queries / max(1, naive_m.items),
    )

    def target(text, met):
        print(f"- {text}: {'met' if met else 'NOT met'}")

    print()
    target(
        f"listing in at most 1 request per page: {listing_http} Graph HTTP requests "
        f"for {pages} pages of the directory",
        listing_http <= pages,
    )
    target(
        f"mapping in at most 1/{ROUND_TRIP_RATIO_TARGET:g} of the naive path's round "
        f"trips: {mapping.round_trips} vs {naive_m.round_trips} ({ratio:.1f}x fewer)",
        ratio >= ROUND_TRIP_RATIO_TARGET,
    )
    target(
        f"listing and mapping in under {WALL_TARGET:g} s: {wall:.1f} s "
        f"(naive: {naive_m.wall:.1f} s, {naive_m.wall / max(wall, 1e-9):.1f}x longer)",
        wall < WALL_TARGET,
    )
    print(
        f"- SQL per room: {per_room_sql[0]:.1f} mapping, {per_room_sql[1]:.1f} naive "
        f"({naive_m.queries / max(1, mapping.queries + listing.queries):.2f}x)"
    )
    for m in (naive_m, listing, mapping):
        routes = ", ".join(f"{name}: {count}" for name, count in m.routes.most_common())
        print(f"  {m.label}: {routes}")
    if args.details:
        for m in (naive_m, listing, mapping):
            print(f"\n{m.label}: {dict(m.verbs)}")
            for text, count in m.texts.most_common(25):
                print(f"  {count:6d}  {text}")
    for problem in checks:
        print(f"CHECK FAILED: {problem}")


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except BenchSetupError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
