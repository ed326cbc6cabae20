"""``cutout spend [--days N]``: credits and images per UTC day, from the job records (what the table holds:
terminal records expire after 90 days)."""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output, table
from cutout_dev.ops.records import JobsTable, days_back, net_credits, statuses
from cutout_dev.ops.target import StackTarget

MAX_DAYS = 90  # the records' retention (TERMINAL_RETENTION): older days would read as zero
SPEND_ATTRIBUTES = ("created_at", "credits_charged", "credits_refunded", "project_id")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "spend",
        help="credits and images per day",
        description="Credits (charged minus refunded) and images sent to Magic Hour per UTC day, newest first.",
    )
    parser.add_argument("--days", type=int, default=7, help=f"how many days back, today included (1-{MAX_DAYS})")
    parser.set_defaults(run=run)


def collect(target: StackTarget, days: int, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    day_list = days_back(days, now)
    since = datetime.fromisoformat(day_list[-1]).replace(tzinfo=UTC)
    jobs = JobsTable(target.client("dynamodb"), target.table)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"jobs": 0, "images": 0, "credits": 0})
    for status in statuses():
        for job in jobs.by_status(status, since, attributes=SPEND_ATTRIBUTES):
            sums = per_day[str(job.get("created_at", ""))[:10]]
            sums["jobs"] += 1
            # An image is one Magic Hour create: a job with a project (rejected and skipped uploads have none).
            sums["images"] += 1 if job.get("project_id") else 0
            sums["credits"] += net_credits(job)
    budget = target.daily_credit_budget
    rows = []
    for day in day_list:
        row: dict[str, Any] = {"day": day, **per_day.get(day, {"jobs": 0, "images": 0, "credits": 0})}
        # With a budget, the spend guard's reservation counter too: it counts creates as they are paid,
        # including any whose record no longer says so (a cross-check of the records).
        row["budget_counter"] = jobs.budget_spent(day) if budget > 0 else None
        rows.append(row)
    total = {k: sum(r[k] for r in rows) for k in ("jobs", "images", "credits")}
    return {"days": rows, "total": total, "daily_budget": budget, "since": since.isoformat(), "until": now.isoformat()}


def run(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    if not 1 <= args.days <= MAX_DAYS:
        out.note(f"cutout spend: --days must be 1..{MAX_DAYS} (records expire after {MAX_DAYS} days)")
        return EXIT_ERROR
    result = collect(target, args.days)

    def draw(console: Any) -> None:
        with_budget = result["daily_budget"] > 0
        columns = ["day", "images", "credits", "jobs"] + (["budget counter"] if with_budget else [])
        rows = [
            [r["day"], r["images"], r["credits"], r["jobs"]] + ([r["budget_counter"]] if with_budget else [])
            for r in result["days"]
        ]
        total = result["total"]
        rows.append(["total", total["images"], total["credits"], total["jobs"]] + ([""] if with_budget else []))
        console.print(table(None, columns, rows))
        if with_budget:
            console.print(f"daily budget {result['daily_budget']} credits")

    out.emit(result, draw)
    return EXIT_OK
