"""The whole rebuild: the stored presets, the plan, the estimate, the question, the requests sent; the result."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutout.renditions.presets import PresetDocument
from cutout.renditions.presets_source import PRESETS_MAX_AGE_SECONDS

from cutout_dev.ops.backfill import CHECKPOINT_DIR, Bar, Checkpoint, Pipeline, enqueue, list_objects, parse_s3_uri
from cutout_dev.ops.output import parse_time
from cutout_dev.ops.presets.stored import PresetsParameter, StoredPresets
from cutout_dev.ops.renditions.plan import Planner, RebuildPlan, check_names, key_prefix, make_plan
from cutout_dev.ops.target import StackTarget, TargetError


@dataclass(frozen=True)
class RebuildTarget:
    """What a rebuild needs of a stack: the backfill's pipeline (clients, table, bucket, prefixes), the renditions
    queue, the presets parameter and the renditions prefix."""

    pipeline: Pipeline
    queue_url: str
    presets: PresetsParameter
    renditions_prefix: str = "renditions/"

    @classmethod
    def from_target(cls, target: StackTarget) -> RebuildTarget:
        return cls(
            Pipeline.from_target(target),
            target.queue("RenditionsQueue").url,
            PresetsParameter.of(target),
            target.renditions_prefix,
        )


@dataclass
class Options:
    uri: str  # s3://bucket/prefix, the prefix relative to the input prefix
    presets: Sequence[str] = ()  # --preset: only these (of what the document picks for each job)
    dry_run: bool = False
    yes: bool = False
    restart: bool = False
    checkpoint_dir: Path = CHECKPOINT_DIR
    # How long the renditions function may keep the document it read before (its cache): a rebuild right after
    # `cutout presets set` waits that out, or it would render with the presets it is meant to replace.
    settle_seconds: float = PRESETS_MAX_AGE_SECONDS


def _stored_document(rebuild: RebuildTarget) -> tuple[StoredPresets, PresetDocument]:
    stored = rebuild.presets.read()
    document = stored.document()
    if document.empty:
        raise TargetError(
            f"no presets are stored in {stored.parameter}: nothing to render "
            "(store a document first: cutout presets set FILE)"
        )
    return stored, document


def _location(rebuild: RebuildTarget, uri: str) -> tuple[str, str]:
    bucket, given = parse_s3_uri(uri)
    pipeline = rebuild.pipeline
    if bucket != pipeline.bucket:
        raise TargetError(
            f"{uri}: a rebuild re-renders this stack's uploads, which are in s3://{pipeline.bucket}/"
            f"{pipeline.input_prefix} (give the prefix under it, e.g. s3://{pipeline.bucket}/shop/)"
        )
    return bucket, key_prefix(pipeline.input_prefix, given)


def run_rebuild(
    rebuild: RebuildTarget,
    options: Options,
    *,
    confirm: Callable[[str], bool],
    note: Callable[[str], None],
    bar: Bar | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Plan, estimate, ask, send. ``status`` says how it ended: dry_run, nothing_to_do, declined, sent,
    interrupted (Ctrl-C; the checkpoint holds what was sent). Not one Magic Hour call: the requests go to the
    renditions queue, whose function reads the stored cutouts."""
    bucket, prefix = _location(rebuild, options.uri)
    stored, document = _stored_document(rebuild)
    only = check_names(document, options.presets)
    # A rerun goes on from an interrupted run only for the same presets: a document changed since starts over.
    scope = ("renditions", ",".join(only), str(stored.version or 0))
    pipeline = rebuild.pipeline
    checkpoint = Checkpoint.for_location(
        bucket, prefix, None, pipeline.table, options.checkpoint_dir, kind="rebuild", scope=scope
    )
    if options.restart or not checkpoint.resumable:
        checkpoint.restart()  # a finished rebuild starts over: re-rendering again is free and may be the point
    after = checkpoint.position
    if after is not None:
        note(f"resuming after {after!r} ({checkpoint.enqueued} sent before; --restart to start over)")
    bar = bar or Bar(enabled=False)
    planner = Planner(pipeline, document, only, renditions_prefix=rebuild.renditions_prefix)
    with bar:
        bar.phase("listing", None)
        source = list_objects(pipeline.s3, bucket, prefix, after)
        plan = make_plan(planner, source, bucket=bucket, prefix=prefix, resumed_from=after, on_listed=bar.update)
        doc = _document(plan, stored, only, checkpoint, options)
        if not plan.candidates:
            doc["status"] = "nothing_to_do"
            if not options.dry_run:
                checkpoint.done = True
                checkpoint.save()
            return doc
        if options.dry_run:
            doc["status"] = "dry_run"
            return doc
        if not options.yes and not confirm(_question(plan)):
            doc["status"] = "declined"
            return doc
        _settle(stored, options.settle_seconds, note, sleep)
        return _send(rebuild, plan, checkpoint, doc, named=bool(only), note=note, bar=bar, on_batch=on_batch)


def _settle(stored: StoredPresets, seconds: float, note: Callable[[str], None], sleep: Callable[[float], None]) -> None:
    """Wait until every renditions function has the stored document: at most its cache's age after it was set."""
    modified = parse_time(stored.modified)
    if modified is None or seconds <= 0:
        return
    left = seconds - (datetime.now(UTC) - modified).total_seconds()
    if left > 0:
        note(
            f"the presets were set {seconds - left:.0f} s ago and the renditions function keeps the document it "
            f"read for up to {seconds:.0f} s: waiting {left:.0f} s so every rendition uses these"
        )
        sleep(left)


def _question(plan: RebuildPlan) -> str:
    spelled = ", ".join(f"{name} {n}" for name, n in sorted(plan.by_preset.items()))
    return (
        f"Re-render {plan.renditions} rendition(s) of {len(plan.candidates)} cutout(s) ({spelled}) from the stored "
        "cutouts? 0 Magic Hour credits"
    )


def _send(
    rebuild: RebuildTarget,
    plan: RebuildPlan,
    checkpoint: Checkpoint,
    doc: dict[str, Any],
    *,
    named: bool,
    note: Callable[[str], None],
    bar: Bar,
    on_batch: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    bar.phase("sending", len(plan.candidates))

    def after_batch(sent: int, total: int) -> None:
        bar.update(sent)
        if on_batch:
            on_batch(sent, total)

    try:
        sent = enqueue(
            rebuild.pipeline,
            plan.candidates,
            checkpoint,
            after_batch,
            queue_url=rebuild.queue_url,
            message=lambda c: c.message(named),
        )
    except KeyboardInterrupt:
        sent = checkpoint.enqueued - doc["sent_before"]
        doc.update(status="interrupted", sent=sent, checkpoint_position=checkpoint.position)
        note(f"interrupted after {sent} cutout(s); run the same command again to go on")
        return doc
    checkpoint.done = True
    checkpoint.save()
    doc.update(status="sent", sent=sent, checkpoint_position=checkpoint.position)
    return doc


def _document(
    plan: RebuildPlan, stored: StoredPresets, only: tuple[str, ...], checkpoint: Checkpoint, options: Options
) -> dict[str, Any]:
    return {
        "location": options.uri,
        "prefix": plan.prefix,
        "dry_run": options.dry_run,
        "presets_parameter": stored.parameter,
        "presets_version": stored.version,
        "only_presets": list(only) or None,
        "resumed_after": plan.resumed_from,
        "objects": plan.objects,
        "skipped": dict(sorted(plan.skipped.items())),
        "cutouts": len(plan.candidates),
        "renditions": plan.renditions,
        "by_preset": dict(sorted(plan.by_preset.items())),
        "credits": 0,  # renditions are rendered from the stored cutout: Magic Hour is never called
        "sent_before": checkpoint.enqueued,
        "sent": 0,
        "checkpoint": None if options.dry_run else str(checkpoint.path),
        "status": "planned",
    }
