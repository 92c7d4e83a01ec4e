"""Unit tests of the emulator's stand-alone components: throttling, faults, batch and
subscriptions (the latter against a real local webhook receiver)."""

import base64
import datetime as dt
import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.emulator.batch import run_batch
from tests.emulator.errors import GraphHttpError
from tests.emulator.faults import FaultInjector, FaultRule, drop_connection, to_error
from tests.emulator.subscriptions import SubscriptionManager, format_datetime
from tests.emulator.throttling import Throttle


class FakeMonotonic:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeUtc:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class LocalServer:
    """A werkzeug server on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# Throttling


def test_throttle_concurrency_limit_is_per_app_and_mailbox():
    throttle = Throttle(max_concurrent=2)
    inside = threading.Barrier(3)
    release = threading.Event()

    def hold():
        with throttle.slot("app", "room1@contoso.com"):
            inside.wait(timeout=5)
            release.wait(timeout=5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    inside.wait(timeout=5)
    try:
        with pytest.raises(GraphHttpError) as info:
            with throttle.slot("APP", "Room1@Contoso.com"):
                pass
        error = info.value
        assert (error.status, error.code) == (429, "ApplicationThrottled")
        assert error.message == "Application is over its MailboxConcurrency limit."
        assert error.headers == {"Retry-After": "1"}
        # Another mailbox, or another app on the same mailbox, is not affected.
        with throttle.slot("app", "room2@contoso.com"):
            pass
        with throttle.slot("other-app", "room1@contoso.com"):
            pass
    finally:
        release.set()
        for thread in holders:
            thread.join()
    with throttle.slot("app", "room1@contoso.com"):
        pass
    stats = throttle.stats()["app|room1@contoso.com"]
    assert stats == {
        "requests": 4,
        "throttled": 1,
        "max_concurrency": 2,
        "in_flight": 0,
    }


def test_throttle_budget_sliding_window_with_fake_clock():
    clock = FakeMonotonic()
    throttle = Throttle(budget=3, window_seconds=10, clock=clock)
    for t in (0, 1, 2):
        clock.now = t
        with throttle.slot("app", "room"):
            pass
    clock.now = 3
    with pytest.raises(GraphHttpError) as info:
        with throttle.slot("app", "room"):
            pass
    assert (info.value.status, info.value.code) == (429, "TooManyRequests")
    assert info.value.message == "Please retry again later."
    # This refusal counts as usage too, so room appears when the t=1 entry leaves.
    assert info.value.headers["Retry-After"] == "8"
    # Usage keeps accruing while throttled: the t=3 refusal counted, so coming back
    # early at 10.5 finds 1, 2 and 3 in the window, and that refusal counts too.
    clock.now = 10.5
    with pytest.raises(GraphHttpError) as info:
        with throttle.slot("app", "room"):
            pass
    assert info.value.headers["Retry-After"] == "2"  # the t=2 entry leaves at 12
    clock.now = 12
    with throttle.slot("app", "room"):
        pass
    assert throttle.stats()["app|room"]["throttled"] == 2


def test_throttle_without_counting_throttled_requests():
    clock = FakeMonotonic()
    throttle = Throttle(budget=1, window_seconds=10, clock=clock, count_throttled=False)
    with throttle.slot("app", "room"):
        pass
    clock.now = 5
    with pytest.raises(GraphHttpError):
        with throttle.slot("app", "room"):
            pass
    clock.now = 10.1
    with throttle.slot("app", "room"):
        pass


def test_throttle_configure_disable_and_reset():
    throttle = Throttle(max_concurrent=1)
    throttle.configure(enabled=False)
    with throttle.slot("app", "room"), throttle.slot("app", "room"):
        assert throttle.stats()["app|room"]["in_flight"] == 2
    throttle.configure(enabled=True, budget=0)
    with pytest.raises(GraphHttpError) as info:
        with throttle.slot("app", "room"):
            pass
    assert info.value.code == "TooManyRequests"
    with pytest.raises(TypeError):
        throttle.configure(max_concurent=3)
    throttle.reset()
    assert throttle.stats() == {}


# Faults


def test_scripted_fault_matches_and_counts_down():
    faults = FaultInjector()
    faults.add(
        FaultRule(
            kind="status",
            method="post",
            path=r"/calendar/events$",
            mailbox="Room1@contoso.com",
            times=2,
            status=429,
            code="TooManyRequests",
            retry_after=1.5,
        )
    )
    assert faults.take("GET", "/users/room1@contoso.com/calendar/events") is None
    other_room = "room2@contoso.com"
    path = f"/users/{other_room}/calendar/events"
    assert faults.take("POST", path, mailbox=other_room) is None
    hits = [
        faults.take(
            "POST",
            "/v1.0/users/room1@contoso.com/calendar/events?$select=id",
            mailbox="room1@contoso.com",
        )
        for _ in range(3)
    ]
    assert [h is not None for h in hits] == [True, True, False]
    error = to_error(hits[0])
    assert (error.status, error.code, error.headers) == (
        429,
        "TooManyRequests",
        {"Retry-After": "2"},
    )
    assert faults.stats()["status"] == 2
    assert faults.stats()["total"] == 2
    assert faults.rules() == []


def test_fault_rules_order_dict_form_client_and_removal():
    faults = FaultInjector()
    first = faults.add({"kind": "reset", "client_id": "app-a", "times": None})
    faults.add({"kind": "latency", "delay": 0.2, "jitter": 0.1})
    assert faults.take("GET", "/users/x/events", client_id="app-a").kind == "reset"
    assert faults.take("GET", "/users/x/events", client_id="app-a").kind == "reset"
    latency = faults.take("GET", "/users/x/events", client_id="app-b")
    assert latency.kind == "latency" and latency.jitter == 0.0
    assert 0.1 <= latency.delay <= 0.3
    faults.remove(first)
    assert faults.take("GET", "/users/x/events", client_id="app-a") is None
    with pytest.raises(ValueError):
        faults.add({"kind": "reset", "colour": "red"})
    with pytest.raises(ValueError):
        FaultRule(kind="explode")


def test_delta_expired_only_hits_delta_requests():
    faults = FaultInjector()
    faults.add(FaultRule(kind="delta_expired"))
    assert faults.take("GET", "/users/r/calendar/events") is None
    rule = faults.take("GET", "/users/r/calendarView/delta?$deltatoken=abc")
    error = to_error(rule)
    assert (error.status, error.code) == (410, "SyncStateNotFound")
    assert "sync state generation is not found" in error.message


def test_connection_faults_skipped_inside_batch_items():
    faults = FaultInjector()
    faults.add(FaultRule(kind="timeout_after_apply", delay=1))
    item = faults.take("PATCH", "/users/r/events/1", allow_connection_faults=False)
    assert item is None
    assert faults.take("POST", "/$batch").kind == "timeout_after_apply"


def _random_sequence(seed, rate=0.3, **kwargs):
    faults = FaultInjector()
    faults.set_random(seed=seed, rate=rate, **kwargs)
    out = []
    for i in range(200):
        rule = faults.take("GET", f"/users/r/events/{i}")
        out.append(None if rule is None else (rule.kind, rule.status, rule.retry_after))
    return out, faults.stats()


def test_random_mode_is_reproducible_from_seed():
    first, stats = _random_sequence(42)
    again, _ = _random_sequence(42)
    other, _ = _random_sequence(43)
    assert first == again
    assert first != other
    assert 30 <= stats["total"] <= 90
    drawn = {entry[:2] for entry in first if entry}
    assert drawn == {
        ("status", 429),
        ("status", 503),
        ("status", 504),
        ("reset", 503),
        ("timeout_after_apply", 503),
    }
    assert all(e[2] == 1.0 for e in first if e and e[1] == 429)
    only_429, _ = _random_sequence(1, rate=1.0, kinds=["429"], retry_after=7)
    assert set(only_429) == {("status", 429, 7)}
    faults = FaultInjector()
    faults.set_random(seed=3, rate=1.0, kinds=["reset"])
    rule = faults.take("GET", "/users/r/events", allow_connection_faults=False)
    assert (rule.kind, rule.status) == ("status", 504)


def test_global_latency_is_seeded():
    faults = FaultInjector()
    assert faults.latency_for_request() == 0.0
    faults.set_latency(fixed=0.1, jitter=0.05, seed=5)
    first = [faults.latency_for_request() for _ in range(5)]
    faults.set_latency(fixed=0.1, jitter=0.05, seed=5)
    assert [faults.latency_for_request() for _ in range(5)] == first
    assert all(0.05 <= d <= 0.15 for d in first)
    faults.clear()
    assert faults.latency_for_request() == 0.0


def test_drop_connection_recipes_against_werkzeug():
    applied = []

    @Request.application
    def app(request):
        if request.path == "/reset":
            drop_connection(request.environ)
        elif request.path == "/timeout":
            applied.append(request.path)
            drop_connection(request.environ, hold=0.6)
        return Response("served")

    server = LocalServer(app)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(server.url + "/reset", timeout=2)
        with pytest.raises(requests.ReadTimeout):
            requests.post(server.url + "/timeout", timeout=0.2)
        assert applied == ["/timeout"]
        assert requests.get(server.url + "/ok", timeout=2).text == "served"
    finally:
        server.close()


# Batch


def _echo(calls=None):
    def dispatch(request):
        if calls is not None:
            calls.append(request)
        return 200, {"Content-Type": "application/json"}, {"echo": request["url"]}

    return dispatch


def _items(n):
    return [
        {"id": str(i), "method": "GET", "url": f"/users/r/events/{i}"} for i in range(n)
    ]


def test_batch_accepts_twenty_and_refuses_twenty_one():
    calls = []
    result = run_batch({"requests": _items(20)}, _echo(calls))
    assert len(result["responses"]) == 20 == len(calls)
    by_id = {r["id"]: r for r in result["responses"]}
    assert by_id["7"] == {
        "id": "7",
        "status": 200,
        "headers": {"Content-Type": "application/json"},
        "body": {"echo": "/users/r/events/7"},
    }
    calls.clear()
    with pytest.raises(GraphHttpError) as info:
        run_batch({"requests": _items(21)}, _echo(calls))
    assert (info.value.status, info.value.code) == (400, "BadRequest")
    assert calls == []
    with pytest.raises(GraphHttpError):
        run_batch({"requests": []}, _echo())


def test_batch_duplicate_ids_fail_the_whole_batch():
    calls = []
    same_ids = [{"id": key, "method": "GET", "url": "/me"} for key in ("A", "a")]
    body = {"requests": [*_items(2), *same_ids]}
    with pytest.raises(GraphHttpError) as info:
        run_batch(body, _echo(calls))
    assert info.value.status == 400
    assert calls == []


@pytest.mark.parametrize(
    "bad_item",
    [
        {"id": "x", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"},
        {"id": "x", "method": "POST", "url": "/me/events", "body": {"a": 1}},
        {"id": "x", "method": "GET"},
        {"id": "x", "method": "GET", "url": "/me", "dependsOn": ["0", "1"]},
        {"id": "x", "method": "GET", "url": "/me", "dependsOn": ["nope"]},
        {"id": "x", "method": "GET", "url": "/me", "dependsOn": ["x"]},
        {"id": "x", "method": "GET", "url": "/me", "dependsOn": "0"},
    ],
)
def test_batch_malformed_items_fail_the_whole_batch(bad_item):
    with pytest.raises(GraphHttpError) as info:
        run_batch({"requests": [*_items(2), bad_item]}, _echo())
    assert (info.value.status, info.value.code) == (400, "BadRequest")


def test_batch_absolute_url_message_and_cycle():
    with pytest.raises(GraphHttpError) as info:
        run_batch(
            {"requests": [{"id": "1", "method": "GET", "url": "https://x/v1.0/me"}]},
            _echo(),
        )
    assert info.value.message == "Invalid batch payload format."
    cycle = [
        {"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]},
    ]
    with pytest.raises(GraphHttpError):
        run_batch({"requests": cycle}, _echo())


def test_batch_version_prefixed_url_is_an_item_error():
    calls = []
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/v1.0/users/r/events"},
            {"id": "2", "method": "GET", "url": "users/r/events"},
        ]
    }
    by_id = {r["id"]: r for r in run_batch(body, _echo(calls))["responses"]}
    assert by_id["1"]["status"] == 400
    assert by_id["1"]["body"]["error"]["message"] == (
        "Resource not found for the segment 'v1.0'."
    )
    assert by_id["2"]["status"] == 200
    assert [c["url"] for c in calls] == ["/users/r/events"]


def test_batch_depends_on_chain_runs_in_dependency_order():
    calls = []
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/a"},
            {"id": "2", "method": "GET", "url": "/b", "dependsOn": ["1"]},
            {"id": "4", "method": "GET", "url": "/d", "dependsOn": ["2"]},
            {"id": "3", "method": "GET", "url": "/c", "dependsOn": ["4"]},
        ]
    }
    result = run_batch(body, _echo(calls))
    assert [c["id"] for c in calls] == ["1", "2", "4", "3"]
    assert {r["status"] for r in result["responses"]} == {200}


def test_batch_failed_dependency_gives_424_without_dispatch():
    calls = []

    def dispatch(request):
        calls.append(request["id"])
        if request["id"] == "1":
            raise GraphHttpError(404, "ErrorItemNotFound", "The item was not found.")
        return 200, {}, {}

    body = {
        "requests": [
            {"id": "1", "method": "DELETE", "url": "/users/r/events/x"},
            {"id": "2", "method": "GET", "url": "/b", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/c", "dependsOn": ["2"]},
            {"id": "4", "method": "GET", "url": "/d"},
        ]
    }
    by_id = {r["id"]: r for r in run_batch(body, dispatch)["responses"]}
    assert calls == ["1", "4"]
    assert by_id["1"]["status"] == 404
    assert by_id["1"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["2"]["status"] == by_id["3"]["status"] == 424
    assert by_id["2"]["body"]["error"]["code"] == "FailedDependency"
    assert by_id["4"]["status"] == 200


def test_batch_responses_are_shuffled_reproducibly():
    ids = [str(i) for i in range(8)]

    def order(seed):
        result = run_batch({"requests": _items(8)}, _echo(), order_seed=seed)
        return [r["id"] for r in result["responses"]]

    first, again = order(3), order(3)
    assert first == again
    assert first != ids and sorted(first) == ids
    two = run_batch({"requests": _items(2)}, _echo(), order_seed=0)["responses"]
    assert [r["id"] for r in two] == ["1", "0"]


def test_batch_item_throttling_passes_through():
    def dispatch(request):
        if request["id"] == "1":
            raise GraphHttpError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                headers={"Retry-After": "7"},
            )
        if request["id"] == "2":
            return 429, {"Retry-After": "3"}, {"error": {"code": "TooManyRequests"}}
        return 201, {}, {"id": "new"}

    responses = run_batch({"requests": _items(3)}, dispatch)["responses"]
    by_id = {r["id"]: r for r in responses}
    assert by_id["1"]["status"] == 429
    assert by_id["1"]["headers"]["Retry-After"] == "7"
    assert by_id["1"]["body"]["error"]["code"] == "ApplicationThrottled"
    assert (by_id["2"]["status"], by_id["2"]["headers"]) == (429, {"Retry-After": "3"})
    assert by_id["0"]["status"] == 201


def test_batch_base64_bodies():
    seen = {}

    def dispatch(request):
        seen[request["id"]] = request["body"]
        return 200, {}, None

    payload = base64.b64encode(json.dumps({"subject": "Réunion"}).encode()).decode()
    body = {
        "requests": [
            {"id": "json", "method": "POST", "url": "/me/events", "body": payload,
             "headers": {"content-type": "application/json"}},
            {"id": "bin", "method": "PUT", "url": "/me/photo/$value",
             "body": base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("="),
             "headers": {"Content-Type": "image/jpeg"}},
            {"id": "obj", "method": "PATCH", "url": "/me/events/1", "body": {"a": 1},
             "headers": {"Content-Type": "application/json"}},
            {"id": "bad", "method": "POST", "url": "/me/events", "body": "not base64!",
             "headers": {"Content-Type": "application/json"}},
        ]
    }  # fmt: skip
    by_id = {r["id"]: r for r in run_batch(body, dispatch)["responses"]}
    assert seen == {"json": {"subject": "Réunion"}, "bin": b"\xfb\xff", "obj": {"a": 1}}
    assert by_id["bad"]["status"] == 400


def test_batch_runs_at_most_four_items_at_once():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def dispatch(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return 200, {}, None

    run_batch({"requests": _items(12)}, dispatch)
    assert state["peak"] == 4


# Subscriptions


class Receiver:
    """Webhook endpoint: validation echo plus recorded notification POSTs."""

    def __init__(self) -> None:
        self.validation = "ok"  # ok | wrong | 500 | slow | html
        self.notify_statuses: list[int] = []  # popped per notification POST
        self.notify_delay = 0.0
        self.tokens: list[tuple[str, str, str]] = []
        self.received: list[tuple[str, dict]] = []
        self.server = LocalServer(self.app)

    @Request.application
    def app(self, request):
        raw_query = urlsplit(request.url).query
        if "validationToken" in request.args:
            token = parse_qs(raw_query)["validationToken"][0]
            self.tokens.append((request.path, token, request.content_type))
            if self.validation == "slow":
                time.sleep(1.0)
            if self.validation == "500":
                return Response("no", status=500)
            if self.validation == "wrong":
                return Response(json.dumps(token), content_type="text/plain")
            if self.validation == "html":
                return Response(token, content_type="text/html")
            return Response(token, content_type="text/plain; charset=utf-8")
        self.received.append((request.path, request.get_json()))
        if self.notify_delay:
            time.sleep(self.notify_delay)
        status = self.notify_statuses.pop(0) if self.notify_statuses else 202
        return Response("", status=status)


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.server.close()


@pytest.fixture
def clock():
    return FakeUtc()


@pytest.fixture
def manager(clock):
    mgr = SubscriptionManager(
        clock=clock,
        validation_timeout=0.4,
        delivery_timeout=0.3,
        retry_delays=(0.01, 0.01),
    )
    yield mgr
    mgr.stop()


MAILBOXES = {
    "room1@contoso.com": "room1-guid",
    "room1-guid": "room1-guid",
    "room2@contoso.com": "room2-guid",
    "adele@contoso.com": "adele-guid",
}


def _create(manager, receiver, clock, *, delegated=None, **overrides):
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.server.url + "/notify?tenant=t1",
        "resource": "/users/room1@contoso.com/events",
        "expirationDateTime": format_datetime(clock.now + dt.timedelta(minutes=4230)),
        "clientState": "s3cret",
    }
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    return manager.create(
        body=body,
        tenant_id="tenant-guid",
        client_id="app-guid",
        delegated_upn=delegated,
        mailbox_of_resource=lambda user: MAILBOXES.get(user.lower()),
    )


def test_subscription_handshake_ok(manager, receiver, clock):
    sub = _create(
        manager,
        receiver,
        clock,
        lifecycleNotificationUrl=receiver.server.url + "/lifecycle",
    )
    assert sub["applicationId"] == "app-guid"
    assert sub["changeType"] == "created,updated,deleted"
    assert sub["clientState"] == "s3cret"
    assert sub["includeResourceData"] is False
    assert sub["latestSupportedTlsVersion"] == "v1_2"
    assert sub["expirationDateTime"] == "2026-03-04T10:30:00.0000000Z"
    assert [t[0] for t in receiver.tokens] == ["/notify", "/lifecycle"]
    path, token, content_type = receiver.tokens[0]
    assert content_type.startswith("text/plain")
    assert any(c in token for c in " &+/=:")
    assert manager.get(sub["id"]) == sub
    assert manager.list("app-guid") == [sub]
    assert manager.list("other-app") == []
    kinds = [(d["kind"], d["status"]) for d in manager.deliveries()]
    assert kinds == [("validation", 200), ("validation", 200)]


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("500", "must respond with 200 OK"),
        ("wrong", "must exactly match validationToken"),
        ("slow", "did not respond within"),
        ("html", "text/plain"),
    ],
)
def test_subscription_handshake_failures_store_nothing(
    manager, receiver, clock, mode, fragment
):
    receiver.validation = mode
    with pytest.raises(GraphHttpError) as info:
        _create(manager, receiver, clock)
    assert (info.value.status, info.value.code) == (400, "InvalidRequest")
    assert info.value.message.startswith("Subscription validation request failed.")
    assert fragment in info.value.message
    assert manager.list() == []


def test_subscription_lifecycle_url_is_validated_too(manager, receiver, clock):
    with pytest.raises(GraphHttpError):
        _create(
            manager,
            receiver,
            clock,
            lifecycleNotificationUrl="http://127.0.0.1:9/closed",
        )
    assert manager.list() == []


def test_delegated_subscription_on_room_is_forbidden(manager, receiver, clock):
    with pytest.raises(GraphHttpError) as info:
        _create(manager, receiver, clock, delegated="adele@contoso.com")
    assert (info.value.status, info.value.code) == (403, "ExtensionError")
    assert info.value.message == (
        "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]"
    )
    own = _create(
        manager, receiver, clock, delegated="Adele@contoso.com", resource="/me/events"
    )
    assert own["creatorId"] == "adele-guid"
    with pytest.raises(GraphHttpError) as info:
        _create(manager, receiver, clock, resource="/me/events")
    assert info.value.status == 400
    with pytest.raises(GraphHttpError) as info:
        _create(manager, receiver, clock, resource="/users/ghost@contoso.com/events")
    assert info.value.status == 404


def test_subscription_body_validation(manager, receiver, clock):
    too_far = format_datetime(clock.now + dt.timedelta(minutes=10081))
    with pytest.raises(GraphHttpError) as info:
        _create(manager, receiver, clock, expirationDateTime=too_far)
    assert info.value.message == (
        "Subscription expiration can only be 10080 minutes in the future."
    )
    manager.max_expiration_minutes = 4230
    with pytest.raises(GraphHttpError):
        _create(
            manager,
            receiver,
            clock,
            expirationDateTime=format_datetime(clock.now + dt.timedelta(minutes=4231)),
        )
    past = format_datetime(clock.now - dt.timedelta(minutes=1))
    bad_bodies = [
        {"expirationDateTime": past},
        {"expirationDateTime": "tomorrow"},
        {"clientState": "x" * 129},
        {"changeType": "created,moved"},
        {"resource": "/users/room1@contoso.com/messages"},
        {"resource": "/users/room1@contoso.com/calendars/AAA=/events"},
        {"notificationUrl": "ftp://127.0.0.1/x"},
        {"includeResourceData": True},
    ]
    for overrides in bad_bodies:
        with pytest.raises(GraphHttpError) as info:
            _create(manager, receiver, clock, **overrides)
        assert info.value.status == 400, overrides
    manager.allow_http_urls = False
    with pytest.raises(GraphHttpError):
        _create(manager, receiver, clock)
    assert manager.list() == []
    assert receiver.tokens == []


def test_short_expiration_is_raised_to_minimum(manager, receiver, clock):
    soon = format_datetime(clock.now + dt.timedelta(minutes=5))
    sub = _create(manager, receiver, clock, expirationDateTime=soon)
    assert sub["expirationDateTime"] == "2026-03-01T12:45:00.0000000Z"


def test_renewal_and_expiry(manager, receiver, clock):
    sub = _create(manager, receiver, clock)
    clock.advance(minutes=4000)
    renewed = manager.update(
        sub["id"],
        {"expirationDateTime": format_datetime(clock.now + dt.timedelta(minutes=4230))},
    )
    assert renewed["expirationDateTime"] > sub["expirationDateTime"]
    clock.advance(minutes=1000)
    assert manager.get(sub["id"])["id"] == sub["id"]
    with pytest.raises(GraphHttpError) as info:
        manager.update(sub["id"], {"lifecycleNotificationUrl": receiver.server.url})
    assert info.value.status == 400
    with pytest.raises(GraphHttpError):
        manager.update(sub["id"], {"resource": "/users/room2@contoso.com/events"})
    clock.advance(minutes=4000)
    with pytest.raises(GraphHttpError) as info:
        manager.get(sub["id"])
    assert info.value.status == 404
    manager.notify_change("room1-guid", "created", "evt-1")
    manager.flush()
    assert receiver.received == []
    assert manager.list() == []


def test_notifications_carry_client_state_and_are_filtered(manager, receiver, clock):
    sub = _create(manager, receiver, clock, changeType="created,deleted")
    manager.notify_change("ROOM1-GUID", "created", "AAMkAD=", etag="abc")
    manager.notify_change("room1-guid", "updated", "AAMkAD=")  # not subscribed
    manager.notify_change("room2-guid", "created", "other")  # other mailbox
    manager.flush()
    assert len(receiver.received) == 1
    path, payload = receiver.received[0]
    assert path == "/notify"
    (note,) = payload["value"]
    assert note["subscriptionId"] == sub["id"]
    assert note["clientState"] == "s3cret"
    assert note["changeType"] == "created"
    assert note["tenantId"] == "tenant-guid"
    assert note["subscriptionExpirationDateTime"] == sub["expirationDateTime"]
    assert note["resource"] == "Users/room1-guid/Events/AAMkAD="
    assert note["resourceData"] == {
        "@odata.type": "#Microsoft.Graph.Event",
        "@odata.id": "Users/room1-guid/Events/AAMkAD=",
        "@odata.etag": 'W/"abc"',
        "id": "AAMkAD=",
    }
    manager.delete(sub["id"])
    with pytest.raises(GraphHttpError):
        manager.delete(sub["id"])


def test_notifications_of_one_change_share_a_post(manager, receiver, clock):
    ids = {_create(manager, receiver, clock)["id"] for _ in range(3)}
    manager.notify_change("room1-guid", "updated", "evt")
    manager.flush()
    assert len(receiver.received) == 1
    assert {n["subscriptionId"] for n in receiver.received[0][1]["value"]} == ids
    change = [d for d in manager.deliveries() if d["kind"] == "change"]
    assert [(d["count"], d["status"]) for d in change] == [(3, 202)]


def test_delivery_is_retried_then_dropped(manager, receiver, clock):
    _create(manager, receiver, clock)
    receiver.notify_statuses = [503, 500]
    manager.notify_change("room1-guid", "created", "evt")
    manager.flush()
    change = [d for d in manager.deliveries() if d["kind"] == "change"]
    assert [(d["attempt"], d["status"], d["dropped"]) for d in change] == [
        (1, 503, False),
        (2, 500, False),
        (3, 202, False),
    ]
    assert len(receiver.received) == 3
    receiver.notify_statuses = [500, 500, 500]
    manager.notify_change("room1-guid", "deleted", "evt")
    manager.flush()
    assert manager.deliveries()[-1]["dropped"] is True


def test_slow_receiver_counts_as_failed_delivery(manager, receiver, clock):
    _create(manager, receiver, clock)
    receiver.notify_delay = 0.5
    manager.retry_delays = ()
    manager.notify_change("room1-guid", "created", "evt")
    manager.flush()
    (attempt,) = [d for d in manager.deliveries() if d["kind"] == "change"]
    assert attempt["error"] == "ReadTimeout" and attempt["dropped"] is True


def test_lifecycle_events(manager, receiver, clock):
    sub = _create(
        manager,
        receiver,
        clock,
        lifecycleNotificationUrl=receiver.server.url + "/lifecycle",
    )
    manager.send_lifecycle(sub["id"], "reauthorizationRequired")
    manager.flush()
    assert manager.reauthorization_required(sub["id"])
    manager.reauthorize(sub["id"])
    assert not manager.reauthorization_required(sub["id"])
    manager.send_lifecycle(sub["id"], "missed")
    manager.send_lifecycle(sub["id"], "subscriptionRemoved")
    manager.flush()
    events = [
        (path, n["lifecycleEvent"], n["clientState"], n["subscriptionId"])
        for path, payload in receiver.received
        for n in payload["value"]
    ]
    assert events == [
        ("/lifecycle", "reauthorizationRequired", "s3cret", sub["id"]),
        ("/lifecycle", "missed", "s3cret", sub["id"]),
        ("/lifecycle", "subscriptionRemoved", "s3cret", sub["id"]),
    ]
    with pytest.raises(GraphHttpError):
        manager.get(sub["id"])
    with pytest.raises(ValueError):
        manager.send_lifecycle("whatever", "exploded")


def test_reset_forgets_everything(manager, receiver, clock):
    _create(manager, receiver, clock)
    manager.reset()
    assert manager.list() == [] and manager.deliveries() == []
