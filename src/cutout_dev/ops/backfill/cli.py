"""``cutout backfill``'s arguments and its printed result."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cutout_dev.ops.backfill.command import Bar, Options, run_backfill
from cutout_dev.ops.backfill.pipeline import (
    Pipeline,
)
from cutout_dev.ops.ingest import SendError
from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, Output, fields
from cutout_dev.ops.target import StackTarget, TargetError


# ----- the CLI ------------------------------------------------------------------------------------------------
def ask(question: str) -> bool:
    """A yes/no at the terminal; without one (cron, CI, a pipe) the answer must come from --yes."""
    if not sys.stdin.isatty():
        raise TargetError(f"{question} — no terminal to ask: pass --yes to go ahead (nothing was done)")
    from rich.console import Console
    from rich.prompt import Confirm

    return Confirm.ask(question, default=False, console=Console(stderr=True))


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="process the images already in the bucket (estimate first; resumable)",
        description=(
            "Enqueue the images already under s3://bucket/prefix as uploads, without rewriting them: skips what is "
            "already a job and what an upload would skip, prints the estimate (images, credits, time, budget) and "
            "asks before spending. Running it again goes on where it stopped (checkpoint in ./.cutout/) and pays for "
            "nothing twice."
        ),
    )
    parser.add_argument(
        "location",
        nargs="?",
        metavar="s3://bucket/prefix",
        help="what to backfill (default: the stack's bucket under its input prefix, narrowed by --prefix)",
    )
    parser.add_argument(
        "--prefix", metavar="P", help="only keys under the input prefix + P, e.g. shop/ (as in upload, jobs, retry)"
    )
    parser.add_argument(
        "--manifest", metavar="s3://.../manifest.json", help="read an S3 Inventory report instead of listing"
    )
    parser.add_argument("--dry-run", action="store_true", help="estimate only; enqueue nothing")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="enqueue at most N images this run")
    parser.add_argument("--yes", action="store_true", help="no questions; may go past today's budget")
    parser.add_argument("--restart", action="store_true", help="ignore an unfinished run's checkpoint")
    parser.add_argument(
        "--no-inspect",
        dest="inspect",
        action="store_false",
        help="price by name and size only (no GET of each object's first bytes: faster on huge buckets)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    pipeline = Pipeline.from_target(target)
    if args.location and args.prefix:
        raise TargetError("give s3://bucket/prefix or --prefix P, not both")
    options = Options(
        uri=args.location or f"s3://{target.bucket}/{target.key_prefix(args.prefix)}",
        manifest=args.manifest,
        dry_run=args.dry_run,
        limit=args.limit,
        yes=args.yes,
        restart=args.restart,
        inspect=args.inspect,
    )
    bar = Bar(enabled=not out.json and sys.stderr.isatty())
    try:
        doc = run_backfill(pipeline, options, confirm=ask, note=out.note, bar=bar)
    except SendError as exc:
        raise TargetError(f"backfill stopped: {exc}; run it again to go on (the checkpoint has what was sent)") from exc
    out.emit(doc, lambda console: console.print(_fields(doc)))
    if doc["status"] == "interrupted":
        return 130
    if doc["status"] == "declined":
        return EXIT_ERROR
    return EXIT_ATTENTION if doc.get("capped_by_budget") else EXIT_OK


def _fields(doc: dict[str, Any]) -> Any:
    est, budget = doc["estimate"], doc["budget"]
    skipped = ", ".join(f"{reason} {n}" for reason, n in doc["skipped"].items())
    rows: list[tuple[str, Any]] = [
        ("location", doc["location"] + (f"  (inventory {doc['manifest']})" if doc["manifest"] else "")),
    ]
    if doc["resumed_after"] is not None:
        rows.append(("resumed after", f"{doc['resumed_after']}  ({doc['enqueued_before']} enqueued before)"))
    rows += [
        ("objects listed", f"{doc['objects']:,}" + ("" if doc["listing_complete"] else "  (stopped at --limit)")),
        ("already jobs", f"{doc['already_jobs']:,}"),
        # Jobs already, rejected for the configuration: counted among the images (shown only when there are some).
        *[
            ("to retry", f"{n:,}  (rejected for the configuration, not the file)")
            for n in [doc["retried_rejections"]]
            if n
        ],
        ("skipped", f"{sum(doc['skipped'].values()):,}" + (f"  ({skipped})" if skipped else "")),
        ("images", f"{doc['images']:,}  ({doc['counted']})"),
        ("credits", f"{'at most ' if not doc['inspected'] else ''}{est['credits']:,}"),
        ("time", f"~{est['duration']}  ({est['concurrency']} at a time, ~{est['render_seconds']:g} s each)"),
    ]
    if budget["daily"]:
        rows.append(
            (
                "daily budget",
                f"{budget['daily']:,} credits: {budget['spent_today']:,} spent today, {budget['left_today']:,} left "
                f"({budget['images_today']:,} images)",
            )
        )
    else:
        rows.append(("daily budget", "unlimited"))
    checkpoint = doc["checkpoint"] or "none written (a dry run writes nothing)"
    rows += [("enqueued", f"{doc['enqueued']:,}  ({doc['status']})"), ("checkpoint", checkpoint)]
    return fields(rows)
