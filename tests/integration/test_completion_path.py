"""Results come back: webhook, polling, finalize, terminal states — handlers over moto server + the emulator."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cutout.magic_hour.webhook_auth import sign

from tests.conftest import INPUT_PREFIX, OUTPUT_PREFIX, WEBHOOK_SECRET, Aws
from tests.support.events import eventbridge_object_created, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.queues import receive_as_event
from tests.support.roles import function_role
from tests.support.waiting import wait_until


@pytest.fixture
def fns(function_env: dict[str, str], aws: Aws) -> dict[str, Any]:
    aws.client("s3").put_bucket_versioning(Bucket=aws.bucket, VersioningConfiguration={"Status": "Enabled"})
    # Observe "Cutout Completed"/"Cutout Failed" the way an integrator would: a rule into a queue.
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="cutout-events-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="observe", EventPattern=json.dumps({"source": ["cutout"]}))
    events.put_targets(Rule="observe", Targets=[{"Id": "q", "Arn": arn}])
    return {name: cold_start(name) for name in ("submit", "webhook", "poll", "finalize")} | {"events_url": url}


def published(aws: Aws, fns: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = aws.client("sqs").receive_message(QueueUrl=fns["events_url"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def submit(aws: Aws, fns: dict[str, Any], key: str, body: bytes | None = None) -> dict[str, Any]:
    body = body or image_bytes("PNG", size=(40, 30))
    resp = aws.put(key, body, "image/png")
    event = eventbridge_object_created(aws.bucket, key, resp["ETag"].strip('"'), len(body))
    assert fns["submit"].lambda_handler(sqs_event([event]), FakeContext()) == {"batchItemFailures": []}
    (job,) = [j for j in aws.jobs() if j["source_key"] == key]
    return job


def wait_project(
    emulator: Any, project_id: str, statuses: tuple[str, ...] = ("complete", "error", "canceled")
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        payload = emulator.engine.payload(project_id)
        if payload and payload["status"] in statuses:
            return payload
        time.sleep(0.02)
    raise AssertionError(f"project {project_id} never reached {statuses}")


def webhook_event(
    body: bytes, *, secret: str = WEBHOOK_SECRET, ts: int | None = None, signature: str | None = None
) -> dict[str, Any]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "magic-hour-event-timestamp": stamp,
            "magic-hour-event-signature": signature or sign(secret, stamp, body),
        },
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "203.0.113.9"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def deliver(fns: dict[str, Any], event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"type": event_type, "payload": payload}, separators=(",", ":")).encode()
    result: dict[str, Any] = fns["webhook"].lambda_handler(webhook_event(body), FakeContext())
    return result


def run_queue(aws: Aws, fns: dict[str, Any], queue_url: str, fn: str) -> dict[str, Any]:
    event = receive_as_event(aws.client("sqs"), queue_url)
    if not event["Records"]:
        return {"batchItemFailures": []}
    result: dict[str, Any] = fns[fn].lambda_handler(event, FakeContext())
    return result


def output_versions(aws: Aws, key: str) -> int:
    resp = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=key)
    return len([v for v in resp.get("Versions", []) if v["Key"] == key])


def assert_cutout(aws: Aws, key: str, size: tuple[int, int]) -> None:
    from PIL import Image

    obj = aws.client("s3").get_object(Bucket=aws.bucket, Key=key)
    img = Image.open(io.BytesIO(obj["Body"].read()))
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == size
    assert img.getchannel("A").getextrema()[0] == 0  # some pixels really are transparent
    assert obj["Metadata"]["job-id"]


def test_webhook_completes_the_job(aws: Aws, emulator, fns) -> None:
    # given
    job = submit(aws, fns, INPUT_PREFIX + "shop/red chair.png")
    payload = wait_project(emulator, job["project_id"])

    # when: Magic Hour's signed webhook arrives and the finalize function drains the completion queue
    assert deliver(fns, "image.completed", payload)["statusCode"] == 202
    assert run_queue(aws, fns, aws.completion_queue_url, "finalize") == {"batchItemFailures": []}

    # then
    (done,) = aws.jobs()
    assert done["status"] == "complete"
    assert done["output_key"] == OUTPUT_PREFIX + "shop/red chair.png"
    assert done["completed_at"] and done["credits_charged"] == 5
    assert_cutout(aws, done["output_key"], (40, 30))
    events = published(aws, fns)
    assert [e["detail-type"] for e in events] == ["Cutout Completed"]
    assert events[0]["detail"]["job_id"] == done["job_id"]


def test_polling_alone_completes_the_job(aws: Aws, emulator, fns) -> None:
    # given: no webhook ever arrives
    job = submit(aws, fns, INPUT_PREFIX + "poll/only.jpg", image_bytes("JPEG", size=(33, 21)))
    wait_project(emulator, job["project_id"])

    # when: the scheduled check runs, then the finalize function
    run_queue(aws, fns, aws.poll_queue_url, "poll")
    run_queue(aws, fns, aws.completion_queue_url, "finalize")

    # then
    (done,) = aws.jobs()
    assert done["status"] == "complete"
    assert_cutout(aws, OUTPUT_PREFIX + "poll/only.png", (33, 21))


def test_webhook_and_poll_together_finalize_once(aws: Aws, emulator, fns) -> None:
    # given
    job = submit(aws, fns, INPUT_PREFIX + "race/both.png")
    payload = wait_project(emulator, job["project_id"])

    # when: both paths report completion, and the webhook is even delivered twice (re-signed)
    deliver(fns, "image.completed", payload)
    _next_second()
    deliver(fns, "image.completed", payload)
    run_queue(aws, fns, aws.poll_queue_url, "poll")
    for _ in range(3):
        run_queue(aws, fns, aws.completion_queue_url, "finalize")

    # then: one S3 write, one completion event
    assert aws.jobs()[0]["status"] == "complete"
    assert output_versions(aws, OUTPUT_PREFIX + "race/both.png") == 1
    assert [e["detail-type"] for e in published(aws, fns)] == ["Cutout Completed"]


def test_late_started_event_does_not_move_a_complete_job_backwards(aws: Aws, emulator, fns) -> None:
    job = submit(aws, fns, INPUT_PREFIX + "order/late.png")
    payload = wait_project(emulator, job["project_id"])
    deliver(fns, "image.completed", payload)
    run_queue(aws, fns, aws.completion_queue_url, "finalize")

    # when: image.started arrives after completion
    started = {**payload, "status": "rendering", "downloads": []}
    _next_second()
    assert deliver(fns, "image.started", started)["statusCode"] == 202
    run_queue(aws, fns, aws.completion_queue_url, "finalize")

    # then
    assert aws.jobs()[0]["status"] == "complete"


def test_webhook_rejections_touch_no_job(aws: Aws, emulator, fns) -> None:
    # given a real, queued job
    job = submit(aws, fns, INPUT_PREFIX + "hostile/target.png")
    payload = wait_project(emulator, job["project_id"])
    good = json.dumps({"type": "image.completed", "payload": payload}, separators=(",", ":")).encode()
    hook = fns["webhook"].lambda_handler
    ctx = FakeContext()

    # when / then
    forged = hook(webhook_event(good, secret="not-the-secret"), ctx)
    assert forged["statusCode"] == 401
    stale = hook(webhook_event(good, ts=int(time.time()) - 301), ctx)
    assert stale["statusCode"] == 401
    tampered = webhook_event(good)
    tampered["body"] = tampered["body"].replace('"complete"', '"error"')
    assert hook(tampered, ctx)["statusCode"] == 401
    malformed = b'{"type": "image.completed", "payload": '
    assert hook(webhook_event(malformed), ctx)["statusCode"] == 400
    huge = b'{"type":"image.completed","payload":{"pad":"' + b"x" * 300_000 + b'"}}'
    assert hook(webhook_event(huge), ctx)["statusCode"] == 413
    unknown = {**payload, "id": "cm0000000000000000000000x", "name": "someone else's project"}
    # ignored (not a Cutout job's), but answered 202 like any authentic delivery
    assert deliver(fns, "image.completed", unknown)["statusCode"] == 202
    first = webhook_event(good)
    assert hook(first, ctx)["statusCode"] == 202
    assert hook(first, ctx)["statusCode"] == 409  # the very same signed delivery again: a replay

    # only the one authentic delivery reached the queue; the job is untouched until finalize runs
    queued = receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"]
    assert len(queued) == 1
    assert aws.jobs()[0]["status"] in ("queued", "rendering")


def test_render_error_is_recorded_with_its_code_and_refund(aws: Aws, emulator, fns) -> None:
    emulator.engine.configure(render_error_rate=1.0, render_error_code="invalid_file_format")
    job = submit(aws, fns, INPUT_PREFIX + "bad/render.png")
    payload = wait_project(emulator, job["project_id"])
    deliver(fns, "image.errored", payload)
    run_queue(aws, fns, aws.completion_queue_url, "finalize")
    (failed,) = aws.jobs()
    assert failed["status"] == "error"
    assert failed["error_code"] == "invalid_file_format"
    assert failed["credits_refunded"] is True
    assert [e["detail-type"] for e in published(aws, fns)] == ["Cutout Failed"]


def test_canceled_project_becomes_canceled(aws: Aws, emulator, fns) -> None:
    emulator.engine.configure(cancel_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + "cancel/me.png")
    wait_project(emulator, job["project_id"], ("canceled",))
    run_queue(aws, fns, aws.poll_queue_url, "poll")  # no webhook exists for canceled
    run_queue(aws, fns, aws.completion_queue_url, "finalize")
    assert aws.jobs()[0]["status"] == "canceled"


def _next_second() -> None:
    """Until the clock's whole second has moved on: a delivery signed now differs from the last one (replay)."""
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, "the next whole second", timeout=5)


def _visible(aws: Aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_never_completing_project_times_out(aws: Aws, emulator, fns) -> None:
    emulator.engine.configure(never_complete_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + "slow/forever.png")
    wait_project(emulator, job["project_id"], ("rendering",))
    poller = fns["poll"].poller
    poller.settings = poller.settings._replace(poll_max_attempts=2)

    # when: the first check finds it rendering, the second (one delay later) is the last allowed
    run_queue(aws, fns, aws.poll_queue_url, "poll")
    wait_until(lambda: _visible(aws, aws.poll_queue_url), "the second check (scheduled one delay later) is due")
    run_queue(aws, fns, aws.poll_queue_url, "poll")

    # then
    (late,) = aws.jobs()
    assert late["status"] == "timed_out"
    assert "no result after" in late["error_message"]


def test_expired_download_url_is_refetched(aws: Aws, emulator, fns) -> None:
    emulator.engine.configure(expired_download_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + "expired/url.png")
    payload = wait_project(emulator, job["project_id"])
    emulator.engine.configure(expired_download_rate=0.0)  # the re-fetch hands out a working URL
    deliver(fns, "image.completed", payload)
    run_queue(aws, fns, aws.completion_queue_url, "finalize")
    assert aws.jobs()[0]["status"] == "complete"


def test_garbage_download_never_marks_complete(aws: Aws, emulator, fns) -> None:
    emulator.engine.configure(garbage_download_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + "garbage/out.png")
    payload = wait_project(emulator, job["project_id"])
    deliver(fns, "image.completed", payload)
    first = run_queue(aws, fns, aws.completion_queue_url, "finalize")
    assert len(first["batchItemFailures"]) == 1  # retried, not completed
    assert aws.jobs()[0]["status"] in ("queued", "rendering")
    # after repeated receives it is recorded as an error with a reason, never as complete
    from cutout.domain.messages import CompletionMessage

    with function_role("finalize"):  # its fourth receive, as the finalize function sees it
        fns["finalize"].finalizer.handle(CompletionMessage(project=payload, source="webhook"), receive_count=3)
    (bad,) = aws.jobs()
    assert bad["status"] == "error" and bad["error_code"] == "invalid_output"
    assert output_versions(aws, OUTPUT_PREFIX + "garbage/out.png") == 0


def test_a_duplicate_completion_is_left_to_the_lease_holder(aws: Aws, emulator, fns) -> None:
    from cutout.domain.messages import CompletionMessage
    from cutout.domain.outcomes import FinalizeOutcome

    # given: a finished project whose job another finalizer is writing (it holds the finalize lease)
    job = submit(aws, fns, INPUT_PREFIX + "lease/held.png")
    payload = wait_project(emulator, job["project_id"])
    finalizer = fns["finalize"].finalizer
    message = CompletionMessage(project=payload, source="poll")
    with function_role("finalize"):
        assert finalizer.store.begin_finalize(job["job_id"], "the-holder", 120)

        # when a duplicate completion arrives: it is left to the holder, not sent back to wait out a visibility
        # timeout and spend a receive towards the DLQ
        outcome = finalizer.handle(message, receive_count=1)

    # then the job is untouched: still the holder's to finish, nothing written to S3
    assert outcome == FinalizeOutcome.LEFT_TO_HOLDER
    (held,) = aws.jobs()
    assert held["status"] in ("queued", "rendering") and held["finalize_token"] == "the-holder"
    assert output_versions(aws, OUTPUT_PREFIX + "lease/held.png") == 0


def test_started_webhook_marks_rendering_in_place(aws: Aws, emulator, fns) -> None:
    # given: a queued job whose project has started
    job = submit(aws, fns, INPUT_PREFIX + "progress/started.png")
    payload = {**wait_project(emulator, job["project_id"]), "status": "rendering", "downloads": []}

    # when
    assert deliver(fns, "image.started", payload)["statusCode"] == 202

    # then: the record moved forward without a trip through the completion queue
    assert aws.jobs()[0]["status"] == "rendering"
    assert receive_as_event(aws.client("sqs"), aws.completion_queue_url)["Records"] == []


def test_started_webhook_for_another_project_changes_nothing(aws: Aws, emulator, fns) -> None:
    job = submit(aws, fns, INPUT_PREFIX + "progress/other.png")
    payload = {**wait_project(emulator, job["project_id"]), "id": "cm9999999999999999999999z", "status": "rendering"}
    assert deliver(fns, "image.started", payload)["statusCode"] == 202
    assert aws.jobs()[0]["status"] == "queued"


def test_a_completion_for_a_project_whose_name_is_not_ours_finds_its_job_by_project(aws: Aws, emulator, fns) -> None:
    # given: a job whose project finished, and a completion message that names no job and carries a project
    # renamed in Magic Hour's dashboard (a message of an older version, redriven from its DLQ, say)
    job = submit(aws, fns, INPUT_PREFIX + "renamed/photo.png")
    payload = {**wait_project(emulator, job["project_id"]), "name": "renamed by a person"}
    body = json.dumps({"project": payload, "source": "webhook", "event_type": "image.completed"})
    aws.client("sqs").send_message(QueueUrl=aws.completion_queue_url, MessageBody=body)

    # when: the finalize runs
    assert run_queue(aws, fns, aws.completion_queue_url, "finalize") == {"batchItemFailures": []}

    # then: the job was found through its project id, and is complete
    (done,) = aws.jobs()
    assert done["status"] == "complete"


def _as_unrecorded_claim(aws: Aws, job_id: str) -> None:
    """The job as a submit leaves it that died between its create and recording the project: a claim, no project."""
    aws.client("dynamodb").update_item(
        TableName=aws.table,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET #s = :s REMOVE project_id",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "submitting"}},
    )


@pytest.mark.parametrize("stuck_at", ["rendering", "submitting"])
def test_a_job_stuck_past_the_limit_is_ended_by_the_sweeper_and_announced(
    aws: Aws, emulator, fns, stuck_at: str
) -> None:
    # given: a job whose project never finishes, and (for "submitting") whose create was never recorded
    emulator.engine.configure(never_complete_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + f"stuck/{stuck_at}.png")
    if stuck_at == "submitting":
        _as_unrecorded_claim(aws, job["job_id"])
    sweeper = cold_start("sweeper")
    later = datetime.now(UTC) + timedelta(days=1)  # far past the poll limit
    sweeper.configure(clock=lambda: later)

    # when: the sweep runs
    outcomes = sweeper.lambda_handler({}, FakeContext())

    # then: the job ends with its reason, and integrators are told
    (ended,) = aws.jobs()
    if stuck_at == "submitting":
        assert outcomes == {"ambiguous": 1}
        assert (ended["status"], ended["error_code"]) == ("error", "create_outcome_unknown")
    else:
        assert outcomes == {"timed_out": 1}
        assert ended["status"] == "timed_out" and "past the limit" in ended["error_message"]
    events = published(aws, fns)
    assert [(e["detail-type"], e["detail"]["job_id"]) for e in events] == [("Cutout Failed", job["job_id"])]


def test_a_delivery_the_webhook_could_not_enqueue_is_accepted_when_magic_hour_retries_it(
    aws: Aws, emulator, fns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a finished job, and a webhook whose completion queue is unreachable
    job = submit(aws, fns, INPUT_PREFIX + "retried/delivery.png")
    payload = wait_project(emulator, job["project_id"])
    body = json.dumps({"type": "image.completed", "payload": payload}, separators=(",", ":")).encode()
    delivery = webhook_event(body, ts=int(time.time()))
    good_url = aws.completion_queue_url
    monkeypatch.setenv("COMPLETION_QUEUE_URL", good_url.rsplit("/", 1)[0] + "/no-such-queue")
    broken = cold_start("webhook")

    # when: Magic Hour delivers, then retries the very same delivery once the queue is back
    first = broken.lambda_handler(delivery, FakeContext())
    monkeypatch.setenv("COMPLETION_QUEUE_URL", good_url)
    second = cold_start("webhook").lambda_handler(delivery, FakeContext())

    # then: the first is a 500 Magic Hour retries, and its replay mark was given back so the retry is accepted
    assert (first["statusCode"], second["statusCode"]) == (500, 202)
    run_queue(aws, fns, good_url, "finalize")
    assert aws.jobs()[0]["status"] == "complete"


def test_an_ambiguous_create_whose_project_reports_progress_is_adopted_and_given_status_checks(
    aws: Aws, emulator, fns
) -> None:
    # given: a job whose create's outcome was never recorded, ended `error` / create_outcome_unknown by the
    # sweeper, while its project renders at Magic Hour after all
    emulator.engine.configure(never_complete_rate=1.0)
    job = submit(aws, fns, INPUT_PREFIX + "ambiguous/renders.png")
    project = wait_project(emulator, job["project_id"], ("queued", "rendering"))
    _as_unrecorded_claim(aws, job["job_id"])
    sweeper = cold_start("sweeper")
    later = datetime.now(UTC) + timedelta(days=1)
    sweeper.configure(clock=lambda: later)
    assert sweeper.lambda_handler({}, FakeContext()) == {"ambiguous": 1}
    receive_as_event(aws.client("sqs"), aws.poll_queue_url)  # the submit's own first check, long gone

    # when: the project's progress reaches the finalize
    body = json.dumps({"project": project, "source": "webhook", "event_type": "image.started"})
    aws.client("sqs").send_message(QueueUrl=aws.completion_queue_url, MessageBody=body)
    assert run_queue(aws, fns, aws.completion_queue_url, "finalize") == {"batchItemFailures": []}

    # then: the job is adopted (its project recorded) and a status check is scheduled, so it finishes even if no
    # further webhook arrives
    (adopted,) = aws.jobs()
    assert adopted["project_id"] == job["project_id"]
    assert adopted["status"] in ("queued", "rendering")
    checks = receive_as_event(aws.client("sqs"), aws.poll_queue_url)["Records"]
    assert [json.loads(r["body"])["job_id"] for r in checks] == [job["job_id"]]
