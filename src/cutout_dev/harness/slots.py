"""Slot accounting after a run (soak, flood): which admission slots are still held, and what reconciliation repaired.

Two readings, shared by the soak and the flood so both judge slots the same way:

* `held_slots`: the slot items as stored (`slot#0 … slot#N-1` in the jobs table, present while held, naming their
  `holder`; the contract of `cutout.admission.slots`), read in one strongly consistent BatchGetItem. After a run
  every slot must be free: a held one is a slot the pipeline leaked and reconciliation has not (yet) repaired.
* `slot_repairs`: what reconciliation freed during the run, from the functions' JSON log — each repair's
  "slot repaired: its holder no longer needs it" line (slot, job id, `reason`) and the `SlotsRepaired` metric
  (EMF lines). A repair is not a failure: it is the designed way out for a slot whose holder cannot give it back
  (a create whose outcome is unknown, a worker killed after its terminal write); `REASONS` says what each means.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutout.admission.slots import SLOT_PREFIX, slot_key
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, TERMINAL, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPAIR_LOG_MESSAGE = "slot repaired"  # the start of reconcile.py's log line for each repair
# `cutout.admission.reconcile.Reconciler.leak_reason`'s reasons, in one line each for a report.
REASONS = {
    "unknown_outcome_past_bound": (
        "a create whose outcome is unknown (a 500/reset after the request was sent, or a worker killed mid-create) "
        "and no project reported in within the bound: the create most likely never happened (or its project "
        "finished unseen, e.g. its webhook dropped and no project id recorded to poll)"
    ),
    "holder_missing": "the slot names a job with no record (records are written before a slot is taken): a leftover",
    "holder_holds_another_slot": "two racing dispatches of one job both took a slot: the loser's slot",
    "holder_waiting": "the job is back to waiting (its create provably did not happen) but kept its slot",
}
TERMINAL_REASON_PREFIX = "holder_"  # holder_complete, holder_error, ...: the job ended but never gave the slot back
# The reasons `leak_reason` gives for an ended holder: one per terminal status, and no other (a queued or rendering
# holder is never repaired: its poll bound and the sweeper end it).
TERMINAL_REASONS = frozenset(f"{TERMINAL_REASON_PREFIX}{status.value}" for status in TERMINAL)
UNKNOWN_OUTCOME = "unknown_outcome_past_bound"


def explain(reason: str) -> str:
    """One line on what a repair reason means (the reasons `cutout.admission.reconcile` logs)."""
    if reason in REASONS:
        return REASONS[reason]
    if reason in TERMINAL_REASONS:
        status = reason[len(TERMINAL_REASON_PREFIX) :]
        return (
            f"the job had ended {status} more than the grace before and still held the slot: a release that never "
            "happened (its ending path gives back the slot the job recorded; a slot taken and not recorded stays)"
        )
    return "not a reason cutout.admission.reconcile is known to log: read its leak_reason"


def known_reason(reason: str) -> bool:
    """A reason `cutout.admission.reconcile` emits: its named ones, or `holder_<a terminal status>`."""
    return reason in REASONS or reason in TERMINAL_REASONS


def repair_disagreements(repairs: list[dict[str, str]], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The repairs the holder's own record at the end contradicts: a slot freed as `unknown_outcome_past_bound`
    whose holder's record shows no unknown outcome, or as `holder_<status>` whose holder did not end <status> (a
    late result may still complete a timed_out job). The log line and the record are written by different code:
    a reconciliation that freed a slot its holder still needed shows here."""
    by_id = {str(j["job_id"]): j for j in jobs}
    wrong: list[dict[str, Any]] = []
    for repair in repairs:
        job = by_id.get(repair["job_id"])
        status = str(job.get("status")) if job else None
        reason = repair["reason"]
        if reason == UNKNOWN_OUTCOME:
            ok = bool(job and (job.get("ambiguous") or job.get("error_code") == CREATE_OUTCOME_UNKNOWN))
        elif reason in TERMINAL_REASONS:
            ended = reason[len(TERMINAL_REASON_PREFIX) :]
            ok = status == ended or (ended == JobStatus.TIMED_OUT.value and status == JobStatus.COMPLETE.value)
        else:
            continue  # holder_missing / holder_waiting / holder_holds_another_slot: a later record may differ
        if not ok:
            wrong.append({**repair, "record": {k: (job or {}).get(k) for k in ("status", "error_code", "ambiguous")}})
    return wrong


def held_slots(ddb: DynamoDBClient, table: str, slots: int) -> dict[str, str]:
    """{slot id: holder} of the held slots among `slot#0 … slot#<slots-1>`, in one consistent BatchGetItem."""
    keys = [slot_key(i) for i in range(slots)]
    resp = ddb.batch_get_item(
        RequestItems={table: {"Keys": [{"job_id": {"S": k}} for k in keys], "ConsistentRead": True}}
    )
    held = {
        item["job_id"]["S"]: item["holder"]["S"]
        for item in resp.get("Responses", {}).get(table, [])
        if item["job_id"]["S"].startswith(SLOT_PREFIX) and "holder" in item
    }
    return dict(sorted(held.items(), key=lambda kv: int(kv[0][len(SLOT_PREFIX) :])))


def slot_repairs(log_path: Path | None) -> dict[str, Any]:
    """What admission's reconciliation repaired, from the functions' JSON log: reasons and the SlotsRepaired metric."""
    reasons: Counter[str] = Counter()
    repairs: list[dict[str, str]] = []
    metric = 0
    if log_path is None or not log_path.is_file():
        return {"log": None}
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if "SlotsRepaired" not in line and REPAIR_LOG_MESSAGE not in line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and str(doc.get("message", "")).startswith(REPAIR_LOG_MESSAGE):
                reason = str(doc.get("reason"))
                reasons[reason] += 1
                repairs.append({"slot": str(doc.get("slot")), "job_id": str(doc.get("job_id")), "reason": reason})
            elif isinstance(doc, dict) and isinstance(doc.get("SlotsRepaired"), (int, float, list)):
                value = doc["SlotsRepaired"]
                metric += int(sum(value) if isinstance(value, list) else value)
    return {
        "log": str(log_path),
        "repaired_metric_sum": metric,
        "reasons": dict(reasons),
        "explained": {r: explain(r) for r in reasons},
        "repairs": repairs,
    }
