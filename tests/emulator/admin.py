"""Admin HTTP API of the emulator, under ``/_emulator/`` (JSON in, JSON out).

No authentication (the server listens on loopback only). It is not reachable through
``/v1.0`` (Graph routing never dispatches here, and ``..`` segments are refused).

Endpoints (``POST`` bodies are JSON objects; every answer is JSON)::

    GET    /_emulator/state                 scenario summary, switches, stats
    GET    /_emulator/log?limit=N           request log (newest last)
    DELETE /_emulator/log                   clear the log and the counters
    GET    /_emulator/counters              counters by route, mailbox, status
    POST   /_emulator/reset                 back to the scenario as loaded
    POST   /_emulator/switches              {"delegated_delta_nextlink_403": true, ...}
    GET    /_emulator/faults                fault statistics and scripted rules
    POST   /_emulator/faults                FaultRule fields -> {"id": ...}
    DELETE /_emulator/faults/{id}
    POST   /_emulator/faults/clear
    POST   /_emulator/faults/random         {"seed", "rate", "kinds"?, "retry_after"?,
                                             "hold"?}
    POST   /_emulator/faults/latency        {"fixed", "jitter"?, "seed"?}
    POST   /_emulator/throttle              Throttle.configure options; "reset": true
    POST   /_emulator/identity/revoke       {"upn"?, "client_id"?, "reason"?}
                                            -> {"revoked": n}
    POST   /_emulator/identity/expire-secret        {"client_id", "secret_value"?}
    POST   /_emulator/identity/expire-access-tokens
    POST   /_emulator/identity/auto-consent {"enabled": bool}
    POST   /_emulator/delta/expire          {"mailbox"?}
    GET    /_emulator/mailboxes/{address}/events    every stored item (UTC)
    POST   /_emulator/outlook/book          {"person", "room", "subject", "start",
                                             "end", "time_zone"?, "recurrence"?,
                                             "sensitivity"?}
    POST   /_emulator/outlook/update        {"room", "event_id", "subject"?, "start"?,
                                             "end"?, "time_zone"?, ...event fields}
    POST   /_emulator/outlook/cancel        {"room", "event_id", "comment"?}
    POST   /_emulator/outlook/private       {"room", "event_id", "private"?: true}
    POST   /_emulator/outlook/occurrence    {"room", "series_id", "day", "cancel"?, ...}
    POST   /_emulator/outlook/processing    {"room", "add_organizer_to_subject"?, ...}
    GET    /_emulator/subscriptions         subscriptions and delivery log
    POST   /_emulator/subscriptions/{id}/lifecycle  {"event": "reauthorizationRequired"}
    POST   /_emulator/subscriptions/flush   {"timeout"?}
    POST   /_emulator/scenario/room|user|share|app|certificate|room-list
                                            (Scenario.add_* args)
    POST   /_emulator/scenario/room/update  {"room", ...attributes} -> the room
    POST   /_emulator/scenario/room/remove  {"room"} -> the removed room
    POST   /_emulator/scenario/rbac-scope   {"client_id", "rbac_scope": [addresses] |
                                             null} -> the app's scope afterwards
                                             (null: every mailbox of the tenant)

Errors: a bad argument answers ``400 {"error": "..."}``; a Graph error raised by a
component keeps its status and Graph's error body.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .errors import GraphHttpError
from .scenario import Room

if TYPE_CHECKING:
    from .app import Emulator

Handler = Callable[[dict[str, Any]], Any]


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str), status=status, content_type="application/json"
    )


class AdminApi:
    """Routes ``/_emulator/...`` requests to the ``Emulator``'s Python methods."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle(self, request: Request) -> Response:
        path = request.path[len("/_emulator") :].strip("/")
        parts = path.split("/") if path else []
        try:
            body = json.loads(request.get_data(cache=True) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            result = self._route(request.method, parts, body, request)
        except GraphHttpError as exc:
            error = {"error": {"code": exc.code, "message": exc.message}}
            return _json(error, exc.status)
        except LookupError as exc:
            return _json({"error": f"not found: {exc}"}, 404)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        if isinstance(result, Response):
            return result
        return _json(result if result is not None else {"ok": True})

    def _route(
        self, method: str, parts: list[str], body: dict[str, Any], request: Request
    ) -> Any:
        key = (method, "/".join(parts[:2]))
        simple: dict[tuple[str, str], Handler] = {
            ("GET", "state"): lambda b: self.emulator.state(),
            ("GET", "counters"): lambda b: self.emulator.counters(),
            ("DELETE", "log"): lambda b: self.emulator.clear_log(),
            ("POST", "reset"): lambda b: self.emulator.reset(),
            ("POST", "switches"): lambda b: self.emulator.set_switches(**b),
            ("GET", "faults"): self._faults_state,
            ("POST", "faults"): lambda b: {"id": self.emulator.faults.add(b)},
            ("POST", "faults/clear"): lambda b: self.emulator.faults.clear(),
            ("POST", "faults/random"): lambda b: self.emulator.faults.set_random(**b),
            ("POST", "faults/latency"): lambda b: self.emulator.faults.set_latency(**b),
            ("POST", "throttle"): self._throttle,
            ("POST", "scenario/rbac-scope"): self._rbac_scope,
            ("POST", "identity/revoke"): lambda b: {
                "revoked": self.emulator.identity.revoke_refresh_tokens(**b)
            },
            ("POST", "identity/expire-secret"): lambda b: (
                self.emulator.identity.expire_client_secret(**b)
            ),
            ("POST", "identity/expire-access-tokens"): lambda b: (
                self.emulator.identity.expire_access_tokens()
            ),
            ("POST", "identity/auto-consent"): lambda b: (
                self.emulator.identity.set_auto_consent(bool(b.get("enabled", True)))
            ),
            ("POST", "delta/expire"): lambda b: self.emulator.store.expire_delta_tokens(
                b.get("mailbox")
            ),
            ("POST", "outlook/book"): lambda b: self.emulator.book_room(**b),
            ("POST", "outlook/update"): lambda b: self.emulator.update_booking(**b),
            ("POST", "outlook/cancel"): lambda b: self.emulator.cancel_booking(**b),
            ("POST", "outlook/private"): lambda b: self.emulator.make_private(**b),
            ("POST", "outlook/occurrence"): lambda b: self.emulator.change_occurrence(
                **b
            ),
            ("POST", "outlook/processing"): lambda b: self.emulator.set_room_processing(
                **b
            ),
            ("GET", "subscriptions"): lambda b: {
                "value": self.emulator.subscriptions.list(),
                "deliveries": self.emulator.subscriptions.deliveries(),
            },
            (
                "POST",
                "subscriptions/flush",
            ): lambda b: self.emulator.subscriptions.flush(
                float(b.get("timeout", 5.0))
            ),
        }
        if key in simple and len(parts) <= 2:
            return simple[key](body)
        return self._route_parametrised(method, parts, body, request)

    def _route_parametrised(
        self, method: str, parts: list[str], body: dict[str, Any], request: Request
    ) -> Any:
        head = parts[0] if parts else ""
        if method == "GET" and parts == ["log"]:
            limit = int(request.args.get("limit", "0") or 0)
            log = self.emulator.request_log
            return {"value": log[-limit:] if limit else log}
        if method == "DELETE" and head == "faults" and len(parts) == 2:
            self.emulator.faults.remove(parts[1])
            return None
        if method == "GET" and head == "mailboxes" and parts[2:] == ["events"]:
            return {"value": self.emulator.store.snapshot(parts[1])}
        if method == "POST" and head == "subscriptions" and parts[2:] == ["lifecycle"]:
            self.emulator.subscriptions.send_lifecycle(parts[1], body["event"])
            return None
        if method == "POST" and head == "scenario" and len(parts) == 2:
            return self._scenario_addition(parts[1], body)
        if method == "POST" and parts[:2] == ["scenario", "room"] and len(parts) == 3:
            return self._room_change(parts[2], body)
        return _json(
            {"error": f"no admin endpoint {method} /_emulator/{'/'.join(parts)}"}, 404
        )

    def _faults_state(self, body: dict[str, Any]) -> dict[str, Any]:
        faults = self.emulator.faults
        return {
            "stats": faults.stats(),
            "rules": [dataclasses.asdict(rule) for rule in faults.rules()],
        }

    def _throttle(self, body: dict[str, Any]) -> dict[str, Any]:
        options = dict(body)
        if options.pop("reset", False):
            self.emulator.throttle.reset()
        if options:
            self.emulator.throttle.configure(**options)
        return {"stats": self.emulator.throttle.stats()}

    def _rbac_scope(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set an application's RBAC for Applications scope (Exchange's management
        scope: the mailboxes an app-only token may open), None for every mailbox."""
        scenario = self.emulator.scenario
        app = scenario.app(body.get("client_id"))
        if app is None:
            raise LookupError(f"app {body.get('client_id')!r}")
        if "rbac_scope" not in body:
            raise ValueError(
                "'rbac_scope' is required: a list of mailbox addresses, or null for "
                "every mailbox"
            )
        wanted = body["rbac_scope"]
        if wanted is None:
            app.rbac_scope = None
        elif isinstance(wanted, list):
            scope = []
            for address in wanted:
                mailbox = None
                if isinstance(address, str):
                    mailbox = scenario.mailbox(address)
                if mailbox is None:
                    raise ValueError(f"rbac_scope names unknown mailbox {address!r}")
                scope.append(
                    mailbox.email if isinstance(mailbox, Room) else mailbox.upn
                )
            app.rbac_scope = scope
        else:
            raise ValueError("'rbac_scope' must be a list of mailbox addresses or null")
        return {"client_id": app.client_id, "rbac_scope": app.rbac_scope}

    def _scenario_addition(self, kind: str, body: dict[str, Any]) -> Any:
        emulator = self.emulator
        scenario = emulator.scenario
        if kind == "room":
            return dataclasses.asdict(emulator.add_room(**body))
        if kind == "user":
            user = emulator.add_user(**body)
            return {"id": user.id, "upn": user.upn, "tenant_id": user.tenant_id}
        if kind == "share":
            return dataclasses.asdict(scenario.add_share(**body))
        if kind == "app":
            app = scenario.add_app(**body)
            return {"client_id": app.client_id, "tenant_id": app.tenant_id}
        if kind == "room-list":
            return dataclasses.asdict(scenario.add_room_list(**body))
        if kind == "certificate":
            return {"thumbprint": scenario.add_certificate(**body)}
        if kind == "secret":
            secret = scenario.add_secret(**body)
            return {"id": secret.id, "value": secret.value}
        raise LookupError(f"scenario/{kind}")

    def _room_change(self, change: str, body: dict[str, Any]) -> Any:
        """A room changed (``update``) or deleted (``remove``) in the directory."""
        arguments = dict(body)
        room = arguments.pop("room", None)
        if not isinstance(room, str):
            raise ValueError("'room' (the room's e-mail address) is required")
        if change == "update":
            return dataclasses.asdict(self.emulator.update_room(room, **arguments))
        if change == "remove" and not arguments:
            return dataclasses.asdict(self.emulator.remove_room(room))
        raise LookupError(f"scenario/room/{change}")
