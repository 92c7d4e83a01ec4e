"""MailboxBudget: bursts while they fit in the window, waits only for what must
leave it (a fake clock is the seam: the sleeps are what is asserted)."""

from __future__ import annotations

import threading

from exchange_graph import MailboxBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def budget_with_clock() -> tuple[MailboxBudget, FakeClock]:
    clock = FakeClock()
    return MailboxBudget(clock=clock, sleep=clock.sleep), clock


def test_a_burst_that_fits_goes_at_once():
    budget, clock = budget_with_clock()
    for _ in range(5):
        assert budget.reserve("Room@x.test", 80, budget=400, seconds=4) == 0
    assert clock.sleeps == []


def test_waits_until_the_oldest_requests_leave_the_window():
    budget, clock = budget_with_clock()
    budget.reserve("room@x.test", 300, budget=400, seconds=4)
    clock.now += 1
    budget.reserve("room@x.test", 80, budget=400, seconds=4)
    clock.now += 1
    # 380 in the window: 80 more must wait for the first 300 to leave it (at +4 s).
    assert budget.reserve("ROOM@x.test", 80, budget=400, seconds=4) == 2
    assert clock.sleeps == [2.0]
    # Then 160 are in the window; 240 more fit at once.
    assert budget.reserve("room@x.test", 240, budget=400, seconds=4) == 0


def test_mailboxes_have_their_own_budget_and_can_be_forgotten():
    budget, clock = budget_with_clock()
    budget.reserve("a@x.test", 400, budget=400, seconds=4)
    assert budget.reserve("b@x.test", 400, budget=400, seconds=4) == 0
    budget.forget("a@x.test")
    assert budget.reserve("a@x.test", 400, budget=400, seconds=4) == 0
    assert clock.sleeps == []


def test_an_oversized_reservation_goes_alone_into_an_empty_window():
    budget, clock = budget_with_clock()
    assert budget.reserve("a@x.test", 500, budget=400, seconds=4) == 0
    assert budget.reserve("a@x.test", 1, budget=400, seconds=4) == 4
    assert clock.sleeps == [4.0]


def test_threads_share_one_budget():
    budget, clock = budget_with_clock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.now += seconds

    budget.sleep = sleep

    def worker() -> None:
        for _ in range(25):
            budget.reserve("a@x.test", 20, budget=100, seconds=1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # 2,000 requests at 100 per second: at least 19 s beyond the first window.
    assert clock.now - 100.0 >= 19
