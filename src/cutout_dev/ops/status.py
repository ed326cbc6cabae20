"""``cutout status``: the pipeline on one screen — jobs per status, what is in flight and the oldest open job,
queue and DLQ depths, credits today against the daily budget, alarms firing, the dashboard.

Exit status 2 when a person is needed (a DLQ holds messages, or an alarm is in ALARM), so cron or CI can run it.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_OK, Output, age, fields
from cutout_dev.ops.records import JobsTable, age_seconds, net_credits, open_statuses, source_uri, statuses
from cutout_dev.ops.target import QUEUE_PAIRS, StackTarget

DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="the pipeline on one screen (exit 2: a DLQ is not empty or an alarm is firing)",
        description="Jobs per status, in flight, oldest open job, queue/DLQ depths, credits today, alarms.",
    )
    parser.set_defaults(run=run)


def queue_depth(target: StackTarget, url: str) -> int:
    """Messages waiting, in flight and delayed (SQS's approximate counts)."""
    attrs = target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))
    return sum(int(attrs.get("Attributes", {}).get(name, 0)) for name in DEPTH_ATTRIBUTES)


def alarms_firing(target: StackTarget) -> list[dict[str, Any]]:
    """The stack's alarms (named under its AlarmNamePrefix) in state ALARM."""
    firing: list[dict[str, Any]] = []
    pages = target.client("cloudwatch").get_paginator("describe_alarms")
    for page in pages.paginate(AlarmNamePrefix=target.alarm_prefix, StateValue="ALARM"):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            if alarm.get("StateValue") != "ALARM":
                continue  # CloudWatch applies StateValue with the prefix; moto only applies one filter
            since = alarm.get("StateUpdatedTimestamp")
            firing.append(
                {
                    "name": alarm["AlarmName"],
                    "reason": alarm.get("StateReason", ""),
                    "since": since.isoformat() if isinstance(since, datetime) else since,
                }
            )
    return firing


def credits_today(target: StackTarget, jobs: JobsTable, now: datetime) -> dict[str, Any]:
    """With a budget, the spend guard's own counter; without one (no counter is kept), today's records."""
    day = now.strftime("%Y-%m-%d")
    budget = target.daily_credit_budget
    if budget > 0:
        spent = jobs.budget_spent(day)
        source = "budget counter"
    else:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        cost = ("credits_charged", "credits_refunded")  # only what the sum needs: a busy day has many records
        spent = sum(net_credits(j) for s in statuses() for j in jobs.by_status(s, midnight, attributes=cost))
        source = "job records"
    return {
        "day": day,
        "spent": spent,
        "budget": budget,
        "left": max(0, budget - spent) if budget > 0 else None,
        "source": source,
    }


def collect(target: StackTarget, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    jobs = JobsTable(target.client("dynamodb"), target.table)
    counts = {s: jobs.count(s) for s in statuses()}
    oldest = None
    for status in open_statuses():
        job = jobs.oldest(status)
        if job is not None and (oldest is None or str(job.get("created_at")) < str(oldest.get("created_at"))):
            oldest = job
    dlqs = {name: queue_depth(target, ref.url) for name, ref in target.dead_letter_queues.items()}
    # A stack deployed before a queue existed (the renditions step) has no output for it: nothing to count.
    queues = {
        src: queue_depth(target, target.queue(src).url) for src in QUEUE_PAIRS.values() if f"{src}Url" in target.outputs
    }
    alarms = alarms_firing(target)
    reasons = [f"{name} holds {n} message(s): cutout redrive {name}" for name, n in dlqs.items() if n]
    reasons += [f"alarm {a['name']} is in ALARM" for a in alarms]
    return {
        "stack": target.stack_name,
        "local": target.local,
        "input": target.outputs.get("InputS3Uri"),
        "output": target.outputs.get("OutputS3Uri"),
        "counts": counts,
        "in_flight": sum(counts[s] for s in open_statuses()),
        "oldest_open": None
        if oldest is None
        else {
            "job_id": oldest.get("job_id"),
            "status": oldest.get("status"),
            "source": source_uri(oldest),
            "created_at": oldest.get("created_at"),
            "age_seconds": round(age_seconds(oldest, now) or 0),
        },
        "queues": queues,
        "dlqs": dlqs,
        "credits_today": credits_today(target, jobs, now),
        "alarms": alarms,
        # The local stack has no CloudWatch console: its template's DashboardUrl output names a dashboard no
        # browser can open, so the local answer names the functions' log file instead.
        "dashboard": None if target.local else target.dashboard_url,
        "logs": target.local_logs if target.local else None,
        "needs_attention": bool(reasons),
        "reasons": reasons,
    }


def draw(result: dict[str, Any], console: Any) -> None:
    rows: list[tuple[str, Any]] = []
    where = "local stack" if result["local"] else "deployed stack"
    rows.append(("Stack", f"{result['stack']} ({where})  {result['input'] or ''} -> {result['output'] or ''}"))
    rows.append(("Jobs", "  ".join(f"{s} {n}" for s, n in result["counts"].items() if n) or "none yet"))
    oldest = result["oldest_open"]
    in_flight = f"{result['in_flight']}"
    if oldest:
        in_flight += (
            f"  oldest {age(oldest['age_seconds'])} ({oldest['status']}, {oldest['job_id']}, {oldest['source']})"
        )
    rows.append(("In flight", in_flight))
    rows.append(("Queues", "  ".join(f"{q} {n}" for q, n in result["queues"].items())))
    rows.append(("DLQs", "  ".join(f"{q} {n}" + (" !" if n else "") for q, n in result["dlqs"].items())))
    credits = result["credits_today"]
    budget = f"of {credits['budget']} budget, {credits['left']} left" if credits["budget"] else "(no daily budget)"
    rows.append(("Credits", f"{credits['spent']} today {budget}"))
    alarms = result["alarms"]
    rows.append(("Alarms", ", ".join(a["name"] for a in alarms) if alarms else "none in ALARM"))
    if result["dashboard"]:
        rows.append(("Dashboard", result["dashboard"]))
    if result["local"]:
        rows.append(("Logs", result["logs"] or "printed by cutout local up (started with --verbose)"))
    console.print(fields(rows))
    if result["reasons"]:
        console.print()
        console.print("Needs attention:", style="bold")
        for reason in result["reasons"]:
            console.print(f"  - {reason}", markup=False)


def run(args: argparse.Namespace, target: StackTarget) -> int:
    result = collect(target)
    Output.from_args(args).emit(result, lambda console: draw(result, console))
    return EXIT_ATTENTION if result["needs_attention"] else EXIT_OK
