#!/usr/bin/env python3
"""Screenshots of the demo for the docs: ``make screenshots``.

Drives headless Chromium (Debian's, through Playwright) through the newcomer's path of
``scripts/demo.py``: log in as admin, open the room Adams, authorize it with the
emulator's sign-in page, pick the calendar, save, open the export wizard, the rooms
overview, book a meeting on the emulator's Outlook page and sync it, then connect a
building's rooms at once from Rooms from Microsoft 365. PNGs go to
``docs/screenshots/`` (``--out``).

Against a running demo: ``--odoo-url http://localhost:8069 --emulator-url
https://127.0.0.1:8443``. With ``--start-demo`` (the Makefile target) it starts
``scripts/demo.py`` itself on free ports with a throwaway database, and drops it after.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("PYTHON") or sys.executable
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SIGN_IN = ("AdeleV@contoso.test", "Adele-Pa55!")
ROOM = "Adams"
SHOTS = [
    "01-exchange-tab-before-authorization.png",
    "02-emulator-sign-in.png",
    "03-calendar-picker.png",
    "04-exchange-tab-authorized.png",
    "05-export-wizard-preview.png",
    "06-room-calendars-overview.png",
    "07-outlook-page.png",
    "08-meeting-from-outlook-in-odoo.png",
    "09-conflicts.png",
    "10-rooms-from-microsoft-365.png",
    "11-rooms-from-microsoft-365-mapped.png",
]
# Rooms added to the emulator's directory for "Connect many rooms at once": two
# buildings with a room list each, two floors of four rooms; Adele may edit all but
# one (read-only), which the mapping then reports with the command to run.
DIRECTORY_BUILDINGS = ("Atrium", "Beacon")
DIRECTORY_READ_ONLY = "atrium.203@contoso.test"


def say(message: str) -> None:
    print(f"screenshots: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    import ssl

    context = ssl._create_unverified_context()  # the emulator's own CA
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the demo stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as answer:
                if answer.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s ({last})")


class Demo:
    """``scripts/demo.py`` on free ports with a throwaway database."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db or f"rxs_demo_{uuid.uuid4().hex[:8]}"
        self.odoo_port = free_port()
        self.emulator_port = free_port()
        self.odoo_url = f"http://localhost:{self.odoo_port}"
        self.emulator_url = f"https://127.0.0.1:{self.emulator_port}"
        self.process: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/{self.db}-demo.log")

    def start(self, timeout: float = 150) -> Demo:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                PYTHON,
                str(REPO_ROOT / "scripts" / "demo.py"),
                "--db",
                self.db,
                "--odoo-port",
                str(self.odoo_port),
                "--emulator-port",
                str(self.emulator_port),
                "--reset",
            ],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
        try:
            wait_for(
                self.emulator_url + "/_emulator/outlook", min(timeout, 40), self.process
            )
            wait_for(self.odoo_url + "/web/login", timeout, self.process)
        except Exception:
            self.stop()
            raise
        return self

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        # Stray members of the group (none expected): gone with the demo.
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.drop()

    def drop(self) -> None:
        subprocess.run(
            [PYTHON, "-m", "odoo", "db", "drop", self.db],
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        )
        import psycopg2

        conn = psycopg2.connect(dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                cr.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.db,),
                )
                cr.execute(f'DROP DATABASE IF EXISTS "{self.db}"')
        finally:
            conn.close()


def launch_browser(playwright):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("screenshots: Debian's chromium is not installed (make setup)")
    # As the addon's browser test: Chromium needs more address space than a limit an
    # Odoo-like parent may have set.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        return playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def emulator_admin(emulator_url: str, path: str, body: dict) -> dict:
    """A call to the emulator's admin API (/_emulator/, tests/emulator/admin.py)."""
    import json
    import ssl

    request = urllib.request.Request(
        f"{emulator_url}/_emulator/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    context = ssl._create_unverified_context()  # the emulator's own CA
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        return json.loads(answer.read() or b"{}")


def add_directory_rooms(emulator_url: str) -> None:
    """Rooms in the emulator's directory (Graph Places), shared with Adele."""
    for building in DIRECTORY_BUILDINGS:
        room_list = f"rooms.{building.lower()}@contoso.test"
        emulator_admin(
            emulator_url,
            "scenario/room-list",
            {"email": room_list, "display_name": f"{building} rooms"},
        )
        for floor in (1, 2):
            for number in range(1, 5):
                email = f"{building.lower()}.{floor}{number:02d}@contoso.test"
                emulator_admin(
                    emulator_url,
                    "scenario/room",
                    {
                        "email": email,
                        "display_name": f"{building} {floor}{number:02d}",
                        "capacity": (4, 6, 8, 12)[number - 1],
                        "building": building,
                        "floor_number": floor,
                        "floor_label": f"Floor {floor}",
                        "room_list": room_list,
                        "tags": ["whiteboard"] if number % 2 else [],
                        "video_device_name": "Teams Room" if number == 4 else None,
                    },
                )
                role = "read" if email == DIRECTORY_READ_ONLY else "write"
                emulator_admin(
                    emulator_url,
                    "scenario/share",
                    {"room": email, "user": SIGN_IN[0], "role": role},
                )


def open_exchange_tab(page) -> None:
    page.click("a.nav-link:has-text('Exchange')")
    page.wait_for_selector("div[name=exchange_buttons]")
    page.wait_for_timeout(300)


def take(page, out: Path, name: str, taken: list[Path], full_page: bool = False):
    path = out / name
    page.screenshot(path=str(path), full_page=full_page)
    taken.append(path)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    say(f"saved {shown}")


def shoot(odoo_url: str, emulator_url: str, out: Path) -> list[Path]:  # noqa: C901
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        context = browser.new_context(
            ignore_https_errors=True,
            viewport={"width": 1280, "height": 800},
            locale="en-US",
            timezone_id="Europe/Brussels",
        )
        page = context.new_page()
        page.set_default_timeout(30000)
        page.goto(f"{odoo_url}/web/login")
        page.fill("input[name=login]", "admin")
        page.fill("input[name=password]", "admin")
        page.click("button[type=submit]")
        page.wait_for_url("**/odoo**")

        # The room Adams, from the rooms list.
        page.goto(
            f"{odoo_url}/odoo/action-room_exchange_sync.resource_resource_action_rooms"
        )
        page.click(f".o_data_row td:has-text('{ROOM}')")
        page.wait_for_url(re.compile(r".*/odoo/.*/\d+$"))
        room_url = page.url
        open_exchange_tab(page)
        take(page, out, SHOTS[0], taken)

        page.click("button[name=action_exchange_authorize]")
        page.wait_for_selector("#username")
        page.fill("#username", SIGN_IN[0])
        take(page, out, SHOTS[1], taken)
        page.fill("#password", SIGN_IN[1])
        page.click("#sign-in")
        # The consent page, the first time this account uses the app.
        page.wait_for_selector("#accept, .o_form_view")
        if page.locator("#accept").count():
            page.click("#accept")
        page.wait_for_url(f"{odoo_url}/odoo/**")
        page.wait_for_selector(".o_form_view")
        open_exchange_tab(page)
        page.fill("div[name=exchange_choice_id] input", ROOM)
        page.wait_for_selector(f".o-autocomplete--dropdown-item:has-text('{ROOM}')")
        page.wait_for_timeout(300)
        take(page, out, SHOTS[2], taken)
        page.click(f".o-autocomplete--dropdown-item:has-text('{ROOM}')")
        page.click("button[name=action_exchange_save]")
        page.wait_for_selector("div[name=exchange_state] :text-is('Authorized')")
        page.wait_for_timeout(500)
        take(page, out, SHOTS[3], taken)

        export = page.locator("button[name=action_exchange_run_export]")
        if export.count() and export.first.is_visible():
            export.first.click()
            page.wait_for_selector(".modal-dialog")
            preview = page.locator(
                ".modal-dialog button[name=action_preview].btn-primary"
            )
            if preview.count() and preview.first.is_visible():
                preview.first.click()
            run = page.locator(".modal-dialog button[name=action_run]")
            try:
                run.wait_for(state="visible", timeout=30000)
            except Exception:  # noqa: BLE001 (no run button: still worth a picture)
                say("the export preview offers no 'Run the Export' button")
            page.wait_for_timeout(500)
            take(page, out, SHOTS[4], taken)
            if run.count() and run.first.is_visible():
                run.first.click()
                page.wait_for_timeout(1500)
            page.keyboard.press("Escape")
        else:
            say("no 'Run the Export' button on the tab: no export screenshot")

        page.goto(
            f"{odoo_url}/odoo/action-room_exchange_sync.room_exchange_calendar_action"
        )
        page.wait_for_selector(".o_list_view, .o_kanban_view")
        page.wait_for_timeout(500)
        take(page, out, SHOTS[5], taken)

        # A meeting booked "in Outlook", then a sync of the room.
        outlook = context.new_page()
        outlook.goto(f"{emulator_url}/_emulator/outlook")
        start = (datetime.now() + timedelta(days=1)).replace(
            hour=15, minute=0, second=0, microsecond=0
        )
        outlook.select_option("#person", "MeganB@contoso.test")
        outlook.select_option("#room", "room.adams@contoso.test")
        outlook.fill("#subject", "Design review (booked in Outlook)")
        outlook.fill("#start", start.strftime("%Y-%m-%dT%H:%M"))
        outlook.fill("#end", (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        outlook.click("#book")
        outlook.wait_for_selector("#result.ok")
        take(outlook, out, SHOTS[6], taken)
        # And one over the demo's "Sprint planning" (tomorrow 08:00 UTC, Adams): a
        # conflict once synced.
        clash = (datetime.utcnow() + timedelta(days=1)).replace(
            hour=8, minute=15, second=0, microsecond=0
        )
        outlook.select_option("#person", "AlexW@contoso.test")
        outlook.fill("#subject", "Walk-in workshop")
        outlook.fill("#start", clash.strftime("%Y-%m-%dT%H:%M"))
        outlook.fill("#end", (clash + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
        outlook.fill("#time_zone", "UTC")
        outlook.click("#book")
        outlook.wait_for_selector("#result.ok")
        outlook.close()

        page.goto(room_url)
        page.wait_for_selector(".o_form_view")
        open_exchange_tab(page)
        sync = page.locator("button[name=action_exchange_sync_now]")
        if sync.count() and sync.first.is_visible():
            sync.first.click()
            page.wait_for_timeout(2500)
        page.goto(
            f"{odoo_url}/odoo/action-resource_booking.resource_booking_action"
            "?view_type=list"
        )
        page.wait_for_selector(".o_list_view")
        while page.locator(".o_searchview .o_facet_remove").count():
            page.locator(".o_searchview .o_facet_remove").first.click()
            page.wait_for_timeout(400)
        page.fill(".o_searchview_input", "Outlook")
        page.keyboard.press("Enter")
        page.wait_for_timeout(1000)
        take(page, out, SHOTS[7], taken)

        page.goto(
            f"{odoo_url}/odoo/action-room_exchange_sync."
            "resource_booking_action_exchange_conflicts"
        )
        page.wait_for_selector(".o_list_view, .o_kanban_view, .o_view_nocontent")
        page.wait_for_timeout(800)
        if page.locator(".o_data_row").count():
            take(page, out, SHOTS[8], taken)
        else:
            say("no conflict listed: no conflict screenshot")

        # Connect many rooms at once: a building's rooms from the directory.
        add_directory_rooms(emulator_url)
        page.goto(
            f"{odoo_url}/odoo/action-room_exchange_sync.room_exchange_connection_action"
        )
        page.locator(".o_data_row").first.click()
        page.click("button[name=action_open_room_directory]")
        page.locator(".o_list_view .o_group_header").first.wait_for()
        page.fill(".o_searchview_input", "Atrium")
        page.locator(".o_searchview_autocomplete .o-dropdown-item").filter(
            has_text="Search Building for:"
        ).click()
        page.locator(".o_list_view .o_group_header:has-text('Atrium')").click()
        page.locator(".o_list_view .o_data_row").first.wait_for()
        page.click("thead .o_list_record_selector input")
        page.wait_for_timeout(500)
        take(page, out, SHOTS[9], taken)
        page.click("button[name=action_map_selected]")
        page.locator(".modal button[name=action_map]").click()
        page.locator(".modal div[name=done_summary]").wait_for()
        page.wait_for_timeout(500)
        take(page, out, SHOTS[10], taken)
        context.close()
        browser.close()
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--odoo-url", default="http://localhost:8069")
    parser.add_argument("--emulator-url", default="https://127.0.0.1:8443")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--start-demo",
        action="store_true",
        help="start scripts/demo.py on free ports with a throwaway database",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    demo = None
    if args.start_demo:
        say("starting the demo on free ports")
        demo = Demo().start()
        args.odoo_url, args.emulator_url = demo.odoo_url, demo.emulator_url
    try:
        taken = shoot(
            args.odoo_url.rstrip("/"), args.emulator_url.rstrip("/"), Path(args.out)
        )
    except Exception:
        if demo is not None:
            sys.stderr.write(demo.log_tail())
        raise
    finally:
        if demo is not None:
            demo.stop()
    say(f"{len(taken)} screenshots in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
