"""``make demo`` (scripts/demo.py) end to end, and ``make screenshots`` once.

The demo runs on free ports with a throwaway database: its Odoo login page, the
emulator's OpenID configuration and its Outlook page must answer 200; the screenshot
script then walks the newcomer's path in headless Chromium (authorize, pick the
calendar, export, book in Outlook, see it in Odoo). SIGINT to the demo's process group
must stop Odoo and the emulator; the database is dropped.

Nothing is skipped silently: a missing Chromium or Playwright fails. Set
``ROOM_EXCHANGE_SYNC_SCREENSHOTS=0`` to skip (visibly) the screenshot part.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TENANT = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
# A fresh database with the addon: about 20 s idle, 163 s seen under load.
START_TIMEOUT = 240
# Thirteen screens, about 50 s on an idle machine: the test checks that they are
# taken, not how fast (it ran out of 60 s with other suites running).
SCREENSHOTS_TIMEOUT = 180


def _load_screenshots_module():
    path = REPO_ROOT / "scripts" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("demo_screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


screenshots = _load_screenshots_module()


def _get(url: str) -> int:
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        return answer.status


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def demo():
    started = time.monotonic()
    runner = screenshots.Demo()
    runner.start(timeout=START_TIMEOUT)
    runner.startup_seconds = time.monotonic() - started
    yield runner
    process = runner.process
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal
    try:
        code = process.wait(30)
    finally:
        runner.stop()  # SIGKILL if still there, and drop the database
    assert code == 0, runner.log_tail()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        _port_closed(runner.odoo_port) and _port_closed(runner.emulator_port)
    ):
        time.sleep(0.2)
    assert _port_closed(runner.odoo_port), "Odoo still listens after Ctrl-C"
    assert _port_closed(runner.emulator_port), "the emulator still listens"
    assert not screenshots_db_exists(runner.db)


def screenshots_db_exists(name: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cr.fetchone() is not None
    finally:
        conn.close()


@pytest.mark.slow
def test_demo_serves_odoo_the_emulator_and_the_outlook_page(demo):
    assert demo.startup_seconds < START_TIMEOUT
    assert _get(f"{demo.odoo_url}/web/login") == 200
    openid = f"{demo.emulator_url}/{TENANT}/v2.0/.well-known/openid-configuration"
    assert _get(openid) == 200
    assert _get(f"{demo.emulator_url}/_emulator/outlook") == 200
    log = demo.log_tail()
    assert "admin / password admin" in log, log
    assert "AdeleV@contoso.test" in log, log
    assert "/_emulator/outlook" in log, log


@pytest.mark.slow
@pytest.mark.browser
def test_screenshots_of_the_demo(demo, tmp_path):
    if os.environ.get("ROOM_EXCHANGE_SYNC_SCREENSHOTS") == "0":
        pytest.skip("ROOM_EXCHANGE_SYNC_SCREENSHOTS=0: screenshots not taken")
    out = tmp_path / "screenshots"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "screenshots.py"),
            "--odoo-url",
            demo.odoo_url,
            "--emulator-url",
            demo.emulator_url,
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SCREENSHOTS_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-4000:] + demo.log_tail()
    expected = [name for name in screenshots.SHOTS if name != "09-overlaps.png"]
    for name in expected:
        path = out / name
        assert path.is_file(), f"{name} missing\n{result.stderr[-3000:]}"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 800 and height >= 400, (name, width, height)


def test_outlook_page_books_a_room():
    """The emulator's Outlook page (tests/emulator/outlook_page.py) alone."""
    from werkzeug.test import Client

    from tests.emulator import Emulator

    emulator = Emulator()
    client = Client(emulator)
    page = client.get("/_emulator/outlook")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for element in ("person", "room", "subject", "start", "end", "time_zone", "book"):
        assert f'id="{element}"' in text
    answer = client.post(
        "/_emulator/outlook",
        data={
            "person": "MeganB@contoso.test",
            "room": "room.adams@contoso.test",
            "subject": "Planning <b>",
            "start": "2031-03-04T10:00",
            "end": "2031-03-04T11:00",
            "time_zone": "Europe/Brussels",
        },
    )
    text = answer.get_data(as_text=True)
    assert 'id="result" class="ok"' in text, text
    assert "Planning &lt;b&gt;" in text
    events = emulator.store.snapshot("room.adams@contoso.test")
    booked = [e for e in events if e["subject"] == "Planning <b>"]
    assert len(booked) == 1
    assert booked[0]["organizer"]["emailAddress"]["address"] == "MeganB@contoso.test"
    assert booked[0]["start"]["dateTime"].startswith("2031-03-04T09:00")  # UTC
    wrong = client.post(
        "/_emulator/outlook",
        data={
            "person": "nobody@contoso.test",
            "room": "room.adams@contoso.test",
            "start": "2031-03-04T10:00",
            "end": "2031-03-04T09:00",
        },
    )
    assert 'id="result" class="error"' in wrong.get_data(as_text=True)
    # The JSON admin API next to it is unchanged.
    assert client.get("/_emulator/state").status_code == 200
