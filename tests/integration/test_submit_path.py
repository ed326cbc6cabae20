"""The submit path against moto server and the Magic Hour emulator, over HTTP (issue: every upload → one job)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from typing import Any

import pytest
from cutout.domain.models import job_id_for

from tests.conftest import API_KEY, INPUT_PREFIX, OUTPUT_PREFIX, Aws
from tests.support.events import S3_TEST_EVENT, eventbridge_object_created, s3_notification, sqs_event
from tests.support.images import PDF_BYTES, image_bytes
from tests.support.lambda_loader import FakeContext, cold_start

TRICKY_KEYS = [
    INPUT_PREFIX + "holiday/red flower+petal (1).png",
    INPUT_PREFIX + "café/100% ünïcødé 写真.jpg",
    INPUT_PREFIX + "a%2Fb literal/%41 percent.webp",
]

# Tests here reach into the submit's domain service too (its Magic Hour client): that code runs as the submit.
pytestmark = pytest.mark.function_role("submit")


def _upload(aws: Aws, key: str, body: bytes, content_type: str) -> dict[str, Any]:
    resp = aws.put(key, body, content_type)
    return {"key": key, "etag": resp["ETag"].strip('"'), "size": len(body)}


def _eb(aws: Aws, obj: dict[str, Any]) -> dict[str, Any]:
    return eventbridge_object_created(aws.bucket, obj["key"], obj["etag"], obj["size"])


def _failed_ids(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_mixed_batch_creates_exactly_one_job_per_good_upload(aws: Aws, emulator, function_env) -> None:
    # given: a batch of 10 as the ingest queue would deliver it
    good = [
        _upload(aws, TRICKY_KEYS[0], image_bytes("PNG"), "image/png"),
        _upload(aws, TRICKY_KEYS[1], image_bytes("JPEG"), "image/jpeg"),
        _upload(aws, TRICKY_KEYS[2], image_bytes("WEBP"), "image/webp"),
    ]
    twice = _upload(aws, INPUT_PREFIX + "dup/same upload.png", image_bytes("PNG", colour=(0, 90, 200)), "image/png")
    pdf = _upload(aws, INPUT_PREFIX + "docs/manual.pdf", PDF_BYTES, "application/pdf")
    empty = _upload(aws, INPUT_PREFIX + "empty.png", b"", "image/png")
    output = _upload(aws, OUTPUT_PREFIX + "already/cut.png", image_bytes("PNG"), "image/png")
    bodies: list[dict[str, Any]] = [
        _eb(aws, twice),
        s3_notification(aws.bucket, twice["key"], twice["etag"], twice["size"]),  # same upload, other wiring
        _eb(aws, twice),
        S3_TEST_EVENT,
        _eb(aws, pdf),
        _eb(aws, output),
        _eb(aws, empty),
        *(_eb(aws, g) for g in good),
    ]
    event = sqs_event(bodies)
    assert len(event["Records"]) == 10
    app = cold_start("submit")

    # when
    response = app.lambda_handler(event, FakeContext())

    # then: nothing really failed, so nothing goes back to the queue
    assert response == {"batchItemFailures": []}
    creates = emulator.engine.state.creates
    assert len(creates) == 4
    jobs = {j["source_key"]: j for j in aws.jobs()}
    assert set(jobs) == {twice["key"], pdf["key"], empty["key"], *(g["key"] for g in good)}
    for obj in [twice, *good]:
        job = jobs[obj["key"]]
        assert job["status"] == "queued"
        assert job["job_id"] == job_id_for(aws.bucket, obj["key"], obj["etag"])
        assert job["project_id"] and job["credits_charged"] == 5
        assert job["source_etag"] == obj["etag"] and job["source_size"] == obj["size"]
    assert {c.name for c in creates} == {f"cutout:{jobs[o['key']]['job_id']}" for o in [twice, *good]}
    assert jobs[pdf["key"]]["status"] == "rejected"
    assert jobs[pdf["key"]]["error_code"] == "unsupported_extension"
    assert jobs[empty["key"]]["status"] == "rejected"
    assert jobs[empty["key"]]["error_code"] == "empty_object"
    # the presigned URL Magic Hour fetched served exactly the object's bytes
    emulator.wait_idle()
    for obj in [twice, *good]:
        project = emulator.project(jobs[obj["key"]]["project_id"])
        body = aws.client("s3").get_object(Bucket=aws.bucket, Key=obj["key"])["Body"].read()
        assert project.input_sha256 == hashlib.sha256(body).hexdigest()


def test_same_upload_from_two_threads_creates_once(aws: Aws, emulator, function_env) -> None:
    # given
    obj = _upload(aws, INPUT_PREFIX + "race/photo.png", image_bytes("PNG"), "image/png")
    app = cold_start("submit")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        results.append(app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext()))

    # when
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: one create; the loser either saw the finished job (dropped as duplicate) or the claim in flight
    # (sent back to the queue to look again later) — never a second create
    assert len(emulator.engine.state.creates) == 1
    (job,) = aws.jobs()
    assert job["status"] == "queued"
    # and a redelivery after the fact is a plain duplicate
    again = app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext())
    assert again == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 1


def test_emulator_unreachable_returns_message_and_leaves_no_record(
    aws: Aws, emulator, function_env, monkeypatch
) -> None:
    # given: Magic Hour refuses connections
    obj = _upload(aws, INPUT_PREFIX + "offline.png", image_bytes("PNG"), "image/png")
    emulator.stop()
    app = cold_start("submit")
    app.submitter.magic_hour()._create_retry.backoff_factor = 0  # keep the test quick; policy unchanged
    event = sqs_event([_eb(aws, obj)])

    # when
    response = app.lambda_handler(event, FakeContext())

    # then: the message goes back to the queue, no claim is left behind, nothing was created
    assert _failed_ids(response) == {event["Records"][0]["messageId"]}
    assert aws.jobs() == []
    assert emulator.engine.state.creates == []


def test_magic_hour_422_becomes_rejected_record(aws: Aws, emulator, function_env) -> None:
    # given: Magic Hour answers the create with 422
    emulator.configure(create_error_status=422)
    obj = _upload(aws, INPUT_PREFIX + "refused.png", image_bytes("PNG"), "image/png")
    app = cold_start("submit")

    # when
    response = app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext())

    # then: terminal, with Magic Hour's reason, and no retry
    assert response == {"batchItemFailures": []}
    (job,) = aws.jobs()
    assert job["status"] == "rejected"
    assert job["error_code"] == "http_422"
    assert job["error_message"]


@pytest.mark.parametrize("status", [429, 502, 503])
def test_throttled_or_unavailable_create_is_retried_until_it_succeeds(aws: Aws, emulator, function_env, status) -> None:
    # given: every create answered "nothing created" (429 / 502 / 503)
    emulator.engine.configure(create_error_status=status)
    obj = _upload(aws, INPUT_PREFIX + f"{status}.png", image_bytes("PNG"), "image/png")
    app = cold_start("submit")
    app.submitter.magic_hour()._create_retry.backoff_factor = 0
    event = sqs_event([_eb(aws, obj)])

    # when: every attempt is refused, the message returns to the queue with no record and nothing created
    first = app.lambda_handler(event, FakeContext())
    assert [f["itemIdentifier"] for f in first["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    assert aws.jobs() == []
    assert emulator.engine.state.creates == []
    # and once Magic Hour recovers, the redelivery creates exactly once
    emulator.engine.configure(create_error_status=None)
    assert app.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    (job,) = aws.jobs()
    assert job["status"] == "queued"
    assert not job.get("ambiguous")
    assert len(emulator.engine.state.creates) == 1


def test_timeout_after_send_is_recorded_as_ambiguous_and_never_recreated(aws: Aws, emulator, function_env) -> None:
    # given: the create is accepted (and charged), then the connection drops before the answer
    emulator.engine.configure(rate_reset=1.0, reset_after_create=True)
    obj = _upload(aws, INPUT_PREFIX + "lost-answer.png", image_bytes("PNG"), "image/png")
    app = cold_start("submit")
    event = sqs_event([_eb(aws, obj)])

    # when: delivered, and then redelivered
    first = app.lambda_handler(event, FakeContext())
    emulator.engine.configure(rate_reset=0.0)
    second = app.lambda_handler(event, FakeContext())

    # then: one create at Magic Hour, the job says the outcome is unknown, nothing retried blindly
    assert first == second == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 1
    (job,) = aws.jobs()
    assert job["status"] == "error"
    assert job["error_code"] == "create_outcome_unknown"
    assert job["ambiguous"] is True


def test_direct_s3_notification_and_eventbridge_invocations(aws: Aws, emulator, function_env) -> None:
    # given
    a = _upload(aws, INPUT_PREFIX + "direct/one two.png", image_bytes("PNG"), "image/png")
    b = _upload(aws, INPUT_PREFIX + "direct/three+four.png", image_bytes("PNG", colour=(1, 2, 3)), "image/png")
    app = cold_start("submit")

    # when
    r1 = app.lambda_handler(s3_notification(aws.bucket, a["key"], a["etag"], a["size"]), FakeContext())
    r2 = app.lambda_handler(_eb(aws, b), FakeContext())

    # then
    assert [o["kind"] for o in r1["outcomes"]] == ["submitted"]
    assert [o["kind"] for o in r2["outcomes"]] == ["submitted"]
    assert {j["source_key"] for j in aws.jobs()} == {a["key"], b["key"]}


def test_background_from_metadata_is_presigned_and_sent(aws: Aws, emulator, function_env) -> None:
    # given: an upload naming its replacement background in metadata
    aws.put("backgrounds/beach.jpg", image_bytes("JPEG", size=(64, 64), colour=(0, 200, 0)), "image/jpeg")
    resp = aws.put(
        INPUT_PREFIX + "with-bg.png",
        image_bytes("PNG"),
        "image/png",
        Metadata={"background-key": "backgrounds/beach.jpg"},
    )
    obj = {"key": INPUT_PREFIX + "with-bg.png", "etag": resp["ETag"].strip('"'), "size": 0}
    app = cold_start("submit")

    # when
    app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext())

    # then
    (create,) = emulator.engine.state.creates
    assert "backgrounds/beach.jpg" in create.assets["background_image_file_path"]
    (job,) = aws.jobs()
    assert job["background_key"] == "backgrounds/beach.jpg"


def test_malformed_bodies_never_fail_the_batch(aws: Aws, emulator, function_env) -> None:
    # given
    event = sqs_event(
        [
            "{not json",
            json.dumps([1, 2]),
            {"Records": []},
            {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        ]
    )
    app = cold_start("submit")

    # when
    response = app.lambda_handler(event, FakeContext())

    # then
    assert response == {"batchItemFailures": []}
    assert aws.jobs() == []
    assert emulator.engine.state.creates == []


def test_the_log_guard_catches_a_leaked_signature(no_secrets_in_logs) -> None:
    # given: the suite-wide guard that fails any test whose logs hold a secret
    from cutout.runtime.observability import logger

    from tests.conftest import secret_leaks

    # when: something logs a presigned URL's signature (alone: no credential beside it for another pattern to find)
    logger.info("oops https://b.s3.amazonaws.com/k.png?X-Amz-Signature=" + "ab" * 32)

    # then: the guard's own patterns find the leak in the line as the guard collected it (emptied after, so this
    # deliberate leak does not fail the test)
    leaks = secret_leaks(no_secrets_in_logs.lines)
    assert len(leaks) == 1 and "X-Amz-Signature" in leaks[0]
    no_secrets_in_logs.lines.clear()


def test_upload_transfer_mode_hands_magic_hour_the_exact_bytes(aws: Aws, emulator, function_env, monkeypatch) -> None:
    # given: a bucket Magic Hour cannot read through a presigned URL, so assets go through upload-urls + PUT
    monkeypatch.setenv("ASSET_TRANSFER", "upload")
    body = image_bytes("JPEG", size=(64, 48))
    obj = _upload(aws, INPUT_PREFIX + "private/bytes.jpg", body, "image/jpeg")
    app = cold_start("submit")

    # when: delivered, and redelivered
    assert app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext()) == {"batchItemFailures": []}
    assert app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext()) == {"batchItemFailures": []}

    # then: one upload, one create; the create named an uploaded asset, not a URL, and Magic Hour rendered
    # exactly the object's bytes
    (create,) = emulator.engine.state.creates
    assert create.assets["image_file_path"].startswith("api-assets/")
    assert emulator.request_counts().get("upload_urls") == 1
    (job,) = aws.jobs()
    project = emulator.wait_for_status(job["project_id"], "complete")
    assert project.input_sha256 == hashlib.sha256(body).hexdigest()
    assert project.input_length == len(body)


def test_an_uploaded_asset_is_streamed_not_held_whole(emulator) -> None:
    # given a 3 MiB body that counts how much each read asks for, and an upload URL
    from cutout.magic_hour.client import MagicHourClient

    body = b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024)

    class CountingStream(io.BytesIO):  # an S3 body neither seeks for nor tells requests its length
        biggest = 0

        def read(self, size: int | None = -1) -> bytes:
            CountingStream.biggest = max(CountingStream.biggest, len(body) if size in (None, -1) else size)
            return super().read(size)

        def seek(self, *args: object) -> int:
            raise io.UnsupportedOperation("not seekable")

    client = MagicHourClient(emulator.base_url, API_KEY)
    # when it is uploaded with its declared size (what S3's ContentLength gives)
    path = client.upload_asset(CountingStream(body), "png", size=len(body))
    # then Magic Hour has the exact bytes (sent with Content-Length: the emulator, like S3, refuses chunked), and
    # no read asked for more than a block: memory does not grow with the upload
    assert emulator.engine.upload_bytes(path) == body
    assert 0 < CountingStream.biggest <= 64 * 1024


def test_background_outside_the_background_prefix_is_refused(aws: Aws, emulator, function_env) -> None:
    # given: an upload whose metadata points at another user's private upload as "background"
    aws.put(INPUT_PREFIX + "someone-else/private.png", image_bytes("PNG"), "image/png")
    resp = aws.put(
        INPUT_PREFIX + "nosy.png",
        image_bytes("PNG"),
        "image/png",
        Metadata={"background-key": INPUT_PREFIX + "someone-else/private.png"},
    )
    obj = {"key": INPUT_PREFIX + "nosy.png", "etag": resp["ETag"].strip('"'), "size": 0}
    app = cold_start("submit")

    # when
    app.lambda_handler(sqs_event([_eb(aws, obj)]), FakeContext())

    # then: nothing is presigned for Magic Hour; the job says why
    assert emulator.engine.state.creates == []
    (job,) = aws.jobs()
    assert job["status"] == "rejected"
    assert job["error_code"] == "background_invalid"
