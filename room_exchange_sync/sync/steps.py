"""Several rooms' Graph work side by side, their database work one at a time.

A sync round is written as a generator of *steps*: it yields a callable that only
talks to Graph (no ORM, no cursor), is sent back that callable's result (or has its
exception thrown in), and finally returns its outcome. ``run_inline`` drives one such
generator in the calling thread. ``run_side_by_side`` drives several: each callable
runs in a worker thread, and each generator resumes in the calling thread as soon as
its callable is done, so that one room's database work overlaps the other rooms'
round trips. Exchange's limits are per mailbox (docs/graph.md#throttling), so rooms
(different mailboxes) do not slow each other down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

Result = TypeVar("Result")
Steps = Generator[Callable[[], Any], Any, Result]


def _resume(steps: Steps, value: Any, error: BaseException | None) -> Any:
    if error is not None:
        return steps.throw(error)
    return steps.send(value)


def run_inline(steps: Steps[Result]) -> Result:
    """Drive ``steps`` in this thread; returns what it returns."""
    value, error = None, None
    while True:
        try:
            work = _resume(steps, value, error)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = work(), None
        except Exception as exc:  # noqa: BLE001 - handed back to the generator
            value, error = None, exc


def worker_pool(max_workers: int) -> ThreadPoolExecutor:
    """A pool for ``run_side_by_side``, to reuse over many groups of rooms (a
    context manager: its threads end with it)."""
    return ThreadPoolExecutor(
        max_workers=max(max_workers, 1), thread_name_prefix="room_exchange_graph"
    )


def run_side_by_side(
    all_steps: Sequence[Steps[Result]],
    max_workers: int = 8,
    pool: ThreadPoolExecutor | None = None,
) -> list[Result]:
    """Drive every generator of ``all_steps``; their outcomes, in the same order.

    The generators only ever run in this thread, one at a time; their yielded
    callables run in ``pool`` (``worker_pool``; without one, a pool of up to
    ``max_workers`` threads made for this call). An exception a generator raises
    stops everything and propagates (once the running callables are done).
    """
    outcomes: list[Any] = [None] * len(all_steps)
    if not all_steps:
        return outcomes
    if pool is None:
        with worker_pool(min(max_workers, len(all_steps))) as own:
            return run_side_by_side(all_steps, pool=own)
    running: dict[Future[Any], int] = {}

    def advance(index: int, value: Any, error: BaseException | None) -> None:
        try:
            work = _resume(all_steps[index], value, error)
        except StopIteration as stop:
            outcomes[index] = stop.value
            return
        running[pool.submit(work)] = index

    try:
        for index in range(len(all_steps)):
            advance(index, None, None)
        while running:
            done, _pending = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                error = future.exception()
                advance(index, None if error else future.result(), error)
    finally:
        # Whatever happened, no callable of this call outlives it.
        wait(running)
    return outcomes


def run_in_background(
    jobs: Sequence[Callable[[], Result]], after: Future[Any] | None = None
) -> list[Future[Result]]:
    """Run ``jobs`` one after the other in a thread of their own, once ``after`` (an
    earlier background job) is done, whatever its outcome; returns a future of
    each at once (a job's exception is its future's). For Graph work only: no ORM,
    no cursor."""
    futures: list[Future[Result]] = [Future() for _job in jobs]

    def run() -> None:
        if after is not None:
            wait([after])
        for job, future in zip(jobs, futures, strict=True):
            future.set_running_or_notify_cancel()
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                future.set_exception(exc)

    threading.Thread(target=run, name="room_exchange_graph_ahead", daemon=True).start()
    return futures
