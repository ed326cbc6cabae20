"""A 401 from Magic Hour re-reads the API key from Secrets Manager (past its cache), boundedly: over moto server and
the emulator, through the submit handler as Lambda runs it."""

from __future__ import annotations

from typing import Any

from cutout.aws import aws_clients
from cutout.magic_hour.client import FORCED_REREAD_INTERVAL_SECONDS

from tests.conftest import API_KEY, INPUT_PREFIX, Aws
from tests.support.events import eventbridge_object_created, sqs_event
from tests.support.images import image_bytes
from tests.support.lambda_loader import FakeContext, cold_start

PLACEHOLDER = "placeholder-until-the-operator-sets-the-key"


def _body(aws: Aws, name: str) -> dict[str, Any]:
    key = INPUT_PREFIX + name
    body = image_bytes("PNG")
    etag = aws.put(key, body)["ETag"].strip('"')
    return eventbridge_object_created(aws.bucket, key, etag, len(body))


def _event(aws: Aws, name: str) -> dict[str, Any]:
    return sqs_event([_body(aws, name)])


def _count_secret_reads(reads: list[str]) -> None:
    def counted(**kwargs: Any) -> None:
        reads.append(str(kwargs["params"].get("SecretId")))

    aws_clients.secretsmanager().meta.events.register("before-call.secrets-manager.GetSecretValue", counted)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_401_rereads_the_key_so_the_next_record_succeeds_without_waiting(aws: Aws, emulator, function_env) -> None:
    # given: a warm submit function whose cached key is the placeholder (Magic Hour answers it 401)
    sm = aws.client("secretsmanager")
    sm.put_secret_value(SecretId=aws.api_key_secret, SecretString=PLACEHOLDER)
    app = cold_start("submit")
    first = _event(aws, "before-the-fix.png")
    assert len(app.lambda_handler(first, FakeContext())["batchItemFailures"]) == 1
    assert emulator.engine.state.creates == []

    # when: the operator puts the real key, and the next record arrives at once (well inside the 5-minute cache)
    sm.put_secret_value(SecretId=aws.api_key_secret, SecretString=API_KEY)
    response = app.lambda_handler(_event(aws, "after-the-fix.png"), FakeContext())

    # then: it is created with the new key; the failed record, when it comes back, too
    assert response == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 1
    assert app.lambda_handler(first, FakeContext()) == {"batchItemFailures": []}
    assert len(emulator.engine.state.creates) == 2
    assert {j["status"] for j in aws.jobs()} == {"queued"}


def test_a_bad_key_is_reread_at_most_once_per_interval(aws: Aws, emulator, function_env) -> None:
    # given: a bad key in Secrets Manager, a warm function, and its re-reads counted
    sm = aws.client("secretsmanager")
    sm.put_secret_value(SecretId=aws.api_key_secret, SecretString=PLACEHOLDER)
    app = cold_start("submit")
    clock = Monotonic()
    app.submitter.magic_hour._monotonic = clock
    reads: list[str] = []
    _count_secret_reads(reads)

    # when: five records fail with 401 one after another
    batch = sqs_event([_body(aws, f"bad-{i}.png") for i in range(5)])
    response = app.lambda_handler(batch, FakeContext())

    # then: all five come back, and Secrets Manager was read twice (the cold start's read and one forced re-read)
    assert len(response["batchItemFailures"]) == 5
    assert len(reads) == 2

    # when: the key is fixed and the interval has passed since the last forced read
    sm.put_secret_value(SecretId=aws.api_key_secret, SecretString=API_KEY)
    clock.now += FORCED_REREAD_INTERVAL_SECONDS
    again = app.lambda_handler(sqs_event([_body(aws, "good.png")]), FakeContext())

    # then: the next 401 forced one more read, which picked the fixed key up
    assert again == {"batchItemFailures": []}
    assert len(reads) == 3 and len(emulator.engine.state.creates) == 1
