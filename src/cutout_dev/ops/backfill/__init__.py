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

from cutout_dev.ops.backfill.checkpoint import Checkpoint, duration, enqueue
from cutout_dev.ops.backfill.cli import add_parser, ask, run
from cutout_dev.ops.backfill.command import Bar, Options, counted, run_backfill
from cutout_dev.ops.backfill.listing import Listed, list_objects, read_manifest, source_for
from cutout_dev.ops.backfill.pipeline import (
    ARCHIVED,
    BATCH_GET,
    BATCH_GET_ATTEMPTS,
    CHECKPOINT_DIR,
    RENDER_SECONDS,
    BackfillError,
    Pipeline,
    parse_s3_uri,
)
from cutout_dev.ops.backfill.plan import Estimate, Filter, Plan, estimate, existing_jobs, job_records, make_plan

__all__ = [
    "ARCHIVED",
    "BATCH_GET",
    "BATCH_GET_ATTEMPTS",
    "CHECKPOINT_DIR",
    "RENDER_SECONDS",
    "BackfillError",
    "Bar",
    "Checkpoint",
    "Estimate",
    "Filter",
    "Listed",
    "Options",
    "Pipeline",
    "Plan",
    "add_parser",
    "ask",
    "counted",
    "duration",
    "enqueue",
    "estimate",
    "existing_jobs",
    "job_records",
    "list_objects",
    "make_plan",
    "parse_s3_uri",
    "read_manifest",
    "run",
    "run_backfill",
    "source_for",
]
