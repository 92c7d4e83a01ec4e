"""Local stand-in for Entra ID + Microsoft Graph (Exchange Online room calendars).

Public API::

    from tests.emulator import Emulator, EmulatorServer, running_emulator

    with running_emulator() as server:          # HTTPS on 127.0.0.1, random port
        server.authority_url("contoso.test")    # MSAL authority (no instance discovery)
        server.graph_url                        # Graph base URL (…/v1.0)
        server.ca_bundle_path                   # trust this (and export it as
                                                # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE)
        server.emulator.book_room(...)          # Python-side admin API

See README.md in this folder for the scenario format, the admin HTTP API, the fault
kinds and every known difference from Microsoft's services.
"""

from .app import Emulator
from .server import EmulatorServer, running_emulator

__all__ = ["Emulator", "EmulatorServer", "running_emulator"]
