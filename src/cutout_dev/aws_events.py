"""Builders for the event shapes AWS delivers (keys encoded as AWS encodes them): tests, bench and soak share them."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote_plus


def eventbridge_object_created(
    bucket: str, key: str, etag: str, size: int, version_id: str | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "etag": etag,
        "sequencer": "0062E99A88DC407460",
    }
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-24T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def s3_notification(
    bucket: str, key: str, etag: str, size: int, event_name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-24T12:00:00.000Z",
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "cutout",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": "0A1B2C3D4E5F678901",
                    },
                },
            }
        ]
    }


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-11-24T12:00:00.000Z",
    "Bucket": "cutout-images",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def sqs_event(bodies: list[dict[str, Any] | str], queue: str = "cutout-ingest") -> dict[str, Any]:
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            {
                "messageId": f"msg-{i}-{uuid.uuid4().hex[:8]}",
                "receiptHandle": f"rh-{i}",
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1732449600000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1732449600001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}
