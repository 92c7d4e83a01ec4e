"""Crash recovery with real processes (issue 7).

A real Odoo server (prefork: ``--workers=2``, two cron worker processes) runs on a
throwaway copy of the test database, and the Microsoft emulator runs as a separate
process (``python -m tests.emulator``) with 50 ms of latency per Graph request. 300
future bookings of one room are pushed to Exchange by a bulk export (the wizard, through
XML-RPC) and, concurrently, by the sync cron; the whole Odoo process group is killed
with SIGKILL in the middle of the work, Odoo is started again, and once the crons are
idle:

- the room calendar holds exactly one event per booking (no duplicate, none missing);
- no event exists without a booking;
- every binding is synced and points at an existing event, and the export is done.

Nothing of Odoo is imported here: the set-up and the checks run in subprocesses (a
short script using ``Registry``), over XML-RPC, SQL (psycopg2) and the emulator's
admin API. Needs the template database made by ``make setup``; it fails (never skips)
without it. Takes about a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import psycopg2
import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DB = os.environ.get("ODOO_TEST_DB", "room_exchange_sync_test")
PYTHON = os.environ.get("PYTHON", sys.executable)
ROOM = "room.adams@contoso.test"
BOOKINGS = 300
TEST_DEADLINE = 230  # seconds for the whole test (the brief: < 4 minutes)
MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"

# Run in a subprocess: update the addon in the copy (the template may predate the
# working tree), then an app-only connection to the emulator, Adams bound, a 24/7
# booking type and BOOKINGS future one-hour bookings, committed. The sync cron's
# wake-ups caused by the bookings are removed: the test starts the sync itself, once
# the export is under way. Prints one JSON line.
SETUP_SCRIPT = r"""
import json, sys
from datetime import datetime, timedelta
sys.path.insert(0, sys.argv[1] + "/scripts")
from bench_support import configure_odoo, load_registry
args = json.loads(sys.argv[2])
configure_odoo("warn")
import odoo
from odoo import Command, api

registry = load_registry(args["db"], update=True)
with registry.cursor() as cr:
    env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
    admin = env.ref("base.user_admin")
    admin.write({"password": "admin",
                 "group_ids": [Command.link(env.ref(args["manager"]).id)]})
    connection = env["room.exchange.connection"].create({
        "name": "Emulator (crash test)",
        "cloud": "custom",
        "custom_authority_url": args["base_url"],
        "custom_graph_url": args["graph_url"],
        "custom_ca_bundle": args["ca_bundle"],
        "tenant_id": "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039",
        "client_id": "e0476d48-6ccc-4f02-8f60-9951925e8b30",
        "client_secret_input": "app-only-secret~Valid.2028",
        "auth_mode": "application",
    })
    connection.action_test_connection()
    assert connection.state == "ready", connection.last_error
    working_time = env["resource.calendar"].create(
        {"name": "Crash test office hours", "tz": "Europe/Brussels"})
    room = env["resource.resource"].create({
        "name": "Crash test room", "resource_type": "material",
        "calendar_id": working_time.id, "tz": "Europe/Brussels",
    })
    room.write({"exchange_connection_id": connection.id})
    calendar = room.exchange_calendar_id
    calendar._bind_mailbox(args["room"])
    assert calendar.state == "authorized", calendar.last_error
    around_the_clock = calendar._around_the_clock_calendar(env.company)
    room.calendar_id = around_the_clock
    booking_type = env["resource.booking.type"].create({
        "name": "Crash test meeting room",
        "resource_calendar_id": around_the_clock.id,
        "duration": 1,
        "combination_rel_ids": [
            Command.create({"combination_id": calendar.combination_id.id})],
    })
    requester = env["res.partner"].create({"name": "Crash test requester"})
    first = datetime.combine(datetime.now().date() + timedelta(days=2),
                             datetime.min.time())
    bookings = env["resource.booking"].create([
        {
            "name": f"Crash test booking {i + 1}",
            "type_id": booking_type.id,
            "combination_auto_assign": False,
            "combination_id": calendar.combination_id.id,
            "partner_ids": [Command.set(requester.ids)],
            "start": first + timedelta(days=i // 8, hours=7 + i % 8),
            "duration": 1.0,
        }
        for i in range(args["bookings"])
    ])
    sync_cron = env.ref("room_exchange_sync.ir_cron_room_exchange_sync")
    cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [sync_cron.id])
    cr.execute("UPDATE ir_cron SET nextcall = now() at time zone 'utc' + interval "
               "'1 day' WHERE id = %s", [sync_cron.id])
    cr.commit()
    print(json.dumps({
        "room_id": room.id,
        "calendar_id": calendar.id,
        "booking_ids": bookings.ids,
        "sync_cron_id": sync_cron.id,
        "export_cron_id": env.ref(
            "room_exchange_sync.ir_cron_room_exchange_export").id,
        "database_uuid": env["ir.config_parameter"].get_param("database.uuid"),
    }))
"""


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise AssertionError(f"test deadline exceeded while {what}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def addons_path():
    out = subprocess.run(
        ["bash", "-c", f'source "{REPO_ROOT}/scripts/common.sh"; odoo_addons_path'],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def kill_group(process, sig=signal.SIGKILL):
    """Kill a process started with start_new_session=True and all its children."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def throwaway_database():
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    name = f"room_exchange_crash_{os.getpid()}"
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE_DB])
            if cur.fetchone() is None:
                pytest.fail(
                    f"The test database {TEMPLATE_DB} does not exist: run make setup"
                )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for attempt in range(10):
                try:
                    cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
                    break
                except psycopg2.errors.ObjectInUse:
                    if attempt == 9:
                        raise
                    time.sleep(2)
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def emulator_process(tmp_path, monkeypatch):
    """``python -m tests.emulator`` in its own process group: yields (info, session);
    the room calendars start empty (the default scenario without its meetings)."""
    scenario = json.loads(
        (REPO_ROOT / "tests/emulator/scenarios/default.json").read_text()
    )
    scenario["events"] = []
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    stderr = open(tmp_path / "emulator.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "tests.emulator", "--port", "0", "--latency", "0.05"]
        + ["--scenario", str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()  # the ready line
        if not line:
            raise AssertionError(
                "the emulator did not start: "
                + (tmp_path / "emulator.log").read_text()[-2000:]
            )
        info = json.loads(line)
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override Session.verify,
        # and the Odoo processes need them too (the bundle has the system CAs).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", info["ca_bundle"])
        monkeypatch.setenv("CURL_CA_BUNDLE", info["ca_bundle"])
        session = requests.Session()
        session.verify = info["ca_bundle"]
        yield info, session
    finally:
        kill_group(process, signal.SIGTERM)
        kill_group(process)
        stderr.close()


def room_events(info, session):
    answer = session.get(
        f"{info['admin_url']}/mailboxes/{ROOM}/events",
        timeout=10,
        verify=info["ca_bundle"],
    )
    answer.raise_for_status()
    return answer.json()["value"]


class OdooServer:
    """``python -m odoo`` in prefork mode, in its own process group."""

    def __init__(self, db, addons, log_path):
        self.db = db
        self.addons = addons
        self.log_path = log_path
        self.port = None
        self.process = None
        self.log = None

    def start(self, deadline):
        self.port = free_port()
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.log.write(b"\n===== start =====\n")
        self.log.flush()
        # Not ``python -m odoo``: prefork spawns its gevent process as
        # ``sys.executable sys.argv[0] gevent``, and odoo/__main__.py cannot run as
        # a script (ImportError, respawned every second).
        launcher = self.log_path.parent / "odoo-launcher.py"
        launcher.write_text("from odoo.cli.command import main\nmain()\n")
        self.process = subprocess.Popen(
            [PYTHON, str(launcher), "server", f"--addons-path={self.addons}"]
            + [f"--database={self.db}", f"--db-filter=^{self.db}$"]
            + ["--workers=2", "--max-cron-threads=2", f"--http-port={self.port}"]
            + ["--http-interface=127.0.0.1", "--limit-time-real=600"]
            + [
                "--limit-time-cpu=600",
                "--log-level=info",
                f"--gevent-port={free_port()}",
            ],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{self.port}/web/webclient/version_info"
        while True:
            deadline.check("waiting for Odoo to answer")
            if self.process.poll() is not None:
                raise AssertionError(f"Odoo exited at start:\n{self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.post(url, json={}, timeout=2).ok:
                    return
            time.sleep(0.3)

    def kill(self):
        kill_group(self.process)
        if self.log:
            self.log.close()
            self.log = None

    def tail(self, lines=60):
        with contextlib.suppress(OSError):
            return "\n".join(
                self.log_path.read_text(errors="replace").splitlines()[-lines:]
            )
        return ""

    def rpc(self):
        common = xmlrpc.client.ServerProxy(
            f"http://127.0.0.1:{self.port}/xmlrpc/2/common", allow_none=True
        )
        uid = common.authenticate(self.db, "admin", "admin", {})
        assert uid, "admin/admin cannot log in over XML-RPC"
        models = xmlrpc.client.ServerProxy(
            f"http://127.0.0.1:{self.port}/xmlrpc/2/object", allow_none=True
        )

        def call(model, method, *args, **kwargs):
            return models.execute_kw(
                self.db, uid, "admin", model, method, list(args), kwargs
            )

        return call


def sql(db, query, params=()):
    with contextlib.closing(psycopg2.connect(dbname=db)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None


def trigger_cron(db, cron_id):
    """Wake a cron job up now, as ``ir.cron._trigger()`` does."""
    sql(
        db,
        "INSERT INTO ir_cron_trigger (cron_id, call_at) "
        "VALUES (%s, now() at time zone 'utc')",
        [cron_id],
    )
    poke_crons(db)


def poke_crons(db):
    """Wake idle cron workers up (``NOTIFY cron_trigger, db`` as Odoo does). A
    prefork cron worker reads notifications while it runs jobs and then sleeps up to
    60 s even if a job became ready meanwhile (``_trigger`` of the export wizard,
    a partially done job): the test pokes so as not to wait for that."""
    # Odoo's cron workers LISTEN on a connection to the "postgres" database, and a
    # NOTIFY only reaches listeners of the database it is sent in (as _notifydb).
    sql("postgres", "SELECT pg_notify('cron_trigger', %s)", [db])


def bring_retries_forward(db, cron_ids):
    """The export retries a room locked by the sync a minute later (a trigger at
    now + 1 min): move such triggers to now, as if that minute had passed."""
    sql(
        db,
        "UPDATE ir_cron_trigger SET call_at = now() at time zone 'utc' "
        "WHERE cron_id = ANY(%s) AND call_at > now() at time zone 'utc'",
        [list(cron_ids)],
    )


def crons_busy(db, cron_ids):
    """Whether a cron job is running (its row locked) or still due."""
    with contextlib.closing(psycopg2.connect(dbname=db)) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM ir_cron WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED",
                [list(cron_ids)],
            )
            unlocked = {row[0] for row in cur.fetchall()}
            cur.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = ANY(%s) "
                "AND call_at <= now() at time zone 'utc'",
                [list(cron_ids)],
            )
            due = cur.fetchone()[0]
        conn.rollback()
    return len(unlocked) < len(cron_ids) or due > 0


def binding_rows(db, calendar_id):
    return sql(
        db,
        "SELECT booking_id, external_id, sync_state FROM room_exchange_binding "
        "WHERE calendar_id = %s",
        [calendar_id],
    )


def calendar_row(db, calendar_id):
    rows = sql(
        db,
        "SELECT cal.state, run.state, run.exported_count, run.failed_count, "
        "run.summary, cal.last_error FROM room_exchange_calendar cal "
        "LEFT JOIN room_exchange_export_run run ON run.id = cal.export_run_id "
        "WHERE cal.id = %s",
        [calendar_id],
    )
    keys = ("state", "export_state", "done", "failed", "summary", "error")
    return dict(zip(keys, rows[0], strict=True))


def kill_recovery_round(odoo, info, session, db, crons, at_kill, deadline, phase):
    """The restarted crons finish the work in a sync round (adopting the events
    created but not recorded before the kill, creating the rest): kill that round
    too when it is caught half-way, and restart again. Returns the number of events
    at that second kill, or None when the round was not caught."""
    watch_until = time.monotonic() + 20
    while time.monotonic() < watch_until:
        count = len(room_events(info, session))
        if at_kill < count < BOOKINGS:
            odoo.kill()
            second_kill = len(room_events(info, session))
            phase(f"Odoo killed again during recovery at {second_kill} events")
            odoo.start(deadline)
            phase("Odoo restarted again")
            for cron_id in crons:
                trigger_cron(db, cron_id)
            return second_kill
        if count >= BOOKINGS:
            return None
        time.sleep(0.02)
    return None


def check_outcome(info, session, db, data, kills):
    """Exactly one event per booking, no stray event, every binding synced and
    pointing at an existing event, the export done."""
    from exchange_engine import parse_marker, parse_transaction_id  # tests/conftest

    calendar_id = data["calendar_id"]
    events = room_events(info, session)
    bindings = binding_rows(db, calendar_id)
    row = calendar_row(db, calendar_id)
    uuid = data["database_uuid"]
    booking_ids = set(data["booking_ids"])
    by_booking = {}
    strays = []
    for event in events:
        properties = event.get("singleValueExtendedProperties") or ()
        marker = next((p.get("value") for p in properties), None)
        booking = parse_transaction_id(event.get("transactionId"), uuid) or (
            parse_marker(marker, uuid)
        )
        if booking in booking_ids:
            by_booking.setdefault(booking, []).append(event["id"])
        else:
            strays.append((event["id"], event.get("subject")))
    duplicates = {b: ids for b, ids in by_booking.items() if len(ids) > 1}
    missing = booking_ids - set(by_booking)
    event_ids = {event["id"] for event in events}
    dangling = [b for b in bindings if b[1] not in event_ids]
    report = (
        f"{kills}; now {len(events)} events, {len(bindings)} bindings, calendar "
        f"{row}; duplicates {dict(list(duplicates.items())[:5])}, missing "
        f"{sorted(missing)[:10]}, strays {strays[:5]}, dangling {dangling[:5]}"
    )
    print(report)
    assert not duplicates, report
    assert not missing, report
    assert not strays, report
    assert len(events) == BOOKINGS, report
    assert not dangling, report
    assert {b[0] for b in bindings} == booking_ids, report
    assert row["export_state"] == "done", report
    assert not row["failed"], report
    assert row["state"] in ("authorized", "syncing"), report


def test_sigkill_during_export_and_sync_recovers(tmp_path, monkeypatch):
    deadline = Deadline(TEST_DEADLINE)
    started = time.monotonic()

    def phase(what):
        print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)

    addons = addons_path()
    odoo = None
    with (
        throwaway_database() as db,
        emulator_process(tmp_path, monkeypatch) as (
            info,
            session,
        ),
    ):
        try:
            setup = subprocess.run(
                [PYTHON, "-c", SETUP_SCRIPT, str(REPO_ROOT)]
                + [
                    json.dumps(
                        {
                            "db": db,
                            "base_url": info["base_url"],
                            "graph_url": info["graph_url"],
                            "ca_bundle": info["ca_bundle"],
                            "room": ROOM,
                            "bookings": BOOKINGS,
                            "manager": MANAGER,
                        }
                    )
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=max(deadline.left() - 120, 30),
            )
            phase("set-up (addon update, data)")
            assert setup.returncode == 0, f"set-up failed:\n{setup.stderr[-4000:]}"
            data = json.loads(setup.stdout.strip().splitlines()[-1])
            calendar_id = data["calendar_id"]
            crons = (data["sync_cron_id"], data["export_cron_id"])
            assert room_events(info, session) == []

            odoo = OdooServer(db, addons, tmp_path / "odoo.log")
            odoo.start(deadline)
            phase("Odoo started")
            call = odoo.rpc()
            # The bulk export, as a manager does it: preview, then Run the Export
            # (queues the room and wakes the export cron up).
            wizard = call(
                "room.exchange.export",
                "create",
                {"room_ids": [(6, 0, [data["room_id"]])]},
            )
            call("room.exchange.export", "action_run", [wizard])
            phase("export queued through the wizard")

            # Once the export has written some events, start the sync cron too, then
            # kill everything in the middle of the work.
            sync_started = False
            seen = []
            while True:
                deadline.check(f"waiting for the middle of the export ({seen[-5:]})")
                count = len(room_events(info, session))
                seen.append(count)
                if not sync_started and count >= 20:
                    trigger_cron(db, data["sync_cron_id"])
                    sync_started = True
                if sync_started and count >= 110:
                    break
                if len(seen) % 20 == 0:
                    poke_crons(db)
                time.sleep(0.05)
            odoo.kill()
            phase("Odoo killed")
            at_kill = len(room_events(info, session))
            bound_at_kill = sum(1 for row in binding_rows(db, calendar_id) if row[1])
            assert at_kill < BOOKINGS, (
                f"the work was already finished when Odoo was killed ({at_kill} "
                f"events; counts seen {seen[-20:]}): nothing was interrupted"
            )
            # The killed transactions are gone (PostgreSQL rolled them back).

            odoo.start(deadline)
            phase("Odoo restarted")
            # A cron interrupted by a kill is run again when due: its nextcall
            # stayed in the past. Wake both up in case the kill hit between commits.
            for cron_id in crons:
                trigger_cron(db, cron_id)
            second_kill = kill_recovery_round(
                odoo, info, session, db, crons, at_kill, deadline, phase
            )
            stable_since = None
            while True:
                deadline.check(
                    "waiting for the work to complete after the restart: "
                    f"{len(room_events(info, session))} events, "
                    f"{calendar_row(db, calendar_id)}"
                )
                row = calendar_row(db, calendar_id)
                bindings = binding_rows(db, calendar_id)
                settled = (
                    row["export_state"] in ("done", "failed")
                    and len(bindings) == BOOKINGS
                    and all(b[1] and b[2] == "synced" for b in bindings)
                    and not crons_busy(db, crons)
                )
                if settled:
                    stable_since = stable_since or time.monotonic()
                    if time.monotonic() - stable_since > 3:
                        break
                else:
                    stable_since = None
                    bring_retries_forward(db, crons)
                    poke_crons(db)
                time.sleep(0.5)
            odoo.kill()
            phase("work complete, crons idle")

            check_outcome(
                info,
                session,
                db,
                data,
                f"killed at {at_kill} events ({bound_at_kill} bound), again at "
                f"{second_kill}",
            )
        except BaseException:
            if odoo is not None:
                print(odoo.tail(80), file=sys.stderr)
            raise
        finally:
            if odoo is not None:
                odoo.kill()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v", "-s"]))
