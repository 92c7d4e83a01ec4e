"""Microsoft Graph and Entra ID access for room_exchange_sync, in plain Python.

Nothing in this package imports Odoo (``tests/test_purity.py`` enforces it): the Odoo
models read their records and pass plain values in. Public API:

- :mod:`.clouds`: ``CLOUDS``, ``cloud_endpoints(cloud, custom_authority,
  custom_graph)``;
- :mod:`.credentials`: ``is_tenant_id``, ``is_guid``, ``check_https_url``,
  ``inspect_certificate``, ``load_certificate_credential`` and ``CredentialError``;
- :mod:`.errors`: the ``ExchangeSyncError`` tree, ``error_from_response``,
  ``error_from_status``, ``error_from_msal``;
- :mod:`.auth`: ``TokenProvider``, ``SignedInAccount``, ``delegated_scopes``,
  ``app_scopes``, ``GRAPH_DELEGATED_PERMISSIONS``;
- :mod:`.client`: ``GraphClient``, ``BatchResult``, ``DeltaPage``,
  ``CalendarAccess``, ``DirectoryRoom``;
- :mod:`.protocol`: ``BatchRequest`` and its builders ``create_event_request``,
  ``update_event_request``, ``delete_event_request``, ``get_event_request``,
  ``decline_event_request``; ``user_path``, ``event_path``, ``mailbox_segment``,
  ``weak_etag``; the ``Prefer`` merge (``merge_prefer``, ``with_prefer``,
  ``max_page_size``);
- :mod:`.http`: ``make_session``, ``shared_session``, ``ExplicitHttpClient``;
- :mod:`.pacing`: ``MailboxBudget``;
- :mod:`.events`: ``BookingSnapshot``, ``booking_payload``, ``ImportedEvent``,
  ``parse_event``, ``is_partial_event``, ``EventDataError``,
  ``MARKER_PROPERTY_ID``, ``PRIVACY_MODES``, ``TIME_ZONE_NAMES``;
- :mod:`.timezones`: ``WINDOWS_ZONES``, ``windows_zone``, ``to_zoneinfo``,
  ``is_windows_zone``.
"""

from .clouds import CLOUDS, CloudEndpoints, cloud_endpoints
from .credentials import (
    CertificateInfo,
    CredentialError,
    check_https_url,
    inspect_certificate,
    is_guid,
    is_tenant_id,
    load_certificate_credential,
)
from .errors import (
    AuthFlowError,
    ExchangeSyncError,
    GraphAuthError,
    GraphConfigurationError,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    GraphRetryableError,
    GraphThrottled,
    SyncStateExpired,
    error_from_msal,
    error_from_response,
    error_from_status,
)
from .auth import (
    GRAPH_DELEGATED_PERMISSIONS,
    PLACES_PERMISSION,
    SignedInAccount,
    TokenProvider,
    app_scopes,
    delegated_scopes,
)
from .protocol import (
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
from .client import (
    BatchResult,
    CalendarAccess,
    DeltaPage,
    DirectoryRoom,
    GraphClient,
    TokenSource,
    same_origin,
)
from .http import ExplicitHttpClient, make_session
from .pacing import MailboxBudget
from .timezones import WINDOWS_ZONES, is_windows_zone, to_zoneinfo, windows_zone
from .events import (
    MARKER_PROPERTY_ID,
    PRIVACY_MODES,
    TIME_ZONE_NAMES,
    BookingSnapshot,
    EventDataError,
    ImportedEvent,
    booking_payload,
    is_partial_event,
    parse_event,
)
