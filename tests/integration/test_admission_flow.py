"""Admission through the handlers: uploads beyond `MaxJobsInFlight` wait visibly and for free,
a finished job starts the oldest waiting one, a 429 is backpressure, every ending path gives its slot back exactly
once, and a paid result that arrives after its job timed out still completes it.

Handlers over moto server + the Magic Hour emulator over HTTP; the ingest queue is a real moto queue with the
template's redrive policy, consumed the way Lambda's event-source mapping consumes it.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from cutout.admission.control import LIMIT_KEY, SLOT_PREFIX
from cutout.domain.models import iso, job_id_for, utc_now
from cutout.magic_hour.webhook_auth import sign
from cutout.runtime.observability import metrics

from tests.conftest import INPUT_PREFIX, OUTPUT_PREFIX, WEBHOOK_SECRET, Aws
from tests.integration.test_admission import LimitWritesMeet
from tests.support.aws_calls import count_calls
from tests.support.events import eventbridge_object_created, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.observed import QueuePair
from tests.support.queues import receive_as_event
from tests.support.template import resource
from tests.support.waiting import wait_until

NO_FAILURES = {"batchItemFailures": []}


@dataclass
class Flow:
    aws: Aws
    emulator: Any
    ingest: QueuePair
    fns: dict[str, Any]
    events_url: str

    # ----- driving the stack ------------------------------------------------------------------------
    def upload(self, name: str, colour: tuple[int, int, int] = (200, 30, 30)) -> str:
        key = INPUT_PREFIX + name
        body = image_bytes("PNG", size=(40, 30), colour=colour)
        etag = self.aws.put(key, body, "image/png")["ETag"].strip('"')
        self.ingest.send(eventbridge_object_created(self.aws.bucket, key, etag, len(body)))
        return job_id_for(self.aws.bucket, key, etag)

    def run_submit(self) -> list[dict[str, Any]]:
        """Drain the ingest queue through the submit function; every batch answer."""
        answers = []
        while (answer := self.ingest.deliver(self._handler("submit"))) is not None:
            answers.append(answer)
        return answers

    def run(self, queue_url: str, fn: str) -> dict[str, Any]:
        event = receive_as_event(self.aws.client("sqs"), queue_url)
        if not event["Records"]:
            return NO_FAILURES
        result: dict[str, Any] = self.fns[fn].lambda_handler(event, FakeContext())
        return result

    def finish(self, job_id: str) -> None:
        """Magic Hour's signed `image.completed` for the job's project, then the finalize function."""
        project = self.wait_project(self.job(job_id)["project_id"])
        body = json.dumps({"type": "image.completed", "payload": project}, separators=(",", ":")).encode()
        assert self.fns["webhook"].lambda_handler(webhook_event(body), FakeContext())["statusCode"] == 202
        assert self.run(self.aws.completion_queue_url, "finalize") == NO_FAILURES

    def tick(self) -> Any:
        return self.fns["sweeper"].lambda_handler({"task": "admission"}, FakeContext())

    def wait_project(self, project_id: str, statuses: tuple[str, ...] = ("complete", "error", "canceled")) -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            payload = self.emulator.engine.payload(project_id)
            if payload and payload["status"] in statuses:
                return payload
            time.sleep(0.02)
        raise AssertionError(f"project {project_id} never reached {statuses}")

    # ----- looking at it ------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        (job,) = [j for j in self.aws.jobs() if j["job_id"] == job_id]
        return job

    def status(self, *job_ids: str) -> list[str]:
        return [self.job(j)["status"] for j in job_ids]

    def slots(self) -> dict[str, str]:
        items = self.aws.client("dynamodb").scan(TableName=self.aws.table)["Items"]
        return {i["job_id"]["S"]: i["holder"]["S"] for i in items if i["job_id"]["S"].startswith(SLOT_PREFIX)}

    def limit(self) -> int | None:
        item = self.aws.client("dynamodb").get_item(TableName=self.aws.table, Key={"job_id": {"S": LIMIT_KEY}})
        return int(item["Item"]["effective"]["N"]) if "Item" in item else None

    def creates(self) -> int:
        return len(self.emulator.engine.state.creates)

    def published(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        msgs = sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in msgs]

    def _handler(self, fn: str) -> Callable[[dict[str, Any]], Any]:
        return lambda event: self.fns[fn].lambda_handler(event, FakeContext())


def webhook_event(body: bytes) -> dict[str, Any]:
    stamp = str(int(time.time()))
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {
            "content-type": "application/json",
            "magic-hour-event-timestamp": stamp,
            "magic-hour-event-signature": sign(WEBHOOK_SECRET, stamp, body),
        },
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


@pytest.fixture
def make_flow(
    aws: Aws, emulator: Any, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Flow]:
    metrics.clear_metrics()
    redrive = resource("IngestQueue")["Properties"]["RedrivePolicy"]
    ingest = QueuePair.create(aws.client("sqs"), "cutout-ingest", max_receive_count=int(redrive["maxReceiveCount"]))
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="cutout-events-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="observe", EventPattern=json.dumps({"source": ["cutout"]}))
    events.put_targets(Rule="observe", Targets=[{"Id": "q", "Arn": arn}])

    def build(max_in_flight: int = 1, **env: str) -> Flow:
        monkeypatch.setenv("MAX_JOBS_IN_FLIGHT", str(max_in_flight))
        monkeypatch.setenv("INGEST_QUEUE_URL", ingest.url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        fns = {n: cold_start(n) for n in ("submit", "webhook", "poll", "finalize", "sweeper")}
        return Flow(aws, emulator, ingest, fns, url)

    return build


# ----- waiting ---------------------------------------------------------------------------------------
def test_uploads_beyond_the_limit_wait_visibly_and_cost_nothing(make_flow: Callable[..., Flow]) -> None:
    # given: one slot
    flow = make_flow(1)

    # when: three uploads arrive
    first = flow.upload("a.png")
    flow.run_submit()
    later = [flow.upload("b.png", (10, 200, 10)), flow.upload("c.png", (10, 10, 200))]
    answers = flow.run_submit()

    # then: one is at Magic Hour, two wait in the table; every message was acknowledged (none will come back or
    # reach the DLQ), and only one create was made
    assert flow.status(first) == ["queued"] or flow.status(first) == ["rendering"]
    assert flow.status(*later) == ["waiting", "waiting"]
    assert all(a == NO_FAILURES for a in answers)
    assert flow.ingest.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert flow.ingest.dead_letters() == 0
    assert flow.creates() == 1
    assert flow.slots() == {"slot#0": first}
    assert all("credits_charged" not in flow.job(j) for j in later)


def test_a_finished_job_starts_the_oldest_waiting_one(make_flow: Callable[..., Flow]) -> None:
    # given: one slot held by a job, and two uploads waiting (b arrived before c)
    flow = make_flow(1)
    first = flow.upload("a.png")
    flow.run_submit()
    b = flow.upload("b.png", (10, 200, 10))
    flow.run_submit()
    c = flow.upload("c.png", (10, 10, 200))
    flow.run_submit()

    # when: the first job's project finishes (its webhook), and the dispatch message that frees is delivered
    flow.finish(first)
    assert flow.slots() == {}  # freed on Magic Hour's finish report
    flow.run_submit()

    # then: the oldest waiting upload is now at Magic Hour, holding the slot; the other still waits
    assert flow.status(first, c) == ["complete", "waiting"]
    assert flow.job(b)["status"] in ("queued", "rendering")
    assert flow.slots() == {"slot#0": b}
    assert flow.creates() == 2

    # and when that one finishes too, the last one starts
    flow.finish(b)
    flow.run_submit()
    assert flow.slots() == {"slot#0": c}
    flow.finish(c)
    assert flow.status(first, b, c) == ["complete"] * 3
    assert flow.slots() == {}
    assert flow.creates() == 3


def test_a_429_is_backpressure_the_job_waits_and_the_limit_drops(make_flow: Callable[..., Flow]) -> None:
    # given: three slots, and Magic Hour refusing creates with 429 (its plan is full)
    flow = make_flow(3)
    flow.emulator.configure(create_error_status=429)

    # when: an upload arrives
    job = flow.upload("a.png")
    answers = flow.run_submit()

    # then: not a failed receive: the message is acknowledged, the job waits, its slot is free again, and the
    # effective limit has dropped (none of ours were in flight: halved)
    assert answers == [NO_FAILURES]
    assert flow.status(job) == ["waiting"]
    assert flow.job(job)["waiting_reason"] == "throttled_429"
    assert flow.slots() == {}
    assert flow.limit() == 1
    assert flow.ingest.dead_letters() == 0

    # when: Magic Hour has room again and the periodic tick runs
    flow.emulator.configure(create_error_status=None)
    flow.tick()
    flow.run_submit()

    # then: the job starts
    assert flow.job(job)["status"] in ("queued", "rendering")
    assert flow.slots() == {"slot#0": job}


def test_two_creates_throttled_at_once_both_wait_and_nothing_is_ambiguous(
    make_flow: Callable[..., Flow], aws: Aws
) -> None:
    # given: two slots, Magic Hour refusing every create with 429, and two uploads whose submits run at once; the
    # two lowerings of the limit meet (both read it, then both write it: one compare-and-set loses and re-reads
    # what the winner wrote, admission_limit.py)
    meet = LimitWritesMeet(2)
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb.UpdateItem", meet)
    try:
        flow = make_flow(2)
        flow.emulator.configure(create_error_status=429)
        uploads = {name: _upload_event(flow, name) for name in ("a.png", "b.png")}
        answers: list[dict[str, Any]] = []

        def submit(event: dict[str, Any]) -> None:
            answers.append(flow.fns["submit"].lambda_handler(event, FakeContext()))

        # when: each upload's submit runs (two invocations, concurrently)
        threads = [threading.Thread(target=submit, args=(sqs_event([body]),)) for _, body in uploads.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-parameter-build.dynamodb.UpdateItem", meet)

    # then: the race happened (both wrote the limit), and each upload ended its attempt as the 429 says: waiting
    # for a slot, its message acknowledged, nothing created, nothing ambiguous for an operator to retry
    assert meet.met == 2
    assert answers == [NO_FAILURES, NO_FAILURES]
    jobs = [flow.job(job_id) for job_id, _ in uploads.values()]
    assert [(j["status"], j.get("waiting_reason"), j.get("ambiguous")) for j in jobs] == [
        ("waiting", "throttled_429", None)
    ] * 2
    assert flow.creates() == 0
    assert flow.slots() == {}
    # one lowering stands: each saw the other's project in flight, so the limit is what Magic Hour accepted
    assert flow.limit() == 1
    assert flow.ingest.dead_letters() == 0


def _upload_event(flow: Flow, name: str) -> tuple[str, dict[str, Any]]:
    """An upload put in the bucket, and its EventBridge event (no queue: the test invokes the submits itself)."""
    key = INPUT_PREFIX + name
    body = image_bytes("PNG", size=(40, 30))
    etag = flow.aws.put(key, body, "image/png")["ETag"].strip('"')
    return job_id_for(flow.aws.bucket, key, etag), eventbridge_object_created(flow.aws.bucket, key, etag, len(body))


def test_an_unknown_outcome_holds_its_slot_for_the_bound_then_the_next_job_starts(
    make_flow: Callable[..., Flow],
) -> None:
    # given: one slot, a 1-second unknown-outcome bound, and Magic Hour answering a create with a 500 (the project
    # may or may not exist: no second create may be made for that upload)
    flow = make_flow(1, UNKNOWN_OUTCOME_HOLD_SECONDS="1")
    flow.emulator.configure(create_error_status=500)
    first = flow.upload("a.png")
    flow.run_submit()
    flow.emulator.configure(create_error_status=None)

    # when: a second upload arrives while the first's outcome is unknown
    second = flow.upload("b.png")
    flow.run_submit()

    # then: the slot stays with the unknown outcome and the second upload waits
    assert flow.job(first)["error_code"] == "create_outcome_unknown"
    assert flow.status(second) == ["waiting"]
    assert flow.slots() == {"slot#0": first}

    # when: the bound passes and the dispatch the first submit scheduled for then arrives (no periodic tick)
    wait_until(lambda: flow.ingest.counts()["visible"], "the dispatch scheduled for the end of the bound arrives")
    flow.run_submit()

    # then: the slot went to the waiting upload, and the ambiguous one was never created again
    assert flow.status(second)[0] in ("queued", "rendering", "complete")
    assert flow.slots() == {"slot#0": second}
    assert [c.name for c in flow.emulator.engine.state.creates] == [f"cutout:{second}"]


class WorkerKilled(BaseException):
    """Lambda killing the sandbox: not an Exception, so no cleanup of the submit path runs."""


def upload_and_kill_its_worker(flow: Flow, name: str) -> tuple[str, Any]:
    """An upload whose submit worker dies between the Magic Hour create and its record: the job and the create."""

    def die(job_id: str, project_id: str) -> None:
        raise WorkerKilled(project_id)

    flow.fns["submit"].configure(after_create=die)
    job = flow.upload(name)
    with pytest.raises(WorkerKilled):
        flow.run_submit()
    (create,) = flow.emulator.engine.state.creates
    assert flow.status(job) == ["submitting"]
    return job, create


def test_a_finished_project_frees_its_slot_while_its_claim_still_awaits_a_record(
    make_flow: Callable[..., Flow],
) -> None:
    # given: one slot, and a submit worker that dies between the create and its record
    flow = make_flow(1)
    job, create = upload_and_kill_its_worker(flow, "a.png")
    assert flow.slots() == {"slot#0": job}

    # when: the project finishes and its signed webhook is delivered, the first time
    project = flow.wait_project(create.id)
    body = json.dumps({"type": "image.completed", "payload": project}, separators=(",", ":")).encode()
    assert flow.fns["webhook"].lambda_handler(webhook_event(body), FakeContext())["statusCode"] == 202
    answer = flow.run(flow.aws.completion_queue_url, "finalize")

    # then: the completion waits for the submit's record (a later receive adopts the project), but Magic Hour's
    # plan slot is free now, and so is ours
    assert len(answer["batchItemFailures"]) == 1
    assert flow.status(job) == ["submitting"]
    assert flow.slots() == {}


def test_a_dead_workers_claim_becomes_an_unknown_outcome_when_its_slot_is_freed_and_its_project_still_adopts_it(
    make_flow: Callable[..., Flow],
) -> None:
    # given: one slot, short lease and bound, and a submit worker that dies between the create and its record
    # (a job dispatched from the waiting line has no message of its own that would come back and say so)
    flow = make_flow(1, SUBMIT_LEASE_SECONDS="1", UNKNOWN_OUTCOME_HOLD_SECONDS="1")
    job, create = upload_and_kill_its_worker(flow, "a.png")

    # when: the lease and the bound pass and the periodic tick reconciles the slots
    wait_until(lambda: flow.tick()["repaired"] == 1, "the tick frees the dead worker's slot")

    # then: the job says what is known (an ambiguous create, never re-created), not "submitting" until the sweeper
    dead = flow.job(job)
    assert (dead["status"], dead["error_code"], dead.get("ambiguous")) == ("error", "create_outcome_unknown", True)
    assert flow.slots() == {}

    # when: its project reports in after all
    project = flow.wait_project(create.id)
    body = json.dumps({"type": "image.completed", "payload": project}, separators=(",", ":")).encode()
    assert flow.fns["webhook"].lambda_handler(webhook_event(body), FakeContext())["statusCode"] == 202
    assert flow.run(flow.aws.completion_queue_url, "finalize") == NO_FAILURES

    # then: it is adopted and completed, with the one create
    assert flow.status(job) == ["complete"]
    assert flow.creates() == 1


# ----- every ending path releases exactly once -------------------------------------------------------
def test_a_create_refused_by_magic_hour_frees_its_slot(make_flow: Callable[..., Flow]) -> None:
    # given: one slot, and Magic Hour refusing the input (422)
    flow = make_flow(1)
    flow.emulator.configure(create_error_status=422)
    first = flow.upload("a.png")
    flow.run_submit()

    # then: rejected, slot free at once
    assert flow.status(first) == ["rejected"]
    assert flow.slots() == {}


def test_a_render_error_frees_the_slot_once(make_flow: Callable[..., Flow]) -> None:
    # given: one slot; Magic Hour fails the render; a second upload waits behind it
    flow = make_flow(1)
    flow.emulator.configure(render_error_rate=1.0)
    job = flow.upload("a.png")
    flow.run_submit()
    project = flow.wait_project(flow.job(job)["project_id"])
    behind = flow.upload("b.png")
    flow.run_submit()
    assert flow.status(behind) == ["waiting"]
    assert flow.ingest.counts()["visible"] == 0

    # when: the errored webhook arrives, twice (Magic Hour may deliver twice), and the finalizer runs each time
    for _ in range(2):
        body = json.dumps({"type": "image.errored", "payload": project}, separators=(",", ":")).encode()
        flow.fns["webhook"].lambda_handler(webhook_event(body), FakeContext())
        flow.run(flow.aws.completion_queue_url, "finalize")

    # then: error, slot freed, and exactly one dispatch message was sent for it
    assert flow.status(job) == ["error"]
    assert flow.slots() == {}
    assert flow.ingest.counts()["visible"] == 1


def test_a_finish_with_nobody_waiting_wakes_nobody_and_reads_no_limit(make_flow: Callable[..., Flow]) -> None:
    # given: one slot, one upload, nobody waiting behind it, the limit at its maximum
    flow = make_flow(1)
    job = flow.upload("a.png")
    flow.run_submit()
    project = flow.wait_project(flow.job(job)["project_id"])

    # when: its completion is finalized
    body = json.dumps({"type": "image.completed", "payload": project}, separators=(",", ":")).encode()
    flow.fns["webhook"].lambda_handler(webhook_event(body), FakeContext())
    with count_calls() as calls:
        flow.run(flow.aws.completion_queue_url, "finalize")

    # then: complete, the slot freed, no dispatch message (nobody to start), and three writes: the lease (which
    # answers the job: no read), the slot's delete (which answers whether anyone waits and whether the limit can
    # rise: no read of the limit) and the completion (which answers the record the event carries: no read back)
    assert flow.status(job) == ["complete"]
    assert flow.slots() == {}
    assert flow.ingest.counts()["visible"] == 0
    dynamodb = {op: n for op, n in calls.items() if op.startswith("dynamodb.")}
    assert dynamodb == {"dynamodb.UpdateItem": 2, "dynamodb.DeleteItem": 1}, calls
    assert calls["sqs.SendMessage"] == 0, calls


def test_a_timed_out_poll_frees_the_slot(make_flow: Callable[..., Flow]) -> None:
    # given: one slot; a project that never finishes, and a poll budget of one check
    flow = make_flow(1, POLL_MAX_ATTEMPTS="1")
    flow.emulator.configure(never_complete_rate=1.0)
    job = flow.upload("a.png")
    flow.run_submit()
    flow.wait_project(flow.job(job)["project_id"], ("rendering",))

    behind = flow.upload("b.png")
    flow.run_submit()
    assert flow.status(behind) == ["waiting"]

    # when: the check finds it still rendering, past its bound
    flow.run(flow.aws.poll_queue_url, "poll")

    # then: timed_out, slot freed, the next waiting job woken
    assert flow.status(job) == ["timed_out"]
    assert flow.slots() == {}
    assert flow.ingest.counts()["visible"] == 1


# ----- a paid result is never thrown away --------------------------------------------------------------
def test_a_timed_out_job_whose_result_arrives_later_ends_complete_with_its_cutout(
    make_flow: Callable[..., Flow],
) -> None:
    # given: a job given up by its poll (one check allowed) while Magic Hour was still rendering it
    flow = make_flow(1, POLL_MAX_ATTEMPTS="1")
    # 3 s of render: the one check must find it still rendering on a loaded CI machine (0.5 s did not always).
    flow.emulator.configure(render_seconds=3)
    job = flow.upload("late/chair.png")
    flow.run_submit()
    flow.wait_project(flow.job(job)["project_id"], ("rendering",))
    flow.run(flow.aws.poll_queue_url, "poll")
    assert flow.status(job) == ["timed_out"]
    timed_out_at = flow.job(job)["timed_out_at"]

    # when: the project completes and its webhook arrives
    flow.finish(job)

    # then: complete, with the cutout in S3 and a note of the late arrival; the events say so
    done = flow.job(job)
    assert done["status"] == "complete"
    assert done["late"] is True and done["late_after_timeout_at"] == timed_out_at
    assert "error_code" not in done
    from PIL import Image

    obj = flow.aws.client("s3").get_object(Bucket=flow.aws.bucket, Key=OUTPUT_PREFIX + "late/chair.png")
    assert Image.open(io.BytesIO(obj["Body"].read())).size == (40, 30)
    events = {e["detail-type"]: e["detail"] for e in flow.published()}
    assert events["Cutout Failed"]["status"] == "timed_out"
    assert events["Cutout Completed"]["late"] is True
    assert events["Cutout Completed"]["late_after_timeout_at"] == timed_out_at
    assert flow.creates() == 1


def test_a_job_still_queued_at_magic_hour_is_not_timed_out_by_the_rendering_bound(
    make_flow: Callable[..., Flow],
) -> None:
    # given: one check allowed for a render, and a project that waits in Magic Hour's queue
    flow = make_flow(1, POLL_MAX_ATTEMPTS="1")
    flow.emulator.configure(queue_seconds=5)
    job = flow.upload("a.png")
    flow.run_submit()

    # when: the check finds it queued
    flow.run(flow.aws.poll_queue_url, "poll")

    # then: checked again later, not timed out (time in Magic Hour's queue has its own, larger bound)
    assert flow.status(job) == ["queued"]
    attrs = flow.aws.client("sqs").get_queue_attributes(
        QueueUrl=flow.aws.poll_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"


def test_a_job_dispatched_after_a_long_wait_is_not_swept_as_stuck(make_flow: Callable[..., Flow]) -> None:
    # given: an upload that waited three hours for a slot, then was dispatched just now
    flow = make_flow(1, POLL_MAX_WAIT_SECONDS="60")
    old = iso(utc_now() - timedelta(hours=3))
    record = {
        "job_id": "f" * 32,
        "status": "waiting",
        "source_bucket": flow.aws.bucket,
        "source_key": INPUT_PREFIX + "old.png",
        "source_etag": "x",
        "created_at": old,
        "updated_at": old,
    }
    flow.aws.put(INPUT_PREFIX + "old.png", image_bytes("PNG", size=(40, 30)), "image/png")
    serializer = TypeSerializer()
    flow.aws.client("dynamodb").put_item(
        TableName=flow.aws.table, Item={k: serializer.serialize(v) for k, v in record.items()}
    )
    flow.tick()
    flow.run_submit()
    assert flow.job("f" * 32)["status"] in ("queued", "rendering")

    # when: the sweeper runs (the job's created_at is far past the limit, its dispatch is not)
    outcome = flow.fns["sweeper"].lambda_handler({}, FakeContext())

    # then: nothing swept
    assert outcome == {}
    assert flow.job("f" * 32)["status"] in ("queued", "rendering", "complete")


def test_the_tick_dispatches_jobs_that_wait_beside_a_free_slot(make_flow: Callable[..., Flow]) -> None:
    # given: a job waiting while its slot is free (its wake-up was lost: e.g. a crash after the release)
    flow = make_flow(1)
    first = flow.upload("a.png")
    flow.run_submit()
    waiting = flow.upload("b.png", (10, 200, 10))
    flow.run_submit()
    flow.aws.client("dynamodb").delete_item(TableName=flow.aws.table, Key={"job_id": {"S": "slot#0"}})
    flow.aws.client("sqs").purge_queue(QueueUrl=flow.ingest.url)

    # when: the one-minute admission tick runs
    result = flow.tick()
    flow.run_submit()

    # then: it saw the waiting job beside the free slot and woke the dispatcher, which started it
    assert result["waiting"] == 1
    assert flow.job(waiting)["status"] in ("queued", "rendering")
    assert first != waiting


@pytest.mark.parametrize("reported_by", ["finalize", "poll"])
def test_a_job_that_finishes_well_raises_a_lowered_limit_by_one(
    make_flow: Callable[..., Flow], reported_by: str
) -> None:
    # given: three slots, an effective limit lowered to 1 by an earlier 429 whose backoff has passed, and a job at
    # Magic Hour
    flow = make_flow(3)
    flow.aws.client("dynamodb").put_item(
        TableName=flow.aws.table,
        Item={
            "job_id": {"S": LIMIT_KEY},
            "effective": {"N": "1"},
            "updated_at": {"S": iso(utc_now() - timedelta(minutes=10))},
            "backoff_until": {"S": iso(utc_now() - timedelta(minutes=5))},
        },
    )
    job = flow.upload("a.png")
    flow.run_submit()

    # when: its finish is reported (Magic Hour's webhook then the finalize, or the poll that finds it complete)
    if reported_by == "finalize":
        flow.finish(job)
    else:
        flow.wait_project(flow.job(job)["project_id"])
        assert flow.run(flow.aws.poll_queue_url, "poll") == NO_FAILURES

    # then: its slot is free and the limit climbs back one step towards the plan's 3
    assert flow.slots() == {}
    assert flow.limit() == 2


def test_the_tick_frees_a_slot_whose_holder_never_recorded_a_job(make_flow: Callable[..., Flow]) -> None:
    # given: the one slot held for minutes by a job that has no record (a worker died between taking the slot and
    # anything else, say), and no upload arriving that would look at it
    flow = make_flow(1)
    flow.aws.client("dynamodb").put_item(
        TableName=flow.aws.table,
        Item={
            "job_id": {"S": f"{SLOT_PREFIX}0"},
            "holder": {"S": "0" * 32},
            "acquired_at": {"S": iso(utc_now() - timedelta(minutes=5))},
        },
    )

    # when: the periodic tick reconciles the slots
    result = flow.tick()

    # then: the leaked slot is free for the next upload
    assert result["repaired"] == 1
    assert flow.slots() == {}


# ----- one image's calls: each for a guarantee ------------------------------------------------------------
def test_the_slot_and_the_claim_are_one_write_and_a_duplicate_upload_takes_no_slot(
    make_flow: Callable[..., Flow],
) -> None:
    # given: two slots and an upload
    flow = make_flow(2)
    key = INPUT_PREFIX + "a.png"
    body = image_bytes("PNG", size=(40, 30), colour=(10, 20, 30))
    etag = flow.aws.put(key, body, "image/png")["ETag"].strip('"')
    job = job_id_for(flow.aws.bucket, key, etag)
    event = eventbridge_object_created(flow.aws.bucket, key, etag, len(body))
    flow.ingest.send(event)

    # when: the submit takes it
    with count_calls() as calls:
        flow.run_submit()

    # then: the slots read once, the slot and the claim written in one transaction, the create recorded: no put
    # of the slot on its own, and no read of the job
    dynamodb = {op: n for op, n in calls.items() if op.startswith("dynamodb.")}
    assert dynamodb == {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 1, "dynamodb.UpdateItem": 1}, calls
    assert flow.status(job) == ["queued"]
    slots = flow.slots()
    assert list(slots.values()) == [job]
    assert flow.job(job)["slot"] == next(iter(slots))

    # when: the same upload is delivered again while the first is in flight
    flow.ingest.send(event)
    flow.run_submit()

    # then: the duplicate's transaction is refused as a whole: no second slot, no second create
    assert flow.slots() == slots
    assert flow.creates() == 1


def test_the_first_status_check_waits_for_the_webhook_once_webhooks_arrive(
    make_flow: Callable[..., Flow], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the delays of the status checks the submit schedules
    from cutout.aws.queue_sends import Dispatcher

    flow = make_flow(2, POLL_FIRST_DELAY_SECONDS="4")
    checks: list[int] = []
    send = Dispatcher._send

    def recorded(queue_url: str, body: str, delay_seconds: int = 0) -> None:
        if queue_url == flow.aws.poll_queue_url:
            checks.append(delay_seconds)
        send(queue_url, body, delay_seconds)

    monkeypatch.setattr(Dispatcher, "_send", staticmethod(recorded))

    # when: an upload is submitted before any webhook has arrived, then its signed webhook arrives, then another
    first = flow.upload("a.png")
    flow.run_submit()
    project = flow.wait_project(flow.job(first)["project_id"], ("rendering", "complete"))
    started = json.dumps({"type": "image.started", "payload": {**project, "status": "rendering"}}).encode()
    assert flow.fns["webhook"].lambda_handler(webhook_event(started), FakeContext())["statusCode"] == 202
    flow.upload("b.png", colour=(1, 2, 3))
    flow.run_submit()

    # then: the first job's check comes at the polling-only time, the second's one first delay later, when its
    # webhook has usually completed it
    assert checks == [4, 8]


def test_a_slot_an_upload_took_while_jobs_waited_still_wakes_the_dispatcher_when_it_ends(
    make_flow: Callable[..., Flow],
) -> None:
    # given: one slot; a job holding it and one waiting behind it
    flow = make_flow(1)
    first = flow.upload("a.png")
    flow.run_submit()
    behind = flow.upload("b.png", colour=(1, 2, 3))
    flow.run_submit()
    assert flow.status(behind) == ["waiting"]

    # when: the first finishes (its release sends a wake-up), and an upload that arrives before the wake-up is
    # handled takes the free slot (it cannot know that a job waits)
    flow.finish(first)
    sqs = flow.aws.client("sqs")
    (wake,) = sqs.receive_message(QueueUrl=flow.ingest.url, VisibilityTimeout=60)["Messages"]
    thief = flow.upload("c.png", colour=(4, 5, 6))
    flow.run_submit()
    assert flow.status(thief) == ["queued"]
    sqs.change_message_visibility(QueueUrl=flow.ingest.url, ReceiptHandle=wake["ReceiptHandle"], VisibilityTimeout=0)
    flow.run_submit()  # the wake-up finds no free slot
    assert flow.status(behind) == ["waiting"]

    # then: when the upload that took the slot ends, its release wakes the dispatcher, which starts the waiting job
    flow.finish(thief)
    assert flow.ingest.counts()["visible"] == 1
    flow.run_submit()
    assert flow.status(behind) == ["queued"]
