"""sync/steps.py: rooms' Graph work side by side, their database work one at a time."""

from __future__ import annotations

import threading
import time

import pytest
from exchange_steps import run_in_background, run_inline, run_side_by_side


def room(name, log, waits=(0.05, 0.05), fail_at=None):
    """A round of two Graph steps; ``log`` records where each part ran."""
    total = 0
    for index, wait in enumerate(waits):

        def work(index=index, wait=wait):
            log.append((name, "graph", index, threading.current_thread().name))
            if index == fail_at:
                raise ConnectionError(f"{name} step {index}")
            time.sleep(wait)
            return index + 1

        try:
            total += yield work
        except ConnectionError:
            log.append((name, "handled", index, threading.current_thread().name))
            total += 100
        log.append((name, "database", index, threading.current_thread().name))
    return f"{name}={total}"


def test_inline_runs_every_step_in_this_thread():
    log = []
    assert run_inline(room("a", log)) == "a=3"
    main = threading.current_thread().name
    assert {entry[3] for entry in log} == {main}
    assert [entry[1] for entry in log] == ["graph", "database"] * 2


def test_side_by_side_overlaps_graph_work_and_keeps_generators_here():
    log = []
    names = [f"room{n}" for n in range(6)]
    outcomes = run_side_by_side([room(name, log) for name in names], max_workers=6)
    assert outcomes == [f"{name}=3" for name in names]
    main = threading.current_thread().name
    graph_threads = {entry[3] for entry in log if entry[1] == "graph"}
    assert main not in graph_threads
    assert {entry[3] for entry in log if entry[1] == "database"} == {main}
    # Every room sent its first step before any room got its first answer back.
    first_database = next(i for i, entry in enumerate(log) if entry[1] == "database")
    started = {entry[0] for entry in log[:first_database] if entry[1] == "graph"}
    assert started == set(names)


def test_a_failing_step_is_thrown_into_its_own_round_only():
    log = []
    outcomes = run_side_by_side(
        [room("ok", log), room("flaky", log, fail_at=0)], max_workers=2
    )
    assert outcomes == ["ok=3", "flaky=102"]
    handled = [entry for entry in log if entry[1] == "handled"]
    assert [(entry[0], entry[3]) for entry in handled] == [
        ("flaky", threading.current_thread().name)
    ]


def test_an_error_a_round_does_not_handle_propagates():
    def broken():
        yield lambda: None
        raise ValueError("planner bug")

    log = []
    with pytest.raises(ValueError, match="planner bug"):
        run_side_by_side([room("ok", log), broken()], max_workers=2)
    with pytest.raises(ValueError, match="planner bug"):
        run_inline(broken())


def test_no_rounds_and_rounds_without_graph_work():
    def local_only():
        return "done"
        yield  # pragma: no cover - a generator that never yields

    assert run_side_by_side([]) == []
    assert run_side_by_side([local_only(), local_only()]) == ["done", "done"]


def test_background_jobs_run_in_order_in_one_other_thread():
    started = threading.Event()
    release = threading.Event()
    ran = []

    def job(name, fail=False):
        def run():
            ran.append((name, threading.current_thread().name))
            if name == "first":
                started.set()
                assert release.wait(5)
            if fail:
                raise ConnectionError(name)
            return name

        return run

    futures = run_in_background([job("first"), job("second", fail=True), job("third")])
    # The caller goes on at once, while the first job still runs.
    assert started.wait(5)
    assert not futures[0].done()
    release.set()
    assert futures[0].result(5) == "first"
    with pytest.raises(ConnectionError):
        futures[1].result(5)
    assert futures[2].result(5) == "third"
    assert [name for name, _thread in ran] == ["first", "second", "third"]
    threads = {thread for _name, thread in ran}
    assert len(threads) == 1
    assert threading.current_thread().name not in threads


def test_a_background_job_can_wait_for_an_earlier_one():
    release = threading.Event()
    ran = []

    def first():
        assert release.wait(5)
        ran.append("first")
        raise ConnectionError("first")

    def second():
        ran.append("second")
        return "second"

    (earlier,) = run_in_background([first])
    (later,) = run_in_background([second], after=earlier)
    time.sleep(0.05)
    # The later job waits for the earlier one, even though it runs in a thread of
    # its own; the earlier one's failure does not stop it.
    assert ran == []
    assert not later.done()
    release.set()
    assert later.result(5) == "second"
    assert ran == ["first", "second"]
    with pytest.raises(ConnectionError):
        earlier.result(5)
