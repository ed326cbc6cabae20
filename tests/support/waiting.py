"""The one way a test waits for something asynchronous: a condition polled until it holds, with a deadline whose
expiry says what did not happen. The deadline bounds a hang; it is never the thing asserted (no test compares an
elapsed time with a number: tests/unit/test_no_timing_thresholds.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, *, timeout: float = 30.0, every: float = 0.05) -> T:
    """`condition()`'s first truthy value; AssertionError naming `what` if none came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:g} s")
        time.sleep(every)
