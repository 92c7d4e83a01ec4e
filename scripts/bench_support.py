"""Plumbing for scripts/bench.py: a throwaway Odoo database, the Microsoft emulator
(in a process of its own, or in the bench's with --emulator-in-process), and one
measurement per scenario (Graph requests from the emulator's request log, SQL queries
from Odoo's per-thread query hooks, wall time, tracemalloc peak of the bench's
process).

Nothing here asserts timings: it only counts and reports.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_DB = os.environ.get("ODOO_TEST_DB", "room_exchange_sync_test")

# The default emulator scenario (as room_exchange_sync/tests/common.py).
EMULATOR_TENANT = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
APP_ONLY_APP = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
APP_ONLY_SECRET = "app-only-secret~Valid.2028"
ADELE = "AdeleV@contoso.test"
ROOM_ADAMS = "room.adams@contoso.test"


class BenchSetupError(Exception):
    """The bench cannot start (no template database, no Odoo...): exit 1."""


def add_run_options(parser, emulator_in_process: bool = True) -> None:
    """The options every bench shares: the emulator's latency, whether the addon is
    updated in the throwaway database, Odoo's log level, and (``emulator_in_process``)
    where the emulator runs."""
    parser.add_argument(
        "--latency",
        type=float,
        default=20.0,
        help="fixed latency the emulator adds to each Graph request, in ms (20)",
    )
    parser.add_argument(
        "--no-update",
        dest="update",
        action="store_false",
        help="do not update the addon in the throwaway database first (as make test "
        "does; it takes a few seconds and copes with a template made from older code)",
    )
    parser.add_argument("--log-level", default="warn", help="Odoo log level (warn)")
    if emulator_in_process:
        parser.add_argument(
            "--emulator-in-process",
            action="store_true",
            help="run the Microsoft emulator on a thread of the bench's process (its "
            "CPU work then shares the GIL with Odoo and counts in the wall times, its "
            "allocations in peak MB); by default it runs in a process of its own "
            "(python -m tests.emulator), as Microsoft's servers would",
        )


# -- Odoo and its database -------------------------------------------------------


def addons_path() -> str:
    """Odoo's community addons (beside the odoo package) and this repository, as
    scripts/common.sh odoo_addons_path."""
    import odoo.release  # odoo is a namespace package without __file__

    source = os.path.dirname(os.path.dirname(os.path.abspath(odoo.release.__file__)))
    paths = [os.path.join(source, "addons"), REPO_ROOT]
    return ",".join(p for p in paths if os.path.isdir(p))


def configure_odoo(log_level: str) -> None:
    from odoo.tools import config

    config.parse_config(
        [
            f"--addons-path={addons_path()}",
            f"--log-level={log_level}",
            "--http-interface=127.0.0.1",
        ],
        setup_logging=True,
    )


@contextlib.contextmanager
def throwaway_database(template: str = TEMPLATE_DB) -> Iterator[str]:
    """A copy of the test database made by ``make setup`` (addon installed), dropped
    at the end whatever happens."""
    import psycopg2

    try:
        admin = psycopg2.connect(dbname="postgres")
    except psycopg2.Error as error:
        message = f"PostgreSQL cannot be reached: {error}".strip()
        raise BenchSetupError(message) from None
    admin.autocommit = True
    name = f"room_exchange_bench_{os.getpid()}"
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template])
            if cur.fetchone() is None:
                raise BenchSetupError(
                    f"The test database {template} does not exist: run make setup "
                    "first."
                )
            for attempt in range(5):
                try:
                    cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    break
                except psycopg2.errors.ObjectInUse:
                    # Someone (make test) is connected to the template right now.
                    if attempt == 4:
                        raise BenchSetupError(
                            f"The template database {template} is in use by another "
                            "session (make test?); try again when it is idle."
                        ) from None
                    time.sleep(2)
        try:
            yield name
        finally:
            _close_registry(name)
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def _close_registry(name: str) -> None:
    with contextlib.suppress(Exception):
        from odoo.modules.registry import Registry

        Registry.delete(name)
    with contextlib.suppress(Exception):
        import odoo.sql_db

        odoo.sql_db.close_db(name)


def load_registry(name: str, update: bool = False):
    """The registry of the throwaway database; with ``update`` the addon is updated
    first (as make test does), for a template made from older code."""
    from odoo.modules.registry import Registry

    if update:
        return Registry.new(
            name, update_module=True, upgrade_modules=["room_exchange_sync"]
        )
    return Registry(name)


# -- the emulator ----------------------------------------------------------------
#
# Two ways to run it, with the same interface (``EmulatorHandle``): in a process of
# its own (the default, as Microsoft's servers are: its CPU work is not counted in
# the bench's wall time through the GIL, nor its allocations by tracemalloc), or in
# the bench's process (--emulator-in-process, the old way).

READY_TIMEOUT = 60.0  # seconds for ``python -m tests.emulator`` to print its URLs
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
ADMIN_TIMEOUT = 120.0  # seconds for one admin API call (the log can be long)


def bench_scenario() -> dict:
    """The default scenario without its seeded meetings: the room calendars start
    empty, so every event counted is one of the bench's."""
    path = os.path.join(REPO_ROOT, "tests", "emulator", "scenarios", "default.json")
    with open(path, encoding="utf-8") as handle:
        scenario = json.load(handle)
    scenario["events"] = []
    return scenario


class EmulatorHandle:
    """What the bench uses of the emulator, wherever it runs: its URLs and CA bundle,
    ``stop()``, and the admin operations below. A context manager (stops at exit)."""

    base_url = ""
    graph_url = ""
    ca_bundle_path = ""
    where = ""  # "own process (pid n)" / "in-process", for the bench's messages

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # admin operations
    def reset(self) -> None:
        """Back to the scenario as loaded (added rooms and RBAC changes forgotten)."""
        raise NotImplementedError

    def add_room(self, email: str, display_name: str) -> None:
        raise NotImplementedError

    def set_rbac_scope(self, client_id: str, scope: list[str] | None) -> None:
        """The mailboxes the app-only app may open; None: every mailbox."""
        raise NotImplementedError

    def room_emails(self) -> list[str]:
        raise NotImplementedError

    def mailbox_exists(self, address: str) -> bool:
        raise NotImplementedError

    @property
    def request_log(self) -> list[dict]:
        """Identity requests, Graph requests and $batch items, oldest first."""
        raise NotImplementedError

    def clear_log(self) -> None:
        raise NotImplementedError

    def configure_throttle(self, **options) -> None:
        """``Throttle.configure`` options: budget, window_seconds, max_concurrent..."""
        raise NotImplementedError

    def reset_throttle(self) -> None:
        raise NotImplementedError

    def throttle_stats(self) -> dict:
        """``{"app|mailbox": {"requests", "throttled", ...}}``."""
        raise NotImplementedError

    def snapshot(self, mailbox: str) -> list[dict]:
        """Every item stored in ``mailbox``'s calendar."""
        raise NotImplementedError

    def book_room(self, person: str, room: str, subject: str, start, end) -> dict:
        """``person`` books ``room`` from Outlook (ISO 8601 start/end, UTC)."""
        raise NotImplementedError

    def subscriptions_list(self) -> list[dict]:
        """Every live change-notification subscription, of every app."""
        raise NotImplementedError


class InProcessEmulator(EmulatorHandle):
    """``tests.emulator.EmulatorServer`` on a thread of the bench's process."""

    def __init__(self, server) -> None:
        self.server = server
        self.emulator = server.emulator
        self.base_url = server.base_url
        self.graph_url = server.graph_url
        self.ca_bundle_path = server.ca_bundle_path
        self.where = "in-process"

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        self.emulator.reset()

    def add_room(self, email: str, display_name: str) -> None:
        self.emulator.add_room(email, display_name)

    def set_rbac_scope(self, client_id: str, scope: list[str] | None) -> None:
        self.emulator.scenario.app(client_id).rbac_scope = scope

    def room_emails(self) -> list[str]:
        return [room.email for room in self.emulator.scenario.rooms]

    def mailbox_exists(self, address: str) -> bool:
        return self.emulator.scenario.mailbox_exists(address)

    @property
    def request_log(self) -> list[dict]:
        return self.emulator.request_log

    def clear_log(self) -> None:
        self.emulator.clear_log()

    def configure_throttle(self, **options) -> None:
        self.emulator.throttle.configure(**options)

    def reset_throttle(self) -> None:
        self.emulator.throttle.reset()

    def throttle_stats(self) -> dict:
        return self.emulator.throttle.stats()

    def snapshot(self, mailbox: str) -> list[dict]:
        return self.emulator.store.snapshot(mailbox)

    def book_room(self, person: str, room: str, subject: str, start, end) -> dict:
        return self.emulator.book_room(person, room, subject, start, end)

    def subscriptions_list(self) -> list[dict]:
        return self.emulator.subscriptions.list()


class EmulatorProcess(EmulatorHandle):
    """``python -m tests.emulator`` in a process (and session) of its own, driven
    through its admin HTTP API (``/_emulator/``, tests/emulator/admin.py).

    It is stopped by ``stop()`` (SIGTERM, then SIGKILL), and also stops by itself
    when the bench's end of its standard input closes (``--stop-on-stdin-eof``), so
    that it does not outlive a bench killed outright."""

    def __init__(
        self,
        *,
        latency_s: float,
        budget: int,
        window_seconds: float,
        max_concurrent: int,
        log_limit: int,
        scenario: dict | None = None,
    ) -> None:
        import requests

        self._tmpdir = tempfile.mkdtemp(prefix="room-exchange-bench-")
        scenario_path = os.path.join(self._tmpdir, "scenario.json")
        with open(scenario_path, "w", encoding="utf-8") as handle:
            json.dump(scenario or bench_scenario(), handle)
        command = [
            sys.executable,
            "-m",
            "tests.emulator",
            "--port",
            "0",
            "--scenario",
            scenario_path,
            "--log-limit",
            str(log_limit),
            "--throttle-budget",
            str(budget),
            "--throttle-window",
            str(window_seconds),
            "--throttle-max-concurrent",
            str(max_concurrent),
            "--stop-on-stdin-eof",
        ]
        if latency_s:
            command += ["--latency", str(latency_s)]
        self.process: subprocess.Popen | None = None
        try:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches the bench only; it stops us
            )
            info = self._ready()
        except BaseException:
            self.stop()
            raise
        # The scenario is read at start only (a reset goes back to its copy in memory).
        self._remove_tmpdir()
        self.info = info
        self.base_url = info["base_url"]
        self.graph_url = info["graph_url"]
        self.admin_url = info["admin_url"]
        self.ca_bundle_path = info["ca_bundle"]
        self.where = f"own process (pid {self.process.pid})"
        self.session = requests.Session()
        self.session.trust_env = False  # loopback: no proxy, no REQUESTS_CA_BUNDLE
        self.session.verify = self.ca_bundle_path

    def _ready(self) -> dict:
        process = self.process
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchSetupError(
                    f"the emulator (python -m tests.emulator) did not start within "
                    f"{READY_TIMEOUT:g} s"
                )
            readable, _, _ = select.select([process.stdout], [], [], remaining)
            if readable:
                break
        line = process.stdout.readline()
        if not line:
            code = process.wait(timeout=STOP_TIMEOUT)
            raise BenchSetupError(
                f"the emulator (python -m tests.emulator) exited with status {code} "
                "before it was ready (see its messages above)"
            )
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise BenchSetupError(
                f"the emulator printed {line[:200]!r} instead of its JSON ready line"
            ) from None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        process.kill()
                    process.wait()
            with contextlib.suppress(OSError):
                process.stdout.close()
        session = getattr(self, "session", None)
        if session is not None:
            session.close()
        self._remove_tmpdir()

    def _remove_tmpdir(self) -> None:
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = ""

    def _call(self, method: str, path: str, body: dict | None = None):
        answer = self.session.request(
            method, f"{self.admin_url}/{path}", json=body, timeout=ADMIN_TIMEOUT
        )
        if not answer.ok:
            raise RuntimeError(
                f"emulator admin {method} /_emulator/{path}: {answer.status_code} "
                f"{answer.text[:300]}"
            )
        return answer.json()

    def reset(self) -> None:
        self._call("POST", "reset")

    def add_room(self, email: str, display_name: str) -> None:
        self._call(
            "POST", "scenario/room", {"email": email, "display_name": display_name}
        )

    def set_rbac_scope(self, client_id: str, scope: list[str] | None) -> None:
        self._call(
            "POST", "scenario/rbac-scope", {"client_id": client_id, "rbac_scope": scope}
        )

    def _state(self) -> dict:
        return self._call("GET", "state")

    def room_emails(self) -> list[str]:
        return [room["email"] for room in self._state()["rooms"]]

    def mailbox_exists(self, address: str) -> bool:
        state = self._state()
        wanted = address.casefold()
        keys = [key for room in state["rooms"] for key in (room["id"], room["email"])]
        keys += [key for user in state["users"] for key in (user["id"], user["upn"])]
        return any(str(key).casefold() == wanted for key in keys)

    @property
    def request_log(self) -> list[dict]:
        return self._call("GET", "log")["value"]

    def clear_log(self) -> None:
        self._call("DELETE", "log")

    def configure_throttle(self, **options) -> None:
        self._call("POST", "throttle", options)

    def reset_throttle(self) -> None:
        self._call("POST", "throttle", {"reset": True})

    def throttle_stats(self) -> dict:
        return self._call("GET", "counters")["throttle"]

    def snapshot(self, mailbox: str) -> list[dict]:
        path = f"mailboxes/{quote(mailbox, safe='@')}/events"
        return self._call("GET", path)["value"]

    def book_room(self, person: str, room: str, subject: str, start, end) -> dict:
        body = {
            "person": person,
            "room": room,
            "subject": subject,
            "start": str(start),
            "end": str(end),
        }
        return self._call("POST", "outlook/book", body)

    def subscriptions_list(self) -> list[dict]:
        return self._call("GET", "subscriptions")["value"]


def start_emulator(
    latency_s: float,
    budget: int,
    *,
    window_seconds: float = 600.0,
    log_limit: int = 20000,
    in_process: bool = False,
    scenario: dict | None = None,
) -> EmulatorHandle:
    """The emulator over HTTPS, in a process of its own (or, with ``in_process``, on
    a thread of this one), with a fixed latency on every Graph request (a ``$batch``
    envelope pays it once) and Outlook's 4-concurrent limit; ``budget`` requests per
    (app, mailbox) in any ``window_seconds``, and a request log of ``log_limit``
    entries (a $batch item is one). The room calendars start empty (``scenario``:
    scenario data to serve instead of the default one's)."""
    if in_process:
        if REPO_ROOT not in sys.path:
            sys.path.insert(0, REPO_ROOT)
        from tests.emulator import EmulatorServer

        server = EmulatorServer(
            scenario=scenario or bench_scenario(),
            latency=latency_s or None,
            log_limit=log_limit,
            throttle_options={
                "budget": budget,
                "max_concurrent": 4,
                "window_seconds": window_seconds,
            },
        ).start()
        emulator: EmulatorHandle = InProcessEmulator(server)
    else:
        emulator = EmulatorProcess(
            latency_s=latency_s,
            budget=budget,
            window_seconds=window_seconds,
            max_concurrent=4,
            log_limit=log_limit,
            scenario=scenario,
        )
    # requests lets these override Session.verify
    # (docs/graph.md#ca-bundle-variables-override-verify); the
    # bundle holds the system CAs too, so it can stand for the whole process.
    os.environ["REQUESTS_CA_BUNDLE"] = emulator.ca_bundle_path
    os.environ["CURL_CA_BUNDLE"] = emulator.ca_bundle_path
    return emulator


def set_up_connection(env, emulator, name="Emulator (bench)"):
    """A ready app-only connection to the emulator (a handle of ``start_emulator``
    or an ``EmulatorServer``: anything with its base, Graph and CA bundle addresses)."""
    connection = env["room.exchange.connection"].create(
        {
            "name": name,
            "cloud": "custom",
            "custom_authority_url": emulator.base_url,
            "custom_graph_url": emulator.graph_url,
            "custom_ca_bundle": emulator.ca_bundle_path,
            "tenant_id": EMULATOR_TENANT,
            "client_id": APP_ONLY_APP,
            "client_secret_input": APP_ONLY_SECRET,
            "auth_mode": "application",
        }
    )
    connection.action_test_connection()
    if connection.state != "ready":
        raise BenchSetupError(f"connection test failed: {connection.last_error}")
    return connection


def bench_mailboxes(emulator: EmulatorHandle, count: int) -> list[str]:
    """``count`` room mailboxes the app-only app may use: the default scenario's
    rooms, then rooms added with ``emulator.add_room`` (bench.room01@contoso.test...).
    The app's RBAC scope is lifted (None: every mailbox). Call it again after
    ``emulator.reset()``, which forgets added rooms."""
    emulator.set_rbac_scope(APP_ONLY_APP, None)
    mailboxes = emulator.room_emails()[:count]
    for index in range(count - len(mailboxes)):
        email = f"bench.room{index + 1:02d}@contoso.test"
        if not emulator.mailbox_exists(email):
            emulator.add_room(email, f"Bench room {index + 1}")
        mailboxes.append(email)
    return mailboxes


def mailbox_usage(
    emulator: EmulatorHandle, mailbox: str, client_id: str = APP_ONLY_APP
) -> dict:
    """The throttle's counters for (app, mailbox): requests (each $batch item counts,
    as Exchange counts them), throttled (429)."""
    key = f"{client_id.lower()}|{mailbox.lower()}"
    return emulator.throttle_stats().get(key, {"requests": 0, "throttled": 0})


# -- measuring -------------------------------------------------------------------

_TABLE = re.compile(
    r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([\w.]+)"?', re.IGNORECASE
)


def _query_kind(query) -> tuple[str, str | None]:
    if isinstance(query, bytes):
        query = query.decode("utf-8", "replace")
    elif not isinstance(query, str):
        query = str(query)
    verb = (query.lstrip().split(None, 1) or ["?"])[0].upper()
    table = None
    match = _TABLE.match(query)
    if match:
        table = match.group(1)
    return verb, table


@dataclass
class Measurement:
    """What one scenario cost."""

    label: str
    graph_requests: int = 0  # Graph operations: plain requests + $batch items
    graph_http: int = 0  # HTTP requests to /v1.0 ($batch envelope = 1)
    auth_http: int = 0  # token endpoint + OpenID discovery
    throttled: int = 0  # 429 answers (plain or batch items)
    wall: float = 0.0
    queries: int = 0
    peak_mb: float | None = None
    verbs: collections.Counter = field(default_factory=collections.Counter)
    writes: collections.Counter = field(default_factory=collections.Counter)
    routes: collections.Counter = field(default_factory=collections.Counter)
    items: int = 0  # bookings exported / meetings imported
    texts: collections.Counter = field(default_factory=collections.Counter)
    note: str = ""

    @property
    def round_trips(self) -> int:
        return self.graph_http + self.auth_http


class Meter:
    """Counts Graph traffic (the emulator's request log) and SQL queries (Odoo's
    ``query_hooks`` on the current thread, also cross-checked with
    ``cr.sql_log_count``) around a block."""

    def __init__(self, emulator, *, memory: bool, texts: bool = False) -> None:
        self.emulator = emulator
        self.memory = memory
        self.texts = texts  # keep the queries' first words (--details)
        if memory and not tracemalloc.is_tracing():
            tracemalloc.start()

    def close(self) -> None:
        if self.memory and tracemalloc.is_tracing():
            tracemalloc.stop()

    @contextlib.contextmanager
    def measure(self, label: str, cr) -> Iterator[Measurement]:
        result = Measurement(label)
        thread = threading.current_thread()
        hooks = list(getattr(thread, "query_hooks", ()))

        def hook(_cr, query, _params, _start, _delay):
            verb, table = _query_kind(query)
            result.verbs[verb] += 1
            if table:
                result.writes[f"{verb} {table}"] += 1
            if self.texts:
                text = query.decode() if isinstance(query, bytes) else str(query)
                result.texts[" ".join(text.split())[:150]] += 1

        thread.query_hooks = [*hooks, hook]
        self.emulator.clear_log()
        sql_before = cr.sql_log_count
        if self.memory:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        started = time.perf_counter()
        try:
            yield result
            cr.flush()  # pending ORM writes and precommit hooks belong to the block
        finally:
            result.wall = time.perf_counter() - started
            if self.memory:
                result.peak_mb = (tracemalloc.get_traced_memory()[1] - base) / 2**20
            thread.query_hooks = hooks
            result.queries = sum(result.verbs.values())
            counted = cr.sql_log_count - sql_before
            if counted != result.queries:
                result.note += f" (cr.sql_log_count says {counted})"
            self._graph(result)

    def _graph(self, result: Measurement) -> None:
        for entry in self.emulator.request_log:
            path = entry.get("path") or ""
            status = entry.get("status")
            if status == 429:
                result.throttled += 1
            if entry.get("route") == "identity":
                result.auth_http += 1
                result.routes["auth " + path.rsplit("/", 1)[-1]] += 1
                continue
            if not path.startswith("/v1.0"):
                continue
            route = f"{entry.get('method')} {entry.get('route')}"
            if entry.get("batch"):
                result.graph_requests += 1
                result.routes[f"{route} (in $batch)"] += 1
            elif "$batch" in path:
                result.graph_http += 1
                result.routes["POST /$batch envelope"] += 1
            else:
                result.graph_http += 1
                result.graph_requests += 1
                result.routes[route] += 1
