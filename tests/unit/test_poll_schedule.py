"""The status checks' schedule (use_cases/poll.py): the first at the render's expected end, two short ones around
it, then the back-off."""

from __future__ import annotations

from cutout.runtime.config import Settings
from cutout.use_cases.poll import check_delay


def _delays(**env: str) -> list[int]:
    settings = Settings.from_env({"JOBS_TABLE": "t", **env})
    return [check_delay(settings, attempt) for attempt in range(1, 9)]


def test_checks_come_at_the_expected_end_then_a_second_apart_then_back_off() -> None:
    assert _delays() == [4, 1, 1, 6, 9, 13, 20, 30]


def test_the_back_off_starts_from_the_first_delay_and_stops_at_the_largest() -> None:
    assert _delays(POLL_FIRST_DELAY_SECONDS="10", POLL_MAX_DELAY_SECONDS="20") == [10, 1, 1, 15, 20, 20, 20, 20]
    # a largest delay under a second caps the short checks too
    assert _delays(POLL_FIRST_DELAY_SECONDS="2", POLL_MAX_DELAY_SECONDS="1")[:3] == [1, 1, 1]
