"""Admission's slots after a soak: waiting for the legitimately held ones to be freed, and the accounting (held at
the end, repairs and their reasons) added to the report as checks."""

from __future__ import annotations

import time
from typing import Any

from cutout.admission.reconcile import DEFAULT_UNKNOWN_OUTCOME_HOLD

from cutout_dev.harness.checks import CheckResult, record
from cutout_dev.harness.slots import held_slots, known_reason, repair_disagreements
from cutout_dev.local_stack import LocalStack
from cutout_dev.soak.config import SoakConfig


def slot_bound_seconds(cfg: SoakConfig) -> float:
    """How long a slot may legitimately stay held once every job is terminal: a create of unknown outcome keeps
    its slot for the unknown-outcome bound (UnknownOutcomeHoldSeconds after the outcome became unknown, or after
    a dead worker's claim lease, cutout.admission.reconcile), then the next admission tick frees it; two ticks and a
    margin for a busy machine."""
    hold = DEFAULT_UNKNOWN_OUTCOME_HOLD.total_seconds() + cfg.submit_lease_seconds
    return hold + 2 * cfg.schedule_interval_seconds + 30


def wait_slots_free(stack: LocalStack, cfg: SoakConfig) -> dict[str, str]:
    """The slots still held ({slot: holder}) once none are, or when the bound has passed."""
    ddb, table, slots = stack.client("dynamodb"), stack.endpoints.table, int(cfg.max_jobs_in_flight)
    deadline = time.monotonic() + slot_bound_seconds(cfg)
    while True:
        held = held_slots(ddb, table, slots)
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(1)


def account_slots(
    report: dict[str, Any],
    held: dict[str, str],
    repairs: dict[str, Any],
    jobs: list[dict[str, Any]],
    creates: dict[str, int],
) -> None:
    """Add admission's slot accounting to `report`: slots held at the end (must be none) and the repairs
    reconciliation made during the run, each with its reason and what became of its holder; re-judge."""
    by_id = {str(j["job_id"]): j for j in jobs}

    def outcome(job_id: str) -> str:
        job = by_id.get(job_id)
        if job is None:
            return "no record"
        return ":".join(str(x) for x in (job.get("status"), job.get("error_code")) if x)

    # Whether the holder's create really happened (`creates`: the emulator's log per job id): for a create of
    # unknown outcome, the difference between "never created" and "created, but its finish went unseen".
    listed = [
        {**r, "holder_outcome": outcome(r["job_id"]), "holder_creates": creates.get(r["job_id"], 0)}
        for r in repairs.get("repairs", [])
    ]
    report["slots"] = {
        "held_at_end": [{"slot": k, "holder": v, "holder_outcome": outcome(v)} for k, v in held.items()],
        "repaired": len(listed),
        "repaired_metric_sum": repairs.get("repaired_metric_sum"),
        "reasons": repairs.get("reasons", {}),
        "explained": repairs.get("explained", {}),
        "repairs": listed,
        "disagreeing": repair_disagreements(listed, jobs),
        "log": repairs.get("log"),
    }
    record(
        report,
        [
            check_no_slot_held(held),
            check_repairs_explained(repairs),
            check_repairs_agree(report["slots"]["disagreeing"]),
        ],
    )


def check_no_slot_held(held: dict[str, str]) -> CheckResult:
    return CheckResult("no slot held at the end", not held, ", ".join(f"{k} {v}" for k, v in held.items()))


def check_repairs_explained(repairs: dict[str, Any]) -> CheckResult:
    """Every repair's reason is one reconciliation documents (and the functions' log was there to read)."""
    reasons = repairs.get("reasons", {})
    unknown = [r for r in reasons if not known_reason(r)]
    ok = repairs.get("log") is not None and not unknown
    return CheckResult(
        "every slot repair has a documented reason",
        ok,
        "no function log" if repairs.get("log") is None else ", ".join(unknown),
    )


def check_repairs_agree(disagreeing: list[dict[str, Any]]) -> CheckResult:
    """Each repair's reason agrees with its holder's own record at the end (harness.slots.repair_disagreements)."""
    return CheckResult(
        "every slot repair agrees with its holder's record",
        not disagreeing,
        ", ".join(f"{d['slot']} {d['job_id'][:12]} {d['reason']} but {d['record']}" for d in disagreeing[:5]),
    )
