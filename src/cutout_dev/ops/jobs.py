"""``cutout jobs`` (newest first, filtered by status, age and key prefix) and ``cutout job ID|s3://bucket/key``
(one record: its history, cost, error, output, and a ready CloudWatch Logs Insights query for it)."""

from __future__ import annotations

import argparse
import shlex
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from cutout.domain.models import job_id_for

from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output, fields, table
from cutout_dev.ops.records import (
    JobsTable,
    detail,
    flag_codes,
    net_credits,
    renditions,
    since_argument,
    statuses,
    summary,
)
from cutout_dev.ops.renditions.plan import key_prefix
from cutout_dev.ops.target import StackTarget, TargetError

DEFAULT_LIMIT = 50
ANY_FLAG = "any"  # `cutout jobs --flagged` without a code
LOGS_LOOKBACK_DAYS = 7
# The "Earlier attempts" columns in reading order (from a history entry: job_store.HISTORY_FIELDS + its span).
ATTEMPT_COLUMNS = ("started", "ended", "status", "error", "credits", "project", "message")


def add_parser(subparsers: Any) -> None:
    jobs = subparsers.add_parser(
        "jobs",
        help="list jobs, newest first",
        description="Jobs newest first from the by-status index (all statuses merged unless --status).",
    )
    jobs.add_argument("--status", action="append", choices=statuses(), help="only this status (repeatable)")
    jobs.add_argument(
        "--since", type=since_argument, metavar="WHEN", help="created since: 30m, 12h, 1d, 2w or an ISO time"
    )
    jobs.add_argument(
        "--prefix", metavar="P", help="only source keys under the input prefix + P, e.g. shop/ (as in upload)"
    )
    jobs.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most N jobs (default {DEFAULT_LIMIT}; 0 = all)"
    )
    jobs.add_argument(
        "--flagged",
        nargs="?",
        const=ANY_FLAG,
        default=None,
        metavar="CODE",
        help="only cutouts the renditions step flagged (no_subject, background_not_removed, subject_cut_off), or "
        "only this flag; complete jobs unless --status",
    )
    jobs.set_defaults(run=run_jobs)

    job = subparsers.add_parser(
        "job",
        help="one job: history, cost, error, output, a Logs Insights query",
        description="One job record by id, or by the object it was made from (s3://bucket/key: HeadObject's ETag).",
    )
    job.add_argument("job", metavar="ID|s3://bucket/key")
    job.set_defaults(run=run_job)


# -- jobs ------------------------------------------------------------------------------------------------------
def run_jobs(args: argparse.Namespace, target: StackTarget) -> int:
    if args.flagged:
        return _flagged(args, target)
    table_ = JobsTable(target.client("dynamodb"), target.table)
    prefix = target.key_prefix(args.prefix) if args.prefix else None  # as upload, backfill and retry read it
    limit = args.limit if args.limit > 0 else None
    found = table_.newest(args.status or statuses(), args.since, prefix=prefix, limit=limit)
    rows = [summary(j) for j in found]
    result = {"jobs": rows, "count": len(rows), "limit": limit}

    def draw(console: Any) -> None:
        columns = ("job id", "status", "created", "credits", "error / output key", "source key")
        console.print(
            table(
                None,
                columns,
                [
                    (
                        r["job_id"],
                        r["status"],
                        r["created_at"],
                        r["credits"],
                        r["error_code"] or r["output_key"] or "",
                        r["source_key"],
                    )
                    for r in rows
                ],
            )
        )
        more = " (--limit reached; narrow with --status/--since/--prefix)" if limit and len(rows) == limit else ""
        console.print(f"{len(rows)} job(s){more}", markup=False)

    Output.from_args(args).emit(result, draw)
    return EXIT_OK


def _flagged(args: argparse.Namespace, target: StackTarget) -> int:
    """``cutout jobs --flagged [CODE]``: the cutouts a shop would not publish as they are, with the judge's figure.
    Renditions are made after a job completes, so only complete jobs carry flags unless --status says otherwise."""
    table_ = JobsTable(target.client("dynamodb"), target.table)
    given = str(args.prefix or "")
    given = given.removeprefix("s3://").partition("/")[2] if given.startswith("s3://") else given
    prefix = key_prefix(target.input_prefix, given) if args.prefix else None  # relative to the input prefix
    limit = args.limit if args.limit > 0 else None
    code = None if args.flagged == ANY_FLAG else args.flagged
    found = table_.newest(
        args.status or ["complete"], args.since, prefix=prefix, limit=None if code else limit, flagged=True
    )
    if code:  # a flag is an item of a list: DynamoDB cannot filter on one field of it, so it is picked here
        found = [j for j in found if code in flag_codes(j)][:limit]
    rows = [{**summary(j), "rendition_flags": renditions(j)["flags"]} for j in found]
    result = {"jobs": rows, "count": len(rows), "limit": limit, "flag": code}

    def draw(console: Any) -> None:
        def spelled(flags: list[dict[str, Any]]) -> str:
            return ", ".join(f"{f.get('code')} {f.get('figure')}" for f in flags)

        columns = ("job id", "created", "flags (figure)", "source key")
        body = [(r["job_id"], r["created_at"], spelled(r["rendition_flags"]), r["source_key"]) for r in rows]
        console.print(table(None, columns, body, no_wrap={"job id", "created"}))
        what = f"flagged {code}" if code else "flagged"
        console.print(f"{len(rows)} {what} job(s); `cutout job ID` shows each flag's message", markup=False)

    Output.from_args(args).emit(result, draw)
    return EXIT_OK


# -- job -------------------------------------------------------------------------------------------------------
def resolve_job_id(target: StackTarget, ref: str) -> str:
    """A job id as given, or the one the pipeline derives for an object (bucket, key, current ETag)."""
    if not ref.startswith("s3://"):
        return ref
    bucket, _, key = ref.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise TargetError(f"{ref}: expected s3://bucket/key")
    s3 = target.client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        raise TargetError(f"{ref}: {_not_found(target, bucket, key, exc)}") from exc
    return job_id_for(bucket, key, str(head["ETag"]))


def _not_found(target: StackTarget, bucket: str, key: str, exc: ClientError) -> str:
    """What HeadObject's bare "Not Found" meant, and what to do. A HEAD response has no body, so S3 cannot say
    whether the bucket or the key is missing (Amazon S3 API Reference, HeadObject: "a HEAD request has the same
    options as a GET operation on an object. The response is identical to the GET response except that there
    is no response body"); HeadBucket tells them apart."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    stack_input = f"s3://{target.bucket}/{target.input_prefix}"
    if status == 403:
        return f"access denied to s3://{bucket}/{key}: check --profile (or the bucket's policy)"
    try:
        target.client("s3").head_bucket(Bucket=bucket)
    except ClientError as bucket_exc:
        code = bucket_exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == 404:
            return f"bucket {bucket} not found: check the name (this stack's uploads go to {stack_input})"
        if code == 403:
            return f"bucket {bucket} is not readable with these credentials: check the name or --profile"
    if status == 404:
        return f"no object {key!r} in bucket {bucket}: check the key, or give the job id (cutout jobs)"
    return str(exc.response.get("Error", {}).get("Message") or exc)


def logs_insights(target: StackTarget, job_id: str, now: datetime | None = None) -> dict[str, Any]:
    """A Logs Insights query over the functions' log groups for one job (every log line carries ``job_id``)."""
    groups = list(target.log_groups.values())
    query = (
        "fields @timestamp, @log, level, message, status, error_code, project_id"
        f' | filter job_id = "{job_id}" | sort @timestamp asc | limit 500'
    )
    end = int((now or datetime.now(UTC)).timestamp())
    start = end - LOGS_LOOKBACK_DAYS * 86400
    command = (
        "aws logs start-query"
        + "".join(f" --log-group-names {shlex.quote(g)}" for g in groups)
        + f" --start-time {start} --end-time {end} --query-string {shlex.quote(query)}"
    )
    return {"log_groups": groups, "query": query, "command": command}


def logs_for(target: StackTarget, job_id: str) -> dict[str, Any]:
    """Where this job's log lines are: a Logs Insights query on a deployed stack; on the local stack, which has
    no CloudWatch log groups, the file ``cutout local up`` writes the functions' output to."""
    if not target.local:
        return {"logs_insights": logs_insights(target, job_id)}
    file = target.local_logs
    return {
        "local_logs": {
            "file": file,
            "command": f"grep {shlex.quote(job_id)} {shlex.quote(file)}" if file else None,
        }
    }


def run_job(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    job_id = resolve_job_id(target, args.job)
    record = JobsTable(target.client("dynamodb"), target.table).get(job_id)
    if record is None or "#" in job_id:
        out.note(f"cutout: no job {job_id}" + (f" for {args.job}" if args.job != job_id else ""))
        return EXIT_ERROR
    result = {**detail(record), **logs_for(target, job_id)}

    def draw(console: Any) -> None:
        console.print(
            fields(
                (name, result[key])
                for name, key in (
                    ("Job", "job_id"),
                    ("Status", "status"),
                    ("Source", "source"),
                    ("ETag", "source_etag"),
                    ("Version", "source_version_id"),
                    ("Output", "output"),
                    ("Magic Hour project", "project_id"),
                    ("Credits", "credits"),
                    ("Ambiguous create", "ambiguous"),
                    ("Error", "error_code"),
                    ("Message", "error_message"),
                    ("Fix", "fix"),
                    ("Attempts", "attempts"),
                    ("Renditions made", "renditions_at"),
                )
                if result[key] not in (None, "", False)
            )
        )
        console.print()
        steps = [(s["step"], s["at"]) for s in result["steps"]]
        console.print(table("History", ("step", "at"), steps, no_wrap={"at"}))
        if result["previous_attempts"]:
            console.print()
            previous = sorted(
                (p for p in result["previous_attempts"] if isinstance(p, dict)),
                key=lambda p: str(p.get("started_at", "")),
            )  # oldest first
            rows = [
                (
                    p.get("started_at"),
                    p.get("ended_at"),
                    str(p.get("status", "")) + (" (ambiguous)" if p.get("ambiguous") else ""),
                    p.get("error_code"),
                    net_credits(p),
                    p.get("project_id"),
                    p.get("error_message"),
                )
                for p in previous
            ]
            no_wrap = {"started", "ended", "error", "project"}  # timestamps and ids are never broken mid-token
            console.print(table("Earlier attempts", ATTEMPT_COLUMNS, rows, no_wrap=no_wrap))
        _draw_renditions(console, result)
        console.print()
        if "local_logs" in result:
            local = result["local_logs"]
            if local["file"]:
                console.print(f"Logs (local stack: no CloudWatch; the functions' output is in {local['file']})")
                console.print("  " + local["command"], markup=False, soft_wrap=True)
            else:
                console.print("Logs: the local stack printed the functions' output to its terminal", markup=False)
        else:
            console.print("Logs Insights (log groups: " + ", ".join(result["logs_insights"]["log_groups"]) + ")")
            console.print("  " + result["logs_insights"]["query"], markup=False, soft_wrap=True)

    out.emit(result, draw)
    return EXIT_OK


RENDITION_COLUMNS = ("preset", "status", "key", "bytes", "size", "rendered", "reason")


def _draw_renditions(console: Any, result: dict[str, Any]) -> None:
    """The renditions made from the cutout, the judge's flags, the presets the upload named that do not exist."""
    if result["renditions"]:
        console.print()
        rows = [
            (
                r["name"],
                r["status"],
                r["key"],
                f"{r['bytes']:,}" if isinstance(r["bytes"], int) else r["bytes"],
                f"{r['width']}x{r['height']}" if r["width"] else None,
                r["rendered_at"],
                r["reason"],
            )
            for r in result["renditions"]
        ]
        console.print(table("Renditions", RENDITION_COLUMNS, rows, no_wrap={"preset", "status", "rendered"}))
    if result["flags"]:
        console.print()
        flags = [(f.get("code"), f.get("figure"), f.get("message")) for f in result["flags"]]
        console.print(table("Flags (renditions were still made)", ("flag", "figure", "what it means"), flags))
    if result["unknown_presets"]:
        console.print()
        console.print(
            "Unknown presets (asked for by the upload's metadata, not in the document): "
            + ", ".join(map(str, result["unknown_presets"])),
            markup=False,
            soft_wrap=True,
        )
