"""``cutout backfill s3://bucket/prefix`` — process the images that were in the bucket before Cutout watched it.

    plan      list the objects (ListObjectsV2, or an S3 Inventory manifest for very large buckets), drop what the
              submit would skip or reject from what a listing shows (the domain's own checks), drop what is
              already a job (BatchGetItem on the job ids the submit would derive)
    estimate  images, credits, time at the stack's concurrency, today's budget and what is left of it
    enqueue   one "Object Created" event per image straight to the ingest queue (SendMessageBatch), objects
              untouched; a checkpoint after every batch so a rerun (or a rerun after Ctrl-C) goes on where it
              stopped

Paying for nothing twice does not rest on the checkpoint: a rerun skips every object that is a job by now, and
an event that is enqueued twice meets the submit's claim like any duplicate delivery.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from cutout.aws.inspection import SNIFF_BYTES, Inspected, problem
from cutout.aws.s3_events import ObjectRef
from cutout.domain.models import iso, job_id_for, utc_now
from cutout.magic_hour.client import CREDITS_PER_IMAGE
from cutout.runtime.config import Settings
from cutout.store.job_store import JobStore
from cutout.use_cases.submit import Submitter

from cutout_dev.ops.ingest import S3Object, SendError, batches, object_created_event, send_events
from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, Output, fields
from cutout_dev.ops.records import JobsTable
from cutout_dev.ops.target import StackTarget, TargetError

# Magic Hour's processing-time p50 for the background remover, queueing included (magichour-api.md §3).
RENDER_SECONDS = 4.0
BATCH_GET = 100  # BatchGetItem's limit
BATCH_GET_ATTEMPTS = 8
# Archived objects cannot be read without a restore: the submit's GET would fail on every delivery.
ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
CHECKPOINT_DIR = Path(".cutout")


class BackfillError(TargetError):
    """The backfill cannot go on (bad location, unreadable manifest, budget refused)."""


# ----- where the stack is ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pipeline:
    """What backfill and retry need of a stack: clients and names (from the CLI's StackTarget, or a test's)."""

    s3: Any
    dynamodb: Any
    sqs: Any
    table: str
    ingest_queue_url: str
    bucket: str  # the bucket the stack watches
    input_prefix: str
    output_prefix: str
    output_bucket: str = ""
    region: str = "us-east-1"
    daily_credit_budget: int = 0  # 0 = unlimited
    concurrency: int = 3  # MaxJobsInFlight where the stack has it, else MaximumConcurrency
    max_input_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_target(cls, target: StackTarget) -> Pipeline:
        """From the stack's outputs and parameters (a deployed stack or the local one alike)."""
        params = target.parameters
        return cls(
            s3=target.client("s3"),
            dynamodb=target.client("dynamodb"),
            sqs=target.client("sqs"),
            table=target.table,
            ingest_queue_url=target.queue("IngestQueue").url,
            bucket=target.bucket,
            input_prefix=target.input_prefix,
            output_prefix=target.output_prefix,
            output_bucket=target.output_bucket,
            region=target.region,
            daily_credit_budget=target.daily_credit_budget,
            # Admission control's cap on jobs at Magic Hour, where the stack has it; else the submit's concurrency.
            concurrency=_int(params.get("MaxJobsInFlight")) or target.maximum_concurrency,
            max_input_bytes=_int(params.get("MaxInputBytes")) or 20 * 1024 * 1024,
        )

    def settings(self) -> Settings:
        """The submit function's settings for what a backfill checks, through the domain's own parsing."""
        return Settings.from_env(
            {
                "JOBS_TABLE": self.table,
                "SOURCE_BUCKET": self.bucket,
                "INPUT_PREFIX": self.input_prefix,
                "OUTPUT_PREFIX": self.output_prefix,
                "OUTPUT_BUCKET": "" if self.output_bucket in ("", self.bucket) else self.output_bucket,
                "MAX_INPUT_BYTES": str(self.max_input_bytes),
            }
        )

    def spent_today(self) -> int:
        """Credits reserved today (the submit's `budget#YYYY-MM-DD` counter)."""
        return JobsTable(self.dynamodb, self.table).budget_spent(utc_now().strftime("%Y-%m-%d"))


def _int(value: str | None) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise BackfillError(f"expected s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise BackfillError(f"no bucket in {uri!r}")
    return bucket, prefix


# ----- where the objects come from --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Listed:
    obj: S3Object
    position: Any  # where to resume after this object: its key (listing) or [file, row] (inventory)
    storage_class: str = ""


def list_objects(s3: Any, bucket: str, prefix: str, start_after: str | None) -> Iterator[Listed]:
    """Every object under the prefix in key order (ListObjectsV2 pages of 1,000; botocore decodes the keys)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        for item in page.get("Contents", []):
            obj = S3Object(bucket, item["Key"], str(item.get("ETag", "")).strip('"'), int(item.get("Size", 0)))
            yield Listed(obj, item["Key"], str(item.get("StorageClass") or ""))


def read_manifest(s3: Any, manifest_uri: str, bucket: str, prefix: str, after: list[int] | None) -> Iterator[Listed]:
    """Objects from an S3 Inventory report (manifest.json → CSV or CSV.gz files; `fileSchema` names the columns).

    Inventory CSVs URL-encode keys the way event notifications do; they are decoded once, with unquote_plus.
    Rows up to ``after`` ([file index, row index]) were handled by an earlier run.
    """
    m_bucket, m_key = parse_s3_uri(manifest_uri)
    try:
        manifest = json.loads(s3.get_object(Bucket=m_bucket, Key=m_key)["Body"].read())
        columns = [c.strip() for c in str(manifest["fileSchema"]).split(",")]
        files = [f["key"] for f in manifest["files"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackfillError(f"{manifest_uri} is not an S3 Inventory manifest: {exc}") from exc
    if str(manifest.get("fileFormat", "CSV")).upper() != "CSV":
        raise BackfillError(f"only CSV inventories are read, this one is {manifest.get('fileFormat')}")
    source = str(manifest.get("sourceBucket") or bucket)
    if source != bucket:
        raise BackfillError(f"the inventory lists bucket {source}, not {bucket}")
    files_bucket = str(manifest.get("destinationBucket") or m_bucket).removeprefix("arn:aws:s3:::")
    for file_index, file_key in enumerate(files):
        if after and file_index < after[0]:
            continue
        raw = s3.get_object(Bucket=files_bucket, Key=file_key)["Body"]
        stream: Any = gzip.GzipFile(fileobj=raw) if file_key.endswith(".gz") else raw
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        for row_index, row in enumerate(csv.reader(text)):
            if after and file_index == after[0] and row_index <= after[1]:
                continue
            record = dict(zip(columns, row, strict=False))
            if record.get("IsLatest", "true").lower() == "false" or record.get("IsDeleteMarker", "").lower() == "true":
                continue
            key = unquote_plus(record.get("Key", ""))
            if not key.startswith(prefix):
                continue
            version = record.get("VersionId") or None
            obj = S3Object(bucket, key, record.get("ETag", "").strip('"'), int(record.get("Size") or 0), version)
            yield Listed(obj, [file_index, row_index], record.get("StorageClass", ""))


# ----- the plan -------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    bucket: str
    prefix: str
    manifest: str | None
    resumed_from: Any = None
    objects: int = 0  # objects seen in this run's listing
    already_jobs: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    images: list[Listed] = field(default_factory=list)
    listing_complete: bool = True  # False when --limit stopped the listing early
    inspected: bool = True  # each candidate's first bytes were checked (False: by name and size only)

    @property
    def credits(self) -> int:
        return len(self.images) * CREDITS_PER_IMAGE


class Filter:
    """The submit's own decisions on what a listing shows: skip reasons (bucket, prefix, folder markers, output
    prefix) and validation (extension, empty, size, output key length). Content type and magic bytes are not in a
    listing: with ``inspect`` each object that is not a job yet is read as the submit reads it (a ranged GET of its
    first bytes) and checked the same way, so a text file named .jpg is not priced as an image."""

    def __init__(self, pipeline: Pipeline, *, inspect: bool = True) -> None:
        self._settings = pipeline.settings()
        self._submitter = Submitter(self._settings, store=JobStore(pipeline.table, pipeline.dynamodb))
        self._s3 = pipeline.s3
        self.inspect = inspect

    def content_reason(self, listed: Listed) -> str | None:
        """Why the submit would refuse this object's bytes (content type, magic bytes), or None."""
        if not self.inspect:
            return None
        obj = listed.obj
        kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key, "Range": f"bytes=0-{SNIFF_BYTES - 1}"}
        if obj.version_id and obj.version_id != "null":
            kwargs["VersionId"] = obj.version_id
        try:
            resp = self._s3.get_object(**kwargs)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return "object_missing"  # deleted since the listing
            raise
        content_type = str(resp.get("ContentType") or "").split(";")[0].strip().lower()
        seen = Inspected(obj.key, obj.etag, obj.version_id, obj.size, content_type, resp["Body"].read(), {})
        refused = problem(seen, self._settings)
        return refused[0] if refused else None

    def reason(self, listed: Listed) -> str | None:
        obj = listed.obj
        ref = ObjectRef(obj.bucket, obj.key, obj.key, obj.etag, obj.version_id, obj.size, "eventbridge")
        skip = self._submitter.skip_reason(ref)
        if skip:
            return skip
        if listed.storage_class.upper() in ARCHIVED:
            return "archived"
        refused = problem(Inspected(obj.key, obj.etag, obj.version_id, obj.size, "", b"", {}), self._settings)
        return refused[0] if refused else None


def existing_job_ids(dynamodb: Any, table: str, job_ids: list[str], *, sleep: Any = time.sleep) -> set[str]:
    """Which of these job ids have a record (BatchGetItem, 100 keys a call, unprocessed keys retried)."""
    found: set[str] = set()
    for start in range(0, len(job_ids), BATCH_GET):
        keys = [{"job_id": {"S": j}} for j in dict.fromkeys(job_ids[start : start + BATCH_GET])]
        request: dict[str, Any] = {table: {"Keys": keys, "ProjectionExpression": "job_id", "ConsistentRead": True}}
        for attempt in range(BATCH_GET_ATTEMPTS):
            if attempt:
                sleep(min(0.1 * 2**attempt, 5.0))
            resp = dynamodb.batch_get_item(RequestItems=request)
            found.update(item["job_id"]["S"] for item in resp.get("Responses", {}).get(table, []))
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                break
        if request:
            raise BackfillError("DynamoDB kept keys unprocessed (throttled); run again later")
    return found


def make_plan(
    pipeline: Pipeline,
    source: Iterator[Listed],
    *,
    bucket: str,
    prefix: str,
    manifest: str | None = None,
    limit: int | None = None,
    resumed_from: Any = None,
    on_listed: Callable[[int], None] | None = None,
    inspect: bool = True,
) -> Plan:
    """Filter and de-duplicate a listing, a page (1,000 objects) at a time."""
    plan = Plan(bucket, prefix, manifest, resumed_from, inspected=inspect)
    check = Filter(pipeline, inspect=inspect)
    page: list[Listed] = []

    def flush() -> None:
        ids = [job_id_for(i.obj.bucket, i.obj.key, i.obj.etag) for i in page]
        existing = existing_job_ids(pipeline.dynamodb, pipeline.table, ids)
        for listed, job_id in zip(page, ids, strict=True):
            if job_id in existing:
                plan.already_jobs += 1
            elif limit is not None and len(plan.images) >= limit:
                plan.listing_complete = False  # more to do than --limit allows: the next run resumes
            elif reason := check.content_reason(listed):
                plan.skipped[reason] += 1  # the submit would refuse it, free: not priced as an image
            else:
                plan.images.append(listed)
        page.clear()

    for listed in source:
        if limit is not None and len(plan.images) >= limit:
            plan.listing_complete = False
            break
        plan.objects += 1
        reason = check.reason(listed)
        if reason:
            plan.skipped[reason] += 1
        else:
            page.append(listed)
            if len(page) >= 1000:
                flush()
        if on_listed and plan.objects % 100 == 0:
            on_listed(plan.objects)
    if page:
        flush()
    if on_listed:
        on_listed(plan.objects)
    return plan


# ----- the estimate ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    images: int
    credits: int
    seconds: float
    concurrency: int
    budget: int  # credits per UTC day, 0 = unlimited
    spent_today: int
    left_today: int | None  # None = unlimited
    images_today: int | None  # how many of these the budget still pays for today

    @property
    def over_budget(self) -> bool:
        return self.images_today is not None and self.images > self.images_today


def estimate(pipeline: Pipeline, images: int) -> Estimate:
    concurrency = max(pipeline.concurrency, 1)
    budget = pipeline.daily_credit_budget
    spent = pipeline.spent_today() if budget > 0 else 0
    left = max(budget - spent, 0) if budget > 0 else None
    return Estimate(
        images=images,
        credits=images * CREDITS_PER_IMAGE,
        seconds=images * RENDER_SECONDS / concurrency,
        concurrency=concurrency,
        budget=budget,
        spent_today=spent,
        left_today=left,
        images_today=None if left is None else left // CREDITS_PER_IMAGE,
    )


# ----- the checkpoint -------------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """Where a backfill of one location for one stack stopped (`.cutout/backfill-<hash>.json`)."""

    path: Path
    bucket: str
    prefix: str
    manifest: str | None
    table: str
    position: Any = None  # resume after this (a key, or [file, row] of an inventory)
    enqueued: int = 0  # across every run of this backfill
    started_at: str = ""
    updated_at: str = ""
    done: bool = False

    @classmethod
    def for_location(
        cls, bucket: str, prefix: str, manifest: str | None, table: str, directory: Path = CHECKPOINT_DIR
    ) -> Checkpoint:
        digest = hashlib.sha256("\0".join((table, bucket, prefix, manifest or "")).encode()).hexdigest()[:16]
        path = directory / f"backfill-{digest}.json"
        fresh = cls(path, bucket, prefix, manifest, table, started_at=iso(utc_now()))
        if not path.exists():
            return fresh
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, **{k: v for k, v in saved.items() if k in cls.__dataclass_fields__ and k != "path"})
        except (ValueError, TypeError):
            return fresh  # unreadable: start over (safe: existing jobs are skipped anyway)

    @property
    def resumable(self) -> bool:
        return not self.done and self.position is not None

    def restart(self) -> None:
        self.position, self.enqueued, self.done, self.started_at = None, 0, False, iso(utc_now())

    def save(self) -> None:
        """Atomically (write, then rename): a Ctrl-C mid-write never leaves half a checkpoint."""
        self.updated_at = iso(utc_now())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


# ----- enqueue --------------------------------------------------------------------------------------------------
def enqueue(
    pipeline: Pipeline,
    images: list[Listed],
    checkpoint: Checkpoint | None,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Send one Object Created event per image, in listing order, checkpointing after every batch.

    KeyboardInterrupt (Ctrl-C) propagates after the checkpoint holds the last batch that was sent."""
    sent = 0
    for batch in batches(images):
        events = [object_created_event(listed.obj, region=pipeline.region) for listed in batch]
        send_events(pipeline.sqs, pipeline.ingest_queue_url, events)
        sent += len(batch)
        if checkpoint is not None:
            checkpoint.position = batch[-1].position
            checkpoint.enqueued += len(batch)
            checkpoint.save()
        if on_batch:
            on_batch(sent, len(images))
    return sent


def source_for(pipeline: Pipeline, bucket: str, prefix: str, manifest: str | None, after: Any) -> Iterator[Listed]:
    if manifest:
        return read_manifest(pipeline.s3, manifest, bucket, prefix, after)
    return list_objects(pipeline.s3, bucket, prefix, after)


def duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


# ----- the whole command ----------------------------------------------------------------------------------------
@dataclass
class Options:
    uri: str  # s3://bucket/prefix
    manifest: str | None = None  # s3://.../manifest.json of an S3 Inventory report
    dry_run: bool = False
    limit: int | None = None
    yes: bool = False
    restart: bool = False  # ignore an unfinished checkpoint
    checkpoint_dir: Path = CHECKPOINT_DIR
    inspect: bool = True  # read each candidate's first bytes (one ranged GET) before pricing it


class Bar:
    """The progress display (rich, on stderr): a counter while listing, then a bar with rate and ETA while
    enqueuing. Off for --json and when stderr is not a terminal, so scripts and logs get no control codes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def phase(self, description: str, total: int | None) -> None:
        if self._progress is not None:
            if self._task is not None:  # the phase before is done: its count is its total
                done = self._progress.tasks[self._task].completed
                self._progress.update(self._task, total=done, completed=done)
                self._progress.stop_task(self._task)
            self._task = self._progress.add_task(description, total=total, rate="")

    def update(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)
            speed = self._progress.tasks[self._task].speed
            self._progress.update(self._task, rate=f"{speed:,.0f}/s" if speed else "")


def run_backfill(
    pipeline: Pipeline,
    options: Options,
    *,
    confirm: Callable[[str], bool],
    note: Callable[[str], None],
    bar: Bar | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Plan, estimate, ask, enqueue. Returns the result document (JSON-able); ``status`` says how it ended:
    dry_run, nothing_to_do, declined, enqueued, interrupted (Ctrl-C; the checkpoint holds what was sent)."""
    bucket, prefix = parse_s3_uri(options.uri)
    bar = bar or Bar(enabled=False)
    checkpoint = Checkpoint.for_location(bucket, prefix, options.manifest, pipeline.table, options.checkpoint_dir)
    if options.restart:
        checkpoint.restart()
    elif not checkpoint.resumable:
        checkpoint.restart()  # a finished (or never started) backfill starts over: new objects may have come
    after = checkpoint.position
    if after is not None:
        note(f"resuming after {after!r} ({checkpoint.enqueued} enqueued before; --restart to start over)")

    with bar:
        bar.phase("listing", None)
        source = source_for(pipeline, bucket, prefix, options.manifest, after)
        plan = make_plan(
            pipeline,
            source,
            bucket=bucket,
            prefix=prefix,
            manifest=options.manifest,
            limit=options.limit,
            resumed_from=after,
            on_listed=bar.update,
            inspect=options.inspect,
        )
        est = estimate(pipeline, len(plan.images))
        doc = _document(plan, est, checkpoint, options)
        if not plan.images:
            doc["status"] = "nothing_to_do"
            if not options.dry_run:
                checkpoint.done = plan.listing_complete
                checkpoint.save()
            return doc
        if options.dry_run:
            doc["status"] = "dry_run"
            return doc

        images = plan.images
        if est.over_budget:
            assert est.images_today is not None
            waiting = (
                "the submit parks over-budget uploads in the queue until the budget allows; "
                "they can reach the DLQ after five receives: redrive them"
            )
            if options.yes:
                note(f"over today's budget: {est.images_today} of {est.images} image(s) fit; {waiting}")
            else:
                images = images[: est.images_today]
                note(
                    f"today's budget pays for {est.images_today} of {est.images} image(s): enqueuing {len(images)}; "
                    "run again tomorrow to go on, or pass --yes to enqueue all now (" + waiting + ")"
                )
                doc["capped_by_budget"] = True
                if not images:
                    doc["status"] = "nothing_to_do"
                    return doc
        question = (
            f"Enqueue {len(images)} image(s) for {len(images) * CREDITS_PER_IMAGE} credits "
            f"(about {duration(len(images) * RENDER_SECONDS / est.concurrency)})?"
        )
        if not options.yes and not confirm(question):
            doc["status"] = "declined"
            return doc

        bar.phase("enqueuing", len(images))

        def after_batch(sent: int, total: int) -> None:
            bar.update(sent)
            if on_batch:
                on_batch(sent, total)

        sent = 0
        try:
            sent = enqueue(pipeline, images, checkpoint, after_batch)
        except KeyboardInterrupt:
            sent = checkpoint.enqueued - doc["enqueued_before"]
            doc.update(status="interrupted", enqueued=sent, checkpoint_position=checkpoint.position)
            note(f"interrupted after {sent} image(s); run the same command again to go on")
            return doc
        checkpoint.done = plan.listing_complete and len(images) == len(plan.images)
        checkpoint.save()
        doc.update(status="enqueued", enqueued=sent, checkpoint_position=checkpoint.position)
        return doc


def _document(plan: Plan, est: Estimate, checkpoint: Checkpoint, options: Options) -> dict[str, Any]:
    return {
        "location": options.uri,
        "manifest": options.manifest,
        "dry_run": options.dry_run,
        "resumed_after": plan.resumed_from,
        "objects": plan.objects,
        "already_jobs": plan.already_jobs,
        "skipped": dict(sorted(plan.skipped.items())),
        "images": est.images,
        "listing_complete": plan.listing_complete,
        "inspected": plan.inspected,
        "estimate": {
            "credits": est.credits,
            "seconds": round(est.seconds),
            "duration": duration(est.seconds),
            "concurrency": est.concurrency,
            "render_seconds": RENDER_SECONDS,
        },
        "budget": {
            "daily": est.budget or None,
            "spent_today": est.spent_today,
            "left_today": est.left_today,
            "images_today": est.images_today,
        },
        "counted": counted(plan),
        "enqueued_before": checkpoint.enqueued,
        "enqueued": 0,
        # A dry run writes nothing, so it names no checkpoint file (a path it does not write would mislead).
        "checkpoint": None if options.dry_run else str(checkpoint.path),
        "status": "planned",
    }


def counted(plan: Plan) -> str:
    """What "images" means in this estimate, for the person reading it."""
    if plan.inspected:
        return "not jobs yet, passing the submit's checks: name, size, content type and first bytes"
    return "not jobs yet, by name and size only: a non-image among them is refused free, so credits at most"


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
    parser.add_argument("location", metavar="s3://bucket/prefix", help="what to backfill")
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
    options = Options(
        uri=args.location,
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
