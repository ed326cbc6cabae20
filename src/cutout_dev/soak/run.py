"""One soak run: a local stack with the faults wired in, the uploads, the wait (sweeper and redrive if need be),
then reconciliation, slot accounting and the IAM check; and its command line."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cutout.domain.models import TERMINAL, job_id_for, job_id_from_project_name

from cutout_dev.harness import (
    INGEST_QUEUE,
    NAMES,
    CheckResult,
    Injected,
    UploadRecord,
    dlq_contents,
    image,
    inject,
    reconcile,
    record,
    run_sweeper,
    say,
    slot_repairs,
    wait_quiet,
)
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.soak.config import DEFAULT_RESULTS, DESCRIPTION, SoakConfig, SoakResult
from cutout_dev.soak.render import render
from cutout_dev.soak.slots import account_slots, wait_slots_free

Plan = list[tuple[str, bytes, bool, bool]]


def plan_uploads(cfg: SoakConfig, rng: random.Random) -> Plan:
    """(relative key, bytes, duplicate its event, kill its worker) per upload; deterministic from the seed."""
    plan = []
    for i in range(cfg.uploads):
        fmt = "PNG" if i % 3 else "JPEG"
        ext = "png" if fmt == "PNG" else "jpg"
        name = NAMES[i % len(NAMES)]
        key = f"soak/{i // 50:02d}/{i:04d}-{name}.{ext}"
        plan.append((key, image(rng, fmt), rng.random() < cfg.duplicate_event_rate, rng.random() < cfg.kill_rate))
    return plan


def wait_terminal(stack: LocalStack, cfg: SoakConfig, job_ids: set[str], deadline: float, started: float) -> bool:
    """Wait until every upload's job is terminal and the stack is quiescent (or only stuck jobs remain)."""
    last_print = 0.0
    while time.monotonic() < deadline:
        statuses = stack.job_statuses()
        open_ids = [i for i in job_ids if statuses.get(i) not in TERMINAL]
        now = time.monotonic()
        if now - last_print >= 10:
            counts = Counter(status for i, status in statuses.items() if i in job_ids)
            depths = {k: v for k, v in stack.queue_depths().items() if v}
            say(
                cfg.progress,
                f"[{now - started:6.1f}s] jobs {dict(sorted(counts.items()))} open {len(open_ids)} "
                f"queues {depths or '{}'}",
            )
            last_print = now
        if not open_ids and wait_quiet(stack, min(deadline, time.monotonic() + 10)):
            return True
        if open_ids and stack.quiescent() and wait_quiet(stack, min(deadline, time.monotonic() + 10), settle=5):
            # Nothing is moving and jobs are still open: only the sweeper will resolve them.
            return False
        time.sleep(0.5)
    return False


def stack_config(cfg: SoakConfig) -> LocalStackConfig:
    return LocalStackConfig(
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


def _upload_records(stack: LocalStack, plan: Plan) -> dict[str, UploadRecord]:
    """Keys and job ids, known before anything is uploaded: S3's ETag of a single-part PUT is the MD5."""
    ep = stack.endpoints
    uploads: dict[str, UploadRecord] = {}
    for i, (rel, body, dup, kill) in enumerate(plan):
        key = ep.input_prefix + rel
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        uploads[key] = UploadRecord(i, key, etag, job_id_for(ep.bucket, key, etag), dup, kill)
    return uploads


def _put_all(stack: LocalStack, cfg: SoakConfig, plan: Plan, uploads: dict[str, UploadRecord]) -> None:
    ep = stack.endpoints
    s3 = stack.client("s3")
    errors: list[str] = []

    def put(item: tuple[str, bytes, bool, bool]) -> None:
        rel, body, _, _ = item
        key = ep.input_prefix + rel
        resp = s3.put_object(Bucket=ep.bucket, Key=key, Body=body)
        if str(resp["ETag"]).strip('"') != uploads[key].etag:
            errors.append(f"{key}: ETag {resp['ETag']} is not the MD5")

    with ThreadPoolExecutor(max_workers=cfg.upload_threads) as pool:
        list(pool.map(put, plan))
    if errors:
        raise RuntimeError("; ".join(errors[:5]))


def _settle(
    stack: LocalStack, cfg: SoakConfig, job_ids: set[str], started: float, extra: dict[str, Any]
) -> dict[str, list[str]]:
    """Wait for the end; sweep stuck jobs, redrive the DLQs (then wait again); the DLQs' final contents."""
    deadline = started + cfg.timeout_seconds
    done = wait_terminal(stack, cfg, job_ids, deadline, started)
    if not done:
        stuck = [j for j in stack.jobs() if j["job_id"] in job_ids and j.get("status") not in TERMINAL]
        if stuck:
            say(
                cfg.progress,
                f"[{time.monotonic() - started:6.1f}s] {len(stuck)} job(s) open and nothing moving: sweeper",
            )
            outcome = run_sweeper(stack, cfg)
            extra["sweeper"] = f"{len(stuck)} stuck job(s) → {outcome}"
            extra["swept"] = [
                {"job_id": j["job_id"], "key": j.get("source_key"), "status": j.get("status")} for j in stuck
            ]
            wait_terminal(stack, cfg, job_ids, deadline, started)
    dlq = dlq_contents(stack)
    extra["dlq_before_redrive"] = {q: len(b) for q, b in dlq.items()}
    extra["dlq_messages_before_redrive"] = dlq
    if cfg.redrive and any(dlq.values()):
        moved = {q: stack.redrive(q) for q, b in dlq.items() if b}
        extra["redriven"] = moved
        say(cfg.progress, f"[{time.monotonic() - started:6.1f}s] redrove {moved}")
        wait_terminal(stack, cfg, job_ids, deadline, started)
        dlq = dlq_contents(stack)
    wait_quiet(stack, deadline)
    return dlq


def _observe(stack: LocalStack, report: dict[str, Any]) -> None:
    """The emulator's request and webhook counts and the functions' errors, into the report."""
    state = stack.emulator.state
    report["emulator_requests"] = state.request_counts()
    report["webhooks"] = {
        "attempts": len(state.webhook_attempts),
        "dropped": len(state.dropped_webhooks),
        "duplicates": sum(1 for a in state.webhook_attempts if a.duplicate),
    }
    report["invocation_errors"] = dict(
        Counter(f"{inv.function}: {str(inv.error).split(':', 1)[0]}" for inv in list(stack.invocations) if inv.error)
    )


def check_iam(iam: dict[str, Any]) -> CheckResult:
    refused = sum(iam["refused"].values())
    return CheckResult("every AWS call allowed by its function's role", not refused, f"{refused} refused")


def run(cfg: SoakConfig) -> SoakResult:
    started = time.monotonic()
    # moto's and the Function URL's werkzeug servers log every request.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    plan = plan_uploads(cfg, random.Random(cfg.seed))
    injected = Injected()
    extra: dict[str, Any] = {}
    if cfg.function_log is not None:
        # The stack appends to it: a previous run's repairs must not be counted as this run's.
        cfg.function_log.unlink(missing_ok=True)
    with LocalStack(stack_config(cfg)) as stack:
        say(cfg.progress, f"local stack up in {time.monotonic() - started:.1f} s; uploading {cfg.uploads} objects")
        uploads = _upload_records(stack, plan)
        inject(stack, cfg, uploads, injected)
        _put_all(stack, cfg, plan, uploads)
        say(cfg.progress, f"[{time.monotonic() - started:6.1f}s] {cfg.uploads} uploads done")
        dlq = _settle(stack, cfg, {u.job_id for u in uploads.values()}, started, extra)
        # Every job is terminal; a create of unknown outcome may still hold its slot until its bound and the
        # next admission tick: that is the design, so wait for it (a slot held past that is a leak).
        held = wait_slots_free(stack, cfg)
        if held:
            say(cfg.progress, f"[{time.monotonic() - started:6.1f}s] slots still held: {held}")
        jobs = stack.jobs()
        report = reconcile(list(uploads.values()), jobs, dlq, stack.emulator.state, injected)
        creates = Counter(job_id_from_project_name(c.name or "") or "?" for c in stack.emulator.state.creates)
        iam = stack.iam_report()
        _observe(stack, report)
    # After the stack has stopped: every function's log line is written.
    account_slots(report, held, slot_repairs(cfg.function_log), jobs, dict(creates))
    # Every AWS call each function made, checked against its own role as IAM would (local_stack/iam).
    report["iam"] = {"checked": iam["checked"], "refused": iam["refused"], "refusals": iam["refusals"][:20]}
    record(report, [check_iam(iam)])
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
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.soak", description=DESCRIPTION)
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
