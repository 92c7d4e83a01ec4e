"""What the product sends to Graph about events, built in one place.

Each builder returns a ``BatchRequest``: an item of ``GraphClient.batch()`` or, alone,
the argument of ``GraphClient.send()``. URLs are relative to ``/v1.0``; the client adds
the bearer token, ``client-request-id`` and its own ``Prefer`` values
(docs/graph.md#event-endpoints).

Public API:

- ``BatchRequest(id, method, url, body=None, headers=None)``;
- ``mailbox_segment(mailbox)``, ``user_path(mailbox)`` (``/users/{mailbox}``,
  ``/me`` for ``"me"``) and ``event_path(mailbox, event_id)``
  (``/users/{mailbox}/events/{id}``): the only places a mailbox or an event id is
  quoted into a URL; ``odata_quote``;
- ``weak_etag(change_key)``: the ``@odata.etag`` of a changeKey (``W/"<changeKey>"``),
  for ``If-Match``;
- ``create_event_request``, ``update_event_request``, ``delete_event_request``,
  ``get_event_request``, ``decline_event_request``;
- ``merge_prefer(defaults, extra)``, ``with_prefer(headers, defaults)`` and
  ``max_page_size(size)``: the one way ``Prefer`` values are combined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .events import MARKER_PROPERTY_ID

_EXTENDED = "singleValueExtendedProperties"


@dataclass
class BatchRequest:
    """One ``$batch`` item; ``url`` is relative to ``/v1.0`` (``/users/x/events``)."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


# --- paths ---------------------------------------------------------------------------


def mailbox_segment(mailbox: str) -> str:
    """A mailbox (e-mail address or id) as one URL path segment: quoted, ``@`` kept."""
    return quote(mailbox, safe="@")


def user_path(mailbox: str) -> str:
    """``/users/{mailbox}`` (``mailbox_segment``), ``/me`` for ``me``."""
    if mailbox.lower() == "me":
        return "/me"
    return f"/users/{mailbox_segment(mailbox)}"


def event_path(mailbox: str, event_id: str) -> str:
    """``/users/{mailbox}/events/{id}``; the id is one quoted segment (``/``, ``+``,
    ``?``, ``#``, ``%`` escaped). An immutable id (URL-safe base64) goes as it is:
    its ``=`` padding is allowed in a path segment (RFC 3986) and left alone, as
    the sync always sent it."""
    return f"{user_path(mailbox)}/events/{quote(event_id, safe='=')}"


def odata_quote(value: str) -> str:
    """A string literal's content for an OData ``$filter`` (``'`` doubled)."""
    return value.replace("'", "''")


def weak_etag(change_key: str) -> str:
    """The ``@odata.etag`` Graph gives an event of ``change_key``: ``W/"<key>"``."""
    return f'W/"{change_key}"'


# --- Prefer --------------------------------------------------------------------------


def _preference_name(value: str) -> str:
    return value.split("=", 1)[0].strip().lower()


def merge_prefer(defaults: Iterable[str], extra: Iterable[str] = ()) -> str:
    """One ``Prefer`` header value: ``defaults`` then ``extra`` (each an item such as
    ``odata.maxpagesize=50``, or several joined by commas). A later preference of
    the same name replaces an earlier one, so an item's own ``outlook.timezone``
    would win over the client's; empty items are left out."""
    merged: dict[str, str] = {}
    for value in (*defaults, *extra):
        for item in (value or "").split(","):
            item = item.strip()
            if item:
                name = _preference_name(item)
                merged.pop(name, None)
                merged[name] = item
    return ", ".join(merged.values())


def with_prefer(
    headers: Mapping[str, str] | None, defaults: Iterable[str]
) -> dict[str, str]:
    """``headers`` with every ``Prefer`` (any case) merged after ``defaults`` into
    one ``Prefer`` (an item's own preference must not drop the client's immutable
    ids and time zone)."""
    extra: list[str] = []
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if key.lower() == "prefer":
            extra.append(value)
        else:
            out[key] = value
    prefer = merge_prefer(defaults, extra)
    if prefer:
        out["Prefer"] = prefer
    return out


def max_page_size(size: int) -> str:
    """The preference asking for at most ``size`` items per page."""
    return f"odata.maxpagesize={size}"


# --- event requests ------------------------------------------------------------------


def _with_marker(body: dict[str, Any], marker: str | None) -> dict[str, Any]:
    """``body`` whose marker property is ``marker`` (or absent when None); other
    extended properties are kept."""
    kept = [
        prop
        for prop in body.get(_EXTENDED) or []
        if str(prop.get("id", "")).lower() != MARKER_PROPERTY_ID.lower()
    ]
    if marker:
        kept.append({"id": MARKER_PROPERTY_ID, "value": marker})
    out = {key: value for key, value in body.items() if key != _EXTENDED}
    if kept:
        out[_EXTENDED] = kept
    return out


def _if_match(etag: str | None) -> dict[str, str] | None:
    return {"If-Match": etag} if etag else None


def create_event_request(
    mailbox: str,
    payload: dict[str, Any],
    *,
    transaction_id: str,
    marker: str | None = None,
    request_id: str = "create",
) -> BatchRequest:
    """POST ``payload`` to the mailbox's primary calendar
    (``/users/{mailbox}/calendar/events``).

    ``transaction_id`` goes into the body: Outlook then creates at most one event
    for it, which makes retrying the POST safe
    (docs/graph.md#idempotent-create-with-transactionid).
    ``marker`` is written as the marker extended property
    (docs/graph.md#the-marker-extended-property); the payload's own marker
    property, if any, is replaced by it (dropped when ``marker`` is None).
    """
    body = {**_with_marker(payload, marker), "transactionId": transaction_id}
    return BatchRequest(
        request_id, "POST", f"{user_path(mailbox)}/calendar/events", body
    )


def update_event_request(
    mailbox: str,
    event_id: str,
    patch: dict[str, Any],
    *,
    etag: str | None = None,
    marker: str | None = None,
    request_id: str = "update",
) -> BatchRequest:
    """PATCH ``patch`` onto an event; with ``etag`` (an ``@odata.etag``, see
    ``weak_etag``) it goes as ``If-Match``, and an event changed since answers
    409/412 (``GraphConflict``). The marker is written only when ``marker`` is
    given (an adoption); the patch's own marker property is dropped otherwise."""
    return BatchRequest(
        request_id,
        "PATCH",
        event_path(mailbox, event_id),
        _with_marker(patch, marker),
        _if_match(etag),
    )


def delete_event_request(
    mailbox: str, event_id: str, *, etag: str | None = None, request_id: str = "delete"
) -> BatchRequest:
    """DELETE an event (``If-Match: etag`` when given); 404 when already gone."""
    return BatchRequest(
        request_id, "DELETE", event_path(mailbox, event_id), headers=_if_match(etag)
    )


def get_event_request(
    mailbox: str,
    event_id: str,
    *,
    expand_property: str | None = None,
    request_id: str = "get",
) -> BatchRequest:
    """GET one event (every property); ``expand_property`` adds that single-value
    extended property (``$expand``, the only way Graph returns it)."""
    url = event_path(mailbox, event_id)
    if expand_property:
        # $ , ( ) = and the quotes stay readable; spaces are encoded.
        url += "?$expand=" + quote(
            f"{_EXTENDED}($filter=id eq '{odata_quote(expand_property)}')",
            safe="$,()='{}",
        )
    return BatchRequest(request_id, "GET", url)


def decline_event_request(
    mailbox: str,
    event_id: str,
    *,
    comment: str,
    send_response: bool = True,
    request_id: str = "decline",
) -> BatchRequest:
    """POST ``.../events/{id}/decline``: the room declines the meeting, telling its
    organizer ``comment`` when ``send_response`` (docs/graph.md#declining-a-meeting)."""
    return BatchRequest(
        request_id,
        "POST",
        f"{event_path(mailbox, event_id)}/decline",
        {"comment": comment, "sendResponse": send_response},
    )
