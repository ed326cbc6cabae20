"""``cutout doctor``'s deployed path: the calls that only AWS answers meaningfully (Lambda account settings and
reservations, SNS subscriptions pending confirmation, CloudWatch alarms in ALARM) through botocore's Stubber, which
checks every request and response against the service models. The local stack's run of the same checks is in
tests/e2e/test_ops_doctor.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cutout_dev.ops.doctor import Doctor
from cutout_dev.ops.target import FUNCTIONS, StackTarget

STACK = "cutout"
REGION = "eu-west-1"
TOPIC = f"arn:aws:sns:{REGION}:111122223333:cutout-AlarmTopic-ABC"


@pytest.fixture
def stubbed() -> Iterator[tuple[StackTarget, dict[str, Stubber]]]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = {name: session.client(name) for name in ("lambda", "sns", "cloudwatch")}  # type: ignore[call-overload]
    stubbers = {name: Stubber(client) for name, client in clients.items()}
    outputs = {f"{fn}FunctionName": f"{STACK}-{fn}Function-X1" for fn in FUNCTIONS}
    outputs |= {"AlarmTopicArn": TOPIC, "AlarmNamePrefix": f"{STACK}/"}
    target = StackTarget(STACK, session, None, False, outputs, {}, _clients=dict(clients))
    for stub in stubbers.values():
        stub.activate()
    yield target, stubbers
    for stub in stubbers.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def _account(stub: Stubber, quota: int, unreserved: int, reserved: dict[str, int]) -> None:
    stub.add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": unreserved}},
        {},
    )
    for fn in FUNCTIONS:
        answer: dict[str, Any] = {"ReservedConcurrentExecutions": reserved[fn]} if fn in reserved else {}
        stub.add_response("get_function_concurrency", answer, {"FunctionName": f"{STACK}-{fn}Function-X1"})


def test_a_webhook_reservation_on_a_new_account_quota_fails_with_the_parameter_and_the_quota_fixes(
    stubbed: tuple[StackTarget, dict[str, Stubber]],
) -> None:
    target, stubs = stubbed
    # Given a new account (quota 10: AWS keeps all 10 unreserved) and a webhook reserving 3
    _account(stubs["lambda"], quota=10, unreserved=7, reserved={"Webhook": 3})

    check = Doctor(target).concurrency()

    assert check.status == "fail"
    assert "quota 10" in check.detail
    assert "this stack reserves 3 (Webhook 3)" in check.detail
    assert "at most 0 can be reserved" in check.detail
    assert check.fix is not None
    first, second = check.fix.splitlines()
    assert first == ".tools/sam/bin/sam deploy --stack-name cutout --parameter-overrides WebhookReservedConcurrency=0"
    assert (
        f"aws --region {REGION} service-quotas request-service-quota-increase --service-code lambda "
        "--quota-code L-B99A9384 --desired-value 1000"
    ) in second


def test_reservations_of_other_functions_count_against_what_the_stack_may_reserve(
    stubbed: tuple[StackTarget, dict[str, Stubber]],
) -> None:
    target, stubs = stubbed
    # Given an account of 1000 where other functions reserve 897: 1000 - 897 - 100 kept = 3 left for the stack
    _account(stubs["lambda"], quota=1000, unreserved=100, reserved={"Webhook": 3})
    assert Doctor(target).concurrency().status == "ok"

    # When they reserve one more, the stack's 3 no longer fit (its next update is refused)
    _account(stubs["lambda"], quota=1000, unreserved=99, reserved={"Webhook": 3})
    check = Doctor(target).concurrency()
    assert check.status == "fail"
    assert "other functions 898" in check.detail
    assert "at most 2 can be reserved" in check.detail


def test_no_reservation_on_a_default_account_is_ok(stubbed: tuple[StackTarget, dict[str, Stubber]]) -> None:
    target, stubs = stubbed
    _account(stubs["lambda"], quota=1000, unreserved=1000, reserved={})

    check = Doctor(target).concurrency()

    assert check.status == "ok"
    assert check.fix is None
    assert "this stack reserves 0 (none)" in check.detail


@pytest.mark.parametrize(
    ("constraint", "bucket_region", "status"),
    [
        (None, "us-east-1", "fail"),  # GetBucketLocation answers no constraint for us-east-1
        ("EU", "eu-west-1", "ok"),  # ... and "EU" for buckets made in eu-west-1 long ago
        ("eu-west-1", "eu-west-1", "ok"),
        ("ap-southeast-2", "ap-southeast-2", "fail"),
    ],
)
def test_the_bucket_must_be_in_the_stacks_region(constraint: str | None, bucket_region: str, status: str) -> None:
    # given a stack in eu-west-1 watching a bucket whose location S3 answers with `constraint`
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    s3 = session.client("s3")
    target = StackTarget(STACK, session, None, False, {"BucketName": "photos"}, {}, _clients={"s3": s3})
    with Stubber(s3) as stub:
        stub.add_response(
            "get_bucket_location", {"LocationConstraint": constraint} if constraint else {}, {"Bucket": "photos"}
        )
        check = Doctor(target).bucket_region()
    # then a bucket elsewhere fails, saying both regions, with the deploy in the bucket's region as the fix
    assert check.status == status
    if status == "fail":
        assert f"s3://photos is in {bucket_region}, the stack in {REGION}" in check.detail
        assert check.fix is not None
        assert check.fix.endswith(f"sam deploy --stack-name {STACK} --region {bucket_region}")
    else:
        assert check.fix is None


def _subscriptions(stub: Stubber, *subscriptions: dict[str, str]) -> None:
    stub.add_response("list_subscriptions_by_topic", {"Subscriptions": list(subscriptions)}, {"TopicArn": TOPIC})


def test_a_subscription_pending_confirmation_fails_with_the_resubscribe_command(
    stubbed: tuple[StackTarget, dict[str, Stubber]],
) -> None:
    target, stubs = stubbed
    _subscriptions(
        stubs["sns"],
        {
            "SubscriptionArn": "PendingConfirmation",
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": TOPIC,
        },
    )

    check = Doctor(target).alarm_subscription()

    assert check.status == "fail"
    assert "email ops@example.com" in check.detail
    assert check.fix is not None
    assert (
        f"aws --region {REGION} sns subscribe --topic-arn {TOPIC} --protocol email "
        "--notification-endpoint ops@example.com"
    ) in check.fix


def test_a_confirmed_subscription_is_ok_and_none_at_all_is_a_warning_naming_alarm_email(
    stubbed: tuple[StackTarget, dict[str, Stubber]],
) -> None:
    target, stubs = stubbed
    confirmed = f"{TOPIC}:5f1b2c3d-0000-4000-8000-000000000001"
    _subscriptions(
        stubs["sns"],
        {"SubscriptionArn": confirmed, "Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": TOPIC},
    )
    assert Doctor(target).alarm_subscription().status == "ok"

    _subscriptions(stubs["sns"])
    check = Doctor(target).alarm_subscription()
    assert check.status == "warn"
    assert check.fix == ".tools/sam/bin/sam deploy --stack-name cutout --parameter-overrides AlarmEmail=you@example.com"


def test_an_alarm_in_alarm_state_fails_with_its_history_command(
    stubbed: tuple[StackTarget, dict[str, Stubber]],
) -> None:
    target, stubs = stubbed
    alarm = {
        "AlarmName": "cutout/PollDLQ",
        "StateValue": "ALARM",
        "StateReason": "Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0).",
        "StateUpdatedTimestamp": datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    }
    stubs["cloudwatch"].add_response(
        "describe_alarms", {"MetricAlarms": [alarm]}, {"AlarmNamePrefix": "cutout/", "StateValue": "ALARM"}
    )

    check = Doctor(target).alarms()

    assert check.status == "fail"
    assert "cutout/PollDLQ: Threshold Crossed" in check.detail
    assert check.fix is not None
    assert check.fix.splitlines() == [
        f"cutout --stack cutout --region {REGION} status",
        f"aws --region {REGION} cloudwatch describe-alarm-history --alarm-name cutout/PollDLQ "
        "--history-item-type StateUpdate --max-items 5",
    ]


# -- the local stack's reservations come from its template -------------------------------------------------------
CONDITIONAL_RESERVATION = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  WebhookReservedConcurrency:
    Type: Number
    Default: 0
Conditions:
  HasWebhookReservation: !Not [!Equals [!Ref WebhookReservedConcurrency, 0]]
Resources:
  WebhookFunction:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: !If [HasWebhookReservation, !Ref WebhookReservedConcurrency, !Ref AWS::NoValue]
  SubmitFunction:
    Type: AWS::Serverless::Function
    Properties: {}
"""


@pytest.mark.parametrize(
    ("parameters", "quota", "status", "reserves"),
    [
        ({}, 10, "ok", "this stack reserves 0 (none)"),  # the default: no reservation, fits any account
        ({"WebhookReservedConcurrency": "3"}, 1000, "ok", "this stack reserves 3 (Webhook 3)"),
        ({"WebhookReservedConcurrency": "3"}, 10, "fail", "this stack reserves 3 (Webhook 3)"),
    ],
)
def test_local_reservations_follow_the_template_conditions_and_the_recorded_quota(
    tmp_path: Any, parameters: dict[str, str], quota: int, status: str, reserves: str
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(CONDITIONAL_RESERVATION, encoding="utf-8")
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    target = StackTarget("cutout-local", session, "http://127.0.0.1:1", True, {}, parameters)

    check = Doctor(target, local_state={"template": str(template), "account_concurrency_quota": quota}).concurrency()

    assert check.status == status
    assert reserves in check.detail
    assert f"quota {quota}" in check.detail


class _Receiver(BaseHTTPRequestHandler):
    """Stands where the WebhookUrl points: answers each POST with the status the test sets, and keeps what came."""

    status = 202
    received: list[dict[str, str]] = []

    def do_POST(self) -> None:  # http.server dispatches on the method name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(dict(self.headers))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", _Receiver
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        (202, "ok", "got 202"),  # what Cutout's webhook answers a signed delivery it has no job for
        (200, "fail", "got 200, not the 202 Cutout's webhook gives a signed delivery"),  # something else is there
        (401, "fail", "verifies with another secret"),
    ],
)
def test_the_webhook_url_must_answer_a_signed_delivery_for_an_unknown_project_with_202(
    receiver: tuple[str, type[_Receiver]], answer: int, status: str, says: str
) -> None:
    url, handler = receiver
    handler.status = answer
    # Given a deployed stack whose WebhookUrl is served by whatever is at `url`, and its stored webhook secret
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    sm = session.client("secretsmanager")
    secret_arn = f"arn:aws:secretsmanager:{REGION}:111122223333:secret:cutout-webhook-AbCdEf"
    outputs = {"WebhookUrl": url, "WebhookSecretArn": secret_arn}
    target = StackTarget(STACK, session, None, False, outputs, {}, _clients={"secretsmanager": sm})
    with Stubber(sm) as stub:
        stub.add_response(
            "get_secret_value",
            {"ARN": secret_arn, "Name": "cutout-webhook", "SecretString": "the-stored-secret"},
            {"SecretId": secret_arn, "VersionStage": "AWSCURRENT"},
        )

        # When the doctor sends its probe
        check = Doctor(target).webhook()

    # Then it was signed, and only a 202 passes
    (headers,) = handler.received
    assert {k.lower() for k in headers} >= {"magic-hour-event-signature", "magic-hour-event-timestamp"}
    assert check.status == status
    assert says in check.detail
    assert "the-stored-secret" not in json.dumps(check.__dict__)
    assert (check.fix is None) == (status == "ok")


def test_an_output_bucket_under_a_key_of_its_own_is_told_to_set_its_parameter() -> None:
    # given a stack writing to a separate output bucket encrypted with a customer key the stack was not given
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    s3, kms = session.client("s3"), session.client("kms")
    key = f"arn:aws:kms:{REGION}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    outputs = {"BucketName": "photos", "OutputS3Uri": "s3://cutouts-bucket/cutouts/"}
    target = StackTarget(STACK, session, None, False, outputs, {}, _clients={"s3": s3, "kms": kms})
    sse_s3 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    sse_kms = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]}
    with Stubber(s3) as s3_stub, Stubber(kms) as kms_stub:
        s3_stub.add_response(
            "get_bucket_encryption", {"ServerSideEncryptionConfiguration": sse_s3}, {"Bucket": "photos"}
        )
        s3_stub.add_response(
            "get_bucket_encryption", {"ServerSideEncryptionConfiguration": sse_kms}, {"Bucket": "cutouts-bucket"}
        )
        kms_stub.add_response(
            "describe_key", {"KeyMetadata": {"KeyId": "k", "Arn": key, "KeyManager": "CUSTOMER"}}, {"KeyId": key}
        )
        images, output = Doctor(target).bucket_encryption()
    # then the images bucket is fine, and the output bucket's finding names the output bucket's own parameter
    assert images.status == "ok"
    assert output.status == "fail"
    assert "OutputBucketKmsKeyArn is empty" in output.detail
    assert output.fix is not None and output.fix.endswith(f"--parameter-overrides OutputBucketKmsKeyArn={key}")
