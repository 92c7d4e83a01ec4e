#!/usr/bin/env python3
"""Screenshots of the demo for the docs: ``make screenshots``.

Drives headless Chromium (Debian's, through Playwright) through the newcomer's path of
``scripts/demo.py`` and the README's admin guide: log in as admin, open the tested
connection, open the room Adams, authorize it with the emulator's sign-in page, pick
the calendar, save (its first sync sends its bookings to Exchange), open the export
wizard for a booking made since, book meetings on the emulator's Outlook page and sync
them, then the room bookings, the overlaps, the rooms overview and the settings, and
connect a building's rooms at once from Rooms from Microsoft 365. PNGs go to
``docs/screenshots/`` (``--out``); the README shows them in that order.

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
    "01-connection-form.png",
    "02-exchange-tab-before-authorization.png",
    "03-emulator-sign-in.png",
    "04-calendar-picker.png",
    "05-exchange-tab-authorized.png",
    "06-export-wizard-preview.png",
    "07-outlook-page.png",
    "08-meeting-from-outlook-in-odoo.png",
    "09-overlaps.png",
    "10-rooms-overview.png",
    "11-settings.png",
    "12-rooms-from-microsoft-365.png",
    "13-rooms-from-microsoft-365-mapped.png",
]
# Tall enough for the whole Exchange tab, its export box included.
VIEWPORT = {"width": 1280, "height": 1100}
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
    page.wait_for_selector("div[name=exchange_buttons]", state="attached")


def take(page, out: Path, name: str, taken: list[Path], full_page: bool = False):
    # Let fonts, toasts and transitions settle: this is a picture, not a test.
    page.wait_for_timeout(400)
    path = out / name
    page.screenshot(path=str(path), full_page=full_page)
    taken.append(path)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    say(f"saved {shown}")


def call(page, odoo_url: str, model: str, method: str, args: list, kwargs=None):
    """A JSON-RPC call as the signed-in user (the browser's session)."""
    answer = page.request.post(
        f"{odoo_url}/web/dataset/call_kw/{model}/{method}",
        data={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "model": model,
                "method": method,
                "args": args,
                "kwargs": kwargs or {},
            },
        },
    )
    body = answer.json()
    if "error" in body:
        raise RuntimeError(body["error"]["data"]["message"])
    return body["result"]


def book_in_outlook(outlook, person, subject, start, hours, time_zone=None):
    outlook.select_option("#person", person)
    outlook.select_option("#room", "room.adams@contoso.test")
    outlook.fill("#subject", subject)
    outlook.fill("#start", start.strftime("%Y-%m-%dT%H:%M"))
    outlook.fill("#end", (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M"))
    if time_zone:
        outlook.fill("#time_zone", time_zone)
    outlook.click("#book")
    outlook.wait_for_selector("#result.ok")


def shoot(odoo_url: str, emulator_url: str, out: Path) -> list[Path]:  # noqa: C901
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        context = browser.new_context(
            ignore_https_errors=True,
            viewport=VIEWPORT,
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

        # Admin guide, 2: the connection, tested (Ready), with its sync options.
        page.goto(f"{odoo_url}/odoo/exchange-connections")
        page.click(".o_data_row td.o_data_cell")
        page.wait_for_selector(".o_statusbar_status .o_arrow_button_current")
        take(page, out, SHOTS[0], taken)

        # 3: the room Adams, from Exchange sync > Configuration > Rooms.
        page.goto(f"{odoo_url}/odoo/exchange-rooms")
        page.click(f".o_data_row td:has-text('{ROOM}')")
        page.wait_for_url(re.compile(r".*/odoo/exchange-rooms/\d+$"))
        room_url = page.url
        room_id = int(room_url.rsplit("/", 1)[1])
        open_exchange_tab(page)
        take(page, out, SHOTS[1], taken)

        page.click("button[name=action_exchange_authorize]")
        page.wait_for_selector("#username")
        page.fill("#username", SIGN_IN[0])
        take(page, out, SHOTS[2], taken)
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
        take(page, out, SHOTS[3], taken)
        page.click(f".o-autocomplete--dropdown-item:has-text('{ROOM}')")
        page.click("button[name=action_exchange_save]")
        page.wait_for_selector("div[name=exchange_state] .badge:text-is('Authorized')")
        # The first sync is the export of the room's bookings: Refresh until done.
        deadline = time.monotonic() + 120
        while not page.locator(
            "div[name=exchange_export_state] .badge:text-is('Done')"
        ).count():
            if time.monotonic() > deadline:
                raise TimeoutError("the first export of Adams did not finish")
            refresh = page.locator("button[name=action_exchange_refresh]")
            if refresh.count():
                refresh.click()
            page.wait_for_timeout(1000)
        page.locator(".o_notification_close").evaluate_all(
            "buttons => buttons.forEach(b => b.click())"
        )
        take(page, out, SHOTS[4], taken)

        # Export existing bookings: one beyond the sync window (365 days ahead),
        # which only the export sends (Until reaches it).
        rooms = call(
            page,
            odoo_url,
            "resource.booking.combination",
            "search_read",
            [[["resource_ids", "in", [room_id]]]],
            {"fields": ["id", "resource_ids"]},
        )
        combination = next(c for c in rooms if c["resource_ids"] == [room_id])
        booking_type, partner = (
            call(page, odoo_url, model, "search", [[["name", "=", name]]], {"limit": 1})
            for model, name in (
                ("resource.booking.type", "Meeting room"),
                ("res.partner", "Demo requester"),
            )
        )
        start = (datetime.utcnow() + timedelta(days=400)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        call(
            page,
            odoo_url,
            "resource.booking",
            "create",
            [
                {
                    "name": "Training session",
                    "type_id": booking_type[0],
                    "combination_auto_assign": False,
                    "combination_id": combination["id"],
                    "partner_ids": [[6, 0, partner]],
                    "start": start.strftime("%Y-%m-%d %H:%M:%S"),
                    "duration": 2,
                }
            ],
        )
        page.reload()
        open_exchange_tab(page)
        page.click("button[name=action_exchange_run_export]:visible")
        dialog = page.locator(".modal:has-text('Outlook/Exchange Bulk Export')")
        dialog.locator("div[name=to_export_count]:has-text('1')").wait_for()
        take(page, out, SHOTS[5], taken)
        dialog.locator("button[name=action_run]").click()
        dialog.locator("div[name=export_running]").wait_for()
        dialog.locator("button[special=cancel]").click()

        # How the sync works: a meeting booked in Outlook by someone else, and one
        # over the demo's "Sprint planning" (tomorrow 08:00 UTC, Adams).
        outlook = context.new_page()
        outlook.goto(f"{emulator_url}/_emulator/outlook")
        start = (datetime.now() + timedelta(days=1)).replace(
            hour=15, minute=0, second=0, microsecond=0
        )
        book_in_outlook(
            outlook,
            "MeganB@contoso.test",
            "Design review (booked in Outlook)",
            start,
            1,
        )
        take(outlook, out, SHOTS[6], taken)
        clash = (datetime.utcnow() + timedelta(days=1)).replace(
            hour=8, minute=15, second=0, microsecond=0
        )
        book_in_outlook(
            outlook, "AlexW@contoso.test", "Walk-in workshop", clash, 0.5, "UTC"
        )
        outlook.close()

        page.goto(room_url)
        open_exchange_tab(page)
        page.click("button[name=action_exchange_sync_now]")
        page.wait_for_selector(
            ".o_field_widget[name=exchange_last_sync_summary]"
            ":has-text('imported from Outlook')"
        )
        page.goto(f"{odoo_url}/odoo/exchange-room-bookings?view_type=list")
        page.wait_for_selector(".o_data_row:has-text('Design review')")
        take(page, out, SHOTS[7], taken)

        page.goto(f"{odoo_url}/odoo/exchange-overlaps")
        page.wait_for_selector(".o_data_row, .o_view_nocontent")
        if page.locator(".o_data_row").count():
            take(page, out, SHOTS[8], taken)
        else:
            say("no overlap listed: no overlap screenshot")

        page.goto(f"{odoo_url}/odoo/exchange-sync")
        page.wait_for_selector(".o_kanban_record")
        take(page, out, SHOTS[9], taken)

        page.goto(
            f"{odoo_url}/odoo/action-room_exchange_sync.res_config_settings_action"
        )
        page.wait_for_selector("#room_exchange_pause_setting")
        page.locator("#room_exchange_connections_setting").scroll_into_view_if_needed()
        take(page, out, SHOTS[10], taken)

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
        take(page, out, SHOTS[11], taken)
        page.click("button[name=action_map_selected]")
        page.locator(".modal button[name=action_map]").click()
        page.locator(".modal div[name=done_summary]").wait_for()
        page.wait_for_timeout(500)
        take(page, out, SHOTS[12], taken)
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
