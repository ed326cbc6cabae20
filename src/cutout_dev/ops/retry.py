"""``cutout retry (ID… | --status error|timed_out|canceled [--since 1d] [--code C]) [--yes]`` — a safe reprocess.

Never deletes a record: each job is reopened by the store's `reopen_for_retry` (failed → `retry_pending`, the
previous outcome pushed onto `history`, `attempts` counted), then its source object is announced to the ingest
queue like an upload. The submit's one claim takes it from there, so a retry racing a redelivered upload of the
same object creates once, and the budget, the checks and the output path are the upload's.

Refused: jobs in flight or complete (and rejected ones: Magic Hour or the checks refused the input; upload a fixed
object instead). An ambiguous create (`ambiguous=true`: Magic Hour may have created, and charged, the first one)
is retried only after a separate yes, or with --allow-ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from cutout.job_store import BY_STATUS_INDEX, JobStore, _deser
from cutout.magic_hour import CREDITS_PER_IMAGE
from cutout.models import RETRYABLE, JobStatus, iso, utc_now

from cutout_dev.ops.backfill import Pipeline
from cutout_dev.ops.ingest import S3Object, batches, object_created_event, send_events

RETRY_REASON = "cutout retry"
_SINCE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RetryError(RuntimeError):
    pass


def parse_since(text: str) -> datetime:
    """``30m``, ``12h``, ``1d``, ``2w`` ago, or an ISO-8601 date/time (UTC when it has no zone)."""
    match = _SINCE.match(text.strip().lower())
    if match:
        return utc_now() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise RetryError(f"--since: expected e.g. 1d, 12h or 2026-11-30T00:00, got {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=utc_now().tzinfo)


def jobs_by_status(
    pipeline: Pipeline, status: JobStatus, since: datetime | None = None, code: str | None = None
) -> list[dict[str, Any]]:
    """Jobs in ``status`` (the `by-status` index, never a scan), created since ``since``, with error code ``code``."""
    kwargs: dict[str, Any] = {
        "TableName": pipeline.table,
        "IndexName": BY_STATUS_INDEX,
        "KeyConditionExpression": "#s = :s" + (" AND created_at >= :c" if since else ""),
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": status.value}, **({":c": {"S": iso(since)}} if since else {})},
    }
    if code:
        kwargs["FilterExpression"] = "error_code = :code"
        kwargs["ExpressionAttributeValues"][":code"] = {"S": code}
    jobs: list[dict[str, Any]] = []
    while True:
        page = pipeline.dynamodb.query(**kwargs)
        jobs.extend(_deser(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return jobs
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Selection:
    jobs: list[dict[str, Any]] = field(default_factory=list)  # retryable (or already retry_pending)
    refused: dict[str, str] = field(default_factory=dict)  # job id → why

    @property
    def ambiguous(self) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j.get("ambiguous") and j["status"] != JobStatus.RETRY_PENDING]


def select(
    pipeline: Pipeline,
    ids: list[str] | None = None,
    status: JobStatus | None = None,
    since: datetime | None = None,
    code: str | None = None,
) -> Selection:
    store = JobStore(pipeline.table, pipeline.dynamodb)
    found: list[dict[str, Any]] = []
    selection = Selection()
    for job_id in dict.fromkeys(ids or []):
        job = store.get(job_id)
        if job is None:
            selection.refused[job_id] = "not_found"
        else:
            found.append(job)
    if status is not None:
        if status not in RETRYABLE:
            raise RetryError(f"--status must be one of {', '.join(sorted(s.value for s in RETRYABLE))}")
        found.extend(jobs_by_status(pipeline, status, since, code))
    for job in found:
        st = JobStatus(job["status"])
        if st in RETRYABLE or st == JobStatus.RETRY_PENDING:  # retry_pending: a previous retry's send failed
            selection.jobs.append(job)
        else:
            selection.refused[job["job_id"]] = (
                st.value if st in (JobStatus.COMPLETE, JobStatus.REJECTED) else "in_flight"
            )
    return selection


def source_of(pipeline: Pipeline, job: dict[str, Any]) -> S3Object | str:
    """The object the job was made from, or why it cannot be retried (it is gone, or other bytes are there now).

    Checked before reopening: an event for a missing object would leave the job waiting in `retry_pending`."""
    obj = S3Object(
        bucket=str(job["source_bucket"]),
        key=str(job["source_key"]),
        etag=str(job.get("source_etag") or ""),
        size=int(job.get("source_size") or 0),
        version_id=job.get("source_version_id") or None,
    )
    kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
    if obj.version_id and obj.version_id != "null":
        kwargs["VersionId"] = obj.version_id
    try:
        head = pipeline.s3.head_object(**kwargs)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (403, 404, 400):
            return "source_missing"
        raise
    if obj.etag and str(head.get("ETag", "")).strip('"') != obj.etag:
        return "source_changed"  # new bytes at the key are a new job (an upload of its own), not this one
    return obj


def run_retry(
    pipeline: Pipeline,
    selection: Selection,
    *,
    yes: bool,
    allow_ambiguous: bool,
    confirm: Callable[[str], bool],
    note: Callable[[str], None],
) -> dict[str, Any]:
    """Ask, reopen, enqueue. Returns the result document; ``status``: nothing_to_do, declined, retried."""
    doc: dict[str, Any] = {
        "selected": len(selection.jobs) + len(selection.refused),
        "retried": [],
        "refused": dict(selection.refused),
        "credits": 0,
        "status": "nothing_to_do",
    }
    for job_id, why in selection.refused.items():
        note(f"{job_id}: not retried ({why})")
    jobs = list(selection.jobs)
    ambiguous = {j["job_id"] for j in selection.ambiguous}
    if ambiguous and not allow_ambiguous:
        warning = (
            f"{len(ambiguous)} job(s) are ambiguous creates: Magic Hour may have created (and charged) them "
            "already, and a retry pays again"
        )
        if not yes and confirm(f"{warning}. Retry them too?"):
            allow_ambiguous = True
        else:
            note(f"{warning}; left alone (retry them with --allow-ambiguous)")
            jobs = [j for j in jobs if j["job_id"] not in ambiguous]
            doc["refused"].update(dict.fromkeys(sorted(ambiguous), "ambiguous"))
    if not jobs:
        return doc
    credits = len(jobs) * CREDITS_PER_IMAGE
    if not yes and not confirm(f"Retry {len(jobs)} job(s) for up to {credits} credits?"):
        doc["status"] = "declined"
        return doc

    store = JobStore(pipeline.table, pipeline.dynamodb)
    to_send: list[tuple[str, S3Object]] = []
    for job in jobs:
        source = source_of(pipeline, job)
        if isinstance(source, str):
            doc["refused"][job["job_id"]] = source
            continue
        if job["status"] != JobStatus.RETRY_PENDING:
            reopened = store.reopen_for_retry(job["job_id"], allow_ambiguous=allow_ambiguous)
            if not reopened.ok:
                doc["refused"][job["job_id"]] = reopened.reason
                continue
        to_send.append((job["job_id"], source))
    for batch in batches(to_send):
        events = [object_created_event(obj, region=pipeline.region, reason=RETRY_REASON) for _, obj in batch]
        send_events(pipeline.sqs, pipeline.ingest_queue_url, events)
        doc["retried"].extend(job_id for job_id, _ in batch)
    doc["credits"] = len(doc["retried"]) * CREDITS_PER_IMAGE
    doc["status"] = "retried" if doc["retried"] else "nothing_to_do"
    return doc
