"""The plan: the listing filtered by what the submit would refuse and by what is already a job; the estimate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from cutout.aws.inspection import SNIFF_BYTES, Inspected, problem, skip_reason
from cutout.aws.s3_events import ObjectRef
from cutout.domain.models import JobStatus, is_retryable, job_id_for
from cutout.magic_hour.client import CREDITS_PER_IMAGE

from cutout_dev.ops.backfill.listing import Listed
from cutout_dev.ops.backfill.pipeline import (
    ARCHIVED,
    BATCH_GET,
    BATCH_GET_ATTEMPTS,
    RENDER_SECONDS,
    BackfillError,
    Pipeline,
)


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
    # Jobs among `images` whose rejection a fix of configuration resolved (a missing background): reopened for
    # retry, history kept, before they are enqueued again (`retry_pending` ones need only the event).
    reopen: set[str] = field(default_factory=set)
    retried: int = 0  # of `images`: jobs already, rejected for the configuration (or left retry_pending)

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
        skip = skip_reason(ref, self._settings)
        if skip:
            return skip
        if listed.storage_class.upper() in ARCHIVED:
            return "archived"
        refused = problem(Inspected(obj.key, obj.etag, obj.version_id, obj.size, "", b"", {}), self._settings)
        return refused[0] if refused else None


def existing_jobs(
    dynamodb: Any, table: str, job_ids: list[str], *, sleep: Any = time.sleep
) -> dict[str, tuple[str, str | None]]:
    """job id → (status, error code) of those with a record."""
    records = job_records(dynamodb, table, job_ids, ("status", "error_code"), sleep=sleep)
    return {
        job_id: (item.get("status", {}).get("S", ""), item.get("error_code", {}).get("S"))
        for job_id, item in records.items()
    }


def job_records(
    dynamodb: Any, table: str, job_ids: list[str], attributes: tuple[str, ...], *, sleep: Any = time.sleep
) -> dict[str, dict[str, Any]]:
    """The records of these job ids that exist, ``attributes`` of each, as DynamoDB items by job id
    (BatchGetItem, 100 keys a call, unprocessed keys retried)."""
    found: dict[str, dict[str, Any]] = {}
    names = {f"#a{i}": a for i, a in enumerate(dict.fromkeys(("job_id", *attributes)))}
    for start in range(0, len(job_ids), BATCH_GET):
        keys = [{"job_id": {"S": j}} for j in dict.fromkeys(job_ids[start : start + BATCH_GET])]
        request: dict[str, Any] = {
            table: {
                "Keys": keys,
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
                "ConsistentRead": True,
            }
        }
        for attempt in range(BATCH_GET_ATTEMPTS):
            if attempt:
                sleep(min(0.1 * 2**attempt, 5.0))
            resp = dynamodb.batch_get_item(RequestItems=request)
            found.update((item["job_id"]["S"], item) for item in resp.get("Responses", {}).get(table, []))
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                break
        if request:
            raise BackfillError("DynamoDB kept keys unprocessed (throttled); run again later")
    return found


def _plan_page(pipeline: Pipeline, plan: Plan, check: Filter, page: list[Listed], limit: int | None) -> None:
    """One page of listed objects into the plan: already a job, over the limit, refused by content, or an image."""
    ids = [job_id_for(i.obj.bucket, i.obj.key, i.obj.etag) for i in page]
    existing = existing_jobs(pipeline.dynamodb, pipeline.table, ids)
    for listed, job_id in zip(page, ids, strict=True):
        status, code = existing.get(job_id, ("", None))
        # A rejection the configuration caused (fixed since, or the submit rejects it again, free) is taken up
        # again, like `cutout retry`; a retry whose event was never sent (retry_pending) is sent.
        retry = status == JobStatus.RETRY_PENDING or (status == JobStatus.REJECTED and is_retryable(status, code))
        if job_id in existing and not retry:
            plan.already_jobs += 1
        elif limit is not None and len(plan.images) >= limit:
            plan.listing_complete = False  # more to do than --limit allows: the next run resumes
        elif reason := check.content_reason(listed):
            plan.skipped[reason] += 1  # the submit would refuse it, free: not priced as an image
        else:
            plan.images.append(listed)
            if retry:
                plan.retried += 1
                if status == JobStatus.REJECTED:
                    plan.reopen.add(job_id)


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
        _plan_page(pipeline, plan, check, page, limit)
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
