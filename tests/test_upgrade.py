"""room_exchange_sync upgrades from its previous version with the data it held.

19.0.2.0.0 made the export a model of its own: the export's columns of
room_exchange_calendar (export_state, export_done, ...) became export runs
(room.exchange.export.run), moved by migrations/19.0.2.0.0. The previous version is
taken from git (the commit before the version changed), installed into a brand-new
database by its own scripts, given rooms with export data, then upgraded with this
working tree by the real ``odoo`` command line; the data must be in export runs and
the old columns gone. The database is dropped at the end.
"""

import ast
import json
import os
import subprocess
import sys
import tarfile
import uuid
from datetime import datetime

import psycopg2
import pytest

from tests.test_install import ROOT, dropdb, odoo

PREVIOUS = "19.0.1.0.0"
MANIFEST = "room_exchange_sync/__manifest__.py"

# Run with the previous version's addons path: a connection, three rooms with their
# calendars, two of them with an export (one done, one still running and waiting for
# a retry), written through the previous version's own fields. Prints one JSON line.
DATA_SCRIPT = r"""
import json, sys
from odoo.tools import config
config.parse_config([f"--addons-path={sys.argv[1]}", "--log-level=warn"],
                    setup_logging=True)
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

with Registry(sys.argv[2]).cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    connection = env["room.exchange.connection"].create({
        "name": "Upgrade tenant",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "auth_mode": "application",
    })
    ids = {}
    for name, values in json.loads(sys.argv[3]).items():
        room = env["resource.resource"].create(
            {"name": name, "resource_type": "material"})
        calendar = env["room.exchange.calendar"].create({
            "room_id": room.id,
            "connection_id": connection.id,
            "mailbox": f"room.{name.lower()}@contoso.test",
        })
        if values:
            values["export_user_id"] = env.ref("base.user_admin").id
            calendar.write(values)
        ids[name] = calendar.id
    cr.commit()
    print(json.dumps(ids))
"""

DONE = {
    "export_state": "done",
    "export_start": "2026-01-05 08:00:00",
    "export_end": "2027-01-06 00:00:00",
    "export_horizon": "2027-03-01 00:00:00",
    "export_total": 5,
    "export_already": 2,
    "export_done": 5,
    "export_failed": 0,
    "export_summary": "Export of room Adams to Exchange: 5 exported.",
    "export_round_failures": 0,
}
RUNNING = {
    "export_state": "running",
    "export_start": "2026-02-01 09:30:00",
    "export_end": "2026-08-01 00:00:00",
    "export_horizon": "2026-08-01 00:00:00",
    "export_total": 40,
    "export_already": 0,
    "export_done": 12,
    "export_failed": 1,
    "export_round_failures": 2,
    "export_retry_date": "2026-02-01 10:00:00",
}
ROOMS = {"Adams": DONE, "Baker": RUNNING, "Crystal": {}}


def git(*args):
    return subprocess.run(
        ["git", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def version_at(commit):
    return ast.literal_eval(git("show", f"{commit}:{MANIFEST}"))["version"]


def previous_commit():
    """The last commit of the previous version: the parent of the commit that
    changed the manifest's version from it (HEAD while that change is not
    committed)."""
    if version_at("HEAD") == PREVIOUS:
        return "HEAD"
    for commit in git("rev-list", "--first-parent", "HEAD", "--", MANIFEST).split():
        if version_at(commit) != PREVIOUS and version_at(f"{commit}^") == PREVIOUS:
            return f"{commit}^"
    raise AssertionError(f"no commit of version {PREVIOUS} in the history")


def checkout(commit, target):
    """The addon and the scripts as they were at ``commit``, in ``target``."""
    archive = target / "previous.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit]
        + ["room_exchange_sync", "scripts"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()


def in_tree(tree, command, *args):
    """Run a function of ``tree``'s scripts/common.sh (its own addons path)."""
    return subprocess.run(
        ["bash", "-c", f'source "{tree}/scripts/common.sh"; {command} "$@"', "odoo"]
        + list(args),
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture
def fresh_database():
    name = f"room_exchange_sync_upgrade_{uuid.uuid4().hex[:8]}"
    yield name
    dropdb(name)


def query(database, sql, params=()):
    connection = psycopg2.connect(dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_export_fields_become_export_runs(fresh_database, tmp_path):
    previous = tmp_path / "previous"
    previous.mkdir()
    checkout(previous_commit(), previous)

    installed = in_tree(
        previous,
        "odoo_cli",
        "-d",
        fresh_database,
        "-i",
        "room_exchange_sync",
        "--stop-after-init",
    )
    assert installed.returncode == 0, installed.stderr
    assert query(
        fresh_database,
        "SELECT latest_version FROM ir_module_module WHERE name = 'room_exchange_sync'",
    ) == [(PREVIOUS,)]
    addons = in_tree(previous, "odoo_addons_path").stdout.strip()
    data = subprocess.run(
        [sys.executable, "-c", DATA_SCRIPT, addons, fresh_database, json.dumps(ROOMS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert data.returncode == 0, data.stderr
    calendars = json.loads(data.stdout.strip().splitlines()[-1])

    upgraded = odoo(
        "-d", fresh_database, "-u", "room_exchange_sync", "--stop-after-init"
    )
    assert upgraded.returncode == 0, upgraded.stderr

    assert query(
        fresh_database,
        "SELECT latest_version FROM ir_module_module WHERE name = 'room_exchange_sync'",
    ) == [("19.0.2.0.0",)]
    admin = query(
        fresh_database,
        "SELECT res_id FROM ir_model_data"
        " WHERE module = 'base' AND name = 'user_admin'",
    )[0][0]
    runs = {
        row[0]: row[1:]
        for row in query(
            fresh_database,
            "SELECT run.calendar_id, run.state, run.date_start, run.date_end,"
            " run.horizon, run.total_count, run.already_count, run.exported_count,"
            " run.failed_count, run.summary, run.user_id, run.round_failure_count,"
            " run.retry_date, run.create_date, run.room_id = cal.room_id,"
            " run.company_id = cal.company_id, cal.export_run_id = run.id"
            " FROM room_exchange_export_run run"
            " JOIN room_exchange_calendar cal ON cal.id = run.calendar_id",
        )
    }
    assert set(runs) == {calendars["Adams"], calendars["Baker"]}, runs

    def expected(values):
        start = datetime.fromisoformat(values["export_start"])
        retry = values.get("export_retry_date")
        return (
            values["export_state"],
            start,
            datetime.fromisoformat(values["export_end"]),
            datetime.fromisoformat(values["export_horizon"]),
            values["export_total"],
            values["export_already"],
            values["export_done"],
            values["export_failed"],
            values.get("export_summary"),
            admin,
            values["export_round_failures"],
            datetime.fromisoformat(retry) if retry else None,
            start,  # started when it was queued
            True,  # its room, its company, and the calendar's latest export
            True,
            True,
        )

    assert runs[calendars["Adams"]] == expected(DONE)
    assert runs[calendars["Baker"]] == expected(RUNNING)
    assert query(
        fresh_database,
        "SELECT export_run_id FROM room_exchange_calendar WHERE id = %s",
        [calendars["Crystal"]],
    ) == [(None,)]
    # Odoo dropped the old columns, and the migration its copy of them.
    assert query(
        fresh_database,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'room_exchange_calendar'"
        " AND column_name LIKE 'export%%' ORDER BY column_name",
    ) == [("export_run_id",)]
    assert query(
        fresh_database, "SELECT to_regclass('room_exchange_export_run_legacy')"
    ) == [(None,)]
    # A booking's overlap flag keeps its column under its new name.
    assert query(
        fresh_database,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'resource_booking'"
        " AND column_name IN ('exchange_conflict', 'exchange_overlap')",
    ) == [("exchange_overlap",)]
    # The export's cron job works on the runs now.
    assert query(
        fresh_database,
        "SELECT m.model, s.code FROM ir_cron c"
        " JOIN ir_act_server s ON s.id = c.ir_actions_server_id"
        " JOIN ir_model m ON m.id = s.model_id"
        " JOIN ir_model_data d ON d.res_id = c.id AND d.model = 'ir.cron'"
        " WHERE d.module = 'room_exchange_sync'"
        " AND d.name = 'ir_cron_room_exchange_export'",
    ) == [("room.exchange.export.run", "model._cron_export()")]
