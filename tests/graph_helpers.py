"""Graph calls the tests and scripts make and the product does not.

The product sends its event requests in ``$batch`` (``GraphClient.batch``) or, alone,
with ``GraphClient.send``; both take the requests built in
``room_exchange_sync/graph/protocol.py``. These helpers are the one-event-at-a-time
calls a test needs to arrange a calendar or look at it, over the same builders, so
they exercise the product's requests rather than a second copy of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from exchange_graph import (
    BatchRequest,
    GraphClient,
    create_event_request,
    delete_event_request,
    get_event_request,
    update_event_request,
    user_path,
)
from exchange_graph.protocol import odata_quote


def me(client: GraphClient) -> dict[str, Any]:
    """The signed-in user (delegated tokens only)."""
    return client.send(BatchRequest("me", "GET", "/me"))


def get_user(client: GraphClient, user: str) -> dict[str, Any]:
    """A user or room mailbox by id or UPN."""
    return client.send(BatchRequest("user", "GET", user_path(user)))


def get_event(
    client: GraphClient,
    mailbox: str,
    event_id: str,
    *,
    expand_property: str | None = None,
) -> dict[str, Any]:
    """One event; ``expand_property`` adds that single-value extended property."""
    return client.send(
        get_event_request(mailbox, event_id, expand_property=expand_property)
    )


def create_event(
    client: GraphClient,
    mailbox: str,
    payload: dict[str, Any],
    *,
    transaction_id: str,
    marker: str | None = None,
) -> dict[str, Any]:
    """Create an event in the mailbox's primary calendar (the answer: the event)."""
    return client.send(
        create_event_request(
            mailbox, payload, transaction_id=transaction_id, marker=marker
        )
    )


def update_event(
    client: GraphClient,
    mailbox: str,
    event_id: str,
    patch: dict[str, Any],
    *,
    etag: str | None = None,
) -> dict[str, Any]:
    """PATCH an event; with ``etag`` a changed event raises GraphConflict."""
    return client.send(update_event_request(mailbox, event_id, patch, etag=etag))


def delete_event(
    client: GraphClient, mailbox: str, event_id: str, *, etag: str | None = None
) -> None:
    """Delete an event; raises GraphNotFound when it is already gone."""
    client.send(delete_event_request(mailbox, event_id, etag=etag))


def find_events_by_property(
    client: GraphClient, mailbox: str, property_id: str, value: str
) -> list[dict[str, Any]]:
    """Events whose single-value extended property ``property_id`` equals ``value``
    (Outlook compares the value case-insensitively), every page."""
    condition = (
        "singleValueExtendedProperties/Any(ep: ep/id eq "
        f"'{odata_quote(property_id)}' and ep/value eq '{odata_quote(value)}')"
    )
    url: str | None = f"{user_path(mailbox)}/events?" + urlencode(
        {"$filter": condition}
    )
    found: list[dict[str, Any]] = []
    while url:
        page = client.send(BatchRequest("page", "GET", url))
        found.extend(page.get("value", []))
        url = page.get("@odata.nextLink")
    return found
