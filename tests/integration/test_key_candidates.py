"""Which object an event names, whichever way its key came: S3 notifications URL-encode keys, EventBridge events
(as far as AWS shows, and as moto sends them) do not. Over moto server and the emulator, through the submit handler.

The AWS-shaped builders encode EventBridge keys as S3 notifications do; `_unencoded` gives the same event with the
key as moto (and a real event published online) carries it."""

from __future__ import annotations

import copy
from typing import Any

from cutout.aws.s3_events import is_unencoded
from cutout.domain.models import job_id_for

from tests.conftest import INPUT_PREFIX, Aws
from tests.support.events import eventbridge_object_created, s3_notification, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start

NO_FAILURES = {"batchItemFailures": []}
TRICKY = INPUT_PREFIX + "c++ logo (1).png"


def _put(aws: Aws, key: str, colour: tuple[int, int, int]) -> dict[str, Any]:
    body = image_bytes("PNG", colour=colour)
    etag = aws.put(key, body)["ETag"].strip('"')
    return {"key": key, "etag": etag, "size": len(body)}


def _encoded(aws: Aws, obj: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return eventbridge_object_created(aws.bucket, key or obj["key"], obj["etag"], obj["size"])


def _unencoded(aws: Aws, obj: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(_encoded(aws, obj))
    event["detail"]["object"]["key"] = key or obj["key"]
    return event


def test_the_detector_tells_unencoded_keys_from_encoded_ones() -> None:
    assert is_unencoded(TRICKY) and is_unencoded("a:b.png") and is_unencoded("café.png") and is_unencoded("5%.png")
    assert not is_unencoded("incoming/c%2B%2B+logo+%281%29.png") and not is_unencoded("incoming/plain-name_1.png")


def test_a_tricky_key_unencoded_and_encoded_is_one_job_and_one_create(aws: Aws, emulator, function_env) -> None:
    # given: an upload whose key holds '+', spaces and parentheses, announced once as moto sends it (unencoded)
    # and once encoded as S3 encodes notification keys (and maybe EventBridge ones)
    obj = _put(aws, TRICKY, (200, 30, 30))
    unencoded, encoded = _unencoded(aws, obj), _encoded(aws, obj)
    assert unencoded["detail"]["object"]["key"] == TRICKY
    assert encoded["detail"]["object"]["key"] == "incoming/c%2B%2B+logo+%281%29.png"
    app = cold_start("submit")

    # when: each is delivered, and the S3 notification for the same upload too
    for event in (unencoded, encoded, s3_notification(aws.bucket, obj["key"], obj["etag"], obj["size"])):
        assert app.lambda_handler(sqs_event([event]), FakeContext()) == NO_FAILURES

    # then: exactly one create, for the one job of that object
    (job,) = aws.jobs()
    assert job["source_key"] == TRICKY and job["status"] == "queued"
    assert job["job_id"] == job_id_for(aws.bucket, TRICKY, obj["etag"])
    assert len(emulator.engine.state.creates) == 1


def test_of_two_keys_an_event_may_name_the_one_with_its_etag_is_the_upload(aws: Aws, emulator, function_env) -> None:
    # given: two objects whose keys an EventBridge key "a+b.png" may name: "a+b.png" itself, and "a b.png" (what it
    # decodes to)
    literal = _put(aws, INPUT_PREFIX + "a+b.png", (10, 200, 10))
    spaced = _put(aws, INPUT_PREFIX + "a b.png", (10, 10, 200))
    raw = INPUT_PREFIX + "a+b.png"
    app = cold_start("submit")

    # when: one event per object, both carrying the key "a+b.png" and each its object's ETag and size
    for obj in (spaced, literal):
        assert app.lambda_handler(sqs_event([_unencoded(aws, obj, key=raw)]), FakeContext()) == NO_FAILURES

    # then: each event became the job of the object whose ETag it carries
    jobs = {j["source_key"]: j for j in aws.jobs()}
    assert set(jobs) == {literal["key"], spaced["key"]}
    for obj in (literal, spaced):
        assert jobs[obj["key"]]["source_etag"] == obj["etag"]
        assert jobs[obj["key"]]["job_id"] == job_id_for(aws.bucket, obj["key"], obj["etag"])
    assert len(emulator.engine.state.creates) == 2


def test_a_key_found_only_decoded_is_used(aws: Aws, emulator, function_env) -> None:
    # given: an encoded EventBridge key whose raw form names nothing
    obj = _put(aws, INPUT_PREFIX + "red flower.png", (90, 90, 0))

    # when
    response = cold_start("submit").lambda_handler(sqs_event([_encoded(aws, obj)]), FakeContext())

    # then
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert job["source_key"] == obj["key"] and job["status"] == "queued"


def test_an_object_deleted_before_processing_ends_with_its_reason(aws: Aws, emulator, function_env) -> None:
    # given: an upload deleted before its event (encoded: two keys to look for) is processed
    obj = _put(aws, INPUT_PREFIX + "gone+soon.png", (1, 2, 3))
    aws.client("s3").delete_object(Bucket=aws.bucket, Key=obj["key"])
    app = cold_start("submit")

    # when: delivered twice
    first = app.lambda_handler(sqs_event([_encoded(aws, obj)]), FakeContext())
    second = app.lambda_handler(sqs_event([_encoded(aws, obj)]), FakeContext())

    # then: nothing comes back to the queue; one terminal record that says what was looked for; no create
    assert first == second == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", "object_missing")
    assert job["source_key"] == obj["key"]
    assert "'incoming/gone%2Bsoon.png' or 'incoming/gone+soon.png'" in job["error_message"]
    assert emulator.engine.state.creates == []
