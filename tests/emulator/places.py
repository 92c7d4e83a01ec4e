"""The Places API of the emulator: Graph's room directory (docs/graph.md#listing-rooms).

Public API::

    PLACE_TYPES                         # the place types listed under /places/{type}
    match(api, segments, method) -> _Route for a /places/... path (graph.py routing)

Routes (``Place.Read.All``, delegated or application; not mailbox-scoped, so RBAC
for Applications does not narrow them, and they are not throttled):

- ``GET /places/microsoft.graph.room``: every room of the tenant, except those hidden
  from the address list ("Rooms that are marked Hidden from GAL can't be retrieved
  through this endpoint");
- ``GET /places/microsoft.graph.roomList``: the room lists;
- ``GET /places/{room list e-mail}/microsoft.graph.roomList/rooms``: the rooms of
  one room list, which "you must specify by its emailAddress property, not by its
  id" (an id, or an unknown address, answers 404: the exact error is UNCONFIRMED);
- ``GET /places/microsoft.graph.building`` and ``/places/microsoft.graph.floor``:
  the buildings and floors, derived from the rooms' ``building`` and floor (a floor's
  ``parentId`` is its building's id, a room's ``parentId`` its floor's).

Paging, as documented on Microsoft Learn (List places, v1.0): "By default, this
operation returns up to 100 rooms, workspaces, and room lists per page, and 1,000
buildings, floors, sections, and desks per page"; "Use $top to customize the page
size"; ``$skip``, ``$select``; ``$filter`` and ``$count=true`` only for rooms and
room lists. Documentation is silent on two points, which are therefore switches of
the ``Emulator``:

- ``places_max_top`` (default 1000, the largest documented page): a larger ``$top``
  answers 400 ``ErrorInvalidUrlQuery``;
- ``places_next_link`` (default True): pages other than the last carry
  ``@odata.nextLink`` (Graph's documented paging); False reproduces what was
  reported on Microsoft Q&A ("@odata.nextLink missing on running
  places/microsoft.graph.room?$count=true&$top=1", question 1021419), where a client
  must page with ``$skip`` (and ``$count=true`` to know when to stop).

``$filter`` supports ``property eq 'text'`` or ``property eq number`` clauses joined
by ``and`` on emailAddress, displayName, building, floorLabel, floorNumber, capacity.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import GraphHttpError
from .scenario import Room, RoomList

if TYPE_CHECKING:
    from .graph import GraphApi, GraphResult, _Ctx, _Route

ROOM = "microsoft.graph.room"
ROOM_LIST = "microsoft.graph.roomlist"
BUILDING = "microsoft.graph.building"
FLOOR = "microsoft.graph.floor"
PLACE_TYPES = (ROOM, ROOM_LIST, BUILDING, FLOOR)
# Default page sizes (List places, v1.0).
DEFAULT_PAGE = {ROOM: 100, ROOM_LIST: 100, BUILDING: 1000, FLOOR: 1000}
FILTERABLE = (ROOM, ROOM_LIST)
CONTEXT = {
    ROOM: "places/microsoft.graph.room",
    ROOM_LIST: "places/microsoft.graph.roomList",
    BUILDING: "places/microsoft.graph.building",
    FLOOR: "places/microsoft.graph.floor",
}
ACCESS_DENIED = "Access is denied. Check credentials and try again."
NOT_FOUND = "The specified object was not found in the store."
_FILTER = re.compile(r"^\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(-?\d+))\s*$")
_FILTER_FIELDS = {
    "emailaddress": "emailAddress",
    "displayname": "displayName",
    "building": "building",
    "floorlabel": "floorLabel",
    "floornumber": "floorNumber",
    "capacity": "capacity",
}
_NAMESPACE = uuid.UUID("3c9b7f4e-2b59-4b8e-9a43-6c1f0b0c7a21")
_EMPTY_ADDRESS = {
    "street": "",
    "city": "",
    "state": "",
    "countryOrRegion": "",
    "postalCode": "",
}


def match(api: GraphApi, segments: list[str], method: str) -> _Route:
    """The route of a ``/places/...`` path (segments already unquoted)."""
    from .graph import _bad_request, _canonical_segment, _Route

    low = [_canonical_segment(segment) for segment in segments]
    if len(low) == 2 and low[1] in PLACE_TYPES:
        route = api._only(
            method, {"GET": _Route(f"/places/{low[1]}", _handler(api, low[1]))}
        )
        return route
    if len(low) == 4 and low[2] == ROOM_LIST and low[3] == "rooms":
        address = segments[1]
        return api._only(
            method,
            {
                "GET": _Route(
                    "/places/{id}/microsoft.graph.roomList/rooms",
                    lambda ctx: _room_list_rooms(api, ctx, address),
                )
            },
        )
    raise _bad_request(f"Resource not found for the segment '{segments[-1]}'.")


def _handler(api: GraphApi, place_type: str):
    def handle(ctx: _Ctx) -> GraphResult:
        _check_permission(api, ctx)
        tenant = ctx.grant.tenant_id
        if place_type == ROOM:
            items = [_room_json(room) for room in _rooms(api, tenant)]
        elif place_type == ROOM_LIST:
            items = [
                _room_list_json(room_list)
                for room_list in api.scenario.room_lists
                if room_list.tenant_id == tenant
            ]
        elif place_type == BUILDING:
            items = _buildings(api, tenant)
        else:
            items = _floors(api, tenant)
        return _page(api, ctx, items, place_type, api._context(CONTEXT[place_type]))

    return handle


def _room_list_rooms(api: GraphApi, ctx: _Ctx, address: str) -> GraphResult:
    _check_permission(api, ctx)
    tenant = ctx.grant.tenant_id
    room_list = next(
        (
            candidate
            for candidate in api.scenario.room_lists
            if candidate.tenant_id == tenant
            and candidate.email.casefold() == address.casefold()
        ),
        None,
    )
    if room_list is None:
        raise GraphHttpError(404, "ErrorItemNotFound", NOT_FOUND)
    rooms = [
        _room_json(room)
        for room in _rooms(api, tenant)
        if (room.room_list or "").casefold() == room_list.email.casefold()
    ]
    context = api._context(
        f"places('{quote(room_list.email, safe='')}')/microsoft.graph.roomList/rooms"
    )
    return _page(api, ctx, rooms, ROOM, context)


def _check_permission(api: GraphApi, ctx: _Ctx) -> None:
    grant = ctx.grant
    granted = api._short(grant.roles if grant.kind == "app" else grant.scopes)
    if not {"Place.Read.All", "Place.ReadWrite.All"} & granted:
        raise GraphHttpError(403, "ErrorAccessDenied", ACCESS_DENIED)


def _rooms(api: GraphApi, tenant: str) -> list[Room]:
    return [
        room
        for room in api.scenario.rooms
        if room.tenant_id == tenant and not room.hidden
    ]


def _page(
    api: GraphApi,
    ctx: _Ctx,
    items: list[dict[str, Any]],
    place_type: str,
    context: str,
) -> GraphResult:
    from .graph import GraphResult, _bad_request, _int_param, _select

    query = ctx.call.query
    if place_type not in FILTERABLE and ("$filter" in query or "$count" in query):
        raise _bad_request(
            "$filter and $count are supported for rooms and room lists only.",
            "ErrorInvalidUrlQuery",
        )
    items = _filter(items, query.get("$filter"))
    top = _int_param(
        query, "$top", DEFAULT_PAGE[place_type], api.emulator.places_max_top
    )
    skip = _int_param(query, "$skip", 0, 10**9)
    body: dict[str, Any] = {"@odata.context": context}
    if query.get("$count", "").lower() == "true":
        body["@odata.count"] = len(items)
    body["value"] = _select(items[skip : skip + top], query)
    if skip + top < len(items) and api.emulator.places_next_link:
        body["@odata.nextLink"] = api._link(ctx, {"$top": top, "$skip": skip + top})
    return GraphResult(200, body=body)


def _filter(items: list[dict[str, Any]], raw: str | None) -> list[dict[str, Any]]:
    from .graph import _bad_request

    if not raw:
        return items
    for clause in re.split(r"\s+and\s+", raw, flags=re.IGNORECASE):
        found = _FILTER.match(clause)
        name = _FILTER_FIELDS.get(found.group(1).lower()) if found else None
        if found is None or name is None:
            raise _bad_request(
                f"Invalid filter clause: {clause.strip()}", "ErrorInvalidUrlQueryFilter"
            )
        text, number = found.group(2), found.group(3)
        if number is not None:
            items = [item for item in items if item.get(name) == int(number)]
        else:
            wanted = text.replace("''", "'").lower()
            items = [i for i in items if str(i.get(name) or "").lower() == wanted]
    return items


def _place_id(kind: str, *parts: Any) -> str:
    key = "|".join(str(part).casefold() for part in parts)
    return str(uuid.uuid5(_NAMESPACE, f"{kind}|{key}"))


def _floor_key(room: Room) -> tuple[str, str] | None:
    if not room.building or (room.floor_number is None and not room.floor_label):
        return None
    return room.building, str(
        room.floor_number if room.floor_number is not None else room.floor_label
    )


def _room_json(room: Room) -> dict[str, Any]:
    """A room as List places (v1.0) returns it (the room resource type's properties,
    with the names of its property table)."""
    floor = _floor_key(room)
    return {
        "@odata.type": "#microsoft.graph.room",
        "id": room.id,
        "emailAddress": room.email,
        "displayName": room.display_name,
        "address": dict(_EMPTY_ADDRESS),
        "geoCoordinates": None,
        "phone": None,
        "nickname": room.display_name,
        "label": room.label,
        "capacity": room.capacity,
        "building": room.building,
        "floorLabel": room.floor_label,
        "floorNumber": room.floor_number,
        "isWheelChairAccessible": room.is_wheelchair_accessible,
        "bookingType": room.booking_type,
        "tags": list(room.tags),
        "audioDeviceName": room.audio_device_name,
        "videoDeviceName": room.video_device_name,
        "displayDeviceName": room.display_device_name,
        "parentId": _place_id("floor", *floor) if floor else None,
    }


def _room_list_json(room_list: RoomList) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.roomList",
        "id": room_list.id,
        "displayName": room_list.display_name,
        "address": dict(_EMPTY_ADDRESS),
        "geoCoordinates": None,
        "phone": None,
        "emailAddress": room_list.email,
    }


def _buildings(api: GraphApi, tenant: str) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    for room in _rooms(api, tenant):
        if room.building:
            names.setdefault(room.building.casefold(), room.building)
    return [
        {
            "@odata.type": "#microsoft.graph.building",
            "id": _place_id("building", name),
            "displayName": name,
            "address": dict(_EMPTY_ADDRESS),
            "geoCoordinates": None,
            "isWheelChairAccessible": False,
            "label": None,
            "parentId": None,
            "phone": None,
            "resourceLinks": [],
            "tags": [],
            "wifiState": "unknown",
        }
        for name in names.values()
    ]


def _floors(api: GraphApi, tenant: str) -> list[dict[str, Any]]:
    floors: dict[tuple[str, str], Room] = {}
    for room in _rooms(api, tenant):
        key = _floor_key(room)
        if key is not None:
            floors.setdefault((key[0].casefold(), key[1].casefold()), room)
    return [
        {
            "@odata.type": "#microsoft.graph.floor",
            "id": _place_id("floor", *_floor_key(room)),
            "displayName": room.floor_label or str(room.floor_number),
            "address": dict(_EMPTY_ADDRESS),
            "geoCoordinates": None,
            "isWheelChairAccessible": False,
            "label": None,
            "parentId": _place_id("building", room.building),
            "phone": None,
            "sortOrder": room.floor_number,
            "tags": [],
        }
        for room in floors.values()
    ]
