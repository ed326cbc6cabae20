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


def model(e2e: dict[str, Any] | None, per_record: dict[str, Any] | None) -> dict[str, Any]:
    images = 1000
    mode = (e2e or {}).get("modes", {}).get("webhooks") or {}
    measured = bool(mode.get("images"))
    calls: dict[str, float] = (
        dict(mode.get("aws_calls_per_image") or MODELLED_CALLS) if measured else dict(MODELLED_CALLS)
    )
    invocations: dict[str, float] = (
        dict(mode.get("invocations_per_image") or {}) if measured else dict(MODELLED_INVOCATIONS)
    )
    durations_ms: dict[str, float] = (
        {k: v["median"] for k, v in mode.get("invocation_ms", {}).items() if v.get("median") is not None}
        if measured
        else {"SubmitFunction": 300.0, "WebhookFunction": 40.0, "PollFunction": 30.0, "FinalizeFunction": 150.0}
    )
    if per_record and per_record.get("wall_ms_per_record", {}).get("median") and not measured:
        durations_ms["SubmitFunction"] = per_record["wall_ms_per_record"]["median"] * 10  # a batch of 10
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
        "source": "measured in part 3 (webhooks mode)"
        if measured
        else "modelled from the domain code (part 3 not run)",
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
        "prices": {
            "lambda_arm64_gb_s": LAMBDA_GB_SECOND_USD,
            "lambda_per_million_requests": 0.20,
            "sqs_per_million": 0.40,
            "dynamodb_per_million_wru": 0.625,
            "dynamodb_per_million_rru": 0.125,
            "s3_put_per_1000": 0.005,
            "s3_get_per_1000": 0.0004,
            "eventbridge_per_million_custom_events": 1.00,
        },
        "notes": (
            "Local durations include moto/emulator answer times on a shared 1-process stack, so Lambda compute is "
            "an upper-side estimate. Excluded: storage, CloudWatch Logs, data transfer, free tiers, INIT billing "
            "of cold starts (amortised over an execution environment's lifetime)."
        ),
    }
