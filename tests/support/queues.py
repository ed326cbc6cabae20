"""Drain a moto SQS queue into a Lambda-shaped SQS event (what the event-source mapping would deliver)."""

from __future__ import annotations

from typing import Any

from cutout_dev.local_stack.sqs_poller import to_lambda_record


def receive_as_event(sqs: Any, queue_url: str, max_messages: int = 10) -> dict[str, Any]:
    resp = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
    )
    arn = "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1]
    records = [to_lambda_record(m, arn) for m in resp.get("Messages", [])]
    for m in resp.get("Messages", []):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {"Records": records}
