"""A generated scenario: the default tenant plus a campus of room mailboxes.

Public API::

    campus_scenario(buildings=6, rooms=300, *, floors=5, seed=0, out_of_scope_every=10,
                    read_only_every=3, unlisted_every=25) -> dict

It returns scenario data (``load_scenario`` takes it; ``load_scenario("campus")``
gives the defaults): everything of ``scenarios/default.json`` (tenant, people, apps,
the four rooms and their shares), plus ``rooms`` room mailboxes spread evenly over
``buildings`` buildings of ``floors`` floors, each building with its room list
(``rooms.<building>@contoso.test``, as Exchange admins make one per building for
Room Finder). Deterministic: the same arguments give the same scenario.

Per campus room, by its position ``index`` (1-based) in the campus:

- ``index % out_of_scope_every == 0``: outside the app-only app's RBAC for
  Applications scope (its listing still shows it: Place.Read.All is not scoped);
- ``index % read_only_every == 0``: Adele (the delegated admin) can only read its
  calendar, otherwise she may edit it;
- ``index % unlisted_every == 0``: in no room list (Room Finder does not show it, the
  room listing does).

A 0 turns a rule off. Capacity, tags and devices vary with ``seed``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from .scenario import DEFAULT_SCENARIO_PATH

DOMAIN = "contoso.test"
DELEGATED_ADMIN = "AdeleV@contoso.test"
APP_ONLY_APP = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
BUILDING_NAMES = (
    "Atrium",
    "Beacon",
    "Cedar",
    "Delta",
    "Elm",
    "Forge",
    "Grove",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Linden",
)
CAPACITIES = (4, 4, 6, 6, 8, 8, 10, 12, 16, 20)
TAGS = ("whiteboard", "window", "standing desks", "quiet")


def building_name(number: int) -> str:
    """The name of building ``number`` (0-based): Atrium, Beacon... then B13, B14."""
    if number < len(BUILDING_NAMES):
        return BUILDING_NAMES[number]
    return f"B{number + 1}"


def room_list_address(building: str) -> str:
    return f"rooms.{building.lower().replace(' ', '-')}@{DOMAIN}"


def campus_scenario(
    buildings: int = 6,
    rooms: int = 300,
    *,
    floors: int = 5,
    seed: int = 0,
    out_of_scope_every: int = 10,
    read_only_every: int = 3,
    unlisted_every: int = 25,
) -> dict[str, Any]:
    """Scenario data: the default scenario plus ``rooms`` rooms (see the module)."""
    if buildings < 1 or rooms < 0 or floors < 1:
        raise ValueError("campus_scenario needs buildings, floors >= 1 and rooms >= 0")
    data = json.loads(DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8"))
    data["description"] = (
        f"The default tenant plus {rooms} rooms in {buildings} buildings "
        f"(tests/emulator/campus.py, seed {seed})."
    )
    chance = random.Random(seed)
    names = [building_name(number) for number in range(buildings)]
    data["room_lists"] = [
        {"email": room_list_address(name), "display_name": f"{name} rooms"}
        for name in names
    ]
    app = next(a for a in data["apps"] if a["client_id"] == APP_ONLY_APP)
    scope = list(app.get("rbac_scope") or [])
    per_building = -(-rooms // buildings) if rooms else 0
    for index in range(1, rooms + 1):
        number = (index - 1) // per_building
        within = (index - 1) % per_building
        floor = within % floors + 1
        name = names[number]
        email = f"{name.lower()}.{floor}{within // floors + 1:02d}@{DOMAIN}"
        room: dict[str, Any] = {
            "email": email,
            "display_name": f"{name} {floor}{within // floors + 1:02d}",
            "capacity": chance.choice(CAPACITIES),
            "building": name,
            "floor_number": floor,
            "floor_label": f"Floor {floor}",
            "time_zone": "Europe/Brussels",
            "tags": sorted(chance.sample(TAGS, chance.randint(0, 2))),
            "is_wheelchair_accessible": chance.random() < 0.7,
        }
        if chance.random() < 0.4:
            room["video_device_name"] = "Teams Room"
        if chance.random() < 0.6:
            room["display_device_name"] = "Screen"
        if not (unlisted_every and index % unlisted_every == 0):
            room["room_list"] = room_list_address(name)
        data["rooms"].append(room)
        if not (out_of_scope_every and index % out_of_scope_every == 0):
            scope.append(email)
        role = "read" if read_only_every and index % read_only_every == 0 else "write"
        data["shares"].append({"room": email, "user": DELEGATED_ADMIN, "role": role})
    app["rbac_scope"] = scope
    return data
