"""Drain a moto SQS queue into a Lambda-shaped SQS event (what the event-source mapping would deliver)."""

from __future__ import annotations

from typing import Any


def receive_as_event(sqs: Any, queue_url: str, max_messages: int = 10) -> dict[str, Any]:
    resp = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
    )
    records = []
    for m in resp.get("Messages", []):
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1],
                "awsRegion": "us-east-1",
            }
        )
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {"Records": records}
