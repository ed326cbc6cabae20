"""Fixtures the domain's unit tests share: for the job state machine's (test_job_transitions.py,
test_retry_transitions.py), a movable clock and a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cutout.store.job_store import JobStore

from tests.conftest import Aws
from tests.support.roles import StoreMovesAsItsFunctions

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Clock:
    """The store's "now", moved by the test (`advance`) instead of waiting."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: Aws, clock: Clock) -> JobStore:
    """A JobStore on the test's table (moto server), on `clock`; each move runs as the function that makes it."""
    return StoreMovesAsItsFunctions(JobStore(aws.table, aws.client("dynamodb"), clock=clock))  # type: ignore[return-value]
