"""The hostile-input matrix (issue item 2; the table is docs/hostile-inputs.md).

Every case: a clear recorded reason (job record `status`/`error_code`, or a skip reason in the log with no
record, or the webhook's HTTP status), the batch response lists only genuinely retryable messages, and the
emulator's create count shows nothing was bought for garbage. Handlers over moto server + the emulator (HTTP).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cutout.domain.messages import CompletionMessage
from cutout.domain.models import job_id_for
from cutout.magic_hour.webhook_auth import sign
from cutout.runtime.observability import metrics

from cutout_dev.emulator.testing import StaticFileServer
from cutout_dev.local_stack.lambda_runtime import LambdaContext
from tests.conftest import INPUT_PREFIX, OUTPUT_PREFIX, WEBHOOK_SECRET, Aws
from tests.support.events import S3_TEST_EVENT, eventbridge_object_created, s3_notification, sqs_event
from tests.support.images import PDF_BYTES, image_bytes
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.observed import emitted_metrics, find_log
from tests.support.queues import receive_as_event

NO_FAILURES = {"batchItemFailures": []}
FOREIGN_JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_metrics() -> None:
    metrics.clear_metrics()


def _upload(aws: Aws, key: str, body: bytes | None = None, content_type: str = "image/png", **extra: Any) -> dict:
    body = image_bytes("PNG") if body is None else body
    resp = aws.put(key, body, content_type, **extra)
    return {"key": key, "etag": resp["ETag"].strip('"'), "size": len(body)}


def _eb(aws: Aws, obj: dict[str, Any], bucket: str | None = None) -> dict[str, Any]:
    return eventbridge_object_created(bucket or aws.bucket, obj["key"], obj["etag"], obj["size"])


def _run(app: Any, bodies: list[Any], receives: int = 1, context: Any = None) -> dict[str, Any]:
    event = sqs_event(bodies)
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(receives)
    result: dict[str, Any] = app.lambda_handler(event, context or FakeContext())
    return result


# =========================================================================================================
# Events: skipped with a logged reason, no record, no create, never a failed batch
# =========================================================================================================
def _s3_without(field: str) -> Callable[[Aws], dict[str, Any]]:
    part, name = field.split(".")

    def build(aws: Aws) -> dict[str, Any]:
        doc = s3_notification(aws.bucket, INPUT_PREFIX + "x.png", "abc", 3)
        del doc["Records"][0]["s3"][part][name]
        return doc

    return build


def _long_key_event(aws: Aws) -> dict[str, Any]:
    key = INPUT_PREFIX + "k" * (1025 - len(INPUT_PREFIX) - 4) + ".png"  # 1,025 bytes: no S3 key is this long
    assert len(key.encode()) == 1025
    return eventbridge_object_created(aws.bucket, key, "abc", 3)


EVENT_CASES: dict[str, tuple[Callable[[Aws], Any], str]] = {
    "malformed_json": (lambda aws: "{not json", "malformed_event"),
    "empty_body": (lambda aws: "", "malformed_event"),
    "json_array": (lambda aws: "[1, 2]", "malformed_event"),
    "json_scalar": (lambda aws: "42", "malformed_event"),
    "empty_records": (lambda aws: {"Records": []}, "malformed_event"),
    "record_not_an_object": (lambda aws: {"Records": ["x"]}, "malformed_event"),
    "s3_record_missing_key": (_s3_without("object.key"), "malformed_event"),
    "s3_record_missing_bucket": (_s3_without("bucket.name"), "malformed_event"),
    "eventbridge_empty_detail": (
        lambda aws: {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        "malformed_event",
    ),
    "eventbridge_detail_not_an_object": (
        lambda aws: {"source": "aws.s3", "detail-type": "Object Created", "detail": "oops"},
        "malformed_event",
    ),
    "key_over_1024_bytes": (_long_key_event, "malformed_event"),
    "key_with_lone_surrogate": (
        lambda aws: json.dumps(eventbridge_object_created(aws.bucket, INPUT_PREFIX + "a.png", "e", 3)).replace(
            "a.png", "a\\udc80.png"
        ),
        "malformed_event",
    ),
    "unrecognised_document": (lambda aws: {"hello": "world"}, "unrecognised_event"),
    "foreign_event_source": (lambda aws: {"Records": [{"eventSource": "aws:dynamodb"}]}, "unrecognised_event"),
    "s3_test_event": (lambda aws: S3_TEST_EVENT, "test_event"),
    "object_removed": (
        lambda aws: s3_notification(aws.bucket, INPUT_PREFIX + "gone.png", "abc", 0, "ObjectRemoved:Delete"),
        "not_a_create",
    ),
    "eventbridge_object_deleted": (
        lambda aws: {
            **eventbridge_object_created(aws.bucket, INPUT_PREFIX + "g.png", "e", 1),
            "detail-type": "Object Deleted",
        },
        "not_a_create",
    ),
    "wrong_bucket": (
        lambda aws: eventbridge_object_created("someone-elses-bucket", INPUT_PREFIX + "a.png", "e", 3),
        "wrong_bucket",
    ),
    "outside_input_prefix": (
        lambda aws: eventbridge_object_created(aws.bucket, "elsewhere/a.png", "e", 3),
        "outside_input_prefix",
    ),
    "folder_marker": (
        lambda aws: eventbridge_object_created(aws.bucket, INPUT_PREFIX + "album/", "e", 0),
        "folder_marker",
    ),
}


@pytest.mark.parametrize("case", list(EVENT_CASES))
def test_hostile_event_is_skipped_with_a_reason(aws: Aws, emulator, function_env, no_secrets_in_logs, case) -> None:
    # given
    build, reason = EVENT_CASES[case]
    app = cold_start("submit")

    # when
    response = _run(app, [build(aws)])

    # then: nothing retried, nothing recorded, nothing bought, and the log says why
    assert response == NO_FAILURES
    assert aws.jobs() == []
    assert emulator.engine.state.creates == []
    assert find_log(no_secrets_in_logs.lines, skip_reason=reason), f"no log line with skip_reason={reason}"


def test_output_prefix_event_is_refused_even_without_an_input_prefix(
    aws: Aws, emulator, function_env, monkeypatch, no_secrets_in_logs
) -> None:
    # given: the whole bucket is input (INPUT_PREFIX empty), so only the code's recursion guard stands
    monkeypatch.setenv("INPUT_PREFIX", "")
    obj = _upload(aws, OUTPUT_PREFIX + "already/cut.png")
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then
    assert response == NO_FAILURES
    assert aws.jobs() == [] and emulator.engine.state.creates == []
    assert find_log(no_secrets_in_logs.lines, skip_reason="output_prefix")


# ----- keys that are legal but awkward: exactly one job, key decoded exactly once --------------------------
def _key_of_1024_bytes() -> str:
    stem = INPUT_PREFIX + "长" * 330  # 3 bytes each
    key = stem + "x" * (1024 - len(stem.encode()) - 4) + ".png"
    assert len(key.encode()) == 1024
    return key


AWKWARD_KEYS = {
    "key_of_1024_bytes": _key_of_1024_bytes(),
    "unicode_key": INPUT_PREFIX + "café/ünïcødé 写真 🐈.jpg",
    "literal_percent_sequences": INPUT_PREFIX + "100% off/%41%2F%zz literal.png",
    "plus_and_spaces": INPUT_PREFIX + "a+b c/red flower+petal.png",
}


@pytest.mark.parametrize("case", list(AWKWARD_KEYS))
def test_awkward_key_makes_exactly_one_job_from_either_wiring(aws: Aws, emulator, function_env, case) -> None:
    # given: the same upload announced by EventBridge and by an S3 notification (both AWS-encoded)
    key = AWKWARD_KEYS[case]
    fmt = "JPEG" if key.endswith(".jpg") else "PNG"
    obj = _upload(aws, key, image_bytes(fmt), f"image/{fmt.lower()}")
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj), s3_notification(aws.bucket, key, obj["etag"], obj["size"])])

    # then
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert job["source_key"] == key and job["status"] == "queued"
    assert len(emulator.engine.state.creates) == 1


def test_1024_byte_key_completes_end_to_end(aws: Aws, emulator, function_env) -> None:
    # given: the longest key S3 allows, submitted
    key = AWKWARD_KEYS["key_of_1024_bytes"]
    obj = _upload(aws, key)
    submit, poll, finalize = (cold_start(n) for n in ("submit", "poll", "finalize"))
    assert _run(submit, [_eb(aws, obj)]) == NO_FAILURES
    emulator.wait_idle()

    # when: the status check and the finalize step run
    assert poll.lambda_handler(receive_as_event(aws.client("sqs"), aws.poll_queue_url), FakeContext()) == NO_FAILURES
    done = finalize.lambda_handler(receive_as_event(aws.client("sqs"), aws.completion_queue_url), FakeContext())

    # then: the cutout is written under a key S3 accepts (the output prefix is no longer than the input's)
    assert done == NO_FAILURES
    (job,) = aws.jobs()
    assert job["status"] == "complete"
    assert len(job["output_key"].encode()) <= 1024
    aws.client("s3").head_object(Bucket=aws.bucket, Key=job["output_key"])


# ----- huge batches ---------------------------------------------------------------------------------------
def test_sqs_batch_of_100_mixed_records(aws: Aws, emulator, function_env) -> None:
    # given: 30 good uploads, each delivered twice, and 40 hostile records, interleaved
    good = [
        _upload(aws, f"{INPUT_PREFIX}bulk/{i:03}.png", image_bytes("PNG", colour=(i, 2 * i, 90))) for i in range(30)
    ]
    hostile: list[Any] = ["{not json", S3_TEST_EVENT, {"Records": []}, {"hello": 1}] * 10
    bodies: list[Any] = []
    for i in range(30):
        bodies += [_eb(aws, good[i]), hostile[i]]
    bodies += [_eb(aws, g) for g in good] + hostile[30:]
    assert len(bodies) == 100
    app = cold_start("submit")

    # when: in an invocation with time for all of them (Lambda's longest timeout; in 30 s the records past the time
    # budget would be deferred, test_time_budget.py)
    response = _run(app, bodies, context=LambdaContext("cutout-test", memory_mb=256, timeout_seconds=900))

    # then: one job and one create per good upload, nothing failed, nothing lost
    assert response == NO_FAILURES
    assert len(emulator.engine.state.creates) == 30
    assert {j["source_key"] for j in aws.jobs()} == {g["key"] for g in good}


def test_one_notification_with_100_records(aws: Aws, emulator, function_env) -> None:
    # given: a single S3 notification body carrying 100 records (20 creates, 80 removals/foreign/broken)
    good = [_upload(aws, f"{INPUT_PREFIX}many/{i:03}.png", image_bytes("PNG", colour=(0, i * 9, 0))) for i in range(20)]
    records = [s3_notification(aws.bucket, g["key"], g["etag"], g["size"])["Records"][0] for g in good]
    removed = s3_notification(aws.bucket, INPUT_PREFIX + "x.png", "e", 0, "ObjectRemoved:Delete")["Records"][0]
    foreign = s3_notification("other-bucket", INPUT_PREFIX + "y.png", "e", 1)["Records"][0]
    records += [removed] * 40 + [foreign] * 30 + ["broken"] * 10
    app = cold_start("submit")

    # when
    response = _run(app, [{"Records": records}])

    # then: every record of the body was looked at, not just Records[0]
    assert response == NO_FAILURES
    assert len(emulator.engine.state.creates) == 20
    assert len(aws.jobs()) == 20


# ----- key shapes: every key S3 allows completes, or is refused before anything is claimed ------------------
# docs/hostile-inputs.md says which and why (inspection.key_shape_problem).
REFUSED_KEYS: dict[str, tuple[str, str]] = {
    # case: (key, error_code) -- with presigned URLs, the default asset transfer
    "dot_dot_segment": (INPUT_PREFIX + "../cutouts/escape.png", "key_dot_segment"),
    "dot_dot_inside": (INPUT_PREFIX + "shop/../other/item.png", "key_dot_segment"),
    "dot_segment": (INPUT_PREFIX + "./item.png", "key_dot_segment"),
    "double_slash": (INPUT_PREFIX + "shop//item.png", "key_empty_segment"),
    "slash_after_the_prefix": (INPUT_PREFIX + "/item.png", "key_empty_segment"),
}


@pytest.mark.parametrize("case", list(REFUSED_KEYS))
def test_a_key_no_url_can_carry_is_refused_before_the_claim_naming_its_shape(
    aws: Aws, emulator, function_env, no_secrets_in_logs, case
) -> None:
    # given: a real image at a key S3 accepts but a presigned URL cannot carry as it is
    key, code = REFUSED_KEYS[case]
    obj = _upload(aws, key)
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then: rejected with a reason naming the shape; never claimed (no submitting step), nothing created
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"], job["source_key"]) == ("rejected", code, key)
    assert job["job_id"] == job_id_for(aws.bucket, key, obj["etag"])  # the id `cutout upload` prints
    assert "submitting_at" not in job and "claimed_at" not in job
    assert emulator.engine.state.creates == []
    assert emulator.request_counts().get("upload_urls") is None
    assert find_log(no_secrets_in_logs.lines, message="upload rejected", error_code=code)


URL_SAFE_KEYS = {
    "question_mark_and_hash": INPUT_PREFIX + "what?#anchor.png",
    "backslash": INPUT_PREFIX + "windows\\path\\item.png",
    "encoded_slash_literal": INPUT_PREFIX + "a%2Fb.png",
    "encoded_dots_literal": INPUT_PREFIX + "%2e%2e/item.png",
    "dots_in_a_name": INPUT_PREFIX + "...and more/..item.png",
    "semicolon_ampersand_equals": INPUT_PREFIX + "a;b&c=d.png",
    "tab": INPUT_PREFIX + "tab\there.png",
    "control_characters": INPUT_PREFIX + "bell\x07 del\x7f esc\x1b.png",
}


@pytest.mark.parametrize("case", list(URL_SAFE_KEYS))
def test_a_key_the_presigner_encodes_reaches_magic_hour_byte_for_byte(aws: Aws, emulator, function_env, case) -> None:
    # given: a key with characters that mean something in a URL, percent-encoded by the presigner
    key = URL_SAFE_KEYS[case]
    body = image_bytes("PNG", colour=(len(key), 40, 90))
    obj = _upload(aws, key, body)
    app = cold_start("submit")

    # when
    assert _run(app, [_eb(aws, obj)]) == NO_FAILURES

    # then: Magic Hour fetched exactly the object's bytes through the URL and rendered it
    (job,) = aws.jobs()
    assert job["status"] == "queued"
    project = emulator.wait_for_status(job["project_id"], "complete")
    assert project.input_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("case", ["double_slash", "slash_after_the_prefix"])
def test_empty_segments_are_processed_when_the_bytes_are_uploaded_to_magic_hour(
    aws: Aws, emulator, function_env, monkeypatch, case
) -> None:
    # given: AssetTransfer=upload, so no URL carries the key
    monkeypatch.setenv("ASSET_TRANSFER", "upload")
    key, _ = REFUSED_KEYS[case]
    body = image_bytes("PNG", colour=(9, 99, 199))
    obj = _upload(aws, key, body)
    app = cold_start("submit")

    # when
    assert _run(app, [_eb(aws, obj)]) == NO_FAILURES

    # then
    (job,) = aws.jobs()
    assert (job["status"], job["source_key"]) == ("queued", key)
    project = emulator.wait_for_status(job["project_id"], "complete")
    assert project.input_sha256 == hashlib.sha256(body).hexdigest()


def test_dot_segments_are_refused_even_when_the_bytes_are_uploaded(
    aws: Aws, emulator, function_env, monkeypatch
) -> None:
    # given: AssetTransfer=upload; the cutout's key would still mirror `..` (outside the output prefix as a path)
    monkeypatch.setenv("ASSET_TRANSFER", "upload")
    key, code = REFUSED_KEYS["dot_dot_segment"]
    obj = _upload(aws, key)

    # when
    assert _run(cold_start("submit"), [_eb(aws, obj)]) == NO_FAILURES

    # then
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", code)
    assert emulator.engine.state.creates == []


# =========================================================================================================
# Objects: a terminal `rejected` record with its reason, no create
# =========================================================================================================
OBJECT_CASES: dict[str, tuple[str, bytes, str, str]] = {
    # case: (key, body, content type, error_code)
    "zero_bytes": ("empty.png", b"", "image/png", "empty_object"),
    "pdf_behind_jpg_extension": ("manual.jpg", PDF_BYTES, "image/jpeg", "not_an_image"),
    "html_content_type_on_png": ("page.png", b"<html><body>hi</body></html>", "text/html", "not_an_image"),
    "text_bytes_as_octet_stream": (
        "notes.png",
        b"just some text, honestly" * 4,
        "application/octet-stream",
        "not_an_image",
    ),
    "no_extension": ("README", image_bytes("PNG"), "image/png", "unsupported_extension"),
    "unsupported_extension": ("anim.gif", b"GIF89a" + b"\0" * 40, "image/gif", "unsupported_extension"),
}


@pytest.mark.parametrize("case", list(OBJECT_CASES))
def test_hostile_object_is_rejected_with_a_reason(aws: Aws, emulator, function_env, no_secrets_in_logs, case) -> None:
    # given
    name, body, ctype, code = OBJECT_CASES[case]
    obj = _upload(aws, INPUT_PREFIX + "hostile/" + name, body, ctype)
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", code)
    assert job["error_message"] and job["expires_at"]
    assert emulator.engine.state.creates == []
    assert find_log(no_secrets_in_logs.lines, message="upload rejected", error_code=code, job_id=job["job_id"])


def test_an_empty_object_is_recorded_under_the_id_its_etag_gives_whatever_the_event_says(
    aws: Aws, emulator, function_env
) -> None:
    # given: a 0-byte upload announced by an event without an ETag (S3 answers 416 to the ranged GET of it)
    obj = _upload(aws, INPUT_PREFIX + "hostile/empty.png", b"")
    assert obj["etag"]  # S3's ETag of no bytes
    app = cold_start("submit")

    # when
    response = _run(app, [eventbridge_object_created(aws.bucket, obj["key"], "", 0)])

    # then: the record is the one `cutout upload` and `cutout job s3://...` find (bucket, key, S3's ETag)
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", "empty_object")
    assert job["job_id"] == job_id_for(aws.bucket, obj["key"], obj["etag"])
    assert job["source_etag"] == obj["etag"]


def test_object_over_the_size_limit_is_rejected(aws: Aws, emulator, function_env, monkeypatch) -> None:
    # given: a 1 KiB limit and a bigger real image
    monkeypatch.setenv("MAX_INPUT_BYTES", "1024")
    obj = _upload(aws, INPUT_PREFIX + "big.png", image_bytes("PNG", size=(400, 400)))
    assert obj["size"] > 1024
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", "too_large")
    assert emulator.engine.state.creates == []


def test_object_deleted_before_processing_is_recorded(aws: Aws, emulator, function_env) -> None:
    # given: the upload is deleted between its event and the submit
    obj = _upload(aws, INPUT_PREFIX + "ephemeral.png")
    aws.client("s3").delete_object(Bucket=aws.bucket, Key=obj["key"])
    app = cold_start("submit")

    # when: delivered, and delivered again
    first = _run(app, [_eb(aws, obj)])
    second = _run(app, [_eb(aws, obj)])

    # then: one terminal record, no retry loop, no create
    assert first == second == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", "object_missing")
    assert emulator.engine.state.creates == []


def test_missing_background_is_rejected(aws: Aws, emulator, function_env) -> None:
    # given: an upload naming a background that does not exist
    obj = _upload(aws, INPUT_PREFIX + "bg.png", Metadata={"background-key": "backgrounds/nope.jpg"})
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", "background_invalid")
    assert emulator.engine.state.creates == []


# =========================================================================================================
# Webhooks: answered with a status that says why; nothing forged or broken reaches the completion queue
# =========================================================================================================
def _signed(body: bytes, *, ts: int | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, Any]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "version": "2.0",
        "headers": {
            "content-type": "application/json",
            "magic-hour-event-timestamp": stamp,
            "magic-hour-event-signature": sign(secret, stamp, body),
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": body.decode("utf-8", "replace"),
        "isBase64Encoded": False,
    }


def _payload(name: str = f"cutout:{FOREIGN_JOB}", status: str = "complete", **extra: Any) -> dict[str, Any]:
    return {
        "id": "cm0hostile0000000000000000",
        "name": name,
        "status": status,
        "type": "BACKGROUND_REMOVER",
        "credits_charged": 5,
        "downloads": [],
        "error": None,
        **extra,
    }


def _body(event_type: str = "image.completed", payload: Any = None) -> bytes:
    doc = {"type": event_type, "payload": _payload() if payload is None else payload}
    return json.dumps(doc, separators=(",", ":")).encode()


def _tampered() -> dict[str, Any]:
    event = _signed(_body())
    event["body"] = event["body"].replace('"complete"', '"error"')
    return event


def _unsigned() -> dict[str, Any]:
    event = _signed(_body())
    del event["headers"]["magic-hour-event-signature"]
    return event


def _bad_timestamp() -> dict[str, Any]:
    event = _signed(_body())
    event["headers"]["magic-hour-event-timestamp"] = "yesterday"
    return event


def _get_method() -> dict[str, Any]:
    event = _signed(_body())
    event["requestContext"]["http"]["method"] = "GET"
    return event


WEBHOOK_CASES: dict[str, tuple[Callable[[], dict[str, Any]], int, str]] = {
    # case: (event, HTTP status, logged reason)
    "bad_signature": (lambda: _signed(_body(), secret="not-the-secret"), 401, "bad signature"),
    "tampered_body": (_tampered, 401, "bad signature"),
    "stale_timestamp": (
        lambda: _signed(_body(), ts=int(time.time()) - 301),
        401,
        "timestamp outside the tolerance window",
    ),
    "future_timestamp": (
        lambda: _signed(_body(), ts=int(time.time()) + 360),  # margin: the clock moves on before verify
        401,
        "timestamp outside the tolerance window",
    ),
    "missing_signature": (_unsigned, 401, "missing signature headers"),
    "malformed_timestamp": (_bad_timestamp, 401, "malformed timestamp"),
    "huge_body": (lambda: _signed(b'{"pad":"' + b"x" * 300_000 + b'"}'), 413, "body too large"),
    "malformed_json": (lambda: _signed(b'{"type": "image.completed", "payload": '), 400, ""),
    "body_not_an_object": (lambda: _signed(b"[1,2,3]"), 400, ""),
    "payload_missing_id": (lambda: _signed(_body(payload={k: v for k, v in _payload().items() if k != "id"})), 400, ""),
    "payload_unknown_status": (lambda: _signed(_body(payload=_payload(status="processing"))), 400, ""),
    "unknown_event_type": (lambda: _signed(_body("video.completed")), 202, ""),
    "foreign_project": (lambda: _signed(_body(payload=_payload(name="someone else's project"))), 202, ""),
    "wrong_method": (_get_method, 405, ""),
}


@pytest.mark.parametrize("case", list(WEBHOOK_CASES))
def test_hostile_webhook_is_answered_and_never_enqueued(
    aws: Aws, emulator, function_env, no_secrets_in_logs, case
) -> None:
    # given
    build, status, reason = WEBHOOK_CASES[case]
    app = cold_start("webhook")

    # when
    answer = app.lambda_handler(build(), FakeContext())

    # then: the status says why, and nothing reached the completion queue
    assert answer["statusCode"] == status
    assert receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"] == []
    if reason:
        assert find_log(no_secrets_in_logs.lines, message="webhook rejected", reason=reason)


def test_replayed_webhook_is_refused(aws: Aws, emulator, function_env) -> None:
    # given: one authentic delivery
    app = cold_start("webhook")
    event = _signed(_body())

    # when: the very same signed bytes arrive again
    first = app.lambda_handler(copy.deepcopy(event), FakeContext())
    again = app.lambda_handler(copy.deepcopy(event), FakeContext())

    # then
    assert (first["statusCode"], again["statusCode"]) == (202, 409)
    assert len(receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"]) == 1


def test_base64_encoded_webhook_is_verified_on_the_raw_bytes(aws: Aws, emulator, function_env) -> None:
    # given: a Function URL that delivered the body base64-encoded
    raw = _body()
    event = _signed(raw)
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True

    # when / then
    assert cold_start("webhook").lambda_handler(event, FakeContext())["statusCode"] == 202


def test_webhook_for_an_unknown_job_is_dropped_after_bounded_retries(aws: Aws, emulator, function_env, capsys) -> None:
    # given: an authentic, well-formed completion for a cutout-named project we have no record of
    hook, finalize = cold_start("webhook"), cold_start("finalize")
    assert hook.lambda_handler(_signed(_body()), FakeContext())["statusCode"] == 202
    (record,) = receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"]

    # when: the finalize function sees it on receives 1..4
    answers = []
    for receives in range(1, 5):
        event = {"Records": [copy.deepcopy(record)]}
        event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receives)
        answers.append(finalize.lambda_handler(event, FakeContext()))

    # then: retried while the submit might still be recording it, then dropped with a count — no loop
    assert [len(a["batchItemFailures"]) for a in answers] == [1, 1, 1, 0]
    assert emitted_metrics(capsys.readouterr().out)["UnknownProject"] == 1
    assert aws.jobs() == []


# =========================================================================================================
# Magic Hour answers the create badly
# =========================================================================================================
@pytest.mark.parametrize(
    "faults",
    [{"malformed": "bad_json", "malformed_targets": ("create",)}, {"rate_500_after_create": 1.0}],
    ids=["create_200_malformed_json", "create_500_after_charging"],
)
def test_unknowable_create_outcome_is_recorded_and_never_repeated(
    aws: Aws, emulator, function_env, no_secrets_in_logs, faults
) -> None:
    # given: Magic Hour made (and charged) the project but the answer cannot be read
    emulator.configure(**faults)
    obj = _upload(aws, INPUT_PREFIX + "mystery.png")
    app = cold_start("submit")

    # when: delivered, then redelivered
    first = _run(app, [_eb(aws, obj)])
    second = _run(app, [_eb(aws, obj)])

    # then: one create, recorded as ambiguous and counted, never retried
    assert first == second == NO_FAILURES
    assert len(emulator.engine.state.creates) == 1
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"], job["ambiguous"]) == ("error", "create_outcome_unknown", True)
    assert find_log(no_secrets_in_logs.lines, job_id=job["job_id"], level="ERROR")


@pytest.mark.parametrize(
    "mode", ["missing_fields", "wrong_content_type"], ids=["create_200_missing_credits", "create_200_text_html"]
)
def test_create_answer_with_an_id_is_accepted_despite_its_flaws(aws: Aws, emulator, function_env, mode) -> None:
    # given: a 200 that names the project but lacks credits_charged / is labelled text/html
    emulator.configure(malformed=mode, malformed_targets=("create",))
    obj = _upload(aws, INPUT_PREFIX + f"{mode}.png")
    app = cold_start("submit")

    # when
    response = _run(app, [_eb(aws, obj)])

    # then: the project id is what matters: the job is tracked, not treated as unknown
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert job["status"] == "queued" and job["project_id"] == emulator.engine.state.creates[0].id
    assert len(emulator.engine.state.creates) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_create_refused_by_magic_hour_is_rejected(aws: Aws, emulator, function_env, status) -> None:
    emulator.configure(create_error_status=status)
    obj = _upload(aws, INPUT_PREFIX + f"refused-{status}.png")
    response = _run(cold_start("submit"), [_eb(aws, obj)])
    assert response == NO_FAILURES
    (job,) = aws.jobs()
    assert (job["status"], job["error_code"]) == ("rejected", f"http_{status}")
    assert job["error_message"] == "Unable to create image"


@pytest.mark.parametrize("status", [401, 402, 403])
def test_create_refused_for_account_reasons_goes_back_to_the_queue(aws: Aws, emulator, function_env, status) -> None:
    # given: the key, the credits or the plan is the problem, not the upload
    emulator.configure(create_error_status=status)
    obj = _upload(aws, INPUT_PREFIX + f"account-{status}.png")
    event_body = _eb(aws, obj)

    # when
    response = _run(cold_start("submit"), [event_body])

    # then: the one genuinely retryable message is listed; no record is left behind to block the retry
    assert len(response["batchItemFailures"]) == 1
    assert aws.jobs() == [] and emulator.engine.state.creates == []


# =========================================================================================================
# Magic Hour answers the status check badly (poll)
# =========================================================================================================
def _submitted(aws: Aws, emulator: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    obj = _upload(aws, INPUT_PREFIX + name)
    assert _run(cold_start("submit"), [_eb(aws, obj)]) == NO_FAILURES
    emulator.wait_idle()
    (job,) = aws.jobs()
    (poll_message,) = receive_as_event(aws.client("sqs"), aws.poll_queue_url)["Records"]
    return job, json.loads(poll_message["body"])


@pytest.mark.parametrize("mode", ["bad_json", "missing_fields", "unknown_status"])
def test_malformed_status_answer_is_retried_then_times_out_with_a_reason(
    aws: Aws, emulator, function_env, capsys, mode
) -> None:
    # given: a submitted job whose status checks come back malformed
    _, message = _submitted(aws, emulator, f"poll-{mode}.png")
    emulator.configure(malformed=mode, malformed_targets=("get",))
    poll = cold_start("poll")
    poll.poller.settings = poll.poller.settings._replace(poll_max_attempts=2)

    # when: the first check
    assert poll.lambda_handler(sqs_event([message]), FakeContext()) == NO_FAILURES

    # then: rescheduled with a delay (not failed, not completed), the job untouched
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.poll_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert aws.jobs()[0]["status"] in ("queued", "rendering")
    assert emitted_metrics(capsys.readouterr().out)["PollErrors"] == 1

    # when: the last allowed check (attempt 2, what the delayed message holds) is malformed too
    assert poll.lambda_handler(sqs_event([{**message, "attempt": 2}]), FakeContext()) == NO_FAILURES

    # then: a terminal state that says why
    (late,) = aws.jobs()
    assert late["status"] == "timed_out" and "last check failed" in late["error_message"]
    assert len(emulator.engine.state.creates) == 1


def test_status_answer_labelled_text_html_still_completes(aws: Aws, emulator, function_env) -> None:
    _, message = _submitted(aws, emulator, "poll-html.png")
    emulator.configure(malformed="wrong_content_type", malformed_targets=("get",))
    assert cold_start("poll").lambda_handler(sqs_event([message]), FakeContext()) == NO_FAILURES
    assert len(receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"]) == 1


@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"project": "nope"}), json.dumps({"project": {"id": "p", "status": "processing"}})],
    ids=["completion_not_json", "completion_without_project", "completion_unknown_status"],
)
def test_malformed_completion_message_is_dropped_not_looped(aws: Aws, emulator, function_env, capsys, body) -> None:
    response = cold_start("finalize").lambda_handler(sqs_event([body]), FakeContext())
    assert response == NO_FAILURES
    assert emitted_metrics(capsys.readouterr().out)["CompletionMalformed"] == 1


def test_malformed_poll_message_is_dropped_not_looped(aws: Aws, emulator, function_env, capsys) -> None:
    response = cold_start("poll").lambda_handler(sqs_event(['{"job_id": 1}']), FakeContext())
    assert response == NO_FAILURES
    assert emitted_metrics(capsys.readouterr().out)["PollMalformed"] == 1


# =========================================================================================================
# Downloads: a broken output is retried a bounded number of times, then recorded — never `complete`
# =========================================================================================================
def _completed(aws: Aws, emulator: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    job, _ = _submitted(aws, emulator, name)
    payload = emulator.engine.payload(job["project_id"])
    assert payload["status"] == "complete"
    return job, payload


def _finalize(app: Any, job: dict[str, Any], project: dict[str, Any], receives: int) -> dict[str, Any]:
    message = CompletionMessage(project=project, source="webhook", event_type="image.completed", job_id=job["job_id"])
    return _run(app, [message.to_json()], receives=receives)


def test_download_404_is_refreshed_from_magic_hour(aws: Aws, emulator, function_env, capsys) -> None:
    # given: the completion names a URL that answers 404
    job, payload = _completed(aws, emulator, "dl-404.png")
    with StaticFileServer() as files:
        payload["downloads"] = [{"url": files.base_url + "/gone/output.png", "expires_at": "2099-01-01T00:00:00Z"}]

        # when
        response = _finalize(cold_start("finalize"), job, payload, receives=1)

    # then: a fresh URL was fetched from Magic Hour and the job completed
    assert response == NO_FAILURES
    assert aws.jobs()[0]["status"] == "complete"
    assert emitted_metrics(capsys.readouterr().out)["DownloadUrlRefreshed"] == 1


def _broken_png() -> bytes:
    return image_bytes("PNG")[:-12]  # no IEND chunk


DOWNLOAD_CASES: dict[str, tuple[dict[str, Any], str]] = {
    # case: (emulator faults or served bytes, error_code)
    "download_expired_even_when_refreshed": ({"expired_download_rate": 1.0}, "download_unavailable"),
    "download_not_a_png": ({"garbage_download_rate": 1.0}, "invalid_output"),
    "download_truncated_png": ({"serve": _broken_png()}, "invalid_output"),
    "download_larger_than_allowed": ({"max_output_bytes": "100"}, "output_too_large"),
}


@pytest.mark.parametrize("case", list(DOWNLOAD_CASES))
def test_broken_download_is_retried_then_recorded(
    aws: Aws, emulator, function_env, monkeypatch, no_secrets_in_logs, case
) -> None:
    # given: a finished project whose output cannot be used
    setup, code = DOWNLOAD_CASES[case]
    job, payload = _completed(aws, emulator, f"{case}.png")
    if "max_output_bytes" in setup:
        monkeypatch.setenv("MAX_OUTPUT_BYTES", setup["max_output_bytes"])
    elif "serve" not in setup:
        emulator.configure(**setup)
        payload = emulator.engine.payload(job["project_id"])  # URLs handed out under the fault
    app = cold_start("finalize")
    files = StaticFileServer()
    if "serve" in setup:
        files.start()
        payload["downloads"] = [
            {"url": files.add("/out/output.png", setup["serve"]), "expires_at": "2099-01-01T00:00:00Z"}
        ]

    # when: the completion message is received three times
    try:
        answers = [_finalize(app, job, payload, receives=n) for n in (1, 2, 3)]
    finally:
        if "serve" in setup:
            files.stop()

    # then: retried twice (fresh URL each time), then a terminal error with the reason; nothing written
    assert [len(a["batchItemFailures"]) for a in answers] == [1, 1, 0]
    (failed,) = aws.jobs()
    assert (failed["status"], failed["error_code"]) == ("error", code)
    assert "output_key" not in failed
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=OUTPUT_PREFIX)
    assert listed.get("KeyCount", 0) == 0
    assert find_log(no_secrets_in_logs.lines, message="job failed", error_code=code)
    assert len(emulator.engine.state.creates) == 1
