"""Part 5: AWS cost per 1,000 images from measured call counts and durations, next to Magic Hour's credits.

Public list prices, us-east-1, as constants (check https://aws.amazon.com/<service>/pricing/ before quoting).
Free tiers are ignored; storage (S3, DynamoDB), CloudWatch Logs and data transfer are out of scope (they depend on
retention and log volume, not on Cutout's design).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutout.magic_hour.client import CREDITS_PER_IMAGE

ROOT = Path(__file__).resolve().parents[3]

# Lambda, arm64: per GB-second and per request.
LAMBDA_GB_SECOND_USD = 0.0000133334
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
# SQS standard queue: per request (every 64 KB chunk of a request counts as one; our messages are < 64 KB).
SQS_REQUEST_USD = 0.40 / 1_000_000
# DynamoDB on-demand, after the November 2024 price cut (was $1.25 / $0.25 per million).
DYNAMODB_WRU_USD = 0.625 / 1_000_000
DYNAMODB_RRU_USD = 0.125 / 1_000_000
# S3 Standard requests.
S3_PUT_USD = 0.005 / 1_000  # PUT, COPY, POST, LIST
S3_GET_USD = 0.0004 / 1_000  # GET and all other requests
# EventBridge custom events (PutEvents). S3's own "Object Created" events on the default bus are free.
EVENTBRIDGE_EVENT_USD = 1.00 / 1_000_000

# When part 3 did not run: the calls one image makes on the webhook path, read from the domain code
# (submit: GET range, slot snapshot (BatchGetItem) + slot put, claim (a conditional insert), record update, poll
# send; webhook: replay-mark update, completion send; finalize: get, slot delete, limit get, dispatch send, lease
# update, S3 put, complete update, get, PutEvents; the dispatch message: one by-status query; the 5 s poll: one get).
MODELLED_CALLS = {
    "s3.GetObject": 1,
    "dynamodb.UpdateItem": 5,
    "dynamodb.GetItem": 4,
    "dynamodb.BatchGetItem": 1,
    "dynamodb.PutItem": 1,
    "dynamodb.DeleteItem": 1,
    "dynamodb.Query": 1,
    "s3.PutObject": 1,
    "sqs.SendMessage": 3,
    "eventbridge.PutEvents": 1,
}
# The dispatch message each finish sends is one more (small) submit invocation per image at most.
MODELLED_INVOCATIONS = {"SubmitFunction": 1.1, "WebhookFunction": 3.0, "PollFunction": 1.0, "FinalizeFunction": 1.0}
# Items one admission snapshot reads (MaxJobsInFlight slots + the limit item, at the template's default of 3).
SNAPSHOT_ITEMS = 4


def _memory_mb() -> dict[str, int]:
    from cutout_dev.local_stack.cfn_yaml import load_template

    tpl = load_template(ROOT / "template.yaml")
    default = int(((tpl.get("Globals") or {}).get("Function") or {}).get("MemorySize", 128))
    return {
        name: int((res.get("Properties") or {}).get("MemorySize", default))
        for name, res in tpl["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


# When part 3 did not run (or did not time a function): assumed invocation durations, labelled "modelled".
MODELLED_DURATIONS_MS = {
    "SubmitFunction": 300.0,
    "WebhookFunction": 40.0,
    "PollFunction": 30.0,
    "FinalizeFunction": 150.0,
}
E2E = "measured in part 3 (webhooks mode)"


def _inputs(
    mode: dict[str, Any], per_record: dict[str, Any] | None
) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, str]]:
    """Calls, invocations and durations per image, each from part 3 where it measured them, else modelled, with
    where each came from: a figure never says "measured" for a value the model filled in."""
    measured = bool(mode.get("images"))
    sources: dict[str, str] = {}
    calls = dict(mode.get("aws_calls_per_image") or {}) if measured else {}
    sources["aws_calls"] = E2E if calls else "modelled from the domain code (MODELLED_CALLS)"
    calls = calls or dict(MODELLED_CALLS)
    invocations = dict(mode.get("invocations_per_image") or {}) if measured else {}
    sources["invocations"] = E2E if invocations else "modelled from the domain code (MODELLED_INVOCATIONS)"
    invocations = invocations or dict(MODELLED_INVOCATIONS)
    timed = {k: v["median"] for k, v in (mode.get("invocation_ms") or {}).items() if v.get("median") is not None}
    untimed = sorted(fn for fn in invocations if fn not in timed)
    durations = {**{fn: MODELLED_DURATIONS_MS.get(fn, 100.0) for fn in untimed}, **timed}
    wall = (per_record or {}).get("wall_ms_per_record", {}).get("median")
    if "SubmitFunction" in untimed and wall:
        durations["SubmitFunction"] = wall * 10  # a batch of 10, each record as part 2 timed it
    rest = ", measured for the rest" if timed else ""
    sources["durations"] = E2E if not untimed else f"modelled for {', '.join(untimed)} (MODELLED_DURATIONS_MS){rest}"
    sources["magic_hour_credits"] = (
        f"modelled: {CREDITS_PER_IMAGE} credits per create, one create per image (the soak and floods check it)"
    )
    return calls, invocations, durations, sources


def model(e2e: dict[str, Any] | None, per_record: dict[str, Any] | None) -> dict[str, Any]:
    images = 1000
    mode = (e2e or {}).get("modes", {}).get("webhooks") or {}
    calls, invocations, durations_ms, sources = _inputs(mode, per_record)
    memory = _memory_mb()

    lambda_gbs = sum(
        invocations.get(fn, 0) * durations_ms.get(fn, 0) / 1000 * memory.get(fn, 256) / 1024 for fn in invocations
    )
    lambda_requests = sum(invocations.values())
    # SQS: the event sources' ReceiveMessage/DeleteMessageBatch counts locally reflect the local poller's long-poll
    # loop, not Lambda's; model each message as send + receive + delete (no batching credit: conservative), and add
    # the ingest hop, whose send is EventBridge's (not a botocore call here).
    sends = calls.get("sqs.SendMessage", 0) + 1
    sqs_requests = sends * 3
    writes = (
        calls.get("dynamodb.PutItem", 0) + calls.get("dynamodb.UpdateItem", 0) + calls.get("dynamodb.DeleteItem", 0)
    )
    # Items < 1 KB: 1 WRU on the table, plus the by-status GSI (projection ALL) on every write of a job item —
    # 2 WRU when the status (its key) changes (delete + put), counted as 2 throughout: conservative — plus
    # by-project (KEYS_ONLY) once, when project_id is first set.
    wru = writes * 3 + 1
    rru = (
        calls.get("dynamodb.GetItem", 0)
        + calls.get("dynamodb.Query", 0)
        + calls.get("dynamodb.BatchGetItem", 0) * SNAPSHOT_ITEMS
    )
    s3_puts = calls.get("s3.PutObject", 0)
    # + Magic Hour's GET of the presigned URL: billed to the bucket owner.
    s3_gets = calls.get("s3.GetObject", 0) + calls.get("s3.HeadObject", 0) + 1
    events = calls.get("eventbridge.PutEvents", 0) + calls.get("events.PutEvents", 0)
    lines = {
        "lambda_compute": lambda_gbs * LAMBDA_GB_SECOND_USD,
        "lambda_requests": lambda_requests * LAMBDA_REQUEST_USD,
        "sqs": sqs_requests * SQS_REQUEST_USD,
        "dynamodb": wru * DYNAMODB_WRU_USD + rru * DYNAMODB_RRU_USD,
        "s3_requests": s3_puts * S3_PUT_USD + s3_gets * S3_GET_USD,
        "eventbridge": events * EVENTBRIDGE_EVENT_USD,
    }
    per_1000 = {k: round(v * images, 4) for k, v in lines.items()}
    return {
        "sources": sources,
        "per_image_inputs": {
            "lambda_invocations": {k: round(v, 3) for k, v in invocations.items()},
            "lambda_duration_ms": {k: round(v, 1) for k, v in durations_ms.items()},
            "lambda_memory_mb": {k: memory.get(k, 256) for k in invocations},
            "lambda_gb_seconds": round(lambda_gbs, 5),
            "sqs_requests": sqs_requests,
            "dynamodb_wru": wru,
            "dynamodb_rru": rru,
            "s3_put": s3_puts,
            "s3_get": s3_gets,
            "eventbridge_events": events,
        },
        "usd_per_1000_images": per_1000,
        "aws_total_usd_per_1000_images": round(sum(per_1000.values()), 4),
        "magic_hour_credits_per_1000_images": CREDITS_PER_IMAGE * images,
        "fixed_usd_per_month": fixed_monthly(memory.get("SweeperFunction", 256)),
        "prices": {
            "lambda_arm64_gb_s": LAMBDA_GB_SECOND_USD,
            "lambda_per_million_requests": 0.20,
            "sqs_per_million": 0.40,
            "dynamodb_per_million_wru": 0.625,
            "dynamodb_per_million_rru": 0.125,
            "s3_put_per_1000": 0.005,
            "s3_get_per_1000": 0.0004,
            "eventbridge_per_million_custom_events": 1.00,
            "kms_key_per_month": KMS_KEY_MONTH_USD,
            "cloudwatch_alarm_per_month": ALARM_MONTH_USD,
            "cloudwatch_dashboard_per_month": DASHBOARD_MONTH_USD,
            "cloudwatch_custom_metric_per_month": METRIC_MONTH_USD,
            "secret_per_month": SECRET_MONTH_USD,
            "cloudwatch_logs_per_gb_ingested": LOGS_GB_USD,
            "xray_per_million_traces": XRAY_TRACE_USD * 1_000_000,
        },
        "notes": (
            "Local durations include moto/emulator answer times on a shared 1-process stack, so Lambda compute is "
            "an upper-side estimate. Excluded: storage, CloudWatch Logs, data transfer, free tiers, INIT billing "
            "of cold starts (amortised over an execution environment's lifetime)."
        ),
    }


# What a deployed stack costs per month with no uploads at all (list prices, us-east-1, free tiers ignored as above).
KMS_KEY_MONTH_USD = 1.00  # a customer managed key (the alarm topic's)
ALARM_MONTH_USD = 0.10  # a standard-resolution metric alarm
DASHBOARD_MONTH_USD = 3.00  # a dashboard (the first three of an account are free: ignored, as every free tier)
METRIC_MONTH_USD = 0.30  # a custom metric (first 10,000 tier), charged in a month it is published
SECRET_MONTH_USD = 0.40  # a Secrets Manager secret
LOGS_GB_USD = 0.50  # CloudWatch Logs ingestion
XRAY_TRACE_USD = 5.00 / 1_000_000  # X-Ray traces recorded (Tracing: Active)
MONTH_MINUTES = 60 * 24 * 31
# The metrics the idle schedules publish on every run (reconcile.py: JobsInFlight, JobsWaiting, SlotsRepaired;
# sweep.py: StuckJobs). Under load up to every name the domain counts is published: each $0.30 more that month.
IDLE_METRICS = ("JobsInFlight", "JobsWaiting", "SlotsRepaired", "StuckJobs")
# Modelled per scheduled run (not measured: the bench does not time an idle tick): duration, read units
# (tick: the slot snapshot's items + the capped waiting count; sweep: the three in-flight statuses' and the late
# checks' queries, one unit each when empty), and log bytes (one "reconciled"/"sweep finished" line + an EMF blob).
IDLE_RUN = {"tick": (50.0, SNAPSHOT_ITEMS + 1, 1000), "sweep": (100.0, 4, 1000)}


def _template_counts() -> dict[str, int]:
    from cutout_dev.local_stack.cfn_yaml import load_template

    resources = load_template(ROOT / "template.yaml")["Resources"].values()
    types = [str(r.get("Type")) for r in resources]
    return {t: types.count(t) for t in set(types)}


def fixed_monthly(sweeper_memory_mb: int) -> dict[str, Any]:
    """The stack's cost per month with no uploads, from template.yaml's resources and the price table above."""
    counts = _template_counts()
    runs = {"tick": MONTH_MINUTES, "sweep": MONTH_MINUTES // 15}  # rate(1 minute) and rate(15 minutes)
    gb_s = sum(n * IDLE_RUN[k][0] / 1000 * sweeper_memory_mb / 1024 for k, n in runs.items())
    rru = sum(n * IDLE_RUN[k][1] for k, n in runs.items())
    log_gb = sum(n * IDLE_RUN[k][2] for k, n in runs.items()) / 1e9
    usd = {
        "kms_key": counts.get("AWS::KMS::Key", 0) * KMS_KEY_MONTH_USD,
        "alarms": counts.get("AWS::CloudWatch::Alarm", 0) * ALARM_MONTH_USD,
        "dashboard": counts.get("AWS::CloudWatch::Dashboard", 0) * DASHBOARD_MONTH_USD,
        "custom_metrics": len(IDLE_METRICS) * METRIC_MONTH_USD,
        "secrets": counts.get("AWS::SecretsManager::Secret", 0) * SECRET_MONTH_USD,
        "scheduled_lambda": sum(runs.values()) * LAMBDA_REQUEST_USD + gb_s * LAMBDA_GB_SECOND_USD,
        "scheduled_dynamodb_reads": rru * DYNAMODB_RRU_USD,
        "logs": log_gb * LOGS_GB_USD,
        "xray": sum(runs.values()) * XRAY_TRACE_USD,
    }
    usd = {k: round(v, 4) for k, v in usd.items()}
    return {
        "usd": usd,
        "total": round(sum(usd.values()), 2),
        "counts": {
            "alarms": counts.get("AWS::CloudWatch::Alarm", 0),
            "dashboards": counts.get("AWS::CloudWatch::Dashboard", 0),
            "kms_keys": counts.get("AWS::KMS::Key", 0),
            "secrets": counts.get("AWS::SecretsManager::Secret", 0),
            "scheduled_runs": runs,
        },
        "assumptions": [
            "Resources counted in template.yaml; list prices, us-east-1, no free tier (the first 3 dashboards, "
            "10 alarms, 10 metrics, 1M Lambda requests and 100,000 traces of an account are free).",
            f"A 31-day month of the two schedules (the admission tick every minute, the sweep every 15), each run "
            f"modelled, not measured: {', '.join(f'{k} {v[0]:g} ms, {v[1]} read units' for k, v in IDLE_RUN.items())}, "
            f"about 1 KB of logs.",
            f"Custom metrics: the {len(IDLE_METRICS)} the idle schedules publish; each other metric the domain "
            f"counts adds ${METRIC_MONTH_USD:.2f} in a month it is published.",
            "Excluded: storage (S3, DynamoDB), log retention, SNS deliveries (none while idle).",
        ],
    }
