"""The local stack's Lambda-like machinery, on a toy template with throwaway handlers.

What Cutout's retry design relies on: Lambda's SQS event shape, partial batch responses, whole-batch retry on
an exception, redrive to the DLQ after maxReceiveCount, a Function URL's payload format 2.0, schedules, and
environment values resolved from the template.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cutout_dev.local_stack import LocalStack


def _wait(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def _worker_calls(stack: LocalStack) -> list[dict[str, Any]]:
    out = Path(stack.config.parameters["OutDir"])
    calls = [json.loads(p.read_text()) for p in out.glob("worker-*.json")]
    return sorted(calls, key=lambda c: c["event"]["Records"][0]["attributes"]["SentTimestamp"])


def _assert_closed(urls: list[str]) -> None:
    """Nothing listens at any of `urls` any more."""
    for url in urls:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.URLError as exc:
            assert "refused" in str(exc.reason).lower()
        else:
            raise AssertionError(f"{url} still answers")


def _bodies(calls: list[dict[str, Any]]) -> list[str]:
    return [r["body"] for c in calls for r in c["event"]["Records"]]


def test_resources_and_environment_come_from_the_template(toy_stack: LocalStack) -> None:
    ep = toy_stack.endpoints
    assert set(ep.queues) == {"WorkQueue", "WorkDLQ"}
    assert ep.stack_outputs["WorkQueueUrl"] == ep.queues["WorkQueue"]
    assert ep.stack_outputs["HookUrl"] == ep.webhook
    assert toy_stack.dead_letter_queues() == {"WorkDLQ": "WorkQueue"}

    sqs = toy_stack.client("sqs")
    sqs.send_message(QueueUrl=ep.queues["WorkQueue"], MessageBody="hello")
    call = _wait(lambda: _worker_calls(toy_stack))[0]
    env = call["env"]
    assert env["LABEL"] == "toy-us-east-1"
    assert env["HOOK_URL"] == ep.webhook
    assert env["WORK_QUEUE_URL"] == ep.queues["WorkQueue"]
    assert env["SECRET_ID"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:toy/secret-")
    toy_stack.client("dynamodb").describe_table(TableName=env["TABLE"])  # the table exists under that name
    ctx = call["context"]
    assert ctx["function_name"] == "toy-WorkerFunction"
    assert ctx["arn"].endswith(":function:toy-WorkerFunction")
    assert 0 < ctx["remaining"] <= 5000
    assert ctx["memory"] == 128


def test_sqs_records_are_shaped_like_lambdas(toy_stack: LocalStack) -> None:
    url = toy_stack.endpoints.queues["WorkQueue"]
    toy_stack.client("sqs").send_message(
        QueueUrl=url,
        MessageBody="shaped",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    record = _wait(lambda: _worker_calls(toy_stack))[0]["event"]["Records"][0]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == toy_stack.resources.get_att("WorkQueue", "Arn")  # type: ignore[union-attr]
    assert record["md5OfBody"] == hashlib.md5(b"shaped").hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"].isdigit()
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"


def test_batching_window_gathers_a_batch(toy_stack: LocalStack) -> None:
    sqs = toy_stack.client("sqs")
    url = toy_stack.endpoints.queues["WorkQueue"]
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    calls = _wait(lambda: (c := _worker_calls(toy_stack)) and len(_bodies(c)) >= 4 and c)
    assert sorted(_bodies(calls)) == ["m0", "m1", "m2", "m3"]
    assert max(len(c["event"]["Records"]) for c in calls) > 1  # the 1 s window gathered more than one
    _wait(lambda: toy_stack.queue_depths()["WorkQueue"] == 0)


def test_partial_batch_failure_retries_only_the_failed_message_then_dead_letters_it(
    toy_stack: LocalStack,
) -> None:
    sqs = toy_stack.client("sqs")
    url = toy_stack.endpoints.queues["WorkQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="ok")
    sqs.send_message(QueueUrl=url, MessageBody="fail")
    # maxReceiveCount 2: "fail" is delivered twice, then moved to the DLQ on the third receive.
    _wait(lambda: toy_stack.queue_depths()["WorkDLQ"] == 1, timeout=15)
    bodies = _bodies(_worker_calls(toy_stack))
    assert bodies.count("ok") == 1
    assert bodies.count("fail") == 2
    assert toy_stack.queue_depths()["WorkQueue"] == 0
    # The poller knows how often each record had been received: "ok" once, "fail" on its first and second receive.
    (poller,) = toy_stack.pollers
    assert poller.stats.receive_counts == {1: 2, 2: 1}
    assert poller.stats.max_receive_count == 2


def test_an_exception_retries_the_whole_batch_and_redrive_brings_it_back(toy_stack: LocalStack) -> None:
    sqs = toy_stack.client("sqs")
    url = toy_stack.endpoints.queues["WorkQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="boom")
    _wait(lambda: toy_stack.queue_depths()["WorkDLQ"] == 1, timeout=15)
    assert _bodies(_worker_calls(toy_stack)).count("boom") == 2

    # Redriven, the message reaches the worker again (a hook records what it is given); the worker still raises
    # on it, so it is received as often as before and dead-lettered again: one message, not lost, not doubled.
    seen: list[str] = []
    lock = threading.Lock()

    def record_fault(event: Any) -> None:
        with lock:
            seen.extend(r["body"] for r in event["Records"])

    toy_stack.functions["WorkerFunction"].fault = record_fault
    assert toy_stack.redrive("WorkDLQ") == 1
    _wait(lambda: "boom" in seen)
    _wait(lambda: toy_stack.queue_depths()["WorkDLQ"] == 1 and toy_stack.queue_depths()["WorkQueue"] == 0)
    assert seen.count("boom") == 2


def test_maximum_concurrency_caps_parallel_invocations(toy_stack: LocalStack) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(event: Any) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.3)
        with lock:
            active -= 1

    toy_stack.functions["WorkerFunction"].fault = slow
    sqs = toy_stack.client("sqs")
    url = toy_stack.endpoints.queues["WorkQueue"]
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=f"c{i}")
    _wait(lambda: len(_bodies(_worker_calls(toy_stack))) >= 12, timeout=15)
    assert peak == 2  # ScalingConfig.MaximumConcurrency


def test_function_url_payload_format_2(toy_stack: LocalStack) -> None:
    url = toy_stack.endpoints.webhook + "hook/path?a=1&b=two"
    request = urllib.request.Request(
        url, data=b'{"x": 1}', method="POST", headers={"Content-Type": "application/json", "X-Custom": "yes"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        assert response.headers["x-seen"] == "yes"
        payload = json.loads(response.read())
    event = payload["event"]
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/hook/path"
    assert event["rawQueryString"] == "a=1&b=two"
    assert event["queryStringParameters"] == {"a": "1", "b": "two"}
    assert event["headers"]["x-custom"] == "yes"
    assert all(k == k.lower() for k in event["headers"])
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/hook/path"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["isBase64Encoded"] is False
    assert payload["body"] == '{"x": 1}'

    binary = urllib.request.Request(
        toy_stack.endpoints.webhook, data=b"\x00\x01", method="POST", headers={"Content-Type": "image/png"}
    )
    with urllib.request.urlopen(binary, timeout=10) as response:
        assert json.loads(response.read())["event"]["isBase64Encoded"] is True

    with urllib.request.urlopen(toy_stack.endpoints.webhook + "bare", timeout=10) as response:
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"

    try:
        urllib.request.urlopen(toy_stack.endpoints.webhook + "raise", timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 502
    else:
        raise AssertionError("a failing handler must answer 502")


def test_schedule_runs_the_function_periodically(toy_stack: LocalStack) -> None:
    out = Path(toy_stack.config.parameters["OutDir"])
    ticks = _wait(lambda: sorted(out.glob("tick-*.json")) or None, timeout=5)
    event = json.loads(ticks[0].read_text())
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"


def test_stop_leaves_no_threads_or_ports(toy_project: Path) -> None:
    from cutout_dev.local_stack import LocalStackConfig

    before = {t.ident for t in threading.enumerate()}
    config = LocalStackConfig(
        template=toy_project / "template.yaml",
        stack_name="toy",
        parameters={"OutDir": str(toy_project.parent / "out")},
        real_magic_hour=False,
    )
    with LocalStack(config) as stack:
        ports = [stack.endpoints.aws, stack.endpoints.webhook]
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not leftover, [t.name for t in leftover]
    _assert_closed(ports)


def test_moto_in_its_own_process_serves_the_stack_and_goes_away_with_it(toy_project: Path) -> None:
    from cutout_dev.local_stack import LocalStackConfig

    # Given a stack whose AWS is a child process (as the flood and the soak run it)
    config = LocalStackConfig(
        template=toy_project / "template.yaml",
        stack_name="toy",
        parameters={"OutDir": str(toy_project.parent / "out")},
        real_magic_hour=False,
        aws_in_own_process=True,
    )
    with LocalStack(config) as stack:
        processes = stack.moto.processes
        assert len(processes) == 2 and all(p.poll() is None for p in processes)
        # and DynamoDB is served apart from the services that deliver to each other
        assert stack.moto.dynamodb_endpoint_url != stack.endpoints.aws
        assert stack.resources is not None
        assert stack.client("dynamodb").list_tables()["TableNames"] == [stack.resources.ref("Table")]
        # When a message goes through its queue to the worker
        sqs = stack.client("sqs")
        url = stack.endpoints.queues["WorkQueue"]
        sqs.send_message(QueueUrl=url, MessageBody="across processes")
        # Then the worker gets it, through the child's SQS
        _wait(lambda: "across processes" in _bodies(_worker_calls(stack)))
        endpoints = [stack.endpoints.aws, stack.moto.dynamodb_endpoint_url]
    # and stopping the stack ends the children and frees their ports
    assert all(p.poll() is not None for p in processes)
    _assert_closed(endpoints)
