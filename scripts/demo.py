#!/usr/bin/env python3
"""Try room_exchange_sync in five minutes: ``make demo`` (``python3 scripts/demo.py``).

1. starts the Microsoft emulator (``python -m tests.emulator``, default scenario) on
   https://127.0.0.1:8443;
2. creates the database ``room_exchange_sync_demo`` with room_exchange_sync installed
   (kept between runs; ``--reset`` recreates it);
3. configures it: a delegated Microsoft 365 connection pointing at the emulator
   (tested), four rooms named after the emulator's rooms, a booking type and a few
   future bookings;
4. runs Odoo on http://localhost:8069 in the foreground and prints the logins.

Ctrl-C (SIGINT) or SIGTERM stops Odoo and the emulator. Options: ``--db``,
``--odoo-port``, ``--emulator-port``, ``--reset``. The emulator keeps everything in
memory: after a restart, authorize the rooms again (or use ``--reset``).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("PYTHON") or sys.executable
DEFAULT_DB = "room_exchange_sync_demo"

# The emulator's default scenario (tests/emulator/scenarios/default.json).
TENANT = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
DELEGATED_APP = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
DELEGATED_SECRET = "delegated-app-secret~Valid.2028"
SIGN_IN = ("AdeleV@contoso.test", "Adele-Pa55!")
ROOMS = [  # (Odoo room name, mailbox): the emulator's four rooms
    ("Adams", "room.adams@contoso.test"),
    ("Baker", "room.baker@contoso.test"),
    ("Crystal", "room.crystal@contoso.test"),
    ("Dune Boardroom", "room.dune@contoso.test"),
]
CONNECTION_NAME = "Contoso (Microsoft emulator)"
BOOKING_TYPE = "Meeting room"


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def addons_path() -> str:
    """As ``odoo_addons_path`` in scripts/common.sh."""
    code = (
        "import os, sys\n"
        "import odoo.release\n"
        "source = os.path.dirname(os.path.dirname(os.path.abspath("
        "odoo.release.__file__)))\n"
        "paths = [os.path.join(source, 'addons'), sys.argv[1]]\n"
        "print(','.join(p for p in paths if os.path.isdir(p)))\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", code, str(REPO_ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------- database


def database_exists(name: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cr.fetchone() is not None
    finally:
        conn.close()


def drop_database(name: str, addons: str) -> None:
    """Drop the database and its filestore (``odoo db drop``)."""
    subprocess.run(
        [PYTHON, "-m", "odoo", "db", f"--addons-path={addons}", "drop", name],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
    )
    if database_exists(name):  # older CLI, or a failure: plain SQL
        import psycopg2

        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                cr.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cr.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            conn.close()


def install_addon(name: str, addons: str, update: bool = False) -> None:
    """Create the database with the addon (``-i``), or update the addon (``-u``)."""
    if update:
        say(f"updating room_exchange_sync in database {name}")
    else:
        say(f"creating database {name} with room_exchange_sync (about 20 s)")
    started = time.monotonic()
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "odoo",
            f"--addons-path={addons}",
            "-d",
            name,
            "-u" if update else "-i",
            "room_exchange_sync",
            "--stop-after-init",
            "--log-level=warn",
            "--http-interface=127.0.0.1",
            "--no-http",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        action = "updating" if update else "installing"
        raise SystemExit(f"demo: {action} room_exchange_sync in {name} failed")
    say(f"database {name} ready in {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- configuration (Odoo)


def configure(
    db: str, addons: str, emulator: dict, odoo_port: int, client_id: str
) -> None:
    """Run ``_configure_in_odoo`` in a subprocess that imports Odoo."""
    payload = json.dumps(
        {
            "db": db,
            "addons": addons,
            "emulator": emulator,
            "odoo_port": odoo_port,
            "client_id": client_id,
        }
    )
    result = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "--configure-json", payload],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-6000:])
        raise SystemExit(f"demo: configuring {db} failed")
    for line in result.stdout.splitlines():
        if line.startswith("configured:"):
            say(line)


def _configure_in_odoo(payload: dict) -> None:  # noqa: C901 (a linear script)
    from datetime import datetime, timedelta

    import odoo
    from odoo import Command, api
    from odoo.modules.registry import Registry
    from odoo.tools import config

    config.parse_config(
        [
            "-d",
            payload["db"],
            f"--addons-path={payload['addons']}",
            "--log-level=warn",
            "--http-interface=127.0.0.1",
        ]
    )
    emulator = payload["emulator"]
    registry = Registry(payload["db"])
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        base_url = f"http://localhost:{payload['odoo_port']}"
        params = env["ir.config_parameter"].sudo()
        params.set_param("web.base.url", base_url)
        params.set_param("web.base.url.freeze", "True")
        company = env.company
        if not company.resource_calendar_id.tz:
            company.resource_calendar_id.tz = "Europe/Brussels"
        env.user.tz = env.user.tz or "Europe/Brussels"
        # The admin manages Exchange sync and resource bookings.
        for xmlid in (
            "room_exchange_sync.room_exchange_sync_group_manager",
            "resource_booking.group_manager",
        ):
            group = env.ref(xmlid, raise_if_not_found=False)
            if group:
                env.ref("base.user_admin").write(
                    {"group_ids": [Command.link(group.id)]}
                )

        Connection = env["room.exchange.connection"].with_context(active_test=False)
        connection = Connection.search([("name", "=", CONNECTION_NAME)], limit=1)
        values = {
            "name": CONNECTION_NAME,
            "active": True,
            "cloud": "custom",
            "custom_authority_url": emulator["base_url"],
            "custom_graph_url": emulator["graph_url"],
            "custom_ca_bundle": emulator["ca_bundle"],
            "tenant_id": TENANT,
            "client_id": payload.get("client_id") or DELEGATED_APP,
            "client_secret_input": DELEGATED_SECRET,
            "auth_mode": "delegated",
            "places_enabled": True,
        }
        if connection:
            connection.write(values)
        else:
            connection = Connection.create(values)
        connection.action_test_connection()
        if connection.state != "ready":
            raise SystemExit(
                "the connection test failed: "
                f"{connection.last_error or connection.state}"
            )

        # Meetings booked in Outlook appear within a minute (the cron's default is 5).
        cron = env.ref("room_exchange_sync.ir_cron_room_exchange_sync", False)
        if cron is None:
            cron = env["ir.cron"].search(
                [("cron_name", "=", "Exchange room sync")], limit=1
            )
        if cron:
            cron.write({"interval_number": 1, "interval_type": "minutes"})

        around_the_clock = env["room.exchange.calendar"]._around_the_clock_calendar(
            company
        )
        Resource = env["resource.resource"]
        rooms = Resource
        for name, _mailbox in ROOMS:
            room = Resource.search(
                [("name", "=", name), ("resource_type", "=", "material")], limit=1
            )
            if not room:
                room = Resource.create(
                    {
                        "name": name,
                        "resource_type": "material",
                        "calendar_id": around_the_clock.id,
                        "tz": "Europe/Brussels",
                    }
                )
            if room.exchange_connection_id != connection:
                room.exchange_connection_id = connection
            rooms |= room

        Combination = env["resource.booking.combination"]
        combinations = Combination
        for room in rooms:
            combination = Combination.search(
                [("resource_ids", "in", room.ids)]
            ).filtered(lambda c, room=room: c.resource_ids == room)[:1]
            if not combination:
                combination = Combination.create(
                    {"resource_ids": [Command.set(room.ids)]}
                )
            combinations |= combination
        BookingType = env["resource.booking.type"]
        booking_type = BookingType.search([("name", "=", BOOKING_TYPE)], limit=1)
        if not booking_type:
            booking_type = BookingType.create(
                {
                    "name": BOOKING_TYPE,
                    "resource_calendar_id": around_the_clock.id,
                    "duration": 1,
                    "combination_rel_ids": [
                        Command.create({"combination_id": c.id}) for c in combinations
                    ],
                }
            )

        Booking = env["resource.booking"]
        created = 0
        if not Booking.search_count([("type_id", "=", booking_type.id)]):
            requester = env["res.partner"].create(
                {"name": "Demo requester", "email": "requester@example.com"}
            )
            tomorrow = (datetime.now() + timedelta(days=1)).replace(
                hour=8, minute=0, second=0, microsecond=0
            )  # UTC: 9:00 or 10:00 in Brussels
            plan = [  # (room index, days from tomorrow, hour offset, hours, subject)
                (0, 0, 0, 1, "Sprint planning"),
                (0, 0, 4, 1.5, "Customer call"),
                (0, 1, 1, 1, "1:1 Adele / Megan"),
                (1, 0, 2, 2, "Board preparation"),
                (1, 2, 0, 1, "Interview"),
                (2, 1, 3, 0.5, "Quick sync"),
                (3, 3, 1, 3, "Quarterly review"),
            ]
            for index, days, offset, hours, subject in plan:
                Booking.create(
                    {
                        "name": subject,
                        "type_id": booking_type.id,
                        "combination_auto_assign": False,
                        "combination_id": combinations[index].id,
                        "partner_ids": [Command.set(requester.ids)],
                        "start": tomorrow + timedelta(days=days, hours=offset),
                        "duration": hours,
                    }
                )
                created += 1
        cr.commit()
        print(
            f"configured: connection {connection.name!r} ({connection.state}), "
            f"{len(rooms)} rooms, booking type {booking_type.name!r}, "
            f"{created} new bookings",
            flush=True,
        )


# ----------------------------------------------------------------------- processes


def start_emulator(port: int) -> tuple[subprocess.Popen, dict]:
    say(f"starting the Microsoft emulator on https://127.0.0.1:{port}")
    process = subprocess.Popen(
        # Without --auto-consent: that switch signs the first user in without any
        # page, and the newcomer should see Microsoft's sign-in and consent pages.
        [PYTHON, "-m", "tests.emulator", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"demo: the emulator stopped (exit {process.returncode}); is port "
                f"{port} free? (--emulator-port)"
            )
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.strip().startswith("{"):
                return process, json.loads(line)
    process.terminate()
    raise SystemExit("demo: the emulator did not start within 30 s")


def register_redirect_uri(emulator: dict, odoo_port: int) -> str:
    """The default scenario's delegated app accepts redirects to port 8069 only: for
    another port, register a copy of that app (same secret and scopes) whose redirect
    URI is on that port, and return its client ID."""
    if odoo_port == 8069:
        return DELEGATED_APP
    import uuid

    import requests

    client_id = str(uuid.uuid5(uuid.UUID(DELEGATED_APP), f"demo-port-{odoo_port}"))
    response = requests.post(
        emulator["admin_url"] + "/scenario/app",
        json={
            "client_id": client_id,
            "display_name": "Odoo Room Sync (delegated)",
            "secrets": [DELEGATED_SECRET],
            "redirect_uris": [
                f"http://localhost:{odoo_port}/room_exchange_sync/oauth/callback"
            ],
            "delegated_scopes": [
                "Calendars.ReadWrite.Shared",
                "User.Read",
                "offline_access",
                "openid",
                "profile",
                "Place.Read.All",
            ],
        },
        verify=emulator["ca_bundle"],
        timeout=10,
    )
    if response.status_code != 200:
        raise SystemExit(f"demo: registering the app failed: {response.text}")
    return client_id


def stop(process: subprocess.Popen | None, name: str, grace: float = 0) -> None:
    """Stop a child: ``grace`` seconds to finish on its own (after a Ctrl-C that
    reached the whole process group), then SIGTERM, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        process.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop on SIGTERM; killing it")
        process.kill()
        process.wait(5)


def banner(odoo_url: str, emulator: dict, db: str, odoo_port: int) -> str:
    outlook = emulator["base_url"] + "/_emulator/outlook"
    lines = [
        "",
        "=" * 72,
        f"  Odoo           {odoo_url}/odoo   (database {db})",
        "                 login admin / password admin",
        f"  Rooms          {odoo_url}/odoo/exchange-rooms",
        f"  Microsoft      {emulator['base_url']}  (emulator, self-signed CA:",
        "                 accept the browser's certificate warning once)",
        f"                 sign in as {SIGN_IN[0]} / {SIGN_IN[1]}, then Accept",
        f"  Outlook page   {outlook}",
        "",
        "  Open a room (Adams), tab Exchange: Authorize with Microsoft Account,",
        "  sign in, pick the calendar, Save: its bookings go to Exchange (the",
        "  room's first sync). Then book a meeting on the Outlook page and watch",
        "  it appear under Exchange sync > Room bookings (sync every minute).",
        "  Ctrl-C stops Odoo and the emulator.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=DEFAULT_DB, help=f"default {DEFAULT_DB}")
    parser.add_argument("--odoo-port", type=int, default=8069)
    parser.add_argument("--emulator-port", type=int, default=8443)
    parser.add_argument(
        "--reset", action="store_true", help="drop and recreate the database"
    )
    parser.add_argument("--configure-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.configure_json:
        _configure_in_odoo(json.loads(args.configure_json))
        return 0

    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    addons = addons_path()
    emulator_process = odoo_process = None

    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell's background job inherits it ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        emulator_process, emulator = start_emulator(args.emulator_port)
        if args.reset and database_exists(args.db):
            say(f"dropping database {args.db} (--reset)")
            drop_database(args.db, addons)
        if not database_exists(args.db):
            install_addon(args.db, addons)
        else:
            say(
                f"reusing database {args.db}: the emulator starts empty, so rooms "
                "authorized or exported in an earlier run must be authorized again "
                "(--reset starts afresh)"
            )
            install_addon(args.db, addons, update=True)
        client_id = register_redirect_uri(emulator, args.odoo_port)
        configure(args.db, addons, emulator, args.odoo_port, client_id)
        odoo_url = f"http://localhost:{args.odoo_port}"
        say(f"starting Odoo on {odoo_url}")
        odoo_process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "odoo",
                f"--addons-path={addons}",
                "-d",
                args.db,
                f"--db-filter=^{args.db}$",
                "--http-interface=127.0.0.1",
                f"--http-port={args.odoo_port}",
                f"--gevent-port={args.odoo_port + 3}",
                "--log-level=warn",
            ],
            cwd=REPO_ROOT,
        )
        print(banner(odoo_url, emulator, args.db, args.odoo_port), flush=True)
        while True:
            if odoo_process.poll() is not None:
                say(f"Odoo stopped (exit {odoo_process.returncode})")
                return odoo_process.returncode or 1
            if emulator_process.poll() is not None:
                say(f"the emulator stopped (exit {emulator_process.returncode})")
                return emulator_process.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping Odoo and the emulator")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Ctrl-C in a terminal reaches the children too: let them finish first.
        grace = 5 if signal.SIGINT in received else 0
        stop(odoo_process, "Odoo", grace)
        stop(emulator_process, "the emulator", grace)


if __name__ == "__main__":
    sys.exit(main())
