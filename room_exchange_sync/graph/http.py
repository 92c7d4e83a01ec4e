"""HTTP plumbing shared by the Graph client and the token provider.

Public API:

- ``make_session(pool_size=16, connect_retries=0) -> requests.Session``: a session with
  a connection pool large enough for parallel requests;
- ``shared_session() -> requests.Session``: one such session for the whole process;
- ``ExplicitHttpClient(session, *, verify=True, timeout=30)``: the minimal HTTP client
  MSAL accepts as ``http_client`` (``get``, ``post``, ``close``), passing ``verify`` and
  ``timeout`` explicitly on every request.

Why explicit ``verify``: ``requests`` lets the ``REQUESTS_CA_BUNDLE`` and
``CURL_CA_BUNDLE`` environment variables override ``Session.verify`` (and
``verify=True``), but not a ``verify`` path passed with the request itself, so a CA
bundle configured on the connection wins whatever the environment says.
"""

from __future__ import annotations

import functools
from typing import Any

import requests
from requests.adapters import HTTPAdapter

Timeout = float | tuple[float, float]


def make_session(pool_size: int = 16, connect_retries: int = 0) -> requests.Session:
    """A ``requests.Session`` with ``pool_size`` connections per host.

    ``connect_retries`` is urllib3's retry count for connection failures; MSAL's own
    default session uses 1, the Graph client does its own retries (0).
    """
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=pool_size, pool_maxsize=pool_size, max_retries=connect_retries
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@functools.cache
def shared_session() -> requests.Session:
    """The process's Graph session: its keep-alive connections serve every round of
    every room, where a session per round would open a new connection each time (a
    TLS handshake, and loading the CA bundle: tens of milliseconds of CPU). Its pool
    holds a connection per room synced side by side; ``verify`` is passed with each
    request, and urllib3 keeps connections of different CA bundles apart."""
    return make_session(pool_size=32)


class ExplicitHttpClient:
    """MSAL's ``http_client`` interface over a ``requests.Session``.

    MSAL ignores its own ``verify``/``timeout`` options when given an ``http_client``,
    so they are applied here.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        verify: str | bool = True,
        timeout: Timeout = 30,
    ) -> None:
        self.session = session or make_session(connect_retries=1)
        self.verify = verify
        self.timeout = timeout

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs["verify"] = self.verify
        kwargs.setdefault("timeout", self.timeout)
        return kwargs

    def get(
        self,
        url: str,
        params: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self.session.get(
            url, params=params, headers=headers, **self._options(kwargs)
        )

    def post(
        self,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self.session.post(
            url, params=params, data=data, headers=headers, **self._options(kwargs)
        )

    def close(self) -> None:
        self.session.close()
