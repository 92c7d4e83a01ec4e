"""GraphClient against the emulator's Graph over real HTTPS, with MSAL tokens.

As in ``test_auth.py``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` name a bundle without
the emulator's CA: the client must pass ``verify=`` with every request.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from exchange_graph import (
    MARKER_PROPERTY_ID,
    BatchRequest,
    GraphAuthError,
    GraphClient,
    GraphConflict,
    GraphNotFound,
    GraphPermissionError,
    GraphRetryableError,
    GraphThrottled,
    SyncStateExpired,
    TokenProvider,
    create_event_request,
    decline_event_request,
    delete_event_request,
    get_event_request,
    update_event_request,
    weak_etag,
)

from tests import graph_helpers as helpers
from tests.test_auth import (
    DAEMON,
    DAEMON_SECRET,
    REDIRECT,
    TENANT,
    WEB_APP,
    WEB_SECRET,
    _forms,
    admin,
    untrusting_environment,
)

pytest_plugins = ["tests.emulator.pytest_plugin"]

ADAMS = "room.adams@contoso.test"
BAKER = "room.baker@contoso.test"
DUNE = "room.dune@contoso.test"
WINDOW = (
    datetime(2026, 11, 1, tzinfo=timezone.utc),
    datetime(2027, 1, 31, tzinfo=timezone.utc),
)
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name OdooBookingId"


@pytest.fixture
def server(emulator_reset, monkeypatch):
    untrusting_environment(emulator_reset, monkeypatch)
    yield emulator_reset
    emulator_reset.emulator.identity.set_auto_consent(False)


class Sleeps(list):
    """An injected ``sleep`` that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def app_tokens(server) -> TokenProvider:
    return TokenProvider(
        client_id=DAEMON,
        authority=server.authority_url(TENANT),
        credential=DAEMON_SECRET,
        graph_resource=server.base_url,
        verify=server.ca_bundle_path,
    )


def make_client(server, token_source=None, **kwargs) -> GraphClient:
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("verify", server.ca_bundle_path)
    return GraphClient(
        graph_url=server.graph_url,
        token_source=token_source or app_tokens(server).access_token,
        **kwargs,
    )


def user_client(server, upn: str, **kwargs) -> GraphClient:
    admin(server, "identity/auto-consent", {"enabled": True})
    tokens = TokenProvider(
        client_id=WEB_APP,
        authority=server.authority_url(TENANT),
        credential=WEB_SECRET,
        graph_resource=server.base_url,
        verify=server.ca_bundle_path,
    )
    flow = tokens.start_sign_in(REDIRECT, login_hint=upn)
    page = requests.get(flow["auth_uri"], verify=server.ca_bundle_path, timeout=10)
    (form,) = _forms(page.text)
    account = tokens.finish_sign_in(flow, form["fields"])
    return make_client(
        server, lambda: tokens.access_token(account.home_account_id), **kwargs
    )


def fault(server, **rule) -> None:
    admin(server, "faults", rule)


def event_payload(subject="Sync test", day="2026-12-10", hour=9, **extra) -> dict:
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T{hour:02d}:30:00", "timeZone": "UTC"},
        **extra,
    }


def graph_log(server, method=None, route_part="") -> list[dict]:
    return [
        entry
        for entry in server.emulator.request_log
        if entry["route"] != "identity"
        and (method is None or entry["method"] == method)
        and route_part in entry["path"]
    ]


def test_rooms_are_paged(server):
    client = make_client(server)
    server.emulator.clear_log()
    rooms = list(client.iter_rooms(page_size=3))
    assert [room["emailAddress"] for room in rooms] == [
        ADAMS,
        BAKER,
        "room.crystal@contoso.test",
        DUNE,
    ]
    assert len(graph_log(server, "GET", "/places/")) == 2


def test_calendar_view_is_paged_and_in_the_requested_zone(server):
    client = make_client(server, time_zone="Romance Standard Time")
    for hour in range(9, 14):
        helpers.create_event(
            client, BAKER, event_payload(hour=hour), transaction_id=str(uuid.uuid4())
        )
    server.emulator.clear_log()
    events = list(client.iter_calendar_view(BAKER, *WINDOW, page_size=2))
    assert len(events) == 6  # five new ones and the seeded "Quarterly planning"
    assert len(graph_log(server, "GET", "/calendarView")) == 3
    assert {event["start"]["timeZone"] for event in events} == {"Romance Standard Time"}


def test_delta_rounds(server):
    client = make_client(server)
    for hour in (8, 9, 10):
        helpers.create_event(
            client, ADAMS, event_payload(hour=hour), transaction_id=str(uuid.uuid4())
        )
    pages = list(client.iter_delta(ADAMS, start=WINDOW[0], end=WINDOW[1], page_size=2))
    assert len(pages) == 3  # 2 seeded + 3 new events, two per page
    assert [page.delta_link is None for page in pages] == [True, True, False]
    first_round = {event["id"]: event for page in pages for event in page.events}
    assert len(first_round) == 5

    created = helpers.create_event(
        client, ADAMS, event_payload("New", hour=15), transaction_id=str(uuid.uuid4())
    )
    changed_id, deleted_id = sorted(first_round)[:2]
    helpers.update_event(client, ADAMS, changed_id, {"subject": "Moved"})
    helpers.delete_event(client, ADAMS, deleted_id)

    changes = list(client.iter_delta(ADAMS, delta_link=pages[-1].delta_link))
    assert changes[-1].delta_link
    seen = {event["id"]: event for page in changes for event in page.events}
    assert set(seen) == {created["id"], changed_id}
    assert seen[changed_id]["subject"] == "Moved"
    assert [i for page in changes for i in page.removed_ids] == [deleted_id]

    admin(server, "delta/expire", {"mailbox": ADAMS})
    with pytest.raises(SyncStateExpired) as caught:
        list(client.iter_delta(ADAMS, delta_link=changes[-1].delta_link))
    assert caught.value.status == 410
    assert caught.value.code == "SyncStateNotFound"

    with pytest.raises(ValueError):
        next(client.iter_delta(ADAMS))


def test_first_delta_pages_of_several_rooms_in_one_batch(server):
    client = make_client(server)
    helpers.create_event(
        client, ADAMS, event_payload(hour=8), transaction_id=str(uuid.uuid4())
    )
    rooms = (ADAMS, BAKER)
    requests_ = [
        client.delta_request(
            room, start=WINDOW[0], end=WINDOW[1], page_size=2, request_id=room
        )
        for room in rooms
    ]
    server.emulator.clear_log()
    answers = {result.id: result for result in client.batch(requests_)}
    assert len(graph_log(server, "POST", "/$batch")) == 1  # both rooms, one trip
    # The item's own preference (the page size) is added to the client's ones.
    for room in rooms:
        applied = answers[room].headers.get("Preference-Applied", "")
        assert "odata.maxpagesize=2" in applied, applied
        assert len(answers[room].body["value"]) <= 2
    prefer = client._batch_item(requests_[0])["headers"]["Prefer"]
    assert 'IdType="ImmutableId"' in prefer and "outlook.timezone" in prefer
    for room in rooms:
        alone = list(client.iter_delta(room, start=WINDOW[0], end=WINDOW[1]))
        batched = list(
            client.iter_delta(
                room,
                start=WINDOW[0],
                end=WINDOW[1],
                page_size=2,
                first_page=answers[room].body,
            )
        )
        assert batched[-1].delta_link
        ids = {event["id"] for page in batched for event in page.events}
        assert ids == {event["id"] for page in alone for event in page.events}


def test_delta_token_expiry_by_fault(server):
    client = make_client(server)
    (page,) = client.iter_delta(BAKER, start=WINDOW[0], end=WINDOW[1])
    fault(server, kind="delta_expired")
    with pytest.raises(SyncStateExpired):
        list(client.iter_delta(BAKER, delta_link=page.delta_link))


def test_429_retry_after_is_honoured(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(
        server,
        kind="status",
        status=429,
        code="TooManyRequests",
        retry_after=3,
        method="GET",
        path="/calendar$",
        times=2,
    )
    assert client.get_calendar(ADAMS)["owner"]["address"] == ADAMS
    assert sleeps == [3.0, 3.0]


def test_long_retry_after_is_left_to_the_caller(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps, max_backoff=30)
    fault(
        server,
        kind="status",
        status=429,
        code="TooManyRequests",
        retry_after=120,
        method="GET",
        path="/calendar$",
    )
    with pytest.raises(GraphThrottled) as caught:
        client.get_calendar(ADAMS)
    assert caught.value.retry_after == 120
    assert isinstance(caught.value, GraphRetryableError)
    assert sleeps == []


def test_503_then_success_backs_off(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(server, kind="status", status=503, method="GET", path="/calendar$", times=2)
    assert client.get_calendar(ADAMS)["id"]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_retries_are_capped(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps, max_retries=2)
    fault(
        server,
        kind="status",
        status=504,
        code="GatewayTimeout",
        method="GET",
        path="/calendar$",
        times=None,
    )
    with pytest.raises(GraphRetryableError) as caught:
        client.get_calendar(ADAMS)
    assert caught.value.status == 504
    assert len(sleeps) == 2


def test_connection_reset_then_success(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(server, kind="reset", method="GET", path="/calendar$", times=1)
    assert client.get_calendar(ADAMS)["id"]
    assert len(sleeps) == 1
    assert server.emulator.faults.stats()["reset"] == 1


def test_timeout_after_a_create_makes_exactly_one_event(server):
    client = make_client(server, timeout=(5, 0.5))
    fault(
        server,
        kind="timeout_after_apply",
        method="POST",
        path="/events$",
        delay=1.5,
        times=1,
    )
    transaction_id = str(uuid.uuid4())
    event = helpers.create_event(
        client, ADAMS, event_payload("Once"), transaction_id=transaction_id
    )
    stored = [
        e
        for e in server.emulator.store.snapshot(ADAMS)
        if e.get("transactionId") == transaction_id
    ]
    assert [e["id"] for e in stored] == [event["id"]]
    assert len(graph_log(server, "POST", "/calendar/events")) == 2


def test_post_without_transaction_id_is_not_retried(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(server, kind="reset", method="POST", path=r"/\$batch$", times=1)
    item = BatchRequest(
        "1", "POST", f"/users/{ADAMS}/calendar/events", body=event_payload("Twice?")
    )
    with pytest.raises(GraphRetryableError) as caught:
        client.batch([item])
    assert caught.value.code == "connectionError"
    assert sleeps == []

    # The same envelope with a transactionId in the item is retried.
    item.body = {**item.body, "transactionId": str(uuid.uuid4())}
    fault(server, kind="reset", method="POST", path=r"/\$batch$", times=1)
    (result,) = client.batch([item])
    assert result.status == 201 and len(sleeps) == 1


def test_batch_with_mixed_results(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(
        server,
        kind="status",
        status=429,
        code="TooManyRequests",
        retry_after=2,
        method="GET",
        path="/calendar$",
        mailbox=BAKER,
        times=1,
    )
    gone = helpers.create_event(client, ADAMS, event_payload(), transaction_id="gone")
    helpers.delete_event(client, ADAMS, gone["id"])
    transaction_id = str(uuid.uuid4())
    requests_ = [
        BatchRequest(
            "create",
            "POST",
            f"/users/{ADAMS}/calendar/events",
            body={**event_payload("Batched"), "transactionId": transaction_id},
        ),
        BatchRequest("missing", "GET", f"/users/{ADAMS}/events/{gone['id']}"),
        BatchRequest("throttled", "GET", f"/users/{BAKER}/calendar"),
        BatchRequest(
            "plain-post",
            "POST",
            f"/users/{ADAMS}/calendar/events",
            body=event_payload("No transaction id"),
        ),
    ]
    results = client.batch(requests_)

    assert [r.id for r in results] == ["create", "missing", "throttled", "plain-post"]
    assert [r.status for r in results] == [201, 404, 200, 201]
    assert results[0].body["transactionId"] == transaction_id
    assert results[0].error is None
    assert isinstance(results[1].error, GraphNotFound)
    assert results[2].body["owner"]["address"] == BAKER
    assert sleeps == [2.0]
    # Only the throttled item went out again, in a second envelope.
    assert len(graph_log(server, "POST", "/$batch")) == 2
    assert len(graph_log(server, "GET", f"/users/{BAKER}/calendar")) == 2


def test_batch_does_not_retry_a_throttled_post_without_transaction_id(server):
    sleeps = Sleeps()
    client = make_client(server, sleep=sleeps)
    fault(
        server,
        kind="status",
        status=429,
        retry_after=1,
        method="POST",
        path="/events$",
        times=1,
    )
    item = BatchRequest(
        "1", "POST", f"/users/{ADAMS}/calendar/events", body=event_payload()
    )
    (result,) = client.batch([item])
    assert result.status == 429
    assert isinstance(result.error, GraphThrottled)
    assert result.error.retry_after == 1
    assert sleeps == []


def test_batch_is_chunked_by_twenty(server):
    client = make_client(server)
    items = [BatchRequest(str(n), "GET", f"/users/{ADAMS}/calendar") for n in range(45)]
    server.emulator.clear_log()
    results = client.batch(items)
    assert [r.id for r in results] == [str(n) for n in range(45)]
    assert all(r.status == 200 for r in results)
    assert len(graph_log(server, "POST", "/$batch")) == 3
    with pytest.raises(ValueError):
        client.batch([items[0], items[0]])


def test_if_match_conflicts(server):
    client = make_client(server)
    event = helpers.create_event(
        client, ADAMS, event_payload(), transaction_id=str(uuid.uuid4())
    )
    stale = event["@odata.etag"]
    fresh = helpers.update_event(
        client, ADAMS, event["id"], {"subject": "A"}, etag=stale
    )
    with pytest.raises(GraphConflict) as caught:
        helpers.update_event(client, ADAMS, event["id"], {"subject": "B"}, etag=stale)
    assert caught.value.status == 412
    with pytest.raises(GraphConflict):
        helpers.delete_event(client, ADAMS, event["id"], etag=stale)
    helpers.delete_event(client, ADAMS, event["id"], etag=fresh["@odata.etag"])
    with pytest.raises(GraphNotFound):
        helpers.get_event(client, ADAMS, event["id"])
    with pytest.raises(GraphNotFound):
        helpers.delete_event(client, ADAMS, event["id"])


def test_built_event_requests_in_one_batch(server):
    """Every request of graph/protocol.py, as the sync sends them: in $batch."""
    client = make_client(server)
    meeting = server.emulator.book_room(
        "AdeleV@contoso.test",
        ADAMS,
        "Organizer's meeting",
        "2026-12-14T09:00:00",
        "2026-12-14T10:00:00",
    )
    created, declined = client.batch(
        [
            create_event_request(
                ADAMS,
                event_payload("Built"),
                transaction_id=str(uuid.uuid4()),
                marker="db-uuid:42",
                request_id="create",
            ),
            decline_event_request(
                ADAMS, meeting["id"], comment="Room released", request_id="decline"
            ),
        ]
    )
    assert (created.status, declined.status) == (201, 202)
    assert server.emulator.store.responses[-1]["comment"] == "Room released"
    event = created.body
    read, gone = client.batch(
        [
            get_event_request(
                ADAMS, event["id"], expand_property=MARKER_PROPERTY_ID, request_id="g"
            ),
            get_event_request(ADAMS, meeting["id"], request_id="declined"),
        ]
    )
    assert read.body["singleValueExtendedProperties"] == [
        {"id": MARKER_PROPERTY_ID, "value": "db-uuid:42"}
    ]
    assert isinstance(gone.error, GraphNotFound)

    stale = weak_etag(event["changeKey"])
    assert stale == event["@odata.etag"]
    (moved,) = client.batch(
        [update_event_request(ADAMS, event["id"], {"subject": "Moved"}, etag=stale)]
    )
    assert moved.status == 200 and moved.body["subject"] == "Moved"
    refused = client.batch(
        [
            update_event_request(
                ADAMS, event["id"], {"subject": "Lost"}, etag=stale, request_id="u"
            ),
            delete_event_request(ADAMS, event["id"], etag=stale, request_id="d"),
        ]
    )
    assert [r.status for r in refused] == [412, 412]
    assert all(isinstance(r.error, GraphConflict) for r in refused)
    (deleted,) = client.batch(
        [delete_event_request(ADAMS, event["id"], etag=moved.body["@odata.etag"])]
    )
    assert deleted.status == 204
    (after,) = client.batch([get_event_request(ADAMS, event["id"])])
    assert isinstance(after.error, GraphNotFound)
    # The ids went quoted and the If-Match headers arrived.
    patches = graph_log(server, "PATCH", "/events/")
    assert len(patches) == 2


def test_extended_property_lookup(server):
    client = make_client(server)
    payload = event_payload(
        singleValueExtendedProperties=[{"id": PROP, "value": "booking-42"}]
    )
    event = helpers.create_event(
        client, ADAMS, payload, transaction_id=str(uuid.uuid4())
    )
    found = helpers.find_events_by_property(client, ADAMS, PROP, "booking-42")
    assert [e["id"] for e in found] == [event["id"]]
    assert helpers.find_events_by_property(client, ADAMS, PROP, "it's-not-there") == []
    expanded = helpers.get_event(client, ADAMS, event["id"], expand_property=PROP)
    assert expanded["singleValueExtendedProperties"] == [
        {"id": PROP, "value": "booking-42"}
    ]


def test_permissions(server):
    megan = user_client(server, "MeganB@contoso.test")
    with pytest.raises(GraphPermissionError) as caught:
        megan.get_calendar(ADAMS)
    assert caught.value.code == "ErrorAccessDenied"
    access = megan.probe_calendar_access(ADAMS)
    assert (access.can_read, access.can_write) == (False, False)

    alex = user_client(server, "AlexW@contoso.test")
    access = alex.probe_calendar_access(ADAMS)
    assert (access.can_read, access.can_write) == (True, False)
    assert isinstance(access.error, GraphPermissionError)
    assert access.calendar["owner"]["address"] == ADAMS

    adele = user_client(server, "AdeleV@contoso.test")
    before = len(server.emulator.store.snapshot(DUNE))
    access = adele.probe_calendar_access(DUNE)
    assert (access.can_read, access.can_write, access.error) == (True, True, None)
    assert len(server.emulator.store.snapshot(DUNE)) == before  # probe deleted
    assert helpers.me(adele)["userPrincipalName"] == "AdeleV@contoso.test"
    calendars = adele.list_calendars()
    assert DUNE in {c.get("owner", {}).get("address") for c in calendars}

    # The app-only registration is scoped to three rooms (RBAC for Applications).
    with pytest.raises(GraphPermissionError):
        make_client(server).get_calendar(DUNE)


def test_expired_token_is_refreshed_once(server):
    tokens = app_tokens(server)
    calls: list[bool] = []

    def source(*, force_refresh: bool = False) -> str:
        calls.append(force_refresh)
        return tokens.access_token(force_refresh=force_refresh)

    client = make_client(server, source)
    client.get_calendar(ADAMS)
    admin(server, "identity/expire-access-tokens")
    assert client.get_calendar(ADAMS)["id"]
    assert calls == [False, False, True]

    with pytest.raises(GraphAuthError) as caught:
        make_client(server, lambda: "not-a-token").get_calendar(ADAMS)
    assert caught.value.status == 401


def concurrency_peak(entries: list[dict]) -> int:
    """Highest number of overlapping requests, from the emulator's request log."""
    marks = []
    for entry in entries:
        end = datetime.fromisoformat(entry["time"])
        start = end - timedelta(milliseconds=entry["duration_ms"])
        marks += [(start, 1), (end, -1)]
    peak = current = 0
    for _when, step in sorted(marks):
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize(("cap", "limited"), [(4, True), (16, False)])
def test_in_flight_cap_per_mailbox(server, cap, limited):
    client = make_client(server, max_in_flight_per_mailbox=cap)
    client.get_calendar(ADAMS)  # token acquired before the threads start
    fault(
        server,
        kind="latency",
        delay=0.15,
        method="GET",
        path="/calendar$",
        mailbox=ADAMS,
        times=None,
    )
    server.emulator.clear_log()
    errors: list[Exception] = []

    def work() -> None:
        try:
            client.get_calendar(ADAMS)
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    peak = concurrency_peak(graph_log(server, "GET", "/calendar"))
    if limited:
        assert 2 <= peak <= 4
    else:
        assert peak > 4  # the measurement does see more when the client allows it


def test_logs_hold_no_tokens_or_addresses(server, caplog):
    tokens = app_tokens(server)
    seen_tokens: list[str] = []

    def source() -> str:
        seen_tokens.append(tokens.access_token())
        return seen_tokens[-1]

    client = make_client(server, source)
    fault(server, kind="status", status=503, method="GET", path="/calendar$", times=1)
    with caplog.at_level(logging.DEBUG):
        client.get_calendar(ADAMS)
        event = helpers.create_event(
            client,
            ADAMS,
            event_payload("Secret subject"),
            transaction_id=str(uuid.uuid4()),
        )
        helpers.delete_event(client, ADAMS, event["id"])
        with pytest.raises(GraphNotFound):
            helpers.get_user(client, "nobody@contoso.test")
    # Our own records only: urllib3 logs full URLs at debug level by itself.
    text = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("exchange_graph")
    )
    assert "GET /users/{mailbox}/calendar -> 200 request-id=" in text
    assert "DELETE /users/{mailbox}/events/{id} -> 204" in text
    assert "retry 1/5" in text
    assert "@" not in text
    assert "Secret subject" not in text and event["id"] not in text
    assert seen_tokens and not any(token in text for token in seen_tokens)
    assert DAEMON_SECRET not in text and "Bearer" not in text


def test_requests_carry_prefer_and_client_request_id(server):
    client = make_client(server, time_zone="Pacific Standard Time")
    captured: list[requests.PreparedRequest] = []
    session = client.session
    original = session.send

    def spy(request, **kwargs):
        captured.append(request)
        assert kwargs["verify"] == server.ca_bundle_path
        return original(request, **kwargs)

    session.send = spy  # type: ignore[method-assign]
    event = helpers.create_event(
        client, ADAMS, event_payload(), transaction_id=str(uuid.uuid4())
    )
    assert event["start"]["timeZone"] == "Pacific Standard Time"
    headers = captured[-1].headers
    assert 'IdType="ImmutableId"' in headers["Prefer"]
    assert 'outlook.timezone="Pacific Standard Time"' in headers["Prefer"]
    assert uuid.UUID(headers["client-request-id"])


def test_links_to_another_host_are_never_followed():
    """A nextLink (or a stored delta link) naming another host would carry the
    bearer token there: the client refuses it before any byte is sent."""
    from exchange_graph import GraphError, same_origin

    from tests.capturing_listener import CapturingListener

    with CapturingListener() as graph, CapturingListener() as elsewhere:
        bundle = graph.bundle_with()
        with open(bundle, "a") as pem:
            pem.write("\n" + elsewhere.ca_cert_pem)
        graph.payloads["/calendarView"] = {
            "value": [],
            "@odata.nextLink": f"{elsewhere.url}/v1.0/users/{ADAMS}/calendarView"
            "?$skiptoken=x",
        }
        client = GraphClient(
            graph_url=graph.url + "/v1.0",
            token_source=lambda: "access-token-do-not-leak",
            verify=bundle,
            sleep=Sleeps(),
        )
        with pytest.raises(GraphError) as refusal:
            list(client.iter_calendar_view(ADAMS, *WINDOW))
        assert refusal.value.code == "foreignHost"
        link = f"{elsewhere.url}/v1.0/users/{ADAMS}/calendarView/delta?$deltatoken=x"
        with pytest.raises(GraphError):
            list(client.iter_delta(ADAMS, delta_link=link))
        with pytest.raises(GraphError):
            client.batch([BatchRequest("1", "GET", link)])
        assert len(graph.requests) == 1, "only the first page, from Graph itself"
        assert elsewhere.requests == []
        assert "access-token-do-not-leak" not in elsewhere.text()
    base = "https://graph.example.test/v1.0"
    assert same_origin(f"{base}/users/a/calendarView/delta?$deltatoken=1", base)
    assert same_origin("https://GRAPH.example.test:443/v1.0/me", base)
    assert same_origin("/users/a/events", base)
    assert not same_origin("https://graph.example.test.evil/v1.0/me", base)
    assert not same_origin("https://graph.example.test:8443/v1.0/me", base)
    assert not same_origin("http://graph.example.test/v1.0/me", base)
    assert not same_origin("https://graph.example.test/beta/me", base)
    assert not same_origin("https://user@evil.test/v1.0/me", base)


# -- the room directory (Places) and batched permission checks ---------------------


@pytest.fixture
def campus_client(campus, monkeypatch):
    untrusting_environment(campus, monkeypatch)
    return campus


def campus_places(server) -> list[dict]:
    return [
        entry
        for entry in graph_log(server)
        if "/places/" in entry["path"] or entry["path"].endswith("/$batch")
    ]


@pytest.mark.parametrize("next_link", [True, False])
def test_places_are_paged_by_next_link_or_skip(campus_client, next_link):
    server = campus_client
    server.emulator.set_switches(places_next_link=next_link)
    client = make_client(server)
    server.emulator.clear_log()
    rooms = list(client.iter_places(page_size=100))
    addresses = [room["emailAddress"] for room in rooms]
    assert len(addresses) == len(set(addresses)) == 304
    # One request per page, whether Graph gives a nextLink or not.
    requests_ = graph_log(server, "GET", "/places/")
    assert len(requests_) == 4
    assert all("%24count=true" in entry["path"] for entry in requests_[:1])
    lists = list(client.iter_places("microsoft.graph.roomList", page_size=4))
    assert len(lists) == 6
    floors = list(client.iter_places("microsoft.graph.floor"))
    assert len(floors) == 3 + 6 * 5  # the default rooms are on floors 1, 2 and 5
    buildings = list(client.iter_places("microsoft.graph.building"))
    assert {b["displayName"] for b in buildings} >= {"Atrium", "Forge"}


def test_directory_rooms_with_their_room_lists(campus_client):
    server = campus_client
    client = make_client(server)
    server.emulator.clear_log()
    rooms = {room.mailbox: room for room in client.list_directory_rooms()}
    assert len(rooms) == 304
    # 4 pages of rooms, 1 of room lists, 1 $batch of the 6 room lists' first pages.
    http = [entry for entry in graph_log(server) if not entry["batch"]]
    assert len(http) == 6
    room = rooms["atrium.101@contoso.test"]
    place = server.emulator.scenario.room("atrium.101@contoso.test")
    assert (room.name, room.capacity, room.building, room.floor) == (
        "Atrium 101",
        place.capacity,
        "Atrium",
        "Floor 1",
    )
    assert room.floor_number == 1
    assert (room.room_list, room.room_list_mailbox) == (
        "Atrium rooms",
        "rooms.atrium@contoso.test",
    )
    devices = [place.video_device_name, place.display_device_name]
    assert room.equipment == place.tags + [d for d in devices if d]
    assert room.wheelchair_accessible is place.is_wheelchair_accessible
    # The 25th campus room is in no room list; the default rooms neither.
    assert rooms[server.emulator.scenario.rooms[4 + 24].email].room_list is None
    assert rooms["room.adams@contoso.test"].room_list is None
    # A room list with more rooms than a page: its further pages are followed.
    server.emulator.clear_log()
    rooms = {room.mailbox: room for room in client.list_directory_rooms(page_size=20)}
    assert len(rooms) == 304
    assert sum(1 for r in rooms.values() if r.room_list == "Atrium rooms") == 48


def test_probe_many_in_batches(campus_client):
    server = campus_client
    scenario = server.emulator.scenario
    mailboxes = [room.email for room in scenario.rooms[4:104]]  # 100 campus rooms
    outside = [m for m in mailboxes if m not in scenario.app(DAEMON).rbac_scope]
    assert len(outside) == 10
    before = {m: len(server.emulator.store.snapshot(m)) for m in mailboxes}
    client = make_client(server)
    server.emulator.clear_log()
    access = client.probe_calendar_access_many([*mailboxes, mailboxes[0]])
    assert list(access) == mailboxes
    for mailbox, result in access.items():
        if mailbox in outside:
            assert (result.can_read, result.can_write) == (False, False)
            assert isinstance(result.error, GraphPermissionError)
        else:
            assert (result.can_read, result.can_write, result.error) == (
                True,
                True,
                None,
            )
            assert result.calendar["owner"]["address"] == mailbox
    # 200 reads, 90 probe events, 90 deletions: 20 per round trip.
    envelopes = [e for e in graph_log(server) if e["path"].endswith("/$batch")]
    assert len(envelopes) == 10 + 5 + 5
    assert len([e for e in graph_log(server) if not e["batch"]]) == len(envelopes)
    # The probe events are gone.
    assert {m: len(server.emulator.store.snapshot(m)) for m in mailboxes} == before


def test_probe_many_as_a_person_who_may_edit_some(campus_client):
    server = campus_client
    scenario = server.emulator.scenario
    mailboxes = [room.email for room in scenario.rooms[4:34]]
    adele = user_client(server, "AdeleV@contoso.test")
    access = adele.probe_calendar_access_many(mailboxes)
    read_only = {
        m for m in mailboxes if scenario.share_role(m, "AdeleV@contoso.test") == "read"
    }
    assert len(read_only) == 10
    for mailbox, result in access.items():
        if mailbox in read_only:
            assert (result.can_read, result.can_write) == (True, False)
            assert isinstance(result.error, GraphPermissionError)
        else:
            assert (result.can_read, result.can_write) == (True, True)
    # The same answers, one room at a time, as the room's Save does.
    for mailbox in (mailboxes[0], mailboxes[2]):
        single = adele.probe_calendar_access(mailbox)
        assert (single.can_read, single.can_write) == (
            access[mailbox].can_read,
            access[mailbox].can_write,
        )


def test_probe_many_reports_other_failures_per_room(campus_client):
    server = campus_client
    scenario = server.emulator.scenario
    mailboxes = [room.email for room in scenario.rooms[4:8]]
    server.emulator.remove_room(mailboxes[1])
    fault(
        server,
        kind="status",
        status=500,
        code="InternalServerError",
        mailbox=mailboxes[2],
        method="POST",
        times=None,
    )
    access = make_client(server).probe_calendar_access_many(mailboxes)
    assert access[mailboxes[0]].can_write
    assert isinstance(access[mailboxes[1]].error, GraphNotFound)
    assert not access[mailboxes[1]].can_read
    failed = access[mailboxes[2]]
    assert (failed.can_read, failed.can_write) == (True, False)
    assert failed.error is not None and failed.error.status == 500
    assert access[mailboxes[3]].can_write


def test_read_calendars(campus_client):
    server = campus_client
    scenario = server.emulator.scenario
    mailboxes = [room.email for room in scenario.rooms[4:34]]
    server.emulator.remove_room(mailboxes[0])
    errors = make_client(server).read_calendars(mailboxes)
    assert isinstance(errors[mailboxes[0]], GraphNotFound)
    assert isinstance(errors[mailboxes[9]], GraphPermissionError)  # out of scope
    assert [m for m, error in errors.items() if error is None] == [
        m for i, m in enumerate(mailboxes) if i not in (0, 9, 19, 29)
    ]
