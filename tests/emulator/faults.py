"""Fault injection for the Graph emulator: scripted rules, random mode, global latency.

Public API::

    injector = FaultInjector()
    rule_id = injector.add(FaultRule(kind="status", status=429, code="TooManyRequests",
                                     retry_after=2, path=r"/calendar/events$"))
    injector.add({"kind": "reset", "method": "POST", "times": 2})   # dict form
    injector.remove(rule_id); injector.clear()
    injector.set_latency(fixed=0.05, jitter=0.02, seed=1)
    injector.set_random(seed=7, rate=0.2, kinds=None, retry_after=1.0)
    rule = injector.take(method, path, mailbox=..., client_id=...)   # None = no fault
    injector.latency_for_request()   # seconds to sleep before serving any request
    injector.stats()                 # {"status": n, "reset": n, ..., "total": n}
    to_error(rule)                   # GraphHttpError for kinds status / delta_expired
    drop_connection(environ)         # close a werkzeug connection without an answer

Rule kinds and **how the server must apply them** (router contract)
------------------------------------------------------------------

For every Graph request (``/v1.0/...``, including the ``$batch`` envelope itself), in
this order:

1. Draw ``injector.latency_for_request()`` seconds (global latency, 0 when unset): the
   request spends them inside its mailbox's concurrency slot (step 3, ``latency``).
2. Authenticate (401s are not faults); then call ``take(method, path, mailbox=...,
   client_id=...)``. ``path`` may carry the ``/v1.0`` prefix and a query string: both
   are stripped before matching, so rules are written against ``/users/x/events``.
   ``mailbox`` is the addressed mailbox (UPN or id as in the URL, or the signed-in
   user for ``/me``), ``client_id`` the token's ``appid``/``azp``.
3. Apply the returned rule (the returned object is a private copy: ``delay`` already
   includes the random jitter, so use ``rule.delay`` as is):

   - ``status``: do not touch the store; answer ``raise to_error(rule)``, i.e. status
     ``rule.status`` with Graph's JSON error ``rule.code``/``rule.message`` and, when
     ``rule.retry_after`` is not None, ``Retry-After`` in whole seconds (rounded up).
     Faults come before throttling, so they use no throttle slot.
   - ``reset``: do not touch the store; close the TCP connection without writing any
     byte (``drop_connection(environ)`` then return an empty response; werkzeug treats
     the failed write as a dropped connection). Clients see ``ConnectionError``.
   - ``latency``: spend ``rule.delay`` more seconds, with the global latency, inside
     the mailbox's concurrency slot (before the handler; a request that takes no slot
     spends them before answering), then serve normally.
   - ``timeout_after_apply``: serve the request normally (throttling, store change,
     change notifications: the change IS applied), throw the response away, then
     ``drop_connection(environ, hold=rule.delay)``: the socket stays open and silent
     for ``delay`` seconds (clients with a shorter read timeout see ``ReadTimeout``)
     and is then closed. This is the "did my POST happen?" case that ``transactionId``
     exists for.
   - ``delta_expired``: only ever returned for delta paths (``.../delta``, see below);
     answer ``raise to_error(rule)`` = ``410 SyncStateNotFound`` (Graph's room-mailbox
     body, docs/graph.md#delta-tokens-expire) as if the token generation were gone; the
     router adds the ``Location`` that restarts the same query, as for a real 410.

Inside ``$batch`` the router calls ``take(..., allow_connection_faults=False)`` for
each item (a single item cannot drop the envelope's connection): scripted
``reset``/``timeout_after_apply`` rules then do not match items (they stay available
for the envelope), and random draws of those kinds become an item ``504``.
``status``/``delta_expired`` become the item's status/headers/body, ``latency`` delays
the item.

Matching: ``method`` case-insensitive equality; ``path`` a regex *searched* in the
normalised path; ``mailbox`` case-insensitive equality; ``client_id`` equality; ``None``
matches anything. ``delta_expired`` rules additionally match only paths ending in
``/delta``. Scripted rules are tried first, oldest first; ``times`` is decremented on
each use and the rule is removed at 0 (``times=None``: until removed). Random mode is
consulted only when no scripted rule matched; it draws from one ``random.Random(seed)``
per call of ``take`` so a single-threaded sequence of requests gets the same faults on
every run (concurrent requests may interleave their draws differently).
"""

from __future__ import annotations

import math
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import GraphHttpError

KINDS = ("status", "reset", "latency", "timeout_after_apply", "delta_expired")
CONNECTION_KINDS = ("reset", "timeout_after_apply")
DEFAULT_RANDOM_KINDS = ("429", "503", "504", "reset", "timeout_after_apply")

_DEFAULT_STATUS = 503
_DEFAULT_CODE = "ServiceUnavailable"
_DEFAULT_MESSAGE = "The service is temporarily unavailable. Please retry later."

# Shorthands accepted in set_random(kinds=[...]) besides the rule kinds themselves.
_STATUS_SHORTHANDS: dict[str, tuple[int, str, str]] = {
    "429": (429, "TooManyRequests", "Please retry again later."),
    "503": (503, _DEFAULT_CODE, _DEFAULT_MESSAGE),
    "504": (504, "GatewayTimeout", "The gateway did not receive a timely response."),
}
_DELTA_EXPIRED = (
    410,
    "SyncStateNotFound",
    "The sync state generation is not found; generation=1;[highest=4][4][3][2].",
)
_DELTA_PATH = re.compile(r"/delta/?$", re.IGNORECASE)
_VERSION_PREFIX = re.compile(r"^/(v1\.0|beta)(?=/|$)", re.IGNORECASE)


@dataclass
class FaultRule:
    """One scripted fault; see the module docstring for how each kind is applied."""

    kind: str
    method: str | None = None
    path: str | None = None
    mailbox: str | None = None
    client_id: str | None = None
    times: int | None = 1
    status: int = _DEFAULT_STATUS
    code: str = _DEFAULT_CODE
    message: str = _DEFAULT_MESSAGE
    retry_after: float | None = None
    delay: float = 0.0
    jitter: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {KINDS}"
            )
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")
        if self.path is not None:
            re.compile(self.path)
        untouched = (self.status, self.code, self.message) == (
            _DEFAULT_STATUS,
            _DEFAULT_CODE,
            _DEFAULT_MESSAGE,
        )
        if self.kind == "delta_expired" and untouched:
            self.status, self.code, self.message = _DELTA_EXPIRED

    def matches(
        self,
        method: str,
        path: str,
        mailbox: str | None,
        client_id: str | None,
    ) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        if self.mailbox is not None and (
            mailbox is None or self.mailbox.lower() != mailbox.lower()
        ):
            return False
        if self.client_id is not None and self.client_id != client_id:
            return False
        return self.kind != "delta_expired" or bool(_DELTA_PATH.search(path))


def to_error(rule: FaultRule) -> GraphHttpError:
    """The Graph error answer of a ``status`` or ``delta_expired`` rule."""
    headers = {}
    if rule.retry_after is not None:
        # HTTP's Retry-After is whole seconds; round up so a client never comes early.
        headers["Retry-After"] = str(max(0, math.ceil(rule.retry_after)))
    return GraphHttpError(rule.status, rule.code, rule.message, headers=headers)


def drop_connection(environ: Mapping[str, Any], *, hold: float = 0.0) -> None:
    """Close the client connection of a werkzeug dev-server request without answering.

    ``hold`` seconds of silence first (``timeout_after_apply``). Uses werkzeug's
    ``environ["werkzeug.socket"]``; a no-op without it. ``SO_LINGER`` 0 turns the close
    into a TCP reset, so the client fails at once instead of waiting for more bytes.
    """
    if hold > 0:
        time.sleep(hold)
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        # The client may already have gone away; nothing left to close.
        return


class FaultInjector:
    """Thread-safe registry of scripted faults plus random mode and global latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._counts: dict[str, int] = {}
        self._latency = (0.0, 0.0)
        self._latency_rng = random.Random()
        self._jitter_rng = random.Random(0)
        self._random: dict[str, Any] | None = None

    def add(self, rule: FaultRule | Mapping[str, Any]) -> str:
        """Register a rule (a ``FaultRule`` or a dict of its fields); returns its id."""
        if not isinstance(rule, FaultRule):
            known = {f.name for f in fields(FaultRule)}
            unknown = set(rule) - known
            if unknown:
                raise ValueError(f"unknown FaultRule field(s): {sorted(unknown)}")
            rule = FaultRule(**rule)
        with self._lock:
            self._rules.append(rule)
        return rule.id

    def remove(self, rule_id: str) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def clear(self) -> None:
        """Remove all scripted rules, random mode and global latency; zero the stats."""
        with self._lock:
            self._rules = []
            self._random = None
            self._latency = (0.0, 0.0)
            self._counts = {}

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [replace(r) for r in self._rules]

    def set_latency(
        self, fixed: float = 0.0, jitter: float = 0.0, seed: int | None = None
    ) -> None:
        """Delay every Graph request by ``fixed`` ± ``jitter`` seconds (never < 0)."""
        with self._lock:
            self._latency = (fixed, jitter)
            self._latency_rng = random.Random(seed)

    def latency_for_request(self) -> float:
        with self._lock:
            fixed, jitter = self._latency
            if jitter:
                fixed += self._latency_rng.uniform(-jitter, jitter)
            return max(0.0, fixed)

    def set_random(
        self,
        *,
        seed: int,
        rate: float,
        kinds: list[str] | None = None,
        retry_after: float = 1.0,
        hold: float = 1.0,
    ) -> None:
        """Random mode: each request has probability ``rate`` of one fault.

        ``kinds`` entries are ``"429"``, ``"503"``, ``"504"`` (status faults; 429 and
        503 carry ``Retry-After: retry_after``) or a rule kind (``"reset"``,
        ``"timeout_after_apply"`` held for ``hold`` seconds, ``"latency"`` of ``hold``
        seconds, ``"delta_expired"`` which only hits delta paths). ``rate=0`` disables.
        """
        chosen = tuple(kinds) if kinds else DEFAULT_RANDOM_KINDS
        for kind in chosen:
            if kind not in _STATUS_SHORTHANDS and kind not in KINDS:
                raise ValueError(f"unknown random fault kind {kind!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        with self._lock:
            self._random = {
                "rng": random.Random(seed),
                "rate": rate,
                "kinds": chosen,
                "retry_after": retry_after,
                "hold": hold,
            }

    def take(
        self,
        method: str,
        path: str,
        *,
        mailbox: str | None = None,
        client_id: str | None = None,
        allow_connection_faults: bool = True,
    ) -> FaultRule | None:
        """The fault to apply to this request, or None; consumes one use of it."""
        path = _normalise_path(path)
        with self._lock:
            for rule in self._rules:
                if not allow_connection_faults and rule.kind in CONNECTION_KINDS:
                    continue
                if rule.matches(method, path, mailbox, client_id):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return self._issue(rule)
            drawn = self._draw_random(path, allow_connection_faults)
            return self._issue(drawn) if drawn is not None else None

    def stats(self) -> dict[str, int]:
        """Faults handed out so far, per kind, plus ``total``."""
        with self._lock:
            counts = {kind: self._counts.get(kind, 0) for kind in KINDS}
            counts["total"] = sum(counts.values())
            return counts

    def _issue(self, rule: FaultRule) -> FaultRule:
        issued = replace(rule, times=None)
        if issued.jitter:
            issued.delay = max(
                0.0, issued.delay + self._jitter_rng.uniform(-rule.jitter, rule.jitter)
            )
            issued.jitter = 0.0
        self._counts[issued.kind] = self._counts.get(issued.kind, 0) + 1
        return issued

    def _draw_random(
        self, path: str, allow_connection_faults: bool
    ) -> FaultRule | None:
        mode = self._random
        if mode is None:
            return None
        rng: random.Random = mode["rng"]
        # Always draw both numbers so one request consumes the same amount of the
        # random stream whatever the outcome: runs stay reproducible.
        hit = rng.random() < mode["rate"]
        kind = rng.choice(mode["kinds"])
        if not hit:
            return None
        if kind == "delta_expired" and not _DELTA_PATH.search(path):
            return None
        if kind in CONNECTION_KINDS and not allow_connection_faults:
            kind = "504"
        if kind in _STATUS_SHORTHANDS:
            status, code, message = _STATUS_SHORTHANDS[kind]
            retry_after = mode["retry_after"] if status in (429, 503) else None
            return FaultRule(
                kind="status",
                status=status,
                code=code,
                message=message,
                retry_after=retry_after,
                times=None,
            )
        return FaultRule(kind=kind, delay=mode["hold"], times=None)


def _normalise_path(path: str) -> str:
    path = path.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    return _VERSION_PREFIX.sub("", path) or "/"
