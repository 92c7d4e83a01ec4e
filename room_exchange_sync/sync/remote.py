# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Reading Exchange for a round: what changed in the room's calendar, as the
engine's items, with the items that cannot be read listed on the room
(problems.py) rather than taken for removed."""

import dataclasses
import logging

from odoo import fields

from .. import engine
from ..graph import (
    EventDataError,
    GraphNotFound,
    GraphPermissionError,
    ImportedEvent,
    SyncStateExpired,
    parse_event,
)
from . import exchange
from .problems import NO_LENGTH, UNREADABLE, ItemProblems

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExchangeRead:
    """What one pass of a round read of Exchange.

    ``remote``: {event id: engine.RemoteItem}; ``imported``: {event id:
    ImportedEvent} of the readable ones; ``problems``: the room's problem items as
    this pass sees them; ``complete`` is False when an item could not be read now
    (the next round must be a full one)."""

    kind: engine.RoundKind
    remote: dict
    delta_link: str | None
    problems: ItemProblems
    imported: dict[str, ImportedEvent]
    complete: bool


def read_changes(sync_round, client, start, end, delta_link, read_ahead, retry):
    """Steps reading the window's changes from ``delta_link`` (None: all of it);
    returns an ExchangeRead. ``read_ahead``: (request, answer) of a first page read
    ahead, or None; ``retry``: read again the meetings not imported yet."""
    settings = sync_round.settings
    incremental = bool(delta_link)
    delta_args = (client, settings.mailbox, start, end)
    try:
        events, removed, link = yield from sync_round.graph(
            exchange.read_delta, *delta_args, delta_link, settings.page_size, read_ahead
        )
    except SyncStateExpired:
        _logger.info("Room calendar %s: delta token expired, full round", settings.id)
        incremental = False
        events, removed, link = yield from sync_round.graph(
            exchange.read_delta, *delta_args, None, settings.page_size
        )
    except GraphPermissionError:
        if settings.auth_mode != "delegated":
            raise
        # Exchange has been reported to refuse delta paging on room calendars
        # reached through a delegated share (403 on the nextLink): list the window
        # page by page instead, without a delta link.
        _logger.warning(
            "Room calendar %s: delta refused, listing the window", settings.id
        )
        events = yield from sync_round.graph(exchange.list_window, *delta_args)
        removed, link, incremental = [], False, False
    problems = ItemProblems(sync_round.calendar.item_problems, full=not incremental)
    events, removed, complete = yield from _complete_partial_events(
        sync_round, client, events, removed, problems, retry
    )
    parser = _Parser(sync_round, problems)
    remote = {}
    for event in events:
        item = parser.item(event)
        if item is not None:
            remote[item.event_id] = item
    for event_id in removed:
        problems.readable(event_id)
        remote[event_id] = engine.RemoteItem.removal(event_id)
    kind = engine.RoundKind.INCREMENTAL if incremental else engine.RoundKind.FULL
    return ExchangeRead(kind, remote, link, problems, parser.imported, complete)


def _complete_partial_events(sync_round, client, events, removed, problems, retry):
    """Delta items that carry only what changed are read again in full (one $batch
    GET each; system parameter ``room_exchange_sync.delta_reread_partial``, on by
    default), and so are the meetings an earlier round could not import (the delta
    does not list them again). An event gone meanwhile is a removal; one that cannot
    be read now is left to the next round, a full one. Returns (events, removed,
    whether all could be read)."""
    settings = sync_round.settings
    partial_ids = set()
    if settings.reread_partial:
        partial_ids = {exchange.partial_id(event) for event in events} - {None}
    retry_ids = set()
    if retry:
        listed = {
            event["id"]
            for event in events
            if isinstance(event, dict)
            and isinstance(event.get("id"), str)
            and exchange.partial_id(event) is None
        }
        retry_ids = problems.retry_ids() - listed - set(removed)
    if not partial_ids and not retry_ids:
        return events, removed, True
    _logger.info(
        "Room calendar %s: %s partial delta items and %s meetings not imported "
        "yet, read again",
        settings.id,
        len(partial_ids),
        len(retry_ids),
    )
    event_ids = sorted(partial_ids | retry_ids)
    results = yield from sync_round.graph(
        exchange.read_events, client, settings.mailbox, event_ids
    )
    full, complete = [], True
    for event_id, result in zip(event_ids, results, strict=True):
        if result.error is None and isinstance(result.body, dict):
            full.append(result.body)
        elif isinstance(result.error, GraphNotFound):
            removed = [*removed, event_id]
        else:
            complete = False
    kept = [
        event
        for event in events
        if not (settings.reread_partial and exchange.partial_id(event) is not None)
    ]
    return kept + full, removed, complete


class _Parser:
    """Graph events into the engine's items, problems recorded on the way."""

    def __init__(self, sync_round, problems):
        self.round = sync_round
        self.env = sync_round.env
        self.problems = problems
        self.imported = {}

    def item(self, event) -> engine.RemoteItem | None:
        """The engine's item of a Graph event; None for an event that cannot be
        read or mirrored (recorded on the room with the reason: it never cancels or
        changes anything) and for series masters (their occurrences are listed)."""
        if not isinstance(event, dict):
            self._unreadable(None, self.env._("it is not an object"))
            return None
        if event.get("type") == "seriesMaster":
            return None
        try:
            imported = parse_event(
                event,
                room_time_zone=self.round.room_tz,
                private_subject=self.env._("Private meeting"),
            )
        except EventDataError as error:
            event_id = event.get("id") if error.field != "id" else None
            self._unreadable(
                event_id,
                self.env._(
                    "its %(field)s cannot be read (%(reason)s)",
                    field=error.field,
                    reason=error.reason,
                ),
            )
            return None
        if imported.start == imported.stop and not imported.is_cancelled:
            # A booking cannot last no time (resource_booking gives it its type's
            # duration): the meeting is listed on the room, its booking unchanged.
            self.problems.add(
                imported.event_id,
                NO_LENGTH,
                self.env._(
                    "the meeting lasts no time in Outlook (%(start)s): a booking "
                    "cannot, so Odoo keeps it as it was",
                    start=fields.Datetime.to_string(imported.start),
                ),
            )
            return None
        self.problems.readable(imported.event_id)
        self.imported[imported.event_id] = imported
        return engine.RemoteItem(
            event_id=imported.event_id,
            change_key=imported.change_key,
            start=imported.start,
            stop=imported.stop,
            subject=imported.subject,
            is_private=imported.is_private,
            is_cancelled=imported.is_cancelled,
            ical_uid=imported.ical_uid or None,
            series_master_id=imported.series_master_id or None,
            transaction_id=imported.transaction_id or None,
            marker=imported.marker or None,
        )

    def _unreadable(self, event_id, reason) -> None:
        self.problems.add(event_id, UNREADABLE, reason)
        _logger.warning(
            "Room calendar %s: Exchange item %s cannot be read (%s)",
            self.round.settings.id,
            "with an id" if event_id else "without an id",
            reason,
        )
