"""The emulator against the OFFICIAL Microsoft Graph SDK for Python (``msgraph-sdk``).

Nothing of the SDK is patched: only its endpoints and trust anchors are configured.

- ``azure.identity.ClientSecretCredential`` gets ``authority=<emulator base URL>``
  (it appends ``/{tenant}`` and MSAL then asks ``/{tenant}/oauth2/v2.0/token``),
  ``disable_instance_discovery=True`` and ``connection_verify=<emulator CA bundle>``.
- Kiota's transport is httpx, which does not read ``REQUESTS_CA_BUNDLE``: the test
  builds an ``httpx.AsyncClient`` that trusts the emulator CA and has the emulator's
  Graph URL as ``base_url``, lets ``GraphClientFactory`` load the Graph middleware into
  it, and hands it to ``GraphRequestAdapter``. ``GraphServiceClient(credentials=...)``
  cannot take a client, so it gets that adapter (``request_adapter=``) and the
  ``AzureIdentityAuthenticationProvider`` it would have built itself from the
  credential and scopes.

Each test runs its coroutine with ``asyncio.run`` (no pytest-asyncio); the httpx
client is bound to that event loop and closed at its end.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting_provider_type import (
    OnlineMeetingProviderType,
)
from msgraph.generated.users.item.calendar.calendar_view import (
    calendar_view_request_builder,
)
from msgraph.generated.users.item.calendar.calendar_view.delta import (
    delta_request_builder,
)
from msgraph_core import GraphClientFactory

TENANT_ID = "c0ffa6e5-9afb-41d4-8e9c-3a74d1f89039"
CLIENT_ID = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
CLIENT_SECRET = "app-only-secret~Valid.2028"
SCOPES = ["https://graph.microsoft.com/.default"]

ADAMS = "room.adams@contoso.test"
DUNE = "room.dune@contoso.test"
DAY = "2026-12-07"
_ViewBuilder = calendar_view_request_builder.CalendarViewRequestBuilder
ViewQuery = _ViewBuilder.CalendarViewRequestBuilderGetQueryParameters
DeltaQuery = (
    delta_request_builder.DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters
)
ROOMS = {
    "room.adams@contoso.test",
    "room.baker@contoso.test",
    "room.crystal@contoso.test",
    "room.dune@contoso.test",
}


def run_with_client(
    server: Any, body: Callable[[GraphServiceClient], Awaitable[Any]]
) -> Any:
    """Run ``body(client)`` in a fresh event loop with an SDK client on ``server``."""

    async def main() -> Any:
        credential = ClientSecretCredential(
            TENANT_ID,
            CLIENT_ID,
            CLIENT_SECRET,
            authority=server.base_url,
            disable_instance_discovery=True,
            connection_verify=server.ca_bundle_path,
        )
        http_client = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(
                base_url=server.graph_url,
                verify=ssl.create_default_context(cafile=server.ca_bundle_path),
                timeout=httpx.Timeout(30.0, connect=10.0),
            )
        )
        adapter = GraphRequestAdapter(
            AzureIdentityAuthenticationProvider(credential, scopes=SCOPES),
            client=http_client,
        )
        adapter.base_url = server.graph_url
        try:
            return await body(GraphServiceClient(request_adapter=adapter))
        finally:
            await http_client.aclose()
            credential.close()

    return asyncio.run(main())


def _view_config(start: str, end: str) -> RequestConfiguration:
    return RequestConfiguration(
        query_parameters=ViewQuery(start_date_time=start, end_date_time=end, top=50)
    )


def _assert_rooms(page: Any) -> None:
    emails = {room.email_address for room in page.value}
    assert emails == ROOMS
    assert len(page.value) == 4
    adams = next(room for room in page.value if room.email_address == ADAMS)
    assert adams.id == "047ec05b-bf4b-4aaf-b35e-680731d1918b"
    assert adams.display_name == "Adams (8)"
    assert adams.capacity == 8
    assert adams.building == "Brussels HQ"
    assert adams.floor_number == 1
    assert adams.odata_type == "#microsoft.graph.room"
    assert page.odata_next_link is None


def test_sdk_lists_rooms(emulator):
    async def body(client: GraphServiceClient):
        return await client.places.graph_room.get()

    _assert_rooms(run_with_client(emulator, body))


def test_sdk_lists_rooms_with_full_type_cast(emulator):
    """The same request builder, re-targeted (``with_url``) at the fully qualified
    cast segment the emulator routes; checks the SDK parses the emulator's answer."""

    async def body(client: GraphServiceClient):
        url = f"{emulator.graph_url}/places/microsoft.graph.room"
        return await client.places.graph_room.with_url(url).get()

    _assert_rooms(run_with_client(emulator, body))


def test_sdk_creates_reads_and_lists_an_event(emulator):
    subject = "SDK round trip"

    async def body(client: GraphServiceClient):
        calendar = client.users.by_user_id(ADAMS).calendar
        created = await calendar.events.post(
            Event(
                subject=subject,
                body=ItemBody(content_type=BodyType.Text, content="Booked via msgraph"),
                start=DateTimeTimeZone(date_time=f"{DAY}T10:00:00", time_zone="UTC"),
                end=DateTimeTimeZone(date_time=f"{DAY}T11:00:00", time_zone="UTC"),
                attendees=[
                    Attendee(
                        email_address=EmailAddress(
                            address="AdeleV@contoso.test", name="Adele Vance"
                        ),
                        type=AttendeeType.Required,
                    )
                ],
                transaction_id="sdk-round-trip-1",
            )
        )
        fetched = (
            await client.users.by_user_id(ADAMS).events.by_event_id(created.id).get()
        )
        view = await calendar.calendar_view.get(
            request_configuration=_view_config(
                "2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z"
            )
        )
        wide_view = await calendar.calendar_view.get(
            request_configuration=_view_config(
                "2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z"
            )
        )
        return created, fetched, view, wide_view

    created, fetched, view, wide_view = run_with_client(emulator, body)

    assert created.id
    assert created.subject == subject
    assert created.start.date_time.startswith(f"{DAY}T10:00:00")
    assert created.start.time_zone == "UTC"
    assert isinstance(created.created_date_time, datetime)
    assert created.created_date_time.tzinfo is not None
    assert created.transaction_id == "sdk-round-trip-1"

    assert fetched.id == created.id
    assert fetched.subject == subject
    assert fetched.i_cal_u_id
    assert fetched.i_cal_u_id == created.i_cal_u_id
    assert fetched.end.date_time.startswith(f"{DAY}T11:00:00")
    assert [a.email_address.address for a in fetched.attendees] == [
        "AdeleV@contoso.test"
    ]
    assert fetched.body.content_type == BodyType.Text

    assert [event.id for event in view.value] == [created.id]
    assert view.value[0].subject == subject

    # The scenario's two Adams bookings (1 and 2 December) plus the new one.
    assert len(wide_view.value) == 3
    assert {event.subject for event in wide_view.value} == {
        "Weekly sales sync",
        "Customer demo",
        subject,
    }
    assert created.id in {event.id for event in wide_view.value}

    view_paths = [
        entry["path"]
        for entry in emulator.emulator.request_log
        if "/calendarview" in entry["path"].lower()
    ]
    assert len(view_paths) == 2
    query = parse_qs(urlsplit(view_paths[0]).query)
    assert query["startDateTime"] == ["2026-12-07T00:00:00Z"]
    assert query["endDateTime"] == ["2026-12-08T00:00:00Z"]
    assert query["$top"] == ["50"]


def test_sdk_creates_an_online_meeting(emulator):
    # Issue 15: the event was stored with onlineMeeting null. "Create or set an event
    # as an online meeting in an Outlook calendar": the response "includes an event
    # with online meeting information specified in the onlineMeeting property".
    async def body(client: GraphServiceClient):
        events = client.users.by_user_id(ADAMS).calendar.events
        created = await events.post(
            Event(
                subject="Teams call",
                start=DateTimeTimeZone(date_time=f"{DAY}T12:00:00", time_zone="UTC"),
                end=DateTimeTimeZone(date_time=f"{DAY}T13:00:00", time_zone="UTC"),
                is_online_meeting=True,
                online_meeting_provider=OnlineMeetingProviderType.TeamsForBusiness,
            )
        )
        fetched = (
            await client.users.by_user_id(ADAMS).events.by_event_id(created.id).get()
        )
        return created, fetched

    created, fetched = run_with_client(emulator, body)
    for event in (created, fetched):
        assert event.is_online_meeting is True
        assert (
            event.online_meeting_provider == OnlineMeetingProviderType.TeamsForBusiness
        )
        assert event.online_meeting.join_url.startswith(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
        )
        assert event.online_meeting.conference_id.isdigit()
    assert fetched.online_meeting.join_url == created.online_meeting.join_url


def test_sdk_calendar_view_delta(emulator):
    async def body(client: GraphServiceClient):
        query = DeltaQuery(
            start_date_time="2026-12-01T00:00:00Z", end_date_time="2026-12-08T00:00:00Z"
        )
        calendar_view = client.users.by_user_id(ADAMS).calendar.calendar_view
        call = calendar_view.delta.get(
            request_configuration=RequestConfiguration(query_parameters=query)
        )
        return await call

    page = run_with_client(emulator, body)
    assert {event.subject for event in page.value} == {
        "Weekly sales sync",
        "Customer demo",
    }


def test_sdk_calendar_view_delta_without_parentheses(emulator):
    """The SDK's delta builder re-targeted (``with_url``) at ``calendarView/delta``;
    checks the SDK parses the emulator's delta pages and follows its deltaLink."""

    async def body(client: GraphServiceClient):
        delta = client.users.by_user_id(ADAMS).calendar.calendar_view.delta
        first_url = (
            f"{emulator.graph_url}/users/{ADAMS}/calendar/calendarView/delta"
            "?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-08T00:00:00Z"
        )
        pages = [await delta.with_url(first_url).get()]
        while pages[-1].odata_next_link:
            pages.append(await delta.with_url(pages[-1].odata_next_link).get())
        events = [event for page in pages for event in page.value]
        delta_link = pages[-1].odata_delta_link
        emulator.emulator.book_room(
            "AdeleV@contoso.test",
            ADAMS,
            subject="Booked after the first sync",
            start=f"{DAY}T13:00:00",
            end=f"{DAY}T14:00:00",
        )
        changes = await delta.with_url(delta_link).get()
        return events, delta_link, changes

    events, delta_link, changes = run_with_client(emulator, body)

    assert {event.subject for event in events} == {
        "Weekly sales sync",
        "Customer demo",
    }
    assert delta_link.startswith(emulator.graph_url)
    assert "$deltatoken=" in delta_link
    assert [event.subject for event in changes.value] == ["Booked after the first sync"]
    assert changes.odata_delta_link


def test_sdk_surfaces_rbac_denial_as_odata_error(emulator):
    async def body(client: GraphServiceClient):
        errors = []
        calendar = client.users.by_user_id(DUNE).calendar
        for call in (
            calendar.events.get,
            lambda: calendar.events.post(
                Event(
                    subject="Out of scope",
                    start=DateTimeTimeZone(
                        date_time=f"{DAY}T10:00:00", time_zone="UTC"
                    ),
                    end=DateTimeTimeZone(date_time=f"{DAY}T11:00:00", time_zone="UTC"),
                )
            ),
        ):
            with pytest.raises(ODataError) as info:
                await call()
            errors.append(info.value)
        return errors

    errors = run_with_client(emulator, body)

    assert len(errors) == 2
    for error in errors:
        assert error.response_status_code == 403
        assert error.error.code == "ErrorAccessDenied"
        assert error.error.message == "Access to OData is disabled."
    denied = [
        (entry["method"], entry["status"])
        for entry in emulator.emulator.request_log
        if entry["mailbox"] and entry["mailbox"].lower() == DUNE
    ]
    assert denied == [("GET", 403), ("POST", 403)]
    stored = emulator.emulator.store.snapshot(DUNE)
    assert [event["subject"] for event in stored] == ["Board meeting"]
