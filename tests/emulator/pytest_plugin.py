"""Pytest fixtures for the emulator. Enable with
``pytest_plugins = ["tests.emulator.pytest_plugin"]`` (root conftest or test module).

Fixtures:

- ``emulator_server`` (session): one ``EmulatorServer`` over HTTPS for the whole run.
- ``emulator`` (function): that server, reset to the scenario as loaded (events,
  tokens, faults, throttle, log, subscriptions), with ``REQUESTS_CA_BUNDLE`` and
  ``CURL_CA_BUNDLE`` pointing at ``server.ca_bundle_path`` for the test. Both variables
  silently override ``requests.Session.verify``
  (docs/graph.md#ca-bundle-variables-override-verify), so they must
  name a bundle that contains the emulator CA.
- ``emulator_reset`` (function): the reset alone, for tests that take the server from
  ``emulator_server``.
- ``emulator_ca_bundle`` (function): the two variables alone; returns the bundle path.
- ``campus_server`` (session) and ``campus`` (function): the same for a second server
  with the generated campus scenario (``campus.py``: 300 rooms in 6 buildings, with
  room lists), reset and with the Places switches at their defaults for each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .campus import campus_scenario
from .server import EmulatorServer

CAMPUS_BUILDINGS = 6
CAMPUS_ROOMS = 300


def _serving(**options: object) -> Iterator[EmulatorServer]:
    server = EmulatorServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    yield from _serving()


@pytest.fixture
def emulator_ca_bundle(
    emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> str:
    return _trust(emulator_server, monkeypatch)


def _trust(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    path = server.ca_bundle_path
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", path)
    monkeypatch.setenv("CURL_CA_BUNDLE", path)
    return path


@pytest.fixture
def emulator_reset(emulator_server: EmulatorServer) -> EmulatorServer:
    emulator_server.emulator.reset()
    return emulator_server


@pytest.fixture
def emulator(emulator_reset: EmulatorServer, emulator_ca_bundle: str) -> EmulatorServer:
    return emulator_reset


@pytest.fixture(scope="session")
def campus_server() -> Iterator[EmulatorServer]:
    yield from _serving(scenario=campus_scenario(CAMPUS_BUILDINGS, CAMPUS_ROOMS))


@pytest.fixture
def campus(
    campus_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> EmulatorServer:
    campus_server.emulator.reset()
    campus_server.emulator.set_switches(places_max_top=1000, places_next_link=True)
    _trust(campus_server, monkeypatch)
    return campus_server
