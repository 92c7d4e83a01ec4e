"""Microsoft Graph and Entra ID access for room_exchange_sync, in plain Python.

Nothing in this package imports Odoo (``tests/test_purity.py`` enforces it): the Odoo
models read their records and pass plain values in. Public API so far:

- :mod:`.clouds`: ``CLOUDS``, ``cloud_endpoints(cloud, custom_authority,
  custom_graph)``;
- :mod:`.credentials`: ``is_tenant_id``, ``is_guid``, ``check_https_url``,
  ``inspect_certificate``, ``load_certificate_credential`` and ``CredentialError``.
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
