"""The flood's own arithmetic: the highest number of projects open at once, and the receive-count check."""

from __future__ import annotations

from typing import Any

from cutout_dev.flood import FloodConfig, judge, max_open


def test_max_open_counts_overlaps_and_not_back_to_back_projects() -> None:
    # Given three projects where the third starts exactly when the first finishes (its slot was handed on)
    intervals = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    # Then at most two were open at once
    assert max_open(intervals) == 2
    # and a burst that creates everything at once is seen whole
    assert max_open([(0.0, 10.0)] * 30) == 30
    assert max_open([]) == 0


def _report(receives: dict[str, int], dlq: int = 0, concurrent: int = 5, ratio: float = 0.95) -> dict[str, Any]:
    return {
        "checks": {"lost == 0": True},
        "dlq": {"IngestDLQ": dlq},
        "flood": {
            "receives": {q: {"max": n, "histogram": {}} for q, n in receives.items()},
            "max_concurrent_at_magic_hour": concurrent,
            "throughput": {"ratio": ratio},
        },
    }


def test_judge_fails_a_message_received_up_to_max_receive_count() -> None:
    cfg = FloodConfig(limit=5)
    # Given the template's maxReceiveCount of 5 on the ingest queue
    ok, burnt = _report({"IngestQueue": 4}), _report({"IngestQueue": 5})
    judge(cfg, ok)
    judge(cfg, burnt)
    # Then 4 receives pass and 5 (one more failure and it is dead-lettered) fail
    assert ok["passed"]
    assert not burnt["passed"]
    assert not burnt["checks"]["receives per message <= maxReceiveCount - 1"]


def test_judge_fails_dead_letters_excess_concurrency_and_a_slow_flood() -> None:
    cfg = FloodConfig(limit=5)
    for report, check in (
        (_report({}, dlq=1), "every DLQ empty"),
        (_report({}, concurrent=6), "max concurrent at Magic Hour <= MaxJobsInFlight"),
        (_report({}, ratio=0.8), "throughput >= 0.9 x bound"),
    ):
        judge(cfg, report)
        assert not report["checks"][check]
        assert not report["passed"]
