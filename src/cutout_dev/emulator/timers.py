"""One timer thread running short callbacks at their due time: the emulator's only scheduler.

The project lifecycle (engine.py) and webhook delivery (webhooks.py) each own an instance, so a
slow webhook receiver never delays a status change, but both share this one implementation.

Hand-written (about 60 lines) rather than stdlib ``sched`` or ``threading.Timer``: ``sched.run``
sleeps until the earliest event it saw and is not woken when another thread adds an earlier one,
and neither tells whether a callback is pending or mid-run, which ``idle()`` needs so tests and
the soak can wait for quiescence. ``threading.Timer`` would be a thread per event and unordered.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Timers:
    """Callbacks run one at a time, in due order (ties in the order they were scheduled)."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._running = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def clear(self) -> None:
        """Drop every pending callback (one mid-run finishes)."""
        with self._cond:
            self._heap.clear()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._seq), fn))
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing pending (due now or later) and no callback mid-run."""
        with self._cond:
            return not self._running and not self._heap

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
                self._running = True
            try:
                fn()
            finally:
                with self._cond:
                    self._running = False
