"""moto behind the local stack's IAM: a function's calls answered as AWS answers them (over HTTP, moto server)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cutout.store.job_store import JobStore

from cutout_dev.local_stack.iam.enforcer import SEEN_REFUSALS
from cutout_dev.local_stack.iam.principals import acting_as, register, role_session_arn
from tests.conftest import Aws
from tests.support.roles import function_role, operator, unscoped_calls

pytestmark = pytest.mark.iam_refusals_expected  # these tests provoke refusals on purpose

ROLE = "TestFunction"


def give(aws: Aws, *statements: dict[str, Any]) -> None:
    register(
        [aws.server.endpoint_url],
        {ROLE: [("inline", {"Version": "2012-10-17", "Statement": list(statements)})]},
        arns={ROLE: role_session_arn("test-role", "test-fn", "123456789012")},
    )


def read_inputs(aws: Aws) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{aws.bucket}/incoming/*"}


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(aws: Aws) -> None:
    # given a role that may read the input prefix, and an object that exists
    aws.put("incoming/here.png", b"x")
    aws.put("private/secret.png", b"x")
    give(aws, read_inputs(aws))
    s3 = boto3.client("s3")
    before = len(SEEN_REFUSALS)
    with acting_as(ROLE):
        # when it reads what exists, then what does not
        assert s3.head_object(Bucket=aws.bucket, Key="incoming/here.png")["ContentLength"] == 1
        # then S3 will not say the key is absent to a caller that may not list the bucket (GetObject/HeadObject
        # API reference, "Permissions")
        assert error_of(lambda: s3.head_object(Bucket=aws.bucket, Key="incoming/gone.png"))[0] == 403
        assert error_of(lambda: s3.get_object(Bucket=aws.bucket, Key="incoming/gone.png")) == (403, "AccessDenied")
        # and each of those two refusals is counted as one, as the soak's IAM check and the suite's guard read them
        assert [r["operation"] for r in SEEN_REFUSALS[before:]] == ["ListBucket (missing key)"] * 2
        # and outside the granted prefix every key is refused, existing or not
        assert error_of(lambda: s3.get_object(Bucket=aws.bucket, Key="private/secret.png")) == (403, "AccessDenied")

    # given the same role allowed to list the bucket: a missing key is a 404
    give(
        aws, read_inputs(aws), {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{aws.bucket}"}
    )
    with acting_as(ROLE):
        assert error_of(lambda: boto3.client("s3").get_object(Bucket=aws.bucket, Key="incoming/gone.png")) == (
            404,
            "NoSuchKey",
        )


def test_a_presigned_url_carries_its_signers_role(aws: Aws) -> None:
    # given a role that may read incoming/ only, and URLs it signs
    aws.put("incoming/a.png", b"png-bytes")
    aws.put("private/b.png", b"secret")
    give(aws, read_inputs(aws))
    s3 = boto3.client("s3")
    with acting_as(ROLE):
        allowed = s3.generate_presigned_url("get_object", Params={"Bucket": aws.bucket, "Key": "incoming/a.png"})
        refused = s3.generate_presigned_url("get_object", Params={"Bucket": aws.bucket, "Key": "private/b.png"})
    # when someone else (Magic Hour) fetches them over plain HTTP
    with urllib.request.urlopen(allowed, timeout=5) as ok:
        assert ok.read() == b"png-bytes"
    # then the URL is worth what its signer's role may do
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(refused, timeout=5)
    assert denied.value.code == 403


def test_dynamodb_and_sqs_refusals_are_their_access_denied_errors(aws: Aws) -> None:
    # given a role that may update job items only (the webhook's MarkRendering)
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{aws.table}"
    give(
        aws,
        {
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": table_arn,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["?" * 32]}},
        },
    )
    ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")

    def update(key: str) -> Any:
        return ddb.update_item(
            TableName=aws.table,
            Key={"job_id": {"S": key}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "note"},
            ExpressionAttributeValues={":s": {"S": "x"}},
        )

    with acting_as(ROLE):
        update("a" * 32)  # a job item: allowed
        # a counter item (the admission limit) is refused, as the condition key says
        assert error_of(lambda: update("admission#limit")) == (400, "AccessDeniedException")
        assert error_of(lambda: ddb.put_item(TableName=aws.table, Item={"job_id": {"S": "a" * 32}}))[1] == (
            "AccessDeniedException"
        )
        assert error_of(lambda: sqs.send_message(QueueUrl=aws.poll_queue_url, MessageBody="{}"))[1] == "AccessDenied"
    # and the administrator (the harness, outside any function) is not checked
    aws.client("sqs").send_message(QueueUrl=aws.poll_queue_url, MessageBody="{}")


# ----- domain code a test drives directly (local_stack/iam/domain_calls.py) --------------------------------------
JOB = "0123456789abcdef0123456789abcdef"


def test_domain_code_run_with_no_function_named_is_refused_and_its_call_site_named(aws: Aws) -> None:
    # given the store on the test's own client, and a test that names no function
    store = JobStore(aws.table, aws.client("dynamodb"))

    # when the domain reads a job, then the call is refused (a role with no grant), and where it came from is kept
    # for the test's failure
    with pytest.raises(ClientError) as caught:
        store.get(JOB)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert any("job_queries.py" in site for site in unscoped_calls())
    # and the test's own call on the same client (setup, assertions) is the administrator's
    assert "Item" not in aws.client("dynamodb").get_item(TableName=aws.table, Key={"job_id": {"S": JOB}})


@pytest.mark.function_role("webhook")
def test_domain_code_runs_as_the_function_named_in_every_thread(aws: Aws) -> None:
    # given the store, in a test whose domain code is the webhook's: it may update a job item, not read one
    store = JobStore(aws.table, aws.client("dynamodb"))
    with pytest.raises(ClientError) as caught:
        store.get(JOB)
    assert "test-WebhookFunction" in caught.value.response["Error"]["Message"]

    # when a step is the finalize's, in a thread the test starts
    found: list[object] = []
    with function_role("finalize"):
        reader = threading.Thread(target=lambda: found.append(store.get(JOB)))
        reader.start()
        reader.join()

    # then it runs as the finalize, which may read it (none there)
    assert found == [None]
    assert not unscoped_calls()


@pytest.mark.unrestricted_aws("shows the opt-in itself: domain code with the administrator's credentials")
def test_unrestricted_is_an_opt_in_by_name(aws: Aws) -> None:
    store = JobStore(aws.table, aws.client("dynamodb"))
    assert store.get(JOB) is None
    with operator():  # the same for one step: the operator's commands run with the operator's credentials
        assert store.get(JOB) is None
    assert not unscoped_calls()
