"""Work within the time left: no Magic Hour call starts that the invocation could not finish; the rest of the batch
is re-sent to its queue (a fresh receive count) for another invocation; the sweep stops and the next run goes on;
BatchGetItem's unprocessed keys are asked again with backoff. Over moto server and the emulator (slowed), through
the handlers as Lambda runs them, with the local stack's Lambda context."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cutout.admission.control import admission_for
from cutout.aws import aws_clients
from cutout.domain.models import JobStatus
from cutout.magic_hour.client import WORST_CASE_CALL_SECONDS
from cutout.runtime.config import Settings
from cutout.runtime.time_budget import MARGIN_SECONDS

from cutout_dev.local_stack.lambda_runtime import LambdaContext
from tests.conftest import INPUT_PREFIX, Aws
from tests.support.events import eventbridge_object_created, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.queues import receive_as_event
from tests.support.roles import function_role

# What a record's Magic Hour call needs left (the worst case of one call + the margin), and a slowed emulator whose
# every answer takes long enough that, after one call, less than that is left of an invocation that began with it.
NEEDED = WORST_CASE_CALL_SECONDS + MARGIN_SECONDS
SLOW = 3.0


def _short_context() -> LambdaContext:
    """An invocation with just enough for one Magic Hour call and SLOW - 1 s to spare: the domain reads the time
    left once, at the start, and counts down on its own clock, so the first (slow) call always leaves too little
    for a second, and the spare second covers the setup before the first call however loaded the machine is."""
    return LambdaContext("cutout-test", memory_mb=256, timeout_seconds=int(NEEDED + SLOW - 1) + 1)


def _upload(aws: Aws, name: str) -> dict[str, Any]:
    key = INPUT_PREFIX + name
    body = image_bytes("PNG", colour=(len(name) * 9 % 255, 40, 80))
    etag = aws.put(key, body)["ETag"].strip('"')
    return eventbridge_object_created(aws.bucket, key, etag, len(body))


@pytest.fixture
def ingest_queue(aws: Aws, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    url: str = aws.client("sqs").create_queue(QueueName="cutout-ingest")["QueueUrl"]
    monkeypatch.setenv("INGEST_QUEUE_URL", url)
    return url


def _bodies(event: dict[str, Any]) -> list[str]:
    return [r["body"] for r in event["Records"]]


def test_submit_defers_what_it_has_no_time_for_to_its_queue(aws: Aws, emulator, ingest_queue: str) -> None:
    # given: a batch of three uploads, Magic Hour slow to answer, and an invocation with time for one create only
    assert _short_context().get_remaining_time_in_millis() / 1000 > NEEDED
    emulator.configure(latency_seconds=SLOW)
    event = sqs_event([_upload(aws, f"slow-{i}.png") for i in range(3)])
    app = cold_start("submit")

    # when
    response = app.lambda_handler(event, _short_context())

    # then: one create; the other two started nothing (no record, no create) and are back in the ingest queue as
    # new messages, so nothing is listed as failed (no receive spent towards the DLQ)
    assert response == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 1
    assert len(aws.jobs()) == 1
    requeued = receive_as_event(aws.client("sqs"), ingest_queue)
    assert sorted(_bodies(requeued)) == sorted(_bodies(event)[1:])
    assert {r["attributes"]["ApproximateReceiveCount"] for r in requeued["Records"]} == {"1"}

    # when: another invocation, with its whole timeout, receives them
    emulator.configure(latency_seconds=0.0)
    assert app.lambda_handler(requeued, FakeContext()) == {"batchItemFailures": []}

    # then: each upload was created exactly once
    assert len(emulator.engine.state.creates) == 3
    assert {j["status"] for j in aws.jobs()} == {"queued"}


def test_without_a_queue_to_resend_to_deferred_records_are_listed_as_failures(aws: Aws, emulator, function_env) -> None:
    # given: no ingest queue configured (a direct wiring), a slow Magic Hour and little time
    emulator.configure(latency_seconds=SLOW)
    event = sqs_event([_upload(aws, f"nowhere-{i}.png") for i in range(3)])

    # when
    response = cold_start("submit").lambda_handler(event, _short_context())

    # then: the two not started come back through the partial batch response
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {
        r["messageId"] for r in event["Records"][1:]
    }
    assert len(emulator.engine.state.creates) == 1


def test_poll_defers_checks_it_has_no_time_for_to_the_poll_queue(aws: Aws, emulator, function_env) -> None:
    # given: two submitted jobs whose first status checks are due, and a slow Magic Hour
    submit = cold_start("submit")
    assert submit.lambda_handler(sqs_event([_upload(aws, f"p-{i}.png") for i in range(2)]), FakeContext()) == {
        "batchItemFailures": []
    }
    checks = receive_as_event(aws.client("sqs"), aws.poll_queue_url)
    assert len(checks["Records"]) == 2
    emulator.configure(latency_seconds=SLOW)
    poll = cold_start("poll")

    # when
    response = poll.lambda_handler(checks, _short_context())

    # then: one check made; the other re-sent unchanged to the poll queue, visible at once
    assert response == {"batchItemFailures": []}
    assert emulator.request_counts().get("get", 0) == 1
    requeued = receive_as_event(aws.client("sqs"), aws.poll_queue_url)
    assert [json.loads(b) for b in _bodies(requeued)] == [json.loads(_bodies(checks)[1])]


def test_the_sweep_stops_its_late_checks_for_time_and_the_next_run_goes_on(aws: Aws, emulator, function_env) -> None:
    # given: two jobs timed out whose projects have finished at Magic Hour after all
    submit = cold_start("submit")
    submit.lambda_handler(sqs_event([_upload(aws, f"late-{i}.png") for i in range(2)]), FakeContext())
    emulator.wait_idle()
    with function_role("sweeper"):  # the sweep times out what got no result in time
        for job in aws.jobs():
            assert submit.submitter.store.fail(job["job_id"], JobStatus.TIMED_OUT, "timed_out", "no result in time")
    emulator.configure(latency_seconds=SLOW)
    sweeper = cold_start("sweeper")

    # when: a run with time for one Magic Hour call
    sweeper.lambda_handler({}, _short_context())

    # then: one late check made and its completion enqueued; the other job left for the next run
    first = receive_as_event(aws.client("sqs"), aws.completion_queue_url)
    assert emulator.request_counts().get("get", 0) == 1 and len(first["Records"]) == 1

    # when: the next run, with its whole timeout
    emulator.configure(latency_seconds=0.0)
    sweeper.lambda_handler({}, FakeContext())

    # then: the other job's completion is enqueued too
    second = receive_as_event(aws.client("sqs"), aws.completion_queue_url)
    enqueued = {json.loads(b)["job_id"] for b in _bodies(first) + _bodies(second)}
    assert enqueued == {j["job_id"] for j in aws.jobs()}


class UnprocessedFor:
    """Makes DynamoDB's answer to the next `times` BatchGetItem calls partial, as AWS does under throttling: half
    the keys answered, the rest named in UnprocessedKeys (moto always answers whole)."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls: list[float] = []

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append(time.monotonic())
        if self.times <= 0:
            return
        self.times -= 1
        for table, items in parsed.get("Responses", {}).items():
            kept, left = items[: len(items) // 2], items[len(items) // 2 :]
            parsed["Responses"][table] = kept
            keys = [{"job_id": i["job_id"]} for i in left]
            parsed.setdefault("UnprocessedKeys", {})[table] = {"Keys": keys, "ConsistentRead": True}


def _admission(aws: Aws, function_env: dict[str, str]) -> Any:
    settings = Settings.from_env({**function_env, "MAX_JOBS_IN_FLIGHT": "4"})
    admission = admission_for(settings)
    assert admission is not None
    for job in ("job-a", "job-b", "job-c"):
        assert admission.acquire(job) is not None
    return admission


@pytest.mark.function_role("submit")  # an acquire's read of the slots
def test_unprocessed_keys_are_asked_again_with_backoff(aws: Aws, function_env) -> None:
    # given: three of four slots held, and DynamoDB answering the first two reads only in part
    admission = _admission(aws, function_env)
    partial = UnprocessedFor(times=2)
    aws_clients.dynamodb().meta.events.register("after-call.dynamodb.BatchGetItem", partial)

    # when
    snapshot = admission.snapshot()

    # then: every slot is read right, in three calls (the backoff's length is the bench's, not a test's figure)
    assert sorted(s.holder for s in snapshot.held) == ["job-a", "job-b", "job-c"]
    assert len(partial.calls) == 3


@pytest.mark.function_role("submit")
def test_keys_left_unprocessed_for_good_fail_the_read_within_its_bound(aws: Aws, function_env) -> None:
    # given: DynamoDB never answers the whole read
    admission = _admission(aws, function_env)
    partial = UnprocessedFor(times=100)
    aws_clients.dynamodb().meta.events.register("after-call.dynamodb.BatchGetItem", partial)

    # when / then: the read gives up (the record comes back to its queue) after five calls
    with pytest.raises(RuntimeError, match="unprocessed"):
        admission.snapshot()
    assert len(partial.calls) == 5


def test_a_slow_refusal_is_not_retried_past_the_retry_window(aws: Aws, emulator, function_env) -> None:
    # given: Magic Hour answers every create 429 ("nothing created"), but only after 1.5 s
    emulator.configure(rate_429=1.0, latency_seconds=1.5)
    event = sqs_event([_upload(aws, "throttled.png")])
    app = cold_start("submit")

    # when
    response = app.lambda_handler(event, FakeContext())

    # then: retried once (the first refusal came inside the window), not three times (six seconds and more), and
    # the upload comes back to its queue with nothing recorded
    assert len(response["batchItemFailures"]) == 1
    assert emulator.request_counts()["create"] == 2
    assert aws.jobs() == []
