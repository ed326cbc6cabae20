"""AWS calls per image on each path of part 3 (end to end): the fewest each path's guarantees need, and the row
that sets the measured counts against them (docs/benchmarks.md, "What each call is for")."""

from __future__ import annotations

from typing import Any

# The fewest DynamoDB calls and SQS sends one image can cost on each path without giving up a guarantee, each with
# the guarantee it is for (docs/benchmarks.md, "What each call is for"). The measured counts are set against these.
MINIMUM_CALLS_PER_IMAGE: dict[str, dict[str, float]] = {
    "webhooks": {
        "dynamodb.BatchGetItem": 1,  # the slots and the limit: never more projects at Magic Hour than the plan allows
        "dynamodb.TransactWriteItems": 1,  # the slot and the claim: never pay twice; the slot's holder named
        "dynamodb.UpdateItem": 5,  # the project recorded, rendering (forward only), the replay mark, lease, complete
        "dynamodb.DeleteItem": 1,  # the slot given back, exactly once
        "dynamodb.GetItem": 1,  # the fallback status check reads the job (a missed webhook is still seen)
        "sqs.SendMessage": 2,  # the fallback status check, the completion
    },
    "polling": {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.TransactWriteItems": 1,
        "dynamodb.UpdateItem": 3,  # the project recorded, the lease, complete
        "dynamodb.DeleteItem": 1,  # the slot given back by the check that sees the project finished
        "dynamodb.GetItem": 1,  # the status check reads the job
        "sqs.SendMessage": 2,  # the status check, the completion
    },
}


def calls_row(mode: str, e: dict[str, Any]) -> tuple[str, str, str, str]:
    """DynamoDB calls and SQS sends per image on one path, against the fewest its guarantees need."""
    calls, minimum = e["aws_calls_per_image"], e.get("minimum_calls_per_image") or {}

    def dynamodb(counts: dict[str, float]) -> float:
        return sum(v for k, v in counts.items() if k.startswith("dynamodb."))

    ops = ", ".join(f"{k.split('.', 1)[1]} {v:g}" for k, v in calls.items() if k.startswith("dynamodb.") and v)
    return (
        f"DynamoDB calls / SQS sends per image, {mode}",
        f"{dynamodb(calls):.1f} / {calls.get('sqs.SendMessage', 0):.1f}",
        f"fewest for its guarantees {dynamodb(minimum):g} / {minimum.get('sqs.SendMessage', 0):g}" if minimum else "",
        ops,
    )
