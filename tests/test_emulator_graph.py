"""The emulator's Graph side over real HTTPS, with MSAL tokens and ``requests``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests

TENANT = "contoso.test"
APP_ID = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
APP_SECRET = "app-only-secret~Valid.2028"
WEB_ID = "d9bf18c7-9a7e-4a41-a7b7-3e9fc6f9716b"
WEB_SECRET = "delegated-app-secret~Valid.2028"
REDIRECT = "https://localhost/room_exchange_sync/oauth/callback"
ADAMS = "room.adams@contoso.test"
BAKER = "room.baker@contoso.test"
CRYSTAL = "room.crystal@contoso.test"
DUNE = "room.dune@contoso.test"
WINDOW = "startDateTime=2026-11-01T00:00:00Z&endDateTime=2027-01-31T00:00:00Z"
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name OdooBookingId"
ROOT = Path(__file__).resolve().parent.parent


def app_session(server) -> requests.Session:
    app = msal.ConfidentialClientApplication(
        APP_ID,
        client_credential=APP_SECRET,
        authority=server.authority_url(TENANT),
        instance_discovery=False,
        http_cache={},
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + result["access_token"]
    return session


def user_session(server, upn: str, scopes=("Calendars.ReadWrite.Shared",)):
    server.emulator.identity.set_auto_consent(True)
    app = msal.ConfidentialClientApplication(
        WEB_ID,
        client_credential=WEB_SECRET,
        authority=server.authority_url(TENANT),
        instance_discovery=False,
        http_cache={},
    )
    flow = app.initiate_auth_code_flow(
        list(scopes), redirect_uri=REDIRECT, login_hint=upn
    )
    answer = requests.get(flow["auth_uri"], allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:300]
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    result = app.acquire_token_by_auth_code_flow(
        flow, {k: v[0] for k, v in query.items()}
    )
    assert "access_token" in result, result
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + result["access_token"]
    return session


def event_payload(subject="Sync test", day="2026-12-10", **extra):
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
        **extra,
    }


def soon() -> str:
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_missing_and_unknown_tokens_get_401_with_challenge(emulator):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        answer = requests.get(
            f"{emulator.graph_url}/users/{ADAMS}/events", headers=headers
        )
        assert answer.status_code == 401
        assert error_code(answer) == "InvalidAuthenticationToken"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer realm=")
        assert answer.headers["request-id"]


EXPIRED = "Access token has expired or is not yet valid."


def test_expired_access_token_gets_401(emulator):
    session = app_session(emulator)
    emulator.emulator.identity.expire_access_tokens()
    answer = session.get(f"{emulator.graph_url}/users/{ADAMS}/events")
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == EXPIRED


JWT_FORMATS = (
    "\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
    "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
    "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector."
    "EncodedCiphertext.EncodedAuthenticationTag'."
)
HIDDEN = (
    "'[PII of type 'Microsoft.IdentityModel.Logging.SecurityArtifact' is hidden. For "
    "more details, see https://aka.ms/IdentityModel/PII.]'"
)
JSON_PART = "eyJ0eXAiOiJKV1QifQ"  # {"typ":"JWT"}


@pytest.mark.parametrize(
    ("token", "message"),
    [
        # Graph's own answer to a token without dots (MaikuB/flutter_appauth#575).
        (
            "nope",
            "IDX14100: JWT is not well formed, there are no dots (.)." + JWT_FORMATS,
        ),
        (
            "not.ajwt",
            "IDX14120: JWT is not well formed, there is only one dot (.)."
            + JWT_FORMATS,
        ),
        (
            "a.b.c.d",
            "IDX14121: JWT is not a well formed JWE, there must be four dots (.)."
            + JWT_FORMATS,
        ),
        (
            "a.b.c.d.e.f",
            "IDX14122: JWT is not a well formed JWE, there are more than four dots "
            "(.) a JWE can have at most 4 dots." + JWT_FORMATS,
        ),
        # msgraph-sdk-powershell#3336.
        (
            "not json.x.y",
            f"IDX14102: Unable to decode the header {HIDDEN} as Base64Url encoded "
            "string.",
        ),
        (
            f"{JSON_PART}.bm90IGpzb24.sig",
            f"IDX14101: Unable to decode the payload {HIDDEN} as Base64Url encoded "
            "string.",
        ),
        # Well formed but never issued: as an expired one.
        (f"{JSON_PART}.{JSON_PART}.sig", EXPIRED),
    ],
    ids=["no dot", "one dot", "three dots", "six dots", "header", "payload", "JWT"],
)
def test_malformed_access_token_is_not_reported_as_expired(emulator, token, message):
    answer = requests.get(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 401
    assert error_code(answer) == "InvalidAuthenticationToken"
    assert answer.json()["error"]["message"] == message
    assert answer.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_response_headers_and_client_request_id_echo(emulator):
    session = app_session(emulator)
    answer = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/calendar",
        headers={"client-request-id": "abc-123"},
    )
    assert answer.status_code == 200
    assert answer.headers["client-request-id"] == "abc-123"
    assert answer.headers["Content-Type"].startswith(
        "application/json;odata.metadata=minimal"
    )
    assert len(answer.headers["request-id"]) == 36


def test_app_token_rbac_scope_and_me(emulator):
    session = app_session(emulator)
    assert session.get(f"{emulator.graph_url}/users/{ADAMS}/events").status_code == 200
    denied = session.get(f"{emulator.graph_url}/users/{DUNE}/events")
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "Access to OData is disabled."
    me = session.get(f"{emulator.graph_url}/me")
    assert me.status_code == 400
    unknown = session.get(f"{emulator.graph_url}/users/nobody@contoso.test/events")
    assert unknown.status_code == 404 and error_code(unknown) == "ErrorInvalidUser"


def test_places_rooms_paging_and_filter(emulator):
    session = app_session(emulator)
    url = f"{emulator.graph_url}/places/microsoft.graph.room?$top=3"
    seen = []
    while url:
        page = session.get(url).json()
        seen += [room["emailAddress"] for room in page["value"]]
        url = page.get("@odata.nextLink")
    assert seen == [ADAMS, BAKER, CRYSTAL, DUNE]
    filtered = session.get(
        f"{emulator.graph_url}/places/microsoft.graph.room?$filter=floorNumber eq 2"
    ).json()["value"]
    assert [room["emailAddress"] for room in filtered] == [CRYSTAL]
    assert isinstance(filtered[0]["capacity"], int)


def test_delegated_me_calendars_lists_shared_copies(emulator):
    adele = user_session(emulator, "AdeleV@contoso.test")
    me = adele.get(f"{emulator.graph_url}/me").json()
    assert me["userPrincipalName"] == "AdeleV@contoso.test"
    calendars = adele.get(f"{emulator.graph_url}/me/calendars").json()["value"]
    shared = {c["owner"]["address"]: c for c in calendars if not c["isDefaultCalendar"]}
    assert set(shared) == {ADAMS, BAKER, CRYSTAL, DUNE}
    own_id = adele.get(f"{emulator.graph_url}/users/{ADAMS}/calendar").json()["id"]
    assert shared[ADAMS]["id"] != own_id
    assert shared[ADAMS]["canEdit"] is True
    # Writing through the sharee's copy lands in the room, organised by the room.
    created = adele.post(
        f"{emulator.graph_url}/me/calendars/{shared[ADAMS]['id']}/events",
        json=event_payload("Via copy"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["organizer"]["emailAddress"]["address"].lower() == ADAMS
    stored = emulator.emulator.store.snapshot(ADAMS)
    assert "Via copy" in [e["subject"] for e in stored]


def test_delegated_share_roles(emulator):
    alex = user_session(emulator, "AlexW@contoso.test")  # read share on Adams
    assert alex.get(f"{emulator.graph_url}/users/{ADAMS}/events").status_code == 200
    write = alex.post(
        f"{emulator.graph_url}/users/{ADAMS}/events", json=event_payload()
    )
    assert write.status_code == 403
    assert write.json()["error"]["message"] == (
        "Access is denied. Check credentials and try again."
    )
    assert alex.get(f"{emulator.graph_url}/users/{CRYSTAL}/events").status_code == 403
    lidia = user_session(emulator, "LidiaH@contoso.test")  # freeBusyRead on Crystal
    assert lidia.get(f"{emulator.graph_url}/users/{CRYSTAL}/events").status_code == 403
    adele = user_session(emulator, "AdeleV@contoso.test")
    answer = adele.post(
        f"{emulator.graph_url}/users/{ADAMS}/events", json=event_payload()
    )
    assert answer.status_code == 201


def test_event_crud_transaction_id_and_if_match(emulator):
    session = app_session(emulator)
    base = f"{emulator.graph_url}/users/{ADAMS}/calendar/events"
    payload = event_payload(transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")
    first = session.post(base, json=payload)
    second = session.post(base, json=payload)
    assert first.status_code == 201 and second.status_code == 201
    event = first.json()
    assert second.json()["id"] == event["id"]
    item = f"{emulator.graph_url}/users/{ADAMS}/events/{event['id']}"
    stale = session.patch(item, json={"subject": "x"}, headers={"If-Match": 'W/"old"'})
    assert stale.status_code == 412
    assert error_code(stale) == "ErrorIrresolvableConflict"
    patched = session.patch(
        item, json={"subject": "Renamed"}, headers={"If-Match": event["@odata.etag"]}
    )
    assert patched.status_code == 200 and patched.json()["subject"] == "Renamed"
    assert patched.json()["changeKey"] != event["changeKey"]
    assert session.delete(item).status_code == 204
    gone = session.get(item)
    assert gone.status_code == 404 and error_code(gone) == "ErrorItemNotFound"


def test_prefer_time_zone_and_body_type(emulator):
    session = app_session(emulator)
    created = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        json=event_payload(body={"contentType": "html", "content": "<p>Hello</p>"}),
    ).json()
    answer = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/events/{created['id']}",
        headers={
            "Prefer": 'outlook.timezone="Pacific Standard Time"',
        },
    )
    answer2 = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/events/{created['id']}",
        headers={"Prefer": 'outlook.timezone="UTC", outlook.body-content-type="text"'},
    )
    assert answer.json()["start"]["timeZone"] == "Pacific Standard Time"
    assert answer.json()["start"]["dateTime"].startswith("2026-12-10T01:00:00")
    assert (
        'outlook.timezone="Pacific Standard Time"'
        in answer.headers["Preference-Applied"]
    )
    assert answer2.json()["body"] == {"contentType": "text", "content": "Hello"}


def test_extended_property_filter_and_expand(emulator):
    session = app_session(emulator)
    created = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        json=event_payload(singleValueExtendedProperties=[{"id": PROP, "value": "42"}]),
    ).json()
    found = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' "
            "and ep/value eq '42')"
        },
    ).json()["value"]
    assert [e["id"] for e in found] == [created["id"]]
    assert "singleValueExtendedProperties" not in found[0]
    expanded = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/events/{created['id']}",
        params={"$expand": f"singleValueExtendedProperties($filter=id eq '{PROP}')"},
    ).json()
    assert expanded["singleValueExtendedProperties"][0]["value"] == "42"


def test_calendar_view_paging_and_errors(emulator):
    session = app_session(emulator)
    for day in ("2026-12-11", "2026-12-12", "2026-12-13"):
        session.post(
            f"{emulator.graph_url}/users/{ADAMS}/events", json=event_payload(day=day)
        )
    url = f"{emulator.graph_url}/users/{ADAMS}/calendarView?{WINDOW}&$top=2"
    subjects = []
    while url:
        page = session.get(url).json()
        assert len(page["value"]) <= 2
        subjects += [e["subject"] for e in page["value"]]
        url = page.get("@odata.nextLink")
    assert len(subjects) == 5  # two seeded + three created
    missing = session.get(f"{emulator.graph_url}/users/{ADAMS}/calendarView")
    assert missing.status_code == 400 and error_code(missing) == "ErrorInvalidParameter"
    unknown = session.get(f"{emulator.graph_url}/users/{ADAMS}/nonsense")
    assert unknown.status_code == 400


def delta_round(session, url, page_size=None):
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    items, pages = [], 0
    while True:
        answer = session.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        assert "odata.track-changes" in answer.headers["Preference-Applied"]
        body = answer.json()
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url and "startDateTime" not in url


def post_two_events(server, session) -> None:
    for day in ("2026-12-14", "2026-12-15"):
        answer = session.post(
            f"{server.graph_url}/users/{ADAMS}/events", json=event_payload(day=day)
        )
        assert answer.status_code == 201, answer.text


def test_delta_rounds_removed_and_410(emulator):
    session = app_session(emulator)
    first_url = f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    post_two_events(emulator, session)
    items, delta_link, pages = delta_round(session, first_url, page_size=2)
    assert len(items) == 4 and pages == 2
    assert delta_link.startswith(emulator.graph_url) and "$deltatoken=" in delta_link
    created = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        json=event_payload("New", "2026-12-16"),
    ).json()
    removed_id = items[0]["id"]
    assert session.delete(f"{emulator.graph_url}/users/{ADAMS}/events/{removed_id}").ok
    changes, delta_link, _ = delta_round(session, delta_link)
    by_id = {item["id"]: item for item in changes}
    assert by_id[created["id"]]["subject"] == "New"
    assert by_id[removed_id]["@removed"] == {"reason": "deleted"}
    emulator.emulator.store.expire_delta_tokens(ADAMS)
    expired = session.get(delta_link)
    assert (
        expired.status_code == 410
        and error_code(expired).lower() == "syncstatenotfound"
    )


def assert_restarts_the_query(session, answer, path):
    """A delta 410 carries a Location that restarts the same query ("a request URL
    with an empty $deltaToken (same as the initial query)", delta query overview,
    "Synchronization reset"), and following it gives a whole first round."""
    assert answer.status_code == 410, answer.text
    assert error_code(answer) == "SyncStateNotFound"
    location = answer.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == path
    query = parse_qs(parts.query, keep_blank_values=True)
    assert sorted(query) == ["$deltatoken", "endDateTime", "startDateTime"]
    assert query["$deltatoken"] == [""]
    assert [query["startDateTime"][0], query["endDateTime"][0]] == [
        "2026-11-01T00:00:00Z",
        "2027-01-31T00:00:00Z",
    ]
    items, delta_link, _ = delta_round(session, location)
    fresh, _, _ = delta_round(session, f"{path}?{WINDOW}")
    assert [item["id"] for item in items] == [item["id"] for item in fresh]
    assert [item["subject"] for item in items].count("Sync test") == 2
    assert delta_link.startswith(path + "?$deltatoken=")


@pytest.mark.parametrize("cause", ["store", "fault"])
@pytest.mark.parametrize("link", ["deltaLink", "nextLink"])
@pytest.mark.parametrize("route", ["users/{room}", "users/{room}/calendar"])
def test_delta_410_location_restarts_the_same_query(emulator, cause, link, route):
    session = app_session(emulator)
    path = f"{emulator.graph_url}/{route.format(room=ADAMS)}/calendarView/delta"
    post_two_events(emulator, session)
    if link == "deltaLink":
        _, url, _ = delta_round(session, f"{path}?{WINDOW}")
    else:
        first = session.get(
            f"{path}?{WINDOW}", headers={"Prefer": "odata.maxpagesize=1"}
        )
        url = first.json()["@odata.nextLink"]
    if cause == "store":
        emulator.emulator.store.expire_delta_tokens(ADAMS)
    else:
        emulator.emulator.faults.add({"kind": "delta_expired"})
    assert_restarts_the_query(session, session.get(url), path)


def test_delta_410_fault_on_a_first_call_restarts_it(emulator):
    session = app_session(emulator)
    path = f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta"
    post_two_events(emulator, session)
    emulator.emulator.faults.add({"kind": "delta_expired"})
    assert_restarts_the_query(session, session.get(f"{path}?{WINDOW}"), path)


def test_delta_410_of_a_batch_item_carries_the_location(emulator):
    session = app_session(emulator)
    _, delta_link, _ = delta_round(
        session, f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    )
    emulator.emulator.store.expire_delta_tokens(ADAMS)
    relative = delta_link[len(emulator.graph_url) :]
    envelope = session.post(
        f"{emulator.graph_url}/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": relative}]},
    )
    (item,) = envelope.json()["responses"]
    assert item["status"] == 410
    location = item["headers"]["Location"]
    assert location.startswith(
        f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?startDateTime="
    )
    assert location.endswith("&$deltatoken=")


def test_delta_next_link_403_switch_for_delegated(emulator):
    emulator.emulator.set_switches(delegated_delta_nextlink_403=True)
    adele = user_session(emulator, "AdeleV@contoso.test")
    first = adele.get(
        f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}",
        headers={"Prefer": "odata.maxpagesize=1"},
    )
    assert first.status_code == 200
    second = adele.get(first.json()["@odata.nextLink"])
    assert second.status_code == 403 and error_code(second) == "ErrorAccessDenied"


def test_batch_mixed_results_and_dependency(emulator):
    session = app_session(emulator)
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{ADAMS}/calendar"},
            {"id": "2", "method": "GET", "url": f"/users/{DUNE}/events"},
            {
                "id": "3",
                "method": "POST",
                "url": f"/users/{ADAMS}/events",
                "headers": {"Content-Type": "application/json"},
                "body": event_payload("From batch"),
            },
            {
                "id": "4",
                "method": "GET",
                "url": f"/users/{ADAMS}/events/nope",
                "dependsOn": ["3"],
            },
            {
                "id": "5",
                "method": "GET",
                "url": f"/users/{ADAMS}/calendar",
                "dependsOn": ["4"],
            },
        ]
    }
    answer = session.post(f"{emulator.graph_url}/$batch", json=body)
    assert answer.status_code == 200
    statuses = {item["id"]: item["status"] for item in answer.json()["responses"]}
    # "nope" is not a well-formed Exchange id: 400 ErrorInvalidIdMalformed.
    assert statuses == {"1": 200, "2": 403, "3": 201, "4": 400, "5": 424}
    too_many = {
        "requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]
    }
    assert (
        session.post(f"{emulator.graph_url}/$batch", json=too_many).status_code == 400
    )


def test_throttling_http_and_batch_items(emulator):
    session = app_session(emulator)
    emulator.emulator.throttle.configure(budget=3)
    statuses = [
        session.get(f"{emulator.graph_url}/users/{BAKER}/calendar").status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    throttled = session.get(f"{emulator.graph_url}/users/{BAKER}/calendar")
    assert int(throttled.headers["Retry-After"]) >= 1
    # Another mailbox is not affected; inside a batch the items are throttled alone.
    body = {
        "requests": [
            {"id": str(i), "method": "GET", "url": f"/users/{CRYSTAL}/calendar"}
            for i in range(5)
        ]
    }
    answer = session.post(f"{emulator.graph_url}/$batch", json=body)
    assert answer.status_code == 200
    items = answer.json()["responses"]
    limited = [item for item in items if item["status"] == 429]
    assert len(limited) == 2 and all("Retry-After" in i["headers"] for i in limited)


def assert_throttled(answer_status, headers, body, code):
    """Graph's 429 body (Microsoft Learn, "Microsoft Graph throttling guidance",
    sample response): the inner error has code "429", the date, "Please retry
    after", the request ids and status "429"."""
    assert answer_status == 429
    assert int(headers["Retry-After"]) >= 1
    error = body["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert sorted(inner) == sorted(
        ["code", "date", "message", "request-id", "client-request-id", "status"]
    )
    assert (inner["code"], inner["message"], inner["status"]) == (
        "429",
        "Please retry after",
        "429",
    )
    assert dt.datetime.strptime(inner["date"], "%Y-%m-%dT%H:%M:%S")
    return inner


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        ("budget", "TooManyRequests"),
        ("concurrency", "ApplicationThrottled"),
        ("fault", "TooManyRequests"),
    ],
)
def test_throttled_answers_carry_graphs_inner_error(emulator, cause, code):
    session = app_session(emulator)
    url = f"{emulator.graph_url}/users/{BAKER}/calendar"
    if cause == "budget":
        emulator.emulator.throttle.configure(budget=0)
    elif cause == "concurrency":
        emulator.emulator.throttle.configure(max_concurrent=0)
    else:
        emulator.emulator.faults.add(
            {
                "kind": "status",
                "status": 429,
                "code": "TooManyRequests",
                "message": "Please retry again later.",
                "retry_after": 3,
                "path": "/calendar$",
                "times": 2,
            }
        )
    answer = session.get(url, headers={"client-request-id": "mine-1"})
    inner = assert_throttled(answer.status_code, answer.headers, answer.json(), code)
    assert inner["request-id"] == answer.headers["request-id"]
    assert inner["client-request-id"] == "mine-1"
    envelope = session.post(
        f"{emulator.graph_url}/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{BAKER}/calendar"}
            ]
        },
    )
    (item,) = envelope.json()["responses"]
    assert_throttled(item["status"], item["headers"], item["body"], code)


def test_other_errors_keep_the_plain_inner_error(emulator):
    answer = requests.get(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        headers={"Authorization": "Bearer nope"},
    )
    assert sorted(answer.json()["error"]["innerError"]) == [
        "client-request-id",
        "date",
        "request-id",
    ]


def test_latency_is_spent_inside_the_mailbox_concurrency_slot(emulator):
    """Exchange Online allows an app four concurrent requests per mailbox (Microsoft
    Graph throttling limits, "Outlook service limits"; docs/graph.md#throttling): a
    request holds its slot for as long as Microsoft works on it. With 0.6 s per
    request, 8 parallel requests to one mailbox: 4 are served, 4 get 429
    ApplicationThrottled (the emulator slept its latency before taking the slot, so
    all 8 were served: this test failed then)."""
    sessions = [app_session(emulator) for _ in range(8)]
    url = f"{emulator.graph_url}/users/{BAKER}/calendar"
    for session in sessions:  # connections opened before the latency is on
        assert session.get(url).status_code == 200
    emulator.emulator.throttle.reset()
    emulator.emulator.faults.set_latency(fixed=0.6)
    barrier = threading.Barrier(len(sessions))
    answers = [None] * len(sessions)

    def call(index):
        barrier.wait()
        answers[index] = sessions[index].get(url)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 4 + [429] * 4
    refused = [answer for answer in answers if answer.status_code == 429]
    assert {answer.json()["error"]["code"] for answer in refused} == {
        "ApplicationThrottled"
    }
    assert all(answer.headers["Retry-After"] == "1" for answer in refused)
    stats = emulator.emulator.throttle.stats()[f"{APP_ID}|{BAKER}"]
    assert stats["max_concurrency"] == 4
    # Another mailbox has its own four slots.
    emulator.emulator.faults.set_latency(fixed=0.0)
    other = f"{emulator.graph_url}/users/{CRYSTAL}/calendar"
    assert sessions[0].get(other).status_code == 200


def test_fault_status_and_latency(emulator):
    session = app_session(emulator)
    faults = emulator.emulator.faults
    faults.add(
        {"kind": "status", "status": 503, "retry_after": 2, "path": "/calendar$"}
    )
    answer = session.get(f"{emulator.graph_url}/users/{ADAMS}/calendar")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert (
        session.get(f"{emulator.graph_url}/users/{ADAMS}/calendar").status_code == 200
    )
    faults.add({"kind": "latency", "delay": 0.3})
    started = time.monotonic()
    session.get(f"{emulator.graph_url}/users/{ADAMS}/calendar")
    assert time.monotonic() - started >= 0.3


def test_fault_reset_is_a_connection_error(emulator):
    session = app_session(emulator)
    emulator.emulator.faults.add({"kind": "reset", "method": "GET"})
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emulator.graph_url}/users/{ADAMS}/calendar")
    assert (
        session.get(f"{emulator.graph_url}/users/{ADAMS}/calendar").status_code == 200
    )


def test_fault_timeout_after_apply_creates_the_event(emulator):
    session = app_session(emulator)
    emulator.emulator.faults.add(
        {"kind": "timeout_after_apply", "method": "POST", "delay": 2}
    )
    payload = event_payload("Did it happen?", transactionId="tx-timeout-1")
    with pytest.raises(requests.ReadTimeout):
        session.post(
            f"{emulator.graph_url}/users/{ADAMS}/events", json=payload, timeout=0.5
        )
    retry = session.post(f"{emulator.graph_url}/users/{ADAMS}/events", json=payload)
    assert retry.status_code == 201
    subjects = [e["subject"] for e in emulator.emulator.store.snapshot(ADAMS)]
    assert subjects.count("Did it happen?") == 1


def test_fault_delta_expired(emulator):
    session = app_session(emulator)
    _, delta_link, _ = delta_round(
        session, f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    )
    emulator.emulator.faults.add({"kind": "delta_expired"})
    assert session.get(delta_link).status_code == 410


def test_bad_json_and_internal_error(emulator, monkeypatch):
    session = app_session(emulator)
    bad = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/events",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and error_code(bad) == "BadRequest"

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(emulator.emulator.store, "list_events", boom)
    crash = session.get(f"{emulator.graph_url}/users/{ADAMS}/events")
    assert crash.status_code == 500
    assert error_code(crash) == "InternalServerError"


def test_admin_is_not_reachable_through_graph(emulator):
    session = app_session(emulator)
    for path in ("/v1.0/_emulator/state", "/v1.0/%2E%2E/_emulator/state"):
        answer = session.get(emulator.base_url + path)
        assert answer.status_code == 400, path
        assert "tenants" not in answer.text
    # Raw dot segments (requests would normalise them away): straight to the socket.
    with socket.create_connection(
        ("127.0.0.1", urlsplit(emulator.base_url).port)
    ) as raw:
        context = ssl.create_default_context(cafile=emulator.ca_bundle_path)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                b"GET /v1.0/../_emulator/state HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Connection: close\r\n\r\n"
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized") and b"tenants" not in answer


def test_admin_outlook_booking_processing_and_log(emulator):
    admin = emulator.admin_url
    booked = requests.post(
        f"{admin}/outlook/book",
        json={
            "person": "MeganB@contoso.test",
            "room": BAKER,
            "subject": "Secret plan",
            "start": "2026-12-20T10:00:00",
            "end": "2026-12-20T11:00:00",
            "time_zone": "W. Europe Standard Time",
        },
    )
    assert booked.status_code == 200, booked.text
    event = booked.json()
    # Baker has AddOrganizerToSubject + DeleteSubject.
    assert event["subject"] == "Megan Bowen"
    assert event["organizer"]["emailAddress"]["address"] == "MeganB@contoso.test"
    assert event["attendees"][0]["type"] == "resource"
    moved = requests.post(
        f"{admin}/outlook/update",
        json={"room": BAKER, "event_id": event["id"], "end": "2026-12-20T10:30:00"},
    )
    assert moved.status_code == 200
    assert requests.post(
        f"{admin}/outlook/cancel", json={"room": BAKER, "event_id": event["id"]}
    ).ok
    session = app_session(emulator)
    seen = session.get(
        f"{emulator.graph_url}/users/{BAKER}/events/{event['id']}"
    ).json()
    assert seen["isCancelled"] is True
    log = requests.get(f"{admin}/log?limit=5").json()["value"]
    assert log[-1]["mailbox"] == BAKER and log[-1]["status"] == 200
    counters = requests.get(f"{admin}/counters").json()
    assert counters["by_route"]["GET /users/{id}/events/{id}"] == 1
    assert requests.post(f"{admin}/faults", json={"kind": "bogus"}).status_code == 400
    state = requests.get(f"{admin}/state").json()
    assert state["tenants"][0]["domain"] == TENANT


def test_admin_added_room_and_rbac_scope(emulator):
    admin = emulator.admin_url
    added = requests.post(
        f"{admin}/scenario/room",
        json={"email": "bench.room01@contoso.test", "display_name": "Bench room 1"},
    )
    assert added.status_code == 200, added.text
    assert added.json()["email"] == "bench.room01@contoso.test"
    session = app_session(emulator)
    room_url = f"{emulator.graph_url}/users/bench.room01@contoso.test/events"
    assert session.get(room_url).status_code == 403  # outside the app's scope
    lifted = requests.post(
        f"{admin}/scenario/rbac-scope", json={"client_id": APP_ID, "rbac_scope": None}
    )
    assert lifted.json() == {"client_id": APP_ID, "rbac_scope": None}
    assert session.get(room_url).status_code == 200
    assert session.get(f"{emulator.graph_url}/users/{DUNE}/events").status_code == 200
    narrowed = requests.post(
        f"{admin}/scenario/rbac-scope",
        json={"client_id": APP_ID, "rbac_scope": ["ROOM.DUNE@contoso.test"]},
    )
    assert narrowed.json()["rbac_scope"] == [DUNE]
    assert session.get(room_url).status_code == 403
    state = requests.get(f"{admin}/state").json()
    app = next(a for a in state["apps"] if a["client_id"] == APP_ID)
    assert app["rbac_scope"] == [DUNE]
    for body, status in (
        ({"client_id": APP_ID, "rbac_scope": ["nobody@contoso.test"]}, 400),
        ({"client_id": APP_ID, "rbac_scope": DUNE}, 400),
        ({"client_id": APP_ID}, 400),
        (
            {"client_id": "00000000-0000-0000-0000-000000000000", "rbac_scope": None},
            404,
        ),
    ):
        answer = requests.post(f"{admin}/scenario/rbac-scope", json=body)
        assert answer.status_code == status, (body, answer.text)
    state = requests.get(f"{admin}/state").json()
    app = next(a for a in state["apps"] if a["client_id"] == APP_ID)
    assert app["rbac_scope"] == [DUNE]  # unchanged by the refused calls
    # Not reachable through Graph.
    answer = session.post(
        f"{emulator.graph_url}/_emulator/scenario/rbac-scope",
        json={"client_id": APP_ID, "rbac_scope": None},
    )
    assert answer.status_code == 400
    # A reset goes back to the scenario as loaded: the added room is forgotten.
    assert requests.post(f"{admin}/reset").ok
    state = requests.get(f"{admin}/state").json()
    app = next(a for a in state["apps"] if a["client_id"] == APP_ID)
    assert app["rbac_scope"] and DUNE not in app["rbac_scope"]
    assert "bench.room01@contoso.test" not in [r["email"] for r in state["rooms"]]


def test_outlook_private_and_occurrence(emulator):
    outlook = emulator.emulator
    series = outlook.book_room(
        "AlexW@contoso.test",
        ADAMS,
        "Daily stand-up",
        "2026-12-07T09:00:00",
        "2026-12-07T09:15:00",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": "2026-12-07",
                "numberOfOccurrences": 5,
            },
        },
    )
    outlook.change_occurrence(
        ADAMS,
        series["id"],
        "2026-12-08",
        subject="Moved stand-up",
        start="2026-12-08T10:00:00",
        end="2026-12-08T10:15:00",
    )
    outlook.change_occurrence(ADAMS, series["id"], "2026-12-09", cancel=True)
    session = app_session(emulator)
    view = session.get(
        f"{emulator.graph_url}/users/{ADAMS}/calendarView?"
        "startDateTime=2026-12-07T00:00:00Z&endDateTime=2026-12-12T00:00:00Z&$top=50"
    ).json()["value"]
    standups = [e for e in view if e.get("seriesMasterId") == series["id"]]
    assert len(standups) == 4
    assert any(
        e["type"] == "exception" and e["subject"] == "Moved stand-up" for e in standups
    )
    private = outlook.make_private(ADAMS, series["id"])
    assert private["sensitivity"] == "private"


def test_series_rename_reaches_its_moved_occurrence_through_delta(emulator):
    # Issue 15: the moved occurrence kept its changeKey after the series was renamed.
    outlook = emulator.emulator
    series = outlook.book_room(
        "AlexW@contoso.test",
        ADAMS,
        "Weekly review",
        "2026-12-07T09:00:00",
        "2026-12-07T10:00:00",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {
                "type": "numbered",
                "startDate": "2026-12-07",
                "numberOfOccurrences": 3,
            },
        },
    )
    moved = outlook.change_occurrence(
        ADAMS,
        series["id"],
        "2026-12-14",
        start="2026-12-15T09:00:00",
        end="2026-12-15T10:00:00",
    )
    session = app_session(emulator)
    _, delta_link, _ = delta_round(
        session, f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    )
    renamed = session.patch(
        f"{emulator.graph_url}/users/{ADAMS}/events/{series['id']}",
        json={"subject": "Weekly planning"},
    )
    assert renamed.status_code == 200, renamed.text
    changes, _, _ = delta_round(session, delta_link)
    by_id = {item["id"]: item for item in changes}
    assert by_id[moved["id"]]["subject"] == "Weekly planning"
    assert by_id[moved["id"]]["changeKey"] != moved["changeKey"]
    assert by_id[moved["id"]]["@odata.etag"] != moved["@odata.etag"]
    again = session.get(f"{emulator.graph_url}/users/{ADAMS}/events/{moved['id']}")
    assert again.json()["changeKey"] == by_id[moved["id"]]["changeKey"]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        token = parse_qs(urlsplit(self.path).query).get("validationToken")
        if token:
            payload = token[0].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
        else:
            _Receiver.received.append(json.loads(body))
            payload = b""
            self.send_response(202)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def notification_receiver():
    """A plain loopback endpoint that answers validations and keeps notifications;
    yields its URL."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    _Receiver.received = []
    try:
        yield f"http://127.0.0.1:{receiver.server_address[1]}/notify"
    finally:
        receiver.shutdown()
        receiver.server_close()


def subscribe(server, session, url, mailbox=ADAMS) -> requests.Response:
    return session.post(
        f"{server.graph_url}/subscriptions",
        json={
            "changeType": "created,updated,deleted",
            "notificationUrl": url,
            "resource": f"/users/{mailbox}/events",
            "expirationDateTime": soon(),
            "clientState": "s3cret",
        },
    )


def test_notifications_carry_the_etag_of_the_change(emulator):
    # Issue 15: resourceData had no @odata.etag. Microsoft Learn, resourceData
    # resource type: for Outlook resources it contains @odata.type, @odata.id,
    # @odata.etag ("the HTTP entity tag that represents the version of the
    # object") and id.
    session = app_session(emulator)
    events = f"{emulator.graph_url}/users/{ADAMS}/events"
    with notification_receiver() as url:
        assert subscribe(emulator, session, url).status_code == 201
        created = session.post(events, json=event_payload()).json()
        renamed = session.patch(
            f"{events}/{created['id']}", json={"subject": "Renamed"}
        ).json()
        assert session.delete(f"{events}/{created['id']}").status_code == 204
        emulator.emulator.subscriptions.flush(5)
        notes = [n for post in _Receiver.received for n in post["value"]]
    assert [n["changeType"] for n in notes] == ["created", "updated", "deleted"]
    etags = [created["@odata.etag"], renamed["@odata.etag"], renamed["@odata.etag"]]
    assert created["@odata.etag"] != renamed["@odata.etag"]
    for note, etag in zip(notes, etags, strict=True):
        data = note["resourceData"]
        assert sorted(data) == ["@odata.etag", "@odata.id", "@odata.type", "id"]
        assert data["@odata.etag"] == etag
        assert data["id"] == created["id"]
        assert data["@odata.id"] == note["resource"]


def test_subscription_roundtrip_with_notifications(emulator):
    with notification_receiver() as url:
        session = app_session(emulator)
        subscribed = subscribe(emulator, session, url)
        assert subscribed.status_code == 201, subscribed.text
        sub_id = subscribed.json()["id"]
        assert session.get(f"{emulator.graph_url}/subscriptions/{sub_id}").ok
        session.post(f"{emulator.graph_url}/users/{ADAMS}/events", json=event_payload())
        emulator.emulator.subscriptions.flush(5)
        notes = [n for post in _Receiver.received for n in post["value"]]
        assert notes and notes[0]["changeType"] == "created"
        assert notes[0]["clientState"] == "s3cret"
        assert (
            session.delete(f"{emulator.graph_url}/subscriptions/{sub_id}").status_code
            == 204
        )
        assert subscribe(emulator, session, url, DUNE).status_code == 403


def test_cli_process_mode(monkeypatch):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", "0", "--auto-consent"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(process.stdout.readline())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ready["ca_bundle"])
        monkeypatch.setenv("CURL_CA_BUNDLE", ready["ca_bundle"])
        assert ready["graph_url"] == ready["base_url"] + "/v1.0"
        assert ready["tenants"][0]["domain"] == TENANT
        state = requests.get(f"{ready['admin_url']}/state", timeout=5)
        assert state.status_code == 200
        discovery = requests.get(
            f"{ready['authority_url']}/v2.0/.well-known/openid-configuration",
            timeout=5,
        )
        assert discovery.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_cli_throttle_log_limit_and_stdin_eof():
    """--throttle-* and --log-limit reach the Emulator; --stop-on-stdin-eof stops it
    when its parent's end of the pipe closes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", "0"]
        + ["--throttle-budget", "2", "--throttle-window", "600"]
        + ["--throttle-max-concurrent", "1", "--log-limit", "3"]
        + ["--stop-on-stdin-eof"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(process.stdout.readline())
        session = requests.Session()
        session.trust_env = False
        session.verify = ready["ca_bundle"]
        token = session.post(
            f"{ready['authority_url']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=10,
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": "Bearer " + token.json()["access_token"]}
        url = f"{ready['graph_url']}/users/{ADAMS}/events"
        statuses = [
            session.get(url, headers=headers, timeout=10).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        log = session.get(f"{ready['admin_url']}/log", timeout=10).json()["value"]
        assert [entry["status"] for entry in log] == [200, 200, 429]
        stats = session.get(f"{ready['admin_url']}/counters", timeout=10).json()
        assert stats["throttle"][f"{APP_ID}|{ADAMS}"]["throttled"] == 1
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_delta_partial_updates_switch(emulator):
    """``delta_partial_updates``: an Outlook update comes as a partial object."""
    admin, outlook = emulator.admin_url, emulator.emulator
    session = app_session(emulator)
    first_url = f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    booked = outlook.book_room(
        "AdeleV@contoso.test",
        ADAMS,
        "Planning",
        dt.datetime(2026, 12, 10, 9),
        dt.datetime(2026, 12, 10, 10),
    )
    try:
        switched = requests.post(
            f"{admin}/switches", json={"delta_partial_updates": True}
        )
        assert switched.json()["delta_partial_updates"] is True
        _, delta_link, _ = delta_round(session, first_url)
        renamed = requests.post(
            f"{admin}/outlook/update",
            json={"room": ADAMS, "event_id": booked["id"], "subject": "Renamed"},
        ).json()
        created = session.post(
            f"{emulator.graph_url}/users/{ADAMS}/events",
            json=event_payload("New", "2026-12-11"),
        ).json()
        changes, delta_link, _ = delta_round(session, delta_link)
        by_id = {item["id"]: item for item in changes}
        update = by_id[booked["id"]]
        assert update["subject"] == "Renamed"
        assert update["changeKey"] == renamed["changeKey"] != booked["changeKey"]
        assert update["@odata.etag"] == f'W/"{renamed["changeKey"]}"'
        assert "start" not in update and "organizer" not in update
        new = by_id[created["id"]]
        assert new["start"] == created["start"] and new["subject"] == "New"

        outlook.set_switches(delta_partial_updates=False)
        assert outlook.switches()["delta_partial_updates"] is False
        outlook.update_booking(ADAMS, booked["id"], subject="Again")
        changes, _, _ = delta_round(session, delta_link)
        (full,) = changes
        assert full["subject"] == "Again" and full["start"] == booked["start"]
    finally:
        outlook.set_switches(delta_partial_updates=False)


def _book(session, server, subject, hour):
    return session.post(
        f"{server.graph_url}/users/{ADAMS}/calendar/events",
        json={
            "subject": subject,
            "start": {"dateTime": f"2026-12-10T{hour:02d}:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"2026-12-10T{hour:02d}:30:00", "timeZone": "UTC"},
        },
        timeout=10,
    ).json()


def test_seeded_ids_replay(emulator):
    """store.seed_ids(seed): the same requests get the same event ids again."""
    runs = []
    for _run in range(2):
        emulator.emulator.store.seed_ids(7)
        emulator.emulator.reset()
        session = app_session(emulator)
        runs.append([_book(session, emulator, f"Seeded {h}", h) for h in (8, 9)])
    emulator.emulator.store.seed_ids(None)
    assert [e["id"] for e in runs[0]] == [e["id"] for e in runs[1]]
    assert [e["iCalUId"] for e in runs[0]] == [e["iCalUId"] for e in runs[1]]
    assert runs[0][0]["id"] != runs[0][1]["id"]
    emulator.emulator.reset()
    session = app_session(emulator)
    assert _book(session, emulator, "Unseeded", 8)["id"] != runs[0][0]["id"]


def test_batch_items_one_at_a_time_in_request_order(emulator):
    """batch_max_parallel=1: the items of a $batch run in request order (events
    created in that order), a schedule Graph may also use."""
    session = app_session(emulator)
    emulator.emulator.set_switches(batch_max_parallel=1)
    try:
        requests_ = [
            {
                "id": str(index),
                "method": "POST",
                "url": f"/users/{ADAMS}/calendar/events",
                "headers": {"Content-Type": "application/json"},
                "body": {
                    "subject": f"Ordered {index}",
                    "start": {"dateTime": "2026-12-11T09:00:00", "timeZone": "UTC"},
                    "end": {"dateTime": "2026-12-11T10:00:00", "timeZone": "UTC"},
                },
            }
            for index in range(8)
        ]
        emulator.emulator.clear_log()
        answer = session.post(
            f"{emulator.graph_url}/$batch", json={"requests": requests_}, timeout=30
        )
        assert answer.status_code == 200
        created = [
            entry["status"]
            for entry in emulator.emulator.request_log
            if entry["batch"] and entry["method"] == "POST"
        ]
        assert created == [201] * 8
        subjects = [
            e["subject"]
            for e in emulator.emulator.store.snapshot(ADAMS)
            if e["subject"].startswith("Ordered")
        ]
        assert sorted(subjects) == [f"Ordered {i}" for i in range(8)]
        created_at = {
            e["subject"]: e["createdDateTime"]
            for e in emulator.emulator.store.snapshot(ADAMS)
            if e["subject"].startswith("Ordered")
        }
        assert list(created_at.values()) == sorted(created_at.values())
    finally:
        emulator.emulator.set_switches(batch_max_parallel=4)


def test_forgotten_sync_states_answer_400(emulator):
    """forget_delta_tokens(): a token the store no longer knows gets 400
    ErrorInvalidRequest "The sync state token is malformed or unknown." (an expired
    one gets 410 SyncStateNotFound)."""
    session = app_session(emulator)
    url = f"{emulator.graph_url}/users/{ADAMS}/calendarView/delta?{WINDOW}"
    while True:
        page = session.get(url, timeout=10).json()
        url = page.get("@odata.nextLink")
        if not url:
            break
    delta_link = page["@odata.deltaLink"]
    emulator.emulator.store.forget_delta_tokens()
    answer = session.get(delta_link, timeout=10)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "ErrorInvalidRequest"
    assert error["message"] == "The sync state token is malformed or unknown."


def test_decline_tells_the_organizer_and_the_meeting_leaves_the_calendar(emulator):
    store = emulator.emulator.store
    meeting = emulator.emulator.book_room(
        "AdeleV@contoso.test",
        ADAMS,
        "Declined one",
        "2026-12-14T09:00:00",
        "2026-12-14T10:00:00",
    )
    session = app_session(emulator)
    url = f"{emulator.graph_url}/users/{ADAMS}/events/{meeting['id']}/decline"
    answer = session.post(
        url, json={"comment": "Room released", "sendResponse": True}, timeout=10
    )
    assert answer.status_code == 202
    assert store.responses[-1] == {
        "mailbox": ADAMS,
        "event_id": meeting["id"],
        "organizer": "AdeleV@contoso.test",
        "response": "declined",
        "comment": "Room released",
        "sent": True,
    }
    assert session.get(url.rsplit("/", 1)[0], timeout=10).status_code == 404
    store.declined_meetings_stay = True
    try:
        kept = emulator.emulator.book_room(
            "AdeleV@contoso.test",
            ADAMS,
            "Declined, kept",
            "2026-12-15T09:00:00",
            "2026-12-15T10:00:00",
        )
        url = f"{emulator.graph_url}/users/{ADAMS}/events/{kept['id']}"
        assert session.post(url + "/decline", json={}, timeout=10).status_code == 202
        event = session.get(url, timeout=10).json()
        assert event["responseStatus"]["response"] == "declined"
    finally:
        store.declined_meetings_stay = False
    own = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/calendar/events",
        json={
            "subject": "The room's own",
            "start": {"dateTime": "2026-12-16T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-16T10:00:00", "timeZone": "UTC"},
        },
        timeout=10,
    ).json()
    refused = session.post(
        f"{emulator.graph_url}/users/{ADAMS}/events/{own['id']}/decline",
        json={},
        timeout=10,
    )
    assert refused.status_code == 400
