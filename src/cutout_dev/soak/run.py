"""One soak run: a local stack with the faults wired in, the uploads, the wait (sweeper and redrive if need be),
then reconciliation, slot accounting and the IAM check; and its command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cutout.domain.models import job_id_from_project_name

from cutout_dev import results_schema
from cutout_dev.harness import (
    CheckResult,
    Injected,
    Plan,
    UploadRecord,
    Waiting,
    check_forced_sweep,
    dlq_contents,
    end_stuck_jobs,
    inject,
    plan_uploads,
    reconcile,
    record,
    say,
    slot_repairs,
    upload_records,
    wait_quiet,
    wait_terminal,
)
from cutout_dev.harness.stack import harness_stack
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.results_schema import stamped
from cutout_dev.soak.config import DEFAULT_RESULTS, DESCRIPTION, SoakConfig, SoakResult
from cutout_dev.soak.render import render
from cutout_dev.soak.slots import account_slots, wait_slots_free


def _waiting(cfg: SoakConfig) -> Waiting:
    # Nothing moving for the poll bound with jobs open: only the sweeper will end them. (5 s was shorter than the
    # pipeline's own silent waits on a loaded machine: the forced sweep ended jobs whose poll or webhook then came.)
    return Waiting(cfg.progress, report_every=10, stuck_after=cfg.poll_max_wait_seconds)


def stack_config(cfg: SoakConfig) -> LocalStackConfig:
    return harness_stack(
        cfg,
        emulator=cfg.emulator(),
        parameters={"MaximumConcurrency": cfg.concurrency, "MaxJobsInFlight": cfg.max_jobs_in_flight},
        schedule_interval_seconds=cfg.schedule_interval_seconds,
        function_log=cfg.function_log,
    )


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

    def wait() -> bool:
        return wait_terminal(stack, job_ids, deadline, started, _waiting(cfg))

    def tell(text: str) -> None:
        say(cfg.progress, f"[{time.monotonic() - started:6.1f}s] {text}")

    if not wait():
        extra.update(end_stuck_jobs(stack, cfg, job_ids, wait, tell))
    dlq = dlq_contents(stack)
    extra["dlq_before_redrive"] = {q: len(b) for q, b in dlq.items()}
    extra["dlq_messages_before_redrive"] = dlq
    if cfg.redrive and any(dlq.values()):
        moved = {q: stack.redrive(q) for q, b in dlq.items() if b}
        extra["redriven"] = moved
        tell(f"redrove {moved}")
        wait()
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
    plan = plan_uploads(
        cfg.uploads,
        lambda i: f"soak/{i // 50:02d}/{i:04d}",
        random.Random(cfg.seed),
        cfg.duplicate_event_rate,
        cfg.kill_rate,
    )
    injected = Injected()
    extra: dict[str, Any] = {}
    if cfg.function_log is not None:
        # The stack appends to it: a previous run's repairs must not be counted as this run's.
        cfg.function_log.unlink(missing_ok=True)
    with LocalStack(stack_config(cfg)) as stack:
        say(cfg.progress, f"local stack up in {time.monotonic() - started:.1f} s; uploading {cfg.uploads} objects")
        uploads = upload_records(stack, plan)
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
    record(report, [check_iam(iam), check_forced_sweep(extra)])
    elapsed = time.monotonic() - started
    report["elapsed_seconds"] = round(elapsed, 1)
    report["extra"] = extra
    report["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    text = render(report, cfg, elapsed, extra)
    if cfg.results_path is not None:
        cfg.results_path.parent.mkdir(parents=True, exist_ok=True)
        doc = stamped(report, results_schema.SOAK)
        cfg.results_path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
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
