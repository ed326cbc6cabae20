"""The public webhook endpoint under a flood: forged, unsigned and stale deliveries make no AWS
call and change nothing.

AWS calls are counted where every one of them must pass: botocore's `before-call` event on the default session
the function's clients are built from (registered before the cold start, so every client inherits it). The test
looks at the table and queue through a session of its own, so its own reads are not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from cutout.domain.models import iso, project_name, utc_now
from cutout.magic_hour.webhook_auth import MAX_BODY_BYTES, sign

from tests.conftest import WEBHOOK_SECRET, Aws
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.observed import emitted_metrics

JOB_ID = "0123456789abcdef0123456789abcdef"
PROJECT_ID = "cm-flood-target"
FLOOD = 1_000


class AwsCalls:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")


@pytest.fixture
def aws_calls() -> Iterator[AwsCalls]:
    session = boto3._get_default_session()
    counter = AwsCalls()
    session.events.register("before-call", counter, unique_id="count-aws-calls")
    yield counter
    session.events.unregister("before-call", unique_id="count-aws-calls")


@pytest.fixture
def target(aws: Aws) -> dict[str, Any]:
    """A job in flight: what a forged `image.completed` or `image.started` would like to move."""
    record = {
        "job_id": JOB_ID,
        "status": "queued",
        "project_id": PROJECT_ID,
        "source_bucket": aws.bucket,
        "source_key": "incoming/target.png",
        "created_at": iso(utc_now()),
        "updated_at": iso(utc_now()),
    }
    aws.client("dynamodb").put_item(TableName=aws.table, Item=_ser(record))
    return record


def body_for(event_type: str, status: str) -> bytes:
    payload = {
        "id": PROJECT_ID,
        "name": project_name(JOB_ID),
        "status": status,
        "credits_charged": 5,
        "downloads": [{"url": "https://attacker.example/evil.png", "expires_at": "2099-01-01T00:00:00Z"}],
        "error": None,
    }
    return json.dumps({"type": event_type, "payload": payload}, separators=(",", ":")).encode()


def delivery(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "headers": {"content-type": "application/json", **headers},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "198.51.100.7"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def signed(body: bytes, ts: int, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"magic-hour-event-timestamp": str(ts), "magic-hour-event-signature": sign(secret, str(ts), body)}


def unsigned_or_stale(i: int, now: int) -> dict[str, Any]:
    """Deliveries that show on their face they cannot be authentic (no secret is needed to refuse them)."""
    body = body_for("image.completed", "complete")
    kinds = [
        {},  # no signature at all
        {"magic-hour-event-signature": sign(WEBHOOK_SECRET, str(now), body)},  # no timestamp
        signed(body, now - 3600 - i),  # a genuine delivery captured and replayed later
        signed(body, now + 3600 + i),  # from the future
        {"magic-hour-event-timestamp": "yesterday", "magic-hour-event-signature": "ab" * 32},
    ]
    return delivery(body, kinds[i % len(kinds)])


def forged(i: int, now: int) -> dict[str, Any]:
    """Fresh deliveries with a signature made without the secret: only the (cached) secret can tell."""
    event_type, status = [("image.completed", "complete"), ("image.started", "rendering")][i % 2]
    body = body_for(event_type, status)
    return delivery(body, signed(body, now, secret=f"guess-{i}"))


def observer(aws: Aws, service: str) -> Any:
    """A client outside the default session, so the test's own look at the account is not counted."""
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=aws.server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def table_items(aws: Aws) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = observer(aws, "dynamodb").scan(TableName=aws.table)["Items"]
    return sorted(items, key=lambda i: str(i["job_id"]["S"]))


def queued_messages(aws: Aws) -> int:
    attrs = observer(aws, "sqs").get_queue_attributes(
        QueueUrl=aws.completion_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_a_thousand_forged_deliveries_make_no_aws_call_and_change_nothing(
    function_env: dict[str, str],
    aws: Aws,
    target: dict[str, Any],
    aws_calls: AwsCalls,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given: a warm webhook function (its secret cached by an earlier, genuine delivery) and a job in flight
    webhook = cold_start("webhook")
    now = int(time.time())
    foreign = json.dumps({"type": "video.completed", "payload": {"id": "other", "status": "complete"}}).encode()
    assert webhook.lambda_handler(delivery(foreign, signed(foreign, now)), FakeContext())["statusCode"] == 202
    assert aws_calls.calls == ["secretsmanager.GetSecretValue"]
    aws_calls.calls.clear()
    before = table_items(aws)
    capsys.readouterr()

    # when: 1,000 forged, unsigned and stale deliveries arrive
    answers = [
        webhook.lambda_handler(forged(i, now) if i % 2 else unsigned_or_stale(i, now), FakeContext())["statusCode"]
        for i in range(FLOOD)
    ]

    # then: every one refused, not one AWS call made, the job and the queues untouched
    assert set(answers) == {401}
    assert aws_calls.calls == []
    assert table_items(aws) == before
    assert queued_messages(aws) == 0
    # and each refusal is counted in the metric the WebhookRejected alarm watches
    assert emitted_metrics(capsys.readouterr().out)["WebhookRejected"] == FLOOD


def test_unsigned_and_stale_deliveries_are_refused_before_the_secret_is_read(
    function_env: dict[str, str], aws: Aws, target: dict[str, Any], aws_calls: AwsCalls
) -> None:
    # given: a cold webhook function (nothing cached): reading the secret would be its first AWS call
    webhook = cold_start("webhook")
    now = int(time.time())
    before = table_items(aws)

    # when: a flood of deliveries that cannot be authentic arrives, plus an oversized body
    answers = [webhook.lambda_handler(unsigned_or_stale(i, now), FakeContext())["statusCode"] for i in range(FLOOD)]
    huge = b"x" * (MAX_BODY_BYTES + 1)
    answers.append(webhook.lambda_handler(delivery(huge, signed(huge, now)), FakeContext())["statusCode"])

    # then: refused without one AWS call — not even Secrets Manager
    assert set(answers) == {401, 413}
    assert aws_calls.calls == []
    assert table_items(aws) == before


def _ser(record: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in record.items() if v is not None}
