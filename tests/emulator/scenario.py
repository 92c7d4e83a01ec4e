"""The emulated tenant: people, room mailboxes, calendar shares, app registrations.

Public API::

    Tenant(id, domain, display_name)
    User(id, tenant_id, upn, display_name, password, mail="")     # mail defaults to upn
    Room(id, tenant_id, email, display_name, capacity, building, floor_number,
         floor_label, time_zone="UTC", processing={...}, room_list=None, tags=[],
         audio_device_name=None, video_device_name=None, display_device_name=None,
         is_wheelchair_accessible=False, booking_type="standard", label=None,
         hidden=False)
    RoomList(id, tenant_id, email, display_name)
    Share(room_email, user_upn, role)          # role: a calendarPermission role
    Secret(value, expires_at, id)
    Certificate(thumbprint, public_pem, expires_at)   # SHA-1 thumbprint, upper-case hex
    AppRegistration(client_id, tenant_id, display_name, secrets, certificates,
                    redirect_uris, delegated_scopes, app_roles, rbac_scope)
    Scenario(tenants, users, rooms, shares, apps, events)
        .tenant(key) .user(key) .room(key) .mailbox(key) .app(client_id)
        .share_role(room_key, user_key) -> str | None
        .mailbox_exists(key) -> bool
        .add_user(...) .add_room(...) .add_share(room, user, role) .add_app(...)
        .room_list(key) .add_room_list(email, display_name)
        .update_room(key, **attributes) -> Room   .remove_room(key) -> Room
        .add_secret(client_id, value=None, expires_at=None) -> Secret
        .add_certificate(client_id, public_pem, expires_at=None) -> thumbprint
    load_scenario(source: str | Path | dict | None) -> Scenario
    SHARE_ROLES, WRITE_ROLES, ROOM_PROCESSING_KEYS, DEFAULT_SCENARIO_PATH,
    ROOM_ATTRIBUTES, GENERATED_SCENARIOS

Lookups are case-insensitive for addresses and accept an object id or an address
(tenant: id or verified domain; user: id, UPN or mail; room: id or e-mail).

Scenario file (JSON; YAML too when PyYAML is importable)::

    {"tenants": [{"id": guid, "domain": "contoso.test", "display_name": ...}],
     "users":   [{"upn": ..., "display_name": ..., "password": ..., "id"?, "mail"?,
                  "tenant"?: id-or-domain}],
     "room_lists": [{"email": ..., "display_name": ..., "id"?, "tenant"?}],
     "rooms":   [{"email": ..., "display_name": ..., "capacity"?, "building"?,
                  "floor_number"?, "floor_label"?, "time_zone"?, "processing"?: {...},
                  "room_list"?: room list e-mail, "tags"?: [...],
                  "audio_device_name"?, "video_device_name"?, "display_device_name"?,
                  "is_wheelchair_accessible"?, "booking_type"?, "label"?,
                  "hidden"?: true (hidden from the address list: not in Places),
                  "id"?, "tenant"?}],
     "shares":  [{"room": email, "user": upn, "role": "write"}],
     "apps":    [{"client_id": guid, "display_name": ..., "tenant"?,
                  "secrets": [{"value": ..., "expires_at": iso8601|null, "id"?}],
                  "certificates": [{"public_pem": ..., "expires_at"?}],
                  "redirect_uris": [...], "delegated_scopes": [...],
                  "app_roles": [...], "rbac_scope": [room e-mails] | null}],
     "events":  [{"mailbox": email, "subject": ...,
                  "start": {"dateTime": ..., "timeZone": ...}, "end": {...},
                  "organizer": upn, ...any other Graph event field}]}

``tenant`` may be omitted when the scenario has a single tenant; missing ids are derived
deterministically (uuid5) from the address, so a scenario always yields the same ids.
A bundled name may also be a generated scenario (``GENERATED_SCENARIOS``, e.g.
``"campus"``: ``campus.py``).
Events stay plain dicts (validated, copied) for the calendar store to import.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets as _secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO_PATH = SCENARIO_DIR / "default.json"

SHARE_ROLES = frozenset(
    {
        "none",
        "freeBusyRead",
        "limitedRead",
        "read",
        "write",
        "delegateWithoutPrivateEventAccess",
        "delegateWithPrivateEventAccess",
    }
)
WRITE_ROLES = frozenset(
    {"write", "delegateWithoutPrivateEventAccess", "delegateWithPrivateEventAccess"}
)
ROOM_PROCESSING_KEYS = (
    "add_organizer_to_subject",
    "delete_subject",
    "delete_comments",
    "remove_private_property",
)
_ID_NAMESPACE = uuid.UUID("6f1d2b1e-4c1a-4c33-9a52-7b0e6c0f6e11")


def _campus() -> dict[str, Any]:
    from .campus import campus_scenario  # it reads this module's default scenario

    return campus_scenario()


# Bundled scenarios made by code rather than kept as files.
GENERATED_SCENARIOS = {"campus": _campus}


def _default_processing() -> dict[str, bool]:
    return dict.fromkeys(ROOM_PROCESSING_KEYS, False)


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str


@dataclass
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str
    password: str
    mail: str = ""

    def __post_init__(self) -> None:
        if not self.mail:
            self.mail = self.upn


@dataclass
class Room:
    id: str
    tenant_id: str
    email: str
    display_name: str
    capacity: int | None = None
    building: str | None = None
    floor_number: int | None = None
    floor_label: str | None = None
    time_zone: str = "UTC"
    processing: dict[str, bool] = field(default_factory=_default_processing)
    # The Places view of the room (docs/graph.md#listing-rooms, room resource type).
    room_list: str | None = None  # e-mail address of the room list holding it
    tags: list[str] = field(default_factory=list)
    audio_device_name: str | None = None
    video_device_name: str | None = None
    display_device_name: str | None = None
    is_wheelchair_accessible: bool = False
    booking_type: str = "standard"
    label: str | None = None
    # "Rooms that are marked Hidden from GAL can't be retrieved through this
    # endpoint" (place-list): the mailbox works, the directory does not show it.
    hidden: bool = False


# The Places attributes of a room beyond the first ones (``add_room`` keywords), and
# all of them (what ``Scenario.update_room`` may change).
ROOM_EXTRA_ATTRIBUTES = (
    "room_list",
    "tags",
    "audio_device_name",
    "video_device_name",
    "display_device_name",
    "is_wheelchair_accessible",
    "booking_type",
    "label",
    "hidden",
)
ROOM_ATTRIBUTES = (
    "display_name",
    "capacity",
    "building",
    "floor_number",
    "floor_label",
    *ROOM_EXTRA_ATTRIBUTES,
)
BOOKING_TYPES = frozenset({"standard", "reserved", "unknown"})


@dataclass
class RoomList:
    """A room list (a distribution group of rooms in Exchange), addressed in the
    Places API by its e-mail address."""

    id: str
    tenant_id: str
    email: str
    display_name: str


@dataclass
class Share:
    room_email: str
    user_upn: str
    role: str


@dataclass
class Secret:
    value: str
    expires_at: datetime | None
    id: str


@dataclass
class Certificate:
    thumbprint: str
    public_pem: str
    expires_at: datetime | None


@dataclass
class AppRegistration:
    client_id: str
    tenant_id: str
    display_name: str
    secrets: list[Secret] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    delegated_scopes: set[str] = field(default_factory=set)
    app_roles: set[str] = field(default_factory=set)
    rbac_scope: list[str] | None = None


def _fold(value: str | None) -> str:
    return (value or "").strip().casefold()


def _derived_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{_fold(key)}"))


def certificate_thumbprint(public_pem: str | bytes) -> str:
    """SHA-1 thumbprint of a PEM certificate, upper-case hex as Azure shows it."""
    data = public_pem.encode() if isinstance(public_pem, str) else public_pem
    cert = x509.load_pem_x509_certificate(data)
    return cert.fingerprint(_sha1()).hex().upper()


def _sha1() -> hashes.HashAlgorithm:
    # Azure shows, and MSAL's ``x5t`` header carries, the SHA-1 thumbprint.
    return hashes.SHA1()


def parse_datetime(value: Any, *, where: str = "value") -> datetime | None:
    """Parse an ISO 8601 date or datetime (naive = UTC); ``None`` passes through."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an ISO 8601 date-time, got {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: invalid ISO 8601 date-time {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


@dataclass
class Scenario:
    tenants: list[Tenant] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    rooms: list[Room] = field(default_factory=list)
    room_lists: list[RoomList] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    apps: list[AppRegistration] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def tenant(self, key: str | None) -> Tenant | None:
        """The tenant whose id or verified domain is ``key``."""
        wanted = _fold(key)
        return next(
            (t for t in self.tenants if wanted in (_fold(t.id), _fold(t.domain))), None
        )

    def user(self, key: str | None) -> User | None:
        """The person whose id, UPN or mail is ``key``."""
        wanted = _fold(key)
        if not wanted:
            return None
        return next(
            (
                u
                for u in self.users
                if wanted in (_fold(u.id), _fold(u.upn), _fold(u.mail))
            ),
            None,
        )

    def room(self, key: str | None) -> Room | None:
        """The room mailbox whose id or e-mail address is ``key``."""
        wanted = _fold(key)
        if not wanted:
            return None
        return next(
            (r for r in self.rooms if wanted in (_fold(r.id), _fold(r.email))), None
        )

    def room_list(self, key: str | None) -> RoomList | None:
        """The room list whose id or e-mail address is ``key``."""
        wanted = _fold(key)
        if not wanted:
            return None
        return next(
            (r for r in self.room_lists if wanted in (_fold(r.id), _fold(r.email))),
            None,
        )

    def mailbox(self, key: str | None) -> User | Room | None:
        """A user or room mailbox by id or address."""
        return self.user(key) or self.room(key)

    def mailbox_exists(self, key: str | None) -> bool:
        return self.mailbox(key) is not None

    def app(self, client_id: str | None) -> AppRegistration | None:
        wanted = _fold(client_id)
        return next((a for a in self.apps if _fold(a.client_id) == wanted), None)

    def share_role(self, room_key: str | None, user_key: str | None) -> str | None:
        """The calendarPermission role ``user_key`` holds on ``room_key``'s calendar."""
        room = self.mailbox(room_key)
        user = self.user(user_key)
        if room is None or user is None:
            return None
        address = room.email if isinstance(room, Room) else room.upn
        for share in self.shares:
            if _fold(share.room_email) == _fold(address) and _fold(
                share.user_upn
            ) == _fold(user.upn):
                return share.role
        return None

    def _tenant_id(self, tenant: str | None, where: str) -> str:
        if tenant is None:
            if len(self.tenants) == 1:
                return self.tenants[0].id
            raise ValueError(f"{where}: 'tenant' is required when there are several")
        found = self.tenant(tenant)
        if found is None:
            raise ValueError(f"{where}: unknown tenant {tenant!r}")
        return found.id

    def add_tenant(
        self, domain: str, display_name: str | None = None, *, id: str | None = None
    ) -> Tenant:
        if self.tenant(domain) is not None or (id and self.tenant(id) is not None):
            raise ValueError(f"tenant {domain!r}: already exists")
        tenant = Tenant(
            id=id or _derived_id("tenant", domain),
            domain=domain,
            display_name=display_name or domain,
        )
        self.tenants.append(tenant)
        return tenant

    def add_user(
        self,
        upn: str,
        display_name: str,
        password: str,
        *,
        tenant: str | None = None,
        id: str | None = None,
        mail: str | None = None,
    ) -> User:
        where = f"user {upn!r}"
        if not upn or "@" not in upn:
            raise ValueError(f"{where}: 'upn' must be an address like name@domain")
        if self.mailbox_exists(upn) or (mail and self.mailbox_exists(mail)):
            raise ValueError(f"{where}: address already used")
        user = User(
            id=id or _derived_id("user", upn),
            tenant_id=self._tenant_id(tenant, where),
            upn=upn,
            display_name=display_name,
            password=password,
            mail=mail or upn,
        )
        self.users.append(user)
        return user

    def add_room(
        self,
        email: str,
        display_name: str,
        *,
        tenant: str | None = None,
        id: str | None = None,
        capacity: int | None = None,
        building: str | None = None,
        floor_number: int | None = None,
        floor_label: str | None = None,
        time_zone: str = "UTC",
        processing: Mapping[str, bool] | None = None,
        **attributes: Any,
    ) -> Room:
        """A room mailbox; ``attributes`` are the other Places fields of ``Room``
        (``room_list``, ``tags``, ``hidden``...)."""
        where = f"room {email!r}"
        if not email or "@" not in email:
            raise ValueError(f"{where}: 'email' must be an address like name@domain")
        if self.mailbox_exists(email) or self.room_list(email) is not None:
            raise ValueError(f"{where}: address already used")
        flags = _default_processing()
        for key, value in (processing or {}).items():
            if key not in flags:
                raise ValueError(
                    f"{where}: unknown processing flag {key!r} "
                    f"(allowed: {', '.join(ROOM_PROCESSING_KEYS)})"
                )
            flags[key] = bool(value)
        for name, value in (("capacity", capacity), ("floor_number", floor_number)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise ValueError(f"{where}: {name!r} must be an integer, got {value!r}")
        extra = self._room_attributes(where, attributes)
        room = Room(
            id=id or _derived_id("room", email),
            tenant_id=self._tenant_id(tenant, where),
            email=email,
            display_name=display_name,
            capacity=capacity,
            building=building,
            floor_number=floor_number,
            floor_label=floor_label,
            time_zone=time_zone or "UTC",
            processing=flags,
            **extra,
        )
        self.rooms.append(room)
        return room

    def _room_attributes(self, where: str, values: Mapping[str, Any]) -> dict:
        """``values`` checked as Places attributes of a room (ROOM_ATTRIBUTES)."""
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name not in ROOM_ATTRIBUTES:
                raise ValueError(f"{where}: unknown room attribute {name!r}")
            if name in ("capacity", "floor_number") and value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(
                        f"{where}: {name!r} must be an integer, got {value!r}"
                    )
            if name == "tags":
                if not isinstance(value, list | tuple) or not all(
                    isinstance(tag, str) for tag in value
                ):
                    raise ValueError(f"{where}: 'tags' must be a list of strings")
                value = list(value)
            if name == "booking_type" and value not in BOOKING_TYPES:
                raise ValueError(
                    f"{where}: 'booking_type' must be one of "
                    f"{', '.join(sorted(BOOKING_TYPES))}"
                )
            if name in ("hidden", "is_wheelchair_accessible"):
                value = bool(value)
            if name == "room_list" and value is not None:
                room_list = self.room_list(value)
                if room_list is None:
                    raise ValueError(f"{where}: unknown room list {value!r}")
                value = room_list.email
            if name == "display_name" and not value:
                raise ValueError(f"{where}: 'display_name' cannot be empty")
            checked[name] = value
        return checked

    def update_room(self, key: str, **attributes: Any) -> Room:
        """Change a room's directory attributes (Set-Place, Set-Mailbox), e.g.
        ``capacity=12``, ``hidden=True``; returns the room."""
        room = self.room(key)
        if room is None:
            raise ValueError(f"unknown room {key!r}")
        for name, value in self._room_attributes(f"room {key!r}", attributes).items():
            setattr(room, name, value)
        return room

    def remove_room(self, key: str) -> Room:
        """Delete a room mailbox: it leaves the directory, its shares and the apps'
        RBAC scopes; Graph then answers 404 ErrorInvalidUser for it."""
        room = self.room(key)
        if room is None:
            raise ValueError(f"unknown room {key!r}")
        self.rooms.remove(room)
        address = _fold(room.email)
        self.shares = [s for s in self.shares if _fold(s.room_email) != address]
        for app in self.apps:
            if app.rbac_scope is not None:
                app.rbac_scope = [a for a in app.rbac_scope if _fold(a) != address]
        return room

    def add_room_list(
        self,
        email: str,
        display_name: str,
        *,
        tenant: str | None = None,
        id: str | None = None,
    ) -> RoomList:
        """A room list, e.g. one per building (New-DistributionGroup -RoomList)."""
        where = f"room list {email!r}"
        if not email or "@" not in email:
            raise ValueError(f"{where}: 'email' must be an address like name@domain")
        if self.mailbox_exists(email) or self.room_list(email) is not None:
            raise ValueError(f"{where}: address already used")
        room_list = RoomList(
            id=id or _derived_id("roomlist", email),
            tenant_id=self._tenant_id(tenant, where),
            email=email,
            display_name=display_name,
        )
        self.room_lists.append(room_list)
        return room_list

    def add_share(self, room: str, user: str, role: str) -> Share:
        """Share ``room``'s calendar with ``user``, replacing an existing role."""
        where = f"share {room!r} -> {user!r}"
        if role not in SHARE_ROLES:
            raise ValueError(
                f"{where}: unknown role {role!r} "
                f"(allowed: {', '.join(sorted(SHARE_ROLES))})"
            )
        mailbox = self.mailbox(room)
        person = self.user(user)
        if mailbox is None:
            raise ValueError(f"{where}: unknown mailbox {room!r}")
        if person is None:
            raise ValueError(f"{where}: unknown user {user!r}")
        address = mailbox.email if isinstance(mailbox, Room) else mailbox.upn
        for share in self.shares:
            if _fold(share.room_email) == _fold(address) and _fold(
                share.user_upn
            ) == _fold(person.upn):
                share.role = role
                return share
        share = Share(room_email=address, user_upn=person.upn, role=role)
        self.shares.append(share)
        return share

    def add_app(
        self,
        client_id: str | None = None,
        *,
        display_name: str = "App",
        tenant: str | None = None,
        secrets: Iterable[str | Secret | Mapping[str, Any]] = (),
        certificates: Iterable[Mapping[str, Any]] = (),
        redirect_uris: Iterable[str] = (),
        delegated_scopes: Iterable[str] = (),
        app_roles: Iterable[str] = (),
        rbac_scope: Iterable[str] | None = None,
    ) -> AppRegistration:
        client_id = client_id or str(uuid.uuid4())
        where = f"app {client_id!r}"
        if self.app(client_id) is not None:
            raise ValueError(f"{where}: client_id already registered")
        if isinstance(secrets, str | Mapping) or isinstance(redirect_uris, str):
            raise ValueError(f"{where}: 'secrets'/'redirect_uris' must be lists")
        scope = None
        if rbac_scope is not None:
            scope = []
            for address in rbac_scope:
                mailbox = self.mailbox(address)
                if mailbox is None:
                    raise ValueError(
                        f"{where}: rbac_scope names unknown mailbox {address!r}"
                    )
                scope.append(
                    mailbox.email if isinstance(mailbox, Room) else mailbox.upn
                )
        app = AppRegistration(
            client_id=client_id,
            tenant_id=self._tenant_id(tenant, where),
            display_name=display_name,
            redirect_uris=list(redirect_uris),
            delegated_scopes=set(delegated_scopes),
            app_roles=set(app_roles),
            rbac_scope=scope,
        )
        self.apps.append(app)
        for index, item in enumerate(secrets):
            if isinstance(item, Secret):
                app.secrets.append(item)
            elif isinstance(item, str):
                self.add_secret(client_id, item)
            elif isinstance(item, Mapping):
                if not item.get("value"):
                    raise ValueError(f"{where}: secrets[{index}] has no 'value'")
                self.add_secret(
                    client_id,
                    item["value"],
                    expires_at=parse_datetime(
                        item.get("expires_at"), where=f"{where}: secrets[{index}]"
                    ),
                    id=item.get("id"),
                )
            else:
                raise ValueError(
                    f"{where}: secrets[{index}] must be a string or object"
                )
        for index, item in enumerate(certificates):
            if not isinstance(item, Mapping) or not item.get("public_pem"):
                raise ValueError(f"{where}: certificates[{index}] needs 'public_pem'")
            self.add_certificate(
                client_id,
                item["public_pem"],
                expires_at=parse_datetime(
                    item.get("expires_at"), where=f"{where}: certificates[{index}]"
                ),
            )
        return app

    def add_secret(
        self,
        client_id: str,
        value: str | None = None,
        expires_at: datetime | None = None,
        *,
        id: str | None = None,
    ) -> Secret:
        app = self._require_app(client_id)
        secret = Secret(
            value=value or _secrets.token_urlsafe(30),
            expires_at=parse_datetime(expires_at, where=f"app {client_id!r}: secret"),
            id=id or str(uuid.uuid4()),
        )
        app.secrets.append(secret)
        return secret

    def add_certificate(
        self,
        client_id: str,
        public_pem: str | bytes,
        expires_at: datetime | None = None,
    ) -> str:
        """Register a certificate's public part on an app; returns its SHA-1 thumbprint.

        Without ``expires_at`` the certificate's own notAfter applies, as in Azure.
        """
        app = self._require_app(client_id)
        pem = public_pem.decode() if isinstance(public_pem, bytes) else public_pem
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise ValueError(
                f"app {client_id!r}: invalid certificate PEM ({exc})"
            ) from None
        thumbprint = cert.fingerprint(_sha1()).hex().upper()
        if expires_at is None:
            expires_at = cert.not_valid_after_utc
        app.certificates = [c for c in app.certificates if c.thumbprint != thumbprint]
        app.certificates.append(
            Certificate(
                thumbprint=thumbprint,
                public_pem=pem,
                expires_at=parse_datetime(expires_at),
            )
        )
        return thumbprint

    def _require_app(self, client_id: str) -> AppRegistration:
        app = self.app(client_id)
        if app is None:
            raise ValueError(f"unknown app {client_id!r}")
        return app


def x5t_of(thumbprint_hex: str) -> str:
    """The JWS ``x5t`` header value MSAL sends for a hex SHA-1 thumbprint."""
    raw = bytes.fromhex(thumbprint_hex)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sha256_x5t_of(public_pem: str) -> str:
    """The JWS ``x5t#S256`` header value for a PEM certificate."""
    cert = x509.load_pem_x509_certificate(public_pem.encode())
    der = cert.public_bytes(Encoding.DER)
    raw = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _section(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(
            f"scenario: {name!r} must be a list, got {type(value).__name__}"
        )
    return value


def _entry(item: Any, where: str, required: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ValueError(f"scenario: {where} must be an object, got {item!r}")
    missing = [key for key in required if item.get(key) in (None, "")]
    if missing:
        raise ValueError(
            f"scenario: {where} is missing {', '.join(map(repr, missing))}"
        )
    return item


def _tenant_key(item: Mapping[str, Any]) -> str | None:
    return item.get("tenant") or item.get("tenant_id")


def _build(data: Mapping[str, Any]) -> Scenario:
    if not isinstance(data, Mapping):
        raise ValueError("scenario: the top level must be an object")
    known = {
        "tenants",
        "users",
        "room_lists",
        "rooms",
        "shares",
        "apps",
        "events",
        "description",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"scenario: unknown top-level keys {unknown}")
    scenario = Scenario()
    for index, item in enumerate(_section(data, "tenants")):
        entry = _entry(item, f"tenants[{index}]", ("domain",))
        try:
            scenario.add_tenant(
                entry["domain"], entry.get("display_name"), id=entry.get("id")
            )
        except ValueError as exc:
            raise ValueError(f"scenario: tenants[{index}]: {exc}") from None
    if not scenario.tenants:
        raise ValueError("scenario: at least one entry in 'tenants' is required")
    loaders = (
        ("users", ("upn", "display_name", "password"), _load_user),
        ("room_lists", ("email", "display_name"), _load_room_list),
        ("rooms", ("email", "display_name"), _load_room),
        ("shares", ("room", "user", "role"), _load_share),
        ("apps", ("client_id", "display_name"), _load_app),
        ("events", ("mailbox", "subject", "start", "end"), _load_event),
    )
    for section, required, loader in loaders:
        for index, item in enumerate(_section(data, section)):
            where = f"{section}[{index}]"
            entry = _entry(item, where, required)
            try:
                loader(scenario, entry)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"scenario: {where}: {exc}") from None
    return scenario


def _load_user(scenario: Scenario, item: Mapping[str, Any]) -> None:
    scenario.add_user(
        item["upn"],
        item["display_name"],
        str(item["password"]),
        tenant=_tenant_key(item),
        id=item.get("id"),
        mail=item.get("mail"),
    )


def _load_room(scenario: Scenario, item: Mapping[str, Any]) -> None:
    processing = item.get("processing") or {}
    if not isinstance(processing, Mapping):
        raise ValueError("'processing' must be an object")
    scenario.add_room(
        item["email"],
        item["display_name"],
        tenant=_tenant_key(item),
        id=item.get("id"),
        capacity=item.get("capacity"),
        building=item.get("building"),
        floor_number=item.get("floor_number"),
        floor_label=item.get("floor_label"),
        time_zone=item.get("time_zone") or "UTC",
        processing=processing,
        **{name: item[name] for name in ROOM_EXTRA_ATTRIBUTES if name in item},
    )


def _load_room_list(scenario: Scenario, item: Mapping[str, Any]) -> None:
    scenario.add_room_list(
        item["email"], item["display_name"], tenant=_tenant_key(item), id=item.get("id")
    )


def _load_share(scenario: Scenario, item: Mapping[str, Any]) -> None:
    scenario.add_share(item["room"], item["user"], item["role"])


def _load_app(scenario: Scenario, item: Mapping[str, Any]) -> None:
    for name in (
        "redirect_uris",
        "delegated_scopes",
        "app_roles",
        "secrets",
        "certificates",
    ):
        if not isinstance(item.get(name, []), list):
            raise ValueError(f"{name!r} must be a list")
    rbac = item.get("rbac_scope")
    if rbac is not None and not isinstance(rbac, list):
        raise ValueError("'rbac_scope' must be a list of mailbox addresses or null")
    scenario.add_app(
        item["client_id"],
        display_name=item["display_name"],
        tenant=_tenant_key(item),
        secrets=item.get("secrets", []),
        certificates=item.get("certificates", []),
        redirect_uris=item.get("redirect_uris", []),
        delegated_scopes=item.get("delegated_scopes", []),
        app_roles=item.get("app_roles", []),
        rbac_scope=rbac,
    )


def _load_event(scenario: Scenario, item: Mapping[str, Any]) -> None:
    if not scenario.mailbox_exists(item["mailbox"]):
        raise ValueError(f"unknown mailbox {item['mailbox']!r}")
    for edge in ("start", "end"):
        value = item[edge]
        if not isinstance(value, Mapping) or not value.get("dateTime"):
            raise ValueError(
                f"{edge!r} must be an object with 'dateTime' and 'timeZone'"
            )
        if not value.get("timeZone"):
            raise ValueError(f"{edge!r} is missing 'timeZone'")
        datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    organizer = item.get("organizer")
    if organizer is not None and not scenario.mailbox_exists(organizer):
        raise ValueError(f"unknown organizer {organizer!r}")
    scenario.events.append(copy.deepcopy(dict(item)))


def _read_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"scenario {path}: YAML needs PyYAML, which is not installed"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"scenario {path}: invalid YAML ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"scenario {path}: invalid JSON ({exc})") from None


def load_scenario(source: str | Path | Mapping[str, Any] | None = None) -> Scenario:
    """Build a ``Scenario`` from a dict, a file path, a bundled name or JSON text.

    ``None`` loads ``scenarios/default.json``; a bare name such as ``"default"`` loads
    the bundled ``scenarios/<name>.json``, or a generated one (``"campus"``).
    Raises ``ValueError`` naming the offending entry for malformed content,
    ``FileNotFoundError`` for a missing file.
    """
    if source is None:
        source = DEFAULT_SCENARIO_PATH
    if isinstance(source, Mapping):
        return _build(copy.deepcopy(dict(source)))
    if isinstance(source, str) and source.lstrip().startswith("{"):
        try:
            return _build(json.loads(source))
        except json.JSONDecodeError as exc:
            raise ValueError(f"scenario: invalid JSON ({exc})") from None
    path = Path(source)
    if not path.exists() and source in GENERATED_SCENARIOS:
        return _build(GENERATED_SCENARIOS[source]())
    if not path.exists() and isinstance(source, str) and "/" not in source:
        for suffix in (".json", ".yaml", ".yml"):
            candidate = SCENARIO_DIR / f"{source}{suffix}"
            if candidate.exists():
                path = candidate
                break
    if not path.exists():
        raise FileNotFoundError(f"scenario file not found: {source}")
    data = _read_file(path)
    try:
        return _build(data)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
