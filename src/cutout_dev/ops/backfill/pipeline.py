"""Where the stack is for a backfill (its table, queue, bucket settings), and the location parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout.domain.models import utc_now
from cutout.runtime.config import Settings

from cutout_dev.ops.records import JobsTable
from cutout_dev.ops.target import StackTarget, TargetError

# Magic Hour's processing-time p50 for the background remover, queueing included.
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
    # What the stack keeps for itself in the bucket: never listed as uploads (the submit's skip filter)
    background_prefix: str = "backgrounds/"
    default_background_key: str = ""

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
            concurrency=as_int(params.get("MaxJobsInFlight")) or target.maximum_concurrency,
            max_input_bytes=as_int(params.get("MaxInputBytes")) or 20 * 1024 * 1024,
            background_prefix=params.get("BackgroundPrefix") or "backgrounds/",
            default_background_key=params.get("DefaultBackgroundKey", ""),
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
                "BACKGROUND_PREFIX": self.background_prefix,
                "DEFAULT_BACKGROUND_KEY": self.default_background_key,
            }
        )

    def spent_today(self) -> int:
        """Credits reserved today (the submit's `budget#YYYY-MM-DD` counter)."""
        return JobsTable(self.dynamodb, self.table).budget_spent(utc_now().strftime("%Y-%m-%d"))


def as_int(value: str | None) -> int:
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
