"""Plumbing for scripts/bench.py: a throwaway Odoo database, the in-process Microsoft
emulator, and one measurement per scenario (Graph requests from the emulator's log,
SQL queries from Odoo's per-thread query hooks, wall time, tracemalloc peak).

Nothing here asserts timings: it only counts and reports.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

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


def start_emulator(
    latency_s: float,
    budget: int,
    *,
    window_seconds: float = 600.0,
    log_limit: int = 20000,
):
    """The emulator over HTTPS in this process, with a fixed latency on every Graph
    request (a ``$batch`` envelope pays it once) and Outlook's 4-concurrent limit;
    ``budget`` requests per (app, mailbox) in any ``window_seconds``, and a request
    log of ``log_limit`` entries (a $batch item is one)."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    from tests.emulator import EmulatorServer

    # The default scenario without its seeded meetings: the room calendars start
    # empty, so every event counted is one of the bench's.
    path = os.path.join(REPO_ROOT, "tests", "emulator", "scenarios", "default.json")
    with open(path, encoding="utf-8") as handle:
        scenario = json.load(handle)
    scenario["events"] = []
    server = EmulatorServer(
        scenario=scenario,
        latency=latency_s or None,
        log_limit=log_limit,
        throttle_options={
            "budget": budget,
            "max_concurrent": 4,
            "window_seconds": window_seconds,
        },
    ).start()
    # requests lets these override Session.verify (graph_contract.md §8.6); the
    # bundle holds the system CAs too, so it can stand for the whole process.
    os.environ["REQUESTS_CA_BUNDLE"] = server.ca_bundle_path
    os.environ["CURL_CA_BUNDLE"] = server.ca_bundle_path
    return server


def bench_mailboxes(emulator, count: int) -> list[str]:
    """``count`` room mailboxes the app-only app may use: the default scenario's
    rooms, then rooms added with ``emulator.add_room`` (bench.room01@contoso.test...).
    The app's RBAC scope is lifted (None: every mailbox). Call it again after
    ``emulator.reset()``, which forgets added rooms."""
    emulator.scenario.app(APP_ONLY_APP).rbac_scope = None
    mailboxes = [room.email for room in emulator.scenario.rooms][:count]
    for index in range(count - len(mailboxes)):
        email = f"bench.room{index + 1:02d}@contoso.test"
        if not emulator.scenario.mailbox_exists(email):
            emulator.add_room(email, f"Bench room {index + 1}")
        mailboxes.append(email)
    return mailboxes


def mailbox_usage(emulator, mailbox: str, client_id: str = APP_ONLY_APP) -> dict:
    """The throttle's counters for (app, mailbox): requests (each $batch item counts,
    as Exchange counts them), throttled (429)."""
    key = f"{client_id.lower()}|{mailbox.lower()}"
    return emulator.throttle.stats().get(key, {"requests": 0, "throttled": 0})


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
