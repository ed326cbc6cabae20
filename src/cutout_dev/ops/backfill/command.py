"""The whole command: plan, estimate, ask, enqueue; the result document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout.domain.models import job_id_for
from cutout.magic_hour.client import CREDITS_PER_IMAGE

from cutout_dev.ops.backfill.checkpoint import Checkpoint, duration, enqueue
from cutout_dev.ops.backfill.listing import Listed, source_for
from cutout_dev.ops.backfill.pipeline import (
    CHECKPOINT_DIR,
    RENDER_SECONDS,
    Pipeline,
    parse_s3_uri,
)
from cutout_dev.ops.backfill.plan import Estimate, Plan, estimate, make_plan


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


def _within_budget(
    images: list[Listed], est: Estimate, options: Options, note: Callable[[str], None], doc: dict[str, Any]
) -> list[Listed]:
    """The images to enqueue: all of them, or (without --yes) as many as today's budget pays for."""
    if not est.over_budget:
        return images
    assert est.images_today is not None
    waiting = (
        "the submit parks over-budget uploads in the queue until the budget allows; "
        "they can reach the DLQ after five receives: redrive them"
    )
    if options.yes:
        note(f"over today's budget: {est.images_today} of {est.images} image(s) fit; {waiting}")
        return images
    images = images[: est.images_today]
    note(
        f"today's budget pays for {est.images_today} of {est.images} image(s): enqueuing {len(images)}; "
        "run again tomorrow to go on, or pass --yes to enqueue all now (" + waiting + ")"
    )
    doc["capped_by_budget"] = True
    return images


def _send(
    pipeline: Pipeline,
    plan: Plan,
    images: list[Listed],
    checkpoint: Checkpoint,
    doc: dict[str, Any],
    *,
    note: Callable[[str], None],
    bar: Bar,
    on_batch: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Enqueue the images, checkpointing as it goes; the document with how it ended (enqueued or interrupted)."""
    bar.phase("enqueuing", len(images))
    reopen_rejections(pipeline, plan, images, note)

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


def reopen_rejections(pipeline: Pipeline, plan: Plan, images: list[Listed], note: Callable[[str], None]) -> None:
    """Reopen the jobs among `images` rejected for the configuration (`retry_pending`, history kept) so the
    events about to be sent are claimed again. One whose record changed meanwhile is left to the submit's claim."""
    if not plan.reopen:
        return
    from cutout.store.job_store import JobStore

    store = JobStore(pipeline.table, pipeline.dynamodb)
    for listed in images:
        job_id = job_id_for(listed.obj.bucket, listed.obj.key, listed.obj.etag)
        if job_id in plan.reopen and not store.reopen_for_retry(job_id).ok:
            note(f"{job_id}: changed while the backfill ran; see: cutout job {job_id}")


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

        images = _within_budget(plan.images, est, options, note, doc)
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

        return _send(pipeline, plan, images, checkpoint, doc, note=note, bar=bar, on_batch=on_batch)


def _document(plan: Plan, est: Estimate, checkpoint: Checkpoint, options: Options) -> dict[str, Any]:
    return {
        "location": options.uri,
        "manifest": options.manifest,
        "dry_run": options.dry_run,
        "resumed_after": plan.resumed_from,
        "objects": plan.objects,
        "already_jobs": plan.already_jobs,
        "retried_rejections": plan.retried,
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
