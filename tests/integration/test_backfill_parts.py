"""The backfill's parts over moto server (and botocore's Stubber where moto cannot misbehave on demand): the events
it enqueues decode back to the exact key, an S3 Inventory report is read like a listing, DynamoDB's unprocessed
keys and SQS's failed entries are retried, and the checkpoint survives a rerun."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.stub import Stubber
from cutout.aws.s3_events import ObjectRef, parse
from cutout.domain.models import job_id_for

from cutout_dev.ops.backfill import (
    Checkpoint,
    Options,
    Pipeline,
    existing_jobs,
    list_objects,
    make_plan,
    read_manifest,
    run_backfill,
)
from cutout_dev.ops.ingest import S3Object, SendError, object_created_event, send_events
from tests.conftest import INPUT_PREFIX, OUTPUT_PREFIX, Aws
from tests.support.images import image_bytes

HOSTILE_KEYS = [
    "incoming/sp ace.png",
    "incoming/plus+sign.png",
    "incoming/100% off.png",
    "incoming/50%25 literal.png",
    "incoming/ünïcødé 写真.png",
    "incoming/(paren) [x] ~copy~.png",
    "incoming/a+b c%2Bd (1)/é+%20.jpeg",
    "incoming/tab\there & ampersand=eq?.png",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_the_enqueued_event_decodes_back_to_the_exact_key(key: str) -> None:
    # given an object with a hostile key
    obj = S3Object("cutout-images", key, '"0123abcd-2"', 42, "v1")

    # when its event goes through the submit's own parsing (as the ingest queue delivers it: a JSON body)
    (ref,) = parse(json.loads(json.dumps(object_created_event(obj, region="eu-west-1"))))

    # then the submit sees the very object, so it derives the very job id
    assert isinstance(ref, ObjectRef)
    assert (ref.bucket, ref.key, ref.etag, ref.version_id, ref.size) == ("cutout-images", key, "0123abcd-2", "v1", 42)
    assert job_id_for(ref.bucket, ref.key, ref.etag) == job_id_for(obj.bucket, obj.key, obj.etag)


def _pipeline(aws: Aws, queue_url: str = "") -> Pipeline:
    return Pipeline(
        s3=aws.client("s3"),
        dynamodb=aws.client("dynamodb"),
        sqs=aws.client("sqs"),
        table=aws.table,
        ingest_queue_url=queue_url,
        bucket=aws.bucket,
        input_prefix=INPUT_PREFIX,
        output_prefix=OUTPUT_PREFIX,
    )


def test_an_inventory_report_is_read_like_a_listing(aws: Aws) -> None:
    # given an S3 Inventory report (CSV.gz, keys URL-encoded) in a reports bucket
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="inventory-reports")
    rows = []
    etags = {}
    for i, key in enumerate(HOSTILE_KEYS):
        etags[key] = s3.put_object(Bucket=aws.bucket, Key=key, Body=image_bytes("PNG", colour=(i * 20, 9, 9)))["ETag"]
        rows.append([aws.bucket, quote_plus(key, safe="/"), "70", etags[key].strip('"'), "STANDARD", "true", "false"])
    rows.append([aws.bucket, "incoming/old-version.png", "70", "abc", "STANDARD", "false", "false"])
    rows.append([aws.bucket, "incoming/deleted.png", "0", "", "STANDARD", "true", "true"])
    rows.append([aws.bucket, "incoming/cold.png", "70", "def", "DEEP_ARCHIVE", "true", "false"])
    body = io.StringIO()
    csv.writer(body).writerows(rows)
    s3.put_object(Bucket="inventory-reports", Key="inv/data/1.csv.gz", Body=gzip.compress(body.getvalue().encode()))
    manifest = {
        "sourceBucket": aws.bucket,
        "destinationBucket": "arn:aws:s3:::inventory-reports",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag, StorageClass, IsLatest, IsDeleteMarker",
        "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    s3.put_object(Bucket="inventory-reports", Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    uri = "s3://inventory-reports/inv/manifest.json"

    # when the backfill plans from it
    plan = make_plan(
        _pipeline(aws), read_manifest(s3, uri, aws.bucket, "incoming/", None), bucket=aws.bucket, prefix="incoming/"
    )

    # then every current object is an image to process, under its decoded key, and the archived one is skipped
    assert [i.obj.key for i in plan.images] == HOSTILE_KEYS
    assert [i.obj.etag for i in plan.images] == [etags[k].strip('"') for k in HOSTILE_KEYS]
    assert dict(plan.skipped) == {"archived": 1}
    # and a rerun after the third row starts at the fourth
    resumed = list(read_manifest(s3, uri, aws.bucket, "incoming/", plan.images[2].position))
    assert [i.obj.key for i in resumed][:1] == [HOSTILE_KEYS[3]]


def test_a_whole_bucket_backfill_leaves_the_stacks_backgrounds_alone(aws: Aws) -> None:
    # given a stack watching the whole bucket, with backgrounds (and a default one outside their prefix) beside uploads
    s3 = aws.client("s3")
    for key in ("backgrounds/beach.png", "studio.png", "albums/cat.png"):
        s3.put_object(Bucket=aws.bucket, Key=key, Body=image_bytes("PNG"))
    pipeline = replace(_pipeline(aws), input_prefix="", default_background_key="studio.png")
    # when the backfill plans the bucket
    plan = make_plan(pipeline, list_objects(s3, aws.bucket, "", None), bucket=aws.bucket, prefix="")
    # then only the upload is an image to process; the backgrounds are the stack's own, as the submit skips them
    assert [i.obj.key for i in plan.images] == ["albums/cat.png"]
    assert dict(plan.skipped) == {"stack_owned": 2}


def test_a_manifest_for_another_bucket_is_refused(aws: Aws) -> None:
    s3 = aws.client("s3")
    manifest = {"sourceBucket": "someone-else", "fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": []}
    s3.put_object(Bucket=aws.bucket, Key="m.json", Body=json.dumps(manifest).encode())
    with pytest.raises(Exception, match="lists bucket someone-else"):
        list(read_manifest(s3, f"s3://{aws.bucket}/m.json", aws.bucket, "", None))


def _stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_unprocessed_keys_are_asked_again() -> None:
    # given DynamoDB throttles part of a BatchGetItem (checked against botocore's model by the Stubber)
    ddb, stub = _stubbed("dynamodb")
    keys = [{"job_id": {"S": j}} for j in ("a", "b", "c")]
    # (the status and error code too: a rejection the configuration caused is taken up again)
    names = {"#a0": "job_id", "#a1": "status", "#a2": "error_code"}
    read = {"ProjectionExpression": "#a0, #a1, #a2", "ExpressionAttributeNames": names}
    first = {"jobs": {"Keys": keys, **read, "ConsistentRead": True}}
    again = {"jobs": {"Keys": keys[2:], **read, "ConsistentRead": True}}
    stub.add_response(
        "batch_get_item",
        {"Responses": {"jobs": [{"job_id": {"S": "a"}}]}, "UnprocessedKeys": again},
        {"RequestItems": first},
    )
    stub.add_response("batch_get_item", {"Responses": {"jobs": [{"job_id": {"S": "c"}}]}}, {"RequestItems": again})

    # when / then
    with stub:
        assert set(existing_jobs(ddb, "jobs", ["a", "b", "c"], sleep=lambda _: None)) == {"a", "c"}
    stub.assert_no_pending_responses()


def test_failed_entries_are_resent_and_sender_faults_reported() -> None:
    # given SQS fails one entry of a batch once (throttled), then accepts it
    sqs, stub = _stubbed("sqs")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/ingest"
    events = [object_created_event(S3Object("b", f"incoming/{i}.png", "e", 1), region="us-east-1") for i in range(3)]
    bodies = [json.dumps(e) for e in events]
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [
                {"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"},
                {"Id": "2", "MessageId": "m2", "MD5OfMessageBody": "x"},
            ],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "ThrottlingException"}],
        },
        {"QueueUrl": url, "Entries": [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]},
    )
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
        {"QueueUrl": url, "Entries": [{"Id": "1", "MessageBody": bodies[1]}]},
    )
    # and then refuses one for good (a sender fault: the same every time)
    stub.add_response(
        "send_message_batch",
        {"Successful": [], "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]},
        {"QueueUrl": url, "Entries": [{"Id": "0", "MessageBody": bodies[0]}]},
    )

    with stub:
        assert send_events(sqs, url, events, sleep=lambda _: None) == 3
        with pytest.raises(SendError, match="InvalidMessageContents"):
            send_events(sqs, url, events[:1], sleep=lambda _: None)
    stub.assert_no_pending_responses()


def test_the_checkpoint_is_found_again_by_location(tmp_path: Path) -> None:
    # given a backfill that stopped part way
    first = Checkpoint.for_location("bucket", "incoming/", None, "jobs", tmp_path)
    first.position, first.enqueued = "incoming/0042.png", 42
    first.save()

    # when the same location of the same stack is backfilled again, and another one
    again = Checkpoint.for_location("bucket", "incoming/", None, "jobs", tmp_path)
    other = Checkpoint.for_location("bucket", "incoming/other/", None, "jobs", tmp_path)

    # then the first resumes where it stopped, the other starts afresh
    assert again.resumable
    assert (again.position, again.enqueued) == ("incoming/0042.png", 42)
    assert not other.resumable
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temp file left behind


def test_a_limited_run_leaves_the_rest_to_the_next_run(aws: Aws, tmp_path: Path) -> None:
    # given five images in the bucket and an ingest queue
    queue = aws.client("sqs").create_queue(QueueName="ingest")["QueueUrl"]
    keys = [f"{INPUT_PREFIX}batch/{i}.png" for i in range(5)]
    for i, key in enumerate(keys):
        aws.put(key, image_bytes("PNG", colour=(i * 40, 1, 1)))
    pipeline = _pipeline(aws, queue)
    options = Options(uri=f"s3://{aws.bucket}/{INPUT_PREFIX}", yes=True, limit=3, checkpoint_dir=tmp_path)

    # when the operator backfills three today and the rest later
    first = run_backfill(pipeline, options, confirm=_never, note=lambda _: None)
    rest = run_backfill(pipeline, Options(**{**vars(options), "limit": None}), confirm=_never, note=lambda _: None)

    # then the second run starts after the first's last image, and every image was enqueued once, in order
    assert (first["enqueued"], first["listing_complete"]) == (3, False)
    assert (rest["resumed_after"], rest["enqueued"]) == (keys[2], 2)
    sent = []
    while batch := aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            (ref,) = parse(json.loads(message["Body"]))
            assert isinstance(ref, ObjectRef)
            sent.append(ref.key)
            aws.client("sqs").delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(sent) == keys


def _never(question: str) -> bool:
    raise AssertionError(f"asked {question!r} although --yes was given")
