"""One flood: a fresh local stack per plan mode (each in a child process), the burst of PUTs, the wait, then the
soak's reconciliation and the flood's measurements and checks; and its command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cutout_dev import results_schema
from cutout_dev.bench.stats import summary
from cutout_dev.flood.config import (
    DEFAULT_RESULTS,
    MODES,
    FloodConfig,
    FloodResult,
    emulator_models_the_plan,
    template_has_parameter,
)
from cutout_dev.flood.instruments import CallCounter, SlotSampler, wait_slots_free
from cutout_dev.flood.judge import judge
from cutout_dev.flood.measure import measure
from cutout_dev.flood.render import render
from cutout_dev.harness import (
    Injected,
    Plan,
    UploadRecord,
    Waiting,
    dlq_contents,
    end_stuck_jobs,
    inject,
    plan_uploads,
    reconcile,
    say,
    slot_repairs,
    upload_records,
    wait_terminal,
)
from cutout_dev.harness.slots import repair_disagreements
from cutout_dev.harness.stack import harness_stack
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.soak import SoakConfig

DESCRIPTION = (
    "Flood: thousands of distinct uploads dropped into the local stack at once, against a Magic Hour plan limit."
)


def _put_all(stack: LocalStack, cfg: FloodConfig, plan: Plan) -> dict[str, float]:
    """The burst: every object PUT in parallel; returns when each was accepted (epoch seconds) by key."""
    ep = stack.endpoints
    s3 = stack.client("s3")  # botocore clients are thread-safe
    times: dict[str, float] = {}
    lock = threading.Lock()

    def put(item: tuple[str, bytes, bool, bool]) -> None:
        key = ep.input_prefix + item[0]
        started = time.time()
        s3.put_object(Bucket=ep.bucket, Key=key, Body=item[1])
        with lock:
            times[key] = started

    with ThreadPoolExecutor(max_workers=cfg.upload_threads) as pool:
        list(pool.map(put, plan))
    return times


def stack_config(cfg: FloodConfig, mode: str, log_path: Path | None) -> LocalStackConfig:
    hold = cfg.unknown_outcome_hold_seconds
    return harness_stack(
        cfg,
        emulator=cfg.emulator(mode),
        parameters={
            "MaximumConcurrency": cfg.concurrency,
            "MaxJobsInFlight": str(cfg.in_flight),
            **({"UnknownOutcomeHoldSeconds": str(hold)} if hold is not None else {}),
        },
        # The sweeper on a period, as deployed (scaled down): its reconciliation repairs leaked slots and
        # dispatches waiting jobs a missed wake-up left behind.
        schedule_interval_seconds=cfg.sweeper_interval_seconds,
        function_log=log_path,
    )


def _await_end(
    stack: LocalStack, cfg: FloodConfig, soak: SoakConfig, mode: str, job_ids: set[str], t_put: float
) -> dict[str, Any]:
    """Wait until every job is terminal; run the sweeper once if jobs stay open with nothing moving. The extras."""
    deadline = t_put + cfg.timeout()
    # Quiet with jobs open is normal under admission control for a while: uploads wait while every slot is held by
    # a create of unknown outcome, until its bound passes and the periodic tick frees it. Only a stack quiet for
    # longer than that is stuck (then the harness's sweeper, with its clock ahead, ends it).
    stuck_after = cfg.poll_max_wait_seconds + 2 * cfg.sweeper_interval_seconds
    how = Waiting(cfg.progress, report_every=30, stuck_after=stuck_after, poll_every=cfg.scan_interval_seconds)

    def wait() -> bool:
        return wait_terminal(stack, job_ids, deadline, t_put, how)

    if wait():
        return {}
    return end_stuck_jobs(stack, soak, job_ids, wait, lambda text: say(cfg.progress, f"[{mode}] {text}"))


def _analyse(
    stack: LocalStack,
    cfg: FloodConfig,
    uploads: dict[str, UploadRecord],
    upload_times: dict[str, float],
    injected: Injected,
    sampler: SlotSampler,
    log_path: Path | None,
) -> dict[str, Any]:
    """Reconciliation (the soak's) and the flood's measurements, from the stack as the run left it."""
    # Every job is terminal; a slot may still be held by an ambiguous create's job until its bound
    # (PollMaxWaitSeconds from the acquire) and the next reconciliation: give that its time, no more.
    held_at_end = wait_slots_free(sampler, cfg.poll_max_wait_seconds + 2 * cfg.sweeper_interval_seconds + 30)
    dlq = dlq_contents(stack)
    jobs = stack.jobs()
    emulator = stack.emulator
    report = reconcile(list(uploads.values()), jobs, dlq, emulator.state, injected)
    plan_stats = getattr(emulator, "plan_stats", None)  # the emulator's own reading, where it models a plan
    plan_reading = plan_stats().overall.max_concurrent_rendering if plan_stats is not None else None
    pollers = {p.source.queue_id: p for p in stack.pollers}
    report["flood"] = measure(
        cfg,
        list(uploads.values()),
        upload_times,
        jobs,
        emulator.state.project_list(),
        pollers,
        plan_reading if isinstance(plan_reading, int) else None,
    )
    window = report["flood"]["throughput"].get("window_epoch")
    report["flood"]["slots"] = sampler.summary(
        {str(j["job_id"]): j for j in jobs}, (window[0], window[1]) if window else None
    )
    report["flood"]["slots"]["held_at_end"] = held_at_end
    repairs = slot_repairs(log_path)
    report["flood"]["slots"]["repairs"] = repairs
    report["flood"]["slots"]["disagreeing"] = repair_disagreements(repairs.get("repairs", []), jobs)
    # Creates the emulator's plan refused (reject mode): each one is Cutout going over its plan.
    report["flood"]["plan_refusals"] = int(getattr(emulator.state, "plan_refusals", 0))
    report["emulator_requests"] = emulator.state.request_counts()
    report["invocation_errors"] = dict(
        Counter(f"{inv.function}: {str(inv.error).split(':', 1)[0]}" for inv in list(stack.invocations) if inv.error)
    )
    return report


def _costs(cfg: FloodConfig, report: dict[str, Any], counter: CallCounter, injected: Injected) -> None:
    """AWS calls and invocations per upload, and invocation durations, into the report."""
    # The harness's own re-sends of S3 events (the duplicate-delivery fault) run inside the submit invocation.
    counter.calls["sqs.SendMessage"] -= len(injected.duplicate_events)
    report["aws_calls_per_upload"] = {k: round(v / cfg.uploads, 3) for k, v in sorted(counter.calls.items()) if v}
    report["invocations_per_upload"] = {k: round(v / cfg.uploads, 3) for k, v in sorted(counter.invocations.items())}
    report["invocation_ms"] = {k: summary(v, 1) for k, v in sorted(counter.durations_ms.items())}


def run_mode(cfg: FloodConfig, mode: str) -> dict[str, Any]:
    """One flood on a fresh local stack with the emulator in `mode`; the reconciled report."""
    import boto3

    t0 = time.monotonic()
    soak = cfg.soak()
    plan = plan_uploads(
        cfg.uploads,
        lambda i: f"flood/{i // 100:03d}/{i:05d}",
        random.Random(cfg.seed),
        soak.duplicate_event_rate,
        soak.kill_rate,
    )
    boto3.setup_default_session()
    counter = CallCounter()
    assert boto3.DEFAULT_SESSION is not None
    # Before the stack starts, so every client it and its functions create inherits the handler.
    boto3.DEFAULT_SESSION.events.register("before-call", counter)
    log_path = cfg.function_log.with_name(f"{cfg.function_log.stem}-{mode}.log") if cfg.function_log else None
    if log_path is not None:
        log_path.unlink(missing_ok=True)
    injected = Injected()
    with LocalStack(stack_config(cfg, mode, log_path)) as stack:
        uploads = upload_records(stack, plan)
        inject(stack, soak, uploads, injected)
        for function in stack.functions.values():
            counter.watch(function)
        say(cfg.progress, f"[{mode}] stack up in {time.monotonic() - t0:.1f} s; putting {cfg.uploads} objects at once")
        t_put = time.monotonic()
        with SlotSampler(stack, cfg.in_flight) as sampler:
            upload_times = _put_all(stack, cfg, plan)
            put_seconds = time.monotonic() - t_put
            say(cfg.progress, f"[{mode}] {cfg.uploads} PUTs in {put_seconds:.1f} s")
            extra = _await_end(stack, cfg, soak, mode, {u.job_id for u in uploads.values()}, t_put)
        elapsed = time.monotonic() - t_put
        report = _analyse(stack, cfg, uploads, upload_times, injected, sampler, log_path)
    boto3.DEFAULT_SESSION.events.unregister("before-call", counter)
    report["mode"] = mode
    report["put_seconds"] = round(put_seconds, 1)
    report["elapsed_seconds"] = round(elapsed, 1)
    report["extra"] = extra
    _costs(cfg, report, counter, injected)
    judge(cfg, report)
    return report


def _config_json(cfg: FloodConfig, mode: str) -> str:
    doc = dataclasses.asdict(dataclasses.replace(cfg, modes=(mode,), results_path=None))
    return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in doc.items()})


def _config_from_json(text: str) -> FloodConfig:
    doc = json.loads(text)
    doc["modes"] = tuple(doc["modes"])
    doc["results_path"] = Path(doc["results_path"]) if doc.get("results_path") else None
    doc["function_log"] = Path(doc["function_log"]) if doc.get("function_log") else None
    return FloodConfig(**doc)


def _run_isolated(cfg: FloodConfig, mode: str) -> dict[str, Any]:
    """One mode in a child process: a second local stack in one process would inherit the first one's closed
    function-log stream (Powertools' logger keeps the stream it found at import), as the bench's e2e part notes."""
    with tempfile.TemporaryDirectory(prefix="cutout-flood-") as tmp:
        out = Path(tmp) / f"{mode}.json"
        cmd = [sys.executable, "-m", "cutout_dev.flood", "--config-json", _config_json(cfg, mode), "--report", str(out)]
        proc = subprocess.run(cmd, check=False)  # progress goes straight to this process's stderr
        if not out.is_file():
            raise RuntimeError(f"flood in mode {mode} ended without a report (exit status {proc.returncode})")
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report


def run(cfg: FloodConfig) -> FloodResult:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not template_has_parameter("MaxJobsInFlight"):
        say(
            cfg.progress,
            "note: template.yaml has no MaxJobsInFlight (no admission control): concurrency checks will fail",
        )
    if not emulator_models_the_plan():
        say(cfg.progress, "note: the emulator has no plan limit: every create renders at once (modes are the same)")
    reports = [_run_isolated(cfg, mode) for mode in cfg.modes] if len(cfg.modes) > 1 else [run_mode(cfg, cfg.modes[0])]
    text = render(cfg, reports)
    passed = all(r["passed"] for r in reports)
    if cfg.results_path is not None:
        cfg.results_path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            results_schema.FIELD: results_schema.FLOOD,
            "passed": passed,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "modes": {r["mode"]: r for r in reports},
        }
        cfg.results_path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return FloodResult(passed, {"modes": {r["mode"]: r for r in reports}}, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.flood", description=DESCRIPTION)
    parser.add_argument("--uploads", type=int, default=FloodConfig.uploads)
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both", help="the emulator's plan behaviour")
    parser.add_argument("--limit", type=int, default=FloodConfig.limit, help="Magic Hour plan limit")
    parser.add_argument(
        "--max-jobs-in-flight", type=int, default=None, help="the template's MaxJobsInFlight (default: --limit)"
    )
    parser.add_argument("--render-seconds", type=float, default=FloodConfig.render_seconds)
    parser.add_argument("--seed", type=int, default=FloodConfig.seed)
    parser.add_argument(
        "--unknown-outcome-hold", type=int, default=None, help="UnknownOutcomeHoldSeconds (default: the template's)"
    )
    parser.add_argument("--no-faults", action="store_true", help="no injected faults (the plan limit only)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait at most, per mode")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON results file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    # Internal: one mode's run in a child process (see _run_isolated).
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.config_json:
        child = _config_from_json(args.config_json)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        report = run_mode(child, child.modes[0])
        args.report.write_text(json.dumps(report, default=str), encoding="utf-8")
        return 0
    cfg = FloodConfig(
        uploads=args.uploads,
        modes=MODES if args.mode == "both" else (args.mode,),
        limit=args.limit,
        max_jobs_in_flight=args.max_jobs_in_flight,
        render_seconds=args.render_seconds,
        unknown_outcome_hold_seconds=args.unknown_outcome_hold,
        seed=args.seed,
        faults=not args.no_faults,
        timeout_seconds=args.timeout,
        results_path=args.results,
        progress=not args.quiet,
    )
    result = run(cfg)
    print(result.text, flush=True)
    if cfg.results_path is not None:
        print(f"results: {cfg.results_path}", flush=True)
    return 0 if result.passed else 1
