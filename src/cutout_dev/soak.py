"""Fault-injection soak: hundreds of uploads through the local stack while everything that can go wrong does.

    python -m cutout_dev.soak                      # make soak: 320 uploads, the full fault mix, < 10 minutes
    python -m cutout_dev.soak --uploads 40 --json -  # smaller, results as JSON on stdout

What is injected (every roll seeded, so a run replays):

* Magic Hour (the emulator), on create and GET: 10 % 5xx (500/502/503), 10 % 429, 3 % connection resets,
  latency spikes; 5 % render errors (refunded), 1 % canceled, 1 % never completing; 20 % of webhooks dropped,
  10 % delivered twice; 10 % of download URLs handed out already expired.
* S3/EventBridge: 10 % of "Object Created" events delivered twice (the same message body sent to the ingest queue
  again, some at once — concurrent duplicates — some a few seconds later).
* Lambda: a few submit workers are killed between the Magic Hour create and the DynamoDB update (a
  ``BaseException`` raised from the submit service's ``after_create`` hook: no ``except Exception`` cleanup runs,
  the batch is not deleted and comes back after the visibility timeout, as when Lambda kills a sandbox).

Then it waits for quiescence (queues empty, no invocation running, emulator idle), runs the sweeper once for
anything still open, lists and redrives the dead-letter queues, and reconciles every upload against the jobs
table, the DLQs and the emulator's create log and credit ledger. Then it accounts for admission's slots
(``cutout_dev.slot_accounting``): the slots still held once the run is over (waiting, if need be, for the
unknown-outcome bound and the next admission tick), and every repair reconciliation made during the run, with its
reason. Exit status 0 only when: lost = 0, non-terminal = 0, every upload has exactly one create except the
listed ambiguous cases (never more than one), the emulator's net credits equal the credits recorded in the jobs
table except for the listed ambiguous creates the table could not know about, no slot is held at the end, and
every repair has a reason reconciliation documents.

Timings are shortened through the stack's options (visibility timeouts, poll schedule, emulator render time) and
one setting the template hard-codes (the submit lease, given to the submit function through its ``configure``
seam, like the failure hook and the sweeper's clock).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutout.admission.reconcile import DEFAULT_UNKNOWN_OUTCOME_HOLD
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, TERMINAL, job_id_from_project_name
from PIL import Image

from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.slot_accounting import explain, held_slots, known_reason, slot_repairs

DEFAULT_RESULTS = PROJECT_ROOT / "bench" / "soak-results.json"
SUBMIT = "SubmitFunction"
SWEEPER = "SweeperFunction"
# The functions that reconcile in-flight slots, and so read the submit lease (reconcile.py: a `submitting` claim
# older than the lease has lost its worker). The template sets the submit's and the others default to the same
# value (a template test checks it); a harness that shortens it must shorten it for all of them, or a slot held by
# a killed worker is kept for the template's 120 s where the submit already gave up after the short lease.
LEASE_READERS = ("PollFunction", "FinalizeFunction", SWEEPER)
INGEST_QUEUE = "IngestQueue"
RECORD_FIELDS = ("status", "error_code", "ambiguous", "project_id", "credits_charged", "credits_refunded")


class WorkerKilled(BaseException):
    """Lambda killing the sandbox mid-invocation: not an Exception, so no `except Exception` cleanup runs."""


# ---------------------------------------------------------------------------------------------------------
@dataclass
class SoakConfig:
    uploads: int = 320
    seed: int = 20250611
    # Emulator faults (EmulatorConfig fields); the generic transport faults hit create and GET.
    rate_5xx: float = 0.10
    rate_429: float = 0.10
    rate_reset: float = 0.03
    render_error_rate: float = 0.05
    latency_seconds: float = 0.01
    latency_spike_rate: float = 0.05
    latency_spike_seconds: float = 1.0
    cancel_rate: float = 0.01
    never_complete_rate: float = 0.01
    drop_webhook_rate: float = 0.20
    duplicate_webhook_rate: float = 0.10
    expired_download_rate: float = 0.10
    fault_endpoints: tuple[str, ...] = ("create", "get")
    render_seconds: float = 0.3
    # Pipeline faults injected by the harness.
    duplicate_event_rate: float = 0.10
    kill_rate: float = 0.03
    # Timings. The submit lease must outlive one create (spikes + 429 back-off) and be shorter than the ingest
    # queue's visibility timeout, so a killed worker's claim is stale by the time its batch comes back.
    ingest_visibility_seconds: int = 15
    submit_lease_seconds: int = 10
    visibility_seconds: int = 4  # poll and completion queues
    poll_first_delay_seconds: int = 2
    poll_max_delay_seconds: int = 5
    poll_max_wait_seconds: int = 40
    concurrency: str = "4"  # the template's MaximumConcurrency parameter (per SQS event source)
    # The template's MaxJobsInFlight. The soak's stand-in has no plan limit and a tenth of its creates end with an
    # unknown outcome (each keeps its slot until evidence or its bound), so the soak runs with more slots than a
    # Creator plan's 3: admission still makes most uploads wait, and the faults do not starve it.
    max_jobs_in_flight: str = "10"
    upload_threads: int = 4
    timeout_seconds: float = 540.0  # hard limit for waiting (the whole run stays under 10 minutes)
    redrive: bool = True
    results_path: Path | None = DEFAULT_RESULTS
    function_log: Path | None = Path(tempfile.gettempdir()) / "cutout-soak-functions.log"
    progress: bool = True
    # Local period of the scheduled functions: the admission tick (slot reconciliation, dispatch of waiting jobs)
    # is every minute on AWS; the soak's timings are compressed, so is its tick.
    schedule_interval_seconds: float = 3.0

    def emulator(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rate_5xx": self.rate_5xx,
            "rate_429": self.rate_429,
            "rate_reset": self.rate_reset,
            "render_error_rate": self.render_error_rate,
            "latency_seconds": self.latency_seconds,
            "latency_spike_rate": self.latency_spike_rate,
            "latency_spike_seconds": self.latency_spike_seconds,
            "cancel_rate": self.cancel_rate,
            "never_complete_rate": self.never_complete_rate,
            "drop_webhook_rate": self.drop_webhook_rate,
            "duplicate_webhook_rate": self.duplicate_webhook_rate,
            "expired_download_rate": self.expired_download_rate,
            "fault_endpoints": self.fault_endpoints,
            "render_seconds": self.render_seconds,
            "queue_seconds": 0.05,
            "webhook_base_delay_seconds": 0.2,
        }


@dataclass
class UploadRecord:
    index: int
    key: str
    etag: str
    job_id: str
    duplicate_event: bool
    kill_target: bool


@dataclass
class Injected:
    """What the harness did to the pipeline, as it happened."""

    duplicate_events: list[str] = field(default_factory=list)  # job ids whose event was sent twice
    killed: list[str] = field(default_factory=list)  # job ids whose worker died after the create
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class SoakResult:
    passed: bool
    report: dict[str, Any]
    text: str


# ---------------------------------------------------------------------------------------------------------
def _image(rng: random.Random, fmt: str) -> bytes:
    w, h = rng.randint(32, 96), rng.randint(32, 96)
    background = (rng.randint(200, 255), rng.randint(200, 255), rng.randint(200, 255))
    subject = (rng.randint(0, 120), rng.randint(0, 120), rng.randint(0, 120))
    img = Image.new("RGB", (w, h), background)
    img.paste(subject, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


_NAMES = ("photo", "red flower", "sku 1234+blue", "café", "shoe (side)", "item")


def _plan(cfg: SoakConfig, rng: random.Random) -> list[tuple[str, bytes, bool, bool]]:
    """(relative key, bytes, duplicate its event, kill its worker) per upload; deterministic from the seed."""
    plan = []
    for i in range(cfg.uploads):
        fmt = "PNG" if i % 3 else "JPEG"
        ext = "png" if fmt == "PNG" else "jpg"
        name = _NAMES[i % len(_NAMES)]
        key = f"soak/{i // 50:02d}/{i:04d}-{name}.{ext}"
        plan.append((key, _image(rng, fmt), rng.random() < cfg.duplicate_event_rate, rng.random() < cfg.kill_rate))
    return plan


# ---------------------------------------------------------------------------------------------------------
def _inject(stack: LocalStack, cfg: SoakConfig, uploads: dict[str, UploadRecord], injected: Injected) -> None:
    """Wire the harness's faults into the running stack: duplicate S3 events, killed workers, a short lease."""
    by_job = {u.job_id: u for u in uploads.values()}

    def kill_after_create(job_id: str, project_id: str) -> None:
        upload = by_job.get(job_id)
        if upload is not None and upload.kill_target:
            with injected.lock:
                first = job_id not in injected.killed
                if first:
                    injected.killed.append(job_id)
            if first:
                raise WorkerKilled(f"worker killed after creating {project_id} for {job_id}")

    submit = stack.functions[SUBMIT]
    submit.configure(settings=_short_lease(submit, cfg), after_create=kill_after_create)
    for name in LEASE_READERS:
        stack.functions[name].configure(settings=_short_lease(stack.functions[name], cfg))

    sqs = stack.client("sqs")
    ingest_url = stack.endpoints.queues[INGEST_QUEUE]
    dup_rng = random.Random(f"{cfg.seed}:duplicate-delay")
    by_key = {u.key: u for u in uploads.values()}

    def duplicate_events(event: Any) -> None:
        for record in (event or {}).get("Records", []) if isinstance(event, dict) else []:
            try:
                doc = json.loads(record.get("body", ""))
                key = doc["detail"]["object"]["key"]
            except (ValueError, KeyError, TypeError):
                continue
            upload = by_key.get(key)
            if upload is None or not upload.duplicate_event:
                continue
            with injected.lock:
                if upload.job_id in injected.duplicate_events:
                    continue
                injected.duplicate_events.append(upload.job_id)
                delay = dup_rng.choice((0, 0, 1, 3, 6))
            # The very same body again: what an at-least-once S3/EventBridge delivery looks like to the queue.
            sqs.send_message(QueueUrl=ingest_url, MessageBody=record["body"], DelaySeconds=delay)

    stack.functions[SUBMIT].fault = duplicate_events


# ---------------------------------------------------------------------------------------------------------
def _say(cfg: SoakConfig, text: str) -> None:
    if cfg.progress:
        print(text, file=sys.stderr, flush=True)


def _wait_quiet(stack: LocalStack, deadline: float, settle: float = 2.0) -> bool:
    """True once the stack has stayed quiescent for `settle` seconds; False at the deadline."""
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if stack.quiescent():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.25)
    return False


def _wait(stack: LocalStack, cfg: SoakConfig, job_ids: set[str], deadline: float, started: float) -> bool:
    """Wait until every upload's job is terminal and the stack is quiescent (or only stuck jobs remain)."""
    last_print = 0.0
    while time.monotonic() < deadline:
        statuses = stack.job_statuses()
        open_ids = [i for i in job_ids if statuses.get(i) not in TERMINAL]
        now = time.monotonic()
        if now - last_print >= 10:
            counts = Counter(status for i, status in statuses.items() if i in job_ids)
            depths = {k: v for k, v in stack.queue_depths().items() if v}
            _say(
                cfg,
                f"[{now - started:6.1f}s] jobs {dict(sorted(counts.items()))} open {len(open_ids)} "
                f"queues {depths or '{}'}",
            )
            last_print = now
        if not open_ids and _wait_quiet(stack, min(deadline, time.monotonic() + 10)):
            return True
        if open_ids and stack.quiescent() and _wait_quiet(stack, min(deadline, time.monotonic() + 10), settle=5):
            # Nothing is moving and jobs are still open: only the sweeper will resolve them.
            return False
        time.sleep(0.5)
    return False


def _short_lease(function: Any, cfg: SoakConfig) -> Any:
    """The settings the template gave `function` (its cold start's), with the harness's short submit lease."""
    return function.configure().settings._replace(submit_lease_seconds=cfg.submit_lease_seconds)


@contextlib.contextmanager
def _clock_ahead(stack: LocalStack, seconds: float, cfg: SoakConfig) -> Iterator[None]:
    """Give the sweeper a clock `seconds` ahead, so "stuck past the limit" is reached now, not in minutes."""

    def shifted() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=seconds)

    sweeper = stack.functions[SWEEPER]
    settings = _short_lease(sweeper, cfg)
    sweeper.configure(settings=settings, clock=shifted)
    try:
        yield
    finally:
        sweeper.configure(settings=settings)


def _run_sweeper(stack: LocalStack, cfg: SoakConfig) -> Any:
    with _clock_ahead(stack, cfg.poll_max_wait_seconds + 600 + 60, cfg):
        return stack.functions[SWEEPER].invoke({"source": "soak", "detail-type": "Scheduled Event"})


# ---------------------------------------------------------------------------------------------------------
def _dlq_contents(stack: LocalStack) -> dict[str, list[str]]:
    """Every message body in every DLQ (made visible again right away, so a redrive can move them)."""
    sqs = stack.client("sqs")
    contents: dict[str, list[str]] = {}
    for dlq in stack.dead_letter_queues():
        url = stack.endpoints.queues[dlq]
        bodies: list[str] = []
        handles: list[str] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            ).get("Messages", [])
            if not batch:
                break
            bodies.extend(m["Body"] for m in batch)
            handles.extend(m["ReceiptHandle"] for m in batch)
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        contents[dlq] = bodies
    return contents


def _dlq_job_id(body: str, by_key: dict[str, UploadRecord]) -> str | None:
    """Map a dead-lettered message back to the upload's job id (ingest: the S3 key; others: the job id)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("job_id"), str):
        return str(doc["job_id"])
    detail = doc.get("detail")
    if isinstance(detail, dict):
        key = (detail.get("object") or {}).get("key")
        if isinstance(key, str) and key in by_key:
            return by_key[key].job_id
    project = doc.get("project")
    if isinstance(project, dict):
        return job_id_from_project_name(project.get("name"))
    return None


# ---------------------------------------------------------------------------------------------------------
def reconcile(
    uploads: list[UploadRecord],
    jobs: list[dict[str, Any]],
    dlq: dict[str, list[str]],
    emulator_state: Any,
    injected: Injected,
) -> dict[str, Any]:
    """Every upload against the jobs table, the DLQs and the emulator's creates and ledger."""
    by_key = {u.key: u for u in uploads}
    job_by_id = {str(j["job_id"]): j for j in jobs}
    upload_ids = {u.job_id for u in uploads}

    dlq_jobs: dict[str, list[str]] = {}
    unmapped_dlq: list[str] = []
    for queue, bodies in dlq.items():
        for body in bodies:
            jid = _dlq_job_id(body, by_key)
            if jid is None:
                unmapped_dlq.append(f"{queue}: {body[:200]}")
            else:
                dlq_jobs.setdefault(jid, []).append(queue)

    # Creates and net credits per job, from the emulator's own records.
    creates: Counter[str] = Counter()
    foreign_creates: list[str] = []
    project_job: dict[str, str] = {}
    for rec in emulator_state.creates:
        name = rec.name or ""
        jid = job_id_from_project_name(name) or ""
        if jid in upload_ids:
            creates[jid] += 1
            project_job[rec.id] = jid
        else:
            foreign_creates.append(f"{rec.id} name={name!r}")
    net_by_job: Counter[str] = Counter()
    for entry in emulator_state.ledger:
        jid = project_job.get(entry.project_id, "?")
        net_by_job[jid] += entry.amount if entry.kind == "debit" else -entry.amount
    emulator_net = int(emulator_state.net_credits_spent())

    statuses: Counter[str] = Counter()
    error_codes: Counter[str] = Counter()
    lost: list[dict[str, Any]] = []
    dead_lettered: list[dict[str, Any]] = []
    non_terminal: list[dict[str, Any]] = []
    ambiguous: list[dict[str, Any]] = []
    duplicate_creates: list[dict[str, Any]] = []
    unexpected_creates: list[dict[str, Any]] = []
    ledger_explained: list[dict[str, Any]] = []
    ledger_unexplained: list[dict[str, Any]] = []
    creates_histogram: Counter[int] = Counter()
    table_credits = 0
    for u in uploads:
        job = job_by_id.get(u.job_id)
        status = str(job.get("status")) if job else "missing"
        in_dlq = dlq_jobs.get(u.job_id, [])
        statuses[status] += 1
        if job and job.get("error_code"):
            error_codes[f"{status}:{job['error_code']}"] += 1
        row = {"key": u.key, "job_id": u.job_id, "status": status, "creates": creates[u.job_id]}
        if job is None:
            # No record at all: only a dead-lettered event (redrivable) keeps the upload from being lost.
            (dead_lettered if in_dlq else lost).append({**row, "dlq": in_dlq})
        elif status not in TERMINAL:
            non_terminal.append({**row, "dlq": in_dlq})
        n = creates[u.job_id]
        creates_histogram[n] += 1
        is_ambiguous = bool(job and (job.get("ambiguous") or job.get("error_code") == CREATE_OUTCOME_UNKNOWN))
        killed = u.job_id in injected.killed
        if is_ambiguous or n > 1 or killed:
            why = []
            if killed:
                why.append("worker killed between the create and the DynamoDB update")
            if job and job.get("error_message"):
                why.append(str(job["error_message"])[:160])
            elif job and job.get("ambiguous"):
                why.append("create outcome was unknown, later adopted by the completion")
            if n > 1:
                why.append(f"{n} creates")
            ambiguous.append(
                {
                    **row,
                    "adopted": bool(job and job.get("project_id")),
                    "why": "; ".join(why) or "ambiguous",
                    "record": {k: (job or {}).get(k) for k in RECORD_FIELDS},
                }
            )
        if n > 1:
            duplicate_creates.append(row)
        elif n != 1 and not is_ambiguous and status != "rejected":
            unexpected_creates.append(row)
        recorded = int(job.get("credits_charged") or 0) if job else 0
        table_credits += recorded
        spent = net_by_job.get(u.job_id, 0)
        if recorded != spent:
            diff = {
                **row,
                "emulator_net": spent,
                "table": recorded,
                "project_id": job.get("project_id") if job else None,
            }
            if job and is_ambiguous and not job.get("project_id"):
                diff["why"] = (
                    "ambiguous create never adopted: the project's completion never reached the finalizer "
                    "(no project id in the table, so nobody could poll it)"
                )
                ledger_explained.append(diff)
            else:
                ledger_unexplained.append(diff)
    orphan_credits = net_by_job.get("?", 0)
    explained = sum(int(d["emulator_net"]) - int(d["table"]) for d in ledger_explained)
    ledger_ok = not ledger_unexplained and orphan_credits == 0 and emulator_net == table_credits + explained
    report = {
        "uploads": len(uploads),
        "statuses": dict(sorted(statuses.items())),
        "error_codes": dict(sorted(error_codes.items())),
        "dlq": {q: len(b) for q, b in dlq.items()},
        "dlq_jobs": dlq_jobs,
        "dlq_unmapped": unmapped_dlq,
        "lost": lost,
        "dead_lettered_without_record": dead_lettered,
        "non_terminal": non_terminal,
        "creates_histogram": {str(k): v for k, v in sorted(creates_histogram.items())},
        "creates_total": sum(creates.values()),
        "foreign_creates": foreign_creates,
        "duplicate_creates": duplicate_creates,
        "unexpected_creates": unexpected_creates,
        "ambiguous": ambiguous,
        "ledger": {
            "emulator_net_credits": emulator_net,
            "emulator_debits": sum(e.amount for e in emulator_state.ledger if e.kind == "debit"),
            "emulator_refunds": sum(e.amount for e in emulator_state.ledger if e.kind == "refund"),
            "table_credits": table_credits,
            "explained_difference": explained,
            "explained": ledger_explained,
            "unexplained": ledger_unexplained,
            "orphan_credits": orphan_credits,
            "ok": ledger_ok,
        },
        "injected": {"duplicate_events": len(injected.duplicate_events), "killed_workers": len(injected.killed)},
    }
    checks = {
        "lost == 0": not lost,
        "non-terminal == 0": not non_terminal,
        "creates per upload == 1 outside listed ambiguous cases": not (
            duplicate_creates or unexpected_creates or foreign_creates
        ),
        "ledger == table (outside listed ambiguous cases)": ledger_ok,
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    return report


def _slot_bound_seconds(cfg: SoakConfig) -> float:
    """How long a slot may legitimately stay held once every job is terminal: a create of unknown outcome keeps
    its slot for the unknown-outcome bound (UnknownOutcomeHoldSeconds after the outcome became unknown, or after
    a dead worker's claim lease, cutout.admission.reconcile), then the next admission tick frees it; two ticks and a
    margin for a busy machine."""
    hold = DEFAULT_UNKNOWN_OUTCOME_HOLD.total_seconds() + cfg.submit_lease_seconds
    return hold + 2 * cfg.schedule_interval_seconds + 30


def _wait_slots_free(stack: LocalStack, cfg: SoakConfig) -> dict[str, str]:
    """The slots still held ({slot: holder}) once none are, or when the bound has passed."""
    ddb, table, slots = stack.client("dynamodb"), stack.endpoints.table, int(cfg.max_jobs_in_flight)
    deadline = time.monotonic() + _slot_bound_seconds(cfg)
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
        "log": repairs.get("log"),
    }
    report["checks"]["no slot held at the end"] = not held
    report["checks"]["every slot repair has a documented reason"] = repairs.get("log") is not None and all(
        known_reason(r) for r in repairs.get("reasons", {})
    )
    report["passed"] = all(report["checks"].values())


# ---------------------------------------------------------------------------------------------------------
def _fmt_counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _pct(rate: float) -> str:
    return f"{rate * 100:g} %"


def _slot_lines(report: dict[str, Any], cfg: SoakConfig) -> list[str]:
    """Admission's slot accounting: held at the end, and each kind of repair with what it means."""
    sl = report.get("slots")
    if sl is None:
        return []
    ok = {True: "OK", False: "FAIL"}
    held = sl["held_at_end"]
    lines = [
        f"{'slots held at the end':<36}{len(held)} of {cfg.max_jobs_in_flight:<5}"
        f"{ok[report['checks']['no slot held at the end']]}"
        + (" " + ", ".join(f"{h['slot']} {h['holder'][:12]} ({h['holder_outcome']})" for h in held) if held else ""),
        f"{'slots repaired by reconciliation':<36}{sl['repaired']:<10}"
        f"(SlotsRepaired metric sum {sl['repaired_metric_sum']})  "
        f"{ok[report['checks']['every slot repair has a documented reason']]}",
    ]
    for reason, n in sorted(sl["reasons"].items(), key=lambda kv: -kv[1]):
        outcomes = Counter(r["holder_outcome"] for r in sl["repairs"] if r["reason"] == reason)
        lines.append(f"  {reason} {n}: {sl['explained'].get(reason) or explain(reason)}")
        created = Counter(f"{r['holder_creates']} create(s)" for r in sl["repairs"] if r["reason"] == reason)
        lines.append(
            f"    holders ended: {_fmt_counts(dict(outcomes.most_common()))}; at Magic Hour (emulator log): "
            f"{_fmt_counts(dict(created.most_common()))}"
        )
    return lines


def render(report: dict[str, Any], cfg: SoakConfig, elapsed: float, extra: dict[str, Any]) -> str:
    ok = {True: "OK", False: "FAIL"}
    led = report["ledger"]
    pct = _pct
    hist = report["creates_histogram"]
    lines = [
        f"Cutout fault-injection soak — seed {cfg.seed}, {report['uploads']} uploads, {elapsed:.0f} s",
        (
            f"injected: Magic Hour 5xx {pct(cfg.rate_5xx)}, 429 {pct(cfg.rate_429)}, resets {pct(cfg.rate_reset)} "
            f"(on {'+'.join(cfg.fault_endpoints)}); render errors {pct(cfg.render_error_rate)}; latency spikes "
            f"{pct(cfg.latency_spike_rate)} x {cfg.latency_spike_seconds:g} s; canceled {pct(cfg.cancel_rate)}; "
            f"never complete {pct(cfg.never_complete_rate)}; webhooks dropped {pct(cfg.drop_webhook_rate)}, "
            f"duplicated {pct(cfg.duplicate_webhook_rate)}; expired download URLs {pct(cfg.expired_download_rate)}"
        ),
        (
            f"          S3 events delivered twice: {report['injected']['duplicate_events']}; "
            f"workers killed between create and DynamoDB update: {report['injected']['killed_workers']}"
        ),
        "-" * 100,
        f"{'uploads':<36}{report['uploads']}",
        f"{'terminal states':<36}{_fmt_counts(report['statuses'])}",
        f"{'  error codes':<36}{_fmt_counts(report['error_codes'])}",
        f"{'dead-letter queues (before redrive)':<36}{_fmt_counts(extra.get('dlq_before_redrive', report['dlq']))}",
        f"{'dead-letter queues (final)':<36}{_fmt_counts(report['dlq'])}",
        f"{'sweeper run for stuck jobs':<36}{extra.get('sweeper', 'not needed')}",
        f"{'lost':<36}{len(report['lost']):<10}{ok[not report['lost']]}",
        f"{'non-terminal':<36}{len(report['non_terminal']):<10}{ok[not report['non_terminal']]}",
        (
            f"{'creates per upload':<36}"
            + ", ".join(f"{n} create(s): {c}" for n, c in hist.items())
            + f"  (total creates {report['creates_total']})"
        ),
        (
            f"{'  outside ambiguous cases':<36}duplicates {len(report['duplicate_creates'])}, "
            f"unexpected {len(report['unexpected_creates'])}, foreign {len(report['foreign_creates'])}  "
            f"{ok[report['checks']['creates per upload == 1 outside listed ambiguous cases']]}"
        ),
        f"{'ambiguous cases (listed below)':<36}{len(report['ambiguous'])}",
        (
            f"{'emulator credit ledger (net)':<36}{led['emulator_net_credits']:<10}"
            f"(debits {led['emulator_debits']} - refunds {led['emulator_refunds']})"
        ),
        (
            f"{'credits in the jobs table':<36}{led['table_credits']:<10}"
            f"difference {led['emulator_net_credits'] - led['table_credits']} = explained "
            f"{led['explained_difference']} (unadopted ambiguous creates) + unexplained "
            f"{led['emulator_net_credits'] - led['table_credits'] - led['explained_difference']}  {ok[led['ok']]}"
        ),
    ]
    lines += _slot_lines(report, cfg)
    if "iam" in report:
        checked = ", ".join(
            f"{f.removesuffix('Function').lower()} {n}" for f, n in sorted(report["iam"]["checked"].items())
        )
        refused = sum(report["iam"]["refused"].values())
        lines.append(f"{'AWS calls checked against IAM':<36}{checked}; refused {refused}  {ok[not refused]}")
        lines.extend(f"  REFUSED {r['principal']} {r['operation']}: {r['why']}" for r in report["iam"]["refusals"])
    lines.append("-" * 100)
    if report["ambiguous"]:
        lines.append("ambiguous cases:")
        for a in report["ambiguous"]:
            adopted = "adopted" if a["adopted"] else "not adopted"
            lines.append(
                f"  {a['job_id'][:12]} {a['key']!r:<38} {a['status']:<9} creates {a['creates']}  {adopted:<11} "
                f"{a['why']}"
            )
    for title, rows in (
        ("LOST", report["lost"]),
        ("NON-TERMINAL", report["non_terminal"]),
        ("DUPLICATE CREATES", report["duplicate_creates"]),
        ("UNEXPECTED CREATE COUNTS", report["unexpected_creates"]),
        ("LEDGER MISMATCHES", led["unexplained"]),
        ("LEDGER EXPLAINED", led["explained"]),
    ):
        if rows:
            lines.append(f"{title}:")
            lines.extend(f"  {json.dumps(r, default=str)}" for r in rows)
    if report["foreign_creates"]:
        lines.append("CREATES FOR NO UPLOAD: " + ", ".join(report["foreign_creates"]))
    lines.append("RESULT: " + ("PASS" if report["passed"] else "FAIL"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
def run(cfg: SoakConfig) -> SoakResult:
    started = time.monotonic()
    # moto's and the Function URL's werkzeug servers log every request.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    rng = random.Random(cfg.seed)
    plan = _plan(cfg, rng)
    stack_cfg = LocalStackConfig(
        webhooks=True,
        emulator=cfg.emulator(),
        schedule_interval_seconds=cfg.schedule_interval_seconds,
        parameters={
            "PollFirstDelaySeconds": str(cfg.poll_first_delay_seconds),
            "PollMaxDelaySeconds": str(cfg.poll_max_delay_seconds),
            "PollMaxWaitSeconds": str(cfg.poll_max_wait_seconds),
            "PollMaxAttempts": "100",
            "MaximumConcurrency": cfg.concurrency,
            "MaxJobsInFlight": cfg.max_jobs_in_flight,
        },
        visibility_timeout_seconds={
            INGEST_QUEUE: cfg.ingest_visibility_seconds,
            "PollQueue": cfg.visibility_seconds,
            "CompletionQueue": cfg.visibility_seconds,
        },
        function_log=cfg.function_log,
        # moto on the other core (MotoServer): the harness measures the pipeline, not one shared interpreter.
        aws_in_own_process=True,
    )
    injected = Injected()
    extra: dict[str, Any] = {}
    if cfg.function_log is not None:
        # The stack appends to it: a previous run's repairs must not be counted as this run's.
        cfg.function_log.unlink(missing_ok=True)
    with LocalStack(stack_cfg) as stack:
        _say(cfg, f"local stack up in {time.monotonic() - started:.1f} s; uploading {cfg.uploads} objects")
        ep = stack.endpoints
        from cutout.domain.models import job_id_for

        # Keys and job ids are known before anything is uploaded: S3's ETag of a single-part PUT is the MD5.
        uploads: dict[str, UploadRecord] = {}
        for i, (rel, body, dup, kill) in enumerate(plan):
            key = ep.input_prefix + rel
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            uploads[key] = UploadRecord(i, key, etag, job_id_for(ep.bucket, key, etag), dup, kill)
        _inject(stack, cfg, uploads, injected)

        s3 = stack.client("s3")
        errors: list[str] = []

        def put(item: tuple[str, bytes, bool, bool]) -> None:
            rel, body, _, _ = item
            key = ep.input_prefix + rel
            resp = s3.put_object(Bucket=ep.bucket, Key=key, Body=body)
            if str(resp["ETag"]).strip('"') != uploads[key].etag:
                errors.append(f"{key}: ETag {resp['ETag']} is not the MD5")

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=cfg.upload_threads) as pool:
            list(pool.map(put, plan))
        if errors:
            raise RuntimeError("; ".join(errors[:5]))
        _say(cfg, f"[{time.monotonic() - started:6.1f}s] {cfg.uploads} uploads done")

        deadline = started + cfg.timeout_seconds
        job_ids = {u.job_id for u in uploads.values()}
        done = _wait(stack, cfg, job_ids, deadline, started)
        if not done:
            stuck = [j for j in stack.jobs() if j["job_id"] in job_ids and j.get("status") not in TERMINAL]
            if stuck:
                _say(cfg, f"[{time.monotonic() - started:6.1f}s] {len(stuck)} job(s) open and nothing moving: sweeper")
                outcome = _run_sweeper(stack, cfg)
                extra["sweeper"] = f"{len(stuck)} stuck job(s) → {outcome}"
                extra["swept"] = [
                    {"job_id": j["job_id"], "key": j.get("source_key"), "status": j.get("status")} for j in stuck
                ]
                _wait(stack, cfg, job_ids, deadline, started)
        dlq = _dlq_contents(stack)
        extra["dlq_before_redrive"] = {q: len(b) for q, b in dlq.items()}
        extra["dlq_messages_before_redrive"] = dlq
        if cfg.redrive and any(dlq.values()):
            moved = {q: stack.redrive(q) for q, b in dlq.items() if b}
            extra["redriven"] = moved
            _say(cfg, f"[{time.monotonic() - started:6.1f}s] redrove {moved}")
            _wait(stack, cfg, job_ids, deadline, started)
            dlq = _dlq_contents(stack)
        _wait_quiet(stack, deadline)
        # Every job is terminal; a create of unknown outcome may still hold its slot until its bound and the
        # next admission tick: that is the design, so wait for it (a slot held past that is a leak).
        held = _wait_slots_free(stack, cfg)
        if held:
            _say(cfg, f"[{time.monotonic() - started:6.1f}s] slots still held: {held}")
        jobs = stack.jobs()
        report = reconcile(list(uploads.values()), jobs, dlq, stack.emulator.state, injected)
        creates = Counter(job_id_from_project_name(c.name or "") or "?" for c in stack.emulator.state.creates)
        report["emulator_requests"] = stack.emulator.state.request_counts()
        report["webhooks"] = {
            "attempts": len(stack.emulator.state.webhook_attempts),
            "dropped": len(stack.emulator.state.dropped_webhooks),
            "duplicates": sum(1 for a in stack.emulator.state.webhook_attempts if a.duplicate),
        }
        iam = stack.iam_report()
        report["invocation_errors"] = dict(
            Counter(
                f"{inv.function}: {str(inv.error).split(':', 1)[0]}" for inv in list(stack.invocations) if inv.error
            )
        )
    # After the stack has stopped: every function's log line is written.
    account_slots(report, held, slot_repairs(cfg.function_log), jobs, dict(creates))
    # Every AWS call each function made, checked against its own role as IAM would (local_stack/iam).
    report["iam"] = {"checked": iam["checked"], "refused": iam["refused"], "refusals": iam["refusals"][:20]}
    report["checks"]["every AWS call allowed by its function's role"] = not any(iam["refused"].values())
    report["passed"] = all(report["checks"].values())
    elapsed = time.monotonic() - started
    report["elapsed_seconds"] = round(elapsed, 1)
    report["extra"] = extra
    report["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    text = render(report, cfg, elapsed, extra)
    if cfg.results_path is not None:
        cfg.results_path.parent.mkdir(parents=True, exist_ok=True)
        cfg.results_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return SoakResult(bool(report["passed"]), report, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=SoakConfig.uploads)
    parser.add_argument("--seed", type=int, default=SoakConfig.seed)
    parser.add_argument("--timeout", type=float, default=SoakConfig.timeout_seconds, help="seconds to wait at most")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON results file")
    parser.add_argument("--no-redrive", action="store_true", help="report DLQ contents without redriving them")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    cfg = SoakConfig(
        uploads=args.uploads,
        seed=args.seed,
        timeout_seconds=args.timeout,
        results_path=args.results,
        redrive=not args.no_redrive,
        progress=not args.quiet,
    )
    result = run(cfg)
    print(result.text, flush=True)
    if cfg.results_path is not None:
        print(f"results: {cfg.results_path}", flush=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
