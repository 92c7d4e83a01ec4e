# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Talking to Exchange for a round: the work that runs in a worker thread.

Free functions over a Graph client and plain values: no ``env``, no record, no
cursor (this module imports nothing of Odoo, a test enforces it), so that a room's
Graph work can run beside other rooms' while its database work waits its turn
(``steps.run_side_by_side``).
"""

from ..graph import MailboxBudget, get_event_request, is_partial_event
from . import seams

# What this process sent to each mailbox under a budget (a round's ``budget`` holds
# across rounds, e.g. the steps of an export).
MAILBOX_BUDGET = MailboxBudget()


def nothing() -> None:
    """A Graph step that does nothing: ends a stretch of database work."""


def partial_id(event: object) -> str | None:
    """The id of a partial delta item (None for a full one, or one without an id)."""
    if isinstance(event, dict) and is_partial_event(event):
        event_id = event.get("id")
        return event_id if isinstance(event_id, str) else None
    return None


def delta_request(client, mailbox, start, end, delta_link, page_size, request_id):
    """The request of the first delta page of the window (from ``delta_link``, or a
    full one)."""
    return client.delta_request(
        mailbox,
        start=start,
        end=end,
        delta_link=delta_link,
        page_size=page_size,
        request_id=request_id,
    )


def read_delta(client, mailbox, start, end, delta_link, page_size, read_ahead=None):
    """(events, ids of removed events, new delta link) of the window's delta pages.

    ``read_ahead``: (request, a callable that waits for its BatchResult, or None)
    of a first page read ahead for this round; used if it is the page this round
    reads (another worker may have moved the delta link meanwhile)."""
    seams.reach(seams.DELTA_READING, mailbox=mailbox, delta_link=delta_link)
    first_page = None
    if read_ahead is not None:
        request, answer = read_ahead
        wanted = delta_request(
            client, mailbox, start, end, delta_link, page_size, "delta"
        )
        result = answer() if request.url == wanted.url else None
        if result is not None:
            if result.error is not None:
                raise result.error
            first_page = result.body
    events, removed, link = [], [], None
    pages = client.iter_delta(
        mailbox,
        start=start,
        end=end,
        delta_link=delta_link,
        page_size=page_size,
        first_page=first_page,
    )
    for page in pages:
        events.extend(page.events)
        removed.extend(page.removed_ids)
        link = page.delta_link or link
    return events, removed, link


def list_window(client, mailbox, start, end) -> list:
    """The events of the window, listed page by page (no delta link)."""
    return list(client.iter_calendar_view(mailbox, start, end))


def read_events(client, mailbox, event_ids) -> list:
    """GET each event, in $batch requests; results in the same order (Graph's ids
    are case-sensitive, a batch's request ids are not: numbered instead)."""
    seams.reach(seams.EVENTS_READING, mailbox=mailbox, event_ids=event_ids)
    return client.batch(
        [
            get_event_request(mailbox, event_id, request_id=str(index))
            for index, event_id in enumerate(event_ids)
        ]
    )


def send_writes(client, mailbox, requests, budget=None) -> list:
    """The $batch requests of a round's writes, once they fit in the mailbox's
    ``budget`` (requests, seconds; they count from when Microsoft has received them
    all). Returns their BatchResults."""
    seams.reach(seams.WRITES_SENDING, mailbox=mailbox, requests=requests)
    if not budget:
        results = client.batch(requests)
    else:
        allowed, seconds = budget
        with MAILBOX_BUDGET.spend(
            mailbox or "", len(requests), budget=allowed, seconds=seconds
        ):
            results = client.batch(requests)
    seams.reach(seams.WRITES_ANSWERED, mailbox=mailbox, results=results)
    return results
