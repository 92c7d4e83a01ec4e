# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Named points of a round where a test may step in (a crash, a race with Outlook,
a count), so that no test patches a private method by name.

A round calls ``reach(point, **details)`` at each point below; nothing happens
unless a test holds a hook there (``with hooked(point, hook):``), which is then
called with those details and may raise (a crash at that point) or act (Outlook
changes something meanwhile). The points, in the order a round reaches them:

- ``ROUND_STARTING`` (calendar): a round of a room begins (before any Graph call);
- ``DELTA_READING`` (mailbox, delta_link): the round reads the delta pages;
- ``EVENTS_READING`` (mailbox, event_ids): it reads these events again in full;
- ``WINDOW_LOADED`` (calendar, subset, rows): it read its window of the Odoo side
  (``subset``: an export step's, or None; ``rows``: how many bookings);
- ``MEETING_IMPORTING`` (vals_list): bookings are about to be created from meetings;
- ``WRITES_SENDING`` (mailbox, requests): a group of writes goes to Exchange;
- ``WRITES_ANSWERED`` (mailbox, results): Exchange answered them, not yet recorded;
- ``ROUND_RECORDED`` (calendar, values): the round's outcome is written on the room.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator

ROUND_STARTING = "round_starting"
DELTA_READING = "delta_reading"
EVENTS_READING = "events_reading"
WINDOW_LOADED = "window_loaded"
MEETING_IMPORTING = "meeting_importing"
WRITES_SENDING = "writes_sending"
WRITES_ANSWERED = "writes_answered"
ROUND_RECORDED = "round_recorded"
POINTS = frozenset(
    (
        ROUND_STARTING,
        DELTA_READING,
        EVENTS_READING,
        WINDOW_LOADED,
        MEETING_IMPORTING,
        WRITES_SENDING,
        WRITES_ANSWERED,
        ROUND_RECORDED,
    )
)

_hooks: dict[str, list[Callable]] = {}
_lock = threading.Lock()


def reach(point: str, **details: object) -> None:
    """Call the hooks held at ``point`` (none outside tests)."""
    if _hooks.get(point):
        for hook in list(_hooks[point]):
            hook(**details)


@contextlib.contextmanager
def hooked(point: str, hook: Callable) -> Iterator[None]:
    """Hold ``hook`` at ``point`` for the duration of the block."""
    if point not in POINTS:
        raise ValueError(f"no seam named {point!r}")
    with _lock:
        _hooks.setdefault(point, []).append(hook)
    try:
        yield
    finally:
        with _lock:
            _hooks[point].remove(hook)
