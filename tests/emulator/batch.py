"""JSON batching (``POST /v1.0/$batch``) for the Graph emulator.

Facts: docs/graph.md#json-batching.

Public API::

    result = run_batch(body, dispatch, max_requests=20, order_seed=None, max_parallel=4)
    # -> {"responses": [{"id", "status", "headers", "body"}, ...]}

``dispatch(request) -> (status, headers, body)`` serves one item; ``request`` is
``{"id", "method" (upper case), "url" (relative to the version, always starting with
"/", query string kept), "headers": dict, "body": object | bytes | None}``. It applies
authentication (the envelope's ``Authorization`` is the caller's job to pass on),
throttling and faults itself. If it raises ``GraphHttpError`` the item gets that status,
headers (e.g. ``Retry-After``) and Graph's JSON error body; any other exception becomes
an item ``500`` (the envelope never fails because one item did).

Envelope errors (``GraphHttpError(400, "BadRequest", ...)``, nothing dispatched):

- body not an object, ``requests`` missing or not a list, an item that is not an object,
  ``id``/``method``/``url`` missing or not strings, ``body`` without ``headers`` holding
  ``Content-Type``, ``dependsOn`` not a list of strings, an absolute ``url``:
  "Invalid batch payload format." (Graph's message for an absolute URL, reported in
  microsoft-graph-docs-contrib#8576);
- no requests, or more than ``max_requests``: message ``TOO_MANY_MESSAGE`` /
  ``EMPTY_MESSAGE`` (Graph's exact text is UNCONFIRMED, docs/graph.md#json-batching);
- duplicate ``id`` (compared case-insensitively, as Graph documents):
  ``DUPLICATE_ID_MESSAGE`` (text UNCONFIRMED);
- ``dependsOn`` with more than one id ("requests can only depend on a single other
  request"), an unknown id, itself, or a cycle: ``DEPENDS_ON_MESSAGE`` (UNCONFIRMED).

Item-level behaviour:

- ``url`` starting with ``/v1.0/`` or ``/beta/`` is not refused as a whole: Graph
  resolves it under the version again and answers the item ``400 BadRequest``
  "Resource not found for the segment 'v1.0'." (msgraph-sdk-javascript#1178); the
  emulator answers that without dispatching. A url without the leading "/" (the docs'
  ``users?$select=...`` example) is accepted.
- A string ``body`` is base64 (standard or URL-safe alphabet); when ``Content-Type`` is
  JSON it is decoded to the JSON value, otherwise the bytes are passed on. Undecodable
  base64 or JSON => item ``400 BadRequest``.
- A dependent of a non-2xx item gets ``424`` with ``FAILED_DEPENDENCY_*`` as Graph error
  body and is not dispatched; that propagates down a chain.

Scheduling follows Outlook's batch rule: without any ``dependsOn`` up to
``max_parallel`` (4) items run at once, taken in request order (threads are kept
between batches, and a batch never waits for another's); when the batch uses
``dependsOn`` all items run one at a time in dependency order (request order where
free).

Response order is deliberately not the request order, so clients must correlate by id:
with ``order_seed`` the responses are shuffled reproducibly (and rotated if the shuffle
happened to give the request order back); without it they come in completion order.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import json
import os
import queue
import random
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .errors import GraphHttpError

Dispatch = Callable[[dict[str, Any]], tuple[int, dict[str, str], Any]]

MALFORMED_MESSAGE = "Invalid batch payload format."
EMPTY_MESSAGE = "Invalid batch payload format: the batch contains no requests."
TOO_MANY_MESSAGE = "The batch contains {count} requests; the maximum is {maximum}."
DUPLICATE_ID_MESSAGE = "Batch request contains duplicate request id '{id}'."
DEPENDS_ON_MESSAGE = "Invalid dependsOn for request '{id}': {reason}."
FAILED_DEPENDENCY_CODE = "FailedDependency"
FAILED_DEPENDENCY_MESSAGE = "The request depends on request '{id}', which failed."

_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"}
_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_VERSION_SEGMENT = re.compile(r"^/(v1\.0|beta)(?=/|$|\?)", re.IGNORECASE)
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class _Item:
    index: int
    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    depends_on: str | None  # lower-cased id of the dependency
    early: tuple[int, dict[str, str], Any] | None = None  # answered without dispatch


def error_body(code: str, message: str) -> dict[str, Any]:
    """Graph's JSON error object, as it appears in a batch item body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


def run_batch(
    body: Any,
    dispatch: Dispatch,
    *,
    max_requests: int = 20,
    order_seed: int | None = None,
    max_parallel: int = 4,
) -> dict[str, Any]:
    """Validate and run a JSON batch; returns the ``{"responses": [...]}`` envelope.

    Raises ``GraphHttpError(400, "BadRequest", ...)`` when the batch is malformed.
    """
    items = _parse(body, max_requests)
    if any(item.depends_on for item in items):
        completed = _run_sequential(items, dispatch)
    else:
        completed = _run_parallel(items, dispatch, max_parallel)
    responses = [
        {"id": item.id, "status": status, "headers": headers, "body": payload}
        for item, (status, headers, payload) in completed
    ]
    if order_seed is not None and len(responses) > 1:
        in_request_order = sorted(
            responses, key=lambda r: next(i.index for i in items if i.id == r["id"])
        )
        shuffled = list(in_request_order)
        random.Random(order_seed).shuffle(shuffled)
        if shuffled == in_request_order:
            shuffled = shuffled[1:] + shuffled[:1]
        responses = shuffled
    return {"responses": responses}


def _bad(message: str) -> GraphHttpError:
    return GraphHttpError(400, "BadRequest", message)


def _parse(body: Any, max_requests: int) -> list[_Item]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _bad(MALFORMED_MESSAGE)
    raw_items = body["requests"]
    if not raw_items:
        raise _bad(EMPTY_MESSAGE)
    if len(raw_items) > max_requests:
        raise _bad(TOO_MANY_MESSAGE.format(count=len(raw_items), maximum=max_requests))
    items: list[_Item] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(raw_items):
        item = _parse_item(index, raw)
        key = item.id.lower()
        if key in seen:
            raise _bad(DUPLICATE_ID_MESSAGE.format(id=item.id))
        seen[key] = item.id
        items.append(item)
    _check_dependencies(items)
    return items


def _parse_item(index: int, raw: Any) -> _Item:
    if not isinstance(raw, dict):
        raise _bad(MALFORMED_MESSAGE)
    item_id, method, url = raw.get("id"), raw.get("method"), raw.get("url")
    if not all(isinstance(v, str) and v for v in (item_id, method, url)):
        raise _bad(MALFORMED_MESSAGE)
    if method.upper() not in _METHODS or _ABSOLUTE.match(url):
        raise _bad(MALFORMED_MESSAGE)
    headers = raw.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise _bad(MALFORMED_MESSAGE)
    headers = {str(k): str(v) for k, v in headers.items()}
    has_body = "body" in raw and raw["body"] is not None
    content_type = _header(headers, "Content-Type")
    if has_body and not content_type:
        raise _bad(MALFORMED_MESSAGE)
    depends_on = raw.get("dependsOn")
    dependency = None
    if depends_on is not None:
        if not isinstance(depends_on, list) or not all(
            isinstance(d, str) for d in depends_on
        ):
            raise _bad(MALFORMED_MESSAGE)
        if len(depends_on) > 1:
            raise _bad(
                DEPENDS_ON_MESSAGE.format(
                    id=item_id, reason="a request can only depend on one other request"
                )
            )
        dependency = depends_on[0].lower() if depends_on else None
    if not url.startswith("/"):
        url = "/" + url
    item = _Item(index, item_id, method.upper(), url, headers, None, dependency)
    version = _VERSION_SEGMENT.match(url)
    if version:
        message = f"Resource not found for the segment '{version.group(1)}'."
        item.early = (400, dict(_JSON_HEADERS), error_body("BadRequest", message))
    elif has_body:
        try:
            item.body = _decode_body(raw["body"], content_type or "")
        except ValueError as exc:
            item.early = (400, dict(_JSON_HEADERS), error_body("BadRequest", str(exc)))
    return item


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _decode_body(body: Any, content_type: str) -> Any:
    if not isinstance(body, str):
        return body
    compact = "".join(body.split())
    try:
        alphabet = b"-_" if ("-" in compact or "_" in compact) else None
        raw = base64.b64decode(
            compact + "=" * (-len(compact) % 4), altchars=alphabet, validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Invalid base64 request body.") from exc
    if "json" in content_type.lower():
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError("Invalid JSON in the base64 request body.") from exc
    return raw


def _check_dependencies(items: list[_Item]) -> None:
    by_key = {item.id.lower(): item for item in items}
    for item in items:
        if item.depends_on is None:
            continue
        if item.depends_on == item.id.lower():
            reason = "a request cannot depend on itself"
        elif item.depends_on not in by_key:
            reason = "it references an id that is not in the batch"
        else:
            reason = ""
        if reason:
            raise _bad(DEPENDS_ON_MESSAGE.format(id=item.id, reason=reason))
    for item in items:
        visited = {item.id.lower()}
        current = item
        while current.depends_on is not None:
            if current.depends_on in visited:
                raise _bad(
                    DEPENDS_ON_MESSAGE.format(id=item.id, reason="circular dependency")
                )
            visited.add(current.depends_on)
            current = by_key[current.depends_on]


def _serve(item: _Item, dispatch: Dispatch) -> tuple[int, dict[str, str], Any]:
    if item.early is not None:
        return item.early
    request = {
        "id": item.id,
        "method": item.method,
        "url": item.url,
        "headers": dict(item.headers),
        "body": item.body,
    }
    try:
        status, headers, payload = dispatch(request)
    except GraphHttpError as exc:
        headers = {**_JSON_HEADERS, **exc.headers}
        return exc.status, headers, error_body(exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - one item must not fail the envelope
        return 500, dict(_JSON_HEADERS), error_body("InternalServerError", repr(exc))
    return int(status), dict(headers or {}), payload


def _run_sequential(
    items: list[_Item], dispatch: Dispatch
) -> list[tuple[_Item, tuple[int, dict[str, str], Any]]]:
    results: dict[str, tuple[int, dict[str, str], Any]] = {}
    done: list[tuple[_Item, tuple[int, dict[str, str], Any]]] = []
    pending = list(items)
    while pending:
        item = next(
            i for i in pending if i.depends_on is None or i.depends_on in results
        )
        pending.remove(item)
        dependency = results.get(item.depends_on) if item.depends_on else None
        if dependency is not None and not 200 <= dependency[0] < 300:
            message = FAILED_DEPENDENCY_MESSAGE.format(id=item.depends_on)
            result = (
                424,
                dict(_JSON_HEADERS),
                error_body(FAILED_DEPENDENCY_CODE, message),
            )
        else:
            result = _serve(item, dispatch)
        results[item.id.lower()] = result
        done.append((item, result))
    return done


class _Workers:
    """Threads kept from one batch to the next.

    A task goes to an idle thread, or to a new thread when none is idle, so a task
    never waits for another batch's tasks: each batch runs as it would on a thread
    pool of its own, without paying for starting and joining threads on every batch
    (that cost more CPU than serving a batch of 20 event creations). A thread idle for
    ``idle_seconds`` ends.
    """

    def __init__(self, name: str, idle_seconds: float = 60.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[tuple[Future, Callable[[], Any]]] = (
            queue.SimpleQueue()
        )
        self._idle = 0
        self._started = 0

    def submit(self, task: Callable[[], Any]) -> Future:
        future: Future = Future()
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes it from the queue
                self._tasks.put((future, task))
                return future
            self._started += 1
            name = f"{self._name}_{self._started}"
        threading.Thread(
            target=self._work, args=(future, task), name=name, daemon=True
        ).start()
        return future

    def _work(self, future: Future, task: Callable[[], Any]) -> None:
        while True:
            if future.set_running_or_notify_cancel():
                try:
                    result = task()
                except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, task
            following = self._next()
            if following is None:
                return
            future, task = following

    def _next(self) -> tuple[Future, Callable[[], Any]] | None:
        with self._lock:
            self._idle += 1
        try:
            return self._tasks.get(timeout=self._idle_seconds)
        except queue.Empty:
            with self._lock:
                # A task queued for this thread just before the time-out is still
                # this thread's to run; otherwise it is no longer counted as idle.
                try:
                    return self._tasks.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return None

    def forget_threads(self) -> None:
        """After a fork: the child has none of the parent's threads."""
        self._lock = threading.Lock()
        self._tasks = queue.SimpleQueue()
        self._idle = 0


_WORKERS = _Workers("batch")
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKERS.forget_threads)


def _run_parallel(
    items: list[_Item], dispatch: Dispatch, max_parallel: int
) -> list[tuple[_Item, tuple[int, dict[str, str], Any]]]:
    # ``workers`` lanes take the items in request order, each lane one item at a time
    # (a thread pool of ``workers`` threads, as Outlook runs up to four items of a
    # batch at once); results are listed in completion order.
    done: list[tuple[_Item, tuple[int, dict[str, str], Any]]] = []
    waiting = collections.deque(items)
    lock = threading.Lock()
    workers = max(1, min(max_parallel, len(items)))

    def lane() -> None:
        while True:
            with lock:
                if not waiting:
                    return
                item = waiting.popleft()
            result = _serve(item, dispatch)
            with lock:
                done.append((item, result))

    lanes = [_WORKERS.submit(lane) for _ in range(workers)]
    for future in lanes:
        future.result()
    return done
