"""Throughput benchmark: ``python -m tests.emulator.bench [-n 2000] [--plain-http]``.

Starts the emulator in-process, takes an app-only token through the real token
endpoint, then sends N ``GET /v1.0/users/{room}/calendar`` requests over one HTTPS
keep-alive connection (``requests.Session``) and prints requests per second. Client and
server share the process, so the figure is for one core doing both sides.
"""

from __future__ import annotations

import argparse
import os
import time

import requests

from .server import running_emulator

APP_ID = "e0476d48-6ccc-4f02-8f60-9951925e8b30"
APP_SECRET = "app-only-secret~Valid.2028"
ROOM = "room.adams@contoso.test"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator.bench")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--plain-http", action="store_true")
    args = parser.parse_args(argv)
    with running_emulator(tls=not args.plain_http) as server:
        if server.ca_bundle_path:
            os.environ["REQUESTS_CA_BUNDLE"] = server.ca_bundle_path
            os.environ["CURL_CA_BUNDLE"] = server.ca_bundle_path
        server.emulator.throttle.configure(enabled=False)
        token = requests.post(
            f"{server.authority_url()}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=10,
        ).json()["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{server.graph_url}/users/{ROOM}/calendar"
        session.get(url).raise_for_status()
        started = time.perf_counter()
        for _ in range(args.n):
            answer = session.get(url)
            if answer.status_code != 200:
                raise SystemExit(f"{answer.status_code}: {answer.text[:200]}")
        elapsed = time.perf_counter() - started
        scheme = "HTTP" if args.plain_http else "HTTPS keep-alive"
        print(f"{args.n} GET over {scheme}: {args.n / elapsed:.0f} requests/s")


if __name__ == "__main__":
    main()
