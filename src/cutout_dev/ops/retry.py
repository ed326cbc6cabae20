"""``cutout retry (ID… | --status error|timed_out|canceled|rejected [--since 1d] [--code C] [--prefix P]) [--yes]``
— a safe reprocess.

Never deletes a record: each job is reopened by the store's `reopen_for_retry` (failed → `retry_pending`, the
previous outcome pushed onto `history`, `attempts` counted), then its source object is announced to the ingest
queue like an upload. The submit's one claim takes it from there, so a retry racing a redelivered upload of the
same object creates once, and the budget, the checks and the output path are the upload's.

A rejection caused by the stack's configuration or its environment (`CONFIGURATION_REJECTIONS`: a missing
background, the object gone when it was read) is retried like a failure once the cause is fixed; `--status rejected`
selects those only. Refused (exit status 1, each with what to do instead): jobs in flight or complete, and
rejections caused by the file (Magic Hour or the checks refused the input: upload a corrected file instead). An
ambiguous create (`ambiguous=true`: Magic Hour may have created, and charged, the first one) is retried only after
a separate yes, or with --allow-ambiguous.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from cutout.domain.models import CONFIGURATION_REJECTIONS, RETRYABLE, JobStatus, is_retryable
from cutout.magic_hour.client import CREDITS_PER_IMAGE
from cutout.store.job_store import JobStore

from cutout_dev.ops.backfill import Pipeline, ask
from cutout_dev.ops.ingest import S3Object, batches, object_created_event, send_events
from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output, table
from cutout_dev.ops.records import JobsTable, since_argument
from cutout_dev.ops.target import StackTarget, TargetError

RETRY_REASON = "cutout retry"
# What --status may select: the failures, and the rejections a configuration fix resolves.
SELECTABLE = frozenset({*RETRYABLE, JobStatus.REJECTED})
# Why a job was not retried → what to do instead (a refusal never leaves the operator guessing).
INSTEAD: dict[str, str] = {
    "rejected": "a rejected upload is fixed by uploading a corrected file again (new bytes are a new job)",
    "complete": "it is complete already; nothing to retry",
    "in_flight": "it is still in flight; follow it with: cutout job ID",
    "not_found": "no such job; find the id with: cutout jobs",
    "ambiguous": "Magic Hour may have created (and charged) it already; retry it with --allow-ambiguous",
    "source_missing": "its source object is gone; upload the file again",
    "source_changed": "other bytes are at its key now; they are a job of their own (cutout job s3://bucket/key)",
    "changed": "the record changed while this ran; run the command again",
    "retry_pending": "it is waiting for its retry already",
}


def instead(why: str) -> str:
    return INSTEAD.get(why, "see: cutout job ID")


class RetryError(TargetError):
    """The selection cannot be made (exit status 1)."""


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
    prefix: str | None = None,
) -> Selection:
    jobs_table = JobsTable(pipeline.dynamodb, pipeline.table)
    found: list[dict[str, Any]] = []
    selection = Selection()
    for job_id in dict.fromkeys(ids or []):
        job = jobs_table.get(job_id)
        if job is None:
            selection.refused[job_id] = "not_found"
        else:
            found.append(job)
    if status is not None:
        if status not in SELECTABLE:
            raise RetryError(f"--status must be one of {', '.join(sorted(s.value for s in SELECTABLE))}")
        found.extend(
            job
            for job in jobs_table.by_status(status.value, since, newest_first=False, prefix=prefix)
            if (code is None or job.get("error_code") == code)
            # --status rejected: the rejections a fix of configuration resolves, not those of their file
            and (status != JobStatus.REJECTED or job.get("error_code") in CONFIGURATION_REJECTIONS)
        )
    for job in found:
        st = JobStatus(job["status"])
        if is_retryable(st, job.get("error_code")) or st == JobStatus.RETRY_PENDING:  # pending: a send failed
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


def _silent(_text: str) -> None:
    pass


def run_retry(
    pipeline: Pipeline,
    selection: Selection,
    *,
    yes: bool,
    allow_ambiguous: bool,
    confirm: Callable[[str], bool],
    note: Callable[[str], None],
    note_refusals: bool = True,
) -> dict[str, Any]:
    """Ask, reopen, enqueue. Returns the result document; ``status``: nothing_to_do, declined, retried.
    ``note_refusals``: each refusal also as a note (off where a table shows them with what to do instead)."""
    refused_note: Callable[[str], None] = note if note_refusals else _silent
    doc: dict[str, Any] = {
        "selected": len(selection.jobs) + len(selection.refused),
        "retried": [],
        "refused": dict(selection.refused),
        "credits": 0,
        "status": "nothing_to_do",
    }
    for job_id, why in selection.refused.items():
        refused_note(f"{job_id}: refused ({why}): {instead(why)}")
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
            refused_note(f"{job['job_id']}: refused ({source}): {instead(source)}")
            continue
        if job["status"] != JobStatus.RETRY_PENDING:
            reopened = store.reopen_for_retry(job["job_id"], allow_ambiguous=allow_ambiguous)
            if not reopened.ok:
                doc["refused"][job["job_id"]] = reopened.reason
                refused_note(f"{job['job_id']}: refused ({reopened.reason}): {instead(reopened.reason)}")
                continue
        to_send.append((job["job_id"], source))
    for batch in batches(to_send):
        events = [object_created_event(obj, region=pipeline.region, reason=RETRY_REASON) for _, obj in batch]
        send_events(pipeline.sqs, pipeline.ingest_queue_url, events)
        doc["retried"].extend(job_id for job_id, _ in batch)
    doc["credits"] = len(doc["retried"]) * CREDITS_PER_IMAGE
    doc["status"] = "retried" if doc["retried"] else "nothing_to_do"
    return doc


# ----- the CLI ------------------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retry",
        help="reprocess failed jobs, keeping their records and history",
        description=(
            "Reprocess failed jobs (error, timed_out, canceled) and uploads rejected for the stack's configuration "
            "(a missing background: fix it first) through the same claim as an upload: the record and its history "
            "are kept; jobs in flight or complete, and files refused for themselves, are refused; an ambiguous "
            "create (it may already be paid) is retried only after a separate yes or with --allow-ambiguous."
        ),
    )
    parser.add_argument("jobs", nargs="*", metavar="ID|s3://bucket/key", help="job ids (or the objects they came from)")
    parser.add_argument(
        "--status",
        choices=sorted(s.value for s in SELECTABLE),
        help="every job with this status (rejected: those rejected for the configuration, not for their file)",
    )
    parser.add_argument(
        "--since", type=since_argument, metavar="WHEN", help="with --status: created since (1d, 12h, ISO)"
    )
    parser.add_argument("--code", metavar="C", help="with --status: only this error code")
    parser.add_argument(
        "--prefix", metavar="P", help="with --status: only source keys under the input prefix + P (e.g. shop/)"
    )
    parser.add_argument("--yes", action="store_true", help="no questions (ambiguous creates still need the flag)")
    parser.add_argument(
        "--allow-ambiguous", action="store_true", help="also re-create ambiguous creates (may pay twice)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: StackTarget) -> int:
    from cutout_dev.ops.jobs import resolve_job_id

    if not args.jobs and not args.status:
        raise RetryError("name jobs (ID or s3://bucket/key) or pick them with --status")
    if (args.since or args.code or args.prefix) and not args.status:
        raise RetryError("--since, --code and --prefix select with --status")
    out = Output.from_args(args)
    pipeline = Pipeline.from_target(target)
    ids = [resolve_job_id(target, ref) for ref in args.jobs]
    selection = select(
        pipeline,
        ids=ids,
        status=JobStatus(args.status) if args.status else None,
        since=args.since,
        code=args.code,
        prefix=target.key_prefix(args.prefix) if args.prefix else None,
    )
    doc = run_retry(
        pipeline,
        selection,
        yes=args.yes,
        allow_ambiguous=args.allow_ambiguous,
        confirm=ask,
        note=out.note,
        note_refusals=out.json,  # a person's table has an "instead" column; scripts read stderr
    )

    def draw(console: Any) -> None:
        rows = [(job_id, "retried", "") for job_id in doc["retried"]]
        rows += [(job_id, f"refused: {why}", instead(why)) for job_id, why in doc["refused"].items()]
        console.print(table(None, ("job", "outcome", "instead"), rows, no_wrap={"job"}))
        console.print(
            f"{len(doc['retried'])} retried (up to {doc['credits']} credits), {len(doc['refused'])} refused"
            + ("; follow them with: cutout jobs --since 1h" if doc["retried"] else "")
        )

    doc["instead"] = {job_id: instead(why) for job_id, why in doc["refused"].items()}
    out.emit(doc, draw)
    # A refusal is the command saying no (1, as every command's refusals), not "a person is needed" (2: status).
    return EXIT_ERROR if doc["status"] == "declined" or doc["refused"] else EXIT_OK
