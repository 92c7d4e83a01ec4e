"""Command line: ``python -m tests.emulator [--host H] [--port P] [--scenario FILE]
[--latency S] [--plain-http] [--auto-consent] [--delegated-delta-403]``.

When ready it prints ONE JSON line on stdout::

    {"base_url", "authority_url", "graph_url", "admin_url", "ca_bundle",
     "tenants": [{"id", "domain", "authority_url"}]}

and serves until SIGTERM or SIGINT (``authority_url`` is the first tenant's).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulator", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--scenario", default=None, help="scenario file or bundled name"
    )
    parser.add_argument(
        "--latency", type=float, default=None, help="seconds per Graph call"
    )
    parser.add_argument("--plain-http", action="store_true", help="no TLS (debugging)")
    parser.add_argument("--auto-consent", action="store_true")
    parser.add_argument("--delegated-delta-403", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr
    )
    server = EmulatorServer(
        host=args.host,
        port=args.port,
        tls=not args.plain_http,
        scenario=args.scenario,
        latency=args.latency,
        auto_consent=args.auto_consent,
        delegated_delta_nextlink_403=args.delegated_delta_403,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    try:
        tenants = [
            {
                "id": t.id,
                "domain": t.domain,
                "authority_url": server.authority_url(t.id),
            }
            for t in server.emulator.scenario.tenants
        ]
        ready = {
            "base_url": server.base_url,
            "authority_url": tenants[0]["authority_url"],
            "graph_url": server.graph_url,
            "admin_url": server.admin_url,
            "ca_bundle": server.ca_bundle_path or None,
            "tenants": tenants,
        }
        print(json.dumps(ready), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
