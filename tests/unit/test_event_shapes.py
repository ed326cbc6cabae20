"""Every supported event shape decodes to the right bucket/key, once (samples in events/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cutout.aws.s3_events import ObjectRef, Skip, parse, parse_text

EVENTS = Path(__file__).resolve().parents[2] / "events"
KEYS = [
    "incoming/red flower.jpg",
    "incoming/c++ logo+v2.png",
    "incoming/100% off/50%25 literal.webp",
    "incoming/café/写真 ünïcødé.jpeg",
    "incoming/holiday (1)/IMG_0001 (copy).png",
]


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def refs_of_sqs(event: dict) -> list:
    return [item for record in event["Records"] for item in parse_text(record["body"])]


@pytest.mark.parametrize(
    ("sample", "wrapped"),
    [("s3-put.json", False), ("sqs-s3-put.json", True), ("sqs-eventbridge-object-created.json", True)],
)
def test_tricky_keys_decode_exactly_once(sample: str, wrapped: bool) -> None:
    # given an AWS-shaped sample whose keys carry spaces, '+', '%', unicode and parentheses
    event = load(sample)

    # when
    items = refs_of_sqs(event) if wrapped else parse(event)

    # then
    assert all(isinstance(i, ObjectRef) for i in items)
    assert [i.key for i in items] == KEYS
    assert all(i.bucket == "cutout-images-123456789012" and i.etag for i in items)


def test_direct_eventbridge_event_carries_version_and_size() -> None:
    (ref,) = parse(load("eventbridge-object-created.json"))
    assert isinstance(ref, ObjectRef)
    assert ref.key == "incoming/red flower.jpg" and ref.raw_key == "incoming/red+flower.jpg"
    assert ref.version_id and ref.size == 1024 and ref.origin == "eventbridge"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (load("sqs-s3-test-event.json")["Records"][0]["body"], "test_event"),
        (json.dumps(load("s3-object-removed.json")), "not_a_create"),
        ("{not json", "malformed_event"),
        ("[1, 2]", "malformed_event"),
        ('{"Records": []}', "malformed_event"),
        ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}', "malformed_event"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}', "malformed_event"),
        ('{"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}', "not_a_create"),
        ('{"hello": "world"}', "unrecognised_event"),
        ('{"Records": [{"eventSource": "aws:dynamodb"}]}', "unrecognised_event"),
    ],
)
def test_events_that_are_not_uploads_are_skipped_with_a_reason(doc: str, reason: str) -> None:
    (item,) = parse_text(doc)
    assert isinstance(item, Skip)
    assert item.reason == reason


def test_sns_wrapped_notification_is_unwrapped() -> None:
    inner = json.dumps(load("s3-put.json"))
    items = parse({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": inner}}]})
    assert [i.key for i in items if isinstance(i, ObjectRef)] == KEYS


def test_mixed_batch_sample_classifies_each_record() -> None:
    items = refs_of_sqs(load("sqs-mixed-batch.json"))
    kinds = [i.reason if isinstance(i, Skip) else i.key for i in items]
    assert kinds == [
        "incoming/red flower.jpg",
        "test_event",
        "incoming/c++ logo+v2.png",
        "cutouts/red flower.png",
        "malformed_event",
    ]
