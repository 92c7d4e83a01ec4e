"""The emulator's Places API (tests/emulator/places.py) over real HTTPS, on the
generated campus scenario (tests/emulator/campus.py): room lists, rooms of a room
list, buildings and floors, paging as documented, the undocumented points as
switches, and the directory changing under the app."""

from __future__ import annotations

from collections import Counter

import requests

from tests.emulator.campus import BUILDING_NAMES, campus_scenario, room_list_address
from tests.emulator.pytest_plugin import CAMPUS_BUILDINGS, CAMPUS_ROOMS
from tests.emulator.scenario import load_scenario

from .test_emulator_graph import APP_ID, ROOT, app_session, error_code, user_session

ROOMS = CAMPUS_ROOMS
BUILDINGS = CAMPUS_BUILDINGS


def pages(session, url):
    """Every page of a collection, following @odata.nextLink."""
    found = []
    while url:
        answer = session.get(url)
        assert answer.status_code == 200, answer.text[:300]
        found.append(answer.json())
        url = found[-1].get("@odata.nextLink")
    return found


def addresses(found):
    return [room["emailAddress"] for page in found for room in page["value"]]


def test_campus_scenario_is_deterministic_and_shaped_as_asked():
    first, again = campus_scenario(4, 40, seed=3), campus_scenario(4, 40, seed=3)
    assert first == again
    assert campus_scenario(4, 40, seed=4) != first
    scenario = load_scenario(first)
    campus_rooms = [room for room in scenario.rooms if room.building != "Brussels HQ"]
    assert len(campus_rooms) == 40
    assert Counter(room.building for room in campus_rooms) == {
        name: 10 for name in ("Atrium", "Beacon", "Cedar", "Delta")
    }
    assert len({room.email for room in campus_rooms}) == 40
    assert [room_list.email for room_list in scenario.room_lists] == [
        room_list_address(name) for name in ("Atrium", "Beacon", "Cedar", "Delta")
    ]
    # Every 10th room outside the app's RBAC scope, every 3rd read-only for Adele,
    # every 25th in no room list.
    scope = {address.lower() for address in scenario.app(APP_ID).rbac_scope}
    outside = [r.email for r in campus_rooms if r.email.lower() not in scope]
    assert outside == [campus_rooms[i - 1].email for i in (10, 20, 30, 40)]
    read_only = [
        r.email
        for r in campus_rooms
        if scenario.share_role(r.email, "AdeleV@contoso.test") == "read"
    ]
    assert len(read_only) == 13
    assert [r.email for r in campus_rooms if r.room_list is None] == [
        campus_rooms[24].email
    ]
    assert len(load_scenario("campus").rooms) == 4 + 300


def test_rooms_pages_of_100_by_default_and_top(campus):
    session = app_session(campus)
    found = pages(session, f"{campus.graph_url}/places/microsoft.graph.room")
    assert [len(page["value"]) for page in found] == [100, 100, 100, 4]
    listed = addresses(found)
    assert len(listed) == len(set(listed)) == ROOMS + 4
    found = pages(session, f"{campus.graph_url}/places/microsoft.graph.room?$top=250")
    assert [len(page["value"]) for page in found] == [250, 54]
    assert addresses(found) == listed
    assert "$top=250" in found[0]["@odata.nextLink"]
    too_many = session.get(f"{campus.graph_url}/places/microsoft.graph.room?$top=1001")
    assert too_many.status_code == 400
    assert error_code(too_many) == "ErrorInvalidUrlQuery"
    campus.emulator.set_switches(places_max_top=2000)
    one_page = pages(
        session, f"{campus.graph_url}/places/microsoft.graph.room?$top=2000"
    )
    assert len(one_page) == 1 and addresses(one_page) == listed


def test_room_shape_follows_the_room_resource(campus):
    session = app_session(campus)
    room = campus.emulator.scenario.room("atrium.101@contoso.test")
    found = session.get(
        f"{campus.graph_url}/places/microsoft.graph.room"
        "?$filter=emailAddress eq 'atrium.101@contoso.test'"
    ).json()["value"]
    assert len(found) == 1
    item = found[0]
    assert item["@odata.type"] == "#microsoft.graph.room"
    assert item["displayName"] == "Atrium 101"
    assert item["capacity"] == room.capacity and isinstance(item["capacity"], int)
    assert (item["building"], item["floorNumber"], item["floorLabel"]) == (
        "Atrium",
        1,
        "Floor 1",
    )
    assert item["tags"] == room.tags
    assert item["isWheelChairAccessible"] is room.is_wheelchair_accessible
    assert item["bookingType"] == "standard"
    for name in ("audioDeviceName", "videoDeviceName", "displayDeviceName", "label"):
        assert name in item
    selected = session.get(
        f"{campus.graph_url}/places/microsoft.graph.room"
        "?$select=emailAddress,capacity&$top=1"
    ).json()["value"][0]
    assert set(selected) == {"@odata.type", "id", "emailAddress", "capacity"}


def test_room_lists_and_their_rooms(campus):
    session = app_session(campus)
    lists = session.get(f"{campus.graph_url}/places/microsoft.graph.roomList").json()
    assert lists["@odata.context"].endswith("#places/microsoft.graph.roomList")
    assert [item["displayName"] for item in lists["value"]] == [
        f"{name} rooms" for name in BUILDING_NAMES[:BUILDINGS]
    ]
    assert {item["@odata.type"] for item in lists["value"]} == {
        "#microsoft.graph.roomList"
    }
    atrium = lists["value"][0]
    # The short type alias and any case, as the SDKs send it.
    url = f"{campus.graph_url}/places/{atrium['emailAddress']}/graph.roomlist/rooms"
    found = pages(session, url)
    rooms = addresses(found)
    # 50 rooms per building, the 25th and 50th of the campus in no room list.
    assert len(rooms) == 48
    assert all(address.startswith("atrium.") for address in rooms)
    assert "places('rooms.atrium%40contoso.test')" in found[0]["@odata.context"]
    by_id = session.get(
        f"{campus.graph_url}/places/{atrium['id']}/microsoft.graph.roomList/rooms"
    )
    assert by_id.status_code == 404
    unknown = session.get(
        f"{campus.graph_url}/places/nowhere@contoso.test/microsoft.graph.roomList/rooms"
    )
    assert unknown.status_code == 404
    counted = session.get(f"{url}?$count=true&$top=10").json()
    assert counted["@odata.count"] == 48 and len(counted["value"]) == 10


def test_buildings_and_floors(campus):
    session = app_session(campus)
    buildings = pages(session, f"{campus.graph_url}/places/microsoft.graph.building")
    assert len(buildings) == 1  # up to 1,000 per page
    names = {b["displayName"]: b["id"] for b in buildings[0]["value"]}
    assert set(names) == {"Brussels HQ", *BUILDING_NAMES[:BUILDINGS]}
    floors = pages(session, f"{campus.graph_url}/places/microsoft.graph.floor")
    floors = floors[0]["value"]
    atrium_floors = [f for f in floors if f["parentId"] == names["Atrium"]]
    assert sorted(f["sortOrder"] for f in atrium_floors) == [1, 2, 3, 4, 5]
    assert {f["@odata.type"] for f in floors} == {"#microsoft.graph.floor"}
    room = session.get(
        f"{campus.graph_url}/places/microsoft.graph.room"
        "?$filter=building eq 'Atrium' and floorNumber eq 3"
    ).json()["value"]
    assert len(room) == 10
    floor_3 = next(f for f in atrium_floors if f["sortOrder"] == 3)
    assert {item["parentId"] for item in room} == {floor_3["id"]}
    paged = session.get(f"{campus.graph_url}/places/microsoft.graph.floor?$top=5")
    assert len(paged.json()["value"]) == 5 and "@odata.nextLink" in paged.json()
    # $filter and $count are for rooms and room lists only.
    refused = session.get(
        f"{campus.graph_url}/places/microsoft.graph.floor?$filter=sortOrder eq 1"
    )
    assert refused.status_code == 400


def test_paging_without_next_link_switch(campus):
    """The reported behaviour (no @odata.nextLink): $skip and $count still page."""
    campus.emulator.set_switches(places_next_link=False)
    session = app_session(campus)
    url = f"{campus.graph_url}/places/microsoft.graph.room"
    first = session.get(f"{url}?$count=true").json()
    assert "@odata.nextLink" not in first
    assert first["@odata.count"] == ROOMS + 4 and len(first["value"]) == 100
    seen = [room["emailAddress"] for room in first["value"]]
    while len(seen) < first["@odata.count"]:
        page = session.get(f"{url}?$skip={len(seen)}").json()
        assert "@odata.nextLink" not in page
        seen += [room["emailAddress"] for room in page["value"]]
    assert len(set(seen)) == ROOMS + 4


def test_directory_changes_and_scope(campus):
    emulator = campus.emulator
    session = app_session(campus)
    url = f"{campus.graph_url}/places/microsoft.graph.room?$top=1000"

    def listed():
        return {room["emailAddress"]: room for room in session.get(url).json()["value"]}

    # The 10th campus room is outside the RBAC scope: listed, but not reachable.
    tenth = emulator.scenario.rooms[4 + 9].email
    assert tenth in listed()
    calendar = session.get(f"{campus.graph_url}/users/{tenth}/calendar")
    assert calendar.status_code == 403
    assert calendar.json()["error"]["message"] == "Access to OData is disabled."
    # An admin changes a room, hides another from the address list, deletes a third.
    emulator.update_room("atrium.101@contoso.test", capacity=14, tags=["piano"])
    emulator.update_room("atrium.201@contoso.test", hidden=True)
    answer = requests.post(
        f"{campus.admin_url}/scenario/room/remove",
        json={"room": "atrium.301@contoso.test"},
    )
    assert answer.status_code == 200, answer.text
    rooms = listed()
    assert (
        rooms["atrium.101@contoso.test"]["capacity"],
        rooms["atrium.101@contoso.test"]["tags"],
    ) == (14, ["piano"])
    assert "atrium.201@contoso.test" not in rooms
    assert "atrium.301@contoso.test" not in rooms
    # Hidden: the mailbox still works; deleted: Graph no longer finds it.
    hidden = session.get(f"{campus.graph_url}/users/atrium.201@contoso.test/calendar")
    assert hidden.status_code == 200
    gone = session.get(f"{campus.graph_url}/users/atrium.301@contoso.test/calendar")
    assert gone.status_code == 404 and error_code(gone) == "ErrorInvalidUser"
    # Through the admin API too, with its checks.
    answer = requests.post(
        f"{campus.admin_url}/scenario/room/update",
        json={"room": "atrium.102@contoso.test", "display_name": "Atrium Lounge"},
    )
    assert answer.json()["display_name"] == "Atrium Lounge"
    for path, body in (
        ("update", {"room": "atrium.102@contoso.test", "capacity": "ten"}),
        ("update", {"room": "atrium.102@contoso.test", "colour": "red"}),
        ("update", {"room": "nowhere@contoso.test", "capacity": 3}),
        ("update", {"capacity": 3}),
        ("remove", {"room": "nowhere@contoso.test"}),
    ):
        answer = requests.post(f"{campus.admin_url}/scenario/room/{path}", json=body)
        assert answer.status_code == 400, (body, answer.text)
    # A reset brings the directory back as loaded (and forgets the tokens).
    emulator.reset()
    session = app_session(campus)
    rooms = listed()
    assert "atrium.301@contoso.test" in rooms
    assert rooms["atrium.102@contoso.test"]["displayName"] == "Atrium 102"


def test_places_need_place_read_all_and_work_in_batch(campus):
    adele = user_session(campus, "AdeleV@contoso.test")  # no Place.Read.All
    denied = adele.get(f"{campus.graph_url}/places/microsoft.graph.roomList")
    assert denied.status_code == 403
    consented = user_session(
        campus, "AdeleV@contoso.test", ("Calendars.ReadWrite.Shared", "Place.Read.All")
    )
    assert (
        consented.get(f"{campus.graph_url}/places/microsoft.graph.roomList").status_code
        == 200
    )
    session = app_session(campus)
    envelope = {
        "requests": [
            {
                "id": str(index),
                "method": "GET",
                "url": f"/places/{room_list_address(name)}/graph.roomList/rooms",
            }
            for index, name in enumerate(("Atrium", "Beacon"))
        ]
    }
    answer = session.post(f"{campus.graph_url}/$batch", json=envelope).json()
    sizes = {r["id"]: len(r["body"]["value"]) for r in answer["responses"]}
    assert sizes == {"0": 48, "1": 48}
    assert {r["status"] for r in answer["responses"]} == {200}


def test_cli_serves_the_campus_scenario():
    """``python -m tests.emulator --scenario campus`` (the bundled generated name)."""
    import json
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--scenario", "campus"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        ready = json.loads(process.stdout.readline())
        state = requests.get(f"{ready['admin_url']}/state", verify=ready["ca_bundle"])
        assert len(state.json()["rooms"]) == 304
        assert len(state.json()["room_lists"]) == 6
    finally:
        process.terminate()
        process.wait(timeout=10)
