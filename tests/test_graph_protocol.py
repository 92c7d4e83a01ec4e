"""The event requests of ``graph/protocol.py``: exact method, URL, headers and body.

Their round trip through a real ``$batch`` against the emulator is in
``test_graph_client.py`` (``test_built_event_requests_in_one_batch``).
"""

from __future__ import annotations

import pytest
from exchange_graph import (
    MARKER_PROPERTY_ID,
    BatchRequest,
    create_event_request,
    decline_event_request,
    delete_event_request,
    event_path,
    get_event_request,
    mailbox_segment,
    max_page_size,
    merge_prefer,
    update_event_request,
    user_path,
    weak_etag,
    with_prefer,
)

ROOM = "room.adams@contoso.test"
# An immutable id holds "=", "-" and "_"; older ids may hold "/" and "+".
EVENT = "AAkALg-AA_b/c+d=="
QUOTED = "AAkALg-AA_b%2Fc%2Bd=="
PAYLOAD = {"subject": "Board", "showAs": "busy"}
MARKER = "0f1e2d3c-db-uuid:42"


def marker_of(body):
    return [
        prop["value"]
        for prop in body.get("singleValueExtendedProperties", [])
        if prop["id"] == MARKER_PROPERTY_ID
    ]


@pytest.mark.parametrize(
    ("mailbox", "path"),
    [
        (ROOM, "/users/room.adams@contoso.test"),
        ("me", "/me"),
        ("ME", "/me"),
        ("a b+c/d@x.test", "/users/a%20b%2Bc%2Fd@x.test"),
        ("7f1c-guid", "/users/7f1c-guid"),
    ],
)
def test_user_path_quotes_the_mailbox_once(mailbox, path):
    assert user_path(mailbox) == path
    if mailbox.lower() != "me":
        assert path == f"/users/{mailbox_segment(mailbox)}"


def test_event_path_quotes_the_whole_id():
    assert event_path(ROOM, EVENT) == f"/users/{ROOM}/events/{QUOTED}"
    # An immutable id (URL-safe base64) goes unchanged, as the sync always sent it.
    immutable = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AMCXaNnSBvEqcRLK8vc6fQgAAJ_5hPwAA="
    assert event_path(ROOM, immutable) == f"/users/{ROOM}/events/{immutable}"
    assert event_path(ROOM, "a?b#c%d") == f"/users/{ROOM}/events/a%3Fb%23c%25d"


def test_create_posts_to_the_primary_calendar_with_transaction_id_and_marker():
    request = create_event_request(
        ROOM, PAYLOAD, transaction_id="odoo-tx-1", marker=MARKER, request_id="7"
    )
    assert request == BatchRequest(
        "7",
        "POST",
        f"/users/{ROOM}/calendar/events",
        {
            "subject": "Board",
            "showAs": "busy",
            "singleValueExtendedProperties": [
                {"id": MARKER_PROPERTY_ID, "value": MARKER}
            ],
            "transactionId": "odoo-tx-1",
        },
        None,
    )
    assert PAYLOAD == {"subject": "Board", "showAs": "busy"}, "payload left alone"


def test_the_marker_sent_is_the_one_given_never_the_payloads():
    other = {"id": "String {0000} Name Other", "value": "kept"}
    payload = {
        **PAYLOAD,
        "singleValueExtendedProperties": [
            {"id": MARKER_PROPERTY_ID.upper(), "value": "stale:1"},
            other,
        ],
    }
    created = create_event_request(ROOM, payload, transaction_id="t", marker=MARKER)
    assert created.body["singleValueExtendedProperties"] == [
        other,
        {"id": MARKER_PROPERTY_ID, "value": MARKER},
    ]
    # Without a marker the payload's own is dropped (an UPDATE_REMOTE).
    updated = update_event_request(ROOM, EVENT, payload)
    assert updated.body["singleValueExtendedProperties"] == [other]
    only_marker = {
        **PAYLOAD,
        "singleValueExtendedProperties": payload["singleValueExtendedProperties"][:1],
    }
    assert (
        "singleValueExtendedProperties"
        not in update_event_request(ROOM, EVENT, only_marker).body
    )


def test_update_patches_with_if_match_only_when_an_etag_is_given():
    plain = update_event_request(ROOM, EVENT, PAYLOAD, request_id="u")
    assert plain == BatchRequest(
        "u", "PATCH", f"/users/{ROOM}/events/{QUOTED}", PAYLOAD, None
    )
    guarded = update_event_request(
        ROOM, EVENT, PAYLOAD, etag=weak_etag("CQAAABYAAAA"), marker=MARKER
    )
    assert guarded.method == "PATCH"
    assert guarded.headers == {"If-Match": 'W/"CQAAABYAAAA"'}
    assert marker_of(guarded.body) == [MARKER]
    assert "transactionId" not in guarded.body


def test_delete_with_and_without_if_match():
    assert delete_event_request(ROOM, EVENT) == BatchRequest(
        "delete", "DELETE", f"/users/{ROOM}/events/{QUOTED}", None, None
    )
    assert delete_event_request(ROOM, EVENT, etag='W/"k"', request_id="d").headers == {
        "If-Match": 'W/"k"'
    }


def test_get_plain_and_with_an_expanded_property():
    assert get_event_request(ROOM, EVENT, request_id="g") == BatchRequest(
        "g", "GET", f"/users/{ROOM}/events/{QUOTED}"
    )
    expanded = get_event_request(ROOM, EVENT, expand_property="String {g} Name it's")
    assert expanded.url == (
        f"/users/{ROOM}/events/{QUOTED}?$expand=singleValueExtendedProperties("
        "$filter=id%20eq%20'String%20{g}%20Name%20it''s')"
    )


def test_decline_posts_comment_and_send_response():
    request = decline_event_request(
        ROOM, EVENT, comment="Room released", request_id="x"
    )
    assert request == BatchRequest(
        "x",
        "POST",
        f"/users/{ROOM}/events/{QUOTED}/decline",
        {"comment": "Room released", "sendResponse": True},
        None,
    )
    silent = decline_event_request(ROOM, EVENT, comment="", send_response=False)
    assert silent.body == {"comment": "", "sendResponse": False}


def test_prefer_merge_keeps_the_defaults_and_lets_a_later_value_win():
    defaults = ('IdType="ImmutableId"', 'outlook.timezone="UTC"')
    assert merge_prefer(defaults) == 'IdType="ImmutableId", outlook.timezone="UTC"'
    assert merge_prefer(defaults, [max_page_size(50)]) == (
        'IdType="ImmutableId", outlook.timezone="UTC", odata.maxpagesize=50'
    )
    assert merge_prefer(
        defaults, ['outlook.timezone="Pacific Standard Time", ', ""]
    ) == ('IdType="ImmutableId", outlook.timezone="Pacific Standard Time"')
    assert with_prefer(
        {"prefer": "odata.maxpagesize=2", "If-Match": 'W/"k"'}, defaults
    ) == {
        "If-Match": 'W/"k"',
        "Prefer": 'IdType="ImmutableId", outlook.timezone="UTC", odata.maxpagesize=2',
    }
    assert with_prefer(None, ()) == {}
