"""Pacing under Exchange Online's request budget per app and mailbox.

Exchange allows 10,000 requests per app and mailbox in any 10 minutes (each item of a
``$batch`` counts; docs/graph.md#throttling). A long export that sends as fast as it can
runs into ``429`` answers and their ``Retry-After`` waits; one that sends at a fixed
rate wastes time when a small export could go at once. ``MailboxBudget`` keeps, per
mailbox, what this process sent in the sliding window, lets a burst go while it fits,
and waits only as long as it takes for the oldest requests to leave the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class MailboxBudget:
    """Requests sent per mailbox in a sliding window (this process only)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        # Per mailbox: [counted from, requests, seconds waited for them], oldest first.
        self._sent: dict[str, deque[list[Any]]] = {}
        self._lock = threading.Lock()

    def reserve(
        self, mailbox: str, count: int, *, budget: int, seconds: float
    ) -> float:
        """Wait until ``count`` more requests to ``mailbox`` keep the last ``seconds``
        within ``budget`` requests, then count them as sent; returns the seconds
        waited. A reservation larger than the budget goes alone into an empty
        window."""
        return self._reserve(mailbox, count, budget, seconds)[2]

    @contextmanager
    def spend(
        self, mailbox: str, count: int, *, budget: int, seconds: float
    ) -> Iterator[float]:
        """``reserve``, then send in the ``with`` block: the requests count from when
        the block ends, by when Microsoft has received them all (counting them from
        the reservation would free them a round trip too early)."""
        entry = self._reserve(mailbox, count, budget, seconds)
        try:
            yield entry[2]
        finally:
            with self._lock:
                entry[0] = self.clock()

    def _reserve(
        self, mailbox: str, count: int, budget: int, seconds: float
    ) -> list[Any]:
        key = mailbox.lower()
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                sent = self._sent.setdefault(key, deque())
                while sent and sent[0][0] <= now - seconds:
                    sent.popleft()
                used = sum(entry[1] for entry in sent)
                if not sent or used + count <= budget:
                    entry = [now, count, waited]
                    sent.append(entry)
                    return entry
                excess, freed, leaves_at = used + count - budget, 0, now
                for counted_from, number, _waited in sent:
                    freed, leaves_at = freed + number, counted_from + seconds
                    if freed >= excess:
                        break
                wait = max(leaves_at - now, 0.001)
            self.sleep(wait)
            waited += wait

    def forget(self, mailbox: str | None = None) -> None:
        """Drop what was counted (for one mailbox, or all)."""
        with self._lock:
            if mailbox is None:
                self._sent.clear()
            else:
                self._sent.pop(mailbox.lower(), None)
