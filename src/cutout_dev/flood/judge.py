"""The flood's checks on top of the soak's reconciliation (lost, non-terminal, creates per upload, ledger), each a
named check over the run's report."""

from __future__ import annotations

from typing import Any

from cutout_dev.flood.config import FloodConfig, template_max_receive_count
from cutout_dev.harness import CheckResult, record


def check_dlqs_empty(report: dict[str, Any]) -> CheckResult:
    """The flood does not redrive: a dead-lettered upload is a failure here."""
    depths = {q: n for q, n in report["dlq"].items() if n}
    return CheckResult("every DLQ empty", not depths, str(depths))


def check_concurrency(cfg: FloodConfig, flood: dict[str, Any]) -> CheckResult:
    highest = flood["max_concurrent_at_magic_hour"]
    return CheckResult(
        "max concurrent at Magic Hour <= MaxJobsInFlight", highest <= cfg.in_flight, f"{highest} of {cfg.in_flight}"
    )


def check_throughput(cfg: FloodConfig, flood: dict[str, Any]) -> CheckResult:
    ratio = flood["throughput"].get("ratio")
    return CheckResult(
        f"throughput >= {cfg.throughput_floor:g} x bound",
        ratio is not None and ratio >= cfg.throughput_floor,
        f"ratio {ratio}",
    )


def check_receives(flood: dict[str, Any], limits: dict[str, int]) -> CheckResult:
    """A waiting upload must not burn receives towards its DLQ."""
    worst = {q: r["max"] for q, r in flood["receives"].items()}
    over = {q: n for q, n in worst.items() if q in limits and n > limits[q] - 1}
    return CheckResult("receives per message <= maxReceiveCount - 1", not over, str(over))


def check_slots_free(flood: dict[str, Any]) -> CheckResult:
    held = flood.get("slots", {}).get("held_at_end")
    return CheckResult("no slot held after the run", not held, str(held or ""))


def judge(cfg: FloodConfig, report: dict[str, Any]) -> None:
    """The flood's checks added to the report's (the soak's) and ``passed`` re-judged over all of them."""
    flood = report["flood"]
    limits = template_max_receive_count()
    results = [
        check_dlqs_empty(report),
        check_concurrency(cfg, flood),
        check_throughput(cfg, flood),
        check_receives(flood, limits),
        check_slots_free(flood),
    ]
    flood["max_receive_count"] = limits
    record(report, results)
