"""How long the current invocation has left, and whether one more Magic Hour call fits in it.

Lambda stops a function at its timeout wherever it is ("Lambda function timeout" in the Lambda developer guide;
the time left is `context.get_remaining_time_in_millis()`, "Using the Lambda context object to retrieve Python
function information"). A create stopped mid-call is an ambiguous, possibly paid job, and the rest of its batch
comes back whole. So before a record's Magic Hour call a use case calls `require(seconds)`, the call's worst case
(magic_hour.WORST_CASE_CALL_SECONDS, derived from the client's timeouts and retry window); when less than that
plus MARGIN_SECONDS is left it raises OutOfTime before anything is taken for the record, and the batch defers
that record and the rest (sqs_batch.py). Loops that are not batches (the sweep) ask `allows(seconds)` and stop.

The deadline is per invocation and per thread (a ContextVar: the local stack runs invocations as threads of one
process); outside an invocation (the soak, the CLI, tests calling the domain) there is none and every call fits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from cutout.domain.errors import OutOfTime

# What a record needs besides its Magic Hour call: the DynamoDB writes around it (slot, claim, budget, the record of
# the create) and the poll message, each ~10-50 ms on AWS, and the flush of the invocation's metrics.
MARGIN_SECONDS = 1.5

_deadline: ContextVar[float | None] = ContextVar("cutout_invocation_deadline", default=None)


def deadline_of(context: Any) -> float | None:
    """The invocation's end on the monotonic clock, from a Lambda context (None without one)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + int(remaining()) / 1000


@contextmanager
def until(deadline: float | None) -> Iterator[None]:
    """Run the block with `deadline` (None: no limit), restored afterwards however the block ends."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def left() -> float | None:
    """Seconds left in this invocation, or None outside one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def allows(call_seconds: float) -> bool:
    """Whether a call that may take `call_seconds` (and the record's work around it) can still finish."""
    remaining = left()
    return remaining is None or remaining >= call_seconds + MARGIN_SECONDS


def require(call_seconds: float) -> None:
    """Raise OutOfTime unless a call that may take `call_seconds` can still finish."""
    if not allows(call_seconds):
        raise OutOfTime(
            f"{left() or 0:.1f} s left; one Magic Hour call may take {call_seconds:.1f} s + {MARGIN_SECONDS} s"
        )
