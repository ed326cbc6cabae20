"""Reconciliation of a run: every upload against the jobs table, the DLQs, and the emulator's create log and
credit ledger, then named checks over what was found (nothing lost, nothing left open, one create per upload
outside the listed ambiguous cases, the ledger equal to the table's credits outside them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, TERMINAL, job_id_from_project_name

from cutout_dev.harness.checks import CheckResult, record
from cutout_dev.harness.dlq import dlq_by_job
from cutout_dev.harness.faults import Injected, UploadRecord

RECORD_FIELDS = ("status", "error_code", "ambiguous", "project_id", "credits_charged", "credits_refunded")
Row = dict[str, Any]


@dataclass
class EmulatorCreates:
    """What the emulator's own records say per upload: creates and net credits by job id."""

    creates: Counter[str]
    foreign: list[str]  # creates for no upload of this run
    net_by_job: Counter[str]  # "?": credits of a project no upload created
    net_total: int
    debits: int
    refunds: int


@dataclass
class Findings:
    """Every upload classified: the rows each check and the report list."""

    statuses: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[str] = field(default_factory=Counter)
    lost: list[Row] = field(default_factory=list)
    dead_lettered: list[Row] = field(default_factory=list)
    non_terminal: list[Row] = field(default_factory=list)
    ambiguous: list[Row] = field(default_factory=list)
    duplicate_creates: list[Row] = field(default_factory=list)
    unexpected_creates: list[Row] = field(default_factory=list)
    ledger_explained: list[Row] = field(default_factory=list)
    ledger_unexplained: list[Row] = field(default_factory=list)
    creates_histogram: Counter[int] = field(default_factory=Counter)
    table_credits: int = 0


def emulator_creates(emulator_state: Any, upload_ids: set[str]) -> EmulatorCreates:
    """Creates and net credits per job, from the emulator's create log and ledger."""
    creates: Counter[str] = Counter()
    foreign: list[str] = []
    project_job: dict[str, str] = {}
    for rec in emulator_state.creates:
        name = rec.name or ""
        jid = job_id_from_project_name(name) or ""
        if jid in upload_ids:
            creates[jid] += 1
            project_job[rec.id] = jid
        else:
            foreign.append(f"{rec.id} name={name!r}")
    net_by_job: Counter[str] = Counter()
    for entry in emulator_state.ledger:
        jid = project_job.get(entry.project_id, "?")
        net_by_job[jid] += entry.amount if entry.kind == "debit" else -entry.amount
    return EmulatorCreates(
        creates=creates,
        foreign=foreign,
        net_by_job=net_by_job,
        net_total=int(emulator_state.net_credits_spent()),
        debits=sum(e.amount for e in emulator_state.ledger if e.kind == "debit"),
        refunds=sum(e.amount for e in emulator_state.ledger if e.kind == "refund"),
    )


def is_ambiguous(job: dict[str, Any] | None) -> bool:
    """A record whose create's outcome was (or still is) unknown."""
    return bool(job and (job.get("ambiguous") or job.get("error_code") == CREATE_OUTCOME_UNKNOWN))


def _why_ambiguous(job: dict[str, Any] | None, n: int, killed: bool) -> str:
    why = []
    if killed:
        why.append("worker killed between the create and the DynamoDB update")
    if job and job.get("error_message"):
        why.append(str(job["error_message"])[:160])
    elif job and job.get("ambiguous"):
        why.append("create outcome was unknown, later adopted by the completion")
    if n > 1:
        why.append(f"{n} creates")
    return "; ".join(why) or "ambiguous"


def _classify_record(found: Findings, row: Row, job: dict[str, Any] | None, in_dlq: list[str]) -> None:
    """Lost (no record and no dead-lettered event to redrive), dead-lettered, or still open."""
    status = row["status"]
    found.statuses[status] += 1
    if job and job.get("error_code"):
        found.error_codes[f"{status}:{job['error_code']}"] += 1
    if job is None:
        # No record at all: only a dead-lettered event (redrivable) keeps the upload from being lost.
        (found.dead_lettered if in_dlq else found.lost).append({**row, "dlq": in_dlq})
    elif status not in TERMINAL:
        found.non_terminal.append({**row, "dlq": in_dlq})


def _classify_creates(found: Findings, row: Row, job: dict[str, Any] | None, killed: bool) -> None:
    """The upload's creates: one, or an ambiguous case listed with why, or a duplicate / unexpected count."""
    n = row["creates"]
    found.creates_histogram[n] += 1
    ambiguous = is_ambiguous(job)
    if ambiguous or n > 1 or killed:
        found.ambiguous.append(
            {
                **row,
                "adopted": bool(job and job.get("project_id")),
                "why": _why_ambiguous(job, n, killed),
                "record": {k: (job or {}).get(k) for k in RECORD_FIELDS},
            }
        )
    if n > 1:
        found.duplicate_creates.append(row)
    elif n != 1 and not ambiguous and row["status"] != "rejected":
        found.unexpected_creates.append(row)


def _classify_credits(found: Findings, row: Row, job: dict[str, Any] | None, spent: int) -> None:
    """The credits the table recorded against the emulator's net for the upload; a difference explained or not."""
    recorded = int(job.get("credits_charged") or 0) if job else 0
    found.table_credits += recorded
    if recorded == spent:
        return
    diff = {**row, "emulator_net": spent, "table": recorded, "project_id": job.get("project_id") if job else None}
    if job and is_ambiguous(job) and not job.get("project_id"):
        diff["why"] = (
            "ambiguous create never adopted: the project's completion never reached the finalizer "
            "(no project id in the table, so nobody could poll it)"
        )
        found.ledger_explained.append(diff)
    else:
        found.ledger_unexplained.append(diff)


def classify(
    uploads: list[UploadRecord],
    jobs: list[dict[str, Any]],
    dlq_jobs: dict[str, list[str]],
    emulator: EmulatorCreates,
    injected: Injected,
) -> Findings:
    """Every upload, in order, into the findings."""
    job_by_id = {str(j["job_id"]): j for j in jobs}
    found = Findings()
    for u in uploads:
        job = job_by_id.get(u.job_id)
        row = {
            "key": u.key,
            "job_id": u.job_id,
            "status": str(job.get("status")) if job else "missing",
            "creates": emulator.creates[u.job_id],
        }
        _classify_record(found, row, job, dlq_jobs.get(u.job_id, []))
        _classify_creates(found, row, job, u.job_id in injected.killed)
        _classify_credits(found, row, job, emulator.net_by_job.get(u.job_id, 0))
    return found


@dataclass(frozen=True)
class Ledger:
    emulator: EmulatorCreates
    found: Findings

    @property
    def orphan_credits(self) -> int:
        return self.emulator.net_by_job.get("?", 0)

    @property
    def explained(self) -> int:
        return sum(int(d["emulator_net"]) - int(d["table"]) for d in self.found.ledger_explained)

    @property
    def ok(self) -> bool:
        return (
            not self.found.ledger_unexplained
            and self.orphan_credits == 0
            and self.emulator.net_total == self.found.table_credits + self.explained
        )


# The checks: one function each, over the findings.
def check_nothing_lost(found: Findings) -> CheckResult:
    return CheckResult("lost == 0", not found.lost, f"{len(found.lost)} lost")


def check_nothing_open(found: Findings) -> CheckResult:
    return CheckResult("non-terminal == 0", not found.non_terminal, f"{len(found.non_terminal)} non-terminal")


def check_nothing_dead_lettered(dlq_jobs: dict[str, list[str]], unmapped: list[str]) -> CheckResult:
    """Nothing of the run left in a DLQ once the run is over: a harness that redrives reads the DLQs after the
    redrive (whose uploads must then end terminal like any other: the lost and non-terminal checks); one that does
    not fails on any dead-lettered upload. A message no upload can be matched to fails too: it may be one."""
    return CheckResult(
        "no upload left in a DLQ",
        not dlq_jobs and not unmapped,
        f"{len(dlq_jobs)} upload(s), {len(unmapped)} unmatched message(s)",
    )


def check_one_create_each(found: Findings, emulator: EmulatorCreates) -> CheckResult:
    bad = len(found.duplicate_creates), len(found.unexpected_creates), len(emulator.foreign)
    return CheckResult(
        "creates per upload == 1 outside listed ambiguous cases",
        not any(bad),
        "duplicates {}, unexpected {}, foreign {}".format(*bad),
    )


def check_ledger(ledger: Ledger) -> CheckResult:
    return CheckResult(
        "ledger == table (outside listed ambiguous cases)",
        ledger.ok,
        f"emulator net {ledger.emulator.net_total}, table {ledger.found.table_credits}, explained {ledger.explained}",
    )


def reconcile(
    uploads: list[UploadRecord],
    jobs: list[dict[str, Any]],
    dlq: dict[str, list[str]],
    emulator_state: Any,
    injected: Injected,
) -> dict[str, Any]:
    """Every upload against the jobs table, the DLQs and the emulator's creates and ledger; the report with its
    ``checks`` ({name: ok}) and ``passed``."""
    dlq_jobs, unmapped_dlq = dlq_by_job(dlq, {u.key: u.job_id for u in uploads})
    emulator = emulator_creates(emulator_state, {u.job_id for u in uploads})
    found = classify(uploads, jobs, dlq_jobs, emulator, injected)
    ledger = Ledger(emulator, found)
    report: dict[str, Any] = {
        "uploads": len(uploads),
        "statuses": dict(sorted(found.statuses.items())),
        "error_codes": dict(sorted(found.error_codes.items())),
        "dlq": {q: len(b) for q, b in dlq.items()},
        "dlq_jobs": dlq_jobs,
        "dlq_unmapped": unmapped_dlq,
        "lost": found.lost,
        "dead_lettered_without_record": found.dead_lettered,
        "non_terminal": found.non_terminal,
        "creates_histogram": {str(k): v for k, v in sorted(found.creates_histogram.items())},
        "creates_total": sum(emulator.creates.values()),
        "foreign_creates": emulator.foreign,
        "duplicate_creates": found.duplicate_creates,
        "unexpected_creates": found.unexpected_creates,
        "ambiguous": found.ambiguous,
        "ledger": {
            "emulator_net_credits": emulator.net_total,
            "emulator_debits": emulator.debits,
            "emulator_refunds": emulator.refunds,
            "table_credits": found.table_credits,
            "explained_difference": ledger.explained,
            "explained": found.ledger_explained,
            "unexplained": found.ledger_unexplained,
            "orphan_credits": ledger.orphan_credits,
            "ok": ledger.ok,
        },
        "injected": {"duplicate_events": len(injected.duplicate_events), "killed_workers": len(injected.killed)},
    }
    record(
        report,
        [
            check_nothing_lost(found),
            check_nothing_open(found),
            check_nothing_dead_lettered(dlq_jobs, unmapped_dlq),
            check_one_create_each(found, emulator),
            check_ledger(ledger),
        ],
    )
    return report
