"""Outlook-style throttling for the Graph emulator (docs/graph.md#throttling).

Exchange Online limits Graph traffic **per (application id, mailbox)**: 10,000 requests
in a 10-minute window and four concurrent requests. Exceeding the limit for one mailbox
does not affect the same app on another mailbox, nor another app on the same mailbox.

Public API::

    throttle = Throttle(max_concurrent=4, budget=10000, window_seconds=600.0,
                        clock=time.monotonic, enabled=True, count_throttled=True)
    with throttle.slot(client_id, mailbox):   # may raise GraphHttpError(429, ...)
        ...serve the request...
    throttle.configure(budget=5, ...)          # any constructor option except clock
    throttle.reset()
    throttle.stats()  # {"<client>|<mailbox>": {"requests", "throttled",
                      #                          "max_concurrency", "in_flight"}}

Answers (bodies rendered by the router from ``GraphHttpError``, with the 429 inner
error of Graph's throttling guidance: code "429", "Please retry after", status "429"):

- concurrency: ``429 ApplicationThrottled`` "Application is over its MailboxConcurrency
  limit." with ``Retry-After: 1`` (Outlook's real body; its Retry-After is not
  documented, 1 s is our choice);
- budget: ``429 TooManyRequests`` "Please retry again later." with ``Retry-After`` =
  whole seconds (≥ 1) until the sliding window has room for one more request.

Keys are case-insensitive (``client_id`` and ``mailbox`` are lower-cased): a UPN and its
other-cased spelling are the same mailbox. The router should pass the mailbox as the
caller addressed it (UPN or id) after resolving it to one canonical form if it can.

Stats: ``requests`` counts every request that asked for a slot (admitted or throttled),
``throttled`` the 429s, ``max_concurrency`` the peak of ``in_flight``.

With ``enabled=False`` nothing is refused, but stats are still kept.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import GraphHttpError

CONCURRENCY_CODE = "ApplicationThrottled"
CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
BUDGET_CODE = "TooManyRequests"
BUDGET_MESSAGE = "Please retry again later."

_OPTIONS = ("max_concurrent", "budget", "window_seconds", "enabled", "count_throttled")


@dataclass
class _PairState:
    usage: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    requests: int = 0
    throttled: int = 0
    max_concurrency: int = 0


class Throttle:
    """Per (client id, mailbox) concurrency and sliding-window request budget."""

    def __init__(
        self,
        *,
        max_concurrent: int = 4,
        budget: int = 10000,
        window_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
        count_throttled: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._pairs: dict[str, _PairState] = {}
        self.max_concurrent = max_concurrent
        self.budget = budget
        self.window_seconds = window_seconds
        self.enabled = enabled
        # Microsoft: "usage keeps accruing while throttled", so a client that retries
        # before Retry-After only pushes its recovery further out.
        self.count_throttled = count_throttled

    def configure(self, **options: object) -> None:
        """Change options at run time (``max_concurrent``, ``budget``,
        ``window_seconds``, ``enabled``, ``count_throttled``).

        Raises ``TypeError`` for an unknown option name.
        """
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown throttle option(s): {sorted(unknown)}")
        with self._lock:
            for name, value in options.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Forget all usage and statistics (requests still inside keep their slot
        object, so leaving it later is harmless)."""
        with self._lock:
            self._pairs = {}

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                key: {
                    "requests": state.requests,
                    "throttled": state.throttled,
                    "max_concurrency": state.max_concurrency,
                    "in_flight": state.in_flight,
                }
                for key, state in self._pairs.items()
            }

    @contextmanager
    def slot(self, client_id: str, mailbox: str) -> Iterator[None]:
        """Hold one of the pair's concurrent slots for the duration of a request.

        Raises ``GraphHttpError(429, ...)`` on entry when the pair is over a limit; the
        slot is then not taken, so nothing must be released.
        """
        state = self._enter(client_id, mailbox)
        try:
            yield
        finally:
            with self._lock:
                state.in_flight = max(0, state.in_flight - 1)

    def _enter(self, client_id: str, mailbox: str) -> _PairState:
        key = f"{(client_id or '').lower()}|{(mailbox or '').lower()}"
        with self._lock:
            now = self._clock()
            state = self._pairs.setdefault(key, _PairState())
            usage = state.usage
            while usage and usage[0] <= now - self.window_seconds:
                usage.popleft()
            state.requests += 1
            if self.enabled:
                error = self._refusal(state, now)
                if error is not None:
                    state.throttled += 1
                    if self.count_throttled:
                        usage.append(now)
                    raise error
            usage.append(now)
            state.in_flight += 1
            state.max_concurrency = max(state.max_concurrency, state.in_flight)
            return state

    def _refusal(self, state: _PairState, now: float) -> GraphHttpError | None:
        if len(state.usage) >= self.budget:
            # One more request fits once the window holds budget - 1 entries, i.e. when
            # entry number n - budget (0-based, oldest first) has left the window; n
            # includes this refusal when throttled requests count as usage.
            entries = [*state.usage, now] if self.count_throttled else state.usage
            if self.budget > 0:
                blocking = entries[len(entries) - self.budget]
                wait = blocking + self.window_seconds - now
            else:
                wait = self.window_seconds
            retry_after = max(1, math.ceil(wait))
            return GraphHttpError(
                429,
                BUDGET_CODE,
                BUDGET_MESSAGE,
                headers={"Retry-After": str(retry_after)},
            )
        if state.in_flight >= self.max_concurrent:
            return GraphHttpError(
                429,
                CONCURRENCY_CODE,
                CONCURRENCY_MESSAGE,
                headers={"Retry-After": "1"},
            )
        return None
