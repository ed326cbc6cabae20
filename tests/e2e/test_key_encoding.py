"""Keys whichever way the event carries them, and objects gone before their event is processed, end to end on the
local stack: the real ingest queue (and its DLQ), the real handlers, the emulator.

moto delivers the upload's own EventBridge "Object Created" event with the key unencoded; the test adds, straight
into the ingest queue, the same event with the key encoded as S3 encodes notification keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cutout_dev.aws_events import eventbridge_object_created
from cutout_dev.local_stack import LocalStack

MakeStack = Callable[..., LocalStack]


def _send(stack: LocalStack, event: dict[str, object]) -> None:
    stack.client("sqs").send_message(QueueUrl=stack.endpoints.queues["IngestQueue"], MessageBody=json.dumps(event))


def test_a_tricky_key_announced_unencoded_and_encoded_makes_one_create_and_one_cutout(
    make_stack: MakeStack, samples: dict[str, Path]
) -> None:
    # given: the stack, and an upload whose key holds '+', spaces and parentheses
    stack = make_stack(webhooks=True)
    body = samples["red flower.png"].read_bytes()
    uploaded = stack.upload(body, key="c++ logo (1).png")
    assert uploaded.key == "incoming/c++ logo (1).png"

    # when: besides moto's own (unencoded) event, the same upload is announced encoded, and unencoded once more
    encoded = eventbridge_object_created(stack.endpoints.bucket, uploaded.key, uploaded.etag, len(body))
    assert encoded["detail"]["object"]["key"] == "incoming/c%2B%2B+logo+%281%29.png"
    _send(stack, encoded)
    unencoded = json.loads(json.dumps(encoded))
    unencoded["detail"]["object"]["key"] = uploaded.key
    _send(stack, unencoded)

    # then: one job, one create, a cutout; nothing in any dead-letter queue
    jobs = stack.wait_for_terminal([uploaded], timeout=60)
    job = jobs[uploaded.job_id]
    assert job["status"] == "complete" and job["source_key"] == uploaded.key
    stack.client("s3").head_object(
        Bucket=job.get("output_bucket") or stack.endpoints.output_bucket, Key=job["output_key"]
    )
    stack.emulator.wait_until(stack.quiescent, timeout=30)
    assert [c.name for c in stack.emulator.state.creates] == [f"cutout:{uploaded.job_id}"]
    assert [j["job_id"] for j in stack.jobs()] == [uploaded.job_id]
    depths = stack.queue_depths()
    assert all(depths[dlq] == 0 for dlq in stack.dead_letter_queues()), depths


def test_an_object_deleted_before_processing_ends_recorded_not_dead_lettered(
    make_stack: MakeStack, samples: dict[str, Path]
) -> None:
    # given: the stack, and an event for an upload that no longer exists (S3 answers 404: the role may list)
    stack = make_stack(webhooks=True)
    key = "incoming/deleted before (2).png"
    _send(stack, eventbridge_object_created(stack.endpoints.bucket, key, "0123456789abcdef0123456789abcdef", 1234))

    # when
    jobs = stack.wait_for_terminal([key], timeout=60)

    # then: a terminal record with its reason, no create, no retry, nothing in the ingest DLQ
    (job,) = jobs.values()
    assert (job["status"], job["error_code"]) == ("rejected", "object_missing")
    assert "deleted before processing" in job["error_message"]
    stack.emulator.wait_until(stack.quiescent, timeout=30)
    assert stack.emulator.state.creates == []
    assert stack.queue_depths()["IngestDLQ"] == 0
