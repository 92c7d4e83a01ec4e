"""Command line: ``python -m tests.emulator [--host H] [--port P] [--scenario FILE]
[--latency S] [--plain-http] [--auto-consent] [--delegated-delta-403]
[--log-limit N] [--throttle-budget N] [--throttle-window S]
[--throttle-max-concurrent N] [--stop-on-stdin-eof]``.

When ready it prints ONE JSON line on stdout::

    {"base_url", "authority_url", "graph_url", "admin_url", "ca_bundle",
     "tenants": [{"id", "domain", "authority_url"}]}

and serves until SIGTERM or SIGINT (``authority_url`` is the first tenant's), or,
with ``--stop-on-stdin-eof``, until its standard input is closed: a parent that keeps
a pipe to it open then takes the emulator down with it, even when killed outright.
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
    parser.add_argument(
        "--log-limit",
        type=int,
        default=20000,
        help="entries kept in the request log, a $batch item being one (20000)",
    )
    parser.add_argument(
        "--throttle-budget",
        type=int,
        default=None,
        help="requests per (app, mailbox) in any window (10000)",
    )
    parser.add_argument(
        "--throttle-window",
        type=float,
        default=None,
        help="seconds of that sliding window (600)",
    )
    parser.add_argument(
        "--throttle-max-concurrent",
        type=int,
        default=None,
        help="concurrent requests per (app, mailbox) (4)",
    )
    parser.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="also stop when standard input reaches its end (the parent is gone)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    throttle_options = {
        name: value
        for name, value in (
            ("budget", args.throttle_budget),
            ("window_seconds", args.throttle_window),
            ("max_concurrent", args.throttle_max_concurrent),
        )
        if value is not None
    }
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
        log_limit=args.log_limit,
        throttle_options=throttle_options,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.stop_on_stdin_eof:
        threading.Thread(
            target=_stop_at_eof, args=(stop,), name="stdin-eof", daemon=True
        ).start()
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


def _stop_at_eof(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


if __name__ == "__main__":
    sys.exit(main())
