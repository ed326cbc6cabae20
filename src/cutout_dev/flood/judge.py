"""The flood's checks on top of the soak's reconciliation (lost, non-terminal, creates per upload, ledger), each a
named check over the run's report."""

from __future__ import annotations

from typing import Any

from cutout_dev.flood.config import FloodConfig, template_max_receive_count
from cutout_dev.harness import CheckResult, check_forced_sweep, known_reason, record
from cutout_dev.harness.slots import UNKNOWN_OUTCOME


def check_dlqs_empty(report: dict[str, Any]) -> CheckResult:
    """The flood does not redrive: a dead-lettered upload is a failure here."""
    depths = {q: n for q, n in report["dlq"].items() if n}
    return CheckResult("every DLQ empty", not depths, str(depths))


def plan_enforces_limit(cfg: FloodConfig, mode: str) -> bool:
    """Whether the emulator itself refuses what would exceed MaxJobsInFlight (reject mode, a plan no larger):
    then the projects it holds cannot outnumber the limit whatever Cutout does, and only its refusals tell."""
    return mode == "reject" and cfg.limit <= cfg.in_flight


def check_concurrency(cfg: FloodConfig, flood: dict[str, Any], mode: str) -> CheckResult:
    """Cutout keeps Magic Hour's open projects within MaxJobsInFlight. Where the emulator accepts every create
    (queue mode, or a plan larger than the limit) the open projects are counted; where its plan refuses beyond
    the limit, the refusals are: none, or each run of them preceded by a slot freed on an unknown outcome (the
    designed cost of that bound, cutout.admission.reconcile: the project may still be rendering)."""
    if not plan_enforces_limit(cfg, mode):
        highest = flood["max_concurrent_at_magic_hour"]
        return CheckResult(
            "max concurrent at Magic Hour <= MaxJobsInFlight",
            highest <= cfg.in_flight,
            f"{highest} of {cfg.in_flight}",
        )
    refused = int(flood.get("plan_refusals", 0))
    freed = int((flood.get("slots", {}).get("repairs", {}).get("reasons") or {}).get(UNKNOWN_OUTCOME, 0))
    return CheckResult(
        "creates refused by the plan == 0 outside slots freed on an unknown outcome",
        refused == 0 or freed > 0,
        f"{refused} refused by the plan of {cfg.limit}; {freed} slot(s) freed on an unknown outcome",
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


def check_repairs(flood: dict[str, Any]) -> CheckResult:
    """Every slot repair has a reason reconciliation emits and agrees with its holder's record at the end."""
    repairs = flood.get("slots", {}).get("repairs", {})
    unknown = [r for r in repairs.get("reasons") or {} if not known_reason(r)]
    disagreeing = flood.get("slots", {}).get("disagreeing", [])
    ok = repairs.get("log") is not None and not unknown and not disagreeing
    detail = "no function log" if repairs.get("log") is None else f"unknown {unknown}, disagreeing {disagreeing[:3]}"
    return CheckResult("every slot repair explained by its reason and its holder's record", ok, detail)


def judge(cfg: FloodConfig, report: dict[str, Any]) -> None:
    """The flood's checks added to the report's (the soak's) and ``passed`` re-judged over all of them."""
    flood = report["flood"]
    limits = template_max_receive_count()
    results = [
        check_dlqs_empty(report),
        check_concurrency(cfg, flood, str(report.get("mode", ""))),
        check_throughput(cfg, flood),
        check_receives(flood, limits),
        check_slots_free(flood),
        check_repairs(flood),
        check_forced_sweep(report.get("extra", {})),
    ]
    flood["max_receive_count"] = limits
    record(report, results)
