"""Entra ID authority hosts and Microsoft Graph endpoints of the Microsoft clouds.

Public API: ``CLOUDS`` (cloud key -> ``CloudEndpoints``) and ``cloud_endpoints()``.

Sources: "National cloud deployments" in the Microsoft Graph documentation and "National
clouds" in the Microsoft identity platform documentation. US Government GCC (moderate)
tenants use the global endpoints; only GCC High and DoD have their own.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    """Where to sign in (authority host) and where Graph lives, both without a path."""

    authority_host: str
    graph_host: str

    def authority_url(self, tenant: str) -> str:
        """The MSAL authority for a tenant (GUID or verified domain)."""
        return f"{self.authority_host}/{tenant}"

    @property
    def graph_url(self) -> str:
        """The Graph v1.0 base URL that request paths are appended to."""
        return f"{self.graph_host}/v1.0"


CLOUDS: dict[str, CloudEndpoints] = {
    "global": CloudEndpoints(
        "https://login.microsoftonline.com", "https://graph.microsoft.com"
    ),
    "usgov_high": CloudEndpoints(
        "https://login.microsoftonline.us", "https://graph.microsoft.us"
    ),
    "usgov_dod": CloudEndpoints(
        "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"
    ),
    "china": CloudEndpoints(
        "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"
    ),
}


def cloud_endpoints(
    cloud: str, custom_authority: str | None = None, custom_graph: str | None = None
) -> CloudEndpoints:
    """The endpoints of a cloud; ``"custom"`` takes both hosts as given (trailing ``/``
    and a
    trailing ``/v1.0`` on the Graph URL are tolerated).

    Raises KeyError for an unknown cloud and ValueError for a custom cloud without URLs.
    """
    if cloud != "custom":
        return CLOUDS[cloud]
    if not custom_authority or not custom_graph:
        raise ValueError("a custom cloud needs an authority URL and a Graph URL")
    graph = custom_graph.rstrip("/")
    if graph.endswith("/v1.0"):
        graph = graph[: -len("/v1.0")]
    return CloudEndpoints(custom_authority.rstrip("/"), graph)
