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


def _report(
    receives: dict[str, int],
    dlq: int = 0,
    concurrent: int = 5,
    ratio: float = 0.95,
    *,
    mode: str = "queue",
    plan_refusals: int = 0,
    reasons: dict[str, int] | None = None,
    swept: int = 0,
) -> dict[str, Any]:
    return {
        "mode": mode,
        "checks": {"lost == 0": True},
        "dlq": {"IngestDLQ": dlq},
        "extra": {"swept": [{"job_id": f"job-{i}", "status": "rendering"} for i in range(swept)]},
        "flood": {
            "receives": {q: {"max": n, "histogram": {}} for q, n in receives.items()},
            "max_concurrent_at_magic_hour": concurrent,
            "throughput": {"ratio": ratio},
            "plan_refusals": plan_refusals,
            "slots": {"repairs": {"log": "functions.log", "reasons": reasons or {}}, "disagreeing": []},
        },
    }


def test_in_reject_mode_the_plans_refusals_are_judged_not_its_own_count() -> None:
    cfg = FloodConfig(limit=5)
    check = "creates refused by the plan == 0 outside slots freed on an unknown outcome"
    # Given the emulator refusing beyond a plan of 5 = MaxJobsInFlight: its count of open projects cannot pass 5
    clean, over = _report({}, mode="reject", plan_refusals=0), _report({}, mode="reject", plan_refusals=3)
    explained = _report({}, mode="reject", plan_refusals=3, reasons={"unknown_outcome_past_bound": 1})
    for report in (clean, over, explained):
        judge(cfg, report)
    # Then refusals fail the run unless a slot was freed on an unknown outcome (the designed cost)
    assert clean["checks"][check] and explained["checks"][check]
    assert not over["checks"][check] and not over["passed"]


def test_a_job_only_the_forced_sweep_ended_fails_the_flood() -> None:
    report = _report({}, swept=1)
    judge(FloodConfig(limit=5), report)
    assert not report["checks"]["jobs ended by the forced sweep <= 0"]
    assert not report["passed"]


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
