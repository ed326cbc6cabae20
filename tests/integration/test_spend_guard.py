"""The daily credit budget (issue item 4): when it is spent, new uploads wait in the queue — not rejected, not
lost, not dead-lettered — until the next UTC day or a raised budget; a metric and an alarm fire.

Handlers over moto server + the Magic Hour emulator over HTTP; the ingest queue is a real moto queue with the
template's redrive policy (maxReceiveCount 5), consumed the way Lambda's event-source mapping consumes it.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from cutout.domain.models import utc_now
from cutout.magic_hour.client import CREDITS_PER_IMAGE
from cutout.runtime.observability import metrics

from tests.conftest import INPUT_PREFIX, Aws
from tests.support.events import eventbridge_object_created, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.observed import QueuePair, emf_dimensions, emitted_metrics, find_log
from tests.support.template import load_template, resource


@pytest.fixture
def ingest(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> QueuePair:
    redrive = resource("IngestQueue")["Properties"]["RedrivePolicy"]
    pair = QueuePair.create(aws.client("sqs"), "cutout-ingest", max_receive_count=int(redrive["maxReceiveCount"]))
    monkeypatch.setenv("INGEST_QUEUE_URL", pair.url)  # the template's `!Ref IngestQueue`: where parked uploads wait
    return pair


@pytest.fixture(autouse=True)
def _fresh_metrics() -> None:
    metrics.clear_metrics()  # the Metrics buffer is process-wide; start every test empty


def _budget(monkeypatch: pytest.MonkeyPatch, credits: int) -> Any:
    monkeypatch.setenv("DAILY_CREDIT_BUDGET", str(credits))
    return cold_start("submit")


def _upload_event(aws: Aws, name: str, colour: tuple[int, int, int] = (200, 30, 30)) -> dict[str, Any]:
    key = INPUT_PREFIX + name
    body = image_bytes("PNG", colour=colour)
    resp = aws.put(key, body, "image/png")
    return eventbridge_object_created(aws.bucket, key, resp["ETag"].strip('"'), len(body))


def _handler(app: Any) -> Any:
    return lambda event: app.lambda_handler(event, FakeContext())


def _spent(aws: Aws, day: str | None = None) -> int:
    day = day or utc_now().strftime("%Y-%m-%d")
    item = aws.client("dynamodb").get_item(TableName=aws.table, Key={"job_id": {"S": f"budget#{day}"}}).get("Item")
    return int(item["credits"]["N"]) if item else 0


def _keys(aws: Aws) -> set[str]:
    return {j["source_key"] for j in aws.jobs()}


def test_third_upload_waits_in_the_queue_when_two_images_spend_the_budget(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch, capsys, no_secrets_in_logs
) -> None:
    # given: a budget of 10 credits = two images, and three uploads
    app = _budget(monkeypatch, 2 * CREDITS_PER_IMAGE)
    for i, name in enumerate(("one.png", "two.png", "three.png")):
        ingest.send(_upload_event(aws, name, colour=(i * 60, 30, 30)))

    # when: the event-source mapping delivers them
    result = ingest.deliver(_handler(app))

    # then: two creates, the third has no record and no create, and nothing failed or was dropped
    assert result == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 2
    assert len(aws.jobs()) == 2 and all(j["status"] == "queued" for j in aws.jobs())
    assert _spent(aws) == 2 * CREDITS_PER_IMAGE
    # the third waits in the ingest queue (delayed, a fresh receive count), not in the DLQ
    assert ingest.counts() == {"visible": 0, "in_flight": 0, "delayed": 1}
    assert ingest.dead_letters() == 0
    # and the metric the alarm watches was emitted, with the log line saying why
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["BudgetExhausted"] == 1
    assert emitted["BudgetParked"] == 1
    assert emitted["Submitted"] == 2
    assert find_log(no_secrets_in_logs.lines, message="daily credit budget reached; upload waits in the queue")


def test_waiting_upload_outlives_max_receive_count_and_goes_through_after_the_budget_is_raised(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch
) -> None:
    # given: one image's worth of budget, already spent, and a second upload waiting
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    app.configure(park_delay_seconds=0)  # keep the test quick; the deployed delay is SQS's maximum (900 s)
    ingest.send(_upload_event(aws, "first.png"))
    ingest.send(_upload_event(aws, "waiting.png", colour=(1, 2, 3)))
    ingest.deliver(_handler(app))
    assert len(emulator.engine.state.creates) == 1

    # when: many more rounds than the queue's maxReceiveCount pass with the budget still spent
    for _ in range(8):
        assert ingest.deliver(_handler(app)) == {"batchItemFailures": []}

    # then: still waiting in the queue — not rejected, not dead-lettered, nothing bought
    assert ingest.counts()["visible"] == 1 and ingest.dead_letters() == 0
    assert _keys(aws) == {INPUT_PREFIX + "first.png"}
    assert len(emulator.engine.state.creates) == 1

    # when: the operator raises the budget (a stack update = new environment, new cold start)
    raised = _budget(monkeypatch, 2 * CREDITS_PER_IMAGE)
    assert ingest.deliver(_handler(raised)) == {"batchItemFailures": []}

    # then: the waiting upload is created, once
    assert _keys(aws) == {INPUT_PREFIX + "first.png", INPUT_PREFIX + "waiting.png"}
    assert len(emulator.engine.state.creates) == 2
    assert ingest.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_waiting_upload_goes_through_on_the_next_utc_day(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch
) -> None:
    # given: today's budget spent and an upload waiting
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    app.configure(park_delay_seconds=0)
    ingest.send(_upload_event(aws, "today.png"))
    ingest.send(_upload_event(aws, "tomorrow.png", colour=(9, 9, 9)))
    ingest.deliver(_handler(app))
    today = utc_now()

    # when: the clock passes midnight UTC
    app.configure(park_delay_seconds=0, clock=lambda: today + timedelta(days=1))
    assert ingest.deliver(_handler(app)) == {"batchItemFailures": []}

    # then: a new day's counter, and the upload that waited is created
    assert len(emulator.engine.state.creates) == 2
    assert _spent(aws, today.strftime("%Y-%m-%d")) == CREDITS_PER_IMAGE
    assert _spent(aws, (today + timedelta(days=1)).strftime("%Y-%m-%d")) == CREDITS_PER_IMAGE
    assert ingest.counts()["visible"] == 0 and ingest.dead_letters() == 0


@pytest.mark.parametrize(
    ("fault", "status"),
    [({"create_error_status": 422}, "rejected"), ({"create_error_status": 400}, "rejected")],
    ids=["magic_hour_422", "magic_hour_400"],
)
def test_credits_are_given_back_when_magic_hour_refused_the_create(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch, fault, status
) -> None:
    # given: a one-image budget and a create Magic Hour refuses (no project, no charge)
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    emulator.configure(**fault)
    ingest.send(_upload_event(aws, "refused.png"))
    ingest.deliver(_handler(app))
    assert [j["status"] for j in aws.jobs()] == [status]

    # then: the reservation was released, so the next upload still fits in the budget
    assert _spent(aws) == 0
    emulator.configure(create_error_status=None)
    ingest.send(_upload_event(aws, "accepted.png", colour=(0, 0, 255)))
    assert ingest.deliver(_handler(app)) == {"batchItemFailures": []}
    assert _spent(aws) == CREDITS_PER_IMAGE
    assert len(emulator.engine.state.creates) == 1


def test_credits_are_given_back_when_the_create_provably_did_not_happen(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch
) -> None:
    # given: Magic Hour answers 402 (no credits at Magic Hour): not created, the message must come back
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    emulator.configure(create_error_status=402, create_error_message="Payment required")
    ingest.send(_upload_event(aws, "unpaid.png"))

    # when
    result = ingest.deliver(_handler(app))

    # then: a genuine retry (listed as failed), no record, no reservation kept
    assert len(result["batchItemFailures"]) == 1
    assert aws.jobs() == [] and _spent(aws) == 0
    # and once Magic Hour accepts again, the same message is created within the same budget
    emulator.configure(create_error_status=None)
    assert ingest.deliver(_handler(app)) == {"batchItemFailures": []}
    assert _spent(aws) == CREDITS_PER_IMAGE and len(emulator.engine.state.creates) == 1


def test_an_ambiguous_create_keeps_its_reservation(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch
) -> None:
    # given: the create is made and charged, then the connection drops (outcome unknowable)
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    emulator.configure(rate_reset=1.0, reset_after_create=True)
    ingest.send(_upload_event(aws, "lost-answer.png"))

    # when
    ingest.deliver(_handler(app))

    # then: the credits may have been spent, so they stay counted and the next upload waits
    (job,) = aws.jobs()
    assert job["error_code"] == "create_outcome_unknown" and job["ambiguous"] is True
    assert _spent(aws) == CREDITS_PER_IMAGE
    emulator.configure(rate_reset=0.0)
    ingest.send(_upload_event(aws, "next.png", colour=(5, 5, 5)))
    ingest.deliver(_handler(app))
    assert len(emulator.engine.state.creates) == 1
    assert ingest.counts()["delayed"] == 1


def test_concurrent_uploads_cannot_overspend(aws: Aws, emulator, function_env, monkeypatch) -> None:
    # given: room for one image and four uploads arriving at the same moment on four execution environments,
    # whose ingest queue does not exist (so parking fails and each record is reported as failed, i.e. kept)
    monkeypatch.setenv("INGEST_QUEUE_URL", aws.poll_queue_url.rsplit("/", 1)[0] + "/no-such-queue")
    apps = [_budget(monkeypatch, CREDITS_PER_IMAGE) for _ in range(4)]
    events = [_upload_event(aws, f"rush-{i}.png", colour=(i * 50, 0, 0)) for i in range(4)]
    barrier = threading.Barrier(4)
    results: list[dict[str, Any]] = []

    def deliver(app: Any, event: dict[str, Any]) -> None:
        barrier.wait()
        results.append(app.lambda_handler(sqs_event([event], queue="no-such-queue"), FakeContext()))

    threads = [threading.Thread(target=deliver, args=pair) for pair in zip(apps, events, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: exactly one create; the other three are handed back to SQS, none recorded
    assert len(emulator.engine.state.creates) == 1
    assert len(aws.jobs()) == 1
    assert sum(len(r["batchItemFailures"]) for r in results) == 3
    assert _spent(aws) == CREDITS_PER_IMAGE


def test_budget_zero_means_unlimited(aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch) -> None:
    app = _budget(monkeypatch, 0)
    for i in range(3):
        ingest.send(_upload_event(aws, f"free-{i}.png", colour=(0, i * 70, 0)))
    ingest.deliver(_handler(app))
    assert len(emulator.engine.state.creates) == 3
    assert _spent(aws) == 0  # no counter item at all


def test_metric_dimensions_match_the_alarm_and_the_parameter_reaches_the_function(
    aws: Aws, emulator, function_env, ingest: QueuePair, monkeypatch, capsys
) -> None:
    # given: a spent budget
    app = _budget(monkeypatch, CREDITS_PER_IMAGE)
    ingest.send(_upload_event(aws, "a.png"))
    ingest.send(_upload_event(aws, "b.png", colour=(0, 0, 0)))

    # when
    ingest.deliver(_handler(app))

    # then: the EMF blob names the namespace and dimensions the template's alarm watches
    published = emf_dimensions(capsys.readouterr().out, "BudgetExhausted")
    alarm = resource("BudgetExhaustedAlarm")["Properties"]
    assert alarm["MetricName"] == "BudgetExhausted"
    assert {"Namespace": alarm["Namespace"]} in published
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} in published
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and int(alarm["Threshold"]) == 0
    # and the budget is a stack parameter handed to the submit function
    assert "DailyCreditBudget" in load_template()["Parameters"]
    env = resource("SubmitFunction")["Properties"]["Environment"]["Variables"]
    assert env["DAILY_CREDIT_BUDGET"] == {"Ref": "DailyCreditBudget"}
