# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What a round is asked to do, and what it knows of its room from the start:
frozen values, given once."""

import dataclasses
from datetime import datetime

from odoo import fields

from .. import engine


@dataclasses.dataclass(frozen=True)
class RoundOptions:
    """How one sync round of one room runs.

    - ``full``: list the whole window instead of following the delta link;
    - ``confirm_cancellations``: a manager confirmed the cancellations held back by
      the safety rail (and forced deletions);
    - ``quiet``: nothing was asked of the room and its linked bookings are all in
      sync (the scheduler knows it for a group of rooms at once): when Exchange
      reports no change either, the round only records its new delta link, without
      reading the room's window (an idle room costs about one query);
    - ``follow_up``: read the echoes of this round's writes at once (a second pass),
      so that the delta link moves past them; the bulk export leaves that to its
      next step;
    - the bulk export's: ``window_end`` reaches further ahead than the sync window;
      ``dry_run`` plans without executing or storing anything; ``max_creates``
      leaves the creations beyond it for the next step; ``budget`` (requests,
      seconds) is the share of the mailbox's request budget its writes may use;
      ``read_next(request)`` is told, once the round's writes are answered, the
      request of the next round's first delta page (None: nothing to read ahead).
    """

    full: bool = False
    confirm_cancellations: bool = False
    quiet: bool = False
    follow_up: bool = True
    window_end: datetime | None = None
    dry_run: bool = False
    max_creates: int | None = None
    budget: tuple[int, float] | None = None
    read_next: object = None

    @property
    def exporting(self) -> bool:
        """Whether the round is a step of the bulk export (not a plain sync)."""
        return (
            self.dry_run or self.max_creates is not None or self.window_end is not None
        )


POLICIES = {
    "origin": engine.ConflictPolicy.ORIGIN,
    "odoo": engine.ConflictPolicy.ODOO,
    "exchange": engine.ConflictPolicy.EXCHANGE,
}
PARAM_DELTA_PAGE_SIZE = "room_exchange_sync.delta_page_size"
PARAM_DELTA_REREAD_PARTIAL = "room_exchange_sync.delta_reread_partial"
DEFAULT_DELTA_PAGE_SIZE = 200


def reread_partial_events(env) -> bool:
    """Whether delta items that carry only some properties are read again in full
    (UNCONFIRMED whether Outlook sends them: docs/graph.md#partial-delta-items)."""
    value = env["ir.config_parameter"].sudo().get_param(PARAM_DELTA_REREAD_PARTIAL)
    return (value or "true").strip().lower() not in ("0", "false", "no", "off")


def delta_page_size(env) -> int:
    """Events per delta page asked of Graph (``Prefer: odata.maxpagesize``; Graph's
    default and maximum are not documented, and it may answer with fewer)."""
    value = env["ir.config_parameter"].sudo().get_param(PARAM_DELTA_PAGE_SIZE)
    try:
        return max(int(value), 1) if value else DEFAULT_DELTA_PAGE_SIZE
    except ValueError:
        return DEFAULT_DELTA_PAGE_SIZE


@dataclasses.dataclass(frozen=True)
class RoomSettings:
    """What a round knows of its room and its time from the start, and keeps."""

    id: int
    mailbox: str
    auth_mode: str
    # A person's sign-in (delegated) writes its rotated refresh token to the
    # database whenever it takes a token: its Graph calls stay in this thread.
    graph_in_threads: bool
    now: datetime
    database_uuid: str
    page_size: int
    reread_partial: bool
    policy: engine.ConflictPolicy

    @classmethod
    def of(cls, calendar) -> "RoomSettings":
        env = calendar.env
        return cls(
            id=calendar.id,
            mailbox=calendar.mailbox,
            auth_mode=calendar.auth_mode,
            graph_in_threads=calendar.auth_mode == "application",
            now=fields.Datetime.now(),
            database_uuid=env["ir.config_parameter"].get_param("database.uuid") or "",
            page_size=delta_page_size(env),
            reread_partial=reread_partial_events(env),
            policy=POLICIES[calendar.connection_id.conflict_policy],
        )
