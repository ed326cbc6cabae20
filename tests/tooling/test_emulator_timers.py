"""The emulator's one scheduler (lifecycle and webhooks both run on it): due order, wake-up, idle, clear."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from cutout_dev.emulator.timers import Timers


@pytest.fixture
def timers() -> Iterator[Timers]:
    t = Timers("test-timers")
    t.start()
    yield t
    t.stop()


def test_callbacks_run_in_due_order_not_insertion_order(timers: Timers) -> None:
    # Given a gate that keeps the timer thread busy while callbacks are scheduled
    gate, done = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold() -> None:
        gate.wait(5)

    timers.call_later(0, hold)
    # When callbacks are added out of due order (ties keep insertion order)
    timers.call_later(0.02, lambda: ran.append("late"))
    timers.call_later(0.01, lambda: ran.append("early"))
    timers.call_later(0.01, lambda: ran.append("early-second"))
    timers.call_later(0.03, done.set)
    gate.set()
    # Then they run by due time
    assert done.wait(5)
    assert ran == ["early", "early-second", "late"]


def test_an_earlier_callback_added_later_wakes_the_thread(timers: Timers) -> None:
    # Given the thread sleeping until a callback an hour away
    timers.call_later(3600, lambda: None)
    fired = threading.Event()
    # When one due now is added, then it runs without waiting for the first
    timers.call_later(0, fired.set)
    assert fired.wait(5)


def test_idle_counts_pending_and_running_callbacks_and_clear_drops_pending(timers: Timers) -> None:
    # Given a callback mid-run and one pending far away
    release, running = threading.Event(), threading.Event()

    def block() -> None:
        running.set()
        release.wait(5)

    timers.call_later(0, block)
    timers.call_later(3600, lambda: None)
    assert running.wait(5)
    assert not timers.idle()
    # When the pending one is cleared and the running one ends, then the timers are idle
    timers.clear()
    assert not timers.idle()  # still running `block`
    release.set()
    assert eventually(timers.idle)


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
