"""room_exchange_sync installs into a brand-new database and upgrades cleanly.

These run the real ``odoo`` command line against PostgreSQL, as an admin would.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def odoo(*args):
    """Run Odoo through the project's helper, which fails on errors in the log."""
    command = f'source "{SCRIPTS}/common.sh"; odoo_cli "$@"'
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(
        ["bash", "-c", command, "odoo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def dropdb(name):
    connection = psycopg2.connect(dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


@pytest.fixture
def fresh_database():
    name = f"room_exchange_sync_install_{uuid.uuid4().hex[:8]}"
    yield name
    dropdb(name)


def test_installs_from_scratch_then_upgrades_clean(fresh_database):
    installed = odoo(
        "-d", fresh_database, "-i", "room_exchange_sync", "--stop-after-init"
    )
    assert installed.returncode == 0, installed.stderr
    upgraded = odoo(
        "-d", fresh_database, "-u", "room_exchange_sync", "--stop-after-init"
    )
    assert upgraded.returncode == 0, upgraded.stderr
    connection = psycopg2.connect(dbname=fresh_database)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state FROM ir_module_module WHERE name = 'room_exchange_sync'"
        )
        assert cursor.fetchone() == ("installed",)
        cursor.execute(
            "SELECT count(*) FROM res_groups_users_rel r"
            " JOIN ir_model_data d ON d.res_id = r.gid AND d.model = 'res.groups'"
            " WHERE d.module = 'room_exchange_sync'"
            " AND d.name = 'room_exchange_sync_group_manager'"
        )
        assert cursor.fetchone()[0] >= 1, "admin must be an Exchange sync manager"
    connection.close()
